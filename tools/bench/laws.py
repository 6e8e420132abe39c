"""Sampling laws on MNIST's input shape: how many samples land in each MAC window (no training).

For each window, laws are designed with the paper's settings (100 laws, 900 GA
steps, 10 samples per evaluation, 10 clusters) and ``--samples`` fresh genomes
are drawn from them (equally from each kept law). The share of those whose MACs
fall inside the window is set against ``--samples`` genomes of the space's own
uniform sampler (``space.sample``, what random search trains). Two spaces: the
micro space with ``tfnas search``'s defaults for a 28x28x1 task, and the full
μNAS micro space (10 blocks, 128 channels).

    nice -n 10 python tools/bench/laws.py --out docs/laws_bench.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tfnas.genome import MicroSpace, analyze  # noqa: E402
from tfnas.search import SearchConfig, _space  # noqa: E402
from tfnas.strategies.law_design import design_laws, evaluate_law, law_fitness  # noqa: E402

SHAPE, CLASSES = (28, 28, 1), 10
WINDOWS = ((1e5, 2e5), (1e6, 2e6), (1e7, 2e7))


def spaces() -> dict:
    return {
        "micro (tfnas search defaults: 4 blocks, 3 layers, 32 channels, 2 dense)": _space(
            SearchConfig(space="micro", strategy="laws"), SHAPE, CLASSES
        ),
        "micro (full μNAS: 10 blocks, 3 layers, 128 channels, 3 dense)": MicroSpace(SHAPE, CLASSES),
    }


def run(samples: int, seed: int, windows=WINDOWS) -> dict:
    rows = []
    for name, space in spaces().items():
        start = time.perf_counter()
        rng = np.random.default_rng([seed, 1])
        uniform = np.array([analyze(space.sample(rng)).macs for _ in range(samples)], dtype=float)
        uniform_seconds = time.perf_counter() - start
        for i, window in enumerate(windows):
            designed = design_laws(space, window, "macs", seed=[seed, i])
            per_law = -(-samples // len(designed.laws))
            values = np.concatenate([
                evaluate_law(law, per_law, "macs", seed=[seed, i, j, 7])
                for j, law in enumerate(designed.laws)
            ])[:samples]  # fmt: skip
            inside = law_fitness(values, window).inside
            best = designed.stats[0]
            rows.append({
                "space": name, "window": list(window), "laws": len(designed.laws),
                "design_seconds": designed.design["seconds"],
                "population_on_target": designed.design["on_target"],
                "laws_inside": inside, "laws_samples": int(len(values)),
                "best_law_interval": list(best.interval), "best_law_inside": best.inside,
                "uniform_inside": float(np.mean((uniform >= window[0]) & (uniform <= window[1]))),
                "uniform_samples": samples, "uniform_sampling_seconds": uniform_seconds,
                "uniform_macs_percentiles_5_50_95": np.percentile(uniform, [5, 50, 95]).tolist(),
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return {"rows": rows}


def markdown(result: dict) -> str:
    lines = [
        "| space | MAC window | laws kept | design s | share inside: laws | share inside: uniform sampler | best law's mean ± std |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lo, hi = r["best_law_interval"]
        lines.append(
            f"| {r['space']} | {r['window'][0]:.0e}..{r['window'][1]:.0e} | {r['laws']} | "
            f"{r['design_seconds']:.1f} | **{100 * r['laws_inside']:.1f}%** | {100 * r['uniform_inside']:.1f}% | "
            f"{lo:.3g}..{hi:.3g} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=1000, help="genomes per window and sampler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    start = time.perf_counter()
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "settings": {
            "n_init": 100,
            "steps": 900,
            "n_eval": 10,
            "clusters": 10,
            "check_samples": 100,
            "samples": args.samples,
            "seed": args.seed,
            "input_shape": SHAPE,
            "classes": CLASSES,
        },  # fmt: skip
        **run(args.samples, args.seed),
    }
    result["seconds"] = time.perf_counter() - start
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
