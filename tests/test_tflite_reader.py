"""Reading and rewriting .tflite flatbuffers without TensorFlow."""

import json
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from tfnas.errors import UnsupportedModelError
from tfnas.memory import plan_memory
from tfnas.tflite import read_model, reorder_operators, strip_strings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS = SHARED / "tflm" / "models"
ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not MODELS.is_dir(), reason=f"shared models not found at {MODELS}")


def _mutate(path, change):
    """Rebuild a model after ``change(ModelT)`` with the flatbuffers object API."""
    obj = schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)
    change(obj)
    builder = flatbuffers.Builder(1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _run_litert(data, seed=0):
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    interp.allocate_tensors()
    rng = np.random.default_rng(seed)
    for d in interp.get_input_details():
        if np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            x = rng.integers(info.min, info.max, size=d["shape"], endpoint=True)
        else:
            x = rng.standard_normal(d["shape"])
        interp.set_tensor(d["index"], x.astype(d["dtype"]))
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.tflite")), ids=lambda p: p.stem)
def test_counts_match_truth(path):
    truth = json.loads((SHARED / "tflm" / "truth" / "x86_64" / f"{path.stem}.json").read_text())
    model = read_model(path)
    assert model.size == truth["model_bytes"]
    assert len(model.subgraphs) == truth["subgraphs"]
    assert len(model.main.tensors) == truth["tensors_subgraph0"]
    assert len(model.main.operators) == truth["operators_subgraph0"]
    planned = {t["index"]: t["bytes"] for t in truth["tensors"] if t["where"] == "planned"}
    for t in model.main.tensors:
        if t.index in planned:
            assert t.nbytes == planned[t.index]
            assert not t.is_constant


def test_read_from_bytes_and_path_agree():
    path = MODELS / "c16_unas_tiny_32x32x1.tflite"
    a, b = read_model(path), read_model(path.read_bytes())
    assert a.main == b.main
    conv = a.main.operators[0]
    assert conv.opcode == "CONV_2D"
    assert conv.options["stride_w"] == 2 and conv.options["padding"] == 0
    weights = a.main.tensors[conv.inputs[1]]
    assert weights.is_constant and weights.dtype == "INT8"
    assert weights.quant_channels == weights.shape[0] == 4
    assert a.weights_bytes == 3852


def test_builtin_codes_above_127_use_builtin_code_field():
    code = schema.BuiltinOperator.STABLEHLO_ADD  # > 127

    def change(obj):
        obj.operatorCodes[0].deprecatedBuiltinCode = 127
        obj.operatorCodes[0].builtinCode = code

    model = read_model(_mutate(MODELS / "hello_world_int8.tflite", change))
    assert code > 127
    assert model.main.operators[0].opcode == "STABLEHLO_ADD"
    with pytest.raises(UnsupportedModelError, match="TFLM has no kernel for STABLEHLO_ADD"):
        plan_memory(model)


def test_custom_operator_is_reported():
    def change(obj):
        obj.operatorCodes[0].builtinCode = schema.BuiltinOperator.CUSTOM
        obj.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        obj.operatorCodes[0].customCode = b"MyOp"

    model = read_model(_mutate(MODELS / "hello_world_int8.tflite", change))
    assert model.main.operators[0].name == "CUSTOM:MyOp"
    with pytest.raises(UnsupportedModelError, match="custom operator that TFLM does not ship"):
        plan_memory(model)


def test_tflm_custom_operator_is_bounded_not_exact():
    # TFLM ships a few custom kernels (detection post-processing, signal ops); tfnas has no
    # rules for them, so it says so and bounds the arena instead of refusing the model.
    def change(obj):
        obj.operatorCodes[0].builtinCode = schema.BuiltinOperator.CUSTOM
        obj.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        obj.operatorCodes[0].customCode = b"TFLite_Detection_PostProcess"

    exact = plan_memory(MODELS / "hello_world_int8.tflite")
    plan = plan_memory(_mutate(MODELS / "hello_world_int8.tflite", change))
    assert not plan.exact
    assert any("CUSTOM:TFLite_Detection_PostProcess" in why for why in plan.reasons)
    assert plan.min_arena_bytes > exact.min_arena_bytes + 2048


def _set_weight_type(type_code):
    def change(obj):
        sg = obj.subgraphs[0]
        op = sg.operators[0]
        sg.tensors[op.inputs[1]].type = type_code

    return change


def test_hybrid_model_is_unsupported():
    data = _mutate(
        MODELS / "c26_unas_tiny_49x10x1_float32_of_c17.tflite",
        _set_weight_type(schema.TensorType.INT8),
    )
    for target in ("host", "cortex-m", "cortex-m-cmsis"):
        with pytest.raises(UnsupportedModelError, match="Hybrid models are not supported"):
            plan_memory(data, target)


def test_float16_weights_are_unsupported():
    data = _mutate(
        MODELS / "c26_unas_tiny_49x10x1_float32_of_c17.tflite",
        _set_weight_type(schema.TensorType.FLOAT16),
    )
    with pytest.raises(UnsupportedModelError, match="FLOAT16"):
        plan_memory(data, "cortex-m")


def test_int16_mirror_pad_is_unsupported():
    def change(obj):
        for t in obj.subgraphs[0].tensors:
            data = obj.buffers[t.buffer].data
            if t.type == schema.TensorType.INT8 and (data is None or len(data) == 0):
                t.type = schema.TensorType.INT16

    data = _mutate(MODELS / "c23_ops_mirrorpad_concat5_mean.tflite", change)
    with pytest.raises(
        UnsupportedModelError, match="MIRROR_PAD runs float32, int8 only, not INT16"
    ):
        plan_memory(data)


def test_strip_strings_keeps_outputs_and_plan():
    path = MODELS / "c21_unas_res_32x32x3.tflite"
    data = path.read_bytes()
    stripped = strip_strings(data)
    model = read_model(stripped)
    assert len(stripped) < len(data)
    assert all(t.name == "" for t in model.main.tensors)
    assert all(b.offset % 16 == 0 for b in model.buffers if b.size)
    for a, b in zip(_run_litert(data), _run_litert(stripped), strict=True):
        np.testing.assert_array_equal(a, b)
    assert plan_memory(stripped).planned_bytes == plan_memory(data).planned_bytes


def test_reorder_identity_is_bit_identical():
    data = (MODELS / "c18_unas_micro_16x16x1.tflite").read_bytes()
    n = len(read_model(data).main.operators)
    assert reorder_operators(data, range(n)) == data


def test_reorder_rejects_bad_orders():
    data = (MODELS / "c18_unas_micro_16x16x1.tflite").read_bytes()
    with pytest.raises(ValueError, match="permutation"):
        reorder_operators(data, [0, 1])
    n = len(read_model(data).main.operators)
    with pytest.raises(ValueError, match="before the producer"):
        reorder_operators(data, [1, 0, *range(2, n)])


def test_no_tensorflow_import():
    code = (
        "import sys, tfnas.tflite, tfnas.memory, tfnas.inspection;"
        "import tfnas.memory.reorder, tfnas.tflite.writer;"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
