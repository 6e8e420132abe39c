"""The final-fit recipe on the picks of `mnist_budget.py` runs: more epochs, and a QAT finish.

For each run file, the best feasible architecture is rebuilt from the run's
work folder (the hyperparameters in its ``trial_<id>/trial.json``, as
``mnist_budget.builder`` reads them) and retrained from scratch with
the bench's final-fit recipe (``mnist_budget.train_final``: the whole MNIST
training split, batch 64, Adam 3e-3 with cosine decay, 2-pixel shifts; seed =
the run's seed) for ``--epochs``. Then it reports the float test accuracy, the
int8 PTQ test accuracy, and the int8 accuracy after ``--qat-epochs`` of
quantization-aware fine-tuning on the same recipe at ``--qat-learning-rate``.
One JSON line per run and epoch count goes to ``--out``.

    taskset -c 0 python tools/bench/final_fit_recipe.py /tmp/s19/budget/micronas_2.json \\
        --epochs 20 60 --out /tmp/final_fit.jsonl
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _pick(run: dict):
    """The run's best feasible architecture as a builder.

    From the run's own record of it (runs since this field was added), else from
    its trial's ``trial.json`` in the run's work folder.
    """
    import keras_tuner
    import mnist_budget

    saved = run["summary"]["best"].get("hyperparameters")
    if saved is not None:
        hp = keras_tuner.HyperParameters()
        hp.values.update(saved)
        return mnist_budget.builder(run["contender"], hp, (28, 28, 1), run["seed"])
    argv = shlex.split(run["command"])
    workdir = (
        argv[argv.index("--workdir") + 1] if "--workdir" in argv else "/tmp/tfnas_budget_bench"
    )
    trial = Path(workdir) / run["contender"] / f"trial_{run['summary']['best']['trial_id']}"
    config = json.loads((trial / "trial.json").read_text())["hyperparameters"]
    hp = keras_tuner.HyperParameters.from_config(config)
    return mnist_budget.builder(run["contender"], hp, (28, 28, 1), run["seed"])


def measure(run: dict, epochs: int, qat_epochs: int, qat_lr: float, data) -> dict:
    import mnist_budget

    from tfnas._tf import keras
    from tfnas.compress import evaluate_tflite, quantize_aware, to_tflite
    from tfnas.compress.quantize import match_pooling_ranges
    from tfnas.tuner.tuner import fit_recipe

    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    seed = run["seed"]
    start = time.perf_counter()
    model = mnist_budget.train_final(_pick(run), x, y, epochs, seed)
    row = {"run": f"{mnist_budget._label(run)} seed {seed}", "epochs": epochs, "params": int(model.count_params()),
           "fit_seconds": time.perf_counter() - start,
           "float": float(model.evaluate(xt, yt, verbose=0)[1]),
           "ptq": evaluate_tflite(to_tflite(model, "int8", x, calibration_samples=100, seed=seed), xt, yt).accuracy}  # fmt: skip
    if qat_epochs:
        qat = quantize_aware(model)
        fit_recipe(qat, x, y, epochs=qat_epochs, batch_size=64, seed=seed, learning_rate=qat_lr)
        match_pooling_ranges(qat)
        tflite = to_tflite(qat, "int8", x, calibration_samples=100, seed=seed)
        row["qat"] = evaluate_tflite(tflite, xt, yt).accuracy
    keras.backend.clear_session()
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="mnist_budget.py run JSON files")
    p.add_argument("--epochs", type=int, nargs="+", default=[20, 60])
    p.add_argument("--qat-epochs", type=int, default=2)
    p.add_argument("--qat-learning-rate", type=float, default=3e-4)
    p.add_argument(
        "--data", default=str(Path(__file__).resolve().parents[3] / "shared/data/mnist.npz")
    )
    p.add_argument("--out", required=True, help="JSON lines, appended")
    args = p.parse_args(argv)
    from tfnas.data import load_npz

    data = load_npz(args.data)
    for path in args.runs:
        run = json.loads(Path(path).read_text())
        for epochs in args.epochs:
            row = measure(run, epochs, args.qat_epochs, args.qat_learning_rate, data)
            row["command"] = "python " + " ".join(shlex.quote(a) for a in sys.argv)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
