"""MNIST under the μNAS bounds at an equal wall-clock budget per run, then one final-fit recipe.

Contenders, each given the same budget of wall time, training subset, seed and
validation split (``tools/bench/mnist_search.py`` holds the shared pieces):

- ``micronas``: :class:`tfnas.strategies.MicroNASOracle` on the micro space
  (zero-shot ranking of ``--pool`` screened candidates, then training in rank
  order with successive halving, 1 -> 3 -> ``--top-epochs`` epochs);
- ``evolution_fast``: aging evolution with proxy pre-ranking (``proxy_pool``)
  and the same successive halving;
- ``evolution``: plain aging evolution, every candidate trained ``--epochs``;
- ``kt_random``: keras-tuner's own RandomSearch, every candidate trained ``--epochs``;
- ``kt_hyperband``: keras-tuner's own Hyperband (factor 3, ``max_epochs=--top-epochs``).
  Both keras-tuner contenders search a conventional CNN hypermodel written for
  these bounds (stride-2 first layer, 2-16 filters), with no screening.

A run stops starting trials once its budget is spent (the trial in progress
finishes). The best feasible trial by validation int8 accuracy is scored on the
test images, then retrained from scratch with one recipe for everyone
(``--final-data full``: the task's whole training split, 60,000 images for
MNIST, which holds the search's training and validation images but no test
image; ``search``: those 12,000 only; ``--final-epochs`` epochs, Adam with
cosine decay, 2-pixel shifts) and scored again. Each contender writes one JSON file;
``--merge`` combines them into a table.

    taskset -c 0 python tools/bench/mnist_budget.py --contender evolution --budget 1200 \\
        --seed 1 --out /tmp/budget/evolution_1.json
    taskset -c 0 python tools/bench/mnist_budget.py --contender micronas --train 50000 --min-data 0.2 ...
    taskset -c 0 python tools/bench/mnist_budget.py --task cifar --contender evolution_fast ...
    python tools/bench/mnist_budget.py --merge /tmp/budget/*.json --out docs/mnist_budget.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mnist_search as shared  # noqa: E402
from proxy_correlation import _spearman  # noqa: E402

CONTENDERS = ("micronas", "evolution_fast", "evolution", "kt_random", "kt_hyperband")
#: μNAS's bounds per task (planned bytes stand for RAM, int8 weight bytes for model size) and
#: the micro-space settings the tfnas contenders search.
TASKS = {
    "mnist": {"data": "mnist.npz", "bounds": shared.BOUNDS,
              "space": {"max_blocks": 4, "max_layers": 2, "max_channels": 16, "max_dense": 2, "max_units": 32}},
    "cifar": {"data": "cifar10_jpeg75_10k_2k.npz",
              "bounds": {"planned_bytes": 75_000, "weights_bytes": 75_000, "macs": 30_000_000},
              "space": {"max_blocks": 6, "max_layers": 2, "max_channels": 64, "max_dense": 2, "max_units": 64}},
}  # fmt: skip


def build_tight_cnn(hp, input_shape=(28, 28, 1)):
    """The peer a skilled user writes for 2.5 KB of RAM: a stride-2 first conv, few filters."""
    from tfnas._tf import keras

    layers = keras.layers
    inputs = keras.Input(input_shape)
    x = inputs
    for i in range(hp.Int("conv_layers", 1, 3)):
        with hp.conditional_scope("conv_layers", list(range(i + 1, 4))):
            x = layers.Conv2D(hp.Int(f"filters_{i}", 2, 16, step=2), hp.Choice(f"kernel_{i}", [3, 5]),
                              strides=2 if i == 0 else 1, padding="same", activation="relu")(x)  # fmt: skip
            if hp.Boolean(f"pool_{i}"):
                x = layers.MaxPooling2D(2)(x)
    x = (
        layers.GlobalAveragePooling2D()(x)
        if hp.Choice("head", ["gap", "flatten"]) == "gap"
        else layers.Flatten()(x)
    )
    units = hp.Choice("dense_units", [0, 16, 32])
    if units:
        x = layers.Dense(units, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(10, activation="softmax")(x))


def builder(contender: str, hp, input_shape, seed: int):
    """A fresh, untrained model of a trial's architecture, from its keras-tuner hyperparameters.

    The keras-tuner contenders' trials hold :func:`build_tight_cnn`'s choices; the
    tfnas contenders' hold the genome as JSON.
    """
    if contender.startswith("kt_"):
        return lambda: build_tight_cnn(hp, input_shape)
    from tfnas.genome import Genome
    from tfnas.model import build_model

    genome = Genome.from_json(hp.values["genome"])
    return lambda: build_model(genome, seed=seed)


def _budgeted(tuner_cls, budget: float, log: list):
    """A tuner class that stops proposing trials once ``budget`` seconds have passed."""

    class Budgeted(tuner_cls):
        def on_search_begin(self):
            super().on_search_begin()
            self._t0 = time.perf_counter()

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            log.append((trial.trial_id, time.perf_counter() - self._t0))
            if time.perf_counter() - self._t0 >= budget:
                self.oracle.max_trials = len(self.oracle.trials)

    return Budgeted


def _peer_tuner():
    import keras_tuner

    from tfnas._tf import keras
    from tfnas.tuner.tuner import measure_deployed

    class PeerTuner(keras_tuner.engine.base_tuner.BaseTuner):
        def __init__(self, oracle, constraints, *, seed, input_shape, **kwargs):
            self.constraints, self.seed, self.input_shape = constraints, seed, input_shape
            super().__init__(oracle, hypermodel=build_tight_cnn, **kwargs)

        def run_trial(self, trial, x, y, validation_data=None, epochs=1, batch_size=32, **_):
            x_val, y_val = validation_data
            hp = trial.hyperparameters
            trial_dir = Path(self.get_trial_dir(trial.trial_id))
            trial_dir.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            keras.utils.set_random_seed(self.seed + int(trial.trial_id))
            model = build_tight_cnn(hp, self.input_shape)
            initial = hp.values.get("tuner/initial_epoch", 0)
            epochs = hp.values.get("tuner/epochs", epochs)
            parent = hp.values.get("tuner/trial_id")
            if parent:
                model.load_weights(str(Path(self.get_trial_dir(parent)) / "weights.h5"))
            model.compile(
                keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"]
            )
            model.fit(x, y, epochs=epochs, initial_epoch=initial, batch_size=batch_size, verbose=0)
            model.save_weights(str(trial_dir / "weights.h5"))
            train_seconds = time.perf_counter() - start
            tflite, metrics = measure_deployed(
                model, x, x_val, y_val, self.constraints, seed=self.seed
            )
            (trial_dir / "model.tflite").write_bytes(tflite)
            metrics.update(val_accuracy=metrics["int8_accuracy"], train_seconds=train_seconds,
                           seconds=time.perf_counter() - start, epochs=float(epochs))  # fmt: skip
            keras.backend.clear_session()
            return metrics

    return PeerTuner


def train_final(build, x, y, epochs: int, seed: int):
    """The one final-fit recipe every contender's best architecture gets: a new model, trained."""
    from tfnas._tf import keras
    from tfnas.tuner.tuner import fit_recipe

    keras.utils.set_random_seed(seed)
    model = build()
    fit_recipe(model, x, y, epochs=epochs, batch_size=64, seed=seed)
    return model


