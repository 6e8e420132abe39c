"""Planning and `tfnas inspect` speed, beside the real TFLM interpreter's allocation.

Models: person_detect from ../shared/tflm and a generated MSNAS meta-graph model
(3 stages of 30 nodes, as in the MSNet paper) with 200+ operators. Reports
medians over repeated runs made in this one process (and subprocesses for the
whole CLI), so the ratios are comparable.

    python tools/bench/memory_bench.py --out docs/memory_bench.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def big_model(path: Path) -> None:
    """Convert an untrained 3x30-node MSNAS genome (PTQ int8) into ``path``."""
    code = f"""
import numpy as np
from tfnas.genome import MSNASSpace
from tfnas.model import build_model
from tfnas.compress import to_tflite
space = MSNASSpace((32, 32, 3), 10, stages=3, nodes=30, edge_probability=0.1, channels=(8, 16, 32))
genome = space.sample(0)
data = np.random.default_rng(0).uniform(0, 1, size=(8, 32, 32, 3)).astype(np.float32)
open({str(path)!r}, "wb").write(to_tflite(build_model(genome), "int8", data, calibration_samples=8))
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


TFLM_TIMER = """
import sys, time, statistics
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
times = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter(); runtime.Interpreter.from_bytes(data); times.append(time.perf_counter() - t)
print(statistics.median(times))
"""


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    from tfnas.memory import plan_memory
    from tfnas.memory.arena import plan_head, scratch_requests
    from tfnas.memory.targets import get_target
    from tfnas.tflite import read_model

    tmp = Path(tempfile.mkdtemp())
    models = {"person_detect": SHARED / "tflm" / "models" / "person_detect.tflite"}
    models["msnas_3x30"] = tmp / "msnas_3x30.tflite"
    big_model(models["msnas_3x30"])
    results = {}
    for name, path in models.items():
        data = path.read_bytes()
        model = read_model(data)
        scratch, _ = scratch_requests(model, get_target("host"))
        row = {
            "operators": len(model.main.operators),
            "tensors": len(model.main.tensors),
            "read_s": median_time(lambda d=data: read_model(d), args.repeat),
            "plan_head_s": median_time(lambda m=model, s=scratch: plan_head(m, s), args.repeat),
            "plan_memory_s": median_time(lambda d=data: plan_memory(d, "cortex-m"), args.repeat),
        }
        cli = [
            sys.executable,
            "-m",
            "tfnas",
            "inspect",
            str(path),
            "--json",
            "--target",
            "cortex-m",
        ]
        row["inspect_cli_s"] = median_time(
            lambda c=cli: subprocess.run(c, check=True, capture_output=True), 5
        )
        tflm = subprocess.run([sys.executable, "-c", TFLM_TIMER, str(path), "5"],
                              check=True, capture_output=True, text=True)  # fmt: skip
        row["tflm_interpreter_alloc_s"] = float(tflm.stdout.split()[-1])
        results[name] = row
        print(name, json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
