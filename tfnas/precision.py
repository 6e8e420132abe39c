"""Precision analysis of a finished search: every Pareto model in six number formats.

:func:`analyze_precision` is what ``tfnas precision RUN_DIR`` runs. Each model
on the run's Pareto front is rebuilt from its genome and trained weights and
converted to

===============  ===========================================================
``float32``      no quantisation
``float16``      float16 weights (dequantised to float32 at run time)
``dynamic``      dynamic-range quantisation: int8 weights, float activations
``int8``         full-integer post-training quantisation (what a search deploys)
``int8_qat``     int8 after a short quantization-aware fine-tuning (TF-MOT)
``int16x8``      16-bit activations, 8-bit weights
===============  ===========================================================

and measured: accuracy on the test split with LiteRT, flash (flatbuffer bytes),
the exact TFLM arena for each target, and whether TFLM runs the model at all.
That last answer rests on two pieces of evidence, and the reason string says
which one refused: the real TFLM interpreter (the ``tflite-micro`` package, a
host build with reference kernels, run in a child process) allocating the model
and invoking it on test samples, and tfnas's memory model, which refuses what a
target's kernels reject (for example CMSIS-NN's fully-connected kernel with
int16 activations and per-channel weights).

The results are saved as ``precision.json``, ``precision.md`` and
``precision.png`` (per-format Pareto fronts of accuracy against arena and
flash) in the run folder. Checking the run folder and the settings
(:func:`check_run`, :func:`check_formats`, :func:`check_targets`) needs no
TensorFlow, so bad input fails fast.

Examples
--------
>>> result = analyze_precision("tfnas_runs/search", qat_epochs=1)  # doctest: +SKIP
>>> print(format_precision(result))  # doctest: +SKIP
>>> write_precision(result, "tfnas_runs/search")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfnas.errors import InputError

__all__ = [
    "FORMATS",
    "FORMAT_LABELS",
    "TARGETS",
    "PrecisionRun",
    "check_formats",
    "check_targets",
    "check_run",
    "convert_format",
    "tflm_interpreter_check",
    "measure_format",
    "analyze_precision",
    "precision_fronts",
    "format_precision",
    "plot_precision",
    "write_precision",
]

logger = logging.getLogger("tfnas")

#: The formats, in the order of the table.
FORMATS = ("float32", "float16", "dynamic", "int8", "int8_qat", "int16x8")
FORMAT_LABELS = {
    "float32": "float32",
    "float16": "float16 weights",
    "dynamic": "dynamic range",
    "int8": "int8 PTQ",
    "int8_qat": "int8 QAT",
    "int16x8": "int16x8",
}
TARGETS = ("host", "cortex-m", "cortex-m-cmsis")

#: Arena given to the TFLM interpreter check (a host process; the exact need is reported apart).
_INTERPRETER_ARENA = 64 << 20


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """The formats to analyse, in table order (a comma-separated string or a sequence).

    Raises
    ------
    InputError
        If a name is not one of :data:`FORMATS` (the closest one is suggested)
        or none is given.
    """
    from tfnas.validation import closest

    names = [f.strip() for f in formats.split(",")] if isinstance(formats, str) else list(formats)
    names = [n for n in names if n]
    if not names:
        raise InputError(
            f"No format given. Expected some of {list(FORMATS)}. Received: {formats!r}"
        )
    for name in names:
        if name not in FORMATS:
            raise InputError(f"Unknown format {name!r}{closest(name, FORMATS)}. Expected some of "
                             f"{list(FORMATS)}. Received: {','.join(names)}")  # fmt: skip
    return tuple(f for f in FORMATS if f in names)


def check_targets(targets: str | Sequence[str]) -> tuple[str, ...]:
    """The TFLM targets to measure (``"all"`` for the three), in :data:`TARGETS` order.

    Raises
    ------
    InputError
        If a name is not a target.
    """
    from tfnas.validation import closest

    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else list(targets)
    names = [n for n in names if n]
    if names == ["all"]:
        return TARGETS
    if not names:
        raise InputError(f"No target given. Expected some of {list(TARGETS)} or 'all'. "
                         f"Received: {targets!r}")  # fmt: skip
    for name in names:
        if name not in TARGETS:
            raise InputError(f"Unknown target {name!r}{closest(name, TARGETS)}. Expected some of "
                             f"{list(TARGETS)} or 'all'. Received: {','.join(names)}")  # fmt: skip
    return tuple(t for t in TARGETS if t in names)


@dataclass(frozen=True)
class PrecisionRun:
    """A finished run, checked: its report, settings and the trials to analyse.

    Attributes
    ----------
    run_dir : Path
        The folder (``tfnas search --out``, or a :class:`~tfnas.tuner.NASTuner` project).
    report : dict
        Its ``report.json``.
    config : dict
        Its ``config.json`` (empty for a NASTuner project, which has none).
    trial_ids : tuple of str
        The Pareto front's trials (or those asked for), in report order.
    weights : dict
        Trial id -> path of its trained weights (``weights.h5``).
    """

    run_dir: Path
    report: dict
    config: dict
    trial_ids: tuple[str, ...]
    weights: dict

    def row(self, trial_id: str) -> dict:
        """The report's row of ``trial_id``."""
        return next(r for r in self.report["trials"] if r["trial_id"] == trial_id)


