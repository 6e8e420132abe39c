"""The oracle every tfnas strategy builds on.

A strategy is a keras-tuner ``Oracle`` whose logic sits in
:meth:`NASOracle.propose` (return a genome); the genome travels to the tuner as
a JSON string hyperparameter named ``genome``. Before a genome becomes a
trial, the oracle screens it with the genome-level estimate
(:func:`tfnas.memory.estimate_memory`) and analytic costs against the
constraints: a candidate that cannot fit is recorded as *rejected* (kept in the
oracle's JSON state, never trained, never counted as a failure) and another is
proposed.
"""

from __future__ import annotations

import json
import logging

import keras_tuner
import numpy as np

from tfnas.errors import InfeasibleModelError, SearchSpaceError
from tfnas.genome import Genome, SearchSpace
from tfnas.objectives import Constraints
from tfnas.strategies.core import screen

__all__ = ["NASOracle"]

logger = logging.getLogger("tfnas")


class NASOracle(keras_tuner.Oracle):
    """Base oracle: proposes genomes, screens them, keeps rejected ones.

    Parameters
    ----------
    space:
        The :class:`~tfnas.genome.SearchSpace` to search.
    constraints:
        Device bounds (:class:`~tfnas.objectives.Constraints`).
    objective:
        keras-tuner objective; default ``Objective("score", "min")``, the
        constraint-aware scalarised score the tuner reports.
    max_trials:
        Trained trials (rejected candidates do not count).
    max_rejections:
        Consecutive rejected proposals after which the search stops with
        :class:`~tfnas.errors.InfeasibleModelError` (the space cannot meet the
        constraints).
    seed:
        Seeds every random choice; a resumed search continues the same stream.
    """

    #: Whether a genome already tried may be proposed again (MSNAS re-samples on purpose).
    allow_duplicates = False

    def __init__(
        self,
        space: SearchSpace,
        constraints: Constraints | None = None,
        *,
        objective=None,
        max_trials: int = 10,
        max_rejections: int = 500,
        seed: int = 0,
        max_consecutive_failed_trials: int = 3,
    ) -> None:
        super().__init__(
            objective=objective or keras_tuner.Objective("score", "min"),
            max_trials=max_trials,
            seed=seed,
            max_consecutive_failed_trials=max_consecutive_failed_trials,
        )
        # keras-tuner replaces a seed of 0 by a random one; tfnas keeps the caller's seed.
        self.seed = self._seed_state = int(seed)
        self.space = space
        self.constraints = constraints or Constraints()
        self.max_rejections = max_rejections
        self.rejected: list[dict] = []
        self._display.verbose = 0  # tfnas prints its own one-line progress

    # -------------------------------------------------------------- strategy

    def propose(self, rng: np.random.Generator) -> Genome:
        """Return the next genome to try (subclasses implement the strategy)."""
        raise NotImplementedError

    def rng(self, trial_id: str, attempt: int) -> np.random.Generator:
        """A generator determined by the seed, the trial and the attempt (resumable)."""
        return np.random.default_rng([self.seed, int(trial_id), attempt])

    def populate_space(self, trial_id: str) -> dict:
        for attempt in range(self.max_rejections):
            rng = self.rng(trial_id, attempt)
            try:
                genome = self.propose(rng)
            except SearchSpaceError as e:
                logger.debug("proposal failed: %s", e)
                continue
            values = {"genome": genome.to_json()}
            if not self.allow_duplicates and self._duplicate(values):
                continue
            checked = screen(genome, self.constraints)
            if checked["violations"]:
                self.rejected.append({"trial_id": trial_id, "genome": values["genome"], **checked})
                continue
            return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": values}
        self.save()
        raise InfeasibleModelError(
            f"No candidate met the constraints in {self.max_rejections} proposals. Expected a search "
            f"space that can fit {self.constraints.bounds()}. Received: {len(self.rejected)} "
            "rejected candidates (see the search report)"
        )

    # -------------------------------------------------------------- results

    def completed_trials(self) -> list:
        """Completed trials in the order they ended."""
        done = keras_tuner.engine.trial.TrialStatus.COMPLETED
        return [self.trials[t] for t in self.end_order if self.trials[t].status == done]

    @staticmethod
    def trial_genome(trial) -> Genome:
        return Genome.from_json(trial.hyperparameters.values["genome"])

    @staticmethod
    def trial_metrics(trial) -> dict[str, float]:
        return {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}

    # ---------------------------------------------------------------- state

    def get_state(self) -> dict:
        state = super().get_state()
        state["tfnas"] = {
            "space": {"name": self.space.name, "config": self.space.get_config()},
            "constraints": self.constraints.to_dict(),
            "rejected": self.rejected,
        }
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        saved = state.get("tfnas", {})
        self.rejected = saved.get("rejected", [])
        if saved.get("space"):
            mine = json.loads(json.dumps(self.space.get_config()))
            if saved["space"]["config"] != mine:
                raise SearchSpaceError(
                    "The search being resumed used another search space. Expected "
                    f"{saved['space']['config']}. Received: {mine} (pass overwrite=True to start anew)"
                )
