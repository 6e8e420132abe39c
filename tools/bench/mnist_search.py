"""MNIST under the μNAS bounds: tfnas random search and aging evolution against keras-tuner.

Bounds (μNAS's MNIST setting): 2,500 bytes of RAM counted as TFLM planned
bytes, 4,500 bytes of weights, 30 M MACs. Three strategies get the same trial
budget, epochs, seed and training subset:

- ``random``: :class:`tfnas.strategies.RandomSearchOracle` on the micro space;
- ``evolution``: :class:`tfnas.strategies.AgingEvolutionOracle` on the same space;
- ``keras_tuner``: a conventional hand-written CNN hypermodel sampled by
  keras-tuner's own ``RandomSearchOracle``, driven by a small ``BaseTuner``
  that runs the same train -> int8 PTQ -> exact TFLM measurement -> LiteRT
  int8 accuracy pipeline, with no screening before training.

Selection uses int8 accuracy on a validation split held out of the training
images; the best feasible model of each strategy is then scored on the test
images. The hypervolume is computed for every strategy against one common
reference: accuracy 0, and each resource at its bound, normalised by it.

    nice -n 5 python tools/bench/mnist_search.py --trials 16 --epochs 3 \\
        --train 10000 --val 2000 --out docs/mnist_search.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import numpy as np

BOUNDS = {"planned_bytes": 2_500, "weights_bytes": 4_500, "macs": 30_000_000}
#: The micro space every tfnas contender of these MNIST benches searches.
MICRO_SPACE = {
    "max_blocks": 4,
    "max_layers": 2,
    "max_channels": 16,
    "max_dense": 2,
    "max_units": 32,
}
HV_OBJECTIVES = (
    ("int8_accuracy", "max"),
    ("planned_bytes", "min"),
    ("weights_bytes", "min"),
    ("macs", "min"),
)


def build_cnn(hp):
    """A conventional small CNN: conv layers (optionally pooled), then a dense head."""
    from tfnas._tf import keras

    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    x = inputs
    for i in range(hp.Int("conv_layers", 1, 3)):
        with hp.conditional_scope("conv_layers", list(range(i + 1, 4))):
            stride = hp.Choice("first_stride", [1, 2]) if i == 0 else 1
            x = layers.Conv2D(hp.Int(f"filters_{i}", 2, 32, step=2), hp.Choice(f"kernel_{i}", [3, 5]),
                              strides=stride, padding="same", activation="relu")(x)  # fmt: skip
            if hp.Boolean(f"pool_{i}"):
                x = layers.MaxPooling2D(2)(x)
    if hp.Choice("head", ["gap", "flatten"]) == "gap":
        x = layers.GlobalAveragePooling2D()(x)
    else:
        x = layers.Flatten()(x)
    units = hp.Choice("dense_units", [0, 16, 32, 64])
    if units:
        x = layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def make_baseline_tuner():
    """The keras-tuner baseline: BaseTuner running tfnas's measurement pipeline, no screening."""
    import keras_tuner

    from tfnas._tf import keras
    from tfnas.tuner.tuner import measure_deployed

    class BaselineTuner(keras_tuner.engine.base_tuner.BaseTuner):
        def __init__(self, oracle, constraints, *, seed: int, learning_rate: float = 3e-3,
                     calibration_samples: int = 100, **kwargs) -> None:  # fmt: skip
            self.constraints, self.seed = constraints, seed
            self.learning_rate, self.calibration_samples = learning_rate, calibration_samples
            super().__init__(oracle, hypermodel=build_cnn, **kwargs)

        def run_trial(self, trial, x, y, validation_data=None, epochs=1, batch_size=32, **_):
            x_val, y_val = validation_data
            trial_dir = Path(self.get_trial_dir(trial.trial_id))
            trial_dir.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            keras.utils.set_random_seed(self.seed + int(trial.trial_id))
            model = build_cnn(trial.hyperparameters)
            model.compile(keras.optimizers.Adam(self.learning_rate),
                          "sparse_categorical_crossentropy", ["accuracy"])  # fmt: skip
            model.fit(x, y, validation_data=(x_val, y_val), epochs=epochs,
                      batch_size=batch_size, verbose=0)  # fmt: skip
            val_accuracy = float(model.evaluate(x_val, y_val, verbose=0)[1])
            train_seconds = time.perf_counter() - start
            tflite, metrics = measure_deployed(model, x, x_val, y_val, self.constraints,
                                               calibration_samples=self.calibration_samples,
                                               seed=self.seed)  # fmt: skip
            (trial_dir / "model.tflite").write_bytes(tflite)
            metrics.update(val_accuracy=val_accuracy, train_seconds=train_seconds,
                           seconds=time.perf_counter() - start)  # fmt: skip
            keras.backend.clear_session()
            done = sum(t.status == "COMPLETED" for t in self.oracle.trials.values())
            print(f"[keras_tuner] trial {trial.trial_id} ({done + 1}) int8 acc {metrics['int8_accuracy']:.3f} "
                  f"planned {metrics['planned_bytes']:,.0f} B weights {metrics['weights_bytes']:,.0f} B "
                  f"MACs {metrics['macs']:,.0f} {'ok' if metrics['feasible'] else 'OVER'} "
                  f"{metrics['seconds']:.1f} s", flush=True)  # fmt: skip
            return metrics

    return BaselineTuner


