"""Write the Colab notebooks in ``notebooks/`` from the cell texts below.

The notebooks are generated so that they stay stripped of outputs and share
their first cells (the Colab badge, the install cell, the size switch); edit a
notebook here and rerun::

    python tools/notebooks.py           # rewrite notebooks/*.ipynb
    python tools/notebooks.py --check   # exit 1 if a committed notebook differs

Every notebook reads two environment variables: ``TFNAS_NOTEBOOK_SMALL=1``
shrinks every search and training to a few seconds (the tests run them so,
headless, with nbclient), and ``TFNAS_NOTEBOOK_DIR`` says where they write
(default ``tfnas_notebooks/`` beside the notebook).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
#: Where the repository is published; the Colab badges and the install cell point here.
REPOSITORY = "tfnas/tfnas"


def _badge(name: str) -> str:
    url = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{name}.ipynb"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def _setup(name: str) -> list[str]:
    """The code cells every notebook starts with: install in Colab, the size switch."""
    return [
        f'''\
# In Colab, install tfnas (it pins TensorFlow 2.21 and Keras 2; a Python 3.11 runtime).
# On your own machine, `make venv` in the repository has done this already.
import sys

if "google.colab" in sys.modules:
    %pip install -q "tfnas @ git+https://github.com/{REPOSITORY}"''',
        f'''\
import os
from pathlib import Path

# TFNAS_NOTEBOOK_SMALL=1 shrinks every search to a few seconds (the test suite runs the
# notebooks that way); leave it unset for real results.
SMALL = os.environ.get("TFNAS_NOTEBOOK_SMALL") == "1"
WORK = Path(os.environ.get("TFNAS_NOTEBOOK_DIR", "tfnas_notebooks")) / "{name}"
WORK.mkdir(parents=True, exist_ok=True)
print("small settings" if SMALL else "full settings", "- files go to", WORK)''',
    ]


QUICKSTART = [
    (
        "markdown",
        """\
# tfnas quickstart: a model for a board, from data to C files

{badge}

tfnas searches neural network architectures under a microcontroller's budget and returns int8
`.tflite` models with the exact TensorFlow Lite Micro (TFLM) arena they need. This notebook runs a
small search on scikit-learn's bundled 8x8 digits (no download) under the budget of an Arduino Nano
33 BLE Sense, looks at the results and the Pareto front, and writes an Arduino sketch.""",
    ),
    ("setup", ""),
    (
        "markdown",
        """\
## The data

`tfnas.data.load_digits()` returns a `Dataset` with `x_train`, `y_train`, `x_test`, `y_test`. For
your own arrays, see notebook 02; for MNIST in Colab, set `USE_MNIST = True` (Keras downloads it).""",
    ),
    (
        "code",
        """\
import numpy as np

from tfnas.data import Dataset, load_digits

USE_MNIST = False
if USE_MNIST:
    import tf_keras

    (x, y), (x_test, y_test) = tf_keras.datasets.mnist.load_data()
    data = Dataset(x[..., None] / 255.0, y, x_test[..., None] / 255.0, y_test, "mnist")
else:
    data = load_digits(seed=0)
print(f"{data.name}: {len(data.x_train)} training and {len(data.x_test)} test samples of shape "
      f"{data.input_shape}, {data.num_classes} classes")""",
    ),
    (
        "markdown",
        """\
## The budget

