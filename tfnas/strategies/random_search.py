"""Random search: every trial is a fresh sample from the space (the baseline)."""

from __future__ import annotations

import numpy as np

from tfnas.genome import Genome
from tfnas.strategies.base import NASOracle

__all__ = ["RandomSearchOracle"]


class RandomSearchOracle(NASOracle):
    """Sample genomes uniformly from the search space's sampler."""

    def propose(self, rng: np.random.Generator) -> Genome:
        return self.space.sample(rng)
