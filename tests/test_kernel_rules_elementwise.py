"""Golden cases for the elementwise kernel rules, derived from TFLM 90b983c2 sources.

Paths are relative to tensorflow/lite/micro/kernels/.
"""

from __future__ import annotations

import pytest

from tfnas.errors import UnsupportedModelError
from tfnas.memory.kernels import RULES, KernelContext, KernelRequests, kernel_requests
from tfnas.memory.targets import get_target
from tfnas.tflite.model import DTYPE_SIZES, Operator, Quantization, Subgraph, Tensor

TARGETS = ("host", "cortex-m", "cortex-m-cmsis")

OPCODES = """ABS ADD ADD_N CAST CEIL COS DEQUANTIZE DIV ELU EQUAL EXP FLOOR FLOOR_DIV
FLOOR_MOD GREATER GREATER_EQUAL HARD_SWISH L2_NORMALIZATION LEAKY_RELU LESS LESS_EQUAL LOG
LOG_SOFTMAX LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC MAXIMUM MINIMUM MUL NEG NOT_EQUAL
PRELU QUANTIZE RELU RELU6 ROUND RSQRT SELECT_V2 SIN SOFTMAX SQRT SQUARE SQUARED_DIFFERENCE
SUB TANH ZEROS_LIKE""".split()


def T(dtype: str, shape=(1, 4), scale=None, zp=0, channels: int = 1) -> dict:
    """A tensor spec: dtype, shape and (optional) per-tensor or per-channel quantisation."""
    return {"dtype": dtype, "shape": tuple(shape), "scale": scale, "zp": zp, "channels": channels}


def make(opcode: str, ins: list, outs: list, options: dict | None = None) -> tuple:
    """A one-operator subgraph; ``ins``/``outs`` are specs or None for an absent (-1) slot."""
    tensors: list[Tensor] = []
    idx: dict[str, tuple[int, ...]] = {}
    for role, specs in (("in", ins), ("out", outs)):
        found = []
        for spec in specs:
            if spec is None:
                found.append(-1)
                continue
            i = len(tensors)
            q = None
            if spec["scale"] is not None:
                c = spec["channels"]
                q = Quantization((spec["scale"],) * c, (spec["zp"],) * c)
            n = 1
            for d in spec["shape"]:
                n *= d
            tensors.append(
                Tensor(
                    i,
                    f"t{i}",
                    spec["shape"],
                    spec["dtype"],
                    0,
                    n * DTYPE_SIZES[spec["dtype"]],
                    False,
                    quantization=q,
                )
            )
            found.append(i)
        idx[role] = tuple(found)
    op = Operator(0, opcode, 0, idx["in"], idx["out"], options=options or {})
    sg = Subgraph(0, "main", tuple(tensors), (op,), (), ())
    return sg, op


def req(opcode: str, ins: list, outs: list, target: str = "host", **kw) -> KernelRequests:
    sg, op = make(opcode, ins, outs, kw.get("options"))
    return kernel_requests(sg, op, get_target(target))


def refused(
    opcode: str, ins: list, outs: list, target: str = "host", match: str | None = None
) -> None:
    sg, op = make(opcode, ins, outs)
    with pytest.raises(UnsupportedModelError, match=match):
        RULES[opcode](KernelContext(sg, op, get_target(target)))


I8q = T("INT8", scale=0.05, zp=-3)
I16q = T("INT16", scale=0.001, zp=0)
F = T("FLOAT32")


def test_every_opcode_has_a_rule():
    assert all(code in RULES for code in OPCODES)


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("target", TARGETS)
def test_add_int8_temps(target):
    # add_common.cc:86-94 / cmsis_nn/add.cc:294-302: input1, input2, output; no buffers.
    r = req("ADD", [I8q, I8q], [I8q], target)
    assert r.temp_tensors == (0, 1, 2)
    assert (r.scratch, r.persistent, r.init, r.unmodelled) == ((), (), None, ())


