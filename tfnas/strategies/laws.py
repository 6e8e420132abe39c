"""Sampling laws: train samples of narrow spaces that put every window of a cost range to use.

Scheidegger, Benini, Bekas, Malossi, "Constrained deep neural network
architecture search for IoT devices accounting for hardware calibration",
NeurIPS 2019. Before anything trains, laws are designed (or loaded) for
windows that split a metric's range at ``1, 2, 5 x 10^k``
(:mod:`tfnas.strategies.law_design`); then trial ``t`` samples a law of
window ``t mod W`` (the next window on each rejected proposal), so trials
spread evenly over the range and the report's Pareto front is drawn across
them. Every sample is screened against the constraints like any proposal.
"""

from __future__ import annotations

import logging

import numpy as np

from tfnas.genome import Genome
from tfnas.genome.laws import law_variables, sample
from tfnas.strategies.base import NASOracle
from tfnas.strategies.core import screen
from tfnas.strategies.law_design import (
    DESIGN_DEFAULTS,
    LawSet,
    check_law_options,
    decade_windows,
    default_range,
    design_windows,
    load_for_space,
)

__all__ = ["SamplingLawOracle", "DESIGN_DEFAULTS"]

logger = logging.getLogger("tfnas")


class SamplingLawOracle(NASOracle):
    """Train samples of sampling laws, window after window.

    Parameters
    ----------
    laws:
        A laws JSON file (``tfnas laws design``) to use instead of designing laws;
        its space must equal the search's (the class count may differ).
    metric:
        The law metric when designing: ``"macs"`` (default), ``"params"``,
        ``"planned_bytes"`` or ``"latency_ms"`` (on the constraints' board).
    metric_range:
        ``[low, high]`` of the metric, split into windows at ``1, 2, 5 x 10^k``;
        default :func:`default_range`.
    windows:
        Explicit ``[[t1, t2], ...]`` windows instead of ``metric_range``.
    design:
        Design settings over :data:`DESIGN_DEFAULTS` (``n_init``, ``steps``, ``n_eval``,
        ``tournament_size``, ``clusters``, ``check_samples``).
    **kwargs:
        Passed to :class:`~tfnas.strategies.base.NASOracle`.
    """

    def __init__(
        self,
        *args,
        laws: str | None = None,
        metric: str = "macs",
        metric_range=None,
        windows=None,
        design: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        options = check_law_options({"laws": laws, "metric": metric, "metric_range": metric_range,
                                     "windows": windows, "design": design})  # fmt: skip
        law_variables(self.space)  # a space without law variables fails here
        self.laws_path, self.metric = laws, metric
        self.metric_range, self.windows = options["metric_range"], options["windows"]
        self.design = {**DESIGN_DEFAULTS, **(design or {})}
        self.lawset: LawSet | None = None
        if laws is not None:
            self.lawset = load_for_space(laws, self.space)
        self._slot = 0

    # ------------------------------------------------------------- designing

    def ensure_laws(self) -> LawSet:
        """The laws of the search: loaded, restored from the state, or designed now (once)."""
        if self.lawset is None:
            windows = self.windows or decade_windows(*(self.metric_range or default_range(
                self.space, self.metric, self.constraints, seed=self.seed)))  # fmt: skip
            logger.info("designing laws for %d %s windows", len(windows), self.metric)
            device = self.constraints.latency_device if self.metric == "latency_ms" else None
            self.lawset = design_windows(self.space, windows, self.metric, device=device,
                                         feasible=self._passes_screening, seed=self.seed,
                                         **self.design)  # fmt: skip
            self.save()
        return self.lawset

    def _passes_screening(self, genome: Genome) -> bool:
        """Whether a sample would reach training: what the laws are designed to favour."""
        return not screen(genome, self.constraints)["violations"]

    # -------------------------------------------------------------- strategy

    def rng(self, trial_id: str, attempt: int) -> np.random.Generator:
        self._slot = int(trial_id) + attempt  # which window this proposal samples
        return super().rng(trial_id, attempt)

    def new_candidate(self, trial_id: str) -> dict:
        self.ensure_laws()
        return super().new_candidate(trial_id)

    def propose(self, rng: np.random.Generator) -> Genome:
        windows = self.ensure_laws().windows
        window = windows[self._slot % len(windows)]
        law = window.laws[int(rng.integers(len(window.laws)))]
        return sample(law, 1, rng)[0]

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict:
        state = super().get_state()
        state["tfnas"]["laws"] = {"metric": self.metric, "design": self.design,
                                  "lawset": self.lawset.to_dict() if self.lawset else None}  # fmt: skip
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        saved = state.get("tfnas", {}).get("laws", {})
        if saved.get("lawset") and self.laws_path is None:
            self.lawset = LawSet.from_dict(saved["lawset"], "the saved search state")
