"""The memory model against real TFLM builds: the operator zoo and generated models.

Generates the operator zoo (``tests/op_zoo.py``) and ``--generated`` models from
tfnas's search spaces (micro and MSNAS genomes on several input shapes; int8
PTQ, int8 QAT, float32 and int16x8), then, for each target, compares tfnas's
planned bytes, persistent bytes, ``arena_used_bytes()`` and smallest working
arena with the real TFLM built from ``../shared/tflm-src`` (host directly, the
32-bit builds under ``qemu-arm``; see ``tests/real_tflm.py``). Writes one JSON
with every model's numbers and a per-builtin coverage table, and prints the
summary that docs/memory.md quotes.

    python tools/bench/memory_vs_tflm.py --generated 200 --out docs/memory_vs_tflm.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TARGETS = ("host", "cortex-m", "cortex-m-cmsis")
TASKS = [((16, 16, 1), 10), ((49, 10), 12), ((12, 12, 3), 5), ((28, 28, 1), 10), ((8, 8, 2), 4)]
MODES = ("ptq", "ptq", "qat", "float32", "int16x8")


def generated_model(index: int) -> tuple[str, bytes]:
    """Genome ``index``: spaces, tasks and quantisation modes in turn."""
    import numpy as np

    from tfnas._tf import keras
    from tfnas.compress import quantize_aware, to_tflite
    from tfnas.genome import MicroSpace, MSNASSpace
    from tfnas.model import build_model

    shape, classes = TASKS[index % len(TASKS)]
    if index % 2 == 0:
        space = MSNASSpace(shape, classes, stages=2, nodes=4, channels=(8, 16))
    else:
        space = MicroSpace(shape, classes, max_blocks=4, max_channels=24)
    mode = MODES[(index // 2) % len(MODES)]
    model = build_model(space.sample(5000 + index), seed=index)
    if mode == "qat":
        model = quantize_aware(model)
    data = np.random.default_rng(index).uniform(0, 1, size=(8, *shape)).astype(np.float32)
    convert = {"ptq": "int8", "qat": "int8"}.get(mode, mode)
    tflite = to_tflite(model, convert, data, calibration_samples=8)
    keras.backend.clear_session()
    return f"gen{index:03d}_{type(space).__name__}_{mode}", tflite


def make_models(out: Path, generated: int) -> tuple[list[Path], list[str]]:
    from tests import op_zoo

    paths = [Path(p) for p, _ in op_zoo.generate_all(out / "zoo", harness=False)]
    failures = []
    (out / "gen").mkdir(parents=True, exist_ok=True)
    for i in range(generated):
        try:
            name, tflite = generated_model(i)
        except Exception as exc:  # noqa: BLE001 - a converter failure is counted, not fatal
            failures.append(f"gen{i:03d}: {str(exc)[:160]}")
            continue
        path = out / "gen" / f"{name}.tflite"
        path.write_bytes(tflite)
        paths.append(path)
    return paths, failures


def op_types(path: Path) -> dict[str, list[str]]:
    """Per opcode of the model, the types its kernels ran on (first non-constant input)."""
    from tfnas.tflite import read_model

    found: dict[str, set[str]] = defaultdict(set)
    for sg in read_model(path).subgraphs:
        for op in sg.operators:
            ins = [sg.tensors[i] for i in op.inputs if i >= 0]
            data = [t for t in ins if not t.is_constant] or ins  # TRANSPOSE_CONV: input 2
            dtype = data[0].dtype if data else "NONE"
            found[op.opcode].add(dtype)
    return {code: sorted(types) for code, types in sorted(found.items())}


def run(paths: list[Path], targets: list[str], workers: int) -> dict:
    from tests import real_tflm
    from tfnas.errors import UnsupportedModelError
    from tfnas.inspection import inspect

    rows = []
    for target in targets:
        real_tflm.ensure_built(target)
        items, refused = [], []
        for path in paths:
            try:
                items.append((path, inspect(path, target=target)))
            except UnsupportedModelError as exc:
                refused.append((path, str(exc)))
        start = time.perf_counter()
        results = real_tflm.compare_many(target, items, workers=workers)
        for (path, report), res in zip(items, results, strict=True):
            rows.append(
                {
                    "model": path.name,
                    "kind": path.parent.name,
                    "target": target,
                    "opcodes": op_types(path),
                    "exact": report["exact"],
                    "reasons": report["reasons"],
                    "tfnas": res.ours,
                    "tflm": res.real,
                    "equal": res.equal,
                    "error": res.error,
                }
            )
        for path, why in refused:
            really_fails = not real_tflm.run_harness(target, path, 16 << 20)["ok"]
            rows.append(
                {
                    "model": path.name,
                    "kind": path.parent.name,
                    "target": target,
                    "opcodes": op_types(path),
                    "refused": why,
                    "equal": really_fails,
                }
            )
        equal = sum(r["equal"] for r in rows if r["target"] == target)
        total = sum(r["target"] == target for r in rows)
        print(f"{target}: {equal} of {total} models equal ({time.perf_counter() - start:.0f} s)")
        for r in rows:
            if r["target"] == target and not r["equal"]:
                print(
                    f"  MISMATCH {r['model']}: tfnas {r.get('tfnas')} tflm {r.get('tflm')} "
                    f"{r.get('error', '') or r.get('refused', '')}"
                )
    return {"rows": rows}


def coverage(rows: list[dict]) -> dict:
    """Per builtin and target: models containing it, and how many were equal."""
    table: dict = defaultdict(lambda: defaultdict(lambda: {"models": 0, "equal": 0}))
    for r in rows:
        for code in r["opcodes"]:
            cell = table[code][r["target"]]
            cell["models"] += 1
            cell["equal"] += bool(r["equal"])
    return {code: dict(cells) for code, cells in sorted(table.items())}


_NOT_RUNNABLE = {
    "VAR_HANDLE": "needs MicroResourceVariables, which MicroInterpreter does not create",
    "READ_VARIABLE": "as VAR_HANDLE",
    "ASSIGN_VARIABLE": "as VAR_HANDLE",
    "CALL_ONCE": "converted models use it only for resource variables (as VAR_HANDLE)",
}


_SHORT = {"FLOAT32": "f32", "INT8": "i8", "INT16": "i16", "INT32": "i32", "INT64": "i64",
          "BOOL": "bool", "UINT8": "u8"}  # fmt: skip


def _types(rows: list[dict], code: str) -> str:
    found = {t for r in rows for t in r["opcodes"][code]}
    return " ".join(sorted(_SHORT.get(t, t.lower()) for t in found))


def coverage_table(rows: list[dict], targets: list[str]) -> str:
    """Markdown: every TFLM builtin x target, exact / refused / not runnable, with counts."""
    from tfnas.memory.kernels import TFLM_BUILTIN_OPS

    lines = ["| builtin | " + " | ".join(targets) + " |", "|---" * (len(targets) + 1) + "|"]
    for code in sorted(TFLM_BUILTIN_OPS):
        cells = []
        for t in targets:
            mine = [r for r in rows if r["target"] == t and code in r["opcodes"]]
            compared = [r for r in mine if "refused" not in r]
            # A refusal counts for the operator it names, not for the model's other ops.
            refused = [r for r in mine if f"({code}) of subgraph" in r.get("refused", "")]
            if not compared and not refused:
                cells.append(f"not runnable: {_NOT_RUNNABLE[code]}" if code in _NOT_RUNNABLE
                             else "rule from source, no model")  # fmt: skip
                continue
            parts = []
            if compared:
                equal = sum(r["equal"] for r in compared)
                kinds = _types(compared, code)
                word = "exact" if equal == len(compared) else "MISMATCH"
                parts.append(f"{word} {equal}/{len(compared)} ({kinds})")
            if refused:
                ok = sum(r["equal"] for r in refused)
                kinds = _types(refused, code)
                parts.append(f"refused {len(refused)} ({kinds}), TFLM fails too: {ok}")
            cells.append(", ".join(parts))
        lines.append(f"| {code} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--generated", type=int, default=200)
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--models", type=Path, help="reuse the models in this folder")
    ap.add_argument("--save", type=Path, help="keep the generated models in this folder")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "memory_vs_tflm.json")
    ap.add_argument("--table", type=Path, help="only print the coverage table of this JSON")
    args = ap.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        found = {r["target"] for r in saved["rows"]}
        print(coverage_table(saved["rows"], [t for t in TARGETS if t in found]))
        return 0
    targets = args.targets.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        if args.models:
            paths = sorted(args.models.rglob("*.tflite"))
            failures = []
        else:
            paths, failures = make_models(args.save or Path(tmp), args.generated)
        made = time.perf_counter() - start
        print(f"{len(paths)} models ({len(failures)} conversions failed) in {made:.0f} s")
        result = run(paths, targets, args.workers)
    rows = result["rows"]
    summary = {
        t: {
            kind: {
                "models": sum(r["target"] == t and r["kind"] == kind for r in rows),
                "equal": sum(r["target"] == t and r["kind"] == kind and r["equal"] for r in rows),
            }
            for kind in ("zoo", "gen")
        }
        for t in targets
    }
    from tfnas.memory.kernels import TFLM_BUILTIN_OPS

    cov = coverage(rows)
    builtins = sorted(set(cov) & TFLM_BUILTIN_OPS)
    print(f"builtins covered: {len(builtins)}")
    print(json.dumps(summary, indent=1))
    args.out.write_text(
        json.dumps(
            {
                "command": "python tools/bench/memory_vs_tflm.py " + " ".join(sys.argv[1:]),
                "summary": summary,
                "conversion_failures": failures,
                "builtins_covered": builtins,
                "coverage": cov,
                "rows": rows,
            },
            indent=1,
        )
    )
    return 0 if all(r["equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