def test_add_int16_zero_point_only_cmsis():
    # cmsis_nn/add.cc:313-317 needs int16 zero points 0; add_common.cc has no such check.
    a = T("INT16", scale=0.01, zp=5)
    assert req("ADD", [a, a], [a], "cortex-m").temp_tensors == (0, 1, 2)
    refused("ADD", [a, a], [a], "cortex-m-cmsis", match="zero points 0")


def test_add_refusals():
    q32 = T("INT32", scale=1.0, zp=0)
    # add_common.cc:102-108: int32 ADD needs unquantized inputs.
    refused("ADD", [q32, T("INT32")], [T("INT32")], match="unquantized")
    # cmsis_nn/add.cc:310-311: mixed input types.
    refused("ADD", [I8q, F], [I8q], "cortex-m-cmsis", match="Hybrid")
    # add.cc:188: bool output is not supported in Eval.
    refused("ADD", [T("BOOL"), T("BOOL")], [T("BOOL")], match="Eval")
    # AllocateTempInputTensor returns null for -1 -> TF_LITE_ENSURE fails (add_common.cc:88-91).
    refused("ADD", [I8q, None], [I8q], match="missing")


def test_sub_mul_div_squared_difference():
    # sub_common.cc:88-96, mul_common.cc:42-50, div.cc:78-86, squared_difference.cc:96-104.
    for code in ("SUB", "MUL", "DIV", "SQUARED_DIFFERENCE", "FLOOR_DIV", "FLOOR_MOD"):
        assert req(code, [F, F], [F]).temp_tensors == (0, 1, 2)
    # mul_common.cc:72-76: int16 MUL needs zero points 0.
    refused("MUL", [T("INT16", scale=0.1, zp=1)] * 2, [I16q], match="zero points 0")
    # div.cc:195-207: int16 DIV is not supported.
    refused("DIV", [I16q, I16q], [I16q], match="Eval")
    # floor_div.cc:112-119: only float32.
    refused("FLOOR_DIV", [T("INT32")] * 2, [T("INT32")], match="FLOAT32")
    # squared_difference.cc:243-258: Eval dispatches on the output's own type.
    refused("SQUARED_DIFFERENCE", [F, F], [T("BOOL")], match="Eval")
    # sub_common.cc:101-108: int32 SUB with a quantized output.
    refused("SUB", [T("INT32")] * 2, [T("INT32", scale=1.0)], match="unquantized")


@pytest.mark.parametrize("target,ptr", [("host", 8), ("cortex-m", 4), ("cortex-m-cmsis", 4)])
def test_add_n(target, ptr):
    # add_n.cc:55-66: first input, output, then inputs 1.. in the loop.
    # add_n.cc:85-87: float scratch of sizeof(float*) * n.
    r = req("ADD_N", [F, F, F], [F], target)
    assert r.temp_tensors == (0, 3, 1, 2)
    assert (r.scratch, r.persistent) == ((3 * ptr,), ())
    # add_n.cc:91-100: int8 allocates OpData (10 x 4 bytes) then a pointer scratch.
    r = req("ADD_N", [I8q, I8q], [I8q], target)
    assert r.temp_tensors == (0, 2, 1)
    assert (r.scratch, r.persistent) == ((2 * ptr,), (40,))


def test_add_n_refusals():
    refused("ADD_N", [I16q, I16q], [I16q], match="FLOAT32/INT8")  # add_n.cc:124-128
    refused("ADD_N", [F], [F], match="at least 2")  # add_n.cc:51
    refused("ADD_N", [I8q, T("INT8", scale=0.1, zp=-3)], [I8q], match="scale")  # :71-76
    refused("ADD_N", [F, T("FLOAT32", shape=(1, 5))], [F], match="shape")  # add_n.cc:67


# --------------------------------------------------------------------------- comparisons, logical


@pytest.mark.parametrize(
    "code", ["EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"]
)
def test_comparisons_only_inputs(code):
    # comparisons.cc:555-560: only the two inputs are temps, not the output.
    r = req(code, [I8q, I8q], [T("BOOL")])
    assert r.temp_tensors == (0, 1)