def final_fit(build, x, y, test, constraints, epochs: int, seed: int) -> dict:
    """:func:`train_final`, then the int8 model's test accuracy and measured resources."""
    from tfnas._tf import keras
    from tfnas.compress import evaluate_tflite
    from tfnas.tuner.tuner import measure_deployed

    start = time.perf_counter()
    model = train_final(build, x, y, epochs, seed)
    tflite, metrics = measure_deployed(model, x, *test, constraints, seed=seed)
    keras.backend.clear_session()
    return {"test_int8_accuracy": evaluate_tflite(tflite, *test).accuracy,
            "feasible": bool(metrics["feasible"]), "planned_bytes": int(metrics["planned_bytes"]),
            "weights_bytes": int(metrics["weights_bytes"]), "macs": int(metrics["macs"]),
            "seconds": time.perf_counter() - start}  # fmt: skip


def run(args) -> dict:
    commit = _commit()  # before the search: the code may change while a 20-minute run goes on
    import keras_tuner

    from tfnas.compress import evaluate_tflite
    from tfnas.data import load_npz
    from tfnas.genome import MicroSpace
    from tfnas.objectives import Constraints
    from tfnas.strategies import AgingEvolutionOracle, MicroNASOracle
    from tfnas.tuner import NASTuner

    data = load_npz(args.data)
    order = np.random.default_rng(args.seed).permutation(len(data.x_train))
    tr, va = order[: args.train], order[args.train : args.train + args.val]
    x, y, val = data.x_train[tr], data.y_train[tr], (data.x_train[va], data.y_train[va])
    te = np.sort(np.random.default_rng(args.seed + 1).permutation(len(data.x_test))[: args.test])
    test = (data.x_test[te], data.y_test[te])
    task = TASKS[args.task]
    b = shared.BOUNDS = task["bounds"]  # summarise() normalises the hypervolume by these
    constraints = Constraints(max_arena_bytes=b["planned_bytes"], arena="planned", max_weights_bytes=b["weights_bytes"],
                              max_macs=b["macs"], target="cortex-m")  # fmt: skip
    space = MicroSpace(data.input_shape, data.num_classes, **task["space"])
    log: list = []
    name, many = args.contender, 10_000
    start = time.perf_counter()
    if name in ("micronas", "evolution_fast", "evolution"):
        common = {"max_trials": many, "seed": args.seed, "proxy_weights": args.proxy_weights}
        halving = {
            "min_epochs": 1,
            "eta": 3,
            "max_epochs": args.top_epochs,
            "min_data": args.min_data,
        }
        if name == "micronas":
            oracle = MicroNASOracle(space, constraints, pool=args.pool, halving=halving, **common)
        else:
            extra = {}
            if name == "evolution_fast":
                extra = {"proxy_pool": args.proxy_pool, "halving": halving}
            oracle = AgingEvolutionOracle(
                space, constraints, population_size=10, sample_size=3, **common, **extra
            )
        tuner = _budgeted(NASTuner, args.budget, log)(oracle, directory=args.workdir, project_name=name,
                                                       overwrite=True, verbose=0)  # fmt: skip
    else:
        objective = keras_tuner.Objective("score", "min")
        if name == "kt_random":
            oracle = keras_tuner.oracles.RandomSearchOracle(
                objective=objective, max_trials=many, seed=args.seed
            )
        else:
            oracle = keras_tuner.oracles.HyperbandOracle(objective=objective, max_epochs=args.top_epochs, factor=3,
                                                         hyperband_iterations=100, seed=args.seed)  # fmt: skip
            oracle.max_trials = many
        tuner = _budgeted(_peer_tuner(), args.budget, log)(
            oracle,
            constraints,
            seed=args.seed,
            input_shape=data.input_shape,
            directory=args.workdir,
            project_name=name,
            overwrite=True,
        )
    tuner.search(x, y, validation_data=val, epochs=args.epochs, batch_size=64)
    wall = time.perf_counter() - start
    rows = shared.trial_rows(oracle)
    ends = dict(log)
    for r in rows:
        r["ended_at"] = ends.get(r["trial_id"])
    dirs = {r["trial_id"]: tuner.get_trial_dir(r["trial_id"]) for r in rows}
    summary = shared.summarise(name, rows, len(getattr(oracle, "rejected", [])), wall, dirs, test)
    best = summary["best"]
    if best is not None:
        # The pick's architecture itself, so that later final-fit studies need no work folder.
        best["hyperparameters"] = {k: v for k, v in oracle.trials[best["trial_id"]].hyperparameters.values.items()
                                   if not k.startswith("tuner/")}  # fmt: skip
    if best is not None and args.final_epochs:
        build = builder(
            name, oracle.trials[best["trial_id"]].hyperparameters, data.input_shape, args.seed
        )
        if args.final_data == "full":
            xf, yf = data.x_train, data.y_train
        else:
            xf, yf = np.concatenate([x, val[0]]), np.concatenate([y, val[1]])
        summary["final"] = final_fit(build, xf, yf, test, constraints, args.final_epochs, args.seed)
        summary["final"]["train_images"] = int(len(xf))
        summary["best"]["test_int8_accuracy"] = evaluate_tflite(
            (Path(dirs[best["trial_id"]]) / "model.tflite").read_bytes(), *test
        ).accuracy
    return {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv), "contender": name,
            "task": args.task, "seed": args.seed, "budget_seconds": args.budget,
            "settings": {k: getattr(args, k) for k in ("train", "val", "test", "epochs", "top_epochs", "final_epochs",
                                                       "final_data", "pool", "proxy_pool", "min_data")}
                        | {"proxy_weights": getattr(tuner.oracle, "proxy_weights", None)},
            "commit": commit, "summary": summary, "trial_rows": rows}  # fmt: skip