A board from the catalogue gives the arena and flash bounds after the headroom your application keeps
for itself, and the TFLM build whose memory rules apply (CMSIS-NN kernels on this board). Here the
model gets 10% of the board's SRAM and flash.""",
    ),
    (
        "code",
        """\
from tfnas.objectives import DEVICES

for device in DEVICES.values():
    print(f"{device.name:<28} {device.core:<11} {device.clock_mhz:>4} MHz  "
          f"SRAM {device.sram_bytes // 1024:>5} KiB  flash {device.flash_bytes // 1024:>5} KiB  "
          f"{device.target}")
board = DEVICES["arduino-nano-33-ble-sense"]
budget = board.budget(ram_headroom=0.9, flash_headroom=0.9)
print()
print(budget)""",
    ),
    (
        "markdown",
        """\
## The search

The search space, the strategy (an aging-evolution Oracle) and the tuner follow keras-tuner's shape.
Candidates that cannot fit are rejected before any training, from an exact estimate of their arena.
Each trial trains a Keras model, converts it to int8 and measures the flatbuffer.""",
    ),
    (
        "code",
        """\
import tfnas
from tfnas.strategies import AgingEvolutionOracle
from tfnas.tuner import NASTuner

TRIALS, EPOCHS = (3, 1) if SMALL else (20, 8)
space = tfnas.MicroSpace(data.input_shape, data.num_classes, max_blocks=4, max_channels=32)
oracle = AgingEvolutionOracle(space, budget, max_trials=TRIALS, population_size=max(2, TRIALS // 2),
                              sample_size=2, seed=0)
tuner = NASTuner(oracle, directory=WORK, project_name="search", overwrite=True, verbose=0)
tuner.search(data.x_train, data.y_train, validation_data=(data.x_test, data.y_test), epochs=EPOCHS)
tuner.results_summary()""",
    ),
    (
        "markdown",
        """\
## Results and the Pareto front

`tuner.report()` has every trial with its int8 accuracy (measured with LiteRT on the test split) and
its exact memory on the board's TFLM build. The plot shows accuracy against arena, flash and MACs; the
step line is the 2-D front.""",
    ),
    (
        "code",
        """\
from IPython.display import Image, display

report = tuner.report()
best = next(r for r in report["trials"] if r["trial_id"] == report["best"])
print(f"best trial {best['trial_id']}: int8 accuracy {best['int8_accuracy']:.3f}, "
      f"arena {best['arena_bytes']:,} B (bound {budget.max_arena_bytes:,}), "
      f"flash {best['flash_bytes']:,} B, {best['macs']:,} MACs")
assert best["feasible"] and best["arena_bytes"] <= budget.max_arena_bytes
tuner.plot_pareto(WORK / "pareto.png")
display(Image(filename=str(WORK / "pareto.png")))""",
    ),
    (
        "markdown",
        """\
## Export to C

`render_board` writes a sketch folder for the Arduino_TensorFlowLite library: the model as a
16-byte-aligned C array, an op resolver with exactly its operators, and `kTensorArenaSize` for the
board's TFLM build. From a shell, `tfnas export best.tflite --out DIR --board NAME` does the same for
any `.tflite`.""",
    ),
    (
        "code",
        """\
import re

from tfnas.export import render_board

best_tflite = tuner.get_best_tflite(1)[0]
(WORK / "best.tflite").write_bytes(best_tflite)
files = render_board("arduino", best_tflite, WORK / "tfnas_digits", target=budget.target)
for path in files:
    print(f"{path}  ({path.stat().st_size:,} bytes)")
header = files[-1].read_text()
print(re.search(r"constexpr int kTensorArenaSize = \\d+;", header).group(0))
print("\\n".join(line for line in files[0].read_text().splitlines() if "resolver" in line))""",
    ),
]

