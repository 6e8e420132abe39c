"""Aging evolution under resource constraints, after μNAS.

Liberis, Dudziak, Lane, "μNAS: Constrained Neural Architecture Search for
Microcontrollers", EuroMLSys 2021. The population is the ``population_size``
most recently completed trials (older ones age out); each child is a mutation
of the best of ``sample_size`` random members, where "best" is a
constraint-aware scalarisation whose random objective weights are redrawn at
every selection, so that the search spreads along the Pareto front.
"""

from __future__ import annotations

import numpy as np

from tfnas.genome import Genome
from tfnas.strategies.base import NASOracle
from tfnas.strategies.core import tournament

__all__ = ["AgingEvolutionOracle", "DEFAULT_OBJECTIVES"]

DEFAULT_OBJECTIVES = (
    ("val_accuracy", "max"),
    ("arena_bytes", "min"),
    ("flash_bytes", "min"),
    ("macs", "min"),
)


class AgingEvolutionOracle(NASOracle):
    """μNAS aging evolution.

    Parameters
    ----------
    population_size:
        Trials in the population (default 100); until that many have
        completed, genomes are sampled at random.
    sample_size:
        Members drawn for each tournament (default 25).
    objectives:
        ``(metric, "min" | "max")`` pairs the scalarisation weighs.
    **kwargs:
        Passed to :class:`~tfnas.strategies.base.NASOracle`.
    """

    def __init__(
        self,
        *args,
        population_size: int = 100,
        sample_size: int = 25,
        objectives=DEFAULT_OBJECTIVES,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not 1 <= sample_size <= population_size:
            raise ValueError(
                "sample_size must be between 1 and population_size. Received: "
                f"sample_size={sample_size}, population_size={population_size}"
            )
        self.population_size = population_size
        self.sample_size = sample_size
        self.objectives = tuple(tuple(o) for o in objectives)

    def population(self) -> list:
        return self.completed_trials()[-self.population_size :]

    def select_parent(self, rng: np.random.Generator):
        """Tournament among the population under fresh random weights."""
        population = self.population()
        metrics = [self.trial_metrics(t) for t in population]
        winner = tournament(metrics, self.objectives, self.constraints, self.sample_size, rng)
        return population[winner]

    def propose(self, rng: np.random.Generator) -> Genome:
        if len(self.completed_trials()) < self.population_size:
            return self.space.sample(rng)
        parent = self.trial_genome(self.select_parent(rng))
        return self.space.mutate(parent, rng)

    def get_state(self) -> dict:
        state = super().get_state()
        state["tfnas"]["aging_evolution"] = {
            "population_size": self.population_size,
            "sample_size": self.sample_size,
            "objectives": [list(o) for o in self.objectives],
        }
        return state
