"""NASTuner: keras-tuner's BaseTuner running the tfnas pipeline per trial.

``run_trial``: genome -> tf_keras model -> train -> optional magnitude pruning
-> int8 (PTQ by default, QAT on request) -> exact TFLM memory on the
flatbuffer -> modelled latency on the constraints' board
(:mod:`tfnas.objectives.latency`) -> int8 accuracy with LiteRT on the
validation data -> metrics.
Every completed trial keeps its ``model.tflite``, ``genome.json`` and weights
in its trial folder, and the search report is rewritten after every trial, so
a search killed at any moment resumes (``overwrite=False``) without losing a
completed trial.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from tfnas._kt import keras_tuner
from tfnas._tf import keras, tf
from tfnas.compress import (
    evaluate_tflite,
    match_pooling_ranges,
    prune_magnitude,
    quantize_aware,
    to_tflite,
)
from tfnas.errors import ConversionError, InputError, UnsupportedModelError
from tfnas.genome import Genome
from tfnas.inspection import inspect
from tfnas.model import build_model
from tfnas.objectives.latency import estimate_latency, kernels_for_target
from tfnas.strategies.base import NASOracle
from tfnas.tflite.model import read_model
from tfnas.tuner.distributed import heartbeat, leased_client, role, serve
from tfnas.tuner.report import build_report, plot_pareto, write_report
from tfnas.validation import check_arrays, check_int, check_number

__all__ = [
    "NASTuner",
    "check_fit_inputs",
    "measure_deployed",
    "score_flatbuffer",
    "fit_recipe",
    "train_dataset",
    "MEASURED",
]

logger = logging.getLogger("tfnas")


#: The resources read from the flatbuffer for every trial (``tfnas.inspect`` fields).
MEASURED = ("planned_bytes", "persistent_bytes", "arena_bytes", "min_arena_bytes", "flash_bytes",
            "weights_bytes", "macs", "params")  # fmt: skip


def deploy_order(tflite: bytes, genome: Genome, quantization: str = "ptq") -> bytes:
    """``tflite`` with its operators in the order the genome estimate predicts.

    The converter may interleave parallel branches in another order than
    :func:`tfnas.memory.estimate_memory` assumes (it does on NAS-Bench-201
    cells), and the order changes the arena. Rewriting the execution order
    (and the output tensors' numbering that TFLM's planner uses to break ties)
    to the estimate's makes the deployed arena equal the estimate that
    screening used; the outputs are bit-identical. If the flatbuffer holds
    other operators than predicted, it is returned as it is.
    """
    from tfnas.memory.estimate import estimate_memory, match_order
    from tfnas.tflite.writer import reorder_operators

    order = match_order(tflite, estimate_memory(genome, quantization=quantization))
    if order is None:
        logger.debug("deploy_order: the flatbuffer differs from the estimate; converter order kept")
        return tflite
    return reorder_operators(tflite, order, renumber=True)


def measure_deployed(model, x_calibration, x_val, y_val, constraints, *,
                     calibration_samples: int = 100, seed: int = 0, genome: Genome | None = None,
                     quantization: str = "ptq") -> tuple[bytes, dict]:  # fmt: skip
    """A trained model's int8 flatbuffer and its metrics: the second half of every trial.

    Converts ``model`` (PTQ int8 calibrated on ``x_calibration``; with
    ``genome``, its operators are then run in the estimate's order, see
    :func:`deploy_order`), measures the
    flatbuffer exactly for ``constraints.target``, estimates its latency on
    ``constraints.latency_device`` and evaluates it with LiteRT on the
    validation data. The metrics hold :data:`MEASURED`, ``latency_ms``,
    ``int8_accuracy``, ``feasible``, ``score`` (int8 error plus 10x each
    bound's relative excess, lower is better), ``convert_seconds`` and
    ``measure_seconds``.

    Raises
    ------
    keras_tuner.errors.FailedTrialError
        If the converter fails or TFLM cannot run the model on the target.
    """
    start = time.perf_counter()
    try:
        tflite = to_tflite(model, "int8", x_calibration, calibration_samples=calibration_samples,
                           seed=seed)  # fmt: skip
    except ConversionError as e:
        raise keras_tuner.errors.FailedTrialError(str(e)) from e
    if genome is not None:
        tflite = deploy_order(tflite, genome, quantization)
    convert_seconds = time.perf_counter() - start
    int8 = evaluate_tflite(tflite, x_val, y_val)
    metrics = score_flatbuffer(tflite, int8.accuracy, constraints)
    metrics["convert_seconds"] = convert_seconds
    return tflite, metrics


def score_flatbuffer(tflite: bytes, int8_accuracy: float, constraints) -> dict:
    """The constraint-dependent metrics of a measured flatbuffer.

    :data:`MEASURED` exactly for ``constraints.target``, ``latency_ms`` on
    ``constraints.latency_device``, ``int8_accuracy``, ``feasible``, ``score``
    and ``measure_seconds``. Used for every trial and again, from the saved
    ``model.tflite``, when a resumed search has other constraints.

    Raises
    ------
    keras_tuner.errors.FailedTrialError
        If TFLM cannot run the model on the target.
    """
    start = time.perf_counter()
    try:
        parsed = read_model(tflite)
        report = inspect(parsed, target=constraints.target)
    except UnsupportedModelError as e:
        raise keras_tuner.errors.FailedTrialError(
            f"TFLM cannot run it on {constraints.target}: {e}"
        ) from e
    latency = estimate_latency(parsed, constraints.latency_device,
                               kernels=kernels_for_target(constraints.target),
                               calibration=constraints.latency_calibration)  # fmt: skip
    metrics = {key: float(report[key]) for key in MEASURED}
    metrics["latency_ms"] = latency.latency_ms
    violations = constraints.violations(metrics)
    metrics.update(
        int8_accuracy=float(int8_accuracy),
        feasible=float(not violations),
        score=(1.0 - int8_accuracy) + 10.0 * sum(violations.values()),
        measure_seconds=time.perf_counter() - start,
    )
    return metrics


def check_fit_inputs(space, x, y, validation_data, epochs, batch_size, callbacks, extra=None):
    """The arguments of :meth:`NASTuner.search`, checked and normalised before any training.

    Returns ``(x, y, validation_data)`` with integer labels (one-hot rows
    converted) and ``validation_data`` as a pair of arrays or ``None``.

    Raises
    ------
    tfnas.errors.InputError
        Naming the argument, what was expected and what was received.
    """
    shape, classes = tuple(space.input_shape), int(space.num_classes)
    if extra:
        raise InputError(
            f"Unsupported search arguments {sorted(extra)}. Expected x, y, validation_data, "
            f"epochs, batch_size, callbacks. Received: {sorted(extra)}"
            + (" (pass validation_data=(x_val, y_val))" if "validation_split" in extra else "")
        )
    check_int("epochs", epochs, 1)
    check_int("batch_size", batch_size, 1)
    x, y = check_arrays(x, y, input_shape=shape, num_classes=classes)
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise InputError(
                "validation_data must be a pair (x_val, y_val). Received: "
                f"{type(validation_data).__name__}"
                + (
                    f" of length {len(validation_data)}"
                    if hasattr(validation_data, "__len__")
                    else ""
                )
            )
        validation_data = check_arrays(*validation_data, input_shape=shape, num_classes=classes,
                                       name="validation x", label_name="validation y", min_classes=0)  # fmt: skip
    for i, callback in enumerate(callbacks or []):
        if not isinstance(callback, keras.callbacks.Callback):
            kind = f"{type(callback).__module__}.{type(callback).__qualname__}"
            hint = ""
            if type(callback).__module__.split(".")[0] == "keras":
                hint = (" It is a Keras 3 callback: tfnas trains tf_keras (Keras 2) models, so use "
                        f"tf_keras.callbacks.{type(callback).__name__}, or import tfnas before "
                        "TensorFlow so that tf.keras is tf_keras.")  # fmt: skip
            raise InputError(f"callbacks[{i}] is not a tf_keras callback.{hint} Received: {kind}")
    return x, y, validation_data


def fit_recipe(model, x, y, *, epochs: int, batch_size: int = 32, learning_rate: float = 3e-3,
               augment: bool | str = "auto", seed: int = 0, initial_epoch: int = 0,
               validation_data=None, callbacks=None) -> None:  # fmt: skip
    """Compile and train ``model`` with the recipe of every trial and final fit.

    Adam at ``learning_rate`` with cosine decay to 5% over the steps from
    ``initial_epoch`` to ``epochs`` (a promoted trial restarts the cosine), on
    the shuffled, lightly augmented stream of :func:`train_dataset`.
    """
    steps = max(1, -(-len(x) // batch_size) * max(1, epochs - initial_epoch))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(train_dataset(x, y, batch_size, augment, seed=seed), validation_data=validation_data,
              epochs=epochs, initial_epoch=initial_epoch, verbose=0, callbacks=callbacks)  # fmt: skip


def rung_subset(x, y, fraction: float, seed: int):
    """The first ``fraction`` of one seeded shuffle of ``(x, y)``, in the data's own order.

    The shuffle depends only on ``seed`` and ``len(x)``, so a larger fraction
    holds every sample of a smaller one: a promoted trial keeps training on what
    its parent saw, plus more.
    """
    n = len(x)
    keep = min(n, max(1, int(np.ceil(fraction * n - 1e-9))))
    if keep == n:
        return x, y
    chosen = np.sort(np.random.default_rng(seed).permutation(n)[:keep])
    return x[chosen], y[chosen]


def _diverged(model) -> bool:
    return any(not np.all(np.isfinite(w)) for w in model.get_weights())


def train_dataset(x, y, batch_size: int, augment: bool | str = "auto", *, seed: int = 0):
    """The training stream of every trial: shuffled batches, lightly augmented where it fits.

    With ``augment="auto"`` (or True), 2-D inputs of at least 16x16 are shifted
    by up to 2 pixels (8% of the side for larger inputs), zero-filled, and
    3-channel images are also flipped left-right; 1-D signals and small images
    (8x8 digits) are left as they are.
    """
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    shape = np.shape(x)[1:]
    if augment and len(shape) == 3 and min(shape[0], shape[1]) >= 16:
        factor = min(0.08, 2.0 / min(shape[0], shape[1]) + 1e-6)
        layers = [keras.layers.RandomTranslation(factor, factor, fill_mode="constant", seed=seed)]
        if shape[2] == 3:
            layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
        augmenter = keras.Sequential(layers)
        ds = ds.map(lambda a, b: (augmenter(a, training=True), b), num_parallel_calls=1)
    return ds.prefetch(2)


def _final_best(fits: list[dict]) -> str | None:
    """The final fit to deploy: the lowest score among the completed feasible ones (None if none)."""
    done = [f for f in fits if f.get("status") == "completed" and f.get("feasible")]
    return min(done, key=lambda f: (f["score"], f["trial_id"]))["trial_id"] if done else None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


class _LiveLine(keras.callbacks.Callback):
    """One line, rewritten in place, saying where the running trial is (terminals only)."""

    def __init__(self, trial_id: str, epochs: int) -> None:
        super().__init__()
        self.trial_id, self.epochs = trial_id, epochs
        self.start = time.perf_counter()

    def show(self, what: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(
            f"\r\x1b[K[tfnas] trial {self.trial_id}: {what} ({elapsed:.0f} s)", end="", flush=True
        )

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs = logs or {}
        scores = "".join(
            f"  {k} {v:.3f}" for k, v in logs.items() if k in ("loss", "accuracy", "val_accuracy")
        )
        self.show(f"epoch {epoch + 1}/{self.epochs}{scores}")


class NASTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """Search architectures with a tfnas oracle, as a Keras user expects.

    Parameters
    ----------
    oracle:
        A :class:`~tfnas.strategies.base.NASOracle` (random search, aging
        evolution, ...), holding the space, constraints, ``max_trials`` and seed.
    quantization:
        ``"ptq"`` (post-training int8, default) or ``"qat"`` (one extra epoch of
        quantization-aware training before conversion).
    prune_sparsity:
        If set, fine-tune one epoch with TF-MOT magnitude pruning to this
        sparsity before quantizing (flash and arena do not shrink; see
        :mod:`tfnas.compress.prune`).
    learning_rate:
        Adam's learning rate.
    calibration_samples:
        Training samples used to calibrate int8 ranges.
    augment:
        Light augmentation during training (see :func:`train_dataset`):
        ``"auto"`` (default) shifts images of at least 16x16 by up to 2 pixels
        and flips 3-channel images horizontally; ``False`` turns it off.
    directory, project_name, overwrite:
        Where trials live, as in keras-tuner.
    verbose:
        1 prints one line per trial; 0 is silent.
    """

    def __init__(
        self,
        oracle: NASOracle,
        *,
        quantization: str = "ptq",
        prune_sparsity: float | None = None,
        learning_rate: float = 3e-3,
        calibration_samples: int = 100,
        augment: bool | str = "auto",
        directory: str | os.PathLike | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        verbose: int = 1,
    ) -> None:
        if quantization not in ("ptq", "qat"):
            raise ValueError(
                f"quantization must be 'ptq' or 'qat'. Received: quantization={quantization!r}"
            )
        if not isinstance(oracle, NASOracle):
            raise ValueError(
                f"NASTuner needs a tfnas NASOracle. Received: oracle of type {type(oracle).__name__}"
            )
        check_number("learning_rate", learning_rate, 0.0)
        if not learning_rate > 0:
            raise InputError(
                f"learning_rate must be positive. Received: learning_rate={learning_rate!r}"
            )
        check_int("calibration_samples", calibration_samples, 1)
        if prune_sparsity is not None:
            check_number("prune_sparsity", prune_sparsity, 0.0, 1.0, high_open=True)
        self.quantization = quantization
        self.prune_sparsity = prune_sparsity
        self.learning_rate = learning_rate
        self.calibration_samples = calibration_samples
        if augment not in ("auto", True, False):
            raise ValueError(
                f"augment must be 'auto', True or False. Received: augment={augment!r}"
            )
        self.augment = augment
        self.verbose = verbose
        with contextlib.redirect_stdout(io.StringIO()):  # keras-tuner's "Reloading Tuner from ..."
            super().__init__(oracle, hypermodel=None, directory=str(directory or "tfnas_runs"),
                             project_name=project_name or "search", overwrite=overwrite)  # fmt: skip
        #: The tfnas oracle (on a worker, ``self.oracle`` is keras-tuner's client for the chief's).
        self.local_oracle = oracle
        #: ``"chief"``, ``"worker"`` or ``None`` (keras-tuner's KERASTUNER_* environment variables).
        self.role = role()
        if self.role == "worker":
            self.oracle = leased_client(oracle)
        elif self.role == "chief":
            oracle.on_trial_ended = self._trial_ended
        #: Trial ids whose metrics were re-scored because the resumed search has other constraints.
        self.rescored: list[str] = []
        saved = getattr(self.oracle, "saved_constraints", None)
        if saved is not None and saved != self.oracle.constraints.to_dict():
            self.rescore()
        if verbose and self.role != "worker" and oracle.trials:
            done = len(oracle.completed_trials())
            print(f"[tfnas] resuming the search in {self.project_dir}: {done} completed trials kept",
                  flush=True)  # fmt: skip

    @property
    def target(self) -> str:
        return self.local_oracle.constraints.target

    # ------------------------------------------------------------------ trial

    def search(self, x, y, validation_data=None, epochs: int = 1, batch_size: int = 32,
               callbacks=None, **fit_kwargs) -> None:  # fmt: skip
        """Run (or resume) the search, as keras-tuner's ``search`` with Keras ``fit`` arguments.

        Everything is checked before the first trial (:func:`check_fit_inputs`):
        samples against the space's input shape, finite values, integer labels
        in range (one-hot rows are converted), the validation data, ``epochs``,
        ``batch_size`` and ``callbacks`` (tf_keras callbacks only).

        Raises
        ------
        tfnas.errors.InputError
            Before any training, naming what is wrong.
        tfnas.errors.TrialsFailedError
            When ``max_consecutive_failed_trials`` trials fail in a row (their
            reason is in the message; completed trials are kept).
        """
        x, y, validation_data = check_fit_inputs(self.local_oracle.space, x, y, validation_data, epochs,
                                                 batch_size, callbacks, fit_kwargs)  # fmt: skip
        self.local_oracle.set_proxy_data(x)
        if self.role == "chief":  # serve the oracle to the workers until every trial has ended
            self.save()
            address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
            serve(self.oracle, address)
            self.save()
            write_report(self.report(), Path(self.project_dir) / "report.json")
            return
        super().search(x, y, validation_data=validation_data, epochs=epochs, batch_size=batch_size,
                       callbacks=callbacks)  # fmt: skip

    def run_trial(self, trial, *args, **kwargs) -> dict:
        """Train, compress, convert and measure one candidate; on a worker, under a lease."""
        if self.role != "worker":
            return self._run_trial(trial, *args, **kwargs)
        with heartbeat(self.oracle, trial.trial_id, self.local_oracle.lease_seconds / 4):
            return self._run_trial(trial, *args, **kwargs)

    def _run_trial(self, trial, x, y, validation_data=None, epochs: int = 1, batch_size: int = 32,
                   callbacks=None, **_) -> dict:  # fmt: skip
        values = trial.hyperparameters.values
        genome = Genome.from_json(values["genome"])
        trial_dir = Path(self.get_trial_dir(trial.trial_id))
        x_val, y_val = validation_data if validation_data is not None else (x, y)
        start = time.perf_counter()
        model = build_model(genome, seed=self.local_oracle.seed + int(trial.trial_id))
        initial_epoch = int(values.get("tuner/initial_epoch", 0))
        epochs = int(values.get("tuner/epochs", epochs))
        if "tuner/data" in values:  # successive halving over the data as well as the epochs
            x, y = rung_subset(x, y, float(values["tuner/data"]), self.local_oracle.seed)
        parent = values.get("tuner/trial_id")
        if parent:  # successive halving: continue from the parent's weights
            model.load_weights(str(Path(self.get_trial_dir(parent)) / "weights.h5"))
        live = _LiveLine(trial.trial_id, epochs) if self._live() else None
        fit_callbacks = [
            *(callbacks or []),
            keras.callbacks.TensorBoard(log_dir=str(trial_dir / "logs")),
            *([live] if live else []),
        ]
        fit_recipe(model, x, y, epochs=epochs, initial_epoch=initial_epoch, batch_size=batch_size,
                   learning_rate=self.learning_rate, augment=self.augment,
                   seed=self.local_oracle.seed + int(trial.trial_id), validation_data=(x_val, y_val),
                   callbacks=fit_callbacks)  # fmt: skip
        val_accuracy = float(model.evaluate(x_val, y_val, verbose=0)[1])
        if not np.isfinite(val_accuracy) or _diverged(model):
            raise keras_tuner.errors.FailedTrialError("training diverged (NaN loss or weights)")
        model.save_weights(str(trial_dir / "weights.h5"))
        deployed = self._compress(model, x, y, batch_size)
        train_seconds = time.perf_counter() - start
        if live:
            live.show("converting to int8 and measuring the arena")
        tflite, metrics = measure_deployed(deployed, x, x_val, y_val, self.local_oracle.constraints,
                                           calibration_samples=self.calibration_samples,
                                           seed=self.local_oracle.seed, genome=genome,
                                           quantization=self.quantization)  # fmt: skip
        (trial_dir / "model.tflite").write_bytes(tflite)
        (trial_dir / "genome.json").write_text(genome.to_json(indent=1))
        metrics.update(val_accuracy=val_accuracy, train_seconds=train_seconds, epochs=float(epochs),
                       seconds=time.perf_counter() - start)  # fmt: skip
        keras.backend.clear_session()
        return metrics

    def _compress(self, model, x, y, batch_size: int):
        """The trained model as it is converted: pruned and QAT-fine-tuned when the tuner says so."""
        deployed = model
        if self.prune_sparsity:
            deployed = prune_magnitude(deployed, x, y, target_sparsity=self.prune_sparsity,
                                       batch_size=batch_size, learning_rate=self.learning_rate / 3)  # fmt: skip
        if self.quantization == "qat":
            deployed = quantize_aware(deployed, preserve_sparsity=bool(self.prune_sparsity))
            self._compile(deployed, self.learning_rate / 3)
            deployed.fit(x, y, epochs=1, batch_size=batch_size, verbose=0)
            match_pooling_ranges(deployed)
        return deployed

    def _live(self) -> bool:
        """A live line during each trial: only on a terminal, never on a worker."""
        return bool(self.verbose) and self.role != "worker" and sys.stdout.isatty()

    def _compile(self, model, learning_rate: float | None = None) -> None:
        model.compile(keras.optimizers.Adam(learning_rate or self.learning_rate),
                      "sparse_categorical_crossentropy", ["accuracy"])  # fmt: skip

    # ------------------------------------------------------------- re-scoring

    def rescore(self) -> list[str]:
        """Score every completed trial (and final fit) again under the oracle's constraints.

        A resumed search whose constraints differ from the saved ones calls
        this when the tuner is created: each saved ``model.tflite`` is measured
        again for the (possibly new) target and latency board, and
        ``feasible``, ``score``, the best trial and the Pareto front follow the
        new bounds. Accuracies are kept (the models are the same). The oracle
        state, ``final.json`` and ``report.json`` are rewritten.

        Returns
        -------
        list of str
            The trial ids re-scored.
        """
        constraints = self.oracle.constraints
        for trial in self.oracle.completed_trials():
            path = Path(self.get_trial_dir(trial.trial_id)) / "model.tflite"
            metrics = self.oracle.trial_metrics(trial)
            if not path.exists():  # a completed trial always has its model; be safe anyway
                continue
            fresh = score_flatbuffer(path.read_bytes(), metrics["int8_accuracy"], constraints)
            fresh.pop("measure_seconds")
            for name, value in fresh.items():
                trial.metrics.metrics.pop(name, None)
                trial.metrics.update(name, value)
            self.oracle.score_trial(trial)
            self.oracle._save_trial(trial)
            self.rescored.append(trial.trial_id)
        final = Path(self.project_dir) / "final.json"
        if final.exists():
            state = json.loads(final.read_text())
            for fit in state.get("fits", []):
                model = Path(self.project_dir) / "final" / fit["trial_id"] / "model.tflite"
                if fit.get("status") == "completed" and model.exists():
                    fresh = score_flatbuffer(model.read_bytes(), fit["int8_accuracy"], constraints)
                    for key in (*MEASURED, "latency_ms", "score"):
                        fit[key] = float(fresh[key])
                    fit["feasible"] = bool(fresh["feasible"])
            state["best"] = _final_best(state.get("fits", []))
            _write_json(final, state)
        self.oracle.saved_constraints = constraints.to_dict()
        self.oracle.save()
        write_report(self.report(), Path(self.project_dir) / "report.json")
        if self.verbose and self.rescored:
            logger.warning("constraints changed since this search was saved: %d completed trials "
                           "re-scored against %s", len(self.rescored), constraints.bounds())  # fmt: skip
        return list(self.rescored)

    # -------------------------------------------------------------- final fit

    def final_fit(self, x, y, validation_data=None, *, top_k: int = 1, epochs: int = 20,
                  batch_size: int = 32, learning_rate: float | None = None) -> dict:  # fmt: skip
        """Retrain the best ``top_k`` feasible architectures from scratch with the full recipe.

        Each is trained on ``(x, y)`` (pass the whole training split) for
        ``epochs`` with a cosine learning-rate schedule and the tuner's
        augmentation, then pruned and quantized as the trials were
        (``prune_sparsity``, ``quantization="qat"``) and converted and measured
        again exactly as a trial.
        Results go to ``PROJECT_DIR/final/<trial_id>/`` and ``PROJECT_DIR/final.json``;
        the report's ``final`` section and :meth:`get_final_tflite` read them. A
        fit already in ``final.json`` with the same settings is not redone, so
        an interrupted final fit resumes.

        Returns
        -------
        dict
            ``{"epochs", "batch_size", "fits": [...], "best": trial_id | None}``.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer. Received: epochs={epochs!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer. Received: top_k={top_k!r}")
        x_val, y_val = validation_data if validation_data is not None else (x, y)
        path = Path(self.project_dir) / "final.json"
        settings = {"epochs": epochs, "batch_size": batch_size,
                    "learning_rate": learning_rate or self.learning_rate}  # fmt: skip
        # Compression the final models get, as the trials did (named only when not the
        # default, so the final fits of a plain PTQ search saved before stay valid).
        if self.quantization != "ptq":
            settings["quantization"] = self.quantization
        if self.prune_sparsity:
            settings["prune_sparsity"] = self.prune_sparsity
        state = json.loads(path.read_text()) if path.exists() else {}
        done = (
            {f["trial_id"]: f for f in state.get("fits", [])}
            if state.get("settings") == settings
            else {}
        )
        fits = []
        for trial in self._final_candidates(top_k):
            if (
                trial.trial_id in done
                and (Path(self.project_dir) / "final" / trial.trial_id / "model.tflite").exists()
            ):
                fits.append(done[trial.trial_id])
                continue
            fits.append(self._final_one(trial, x, y, x_val, y_val, settings))
            _write_json(path, {"settings": settings, "fits": fits, "best": _final_best(fits)})
        result = {"settings": settings, "fits": fits, "best": _final_best(fits)}
        _write_json(path, result)
        report = self.report()
        write_report(report, Path(self.project_dir) / "report.json")
        return result

    def _final_candidates(self, top_k: int) -> list:
        """The best feasible completed trials, one per genome (promotions share their parent's)."""
        done = [
            t
            for t in self.oracle.completed_trials()
            if self.oracle.trial_metrics(t).get("feasible")
        ]
        done.sort(key=lambda t: (self.oracle.trial_metrics(t)["score"], t.trial_id))
        chosen, seen = [], set()
        for trial in done:
            key = self.oracle.trial_genome(trial).canonical_hash()
            if key not in seen:
                seen.add(key)
                chosen.append(trial)
        return chosen[:top_k]

    def _final_one(self, trial, x, y, x_val, y_val, settings: dict) -> dict:
        genome = self.oracle.trial_genome(trial)
        out = Path(self.project_dir) / "final" / trial.trial_id
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        model = build_model(genome, seed=self.oracle.seed + int(trial.trial_id))
        batch_size = settings["batch_size"]
        fit_recipe(model, x, y, epochs=settings["epochs"], batch_size=batch_size,
                   learning_rate=settings["learning_rate"], augment=self.augment,
                   seed=self.oracle.seed)  # fmt: skip
        val_accuracy = float(model.evaluate(x_val, y_val, verbose=0)[1])
        if not np.isfinite(val_accuracy) or _diverged(model):
            return {"trial_id": trial.trial_id, "status": "failed", "message": "training diverged"}
        model.save_weights(str(out / "weights.h5"))
        deployed = self._compress(model, x, y, batch_size)  # as the trials were: pruned, QAT
        tflite, metrics = measure_deployed(deployed, x, x_val, y_val, self.oracle.constraints,
                                           calibration_samples=self.calibration_samples,
                                           seed=self.oracle.seed, genome=genome,
                                           quantization=self.quantization)  # fmt: skip
        (out / "model.tflite").write_bytes(tflite)
        keras.backend.clear_session()
        search = self.oracle.trial_metrics(trial)
        row = {"trial_id": trial.trial_id, "status": "completed", "val_accuracy": val_accuracy,
               "search_int8_accuracy": float(search["int8_accuracy"]),
               "seconds": time.perf_counter() - start}  # fmt: skip
        for key in (*MEASURED, "latency_ms", "int8_accuracy", "score"):
            row[key] = float(metrics[key])
        row["feasible"] = bool(metrics["feasible"])
        return row

    def get_final_tflite(self) -> bytes | None:
        """The best final-fit model's flatbuffer (``None`` before :meth:`final_fit`)."""
        path = Path(self.project_dir) / "final.json"
        if not path.exists():
            return None
        best = json.loads(path.read_text()).get("best")
        if best is None:
            return None
        return (Path(self.project_dir) / "final" / best / "model.tflite").read_bytes()

    # -------------------------------------------------------------- progress

    def on_trial_end(self, trial) -> None:
        super().on_trial_end(trial)
        if self.role != "worker":  # on a worker, the chief keeps the report and prints the progress
            self._trial_ended(trial)

    def _trial_ended(self, trial) -> None:
        """The report after every ended trial, and its progress line (on the chief: via the oracle)."""
        report = self.report()
        write_report(report, Path(self.project_dir) / "report.json")
        if self.verbose:
            self._print_progress(trial, report)

    def _print_progress(self, trial, report: dict) -> None:
        row = next(r for r in report["trials"] if r["trial_id"] == trial.trial_id)
        done = sum(r["status"] == "completed" for r in report["trials"])
        if self._live():
            print("\r\x1b[K", end="")  # clear the live line
        if row["status"] != "completed":
            message = (trial.message or "").strip().splitlines()
            print(
                f"[tfnas] trial {trial.trial_id} {row['status']}: {message[-1] if message else ''}",
                file=sys.stderr,
            )
            return
        best = next((r for r in report["trials"] if r["trial_id"] == report["best"]), None)
        best_text = (f"best {best['trial_id']} acc {best['int8_accuracy']:.3f}" if best
                     else "no feasible trial yet")  # fmt: skip
        summary = self.oracle.trial_genome(trial).summary()
        if "rung" in row:  # successive halving: which rung, and from which parent
            parent = f" from {row['parent']}" if row.get("parent") else ""
            summary = f"rung {row['rung']} ({int(row['epochs'])} ep){parent} {summary}"
        if "worker" in row:
            summary = f"on {row['worker']} {summary}"
        print(
            f"[tfnas] trial {trial.trial_id} ({done}/{self.oracle.max_trials}) {summary[:48]:<48} "
            f"int8 acc {row['int8_accuracy']:.3f}  arena {row['arena_bytes']:>8,} B  flash {row['flash_bytes']:>8,} B  "
            f"MACs {row['macs']:>11,}  {'ok ' if row['feasible'] else 'OVER'} {row['seconds']:6.1f} s  "
            f"| {best_text}  rejected {len(report['rejected'])}",
            flush=True,
        )

    # --------------------------------------------------------------- results

    def report(self) -> dict:
        """The search report (also written to ``PROJECT_DIR/report.json`` after each trial)."""
        report = build_report(self.oracle, self.target)
        path = Path(self.project_dir) / "final.json"
        if path.exists():
            report["final"] = json.loads(path.read_text())
        return report

    def plot_pareto(self, path: str | os.PathLike) -> None:
        plot_pareto(self.report(), path)

    def load_model(self, trial) -> keras.Model:
        model = build_model(self.oracle.trial_genome(trial))
        model.load_weights(str(Path(self.get_trial_dir(trial.trial_id)) / "weights.h5"))
        return model

    def get_best_genomes(self, num_genomes: int = 1) -> list[Genome]:
        """Genomes of the best trials, best first."""
        return [self.oracle.trial_genome(t) for t in self.oracle.get_best_trials(num_genomes)]

    def get_best_tflite(self, num_models: int = 1) -> list[bytes]:
        """int8 flatbuffers of the best trials, best first."""
        trials = self.oracle.get_best_trials(num_models)
        return [
            (Path(self.get_trial_dir(t.trial_id)) / "model.tflite").read_bytes() for t in trials
        ]

    def search_space_summary(self, extended: bool = False) -> None:
        print(f"Search space: {self.oracle.space.name}")
        print(json.dumps(self.oracle.space.get_config(), indent=1 if extended else None))
        print(f"Constraints: {self.oracle.constraints.bounds()} on target {self.target}")

    def results_summary(self, num_trials: int = 10) -> None:
        report = self.report()
        print(f"Results in {self.project_dir}; objective {self.oracle.objective.name}; "
              f"{len(report['rejected'])} candidates rejected before training")  # fmt: skip
        print(
            f"{'trial':>6} {'int8 acc':>8} {'arena B':>9} {'flash B':>9} {'MACs':>11} feasible  pareto"
        )
        by_id = {r["trial_id"]: r for r in report["trials"]}
        for trial in self.oracle.get_best_trials(num_trials):
            r = by_id[trial.trial_id]
            print(f"{r['trial_id']:>6} {r['int8_accuracy']:8.3f} {r['arena_bytes']:9,} {r['flash_bytes']:9,} "
                  f"{r['macs']:11,} {str(r['feasible']):>8}  {'*' if r['trial_id'] in report['pareto'] else ''}")  # fmt: skip
        print(f"Pareto front hypervolume (normalised): {report['hypervolume']:.4f}")