CUSTOM = [
    (
        "markdown",
        """\
# Your own data, your own constraints, your own space

{badge}

A sensor task: three-axis accelerometer windows (64 samples at 25 Hz) in four classes. The data are
generated here so the notebook runs anywhere; replace them with your arrays. Then constraints in
bytes, MACs and modelled latency, and a search space sized for the task.""",
    ),
    ("setup", ""),
    (
        "code",
        """\
import numpy as np


def motion_windows(n, seed):
    \"\"\"Idle, walking (1.8 Hz), running (3 Hz, stronger) and shaking (6 Hz) windows, 3 axes.\"\"\"
    rng = np.random.default_rng(seed)
    t = np.arange(64) / 25.0
    y = rng.integers(0, 4, n)
    freq = np.array([0.0, 1.8, 3.0, 6.0])[y]
    amp = np.array([0.0, 0.6, 1.2, 0.8])[y]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 3))
    axes = np.array([1.0, 0.5, 0.3])
    x = amp[:, None, None] * axes * np.sin(2 * np.pi * freq[:, None, None] * t[None, :, None] + phase)
    x += rng.normal(0, 0.15, x.shape)
    return x.astype("float32"), y


x_train, y_train = motion_windows(600 if SMALL else 3000, seed=0)
x_test, y_test = motion_windows(200 if SMALL else 1000, seed=1)
# layout="signals": (n, steps, channels) windows stay 1-D (without it, 3-D arrays are grey images)
np.savez_compressed(WORK / "motion.npz", x_train=x_train, y_train=y_train, x_test=x_test,
                    y_test=y_test, layout="signals")
print(x_train.shape, np.bincount(y_train))""",
    ),
    (
        "markdown",
        """\
`load_npz` checks a file the way `tfnas search --data` does: shapes, dtypes, NaN and infinity, label
range. Bad input gets one clear message before anything trains, for example labels that do not match
the samples:""",
    ),
    (
        "code",
        """\
from tfnas.data import load_npz
from tfnas.errors import InputError

data = load_npz(WORK / "motion.npz")
print(data.name, data.input_shape, data.num_classes, "classes")

np.savez(WORK / "bad.npz", x_train=x_train, y_train=y_train[:-5], x_test=x_test, y_test=y_test)
try:
    load_npz(WORK / "bad.npz")
except InputError as error:
    print("InputError:", error)""",
    ),
    (
        "markdown",
        """\
## Constraints

Bounds in bytes (the whole TFLM arena, `arena="total"`, and the flatbuffer), in MACs, and in
milliseconds of modelled latency on a Raspberry Pi Pico (Cortex-M0+ at 133 MHz, reference kernels).
The latency model is an analytic estimate, not a measurement; `docs/latency.md` says how far to trust
it.""",
    ),
    (
        "code",
        """\
from tfnas.objectives import Constraints

constraints = Constraints(max_arena_bytes=12_000, max_flash_bytes=40_000, max_macs=400_000,
                          max_latency_ms=20.0, arena="total", target="cortex-m",
                          device="raspberry-pi-pico")
print(constraints.bounds())""",
    ),
    (
        "markdown",
        """\
## A search space for the task

`MicroSpace` takes 1-D signals (`(steps, channels)`) as well as images. Narrow it to what the budget
can hold: few blocks, few channels, small kernels. Every genome is a DAG you can look at, and its
memory can be estimated without TensorFlow.""",
    ),
    (
        "code",
        """\
import tfnas

space = tfnas.MicroSpace(data.input_shape, data.num_classes, max_blocks=3, max_channels=16,
                         max_dense=1, max_units=32, kernels=(3, 5))
genome = space.sample(seed=3)
print(genome.summary())  # genome.to_json() is the exact, reloadable form
estimate = tfnas.estimate_memory(genome)
print(f"{len(estimate.ops)} operators after conversion, planned arena {estimate.planned_bytes:,} B "
      f"(estimated from the genome, before any training)")""",
    ),
    (
        "code",
        """\
from tfnas.strategies import RandomSearchOracle
from tfnas.tuner import NASTuner

TRIALS, EPOCHS = (3, 1) if SMALL else (15, 10)
oracle = RandomSearchOracle(space, constraints, max_trials=TRIALS, seed=1)
tuner = NASTuner(oracle, directory=WORK, project_name="motion", overwrite=True, verbose=0)
tuner.search(data.x_train, data.y_train, validation_data=(data.x_test, data.y_test), epochs=EPOCHS)
report = tuner.report()
print(f"{'trial':>5} {'int8 acc':>8} {'arena B':>8} {'flash B':>8} {'MACs':>9} {'ms':>6} feasible")
for r in report["trials"]:
    if r["status"] == "completed":
        print(f"{r['trial_id']:>5} {r['int8_accuracy']:8.3f} {r['arena_bytes']:8,} {r['flash_bytes']:8,} "
              f"{r['macs']:9,} {r['latency_ms']:6.2f} {r['feasible']}")
print(len(report["rejected"]), "candidates rejected before training")
for r in report["trials"]:
    if r["status"] == "completed" and r["feasible"]:
        assert r["arena_bytes"] <= 12_000 and r["macs"] <= 400_000 and r["latency_ms"] <= 20.0""",
    ),
    (
        "markdown",
        """\
The same search from the shell, with the data file and the bounds as flags (`tfnas search -h` lists
them all; a config file holds the space options):

```
tfnas search --data motion.npz --strategy random --max-trials 15 --epochs 10 \\
    --max-arena 12000 --max-flash 40000 --max-macs 400000 --target cortex-m --out runs/motion
```""",
    ),
]

