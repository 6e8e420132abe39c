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

Variants of the recipe, to see what the tiny picks gain from (the bench's is
``--augment shift`` without distillation):

- ``--augment none``: no augmentation; ``affine``: rotations up to
  ±0.03 of a turn (±10.8°) and zoom up to ±10% before the 2-pixel shifts.
- ``--distill T ALPHA``: knowledge distillation from a float teacher CNN
  (three convs of 32-64 filters and a 128-unit dense layer, 4 epochs on the
  same training split, seed 0; its logits are computed once per call and
  cached beside ``--out``). The loss is ``ALPHA`` x cross-entropy on the labels
  plus ``(1 - ALPHA)`` x T² x KL(teacher ‖ pick) at temperature T. Teacher
  logits are of the unaugmented images, so combine it with ``--augment none``.

A merged file of ``mnist_budget.py --merge`` is taken too; ``--contender`` and
``--seeds`` then choose its runs.

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


def teacher_logits(x, y, cache: Path):
    """Logits of a float teacher CNN trained on ``(x, y)``, cached in ``cache`` (``.npy``)."""
    import numpy as np

    from tfnas._tf import keras

    if cache.exists():
        return np.load(cache)
    keras.utils.set_random_seed(0)
    layers = keras.layers
    inputs = keras.Input(x.shape[1:])
    h = layers.Conv2D(32, 3, activation="relu")(inputs)
    h = layers.MaxPooling2D()(layers.Conv2D(64, 3, activation="relu")(h))
    h = layers.MaxPooling2D()(layers.Conv2D(64, 3, activation="relu")(h))
    h = layers.Dense(128, activation="relu")(layers.Dropout(0.3)(layers.Flatten()(h)))
    model = keras.Model(inputs, layers.Dense(int(y.max()) + 1)(h))
    epochs, batch = 4, 128
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, epochs * -(-len(x) // batch))
    model.compile(keras.optimizers.Adam(schedule),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])  # fmt: skip
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    logits = model.predict(x, verbose=0).astype("float32")
    np.save(cache, logits)
    keras.backend.clear_session()
    return logits


def train_variant(build, x, y, epochs: int, seed: int, augment: str, distill=None, logits=None):
    """The bench's final-fit recipe with another augmentation, or distillation."""
    import mnist_budget
    import numpy as np

    from tfnas._tf import keras, tf

    if augment == "shift" and distill is None:
        return mnist_budget.train_final(build, x, y, epochs, seed)
    keras.utils.set_random_seed(seed)
    model = build()
    batch = 64
    schedule = keras.optimizers.schedules.CosineDecay(
        3e-3, -(-len(x) // batch) * epochs, alpha=0.05
    )
    target, loss = y, "sparse_categorical_crossentropy"
    if distill is not None:
        temperature, alpha = distill
        target = np.concatenate([np.reshape(y, (-1, 1)).astype("float32"), logits], axis=1)

        def loss(packed, probs):
            ce = keras.losses.sparse_categorical_crossentropy(
                tf.cast(packed[:, 0], tf.int32), probs
            )
            soft = tf.nn.softmax(packed[:, 1:] / temperature)
            log_student = tf.nn.log_softmax(
                tf.math.log(tf.clip_by_value(probs, 1e-7, 1.0)) / temperature
            )
            kl = tf.reduce_sum(
                soft * (tf.math.log(tf.clip_by_value(soft, 1e-7, 1.0)) - log_student), -1
            )
            return alpha * ce + (1 - alpha) * temperature**2 * kl

    model.compile(keras.optimizers.Adam(schedule), loss)
    ds = tf.data.Dataset.from_tensor_slices((x, target))
    ds = ds.shuffle(min(len(x), 10_000), seed=seed, reshuffle_each_iteration=True).batch(batch)
    if augment != "none":
        shift = 2 / x.shape[1] + 1e-6
        layers = [keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed)]
        if augment == "affine":
            layers = [keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed),
                      keras.layers.RandomZoom(0.1, fill_mode="constant", seed=seed), *layers]  # fmt: skip
        augmenter = keras.Sequential(layers)
        ds = ds.map(lambda a, b: (augmenter(a, training=True), b), num_parallel_calls=1)
    model.fit(ds.prefetch(2), epochs=epochs, verbose=0)
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy", ["accuracy"])
    return model


def measure(run: dict, epochs: int, qat_epochs: int, qat_lr: float, data, augment: str = "shift",
            distill=None, logits=None) -> dict:  # fmt: skip
    import mnist_budget

    from tfnas._tf import keras
    from tfnas.compress import evaluate_tflite, quantize_aware, to_tflite
    from tfnas.compress.quantize import match_pooling_ranges
    from tfnas.tuner.tuner import fit_recipe

    x, y, xt, yt = data.x_train, data.y_train, data.x_test, data.y_test
    seed = run["seed"]
    start = time.perf_counter()
    model = train_variant(_pick(run), x, y, epochs, seed, augment, distill, logits)
    row = {"run": f"{mnist_budget._label(run)} seed {seed}", "epochs": epochs, "augment": augment,
           "distill": distill, "params": int(model.count_params()),
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
    p.add_argument("--augment", choices=("shift", "none", "affine"), default="shift")
    p.add_argument("--distill", type=float, nargs=2, metavar=("T", "ALPHA"))
    p.add_argument("--contender", help="in merged files: only this contender's runs")
    p.add_argument("--seeds", type=int, nargs="+", help="in merged files: only these seeds")
    p.add_argument("--out", required=True, help="JSON lines, appended")
    args = p.parse_args(argv)
    from tfnas.data import load_npz

    data = load_npz(args.data)
    runs = []
    for path in args.runs:
        loaded = json.loads(Path(path).read_text())
        runs += [r for r in loaded.get("runs", [loaded])
                 if (args.contender in (None, r["contender"])) and (not args.seeds or r["seed"] in args.seeds)]  # fmt: skip
    logits = None
    if args.distill:
        logits = teacher_logits(
            data.x_train, data.y_train, Path(args.out).with_suffix(".teacher.npy")
        )
    for run in runs:
        for epochs in args.epochs:
            row = measure(run, epochs, args.qat_epochs, args.qat_learning_rate, data, args.augment,
                          args.distill, logits)  # fmt: skip
            row["command"] = "python " + " ".join(shlex.quote(a) for a in sys.argv)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
