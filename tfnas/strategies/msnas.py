"""MSNAS: sample sub-DAGs from a learned meta-graph, reward the edges of good ones.

Cheng et al., "MSNet: Structural Wired Neural Architecture Search for Internet
of Things", ICCV Workshops 2019. The oracle's whole logic: Phase A proposes
:meth:`MetaGraph.sample`; when a trial ends, Phase C scores it with
``M(A) = Perf - IoT(A)`` and updates the edge weights
(:meth:`MetaGraph.update`). The meta-graph travels in the oracle's JSON state
(so a killed search resumes with the weights it had learned) and is also
written to ``metagraph.json`` in the project folder after every update.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from tfnas._kt import keras_tuner
from tfnas.genome import Genome
from tfnas.strategies.base import NASOracle
from tfnas.strategies.metagraph import MetaGraph, iot_penalty

__all__ = ["MSNASOracle", "measure_genome"]

logger = logging.getLogger("tfnas")


class MSNASOracle(NASOracle):
    """The MSNAS strategy on a :class:`~tfnas.strategies.metagraph.MetaGraph`.

    Parameters
    ----------
    space:
        The meta-graph; its weights are learned in place.
    alpha:
        Step size of the multiplicative update (the paper: 0.9).
    beta_decay:
        Decay of the moving-average baseline ``beta`` (its start value is the
        meta-graph's ``beta``, 0.4 by default).
    lambda_connectivity, lambda_macs, lambda_params:
        ``IoT(A)`` weights (the paper: 0.1, 1, 1; MACs and params in millions).
    lambda_arena:
        Weight of the TFLM arena (``arena_bytes`` for the target, in millions of
        bytes) in ``IoT(A)``; 0 by default as in the paper.
    performance:
        The trial metric used as ``Perf`` (default the int8 accuracy).
    **kwargs:
        Passed to :class:`~tfnas.strategies.base.NASOracle`.
    """

    allow_duplicates = True  # the same sub-DAG may be drawn again and scored again

    def __init__(
        self,
        space: MetaGraph,
        *args,
        alpha: float = 0.9,
        beta_decay: float = 0.9,
        lambda_connectivity: float = 0.1,
        lambda_macs: float = 1.0,
        lambda_params: float = 1.0,
        lambda_arena: float = 0.0,
        performance: str = "int8_accuracy",
        **kwargs,
    ) -> None:
        if not isinstance(space, MetaGraph):
            raise ValueError(
                f"MSNASOracle searches a MetaGraph. Received: space of type {type(space).__name__}"
            )
        super().__init__(space, *args, **kwargs)
        self.rule = {
            "alpha": float(alpha),
            "beta_decay": float(beta_decay),
            "lambda_connectivity": float(lambda_connectivity),
            "lambda_macs": float(lambda_macs),
            "lambda_params": float(lambda_params),
            "lambda_arena": float(lambda_arena),
            "performance": performance,
        }
        self.updated: list[str] = []  # trial ids already used in Phase C

    def propose(self, rng: np.random.Generator) -> Genome:
        return self.space.sample(rng)

    def score(self, genome: Genome, metrics: dict) -> dict:
        """``M(A) = Perf - IoT(A)`` with every term, for a trained trial's metrics."""
        terms = iot_penalty(
            self.space.adjacency(genome),
            metrics["macs"],
            metrics["params"],
            arena_bytes=metrics.get("arena_bytes"),
            lambda_connectivity=self.rule["lambda_connectivity"],
            lambda_macs=self.rule["lambda_macs"],
            lambda_params=self.rule["lambda_params"],
            lambda_arena=self.rule["lambda_arena"],
        )
        perf = float(metrics[self.rule["performance"]])
        return {"perf": perf, "iot": terms["total"], "score": perf - terms["total"], **terms}

    def end_trial(self, trial) -> None:
        done = trial.status == keras_tuner.engine.trial.TrialStatus.COMPLETED
        if done and trial.trial_id not in self.updated:
            stored = self.trials[trial.trial_id]
            metrics = self.trial_metrics(stored)
            genome = self.trial_genome(trial)
            scored = self.score(genome, metrics)
            self.space.update(genome, scored["score"], alpha=self.rule["alpha"],
                              beta_decay=self.rule["beta_decay"])  # fmt: skip
            self.space.history[-1].update(trial_id=trial.trial_id, **scored)
            self.updated.append(trial.trial_id)
            logger.info("msnas: trial %s M(A)=%.4f beta=%.4f", trial.trial_id, scored["score"],
                        self.space.beta)  # fmt: skip
        super().end_trial(trial)  # saves the oracle state, weights included
        if done and getattr(self, "_project_dir", None):
            self.space.save(Path(self._project_dir) / "metagraph.json")

    def get_state(self) -> dict:
        state = super().get_state()
        state["tfnas"]["msnas"] = {
            "rule": self.rule,
            "metagraph": self.space.to_dict(),
            "updated": self.updated,
        }
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        saved = state.get("tfnas", {}).get("msnas")
        if saved:
            learned = MetaGraph.from_dict(saved["metagraph"])
            self.space.weights, self.space.beta = learned.weights, learned.beta
            self.space.history = learned.history
            self.updated = list(saved.get("updated", []))


def measure_genome(genome: Genome, target: str = "cortex-m", seed: int = 0) -> dict:
    """Exact TFLM memory and size of ``genome`` as an int8 model, without training.

    Builds the model with its initial weights, converts it (calibrated on
    random inputs) and measures the flatbuffer with :func:`tfnas.inspect`.
    Arena, flash and MACs depend on the architecture, not on trained values.
    """
    from tfnas._tf import keras
    from tfnas.compress import to_tflite
    from tfnas.inspection import inspect
    from tfnas.model import build_model

    model = build_model(genome, seed=seed)
    data = np.random.default_rng(seed).uniform(0, 1, (16, *genome.input_shape)).astype(np.float32)
    tflite = to_tflite(model, "int8", data, seed=seed)
    keras.backend.clear_session()
    report = inspect(tflite, target=target)
    return {k: report[k] for k in ("planned_bytes", "persistent_bytes", "arena_bytes",
            "min_arena_bytes", "flash_bytes", "weights_bytes", "macs", "params")}  # fmt: skip
