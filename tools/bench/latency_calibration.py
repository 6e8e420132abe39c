"""Latency calibration on the public measurements, and the genome estimate against the flatbuffer.

Part 1 fits the latency model (``tfnas.objectives.calibration``) to every
public per-model TFLM cycle count we could cite on a board of the catalogue,
with several choices of fitted coefficients, and prints each fit's
leave-one-out error. The measurements (DWT cycle counts, TFLM with CMSIS-NN,
int8, NXP FRDM-MCXN947, Cortex-M33 at 150 MHz) are from S. Mattner,
github.com/shanemmattner/embedded-agent-bridge, ``docs/ml-benchmark-comparison.md``
(2026-02-24, built with -Os; it corrects the person_detect count of
``docs/ml-bench-results.md``, 26,316,498, which a DWT reset bug inflated).

Part 2 samples genomes, converts each (untrained, PTQ int8 on random data)
and compares the latency model on the genome
(``estimate_genome_latency``, what screening uses) with the same model on the
converted flatbuffer (``estimate_latency``, what a trial reports): the largest
ratio is what ``tfnas.strategies.core.LATENCY_SLACK`` must cover.

    nice -n 10 python tools/bench/latency_calibration.py --genomes 40 --out docs/latency_calibration.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

MODELS = Path(__file__).resolve().parents[2].parent / "shared" / "tflm" / "models"

#: (model file, cycles) on the FRDM-MCXN947 with CMSIS-NN, -Os and -O2 builds (same source).
MCXN947_OS = [("hello_world_int8.tflite", 4813), ("person_detect.tflite", 11526407),
              ("micro_speech_quantized.tflite", 1705940)]  # fmt: skip
MCXN947_O2 = [("hello_world_int8.tflite", 4475), ("person_detect.tflite", 11595389),
              ("micro_speech_quantized.tflite", 1705633)]  # fmt: skip
FITS = ["scale", ["macs", "overhead"], ["conv", "depthwise", "overhead"], "groups", "kinds"]


def _csv(rows, folder: Path, name: str) -> Path:
    path = folder / name
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "board", "cycles"])
        for model, cycles in rows:
            w.writerow([str(MODELS / model), "frdm-mcxn947", cycles])
    return path


def part1() -> dict:
    from tfnas.errors import InputError
    from tfnas.objectives import estimate_latency
    from tfnas.objectives.calibration import calibrate_csv, format_calibration

    out = {"default_model": [], "fits": {}}
    for model, cycles in MCXN947_OS:
        est = estimate_latency(MODELS / model, "frdm-mcxn947")
        out["default_model"].append({"model": model, "measured_cycles": cycles,
                                     "model_cycles": est.total_cycles,
                                     "ratio": est.total_cycles / cycles})  # fmt: skip
    print("default model (uncalibrated) against the -Os measurements:")
    for r in out["default_model"]:
        print(f"  {r['model']:<32} measured {r['measured_cycles']:>12,}  model {r['model_cycles']:>14,.0f}"
              f"  model/measured {r['ratio']:.2f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for label, rows in (("Os", MCXN947_OS), ("O2", MCXN947_O2)):
            path = _csv(rows, Path(tmp), f"mcxn947_{label}.csv")
            for fit in FITS:
                key = f"{label}:{fit if isinstance(fit, str) else '+'.join(fit)}"
                try:
                    cal = calibrate_csv(path, fit)
                except InputError as e:
                    out["fits"][key] = {"error": str(e).split(": ", 1)[1]}
                    print(f"\n[{key}] refused: {out['fits'][key]['error']}")
                    continue
                out["fits"][key] = cal.to_dict()
                print(f"\n[{key}]\n{format_calibration(cal)}")
    return out


def part2(count: int) -> dict:
    from tfnas._tf import keras
    from tfnas.compress import to_tflite
    from tfnas.genome import MicroSpace, MSNASSpace
    from tfnas.memory import estimate_memory
    from tfnas.model import build_model
    from tfnas.objectives import estimate_latency
    from tfnas.objectives.latency import estimate_genome_latency

    tasks = [((28, 28, 1), 10), ((49, 10), 12), ((32, 32, 3), 10)]
    rows = []
    for i in range(count):
        shape, classes = tasks[i % len(tasks)]
        space = (MSNASSpace(shape, classes, nodes=5) if i % 2 == 0
                 else MicroSpace(shape, classes, max_blocks=5, max_channels=64))  # fmt: skip
        genome = space.sample(i)
        model = build_model(genome, seed=i)
        data = np.random.default_rng(i).uniform(0, 1, size=(16, *shape)).astype(np.float32)
        try:
            tflite = to_tflite(model, "int8", data)
        except Exception as e:  # reported, not hidden
            rows.append({"i": i, "space": space.name, "error": str(e)[:200]})
            continue
        row = {"i": i, "space": space.name}
        for board, kernels in (("frdm-mcxn947", "optimized"), ("frdm-mcxn947", "reference"),
                               ("raspberry-pi-pico", "reference")):  # fmt: skip
            g = estimate_genome_latency(genome, board, kernels=kernels,
                                        estimate=estimate_memory(genome))  # fmt: skip
            f = estimate_latency(tflite, board, kernels=kernels).latency_ms
            row[f"{board}/{kernels}"] = {"genome_ms": g, "flatbuffer_ms": f, "ratio": g / f}
        rows.append(row)
        print(json.dumps(row), flush=True)
        keras.backend.clear_session()
    ratios = [
        v["ratio"] for r in rows if "error" not in r for k, v in r.items() if isinstance(v, dict)
    ]
    summary = {"converted": sum("error" not in r for r in rows), "failed": sum("error" in r for r in rows),
               "ratio_min": min(ratios), "ratio_median": float(np.median(ratios)), "ratio_max": max(ratios)}  # fmt: skip
    print("genome estimate / flatbuffer estimate of latency:", json.dumps(summary))
    return {"rows": rows, "summary": summary}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genomes", type=int, default=40, help="genomes converted in part 2 (0: skip)")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not MODELS.is_dir():
        print(f"{MODELS} not found", file=sys.stderr)
        return 2
    result = {"calibration": part1()}
    if args.genomes:
        result["genome_vs_flatbuffer"] = part2(args.genomes)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
