"""Train and measure an MSNAS model family (what ``tfnas family`` runs).

Every member of :meth:`MetaGraph.derive_family` is built, trained, converted
to int8, measured exactly for a TFLM target and evaluated with LiteRT. The
table is written as ``family.csv`` and ``family.png``; each member's int8
model as ``MSNet-k.tflite``.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Sequence
from pathlib import Path

from tfnas._tf import keras
from tfnas.compress import evaluate_tflite, to_tflite
from tfnas.data import Dataset
from tfnas.inspection import inspect
from tfnas.model import build_model
from tfnas.strategies.metagraph import DEFAULT_THRESHOLDS, MetaGraph

__all__ = ["train_family", "write_family", "format_family", "FAMILY_COLUMNS"]

FAMILY_COLUMNS = (
    "name",
    "threshold",
    "nodes",
    "edges",
    "macs",
    "params",
    "planned_bytes",
    "arena_bytes",
    "min_arena_bytes",
    "flash_bytes",
    "int8_accuracy",
    "val_accuracy",
    "train_seconds",
)


def train_family(
    metagraph: MetaGraph,
    data: Dataset,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    epochs: int = 6,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    target: str = "cortex-m",
    calibration_samples: int = 100,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    progress=None,
) -> list[dict]:
    """One row per family member, highest threshold (smallest model) first.

    ``data`` must match the meta-graph's task; transfer a meta-graph to a new
    task first with :meth:`MetaGraph.transfer`. ``progress(row)`` is called
    after each member.
    """
    if tuple(data.input_shape) != metagraph.input_shape or data.num_classes > metagraph.num_classes:
        raise ValueError(
            f"The data does not match the meta-graph's task. Expected input_shape="
            f"{metagraph.input_shape}, num_classes={metagraph.num_classes}. Received: input_shape="
            f"{tuple(data.input_shape)}, num_classes={data.num_classes} (use MetaGraph.transfer)"
        )
    rows = []
    for member in metagraph.derive_family(thresholds):
        start = time.perf_counter()
        keras.utils.set_random_seed(seed)
        model = build_model(member.genome, seed=seed)
        model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy",
                      ["accuracy"])  # fmt: skip
        model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch_size, verbose=0)
        val_accuracy = float(model.evaluate(data.x_test, data.y_test, verbose=0)[1])
        train_seconds = time.perf_counter() - start
        tflite = to_tflite(model, "int8", data.x_train, calibration_samples=calibration_samples,
                           seed=seed)  # fmt: skip
        keras.backend.clear_session()
        report = inspect(tflite, target=target)
        int8 = evaluate_tflite(tflite, data.x_test, data.y_test)
        row = {
            **member.to_dict(),
            **{
                k: report[k]
                for k in (
                    "planned_bytes",
                    "arena_bytes",
                    "min_arena_bytes",
                    "flash_bytes",
                    "macs",
                    "params",
                )
            },  # fmt: skip
            "int8_accuracy": int8.accuracy,
            "val_accuracy": val_accuracy,
            "train_seconds": round(train_seconds, 1),
            "target": target,
        }
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / f"{member.name}.tflite").write_bytes(tflite)
            (Path(out_dir) / f"{member.name}.genome.json").write_text(member.genome.to_json(1))
        rows.append(row)
        if progress:
            progress(row)
    return rows


def format_family(rows: Sequence[dict]) -> str:
    """The family as a fixed-width text table."""
    lines = [
        f"{'member':<9} {'thresh':>6} {'nodes':>5} {'edges':>5} {'MACs':>11} {'params':>8} "
        f"{'planned B':>10} {'arena B':>9} {'flash B':>9} {'int8 acc':>8}"
    ]
    for r in rows:
        lines.append(
            f"{r['name']:<9} {r['threshold']:>6.2f} {r['nodes']:>5} {r['edges']:>5} {r['macs']:>11,} "
            f"{r['params']:>8,} {r['planned_bytes']:>10,} {r['arena_bytes']:>9,} {r['flash_bytes']:>9,} "
            f"{r['int8_accuracy']:>8.4f}"
        )
    return "\n".join(lines)


def write_family(
    rows: Sequence[dict], out_dir: str | os.PathLike, stem: str = "family"
) -> list[Path]:
    """Write ``{stem}.csv`` and ``{stem}.png`` (accuracy against MACs and arena) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{stem}.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*FAMILY_COLUMNS, "target"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, label in ((axes[0], "macs", "MACs"), (axes[1], "arena_bytes", "TFLM arena (B)")):
        xs = [r[key] for r in rows]
        ys = [r["int8_accuracy"] for r in rows]
        ax.plot(xs, ys, "o-")
        for r, x, y in zip(rows, xs, ys, strict=True):
            ax.annotate(f"{r['name']} ({r['threshold']:g})", (x, y), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))  # fmt: skip
        ax.set_xlabel(label)
        ax.set_ylabel("int8 accuracy")
        ax.grid(alpha=0.3)
    fig.suptitle("MSNAS family (structure-level pruning of one meta-graph)")
    fig.tight_layout()
    png_path = out / f"{stem}.png"
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return [csv_path, png_path]
