"""MNIST under the μNAS bounds: sampling laws against random search and aging evolution.

The setting of ``tools/bench/mnist_search.py`` (whose helpers this reuses):
2,500 B of planned arena, 4,500 B of weights and 30 M MACs on ``cortex-m``; the
micro space with 4 blocks of 2 layers, 16 channels and 2 dense layers of up to
32 units; the same seeded training subset, validation split, test subset,
epochs, batch size and seed for every strategy, and an equal number of trained
trials.

- ``laws``: :class:`tfnas.strategies.SamplingLawOracle`; laws are designed at
  the start for MAC windows (default: the range of screened uniform samples,
  split at 1, 2, 5 x 10^k; ``--law-metric``/``--law-range`` change it) with the
  paper's settings, then trials take the windows in turn;
- ``random``: :class:`tfnas.strategies.RandomSearchOracle`;
- ``evolution``: :class:`tfnas.strategies.AgingEvolutionOracle`.

    nice -n 10 python tools/bench/laws_search.py --trials 20 --epochs 4 --train 10000 --val 2000 \\
        --test 10000 --seed 1 --out docs/laws_search.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mnist_search as shared  # noqa: E402

SPACE = shared.MICRO_SPACE


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared.task_arguments(p, trials=20, epochs=4)
    p.add_argument("--law-metric", default="macs")
    p.add_argument("--law-range", nargs=2, type=float, help="default: from screened samples")
    p.add_argument("--device", default="arduino-nano-33-ble-sense", help="board for latency")
    p.add_argument("--strategies", default="laws,random,evolution")
    p.add_argument("--seed", type=int, default=1, help="keras-tuner takes 0 as no seed: start at 1")
    p.add_argument("--workdir", default="/tmp/tfnas_laws_bench")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)

    from tfnas.data import load_npz
    from tfnas.genome import MicroSpace
    from tfnas.strategies import AgingEvolutionOracle, RandomSearchOracle, SamplingLawOracle
    from tfnas.tuner import NASTuner

    data = load_npz(args.data)
    x, y, val, test = shared.split(data, args.train, args.val, args.test, args.seed)
    bounds = shared.BOUNDS
    constraints = shared.unas_constraints(args.device)
    space = MicroSpace((28, 28, 1), 10, **SPACE)
    result = {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "config": {
            **{k: v for k, v in vars(args).items() if k != "out"},
            "bounds": bounds,
            "constraints": constraints.to_dict(),
            "micro_space": SPACE,
        },  # fmt: skip
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "strategies": {},
    }
    fit = {"validation_data": val, "epochs": args.epochs, "batch_size": args.batch_size}
    for name in args.strategies.split(","):
        common = {"max_trials": args.trials, "seed": args.seed}
        start = time.perf_counter()
        if name == "laws":
            oracle = SamplingLawOracle(space, constraints, metric=args.law_metric,
                                       metric_range=args.law_range, **common)  # fmt: skip
        elif name == "random":
            oracle = RandomSearchOracle(space, constraints, **common)
        elif name == "evolution":
            oracle = AgingEvolutionOracle(space, constraints, population_size=args.population,
                                          sample_size=args.sample, **common)  # fmt: skip
        else:
            p.error(f"unknown strategy {name!r}")
        tuner = NASTuner(oracle, directory=args.workdir, project_name=name, overwrite=True)
        tuner.search(x, y, **fit)
        wall = time.perf_counter() - start
        rows = shared.trial_rows(oracle)
        dirs = {r["trial_id"]: tuner.get_trial_dir(r["trial_id"]) for r in rows}
        summary = shared.summarise(name, rows, len(oracle.rejected), wall, dirs, test)
        extra = {}
        if name == "laws":
            extra["windows"] = [list(w.target) for w in oracle.lawset.windows]
            extra["design_seconds"] = sum(w.design.get("seconds", 0) for w in oracle.lawset.windows)
        result["strategies"][name] = {
            **summary,
            **extra,
            "oracle_seed": oracle.seed,
            "trial_rows": rows,
        }
        print(json.dumps({**summary, **extra}), flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, indent=1))
    print(shared.markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