def check_run(run_dir: str | os.PathLike, trial_ids: Sequence[str] | None = None) -> PrecisionRun:
    """Check that ``run_dir`` holds a finished run with a Pareto front and trained weights.

    Parameters
    ----------
    run_dir:
        The ``--out`` folder of ``tfnas search`` (``report.json`` beside
        ``search/trial_*``) or a NASTuner project folder (``report.json``
        beside ``trial_*``).
    trial_ids:
        Completed trials to analyse instead of the Pareto front.

    Returns
    -------
    PrecisionRun

    Raises
    ------
    InputError
        If the folder or its ``report.json`` is missing or unreadable, the run
        has no Pareto front (no completed feasible trial), a trial is unknown
        or not completed, or a trial's weights are missing. Needs no TensorFlow.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(f"{run} is not a folder. Expected the --out folder of a finished "
                         f"`tfnas search`. Received: {run_dir}")  # fmt: skip
    path = run / "report.json"
    if not path.is_file():
        raise InputError(f"{path} does not exist. Expected the --out folder of a finished "
                         f"`tfnas search` (with report.json). Received: {run_dir}")  # fmt: skip
    try:
        report = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not valid JSON. Expected the report a search writes. "
                         f"Received: {' '.join(str(e).split())[:200]}") from e  # fmt: skip
    if not isinstance(report, dict) or not isinstance(report.get("trials"), list):
        raise InputError(f"{path} is not a search report. Expected an object with 'trials' and "
                         f"'pareto'. Received: {type(report).__name__}")  # fmt: skip
    rows = {r.get("trial_id"): r for r in report["trials"] if isinstance(r, dict)}
    done = [t for t, r in rows.items() if r.get("status") == "completed"]
    if trial_ids is None:
        chosen = [t for t in report.get("pareto") or [] if t in rows]
        if not chosen:
            feasible = sum(bool(rows[t].get("feasible")) for t in done)
            raise InputError(f"{path} has no Pareto front to analyse. Expected at least one "
                             f"completed feasible trial. Received: {len(done)} completed trials, "
                             f"{feasible} feasible")  # fmt: skip
    else:
        chosen = [str(t) for t in trial_ids]
        for t in chosen:
            if t not in done:
                raise InputError(f"Trial {t!r} is not a completed trial of {path}. Expected one of "
                                 f"{done}. Received: {t!r}")  # fmt: skip
    weights = {}
    for t in chosen:
        candidates = [
            run / "search" / f"trial_{t}" / "weights.h5",
            run / f"trial_{t}" / "weights.h5",
        ]
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise InputError(f"Trial {t}'s trained weights are missing. Expected {candidates[0]} "
                             f"(or {candidates[1]}). Received: neither exists")  # fmt: skip
        weights[t] = found
    config_path = run / "config.json"
    config = {}
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise InputError(f"{config_path} is not valid JSON. Expected the settings a search "
                             f"writes. Received: {' '.join(str(e).split())[:200]}") from e  # fmt: skip
    return PrecisionRun(run, report, config, tuple(chosen), weights)


def _run_data(run: PrecisionRun, data=None):
    """``(train, test)`` datasets as the search used them (its proxy subset for training)."""
    from tfnas.data import Dataset, load_digits, load_npz

    config = run.config
    if data is None:
        if not config:
            raise InputError(f"{run.run_dir} has no config.json, so the data it searched on is "
                             "unknown. Expected a `tfnas search` folder, or pass data=Dataset(...) "
                             "to analyze_precision. Received: no config.json")  # fmt: skip
        source = config.get("data")
        data = load_npz(source) if source else load_digits(seed=int(config.get("seed", 0)))
    if not isinstance(data, Dataset):
        raise InputError(f"data must be a tfnas.data.Dataset. Received: {type(data).__name__}")
    from tfnas.search import training_subset

    train = training_subset(data, config.get("proxy_samples"), config.get("strategy"),
                            int(config.get("seed", 0)))  # fmt: skip
    return train, data


def convert_format(model, fmt: str, x_train: np.ndarray, y_train: np.ndarray | None = None, *,
                   qat_epochs: int = 1, batch_size: int = 32, learning_rate: float = 1e-4,
                   calibration_samples: int = 100, seed: int = 0) -> bytes:  # fmt: skip
    """A trained float model as a flatbuffer in format ``fmt`` (one of :data:`FORMATS`).

    ``int8`` and ``int16x8`` are calibrated on ``calibration_samples`` of
    ``x_train`` (seeded, as every trial is). ``int8_qat`` wraps a copy of
    ``model`` for quantization-aware training, fine-tunes it ``qat_epochs`` on
    ``(x_train, y_train)`` with Adam at ``learning_rate``, gives each pooling
    layer its input's range (:func:`tfnas.compress.match_pooling_ranges`) and
    converts it to int8. ``model`` itself is not changed.

    Raises
    ------
    ConversionError
        If TF-MOT or the converter fails (e.g. the 'same scale constraint'
        of some QAT models); the message says which step and why.
    """
    from tfnas.compress import match_pooling_ranges, quantize_aware, to_tflite
    from tfnas.errors import ConversionError

    if fmt not in FORMATS:
        raise ConversionError(f"Unknown format. Expected one of {list(FORMATS)}. Received: {fmt!r}")
    if fmt != "int8_qat":
        return to_tflite(model, fmt, x_train, calibration_samples=calibration_samples, seed=seed)
    from tfnas._quiet import quiet
    from tfnas._tf import keras

    if y_train is None:
        raise ConversionError("int8_qat fine-tunes the model, so it needs y_train. Received: None")
    try:
        keras.utils.set_random_seed(seed)
        with quiet():
            qat = quantize_aware(model)
            qat.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                        ["accuracy"])  # fmt: skip
            qat.fit(x_train, y_train, epochs=qat_epochs, batch_size=batch_size, verbose=0)
        match_pooling_ranges(qat)
    except Exception as e:  # TF-MOT raises many types for layers it cannot wrap; keep the reason
        message = " ".join(str(e).split())[:400]
        raise ConversionError(
            f"Quantization-aware training failed: {type(e).__name__}: {message}"
        ) from e
    return to_tflite(qat, "int8", x_train, calibration_samples=calibration_samples, seed=seed)


_INTERPRETER_SCRIPT = r"""
import json, sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime

