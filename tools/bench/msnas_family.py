"""MSNAS on MNIST: search a meta-graph, derive its family, transfer it to CIFAR-10.

1. ``tfnas search --strategy msnas`` on MNIST (a 5,000-sample proxy set per
   trial, as in the paper), timed.
2. The family at thresholds 0.65, 0.5, 0.4, 0.3: each member trained on MNIST,
   converted to int8 and measured exactly (the paper's Table 1 in spirit).
3. The same meta-graph applied to the CIFAR-10 subset without searching again
   (the paper's Table 4 in spirit).

Writes ``--out/msnas_family.json`` and prints Markdown tables.

    python tools/bench/msnas_family.py --out docs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", default=str(SHARED / "mnist.npz"))
    p.add_argument("--cifar", default=str(SHARED / "cifar10_lossless_4k_1k.npz"))
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--epochs", type=int, default=2, help="epochs per search trial")
    p.add_argument("--family-epochs", type=int, default=3)
    p.add_argument(
        "--family-train", type=int, default=20000, help="MNIST training samples per member"
    )
    p.add_argument("--thresholds", default="0.65,0.5,0.4,0.3")
    p.add_argument("--run", default="tfnas_runs/msnas_mnist")
    p.add_argument("--out", type=Path, default=Path("docs"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    from tfnas.data import load_npz
    from tfnas.search import SearchConfig, run_search
    from tfnas.strategies import MetaGraph
    from tfnas.tuner import format_family, train_family

    thresholds = [float(t) for t in args.thresholds.split(",")]
    space = {
        "stages": 3,
        "nodes": 8,
        "channels": [8, 16, 24],
        "stem": {"op": "conv", "kernel": 3, "channels": 8, "stride": 2},
        "seed": args.seed,
    }
    config = SearchConfig(
        data=args.mnist, strategy="msnas", max_trials=args.trials, epochs=args.epochs,
        max_arena=None, max_flash=None, target="cortex-m", out=args.run, seed=args.seed,
        space_options=space, proxy_samples=5000,
    )  # fmt: skip
    t0 = time.perf_counter()
    report = run_search(config)
    search_seconds = time.perf_counter() - t0
    trials = [t for t in report["trials"] if t["status"] == "completed"]
    metagraph = MetaGraph.load(Path(args.run) / "metagraph.json")

    mnist = load_npz(args.mnist).subset(train=args.family_train, seed=args.seed)
    t0 = time.perf_counter()
    family = train_family(metagraph, mnist, thresholds, epochs=args.family_epochs,
                          target="cortex-m", seed=args.seed, out_dir=Path(args.run) / "family")  # fmt: skip
    family_seconds = time.perf_counter() - t0
    print(format_family(family), flush=True)

    cifar = load_npz(args.cifar)
    moved = metagraph.transfer(cifar.input_shape, cifar.num_classes)
    t0 = time.perf_counter()
    transfer = train_family(moved, cifar, thresholds, epochs=args.family_epochs * 2,
                            target="cortex-m", seed=args.seed)  # fmt: skip
    transfer_seconds = time.perf_counter() - t0
    print(format_family(transfer), flush=True)

    result = {
        "config": {**vars(args), "out": str(args.out), "space": space},
        "search": {
            "trials": len(trials),
            "seconds": round(search_seconds, 1),
            "train_seconds": round(sum(t.get("train_seconds", 0) for t in trials), 1),
            "best_int8_accuracy": max(t["int8_accuracy"] for t in trials),
            "history": metagraph.history,
        },
        "family": {
            "mnist": family,
            "seconds": round(family_seconds, 1),
            "train_samples": len(mnist.x_train),
        },
        "transfer": {
            "cifar10": transfer,
            "seconds": round(transfer_seconds, 1),
            "train_samples": len(cifar.x_train),
            "test_samples": len(cifar.x_test),
        },  # fmt: skip
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "msnas_family.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
