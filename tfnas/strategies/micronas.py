"""MicroNAS: zero-shot, hardware-aware search, then training of the top candidates only.

Qiao et al., "MicroNAS: Zero-Shot Neural Architecture Search for MCUs", DATE
2024. Candidates are ranked before any training by a hybrid objective: the
rank of the NTK condition number (lower is better) plus the rank of the
linear-region indicator (higher is better), plus weighted ranks of MACs and
modelled latency (:func:`tfnas.strategies.core.hybrid_scores`).

On the cell space (:class:`~tfnas.genome.CellSpace`) the search is MicroNAS's
pruning search (:func:`tfnas.strategies.core.prune_edges`): from the supernet
with every op on every edge, each round removes per edge the op whose removal
hurts the hybrid objective least, preferring removals that bring the supernet
inside the device bounds, until one op per edge is left. On every space,
``pool`` sampled candidates that pass screening are ranked zero-shot as well.
The trials then train the pruned architecture first and the ranked pool after
it, so the report holds real int8 accuracy and exact memory for each.
"""

from __future__ import annotations

import logging

import numpy as np

from tfnas._kt import keras_tuner
from tfnas.errors import SearchSpaceError
from tfnas.genome import CellSpace, Genome
from tfnas.strategies.base import NASOracle
from tfnas.strategies.core import prune_edges, screen

__all__ = ["MicroNASOracle"]

logger = logging.getLogger("tfnas")


class MicroNASOracle(NASOracle):
    """Zero-shot ranking (and pruning on the cell space), then train the best.

    Parameters
    ----------
    pool:
        Sampled candidates ranked zero-shot (default 50); their screened, distinct
        members are trained best first after the pruned architecture.
    prune:
        Run the pruning search on a :class:`~tfnas.genome.CellSpace` (default True).
    **kwargs:
        Passed to :class:`~tfnas.strategies.base.NASOracle`; ``max_trials`` is
        the number of candidates trained, ``proxy_weights`` the hybrid weights.
    """

    def __init__(self, *args, pool: int = 50, prune: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if isinstance(pool, bool) or not isinstance(pool, int) or pool < 0:
            raise ValueError(f"pool must be an integer >= 0. Received: pool={pool!r}")
        self.pool = pool
        self.prune = prune
        self.ranking: list[str] | None = None
        self.pruning: list[dict] = []

    def new_candidate(self, trial_id: str) -> dict:
        """The best-ranked candidate not tried yet; the search stops when the ranking is used up."""
        running = keras_tuner.engine.trial.TrialStatus.RUNNING
        if self.ranking is None:
            self.ranking = self.zero_shot_search()
            self.save()
        for genome_json in self.ranking:
            values = self._fidelity({"genome": genome_json})
            if not self._duplicate(values):
                return {"status": running, "values": values}
        return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED}

    def zero_shot_search(self) -> list[str]:
        """Every candidate to train, best first, as genome JSON (no training happens here)."""
        ranked: list[Genome] = []
        if self.prune and isinstance(self.space, CellSpace):
            ranked.append(self._pruned())
        sampled: list[Genome] = []
        for attempt in range(max(self.pool * 20, 1) if self.pool else 0):
            if len(sampled) >= self.pool:
                break
            try:
                genome = self.space.sample(np.random.default_rng([self.seed, 7919, attempt]))
            except SearchSpaceError:
                continue
            if genome in sampled or genome in ranked:
                continue
            checked = screen(genome, self.constraints)
            if checked["violations"]:
                self.rejected.append(
                    {"trial_id": "zero-shot", "genome": genome.to_json(), **checked}
                )
                continue
            sampled.append(genome)
        if sampled:
            ranked += [sampled[i] for i in self.rank_by_proxy(sampled)]
        if not ranked:
            raise SearchSpaceError(
                f"The zero-shot search found no candidate inside {self.constraints.bounds()}. "
                f"Received: {len(self.rejected)} candidates rejected by screening"
            )
        return [g.to_json() for g in ranked]

    def _pruned(self) -> Genome:
        space: CellSpace = self.space

        def evaluate(edges):
            try:
                genome = space.genome(edges)
            except SearchSpaceError:
                return None
            return self.zero_shot(genome)

        def violation(edges) -> float:
            return float(sum(screen(space.genome(edges), self.constraints)["violations"].values()))

        history = prune_edges(
            [space.ops] * 6, evaluate, weights=self.proxy_weights, violation=violation
        )
        self.pruning = [{"edges": h["edges"], "removed": {str(k): v for k, v in h["removed"].items()}}
                        for h in history]  # fmt: skip
        final = space.genome([e[0] for e in history[-1]["edges"]])
        logger.info("micronas: pruned to %s", space.genotype(final))
        return final

    def get_state(self) -> dict:
        state = super().get_state()
        state["tfnas"]["micronas"] = {"ranking": self.ranking, "pruning": self.pruning,
                                      "pool": self.pool, "prune": self.prune}  # fmt: skip
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        saved = state.get("tfnas", {}).get("micronas", {})
        self.ranking = saved.get("ranking")
        self.pruning = saved.get("pruning", [])