def say(**fields):
    print("\n@@TFNAS@@" + json.dumps(fields), flush=True)

model = open(sys.argv[1], "rb").read()
x = np.load(sys.argv[2])
try:
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[3]))
except Exception as e:
    say(stage="allocate", error=str(e))
    sys.exit(0)
inp, out = interpreter.get_input_details(0), interpreter.get_output_details(0)

def params(details):
    q = details["quantization_parameters"]
    scale = float(q["scales"][0]) if len(q["scales"]) else 0.0
    zero = int(q["zero_points"][0]) if len(q["zero_points"]) else 0
    return scale, zero

(in_scale, in_zero), (out_scale, out_zero) = params(inp), params(out)
outputs = []
for sample in x:
    value = sample[None].astype(np.float32)
    if np.issubdtype(inp["dtype"], np.integer):
        info = np.iinfo(inp["dtype"])
        value = np.clip(np.round(value / in_scale + in_zero), info.min, info.max)
    interpreter.set_input(value.astype(inp["dtype"]).reshape(inp["shape"]), 0)
    try:
        interpreter.invoke()
    except Exception as e:
        say(stage="invoke", error=str(e))
        sys.exit(0)
    y = interpreter.get_output(0).reshape(-1).astype(np.float64)
    if np.issubdtype(out["dtype"], np.integer):
        y = (y - out_zero) * out_scale
    outputs.append(y.tolist())