def _commit() -> str | None:
    """The repository's HEAD when the run started, so a result names the code that made it."""
    import subprocess

    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent)  # fmt: skip
    return done.stdout.strip() or None


def _label(run) -> str:
    """The contender's name, marked where its settings differ from the first runs' defaults.

    ``+params`` / ``+width``: the hybrid proxy weighed the parameter count / the bottleneck
    width; ``50k``: searched on 50,000 training images (not 10,000);
    ``data 0.2``: halving over the data from that fraction.
    """
    settings = run.get("settings", {})
    weights = settings.get("proxy_weights") or {}
    marks = [f"+{name}" for name in ("params", "width") if weights.get(name)]
    if settings.get("train", 10_000) != 10_000:
        marks.append(f"{settings['train'] // 1000}k")
    if settings.get("min_data", 1.0) < 1:
        marks.append(f"data {settings['min_data']:g}")
    return run["contender"] + (f" ({', '.join(marks)})" if marks else "")


def _means(runs) -> str:
    """Per contender over its seeds: mean best feasible test accuracy after search and after the final fit."""
    lines = ["| contender | seeds | mean after search (min-max) | mean after final fit (min-max) |",
             "|---|---|---|---|"]  # fmt: skip
    labels = sorted({_label(r) for r in runs}, key=lambda k: (CONTENDERS.index(k.split()[0]), k))
    for name in labels:
        mine = [r for r in runs if _label(r) == name and r["summary"]["best"]]
        if not mine:
            continue
        cells = []
        for values in ([r["summary"]["best"]["test_int8_accuracy"] for r in mine],
                       [r["summary"].get("final", {}).get("test_int8_accuracy") for r in mine]):  # fmt: skip
            values = [v for v in values if v is not None]
            cells.append(
                f"{np.mean(values):.4f} ({min(values):.4f}-{max(values):.4f})" if values else "-"
            )
        seeds = ", ".join(str(r["seed"]) for r in sorted(mine, key=lambda r: r["seed"]))
        lines.append(f"| {name} | {seeds} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _capacity(runs) -> str:
    """Per run: how the trained accuracy of its feasible, fully trained trials follows their resources."""
    lines = ["| run | trials at the top epochs | Spearman ρ(int8 acc, weight B) | ρ(acc, MACs) | ρ(acc, planned B) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(runs, key=lambda r: (r["seed"], CONTENDERS.index(r["contender"]))):
        rows = [
            q for q in r["trial_rows"] if q.get("feasible") and q.get("int8_accuracy") is not None
        ]
        if not rows:
            continue
        top = max(q["epochs"] for q in rows)
        rows = [q for q in rows if q["epochs"] == top]
        if len(rows) < 5:
            continue
        acc = [q["int8_accuracy"] for q in rows]
        rho = [
            _spearman(acc, [q[k] for q in rows]) for k in ("weights_bytes", "macs", "planned_bytes")
        ]
        lines.append(f"| {_label(r)} seed {r['seed']} | {len(rows)} ({top:g} epochs) | "
                     + " | ".join("-" if np.isnan(v) else f"{v:+.2f}" for v in rho) + " |")  # fmt: skip
    return "\n".join(lines)


def _sign_test(wins: int, losses: int) -> float:
    """Two-sided sign-test p-value of ``wins`` against ``losses`` (ties left out)."""
    from math import comb

    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def _accuracy(run, stage: str):
    """The run's best feasible int8 test accuracy after ``"search"`` or after the ``"final"`` fit."""
    summary = run["summary"]
    if stage == "search":
        return summary["best"]["test_int8_accuracy"]
    return summary.get("final", {}).get("test_int8_accuracy")


def _paired(runs, resamples: int = 10_000) -> str:
    """Each tfnas contender against each keras-tuner one on the seeds both ran (same training size).

    Per stage: the mean of the per-seed differences (tfnas minus keras-tuner) with a 95%
    bootstrap interval over the seeds, wins / ties / losses and the sign test's p-value.
    Only a pair run on one machine is a fair comparison, so each seed's two runs must be.
    """
    lines = ["| pair | training images | seeds | stage | mean difference [95% CI] | wins / ties / losses | sign test p |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    by = {}
    for r in runs:
        if r["summary"]["best"]:
            key = (_label(r), r.get("settings", {}).get("train", 10_000))
            by.setdefault(key, {})[r["seed"]] = r
    rng = np.random.default_rng(0)
    for (a, size), mine in sorted(by.items()):
        if a.startswith("kt_"):
            continue
        for (b, size_b), theirs in sorted(by.items()):
            seeds = sorted(set(mine) & set(theirs))
            if not b.startswith("kt_") or size_b != size or len(seeds) < 2:
                continue
            for stage in ("search", "final fit"):
                pairs = [(_accuracy(mine[k], stage), _accuracy(theirs[k], stage)) for k in seeds]
                d = np.array([x - y for x, y in pairs if x is not None and y is not None])
                if len(d) < 2:
                    continue
                boot = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
                lo, hi = np.percentile(boot, [2.5, 97.5])
                w, t, l_ = int((d > 0).sum()), int((d == 0).sum()), int((d < 0).sum())
                lines.append(f"| {a} − {b} | {size:,} | {', '.join(map(str, seeds))} | after {stage} | "
                             f"{100 * d.mean():+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] points | "
                             f"{w} / {t} / {l_} | {_sign_test(w, l_):.2f} |")  # fmt: skip
    return "\n".join(lines)


def merge(paths, out) -> dict:
    runs = []
    for path in paths:  # run files, or files an earlier merge wrote
        loaded = json.loads(Path(path).read_text())
        runs += loaded.get("runs", [loaded])
    lines = ["| contender | seed | trials (feasible) | best feasible int8 test acc after search | after final fit "
             "| its planned B / weights B / MACs | hypervolume | s to reach the best keras-tuner search acc |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    peers = {}  # per seed and training-set size: the best keras-tuner validation accuracy

    def _key(r):
        return r["seed"], r.get("settings", {}).get("train", 10_000)

    for r in runs:
        if r["contender"].startswith("kt_") and r["summary"]["best"]:
            peers[_key(r)] = max(peers.get(_key(r), 0.0), r["summary"]["best"]["val_int8_accuracy"])
    for r in sorted(runs, key=lambda r: (*_key(r), CONTENDERS.index(r["contender"]))):
        s, b = r["summary"], r["summary"]["best"]
        target = peers.get(_key(r))
        reach = next((row["ended_at"] for row in sorted(r["trial_rows"], key=lambda q: q.get("ended_at") or 1e18)
                      if row.get("feasible") and target is not None and row["int8_accuracy"] >= target), None)  # fmt: skip
        fin = s.get("final", {})
        lines.append(
            f"| {_label(r)} | {r['seed']} | {s['completed']} ({s['feasible']}) | "
            f"{b['test_int8_accuracy']:.4f} | {fin.get('test_int8_accuracy', float('nan')):.4f} | "
            f"{b['planned_bytes']:,} / {b['weights_bytes']:,} / {b['macs']:,} | {s['hypervolume']:.4f} | "
            f"{f'{reach:.0f}' if reach is not None else 'not reached'} |"
            if b
            else f"| {_label(r)} | {r['seed']} | {s['completed']} (0) | none | - | - | {s['hypervolume']:.4f} | - |"
        )
    table = "\n\n".join(["\n".join(lines), _means(runs), _paired(runs), _capacity(runs)])
    result = {"runs": runs, "table": table}
    if out:
        Path(out).write_text(json.dumps(result, indent=1))
    print(table)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--contender", choices=CONTENDERS)
    p.add_argument("--merge", nargs="+")
    p.add_argument(
        "--task", choices=sorted(TASKS), default="mnist", help="bounds, data and space preset"
    )
    p.add_argument("--data", help="default: the task's file in ../shared/data")
    p.add_argument("--budget", type=float, default=1200.0, help="wall seconds of search per run")
    p.add_argument(
        "--epochs", type=int, default=4, help="evolution and kt_random: epochs per trial"
    )
    p.add_argument("--top-epochs", type=int, default=9,
                   help="micronas, evolution_fast (halving) and kt_hyperband: most epochs per trial")  # fmt: skip
    p.add_argument("--final-epochs", type=int, default=20)
    p.add_argument("--final-data", choices=("full", "search"), default="full",
                   help="final fit on the whole training split or the search's images")  # fmt: skip
    p.add_argument("--train", type=int, default=10_000)
    p.add_argument("--val", type=int, default=2_000)
    p.add_argument("--test", type=int, default=10_000)
    p.add_argument("--pool", type=int, default=150, help="micronas: candidates ranked zero-shot")
    p.add_argument("--proxy-pool", type=int, default=5, help="evolution_fast: candidates per trial")
    p.add_argument("--min-data", type=float, default=1.0,
                   help="micronas, evolution_fast: halving over the data too, rung 0 on this fraction "
                   "of --train, each rung on 3x more")  # fmt: skip
    p.add_argument("--proxy-weights", type=json.loads, default=None,
                   help='micronas, evolution_fast: hybrid weights as JSON, e.g. \'{"params": 1}\'')  # fmt: skip
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", default="/tmp/tfnas_budget_bench")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.merge:
        merge(args.merge, args.out)
        return 0
    if not args.contender:
        p.error("give --contender NAME or --merge FILES")
    args.data = args.data or str(
        Path(__file__).resolve().parents[3] / "shared/data" / TASKS[args.task]["data"]
    )
    result = run(args)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(json.dumps(result["summary"], default=str)[:2000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
