"""Do the zero-shot proxies predict trained int8 accuracy on tfnas's spaces?

For each space (micro, msnas, cell) it samples architectures, computes the
zero-shot indicators (NTK condition number κ, the per-layer region score, the
whole-network pattern count) and the MicroNAS hybrid rank, then trains every
architecture the same way (same subset, epochs, recipe), converts it to int8
and measures its accuracy with LiteRT. It reports Kendall τ and Spearman ρ of
each indicator against int8 accuracy, with 95% bootstrap intervals.

    python tools/bench/proxy_correlation.py --data ../shared/data/mnist.npz \
        --per-space 100 --train 2000 --epochs 2 --out docs/proxy_correlation_mnist.json

One JSON row per architecture is printed as it finishes; ``--resume FILE``
reads such a log (or an ``--out`` file) and skips what is done.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

SPACES = {
    "micro": {"max_blocks": 4, "max_channels": 32, "max_dense": 2},
    "msnas": {"stages": 2, "nodes": 4, "channels": [8, 16]},
    "cell": {"channels": [8, 16, 32], "cells": 1},
}


def _spearman(a, b) -> float:
    from tfnas.strategies.core import average_ranks

    ra, rb = average_ranks(a), average_ranks(b)
    if np.std(ra) == 0 or np.std(rb) == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _kendall(a, b) -> float:
    """Kendall's tau-b over all pairs (ties in one variable only count in its denominator)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    upper = np.triu(np.ones((len(a), len(a)), bool), 1)
    da = np.sign(a[None, :] - a[:, None])[upper]
    db = np.sign(b[None, :] - b[:, None])[upper]
    concordant, discordant = int(np.sum(da * db > 0)), int(np.sum(da * db < 0))
    ties_a, ties_b = int(np.sum((da == 0) & (db != 0))), int(np.sum((db == 0) & (da != 0)))
    denom = math.sqrt((concordant + discordant + ties_a) * (concordant + discordant + ties_b))
    return (concordant - discordant) / denom if denom else float("nan")


def _bootstrap(fn, a, b, reps: int = 1000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a, float), np.asarray(b, float)
    stats = []
    for _ in range(reps):
        idx = rng.integers(0, len(a), len(a))
        s = fn(a[idx], b[idx])
        if np.isfinite(s):
            stats.append(s)
    return (
        [float(np.percentile(stats, 2.5)), float(np.percentile(stats, 97.5))]
        if stats
        else [None, None]
    )


def summarise(rows: list[dict]) -> dict:
    """τ and ρ (with bootstrap CIs) of each indicator against int8 accuracy, per space."""
    from tfnas.genome import Genome
    from tfnas.genome.costs import narrowest_channels
    from tfnas.strategies.core import hybrid_scores

    out = {}
    for space in sorted({r["space"] for r in rows}):
        mine = [r for r in rows if r["space"] == space and r.get("int8_accuracy") is not None]
        if len(mine) < 5:
            continue
        acc = [r["int8_accuracy"] for r in mine]
        # rows measured before the width indicator get it from their genome
        width = [r["width"] if "width" in r else narrowest_channels(Genome.from_dict(r["genome"]))
                 for r in mine]  # fmt: skip
        records = [
            {"ntk_cond": r["ntk_cond"], "regions": r["regions"], "params": r["params"], "width": w}
            for r, w in zip(mine, width, strict=True)
        ]
        hybrid = hybrid_scores(records)
        # the adaptations docs/benchmarks.md reports: a capacity term, with and without κ,
        # and a bottleneck term
        with_params = hybrid_scores(records, {"params": 1.0})
        regions_params = hybrid_scores(records, {"ntk_cond": 0.0, "params": 1.0})
        with_width = hybrid_scores(records, {"width": 1.0})
        indicators = {
            # signed so that higher should mean more accurate
            "-log10(ntk_cond)": [
                -math.log10(r["ntk_cond"]) if math.isfinite(r["ntk_cond"]) else -99.0 for r in mine
            ],
            "regions": [r["regions"] for r in mine],
            "joint_regions": [r["joint_regions"] for r in mine],
            "-hybrid_rank": list(-hybrid),
            "-hybrid_rank(+params)": list(-with_params),
            "-rank(regions+params)": list(-regions_params),
            "-hybrid_rank(+width)": list(-with_width),
            "width": width,
            "log10(macs)": [math.log10(max(r["macs"], 1)) for r in mine],
            "log10(params)": [math.log10(max(r["params"], 1)) for r in mine],
        }
        out[space] = {"n": len(mine), "accuracy_range": [min(acc), max(acc)], "indicators": {
            name: {"kendall_tau": _kendall(v, acc), "kendall_ci95": _bootstrap(_kendall, v, acc, 300),
                   "spearman_rho": _spearman(v, acc), "spearman_ci95": _bootstrap(_spearman, v, acc, 300)}
            for name, v in indicators.items()}}  # fmt: skip
    return out


