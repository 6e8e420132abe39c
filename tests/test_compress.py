import os
import tempfile

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from tfnas._tf import keras
from tfnas.compress import (
    evaluate_tflite,
    match_pooling_ranges,
    prune_channels,
    prune_magnitude,
    pruning_schedule,
    quantize_aware,
    sparsity,
    to_tflite,
)
from tfnas.data import load_digits
from tfnas.errors import ConversionError, UnsupportedModelError
from tfnas.genome import MicroSpace, MSNASSpace, analyze
from tfnas.inspection import inspect
from tfnas.memory import estimate_memory, plan_memory
from tfnas.model import build_model
from tfnas.tflite import read_model


@pytest.fixture(scope="module")
def digits():
    return load_digits().subset(train=1000, test=200)


@pytest.fixture(scope="module")
def trained(digits):
    genome = MSNASSpace(digits.input_shape, 10, stages=2, nodes=4, channels=(16, 32)).sample(0)
    model = build_model(genome)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(digits.x_train, digits.y_train, epochs=8, batch_size=32, verbose=0)
    return genome, model


def _io_types(tflite):
    interpreter = Interpreter(model_content=tflite)
    return interpreter.get_input_details()[0]["dtype"], interpreter.get_output_details()[0]["dtype"]


def test_int8_ptq_keeps_accuracy_and_has_int8_io(digits, trained, tmp_path, monkeypatch):
    _, model = trained
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))  # a temp dir no other process writes to
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    tflite = to_tflite(model, "int8", digits.x_train)
    created = [f for f in os.listdir(private) if "autograph" not in f]
    assert not created  # nothing left behind (TF deletes its autograph files at exit)
    assert _io_types(tflite) == (np.int8, np.int8)
    float_pred = model.predict(digits.x_test, verbose=0)
    float_acc = float(np.mean(float_pred.argmax(1) == digits.y_test))
    result = evaluate_tflite(tflite, digits.x_test, digits.y_test, reference=float_pred)
    assert float_acc > 0.8
    assert result.accuracy >= float_acc - 0.03
    assert result.agreement >= 0.95 and result.samples == 200
    # every weight tensor is int8 and the analytic MACs survive conversion
    tensors = read_model(tflite).main.tensors
    assert {t.dtype for t in tensors if t.is_constant and len(t.shape) == 4} == {"INT8"}


@pytest.mark.slow  # about 50 s; tests/test_precision.py checks the TFLM verdicts in the default run
def test_comparison_modes_and_tflm_support(digits, trained):
    _, model = trained
    sizes = {}
    for mode in ("float32", "float16", "dynamic", "int16x8"):
        sizes[mode] = len(to_tflite(model, mode, digits.x_train))
    assert sizes["float32"] > sizes["float16"] > sizes["dynamic"]
    with pytest.raises(UnsupportedModelError):
        plan_memory(to_tflite(model, "dynamic"))
    assert plan_memory(to_tflite(model, "float32")).planned_bytes > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"mode": "int4"}, "Unknown conversion mode.*Received: mode='int4'"),
        ({"mode": "int8"}, "needs representative_data for calibration. Received: None"),
        ({"mode": "int8", "representative_data": np.zeros((4, 9, 9, 1), np.float32)},
         r"Expected samples of shape \(8, 8, 1\). Received: \(9, 9, 1\)"),
    ],
)  # fmt: skip
def test_conversion_errors(trained, kwargs, match):
    with pytest.raises(ConversionError, match=match):
        to_tflite(trained[1], **kwargs)


def test_pruning_schedule_fits_short_training():
    schedule = pruning_schedule(20, 0.6)
    cfg = schedule.get_config()["config"]
    assert cfg["frequency"] == 1 and cfg["end_step"] == 16
    with pytest.raises(ValueError, match="target_sparsity must be in"):
        pruning_schedule(20, 1.2)


def test_magnitude_pruning_reaches_target_and_leaves_tflite_size(digits, trained):
    genome, dense_model = trained
    model = build_model(genome)
    model.compile("adam", "sparse_categorical_crossentropy")
    pruned = prune_magnitude(model, digits.x_train, digits.y_train, target_sparsity=0.6, epochs=1)
    assert (
        0.58 <= sparsity(pruned) <= 0.62
    )  # 32 steps: TF-MOT's default frequency would prune nothing
    assert sparsity(dense_model) < 0.01
    dense = inspect(to_tflite(dense_model, "int8", digits.x_train))
    sparse = inspect(to_tflite(pruned, "int8", digits.x_train))
    # zeros are still stored: same weight bytes, same arena on the device
    assert sparse["weights_bytes"] == dense["weights_bytes"]
    assert sparse["planned_bytes"] == dense["planned_bytes"]


