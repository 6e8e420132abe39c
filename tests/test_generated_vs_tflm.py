"""Generated int8 models: planned bytes against the real TFLM interpreter, and the genome estimate."""

import functools
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from tests.tflm_reference import tflm_heads
from tfnas._tf import keras
from tfnas.compress import quantize_aware, to_tflite
from tfnas.genome import MicroSpace, MSNASSpace
from tfnas.memory import estimate_memory, plan_memory
from tfnas.model import build_model
from tfnas.tflite import read_model

needs_tflm = pytest.mark.skipif(
    importlib.util.find_spec("tflite_micro") is None, reason="tflite-micro is not installed"
)
TASKS = [((16, 16, 1), 10), ((49, 10), 12), ((12, 12, 3), 5)]


@functools.cache
def generate(index: int):
    """Genome ``index``: alternating spaces and tasks; every third one after QAT.

    Cached: the real-TFLM tests (tests/test_memory_vs_real_tflm.py) check the same models.
    """
    shape, classes = TASKS[index % len(TASKS)]
    space = (MSNASSpace(shape, classes, stages=2, nodes=4, channels=(8, 16)) if index % 2 == 0
             else MicroSpace(shape, classes, max_blocks=4, max_channels=24))  # fmt: skip
    genome = space.sample(1000 + index)
    model = build_model(genome, seed=index)
    mode = "qat" if index % 3 == 2 else "ptq"
    if mode == "qat":
        model = quantize_aware(model)
    data = np.random.default_rng(index).uniform(0, 1, size=(8, *shape)).astype(np.float32)
    tflite = to_tflite(model, "int8", data, calibration_samples=8)
    keras.backend.clear_session()
    return genome, mode, tflite


def check_against_tflm(count, tmp_path):
    paths, plans, failures = [], {}, []
    for i in range(count):
        try:
            _, _, tflite = generate(i)
        except Exception as e:  # a converter failure is not a memory-model failure; count them
            failures.append((i, str(e)[:120]))
            continue
        path = tmp_path / f"m{i}.tflite"
        path.write_bytes(tflite)
        paths.append(path)
        plans[str(path)] = plan_memory(tflite).planned_bytes
    heads = tflm_heads(paths)
    mismatches = {p: (plans[p], heads[p]) for p in plans if plans[p] != heads[p]}
    assert not mismatches
    assert len(paths) >= 0.9 * count, failures


@needs_tflm
def test_generated_models_match_real_tflm_head(tmp_path):
    check_against_tflm(6, tmp_path)


@needs_tflm
@pytest.mark.slow
def test_50_generated_models_match_real_tflm_head(tmp_path):
    check_against_tflm(50, tmp_path)


def test_estimate_equals_converted_model_on_chains():
    # Chains and residual blocks (the micro space) convert to exactly the predicted graph.
    space = MicroSpace((16, 16, 1), 10, max_blocks=4, max_channels=24)
    for seed in range(4):
        genome = space.sample(seed)
        data = np.random.default_rng(seed).uniform(0, 1, size=(8, 16, 16, 1)).astype(np.float32)
        tflite = to_tflite(build_model(genome), "int8", data, calibration_samples=8)
        estimate = estimate_memory(genome)
        plan = plan_memory(tflite)
        assert estimate.planned_bytes == plan.planned_bytes
        assert len(estimate.ops) == len(plan.order)
        keras.backend.clear_session()


def test_estimate_by_hand():
    # 8x8x1 -> conv3x3(4) -> maxpool -> conv1x1(6) -> gap -> dense(3):
    # tensors 64, 256, 64, 96, MEAN out 6->16, FC 3->16, softmax 16; MEAN scratch 24->32, 16, 16.
    from tests.test_genome import chain, conv
    from tfnas.genome import Downsample, Genome

    genome = Genome([chain(conv(3, 4)), chain(conv(1, 6))], [Downsample()],
                    input_shape=(8, 8, 1), num_classes=3)  # fmt: skip
    est = estimate_memory(genome)
    assert [op.opcode for op in est.ops] == [
        "CONV_2D", "MAX_POOL_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"
    ]  # fmt: skip
    # Peak: conv0 (input 64 + output 256) = 320 bytes.
    assert est.planned_bytes == 320 and est.peak_op == 0
    assert estimate_memory(genome, element_bytes=4).planned_bytes == 4 * 320


def test_estimate_module_does_not_import_tensorflow():
    code = "import sys, tfnas.memory.estimate; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_estimate_merges_repeated_weightless_ops_as_the_converter_does():
    # Two pools of the same input and parameters, and two concatenations of the same inputs,
    # become one op each in the flatbuffer (the converter eliminates common subexpressions).
    import networkx as nx

    from tfnas.genome import Genome

    g = nx.DiGraph()
    g.add_node("a", op="conv", kernel=3, channels=4, stride=1, merge="concat")
    g.add_node("p", op="maxpool", kernel=3, stride=1, merge="concat")
    g.add_node("q", op="maxpool", kernel=3, stride=1, merge="concat")
    g.add_node("b", op="conv", kernel=1, channels=6, stride=1, merge="concat")
    g.add_node("c", op="dwconv", kernel=3, stride=1, merge="concat")
    g.add_edges_from([("in", "a"), ("in", "p"), ("in", "q"), ("in", "b"), ("a", "b")])
    g.add_edges_from([("in", "c"), ("a", "c"), ("b", "out"), ("c", "out"), ("p", "out")])
    g.add_edge("q", "out")
    genome = Genome([g], input_shape=(10, 10, 2), num_classes=3)
    data = np.random.default_rng(0).uniform(0, 1, size=(8, 10, 10, 2)).astype(np.float32)
    tflite = to_tflite(build_model(genome), "int8", data, calibration_samples=8)
    keras.backend.clear_session()
    plan = plan_memory(tflite)
    estimate = estimate_memory(genome)
    # QUANTIZE ops are left out: whether the input is requantized for the first concatenation
    # depends on the calibrated ranges (here it is, though the planned bytes agree).
    real_ops = sorted(op.opcode for op in read_model(tflite).subgraphs[0].operators)
    real_ops = [op for op in real_ops if op != "QUANTIZE"]
    assert real_ops.count("MAX_POOL_2D") == 1 and real_ops.count("CONCATENATION") == 2
    assert sorted(op.opcode for op in estimate.ops if op.opcode != "QUANTIZE") == real_ops
    assert estimate.planned_bytes == plan.planned_bytes == 3024


@needs_tflm
def test_deployed_cell_models_match_real_tflm_head(tmp_path):
    # The reordered and renumbered flatbuffers tfnas deploys for NAS-Bench-201 cells plan in the
    # real TFLM exactly as the replica and the genome estimate say.
    from tests.test_cells import _deployed
    from tfnas.genome import CellSpace

    space = CellSpace((16, 16, 1), 10, channels=(4, 8), cells=2)
    paths, expected = [], {}
    for seed in range(4):
        genome = space.sample(seed)
        _, deployed, _ = _deployed(genome, seed)
        path = tmp_path / f"cell{seed}.tflite"
        path.write_bytes(deployed)
        paths.append(path)
        expected[str(path)] = estimate_memory(genome).planned_bytes
        assert plan_memory(deployed).planned_bytes == expected[str(path)]
    assert tflm_heads(paths) == expected