def measure(space_name: str, index: int, data, args) -> dict:
    from tfnas._tf import keras
    from tfnas.compress import evaluate_tflite, to_tflite
    from tfnas.genome import analyze, get_space
    from tfnas.genome.costs import narrowest_channels
    from tfnas.model import build_model
    from tfnas.proxies import zero_shot
    from tfnas.tuner.tuner import fit_recipe

    shape = data.input_shape
    options = dict(SPACES[space_name])
    if space_name == "cell":
        options["stem_stride"] = 2 if min(shape[:2]) >= 16 else 1
    space = get_space(space_name, shape, data.num_classes, **options)
    genome = space.sample(np.random.default_rng([args.seed, index]))
    z = zero_shot(genome, data.x_train[:64])
    start = time.perf_counter()
    model = build_model(genome, seed=args.seed)
    fit_recipe(model, data.x_train, data.y_train, epochs=args.epochs, seed=args.seed)
    tflite = to_tflite(model, "int8", data.x_train, seed=args.seed)
    int8 = evaluate_tflite(tflite, data.x_test, data.y_test).accuracy
    keras.backend.clear_session()
    costs = analyze(genome)
    return {"space": space_name, "i": index, "ntk_cond": z.ntk_cond, "ntk_conds": list(z.ntk_conds),
            "regions": z.regions, "joint_regions": z.joint_regions, "proxy_seconds": z.seconds,
            "macs": costs.macs, "params": costs.params, "width": narrowest_channels(genome),
            "int8_accuracy": int8,
            "train_seconds": time.perf_counter() - start, "genome": genome.to_dict()}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--spaces", default="micro,msnas,cell")
    p.add_argument("--per-space", type=int, default=100)
    p.add_argument("--train", type=int, default=2000, help="training samples per architecture")
    p.add_argument("--test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", type=Path, nargs="*", default=[])
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    missing = [str(path) for path in args.resume if not path.exists()]
    if missing:  # before the data are loaded
        p.error(f"--resume: no such file: {', '.join(missing)}")
    from tfnas.data import load_npz

    data = load_npz(args.data).subset(train=args.train, test=args.test, seed=args.seed)
    rows = {}
    for path in args.resume:
        text = path.read_text()
        try:  # an --out file: one JSON object with "rows"
            found = json.loads(text)["rows"]
        except (ValueError, KeyError, TypeError):  # a log: one JSON row per line among other output
            found = [json.loads(line) for line in text.splitlines() if line.startswith('{"space"')]
        for r in found:
            rows[(r["space"], r["i"])] = r
        print(f"resumed {len(found)} rows from {path}", file=sys.stderr)
    # interleave spaces so that a partial run covers all of them
    for i in range(args.per_space):
        for space in args.spaces.split(","):
            if (space, i) in rows:
                continue
            try:
                row = measure(space, i, data, args)
            except Exception as e:  # a candidate the converter refuses is reported, not fatal
                row = {"space": space, "i": i, "error": str(e).splitlines()[0][:200]}
            rows[(space, i)] = row
            print(json.dumps(row), flush=True)
    ordered = [rows[k] for k in sorted(rows)]
    result = {"command": " ".join(sys.argv), "data": args.data, "train": args.train, "test": args.test,
              "epochs": args.epochs, "rows": ordered, "summary": summarise(ordered)}  # fmt: skip
    print(json.dumps(result["summary"], indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, allow_nan=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