@pytest.mark.slow  # about 65 s; a QAT conversion is in the default run (the max-pool case below)
def test_qat_and_prune_preserving_qat_convert(digits, trained):
    genome, model = trained
    qat = quantize_aware(model)
    qat.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    qat.fit(digits.x_train, digits.y_train, epochs=1, verbose=0)
    match_pooling_ranges(qat)
    tflite = to_tflite(qat, "int8", digits.x_train)
    assert _io_types(tflite) == (np.int8, np.int8)
    assert evaluate_tflite(tflite, digits.x_test, digits.y_test).accuracy > 0.7

    pruned = prune_magnitude(
        build_model(genome), digits.x_train, digits.y_train, target_sparsity=0.5
    )
    pqat = quantize_aware(pruned, preserve_sparsity=True)
    pqat.compile("adam", "sparse_categorical_crossentropy")
    pqat.fit(digits.x_train, digits.y_train, epochs=1, verbose=0)
    kernels = [w.numpy() for w in pqat.weights if w.name.endswith("/kernel:0")]  # not depthwise
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert zeros >= 0.45
    to_tflite(pqat, "int8", digits.x_train)


def test_structured_pruning_really_shrinks(digits, trained):
    genome, model = trained
    smaller = prune_channels(genome, model, 0.5)
    before, after = analyze(genome), analyze(smaller)
    assert after.params < 0.7 * before.params and after.macs < 0.7 * before.macs
    t_before = plan_memory(to_tflite(model, "int8", digits.x_train))
    t_after = plan_memory(to_tflite(build_model(smaller), "int8", digits.x_train))
    assert t_after.planned_bytes < t_before.planned_bytes
    assert prune_channels(genome, model, 0.0) == genome


def test_structured_pruning_keeps_residual_adds_valid():
    space = MicroSpace((12, 12, 1), 4, max_blocks=4, max_channels=16)
    done = 0
    for seed in range(40):
        genome = space.sample(seed)
        if not any(g.nodes[n].get("merge") == "add" for g in genome.stages for n in g.nodes):
            continue
        smaller = prune_channels(genome, build_model(genome), 0.4)
        smaller.validate()
        assert analyze(smaller).params <= analyze(genome).params
        done += 1
        keras.backend.clear_session()
    assert done >= 3


def test_qat_converts_when_a_max_pool_feeds_concatenations_with_other_ranges():
    # After training, the pooled tensor feeds two concatenations whose learned ranges differ.
    # Without an output range on the max pool the converter stops with a 'same scale
    # constraint' error; with it, it requantizes after the pool.
    import networkx as nx

    from tfnas.genome import Downsample, Genome, chain_stage

    g = nx.DiGraph()
    g.add_node("a", op="conv", kernel=3, channels=4, stride=1, merge="concat")
    g.add_node("b", op="conv", kernel=3, channels=4, stride=1, merge="concat")
    g.add_edges_from([("in", "a"), ("in", "b"), ("a", "b"), ("in", "out"), ("b", "out")])
    genome = Genome(
        [chain_stage([{"op": "conv", "kernel": 3, "channels": 4, "stride": 1}]), g],
        [Downsample("maxpool")],
        input_shape=(12, 12, 1),
        num_classes=3,
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(64, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    qat = quantize_aware(build_model(genome))
    qat.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    qat.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert match_pooling_ranges(qat) == 1
    tflite = to_tflite(qat, "int8", x, calibration_samples=8)
    ops = [op.opcode for op in read_model(tflite).subgraphs[0].operators]
    assert ops.count("MAX_POOL_2D") == 1 and ops.count("CONCATENATION") == 2
    # The pooled tensor is requantized for both concatenations; conv "a" feeds only one, so
    # its requantize is folded into the conv. The genome estimate predicts the same graph.
    assert ops.count("QUANTIZE") == 2  # the pooled tensor, once per concatenation
    estimate = estimate_memory(genome, quantization="qat")
    assert sorted(op.opcode for op in estimate.ops) == sorted(ops)
    assert estimate.planned_bytes == plan_memory(tflite).planned_bytes
    keras.backend.clear_session()