say(stage="done", outputs=outputs)
"""


def tflm_interpreter_check(tflite: bytes, x: np.ndarray, timeout: float = 120.0) -> dict | None:
    """Allocate and invoke ``tflite`` with the real TFLM interpreter on the samples ``x``.

    The ``tflite-micro`` package (a host build of TFLM with reference kernels)
    runs in a child process, so that a TFLM abort cannot take this one down.

    Returns
    -------
    dict or None
        ``None`` when the package is not installed. Otherwise ``{"ok", "stage",
        "error", "outputs"}``: ``ok`` is True when it allocated and invoked on
        every sample; ``stage`` is ``"allocate"``, ``"invoke"`` or ``"done"``;
        ``error`` holds TFLM's own log lines (e.g. ``Node FULLY_CONNECTED
        (number 12) failed to prepare with status 1``) when it failed; ``outputs``
        the dequantised outputs, one row per sample, when it succeeded.
    """
    import importlib.util

    if importlib.util.find_spec("tflite_micro") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="tfnas-tflm-") as tmp:
        model_path, x_path = Path(tmp) / "model.tflite", Path(tmp) / "x.npy"
        model_path.write_bytes(bytes(tflite))
        np.save(x_path, np.asarray(x, dtype=np.float32))
        cmd = [sys.executable, "-c", _INTERPRETER_SCRIPT, str(model_path), str(x_path),
               str(_INTERPRETER_ARENA)]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"ok": False, "stage": "invoke", "error": f"no answer within {timeout:g} s",
                    "outputs": None}  # fmt: skip
    text = done.stdout + "\n" + done.stderr
    fields = None
    log = []
    for line in text.splitlines():
        if line.startswith("@@TFNAS@@"):
            fields = json.loads(line[len("@@TFNAS@@") :])
        elif line.strip() and "Traceback" not in line and not line.startswith("  "):
            log.append(line.strip())
    if fields is None:
        why = (
            f"signal {-done.returncode}" if done.returncode < 0 else f"exit code {done.returncode}"
        )
        return {"ok": False, "stage": "allocate", "outputs": None,
                "error": f"the interpreter process died ({why}): " + "; ".join(log[-3:])}  # fmt: skip
    if fields["stage"] == "done":
        return {"ok": True, "stage": "done", "error": None, "outputs": fields["outputs"]}
    lines = [line.rstrip(".") for line in [*log[-4:], fields.get("error") or ""] if line]
    return {"ok": False, "stage": fields["stage"], "outputs": None, "error": "; ".join(lines)}


def measure_format(tflite: bytes, x_test: np.ndarray, y_test: np.ndarray,
                   targets: Sequence[str] = TARGETS, *, tflm_samples: int = 32) -> dict:  # fmt: skip
    """Accuracy, flash, exact arena per target and TFLM's verdict for one flatbuffer.

    Parameters
    ----------
    tflite:
        The model, in any of the six formats.
    x_test, y_test:
        The test split; accuracy is LiteRT's on all of it.
    targets:
        TFLM targets to measure (:data:`TARGETS`).
    tflm_samples:
        Test samples the real TFLM interpreter runs (0 skips the interpreter);
        its predicted classes are compared with LiteRT's (``agreement``).

    Returns
    -------
    dict
        ``accuracy``, ``flash_bytes``, ``weights_bytes``, and per target
        ``arena_bytes``, ``min_arena_bytes``, ``exact`` (None where refused)
        and ``tflm`` (``{"runs": bool, "reason": str | None}``), plus
        ``interpreter``: the real interpreter's result (``None`` when
        ``tflite-micro`` is not installed or ``tflm_samples`` is 0) with
        ``agreement`` in place of its outputs.
    """
    from tfnas.compress import predict_tflite
    from tfnas.errors import UnsupportedModelError
    from tfnas.inspection import inspect
    from tfnas.tflite.model import read_model

    scores = predict_tflite(tflite, x_test)
    predicted = scores.argmax(axis=-1)
    row: dict = {
        "accuracy": float(np.mean(predicted == np.asarray(y_test).reshape(-1))),
        "flash_bytes": len(tflite),
        "weights_bytes": int(read_model(tflite).weights_bytes),
        "arena_bytes": {}, "min_arena_bytes": {}, "exact": {}, "tflm": {},
    }  # fmt: skip
    interpreter = None
    if tflm_samples > 0:
        n = min(tflm_samples, len(x_test))
        interpreter = tflm_interpreter_check(tflite, x_test[:n])
        if interpreter is not None:
            outputs = interpreter.pop("outputs")
            interpreter["samples"] = n
            interpreter["agreement"] = (
                float(np.mean(np.asarray(outputs).argmax(axis=-1) == predicted[:n]))
                if outputs is not None
                else None
            )
    row["interpreter"] = interpreter
    for target in targets:
        refused = None
        try:
            report = inspect(tflite, target=target)
        except UnsupportedModelError as e:
            refused = f"tfnas memory model ({target}): {' '.join(str(e).split())}"
            report = None
        for key in ("arena_bytes", "min_arena_bytes", "exact"):
            row[key][target] = report[key] if report else None
        if interpreter is not None and not interpreter["ok"]:
            verdict = {"runs": False,
                       "reason": f"TFLM interpreter ({interpreter['stage']}): {interpreter['error']}"}  # fmt: skip
        elif refused:
            verdict = {"runs": False, "reason": refused}
        else:
            verdict = {"runs": True, "reason": None}
        row["tflm"][target] = verdict
    return row


def analyze_precision(
    run_dir: str | os.PathLike,
    formats: Sequence[str] = FORMATS,
    targets: Sequence[str] = TARGETS,
    *,
    qat_epochs: int = 1,
    qat_learning_rate: float = 1e-4,
    trial_ids: Sequence[str] | None = None,
    data=None,
    test_samples: int | None = None,
    tflm_samples: int = 32,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """Convert and measure every Pareto model of a finished run in each format.

    Parameters
    ----------
    run_dir:
        A finished run (see :func:`check_run`).
    formats, targets:
        Subsets of :data:`FORMATS` and :data:`TARGETS`.
    qat_epochs, qat_learning_rate:
        Quantization-aware fine-tuning for ``int8_qat``: epochs, and Adam's
        learning rate (1e-4 by default, near where a trial's cosine schedule
        ends; on MNIST, 1e-3 cost well-trained models a point of accuracy).
    trial_ids:
        Trials to analyse instead of the Pareto front.
    data:
        A :class:`tfnas.data.Dataset`; default: the run's own (its
        ``config.json``), with the same training subset and seed as the search.
    test_samples:
        Score on a seeded subset of the test split (default: all of it, as the search did).
    tflm_samples:
        Test samples the real TFLM interpreter runs per model (0: none).
    progress:
        Called with each row as it is measured.

    Returns
    -------
    dict
        JSON-ready: ``rows`` (one per trial and format; a format that could not
        be produced has ``status`` ``"failed"`` and its ``reason``), ``fronts``
        (per format, the trials on the 2-D fronts of accuracy against arena
        and against flash), ``at_budget`` (per format, the best accuracy within
        the run's arena bound), and the settings.

    Raises
    ------
    InputError
        If the run, a format, a target or a setting is wrong (before any model is built).
    """
    from tfnas.validation import check_int, check_number

    formats = check_formats(formats)
    targets = check_targets(targets)
    check_int("qat_epochs", qat_epochs, 1)
    if not check_number("qat_learning_rate", qat_learning_rate, 0.0) > 0:
        raise InputError(f"qat_learning_rate must be positive. Received: "
                         f"qat_learning_rate={qat_learning_rate!r}")  # fmt: skip
    check_int("tflm_samples", tflm_samples, 0)
    check_int("test_samples", test_samples, 1, optional=True)
    run = check_run(run_dir, trial_ids)
    train, data = _run_data(run, data)
    seed = int(run.config.get("seed", 0))
    if test_samples:
        data = data.subset(test=test_samples, seed=seed)
    batch_size = int(run.config.get("batch_size", 32))

    from tfnas._tf import keras
    from tfnas.errors import ConversionError
    from tfnas.genome import Genome
    from tfnas.model import build_model
    from tfnas.tuner.tuner import deploy_order

    rows = []
    for trial_id in run.trial_ids:
        source = run.row(trial_id)
        genome = Genome.from_dict(source["genome"])
        model = build_model(genome)
        model.load_weights(str(run.weights[trial_id]))
        for fmt in formats:
            start = time.perf_counter()
            row = {"trial_id": trial_id, "format": fmt, "label": FORMAT_LABELS[fmt]}
            try:
                tflite = convert_format(model, fmt, train.x_train, train.y_train,
                                        qat_epochs=qat_epochs, learning_rate=qat_learning_rate,
                                        batch_size=batch_size, seed=seed)  # fmt: skip
            except ConversionError as e:
                row.update(status="failed", reason=" ".join(str(e).split()),
                           seconds=time.perf_counter() - start)  # fmt: skip
                logger.info("precision: trial %s %s failed: %s", trial_id, fmt, row["reason"])
            else:
                if fmt in ("float32", "int8", "int8_qat", "int16x8"):  # the order tfnas deploys
                    tflite = deploy_order(tflite, genome, "qat" if fmt == "int8_qat" else "ptq")
                try:
                    measured = measure_format(tflite, data.x_test, data.y_test, targets,
                                              tflm_samples=tflm_samples)  # fmt: skip
                except (RuntimeError, ValueError) as e:  # LiteRT cannot run it: a row, not a crash
                    message = " ".join(str(e).split())[:400]
                    row.update(status="failed", reason=f"LiteRT could not run it: {message}")
                else:
                    row.update(status="ok", reason=None, **measured)
                row["seconds"] = time.perf_counter() - start
            rows.append(row)
            if progress:
                progress(row)
        keras.backend.clear_session()
    result = {
        "run_dir": str(run.run_dir),
        "dataset": data.name,
        "test_samples": len(data.x_test),
        "trials": list(run.trial_ids),
        "formats": list(formats),
        "targets": list(targets),
        "plot_target": _plot_target(run, targets),
        "qat_epochs": qat_epochs,
        "qat_learning_rate": qat_learning_rate,
        "tflm_samples": tflm_samples,
        "interpreter": _interpreter_version(),
        "search": {
            t: {
                k: run.row(t).get(k)
                for k in ("val_accuracy", "int8_accuracy", "arena_bytes", "flash_bytes")
            }
            for t in run.trial_ids
        },  # fmt: skip
        "arena_bound": (run.report.get("constraints") or {}).get("max_arena_bytes"),
        "rows": rows,
    }
    result["fronts"] = precision_fronts(rows, result["plot_target"])
    result["at_budget"] = _at_budget(rows, result["plot_target"], result["arena_bound"])
    return result


def _plot_target(run: PrecisionRun, targets: Sequence[str]) -> str:
    """The run's own target where it was measured, else the first measured."""
    own = run.report.get("target") or run.config.get("target")
    return own if own in targets else targets[0]


def _interpreter_version() -> str | None:
    try:
        from importlib.metadata import version

        return f"tflite-micro {version('tflite-micro')}"
    except Exception:  # not installed (or no metadata): the memory model alone decides
        return None


def _front(rows: Sequence[dict], cost) -> list[str]:
    """Trial ids on the 2-D front of accuracy (max) against ``cost`` (min), by increasing cost."""
    from tfnas.objectives.pareto import front_2d

    return [
        r["trial_id"]
        for r in front_2d(rows, cost, lambda r: r["accuracy"], lambda r: r["trial_id"])
    ]


def precision_fronts(rows: Sequence[dict], target: str) -> dict:
    """Per format, the trials on the fronts of accuracy against arena (on ``target``) and flash.

    Only measured rows count; the arena front only holds rows TFLM runs on
    ``target`` (a refused format has no arena, so its arena front is empty).

    Returns
    -------
    dict
        ``{format: {"arena": [trial_id, ...], "flash": [trial_id, ...]}}``,
        each list by increasing cost.
    """
    fronts = {}
    for fmt in dict.fromkeys(r["format"] for r in rows):
        ok = [r for r in rows if r["format"] == fmt and r["status"] == "ok"]
        runs = [r for r in ok if r["tflm"].get(target, {}).get("runs")]
        fronts[fmt] = {
            "arena": _front(runs, lambda r: r["arena_bytes"][target]),
            "flash": _front(ok, lambda r: r["flash_bytes"]),
        }
    return fronts


def _at_budget(rows: Sequence[dict], target: str, bound: int | None) -> dict:
    """Per format, the best accuracy (and its trial) among the models TFLM runs within ``bound``."""
    if not bound:
        return {}
    best = {}
    for fmt in dict.fromkeys(r["format"] for r in rows):
        fits = [r for r in rows if r["format"] == fmt and r["status"] == "ok"
                and r["tflm"].get(target, {}).get("runs") and r["arena_bytes"][target] <= bound]  # fmt: skip
        top = max(fits, key=lambda r: (r["accuracy"], -r["arena_bytes"][target]), default=None)
        best[fmt] = (
            {"trial_id": top["trial_id"], "accuracy": top["accuracy"],
             "arena_bytes": top["arena_bytes"][target]}
            if top else None
        )  # fmt: skip
    return best


def _kind(reason: str) -> str:
    """A reason without its operator numbers, so that one cause is listed once for every model."""
    return re.sub(r"\b(operator|number) \d+", r"\1 #", reason)


def _notes(result: dict) -> tuple[dict, list[str]]:
    """Numbered reasons: ``{reason: number}`` and the lines that list them (one per cause)."""
    numbers: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for r in result["rows"]:
        reasons = [r["reason"]] if r["status"] != "ok" else [
            v["reason"] for v in r["tflm"].values() if v["reason"]]  # fmt: skip
        for reason in reasons:
            numbers[reason] = kinds.setdefault(_kind(reason), len(kinds) + 1)
    return numbers, [f"[{n}] {kind}" for kind, n in kinds.items()]


def _tflm_cell(row: dict, numbers: dict) -> str:
    if row["status"] != "ok":
        return f"not converted [{numbers[row['reason']]}]"
    verdicts = row["tflm"]
    refused = {t: v["reason"] for t, v in verdicts.items() if not v["runs"]}
    if not refused:
        agreement = (row.get("interpreter") or {}).get("agreement")
        return "runs" + (f" (agrees {agreement:.0%})" if agreement is not None else "")
    marks = ",".join(sorted({str(numbers[reason]) for reason in refused.values()}))
    where = "refused" if len(refused) == len(verdicts) else "refused on " + ", ".join(refused)
    return f"{where} [{marks}]"


def _cells(result: dict) -> tuple[list[str], list[list[str]], list[str]]:
    numbers, notes = _notes(result)
    head = ["trial", "format", "accuracy", "flash B", "weights B",
            *[f"arena B {t}" for t in result["targets"]], "TFLM"]  # fmt: skip
    body = []
    for r in result["rows"]:
        if r["status"] != "ok":
            body.append([r["trial_id"], r["label"], "-", "-", "-",
                         *["-" for _ in result["targets"]], _tflm_cell(r, numbers)])  # fmt: skip
            continue
        arenas = []
        for t in result["targets"]:
            value = r["arena_bytes"][t]
            arenas.append(
                "refused" if value is None else f"{value:,}" + ("" if r["exact"][t] else "*")
            )
        body.append([r["trial_id"], r["label"], f"{r['accuracy']:.4f}", f"{r['flash_bytes']:,}",
                     f"{r['weights_bytes']:,}", *arenas, _tflm_cell(r, numbers)])  # fmt: skip
    return head, body, notes


def _evidence_line(result: dict) -> str:
    if result.get("interpreter") and result.get("tflm_samples"):
        return (f"TFLM: the {result['interpreter']} interpreter (host, reference kernels) allocated "
                f"and invoked each model on {result['tflm_samples']} test samples ('agrees': its "
                "classes against LiteRT's), and tfnas's memory model checked each target's kernels.")  # fmt: skip
    return ("TFLM: tfnas's memory model checked each target's kernels; the TFLM interpreter was not "
            "run (install tflite-micro for that evidence).")  # fmt: skip


def _budget_line(result: dict) -> str | None:
    best = result.get("at_budget") or {}
    if not best:
        return None
    parts = [f"{FORMAT_LABELS[f]} {v['accuracy']:.4f} (trial {v['trial_id']}, {v['arena_bytes']:,} B)"
             if v else f"{FORMAT_LABELS[f]} none" for f, v in best.items()]  # fmt: skip
    return (
        f"Best accuracy within the run's arena bound of {result['arena_bound']:,} B on "
        f"{result['plot_target']}: " + "; ".join(parts) + "."
    )


def format_precision(result: dict) -> str:
    """The analysis as a fixed-width text table, with numbered reasons below it."""
    head, body, notes = _cells(result)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i in (1, len(head) - 1) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()
             for row in [head, *body]]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        f"accuracy: LiteRT on {result['test_samples']:,} test samples of {result['dataset']}; "
        "arena: TFLM arena_used_bytes() as tfnas models it (* an upper bound where not exact)",
        _evidence_line(result),
    ]
    budget = _budget_line(result)
    if budget:
        lines.append(budget)
    return "\n".join([*lines, *notes])