def test_comparison_types():
    # comparisons.cc: GREATER handles int16 (case at :289), LESS does not.
    assert req("GREATER", [I16q, I16q], [T("BOOL")]).temp_tensors == (0, 1)
    refused("LESS", [I16q, I16q], [T("BOOL")], match="Eval")


@pytest.mark.parametrize(
    "code", ["LOGICAL_AND", "LOGICAL_OR", "MAXIMUM", "MINIMUM", "FLOOR", "NEG"]
)
def test_kernels_without_prepare(code):
    # logical.cc:30-36, maximum_minimum.cc, floor.cc:44-46, neg.cc:53-55: Prepare is nullptr.
    ins = [T("BOOL"), T("BOOL")] if code.startswith("LOGICAL") else [F, F]
    outs = [T("BOOL")] if code.startswith("LOGICAL") else [F]
    if code in ("FLOOR", "NEG"):
        ins = [F]
    for target in TARGETS:
        assert req(code, ins, outs, target) == KernelRequests()


def test_eval_only_refusals():
    refused("NEG", [I8q], [I8q], match="Eval")  # neg.cc:35-47
    refused("MAXIMUM", [T("BOOL")] * 2, [T("BOOL")], match="Eval")  # maximum_minimum.cc


def test_logical_not_and_unary_math():
    # elementwise.cc:83-94: GenericPrepare holds input and output; float32 (bool for NOT).
    for code in ("SIN", "COS", "LOG", "SQRT", "SQUARE"):
        assert req(code, [F], [F]).temp_tensors == (0, 1)
        refused(code, [I8q], [I8q], match="not supported")
    assert req("LOGICAL_NOT", [T("BOOL")], [T("BOOL")]).temp_tensors == (0, 1)


def test_abs_rsqrt():
    # ABS and RSQRT run float32/int8/int16: the type predicate of elementwise.cc:54-60 is
    # never called (PrepareAbsRsqrt's template parameter is unnamed), and RsqrtEval takes
    # int16 (elementwise.cc:235-255); the real TFLM runs an int16x8 RSQRT model.
    assert req("ABS", [I16q], [I16q]).temp_tensors == (0, 1)
    assert req("ABS", [T("INT16")], [T("INT16")]).temp_tensors == (0, 1)  # unquantized int16
    assert req("RSQRT", [I16q], [I16q]).temp_tensors == (0, 1)
    refused("RSQRT", [T("BOOL")], [T("BOOL")], match="Eval")
    # elementwise.cc:130-133: int8 needs quantization; :148-151 int16 zero points 0.
    refused("ABS", [T("INT8")], [T("INT8")], match="quantized")
    refused("ABS", [T("INT16", scale=0.1, zp=2)], [I16q], match="zero points 0")


def test_ceil_round_exp_cast_zeros_like():
    # ceil.cc:33-46, round.cc:32-45, exp.cc:35-46: float32 and same dims.
    for code in ("CEIL", "ROUND", "EXP"):
        assert req(code, [F], [F]).temp_tensors == (0, 1)
        refused(code, [F], [T("FLOAT32", shape=(4, 1))], match="shape")
    # cast.cc:34-39; cast.cc:56-77 has no bool output.
    assert req("CAST", [T("INT8")], [F]).temp_tensors == (0, 1)
    refused("CAST", [F], [T("BOOL")], match="Eval")
    # zeros_like.cc:33-38; zeros_like.cc:60-78 has no int16.
    assert req("ZEROS_LIKE", [F], [F]).temp_tensors == (0, 1)
    refused("ZEROS_LIKE", [I16q], [I16q], match="Eval")


def test_select_v2():
    # select.cc:82-92: condition, x, y, output.
    c, x = T("BOOL", shape=(1, 4)), T("FLOAT32", shape=(3, 4))
    assert req("SELECT_V2", [c, x, x], [x]).temp_tensors == (0, 1, 2, 3)
    # select.cc:45-73: shapes that do not broadcast.
    refused("SELECT_V2", [T("BOOL", shape=(2, 4)), x, x], [x], match="broadcast")