def trial_rows(oracle) -> list[dict]:
    """One row per trial: status and every metric, from any keras-tuner oracle."""
    from tfnas.tuner.tuner import MEASURED

    rows = []
    for trial_id in sorted(oracle.trials, key=int):
        trial = oracle.trials[trial_id]
        metrics = {name: trial.metrics.get_last_value(name) for name in trial.metrics.metrics}
        row = {"trial_id": trial_id, "status": str(trial.status).lower()}
        for key, value in metrics.items():
            row[key] = int(value) if key in MEASURED else float(value)
        if "feasible" in row:
            row["feasible"] = bool(row["feasible"])
        rows.append(row)
    return rows


def summarise(name, rows, rejected, wall, trial_dirs, test) -> dict:
    from tfnas.compress import evaluate_tflite
    from tfnas.objectives import hypervolume, pareto_front

    done = [r for r in rows if r["status"] == "completed"]
    feasible = [r for r in done if r["feasible"]]
    proposed = len(rows) + rejected
    normalised = [
        {k: (r[k] if d == "max" else r[k] / BOUNDS[k]) for k, d in HV_OBJECTIVES} for r in feasible
    ]
    reference = {k: (0.0 if d == "max" else 1.0) for k, d in HV_OBJECTIVES}
    front = [feasible[i]["trial_id"] for i in pareto_front(normalised, HV_OBJECTIVES)]
    best = max(feasible, key=lambda r: r["int8_accuracy"], default=None)
    best_out = None
    if best is not None:
        tflite = (Path(trial_dirs[best["trial_id"]]) / "model.tflite").read_bytes()
        best_out = {
            "trial_id": best["trial_id"],
            "val_int8_accuracy": best["int8_accuracy"],
            "test_int8_accuracy": evaluate_tflite(tflite, *test).accuracy,
            **{k: best[k] for k in ("planned_bytes", "weights_bytes", "macs", "flash_bytes")},
            "latency_ms": best["latency_ms"],
        }

    def total(key, subset=done):
        return float(sum(r.get(key, 0.0) for r in subset))

    in_trials = total("seconds")
    return {
        "strategy": name,
        "trials": len(rows),
        "completed": len(done),
        "failed": len(rows) - len(done),
        "feasible": len(feasible),
        "trained_infeasible": len(done) - len(feasible),
        "train_seconds_on_infeasible": total(
            "train_seconds", [r for r in done if not r["feasible"]]
        ),
        "rejected_before_training": rejected,
        "proposed": proposed,
        "rejected_share": rejected / proposed if proposed else 0.0,
        "best": best_out,
        "hypervolume": hypervolume(normalised, HV_OBJECTIVES, reference),
        "pareto": front,
        "wall_seconds": wall,
        "seconds": {
            "train": total("train_seconds"),
            "convert": total("convert_seconds"),
            "measure": total("measure_seconds"),
            "evaluate_and_write": in_trials
            - total("train_seconds")
            - total("convert_seconds")
            - total("measure_seconds"),
            "outside_trials": wall - in_trials,
        },  # fmt: skip
        "median_trial_seconds": statistics.median([r["seconds"] for r in done]) if done else None,
    }


def markdown(result: dict) -> str:
    lines = [
        "| strategy | trials (completed / failed) | rejected before training | trained but infeasible "
        "(training s spent on them) | best feasible int8 test acc | its planned B / weights B / MACs "
        "| hypervolume | wall s | train / convert / measure / other s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["strategies"].values():
        b, t = s["best"], s["seconds"]
        best = (f"**{b['test_int8_accuracy']:.4f}** | {b['planned_bytes']:,} / {b['weights_bytes']:,} / "
                f"{b['macs']:,}") if b else "none | -"  # fmt: skip
        other = t["evaluate_and_write"] + t["outside_trials"]
        lines.append(
            f"| {s['strategy']} | {s['trials']} ({s['completed']} / {s['failed']}) | "
            f"{s['rejected_before_training']} of {s['proposed']} ({100 * s['rejected_share']:.0f}%) | "
            f"{s['trained_infeasible']} ({s['train_seconds_on_infeasible']:.0f} s) | {best} | "
            f"{s['hypervolume']:.4f} | {s['wall_seconds']:.0f} | {t['train']:.0f} / {t['convert']:.0f} / "
            f"{t['measure']:.1f} / {other:.0f} |"
        )
    return "\n".join(lines)


def task_arguments(p: argparse.ArgumentParser, *, trials: int, epochs: int) -> None:
    """The data, budget, split and evolution options every MNIST search bench takes."""
    p.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[3] / "shared/data/mnist.npz")
    )
    p.add_argument("--trials", type=int, default=trials)
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train", type=int, default=10_000, help="training images (seeded subset)")
    p.add_argument("--val", type=int, default=2_000, help="validation images, held out of train")
    p.add_argument("--test", type=int, default=10_000, help="test images for the best models")
    p.add_argument("--population", type=int, default=10)
    p.add_argument("--sample", type=int, default=3)


