"""Per-candidate work beyond training, against the converter's own time.

For seeded genomes of the MNIST benchmark's space and bounds, this runs what
``NASTuner`` does for each candidate except training, and times each step:

- ``propose``: the oracle proposing and screening genomes until one passes
  (:func:`tfnas.strategies.core.screen` on every proposal);
- ``build``: the tf_keras model from the genome (shown, not counted: training
  needs it too);
- ``trace``: ``to_tflite``'s own work around the converter (tracing a
  batch-1 function, calibration samples);
- ``converter``: ``TFLiteConverter.convert()`` itself, the reference;
- ``measure``: reading the flatbuffer, the exact TFLM plan (``inspect``) and
  the latency model;
- ``litert_setup``: building and allocating the LiteRT interpreter;
- ``evaluate``: LiteRT int8 accuracy on the validation images (shown, not
  counted: it is a measurement the search needs, and grows with the split);
- ``bookkeeping``: keras-tuner's ``update_trial``/``end_trial`` (it saves the
  oracle and the trial as JSON);
- ``report``: building and writing the search report, as ``on_trial_end`` does.

The overhead is ``propose + trace + measure + litert_setup + bookkeeping +
report``, reported as a ratio to ``converter`` (medians over candidates).

    python tools/bench/overhead.py --count 20 --out docs/overhead.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COUNTED = ("propose", "trace", "measure", "litert_setup", "bookkeeping", "report")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--val", type=int, default=2_000, help="validation images for the evaluation")
    p.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[3] / "shared/data/mnist.npz")
    )
    # keras-tuner's Oracle takes seed=0 as "no seed" and draws a random one: start at 1.
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    import keras_tuner
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from tfnas._tf import keras, tf
    from tfnas.compress import evaluate_tflite, to_tflite
    from tfnas.data import load_npz
    from tfnas.genome import MicroSpace
    from tfnas.inspection import inspect
    from tfnas.model import build_model
    from tfnas.objectives import Constraints
    from tfnas.objectives.latency import estimate_latency, kernels_for_target
    from tfnas.strategies import RandomSearchOracle
    from tfnas.tflite.model import read_model
    from tfnas.tuner import build_report, write_report

    converter_seconds: list[float] = []
    original = tf.lite.TFLiteConverter.from_concrete_functions

    def timed_converter(funcs, trackable_obj=None):
        converter = original(funcs, trackable_obj)
        convert = converter.convert

        def timed():
            start = time.perf_counter()
            try:
                return convert()
            finally:
                converter_seconds.append(time.perf_counter() - start)

        converter.convert = timed
        return converter

    tf.lite.TFLiteConverter.from_concrete_functions = staticmethod(timed_converter)

    data = load_npz(args.data)
    rng = np.random.default_rng(args.seed)
    x_cal = data.x_train[rng.choice(len(data.x_train), 1_000, replace=False)]
    val = rng.choice(len(data.x_test), args.val, replace=False)
    x_val, y_val = data.x_test[val], data.y_test[val]
    constraints = Constraints(max_arena_bytes=2_500, arena="planned", max_weights_bytes=4_500,
                              max_macs=30_000_000, target="cortex-m")  # fmt: skip
    space = MicroSpace((28, 28, 1), 10, max_blocks=4, max_layers=2, max_channels=16, max_dense=2,
                       max_units=32)  # fmt: skip
    oracle = RandomSearchOracle(space, constraints, max_trials=args.count, seed=args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="tfnas_overhead_"))
    oracle._set_project_dir(str(workdir), "p")
    done = keras_tuner.engine.trial.TrialStatus.COMPLETED

    rows = []
    for i in range(args.count):
        row: dict[str, float | int | str] = {"candidate": i}
        t = time.perf_counter()
        trial = oracle.create_trial("tuner0")
        row["propose"] = time.perf_counter() - t
        genome = oracle.trial_genome(trial)

        t = time.perf_counter()
        model = build_model(genome, seed=args.seed + i)
        row["build"] = time.perf_counter() - t

        before = len(converter_seconds)
        t = time.perf_counter()
        tflite = to_tflite(model, "int8", x_cal, calibration_samples=100, seed=args.seed)
        total = time.perf_counter() - t
        row["converter"] = sum(converter_seconds[before:])
        row["trace"] = total - row["converter"]

        t = time.perf_counter()
        parsed = read_model(tflite)
        report = inspect(parsed, target=constraints.target)
        latency = estimate_latency(parsed, constraints.latency_device,
                                   kernels=kernels_for_target(constraints.target))  # fmt: skip
        row["measure"] = time.perf_counter() - t

        t = time.perf_counter()
        interpreter = Interpreter(
            model_content=tflite,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interpreter.allocate_tensors()
        row["litert_setup"] = time.perf_counter() - t

        t = time.perf_counter()
        accuracy = evaluate_tflite(tflite, x_val, y_val).accuracy
        row["evaluate"] = time.perf_counter() - t

        metrics = {k: float(report[k]) for k in ("planned_bytes", "persistent_bytes", "arena_bytes",
                   "min_arena_bytes", "flash_bytes", "weights_bytes", "macs", "params")}  # fmt: skip
        metrics.update(latency_ms=latency.latency_ms, val_accuracy=accuracy, int8_accuracy=accuracy,
                       score=1.0 - accuracy, feasible=float(constraints.feasible(metrics)),
                       seconds=1.0, train_seconds=0.0, convert_seconds=total,
                       measure_seconds=row["measure"])  # fmt: skip
        t = time.perf_counter()
        oracle.update_trial(trial.trial_id, metrics)
        trial.status = done
        oracle.end_trial(trial)
        row["bookkeeping"] = time.perf_counter() - t

        t = time.perf_counter()
        write_report(build_report(oracle, constraints.target), workdir / "p" / "report.json")
        row["report"] = time.perf_counter() - t

        row["overhead"] = sum(row[k] for k in COUNTED)
        row["ratio"] = row["overhead"] / row["converter"]
        row.update(macs=int(report["macs"]), ops=len(report["ops"]), trials_in_report=i + 1)
        rows.append(row)
        keras.backend.clear_session()
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
              flush=True)  # fmt: skip

    keys = ("propose", "build", "trace", "converter", "measure", "litert_setup", "evaluate",
            "bookkeeping", "report", "overhead", "ratio")  # fmt: skip
    medians = {k: statistics.median(float(r[k]) for r in rows) for k in keys}
    summary = {
        "candidates": len(rows),
        "rejected_before_training": len(oracle.rejected),
        "median_seconds": medians,
        "ratio_of_medians": medians["overhead"] / medians["converter"],
        "median_ratio": medians["ratio"],
        "max_ratio": max(float(r["ratio"]) for r in rows),
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps({"summary": summary, "candidates": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