# --------------------------------------------------------------------------- activations


@pytest.mark.parametrize("target", TARGETS)
def test_relu_and_relu6(target):
    # activations_common.cc:93-98 (input, output) and :120-122 (input only).
    assert req("RELU", [I8q], [I8q], target).temp_tensors == (0, 1)
    assert req("RELU6", [I8q], [I8q], target).temp_tensors == (0,)
    # activations_common.cc:103-104.
    refused("RELU", [T("INT16", scale=0.1, zp=1)], [I16q], target, match="zero points 0")


@pytest.mark.parametrize("target", TARGETS)
def test_tanh_allocates_input_twice(target):
    # tanh.cc:141 (TanhPrepare), then tanh.cc:55 and :58 (CalculateArithmeticOpData).
    r = req("TANH", [I8q], [T("INT8", scale=1 / 128, zp=0)], target)
    assert r.temp_tensors == (0, 0, 1)
    assert r.persistent == () and r.scratch == ()


def test_logistic_and_tanh_int16():
    pot = T("INT16", scale=2.0**-15, zp=0)
    assert req("LOGISTIC", [I16q], [pot]).temp_tensors == (0, 1)
    assert req("TANH", [I16q], [pot]).temp_tensors == (0, 0, 1)
    # logistic_common.cc:101-104, tanh.cc:123-126: output scale must be 2^-15.
    refused("LOGISTIC", [I16q], [T("INT16", scale=1 / 30000, zp=0)], match="2\\^-15")
    refused("TANH", [I16q], [T("INT16", scale=2.0**-14, zp=0)], match="2\\^-15")
    # logistic_common.cc:46-47: int8 output zero point -128.
    refused("LOGISTIC", [I8q], [T("INT8", scale=1 / 256, zp=0)], match="-128")
    assert req("LOGISTIC", [I8q], [T("INT8", scale=1 / 256, zp=-128)]).temp_tensors == (0, 1)


def test_other_activations():
    # leaky_relu_common.cc:37-42, elu.cc:87-92, prelu_common.cc:89-94, l2norm.cc:49-54.
    assert req("LEAKY_RELU", [I16q], [I16q]).temp_tensors == (0, 1)
    assert req("ELU", [I8q], [I8q]).temp_tensors == (0, 1)
    refused("ELU", [I16q], [I16q], match="Eval")  # elu.cc:125-141
    assert req("PRELU", [I8q, I8q], [I8q]).temp_tensors == (0, 1, 2)
    refused("PRELU", [I16q, I16q], [I16q], match="int8 alpha")  # prelu_common.cc:99-102
    assert req("L2_NORMALIZATION", [I8q], [I8q]).temp_tensors == (0, 1)
    refused(
        "L2_NORMALIZATION",
        [T("FLOAT32", shape=(1, 1, 1, 1, 4))],
        [T("FLOAT32", shape=(1, 1, 1, 1, 4))],
        match="rank",
    )  # l2norm.cc:55


def test_hard_swish():
    # hard_swish_common.cc:41-46; :53-68 needs (input_scale/128)/output_scale < 1.
    assert req("HARD_SWISH", [T("INT8", scale=0.1)], [T("INT8", scale=0.05)]).temp_tensors == (
        0,
        1,
    )
    refused("HARD_SWISH", [T("INT8", scale=1.0)], [T("INT8", scale=1 / 256)], match="< 1")


# --------------------------------------------------------------------------- softmax


@pytest.mark.parametrize("target", TARGETS)
def test_softmax_int16_luts(target):
    # softmax_common.cc:36-46: two LUTs of sizeof(int16_t) * LUTSize<int16_t>() = 2 * 513.
    # cmsis_nn/softmax.cc:71 reaches the same CalculateSoftmaxParams.
    r = req("SOFTMAX", [I16q], [T("INT16", scale=1 / 32768, zp=0)], target)
    assert r.persistent == (1026, 1026)
    assert r.temp_tensors == (0, 1)
    assert r.scratch == ()