def unas_constraints(device: str | None):
    """μNAS's MNIST bounds (``BOUNDS``) on ``cortex-m``; ``device`` is the latency model's board."""
    from tfnas.objectives import Constraints

    return Constraints(max_arena_bytes=BOUNDS["planned_bytes"], arena="planned",
                       max_weights_bytes=BOUNDS["weights_bytes"], max_macs=BOUNDS["macs"],
                       target="cortex-m", device=device)  # fmt: skip


def split(data, train: int, val: int, test: int, seed: int):
    """Seeded training images, a validation split held out of them, and a test subset."""
    order = np.random.default_rng(seed).permutation(len(data.x_train))
    tr, va = order[:train], order[train : train + val]
    te = np.sort(np.random.default_rng(seed + 1).permutation(len(data.x_test))[:test])
    return (data.x_train[tr], data.y_train[tr], (data.x_train[va], data.y_train[va]),
            (data.x_test[te], data.y_test[te]))  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    task_arguments(p, trials=16, epochs=3)
    p.add_argument("--device", default="arduino-nano-33-ble-sense", help="board for latency")
    p.add_argument("--strategies", default="random,evolution,keras_tuner")
    # keras-tuner's Oracle takes seed=0 as "no seed" and draws a random one: start at 1.
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", default="/tmp/tfnas_mnist_bench")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    import keras_tuner

    from tfnas.data import load_npz
    from tfnas.genome import MicroSpace
    from tfnas.strategies import AgingEvolutionOracle, RandomSearchOracle
    from tfnas.tuner import NASTuner

    data = load_npz(args.data)
    x, y, val, test = split(data, args.train, args.val, args.test, args.seed)
    constraints = unas_constraints(args.device)
    space_options = MICRO_SPACE
    space = MicroSpace((28, 28, 1), 10, **space_options)
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "config": {
            **{k: v for k, v in vars(args).items() if k != "out"},
            "bounds": BOUNDS,
            "constraints": constraints.to_dict(),
            "micro_space": space_options,
            "keras_tuner_space": "1-3 conv layers (2-32 filters step 2, kernel 3/5, optional 2x2 "
            "max pooling after each), first stride 1/2, head gap/flatten, dense 0/16/32/64 units",
            "hypervolume": "feasible trials; int8 val accuracy (max, ref 0) and planned bytes, "
            "weights bytes, MACs (min, each divided by its bound, ref 1)",
        },
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "strategies": {},
    }
    fit = {"validation_data": val, "epochs": args.epochs, "batch_size": args.batch_size}
    for name in args.strategies.split(","):
        start = time.perf_counter()
        if name in ("random", "evolution"):
            if name == "random":
                oracle = RandomSearchOracle(
                    space, constraints, max_trials=args.trials, seed=args.seed
                )
            else:
                oracle = AgingEvolutionOracle(space, constraints, max_trials=args.trials, seed=args.seed,
                                              population_size=args.population,
                                              sample_size=args.sample)  # fmt: skip
            tuner = NASTuner(oracle, directory=args.workdir, project_name=name, overwrite=True)
            tuner.search(x, y, **fit)
            rejected = len(oracle.rejected)
        elif name == "keras_tuner":
            oracle = keras_tuner.oracles.RandomSearchOracle(
                objective=keras_tuner.Objective("score", "min"), max_trials=args.trials,
                seed=args.seed)  # fmt: skip
            tuner = make_baseline_tuner()(oracle, constraints, seed=args.seed, directory=args.workdir,
                                          project_name=name, overwrite=True)  # fmt: skip
            tuner.search(x, y, **fit)
            rejected = 0
        else:
            p.error(f"unknown strategy {name!r}")
        wall = time.perf_counter() - start
        rows = trial_rows(oracle)
        dirs = {r["trial_id"]: tuner.get_trial_dir(r["trial_id"]) for r in rows}
        summary = summarise(name, rows, rejected, wall, dirs, test)
        result["strategies"][name] = {**summary, "oracle_seed": oracle.seed, "trial_rows": rows}
        print(json.dumps({k: v for k, v in summary.items()}), flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