MSNAS = [
    (
        "markdown",
        """\
# MSNAS: one search, a model family, a model for each board

{badge}

MSNAS (Cheng et al., 2019) learns connection weights on a meta-graph while it searches. Pruning the
meta-graph at several thresholds then gives a nested family of models without searching again, and
each board gets the largest member that fits it. See `docs/msnas.md`.""",
    ),
    ("setup", ""),
    (
        "code",
        """\
import tfnas
from tfnas.data import load_digits
from tfnas.objectives import Constraints
from tfnas.strategies import MetaGraph, MSNASOracle
from tfnas.tuner import NASTuner

data = load_digits(seed=0)
TRIALS, EPOCHS = (3, 1) if SMALL else (30, 6)
metagraph = MetaGraph(data.input_shape, data.num_classes, stages=2, nodes=4 if SMALL else 6,
                      channels=[8, 16], seed=0)
oracle = MSNASOracle(metagraph, Constraints(max_arena_bytes=40_000, arena="total"),
                     max_trials=TRIALS, seed=0)
tuner = NASTuner(oracle, directory=WORK, project_name="msnas", overwrite=True, verbose=0)
tuner.search(data.x_train, data.y_train, validation_data=(data.x_test, data.y_test), epochs=EPOCHS)
tuner.results_summary(5)
metagraph.save(WORK / "metagraph.json")""",
    ),
    (
        "markdown",
        """\
## The family

`derive_family` keeps, at each threshold, the edges whose learned weight reaches it; a higher threshold
gives a smaller model, and each member is a sub-graph of the next. `train_family` trains, converts and
measures each one exactly.""",
    ),
    (
        "code",
        """\
from tfnas.tuner import format_family, train_family

THRESHOLDS = [0.65, 0.5, 0.4, 0.3]
for member in metagraph.derive_family(THRESHOLDS):
    print(f"{member.name}: threshold {member.threshold}, {member.nodes} nodes, {member.edges} edges")
rows = train_family(metagraph, data, THRESHOLDS, epochs=EPOCHS, target="cortex-m-cmsis",
                    out_dir=WORK / "family")
print(format_family(rows))
assert all(a["edges"] <= b["edges"] for a, b in zip(rows, rows[1:]))  # nested, smallest first""",
    ),
    (
        "markdown",
        """\
## One family, several boards

Each board's budget (here: the model may use 3% of its SRAM and 10% of its flash) picks the largest
member that fits, from the measurements above.""",
    ),
    (
        "code",
        """\
from tfnas.errors import InfeasibleModelError
from tfnas.objectives import DEVICES

members = metagraph.derive_family(THRESHOLDS)
measured = {m.genome.canonical_hash(): r for m, r in zip(members, rows)}
for name in ["stm32f446re", "arduino-nano-33-ble-sense", "stm32f746zg", "stm32h743"]:
    device = DEVICES[name]
    try:
        member, metrics = metagraph.fit_device(
            device, THRESHOLDS, ram_headroom=0.97, flash_headroom=0.9,
            measure=lambda genome, target: measured[genome.canonical_hash()])
        budget = device.budget(ram_headroom=0.97, flash_headroom=0.9)
        print(f"{name:<26} arena bound {budget.max_arena_bytes:>7,} B: {member.name} "
              f"(arena {metrics['arena_bytes']:,} B, int8 accuracy {metrics['int8_accuracy']:.3f})")
    except InfeasibleModelError as error:
        print(f"{name:<26} {error}")""",
    ),
    (
        "markdown",
        """\
The meta-graph also transfers to another task of a different shape without searching again:
`metagraph.transfer(input_shape, num_classes)`, or from the shell
`tfnas family RUN_DIR --data other.npz`.""",
    ),
]

