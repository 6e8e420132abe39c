"""Distributed search throughput on this machine: trials per hour with 1 and 2 workers.

The same `tfnas search` (random search, so every run trains the same
architectures: trial ids seed the proposals) runs as one process, as a chief
with one worker, and as a chief with two workers (``--workers N``, each worker
given cores/N threads). Wall time from launch to the final report, trials
completed, trials per hour and the speed-up over one process are written to
one JSON file.

    python tools/bench/distributed.py --trials 8 --epochs 2 --out docs/distributed.json
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def mnist_subset(path: Path, train: int, test: int, seed: int) -> None:
    data = np.load(Path(__file__).resolve().parents[3] / "shared/data/mnist.npz")
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.choice(len(data["x_train"]), train, replace=False))
    te = np.sort(rng.choice(len(data["x_test"]), test, replace=False))
    np.savez(path, x_train=data["x_train"][tr], y_train=data["y_train"][tr],
             x_test=data["x_test"][te], y_test=data["y_test"][te])  # fmt: skip


def run(argv: list[str], workers: int | None, out: Path) -> dict:
    command = [sys.executable, "-m", "tfnas", "search", *argv, "--out", str(out)]
    if workers:
        command += ["--workers", str(workers)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    completed = [t for t in report["trials"] if t["status"] == "completed"]
    return {"workers": workers or 0, "wall_seconds": wall, "completed": len(completed),
            "trials_per_hour": 3600 * len(completed) / wall,
            "median_trial_seconds": float(np.median([t["seconds"] for t in completed])),
            "genomes": [t["genome"] for t in completed]}  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train", type=int, default=5000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mnist.npz"
        mnist_subset(data, args.train, args.test, args.seed)
        search = ["--data", str(data), "--strategy", "random", "--max-trials", str(args.trials),
                  "--epochs", str(args.epochs), "--max-arena", "60000", "--max-flash", "120000",
                  "--seed", str(args.seed)]  # fmt: skip
        for workers in (None, 1, 2):
            rows.append(run(search, workers, Path(tmp) / f"run_{workers or 0}"))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "genomes"}), flush=True)
    same = all(r["genomes"] == rows[0]["genomes"] for r in rows)
    for r in rows:
        r["speedup"] = rows[0]["wall_seconds"] / r["wall_seconds"]
        r.pop("genomes")
    result = {"command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
              "cores": os.cpu_count(), "same_architectures": same, "settings": vars(args), "runs": rows}  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
