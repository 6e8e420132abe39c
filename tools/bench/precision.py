"""Precision analysis of one MNIST search: the Pareto models in six number formats.

1. ``tfnas search`` on MNIST (a 10,000-sample training subset per trial, all
   10,000 test images), or a resume of it when ``--run`` already holds it.
2. ``tfnas precision`` on its Pareto front: float32, float16 weights, dynamic
   range, int8 PTQ, int8 QAT and int16x8, each with LiteRT accuracy, flash,
   the exact arena for the three TFLM targets and TFLM's verdict.

Writes ``--out/precision.json`` and ``--out/precision.png`` and prints the
Markdown table (the run folder also gets precision.json, .md and .png).

    python tools/bench/precision.py --out docs
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(SHARED / "mnist.npz"))
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--proxy-samples", type=int, default=10000)
    p.add_argument("--max-arena", type=int, default=60000)
    p.add_argument("--max-flash", type=int, default=100000)
    p.add_argument("--qat-epochs", type=int, default=1)
    p.add_argument("--run", default="tfnas_runs/precision_mnist")
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from tfnas.precision import analyze_precision, format_precision, write_precision
    from tfnas.search import SearchConfig, run_search

    config = SearchConfig(
        data=args.data, max_trials=args.trials, epochs=args.epochs, max_arena=args.max_arena,
        max_flash=args.max_flash, target="cortex-m", out=args.run, seed=args.seed,
        proxy_samples=args.proxy_samples,
    )  # fmt: skip
    start = time.perf_counter()
    report = run_search(config, verbose=1)
    search_seconds = time.perf_counter() - start
    start = time.perf_counter()

    def progress(row: dict) -> None:
        done = f"{row['accuracy']:.4f}" if row["status"] == "ok" else "failed"
        print(
            f"trial {row['trial_id']} {row['label']}: {done} ({row['seconds']:.0f} s)", flush=True
        )

    result = analyze_precision(args.run, qat_epochs=args.qat_epochs, progress=progress)
    result["seconds"] = time.perf_counter() - start
    result["search_seconds_this_call"] = search_seconds
    result["search_trial_seconds"] = sum(r.get("seconds", 0.0) for r in report["trials"])
    written = write_precision(result, args.run)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "precision.json").write_text(json.dumps(result, indent=1))
    shutil.copyfile(written[2], args.out / "precision.png")
    print(format_precision(result))
    print()
    print(written[1].read_text())
    print(f"search: {result['search_trial_seconds']:.0f} s of trials; precision analysis: "
          f"{result['seconds']:.0f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