INSPECT = [
    (
        "markdown",
        """\
# Inspect any `.tflite`: the memory timeline, three TFLM builds, and operator reordering

{badge}

`tfnas.inspect` reads a flatbuffer (no TensorFlow needed) and replicates TFLM's arena planner: the
exact planned bytes, the persistent tail of each TFLM build, the smallest working arena, MACs and
flash. Point `MODEL` at your own file; here a small branching network is built and converted.""",
    ),
    ("setup", ""),
    (
        "code",
        """\
import numpy as np

import tfnas
from tfnas.genome.cells import CellSpace

MODEL = WORK / "cell.tflite"
space = CellSpace((16, 16, 1), 10, channels=(8, 16), cells=1)
genome = space.sample(seed=4)  # a NAS-Bench-201 cell: six edges, parallel branches
model = tfnas.build_model(genome, seed=0)
calibration = np.random.default_rng(0).random((50, 16, 16, 1), dtype=np.float32)
MODEL.write_bytes(tfnas.to_tflite(model, "int8", calibration))
print(MODEL, MODEL.stat().st_size, "bytes")""",
    ),
    (
        "code",
        """\
from tfnas.inspection import format_table

report = tfnas.inspect(MODEL, target="cortex-m")
print(format_table(report))""",
    ),
    (
        "markdown",
        """\
## The memory timeline

Which tensors are alive at each operator and where the planner put them; the peak operator sets the
arena.""",
    ),
    (
        "code",
        """\
from IPython.display import Image, display

from tfnas.inspection import plot_memory

plot_memory(report, WORK / "timeline.png")
display(Image(filename=str(WORK / "timeline.png")))
print("peak at operator", report["peak_op"], report["ops"][report["peak_op"]]["opcode"])""",
    ),
    (
        "markdown",
        """\
## Three TFLM builds side by side

The planned part is the same everywhere; the persistent tail depends on the pointer size and the
kernels: a 64-bit host, a 32-bit Cortex-M with reference kernels, and CMSIS-NN on a Cortex-M4.
`kTensorArenaSize` must come from the build you flash.""",
    ),
    (
        "code",
        """\
print(f"{'target':<16} {'planned':>8} {'persistent':>10} {'arena_used':>10} {'min arena':>9}")
for target in ("host", "cortex-m", "cortex-m-cmsis"):
    r = tfnas.inspect(MODEL, target=target)
    print(f"{target:<16} {r['planned_bytes']:>8,} {r['persistent_bytes']:>10,} {r['arena_bytes']:>10,} "
          f"{r['min_arena_bytes']:>9,}")""",
    ),
    (
        "markdown",
        """\
## Operator reordering

TFLM runs operators in the order the file lists them, and that order changes which tensors are alive
together. `best_order` searches the topological orders for the smallest planned arena;
`reorder_operators` writes it back. The outputs do not change, as LiteRT confirms below.""",
    ),
    (
        "code",
        """\
from ai_edge_litert.interpreter import Interpreter

from tfnas.memory.reorder import best_order
from tfnas.tflite.writer import reorder_operators

found = best_order(MODEL, target="cortex-m")
reordered = reorder_operators(MODEL.read_bytes(), found.order)
(WORK / "cell_reordered.tflite").write_bytes(reordered)
after = tfnas.inspect(reordered, target="cortex-m")
print(f"planned arena {found.original_planned_bytes:,} B -> {found.planned_bytes:,} B "
      f"(optimal: {found.exact}); kTensorArenaSize {report['min_arena_bytes']:,} -> "
      f"{after['min_arena_bytes']:,} B")
assert after["planned_bytes"] == found.planned_bytes <= found.original_planned_bytes


def run(tflite, x):
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


x = np.random.default_rng(1).integers(-128, 128, (1, 16, 16, 1), dtype=np.int8)
assert np.array_equal(run(MODEL.read_bytes(), x), run(reordered, x))
print("outputs identical")""",
    ),
    (
        "markdown",
        """\
From a shell: `tfnas inspect MODEL.tflite --target all --reorder OUT.tflite --plot timeline.png`.""",
    ),
]

NOTEBOOK_CELLS = {
    "01_quickstart": QUICKSTART,
    "02_custom_data_and_constraints": CUSTOM,
    "03_msnas_family": MSNAS,
    "04_inspect_tflite": INSPECT,
}


def build(name: str) -> nbformat.NotebookNode:
    """The notebook ``name``, without outputs."""
    cells = []
    for kind, text in NOTEBOOK_CELLS[name]:
        if kind == "setup":
            cells += [nbformat.v4.new_code_cell(text) for text in _setup(name)]
            continue
        text = text.replace("{badge}", _badge(name))
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cells.append(make(text))
    for i, cell in enumerate(cells):  # stable ids, so regenerating changes nothing
        cell["id"] = f"{name[:2]}-{i:02d}"
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": []},
    }
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    NOTEBOOKS.mkdir(exist_ok=True)
    stale = []
    for name in NOTEBOOK_CELLS:
        path = NOTEBOOKS / f"{name}.ipynb"
        text = nbformat.writes(build(name)) + "\n"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"out of date (run python tools/notebooks.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