@pytest.mark.parametrize("target", TARGETS)
def test_softmax_int8(target):
    # softmax_common.cc:101-104: int8 output zero point -128, scale exactly 1/256.
    r = req("SOFTMAX", [I8q], [T("INT8", scale=1 / 256, zp=-128)], target)
    assert (r.persistent, r.temp_tensors) == ((), (0, 1))
    refused("SOFTMAX", [I8q], [T("INT8", scale=1 / 255, zp=-128)], target, match="1/256")
    # softmax_common.cc:97-100: int8 -> int16 output.
    r = req("SOFTMAX", [I8q], [T("INT16", scale=1 / 65536, zp=-32768)], target)
    assert r.persistent == ()
    # softmax_common.cc:52 / cmsis_nn/softmax.cc:55-59: int16 -> int8 is refused.
    refused("SOFTMAX", [I16q], [T("INT8", scale=1 / 256, zp=-128)], target)


def test_softmax_float():
    assert req("SOFTMAX", [F], [F]).temp_tensors == (0, 1)
    refused("SOFTMAX", [T("INT32")], [T("INT32")])  # softmax_common.cc:133


@pytest.mark.parametrize("target,size", [("host", 40), ("cortex-m", 28), ("cortex-m-cmsis", 28)])
def test_log_softmax(target, size):
    # log_softmax.cc:62-63: int8 allocates sizeof(LogSoftmaxOpData) in Prepare
    # (five 4-byte fields + two size_t, log_softmax.cc:29-37).
    out = T("INT8", scale=16 / 256, zp=127)
    r = req("LOG_SOFTMAX", [I8q], [out], target)
    assert (r.persistent, r.temp_tensors) == ((size,), (0, 1))
    assert req("LOG_SOFTMAX", [F], [F], target).persistent == ()
    refused("LOG_SOFTMAX", [I8q], [T("INT8", scale=1 / 256, zp=127)], target, match="1/16")


# --------------------------------------------------------------------------- quantization


@pytest.mark.parametrize("target", TARGETS)
def test_quantize_dequantize(target):
    # quantize_common.cc:41-44 and dequantize_common.cc:38-41: input, output.
    assert req("QUANTIZE", [F], [I8q], target).temp_tensors == (0, 1)
    assert req("QUANTIZE", [I16q], [I8q], target).temp_tensors == (0, 1)
    assert req("DEQUANTIZE", [I8q], [F], target).temp_tensors == (0, 1)


def test_quantize_refusals():
    # quantize_common.cc:48-54: output per-tensor quantized.
    refused("QUANTIZE", [F], [T("INT8", scale=0.1, channels=4)], match="per-tensor")
    refused("QUANTIZE", [F], [T("INT8")], match="quantized")
    # quantize_common.cc:99-121: float32 -> uint8 has no Eval case.
    refused("QUANTIZE", [F], [T("UINT8", scale=0.1)], match="Eval")
    # dequantize_common.cc:43-46.
    refused("DEQUANTIZE", [T("INT32", scale=0.1)], [F], match="INT8/INT16/UINT8")
    refused("DEQUANTIZE", [I8q], [T("INT32")], match="FLOAT32")


def test_int8_softmax_with_a_tiny_input_scale_is_refused():
    # quantization_util.cc:282-318 -> :109: beta * scale * 2^26 must exceed 1, or TFLM aborts
    # in Prepare (seen on a real model with near-constant calibrated logits).
    out = T("INT8", scale=1 / 256, zp=-128)
    tiny = T("INT8", scale=2.0**-27, zp=0)
    for target in ("host", "cortex-m-cmsis"):
        refused("SOFTMAX", [tiny], [out], target=target, match="2\\^-26")
    assert req("SOFTMAX", [T("INT8", scale=2.0**-25, zp=0)], [out]).temp_tensors == (0, 1)
