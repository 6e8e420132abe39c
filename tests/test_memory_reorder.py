"""Operator reordering: valid, never worse, exact on small graphs, real TFLM agrees."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfnas.memory import best_order, plan_memory
from tfnas.memory.arena import plan_head, scratch_requests
from tfnas.memory.reorder import live_peak
from tfnas.memory.targets import get_target
from tfnas.tflite import read_model, reorder_operators

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS = SHARED / "tflm" / "models"
SMALL = ["c18_unas_micro_16x16x1", "c23_ops_mirrorpad_concat5_mean", "c22_ops_pad_concat6_mean"]

pytestmark = pytest.mark.skipif(not MODELS.is_dir(), reason=f"shared models not found at {MODELS}")


def _topological_orders(model, limit=20_000):
    sg = model.main
    producer = {t: op.index for op in sg.operators for t in op.outputs}
    preds = [{producer[t] for t in op.inputs if t in producer} for op in sg.operators]
    orders, prefix, done = [], [], set()

    def walk():
        if len(orders) >= limit:
            return
        if len(prefix) == len(preds):
            orders.append(tuple(prefix))
            return
        for v in range(len(preds)):
            if v not in done and preds[v] <= done:
                done.add(v)
                prefix.append(v)
                walk()
                prefix.pop()
                done.remove(v)

    walk()
    return orders


def _run_litert(data):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in interp.get_input_details():
        info = np.iinfo(d["dtype"])
        x = rng.integers(info.min, info.max, size=d["shape"], endpoint=True)
        interp.set_tensor(d["index"], x.astype(d["dtype"]))
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


@pytest.mark.parametrize("stem", SMALL)
def test_exact_search_matches_brute_force(stem):
    model = read_model(MODELS / f"{stem}.tflite")
    scratch, _ = scratch_requests(model, get_target("host"))
    orders = _topological_orders(model)
    assert len(orders) < 20_000
    brute = min(plan_head(model, scratch, o) for o in orders)
    found = best_order(model)
    assert found.exact
    assert found.planned_bytes == brute
    assert found.order in orders
    assert live_peak(model, list(found.order)) <= found.planned_bytes


@pytest.mark.parametrize("stem", SMALL + ["c01_dag_64x64x1"])
def test_reordered_model_is_bit_identical_and_smaller(stem, tmp_path):
    data = (MODELS / f"{stem}.tflite").read_bytes()
    found = best_order(data, max_evaluations=300)
    assert found.planned_bytes <= found.original_planned_bytes
    new = reorder_operators(data, found.order)
    assert len(new) == len(data)
    assert plan_memory(new).planned_bytes == found.planned_bytes
    for a, b in zip(_run_litert(data), _run_litert(new), strict=True):
        np.testing.assert_array_equal(a, b)


def test_reorder_finds_known_savings():
    assert best_order(MODELS / "c18_unas_micro_16x16x1.tflite").planned_bytes == 448
    assert best_order(MODELS / "c23_ops_mirrorpad_concat5_mean.tflite").planned_bytes == 27648
    found = best_order(MODELS / "c01_dag_64x64x1.tflite")
    assert found.planned_bytes == 82944 < found.original_planned_bytes == 89088


def test_large_graph_falls_back_to_heuristic():
    found = best_order(MODELS / "c02_dag_96x96x1.tflite", max_states=50)
    assert not found.exact
    assert found.planned_bytes <= found.original_planned_bytes == 179712


_TFLM_HEAD = """
import sys
from tflite_micro.python.tflite_micro import runtime
interp = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read())
interp.print_allocations()
"""


@pytest.mark.skipif(
    importlib.util.find_spec("tflite_micro") is None, reason="tflite-micro is not installed"
)
@pytest.mark.parametrize("stem", ["c18_unas_micro_16x16x1", "c23_ops_mirrorpad_concat5_mean"])
def test_real_tflm_head_after_reorder(stem, tmp_path):
    data = (MODELS / f"{stem}.tflite").read_bytes()
    found = best_order(data)
    path = tmp_path / "r.tflite"
    path.write_bytes(reorder_operators(data, found.order))
    result = subprocess.run(
        [sys.executable, "-c", _TFLM_HEAD, str(path)], capture_output=True, text=True, timeout=120
    )
    text = result.stdout + result.stderr
    heads = [int(w.split()[-2]) for w in text.splitlines() if "allocation head" in w]
    assert heads == [found.planned_bytes], text[-2000:]