def _markdown(result: dict) -> str:
    head, body, notes = _cells(result)
    lines = [
        f"# Precision analysis of {result['run_dir']}",
        "",
        f"Pareto trials {', '.join(result['trials'])} of the run, each converted to "
        f"{len(result['formats'])} formats (int8 QAT: {result['qat_epochs']} epoch(s) of "
        f"quantization-aware fine-tuning at learning rate {result['qat_learning_rate']:g}). Accuracy: LiteRT on {result['test_samples']:,} test "
        f"samples of {result['dataset']}. Arena: TFLM's arena_used_bytes() as tfnas models it "
        "(* an upper bound where not exact). " + _evidence_line(result),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *["| " + " | ".join(row) + " |" for row in body],
        "",
    ]
    budget = _budget_line(result)
    if budget:
        lines += [budget, ""]
    if notes:
        lines += ["Reasons:", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


_COLOURS = {"float32": "tab:blue", "float16": "tab:cyan", "dynamic": "tab:purple",
            "int8": "tab:red", "int8_qat": "tab:orange", "int16x8": "tab:green"}  # fmt: skip


def plot_precision(result: dict, path: str | os.PathLike) -> None:
    """Per-format fronts of accuracy against arena (plot target) and flash, in one figure.

    Each format has a colour: its models as dots and its 2-D front as a step
    line. Formats TFLM refuses on the plot target have no arena, so the arena
    panel leaves them out (its legend says so); in the flash panel they are
    drawn hollow with a dashed front.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import EngFormatter

    target = result["plot_target"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    left_out = []
    for fmt in result["formats"]:
        ok = [r for r in result["rows"] if r["format"] == fmt and r["status"] == "ok"]
        if not ok:
            left_out.append(f"{FORMAT_LABELS[fmt]} (not converted)")
            continue
        colour = _COLOURS[fmt]
        runs = [r for r in ok if r["tflm"][target]["runs"]]
        fronts = result["fronts"][fmt]
        for ax, key, rows, front in ((axes[0], "arena", runs, fronts["arena"]),
                                     (axes[1], "flash", ok, fronts["flash"])):  # fmt: skip
            if not rows:
                continue

            def cost(r, key=key):
                return r["arena_bytes"][target] if key == "arena" else r["flash_bytes"]

            refused = key == "flash" and not runs
            label = FORMAT_LABELS[fmt] + (" (TFLM refuses)" if refused else "")
            by_id = {r["trial_id"]: r for r in rows}
            line = [by_id[t] for t in front]
            ax.step([cost(r) for r in line], [r["accuracy"] for r in line], where="post",
                    c=colour, lw=1.4, ls="--" if refused else "-")  # fmt: skip
            ax.scatter([cost(r) for r in rows], [r["accuracy"] for r in rows], s=30, label=label,
                       facecolors="none" if refused else colour, edgecolors=colour, zorder=3)  # fmt: skip
        if not runs:
            left_out.append(f"{FORMAT_LABELS[fmt]} (TFLM refuses)")
    axes[0].set_xlabel(f"TFLM arena bytes ({target})")
    axes[1].set_xlabel("flash bytes (flatbuffer)")
    axes[0].set_ylabel(f"test accuracy ({result['dataset']})")
    for ax in axes:
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(alpha=0.3)
    if result.get("arena_bound"):
        axes[0].axvline(result["arena_bound"], ls=":", c="k", lw=1, label="the run's arena bound")
    for ax in axes:
        ax.legend(fontsize=7, loc="lower right")
    if left_out:
        axes[0].set_title("left out: " + ", ".join(left_out), fontsize=8)
    fig.suptitle(f"Per-format Pareto fronts of the run's {len(result['trials'])} Pareto models")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_precision(result: dict, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``precision.json``, ``precision.md`` and ``precision.png`` into ``out_dir``.

    Returns
    -------
    list of Path
        The files written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "precision.json", out / "precision.md", out / "precision.png"]
    tmp = paths[0].with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, paths[0])
    paths[1].write_text(_markdown(result))
    plot_precision(result, paths[2])
    return paths
