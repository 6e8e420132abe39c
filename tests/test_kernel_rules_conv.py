"""Golden cases for the weighted and recurrent kernel rules (conv.py, recurrent.py).

Every number is derived by hand from TFLM 90b983c2: kernel paths are relative to
tensorflow/lite/micro/kernels/, CMSIS-NN paths to
tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Source/ (DSP branch, GCC).
"""

from __future__ import annotations

import math

import pytest

from tfnas.errors import UnsupportedModelError
from tfnas.memory.kernels import kernel_requests
from tfnas.memory.targets import get_target
from tfnas.tflite.model import DTYPE_SIZES, Operator, Quantization, Subgraph, Tensor

HOST, CM, CMSIS = "host", "cortex-m", "cortex-m-cmsis"
SAME, VALID = 0, 1  # flatbuffer Padding enum


def T(
    dtype: str,
    shape: tuple[int, ...],
    *,
    q: bool | None = None,
    channels: int = 1,
    qdim: int = 0,
    zp: int = 0,
    const: bool = False,
    var: bool = False,
    scale: float = 0.5,
) -> dict:
    """A tensor spec; quantized by default when the type is not float."""
    quant = (dtype != "FLOAT32") if q is None else q
    return dict(
        dtype=dtype,
        shape=shape,
        q=quant,
        ch=channels,
        qdim=qdim,
        zp=zp,
        const=const,
        var=var,
        scale=scale,
    )


def run(opcode, ins, outs, options=None, target=HOST, options_type="X"):
    """Build a one-operator subgraph and return (requests, input indices, output indices)."""
    tensors: list[Tensor] = []
    idx: dict[str, list[int]] = {"in": [], "out": []}
    for role, specs in (("in", ins), ("out", outs)):
        for s in specs:
            if s is None:
                idx[role].append(-1)
                continue
            i = len(tensors)
            quant = None
            if s["q"]:
                quant = Quantization((s["scale"],) * s["ch"], (s["zp"],) * s["ch"], s["qdim"])
            tensors.append(
                Tensor(
                    i,
                    f"t{i}",
                    tuple(s["shape"]),
                    s["dtype"],
                    0,
                    math.prod(s["shape"]) * DTYPE_SIZES[s["dtype"]],
                    s["const"],
                    is_variable=s["var"],
                    quantization=quant,
                )
            )
            idx[role].append(i)
    op = Operator(
        0,
        opcode,
        0,
        tuple(idx["in"]),
        tuple(idx["out"]),
        options_type=options_type,
        options=dict(options or {}),
    )
    sg = Subgraph(0, "main", tuple(tensors), (op,), (), ())
    return kernel_requests(sg, op, get_target(target)), idx["in"], idx["out"]


def conv_opts(padding=SAME, stride=1, dilation=1):
    return dict(
        padding=padding,
        stride_w=stride,
        stride_h=stride,
        dilation_w_factor=dilation,
        dilation_h_factor=dilation,
    )


# --------------------------------------------------------------------------- CONV_2D


def conv_int8(kh=3, kw=3, cin=8, cout=16, hw=10, out_hw=10, channels=16, bias=True):
    ins = [T("INT8", (1, hw, hw, cin)), T("INT8", (cout, kh, kw, cin), channels=channels)]
    ins.append(T("INT32", (cout,)) if bias else None)
    return ins, [T("INT8", (1, out_hw, out_hw, cout))]


def test_cmsis_conv_int8_3x3x8():
    ins, outs = conv_int8()
    r, i, o = run("CONV_2D", ins, outs, conv_opts(), CMSIS)
    # arm_convolve_get_buffer_sizes_s8.c:89-92: rhs_cols = 3*3*8 = 72 (already a multiple
    # of 4), 2 * 72 int16 = 288 bytes; requested when > 0 (cmsis_nn/conv.cc:164-166).
    assert r.scratch == (288,)
    # cmsis_nn/conv.cc:122-130: two int32 arrays of 16 output channels.
    assert r.persistent == (64, 64)
    # cmsis_nn/conv.cc:56-66: input, filter, output (bias read as output 2 -> null);
    # then CalculateOpDataConv (conv_common.cc:100-109): input, filter, bias, output.
    assert r.temp_tensors == (
        i[0],
        i[1],
        o[0],
    )
    assert r.temp_after == (i[0], i[1], i[2], o[0])
    assert r.unmodelled == () and r.init is None


def test_cmsis_conv_int8_rounds_columns_to_4():
    # 5x5x1 stem: rhs_cols = 25 -> 28 -> 2*28*2 = 112 (arm_convolve_get_buffer_sizes_s8.c:89-92);
    # the eabi32_cmsis truth for c02 reports 112 requested bytes for its first CONV_2D.
    ins, outs = conv_int8(kh=5, kw=5, cin=1, cout=4, channels=4)
    r, *_ = run("CONV_2D", ins, outs, conv_opts(), CMSIS)
    assert r.scratch == (112,)


def test_cmsis_conv_int8_1x1_has_no_scratch():
    # arm_nn_is_convolve_1x1 (arm_nnsupportfunctions.h:125-132) with stride 1: the fast
    # 1x1 size is 0 unless compiled by armclang (arm_convolve_get_buffer_sizes_s8.c:43-51);
    # with stride 2 the non-fast 1x1 returns 0 (:204-214).
    for stride, out_hw in ((1, 10), (2, 5)):
        ins, outs = conv_int8(kh=1, kw=1, out_hw=out_hw)
        r, *_ = run("CONV_2D", ins, outs, conv_opts(VALID, stride), CMSIS)
        assert r.scratch == ()


def test_cmsis_conv_int8_1x1_padded_uses_im2col():
    # A dilated 1x1 is neither 1x1 (dilation != 1, arm_nnsupportfunctions.h:129-131) nor
    # 1xN (input height 10 != 1, :157): the general size, rhs_cols = 8 -> 2*8*2 = 32 bytes.
    ins, outs = conv_int8(kh=1, kw=1)
    r, *_ = run("CONV_2D", ins, outs, conv_opts(SAME, 1, dilation=2), CMSIS)
    assert r.scratch == (32,)


def test_cmsis_conv_int16():
    ins = [T("INT16", (1, 10, 10, 8)), T("INT8", (16, 3, 3, 8), channels=16), T("INT64", (16,))]
    r, *_ = run("CONV_2D", ins, [T("INT16", (1, 10, 10, 16))], conv_opts(), CMSIS)
    # arm_convolve_get_buffer_sizes_s16.c:46-53 (non-MVE): 2 * 8 * 3 * 3 int16 = 288.
    assert r.scratch == (288,)
    assert r.persistent == (64, 64)


def test_cmsis_conv_int16_needs_zero_points_0():
    ins = [T("INT16", (1, 10, 10, 8), zp=3), T("INT8", (16, 3, 3, 8)), T("INT64", (16,))]
    with pytest.raises(UnsupportedModelError, match="zero point"):
        run("CONV_2D", ins, [T("INT16", (1, 10, 10, 16))], conv_opts(), CMSIS)  # conv.cc:158


def test_cmsis_conv_float_allocates_nothing_in_prepare():
    ins = [T("FLOAT32", (1, 8, 8, 3)), T("FLOAT32", (4, 3, 3, 3)), T("FLOAT32", (4,))]
    r, i, o = run("CONV_2D", ins, [T("FLOAT32", (1, 8, 8, 4))], conv_opts(), CMSIS)
    # cmsis_nn/conv.cc:122 and :138: per-channel arrays and scratch only for int8/int16.
    assert r.scratch == () and r.persistent == ()
    assert r.temp_tensors == (
        i[0],
        i[1],
        o[0],
    )
    assert r.temp_after == (i[0], i[1], i[2], o[0])


@pytest.mark.parametrize("target", [HOST, CM])
def test_reference_conv(target):
    ins = [T("FLOAT32", (1, 8, 8, 3)), T("FLOAT32", (4, 3, 3, 3)), None]
    r, i, o = run("CONV_2D", ins, [T("FLOAT32", (1, 8, 8, 4))], conv_opts(), target)
    # conv_common.cc:175-181: the per-channel arrays are allocated for float too.
    assert r.persistent == (16, 16)
    assert r.scratch == ()
    # conv_common.cc:148-156 output, input, filter; :100-109 input, filter, (no bias), output.
    assert r.temp_tensors == (
        o[0],
        i[0],
        i[1],
    )
    assert r.temp_after == (i[0], i[1], o[0])


def test_conv_hybrid_refused():
    ins = [T("FLOAT32", (1, 8, 8, 3)), T("INT8", (4, 3, 3, 3)), None]
    for target in (HOST, CMSIS):
        with pytest.raises(UnsupportedModelError, match="Hybrid"):  # conv_common.cc:159-165
            run("CONV_2D", ins, [T("FLOAT32", (1, 8, 8, 4))], conv_opts(), target)


# --------------------------------------------------------------------------- DEPTHWISE


def dw_int8(k=3, c=8, n=1, dtype="INT8"):
    ins = [T(dtype, (n, 10, 10, c)), T("INT8", (1, k, k, c), channels=c, qdim=3), T("INT32", (c,))]
    return ins, [T(dtype, (n, 10, 10, c))]


def test_cmsis_dw_int8_3x3_pad1_no_scratch():
    # arm_depthwise_conv_get_buffer_sizes_s8.c:122-133: 3x3 with padding <= 1 -> 0.
    ins, outs = dw_int8()
    r, i, o = run("DEPTHWISE_CONV_2D", ins, outs, conv_opts(), CMSIS)
    assert r.scratch == ()
    assert r.persistent == (32, 32)  # cmsis_nn/depthwise_conv.cc:124-132
    # cmsis_nn/depthwise_conv.cc:68-76 then depthwise_conv_common.cc:100-109.
    assert r.temp_tensors == (
        i[0],
        i[1],
        o[0],
    )
    assert r.temp_after == (i[0], i[1], i[2], o[0])


def test_cmsis_dw_int8_5x5():
    # arm_depthwise_conv_get_buffer_sizes_s8.c:63-66: in_c * 5 * 5 int16 = 8*25*2 = 400.
    ins, outs = dw_int8(k=5)
    r, *_ = run("DEPTHWISE_CONV_2D", ins, outs, conv_opts(), CMSIS)
    assert r.scratch == (400,)


def test_cmsis_dw_int8_batch2_and_int16_no_scratch():
    # batch != 1 -> 0 (s8.c:126); int16 never requests (cmsis_nn/depthwise_conv.cc:140).
    ins, outs = dw_int8(k=5, n=2)
    assert run("DEPTHWISE_CONV_2D", ins, outs, conv_opts(), CMSIS)[0].scratch == ()
    ins, outs = dw_int8(k=5, dtype="INT16")
    r, *_ = run("DEPTHWISE_CONV_2D", ins, outs, conv_opts(), CMSIS)
    assert r.scratch == () and r.persistent == (32, 32)


def test_reference_dw():
    ins, outs = dw_int8(k=5)
    r, i, o = run("DEPTHWISE_CONV_2D", ins, outs, conv_opts(), HOST)
    assert r.scratch == ()
    assert r.persistent == (32, 32)  # depthwise_conv_common.cc:166-172, dims[3] = 8
    # :148-156 output, input, filter; :100-109 input, filter, bias, output.
    assert r.temp_tensors == (
        o[0],
        i[0],
        i[1],
    )
    assert r.temp_after == (i[0], i[1], i[2], o[0])


# --------------------------------------------------------------------------- FULLY_CONNECTED


def fc(in_shape, out_shape, units=16, depth=32, channels=1, dtype="INT8"):
    # bias scale = input scale * weights scale (0.5 * 0.5), as the converter writes it
    bias = T("INT32", (units,), scale=0.25)
    return [T(dtype, in_shape), T("INT8", (units, depth), channels=channels), bias], [
        T(dtype, out_shape)
    ]


def test_cmsis_fc_int8_3d_output_alone_is_refused():
    # cmsis_nn/fully_connected.cc:128-140 requests the fake per-channel buffer as scratch
    # index 0, and EvalQuantizedInt8 checks TFLITE_DCHECK_GE(buffer_conv_1x1_idx, 4) (:296).
    ins, outs = fc((1, 5, 32), (1, 5, 16))
    with pytest.raises(UnsupportedModelError, match="index 0"):
        run("FULLY_CONNECTED", ins, outs, {}, CMSIS)


def test_cmsis_fc_int8_3d_output_after_four_scratch_buffers():
    # Four CMSIS int8 3x3x32 convolutions (one scratch each: 2*288 int16 = 1152 bytes,
    # arm_convolve_get_buffer_sizes_s8.c:89-92) come first, so
    # the FC's buffer gets index 4: output rank 3 > 2, depth 32 % 4 == 0, per tensor ->
    # output_depth * 4 * 2 = 16 * 8 = 128 bytes (cmsis_nn/fully_connected.cc:128-140).
    q = Quantization((0.5,), (0,))
    qb = Quantization((0.25,), (0,))

    def t(i, shape, dtype="INT8", quant=q, const=False):
        nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
        return Tensor(i, f"t{i}", shape, dtype, 0, nbytes, const, quantization=quant)

    tensors = [t(0, (1, 4, 4, 32))]
    ops = []
    for n in range(4):
        w, b, o = len(tensors), len(tensors) + 1, len(tensors) + 2
        tensors += [t(w, (32, 3, 3, 32), const=True), t(b, (32,), "INT32", qb, True)]
        tensors.append(t(o, (1, 4, 4, 32)))
        ops.append(
            Operator(
                n,
                "CONV_2D",
                3,
                (o - 3, w, b),
                (o,),
                options_type="Conv2DOptions",
                options=conv_opts(),
            )
        )
    x = len(tensors)  # the FC reads its own [1, 16, 32] input (data flow does not matter)
    tensors += [t(x, (1, 16, 32)), t(x + 1, (16, 32), const=True)]
    tensors += [t(x + 2, (16,), "INT32", qb, True), t(x + 3, (1, 16, 16))]
    fc_op = Operator(4, "FULLY_CONNECTED", 9, (x, x + 1, x + 2), (x + 3,), options_type="X")
    sg = Subgraph(0, "main", tuple(tensors), (*ops, fc_op), (), ())
    tgt = get_target(CMSIS)
    assert [kernel_requests(sg, op, tgt).scratch for op in ops] == [(4 * 288,)] * 4
    r = kernel_requests(sg, fc_op, tgt)
    assert r.scratch == (128,)
    assert r.persistent == ()
    assert r.temp_tensors == (x, x + 1, x + 2, x + 3)  # :63-72 input, filter, bias, output


def test_cmsis_fc_int8_2d_output_no_scratch():
    # arm_fully_connected_s8_get_buffer_size is 0 on DSP (..._sizes_s8.c:36-40).
    ins, outs = fc((1, 32), (1, 16))
    assert run("FULLY_CONNECTED", ins, outs, {}, CMSIS)[0].scratch == ()


def test_fc_per_channel():
    # fully_connected_common.cc:111-116: two arrays of 16 int32.
    ins, outs = fc((1, 5, 32), (1, 5, 16), channels=16)
    for target in (HOST, CM, CMSIS):
        r, *_ = run("FULLY_CONNECTED", ins, outs, {}, target)
        assert r.persistent == (64, 64)
        assert r.scratch == ()  # CMSIS: per-channel skips the fake buffer (:134)


def test_cmsis_fc_per_channel_int16_refused():
    ins, outs = fc((1, 32), (1, 16), channels=16, dtype="INT16")
    assert run("FULLY_CONNECTED", ins, outs, {}, HOST)[0].persistent == (64, 64)
    with pytest.raises(UnsupportedModelError, match="per-channel"):  # fully_connected.cc:116
        run("FULLY_CONNECTED", ins, outs, {}, CMSIS)


def test_fc_bias_scale_checked():
    # lite/kernels/kernel_util.cc:319-322: |0.5*0.5 - 0.5| / 0.5 = 0.5 > 0.02 -> refused.
    ins, outs = fc((1, 32), (1, 16))
    ins[2] = T("INT32", (16,), scale=0.5)
    with pytest.raises(UnsupportedModelError, match="bias scale"):
        run("FULLY_CONNECTED", ins, outs, {}, HOST)


def test_fc_hybrid_refused():
    ins = [T("FLOAT32", (1, 32)), T("INT8", (16, 32)), None]
    with pytest.raises(UnsupportedModelError, match="not supported"):  # fully_connected.cc:59
        run("FULLY_CONNECTED", ins, [T("FLOAT32", (1, 16))], {}, HOST)


# --------------------------------------------------------------------------- TRANSPOSE_CONV


def tconv(cin, stride, dtype="INT8", bias_dtype="INT32"):
    # inputs: output shape, filter (cout, kh, kw, cin), input, bias
    ins = [
        T("INT32", (4,), q=False, const=True),
        T("INT8", (6, 3, 3, cin), channels=6),
        T(dtype, (1, 4, 4, cin)),
        T(bias_dtype, (6,)),
    ]
    return ins, [T(dtype, (1, 4 * stride, 4 * stride, 6))]


def test_reference_transpose_conv_int8():
    ins, outs = tconv(8, 2)
    r, i, o = run("TRANSPOSE_CONV", ins, outs, conv_opts(SAME, 2), HOST)
    assert r.scratch == (8 * 8 * 6 * 4,)  # transpose_conv.cc:194-200: output flat * int32
    assert r.persistent == (24, 24)  # :185-191, filter dims[0] = 6
    # :162-170 output, input, filter; CalculateOpData :100-110 input, filter, bias, output.
    assert r.temp_tensors == (
        o[0],
        i[2],
        i[1],
    )
    assert r.temp_after == (i[2], i[1], i[3], o[0])


def test_reference_transpose_conv_int16_bias16():
    ins, outs = tconv(8, 2, dtype="INT16", bias_dtype="INT16")
    r, *_ = run("TRANSPOSE_CONV", ins, outs, conv_opts(SAME, 2), CM)
    # :203-209 output flat * int64 = 384*8; :128-133 bias flat * int64 = 6*8.
    assert r.scratch == (384 * 8, 48)


def test_cmsis_transpose_conv_int8_direct():
    # arm_transpose_conv_get_buffer_sizes_s8.c:57-64 (cin 8 <= 16): buf_x =
    # ((4-1)*2 + max(3, 2)) * 6 = 54, buf_y = max(3, 2) = 3 -> 54*3*4 = 648; reverse 0
    # (:112-114), still requested (cmsis_nn/transpose_conv.cc:247-252).
    ins, outs = tconv(8, 2)
    r, *_ = run("TRANSPOSE_CONV", ins, outs, conv_opts(SAME, 2), CMSIS)
    assert r.scratch == (648, 0)
    assert r.persistent == (24, 24)


def test_cmsis_transpose_conv_int8_reverse():
    # cin 32 > 16, stride 2: arm_convolve_s8_get_buffer_size = 2*align4(3*3*32)*2 = 1152;
    # reverse buffer = 32*3*3*6 = 1728 (s8.c:108-110).
    ins, outs = tconv(32, 2)
    r, *_ = run("TRANSPOSE_CONV", ins, outs, conv_opts(SAME, 2), CMSIS)
    assert r.scratch == (1152, 1728)


# --------------------------------------------------------------------------- BATCH_MATMUL


def bmm(dtype="INT8"):
    return [T(dtype, (2, 3, 4)), T(dtype, (2, 4, 5))], [T(dtype, (2, 3, 5))]


def test_batch_matmul_host_int8():
    ins, outs = bmm()
    r, i, o = run("BATCH_MATMUL", ins, outs, {"adj_x": False, "adj_y": False}, HOST)
    # batch_matmul.cc:142-147 QuantizationOpDataBatchMatmul (7 ints = 28); :160-164 rhs copy:
    # TfLiteEvalTensor (24 on x86-64), TfLiteIntArray of rank 3 (4 + 3*4 = 16), 40 int8;
    # ReshapeOutputTensor -> CreateWritableTensorDimsWithCopy (kernel_util.cc:134-137): 16.
    assert r.persistent == (28, 24, 16, 40, 16)
    assert r.scratch == ()
    assert r.temp_tensors == (i[0], i[1], o[0])  # PrepareOpContext (batch_matmul.cc:48-53)
    assert r.unmodelled == ()


def test_batch_matmul_cmsis_float_adj_x():
    ins, outs = bmm("FLOAT32")
    ins = [T("FLOAT32", (2, 4, 3)), T("FLOAT32", (2, 5, 4))]
    r, *_ = run("BATCH_MATMUL", ins, outs, {"adj_x": True, "adj_y": True}, CMSIS)
    # cmsis_nn/batch_matmul.cc:258-278: lhs copy (12-byte eval tensor on EABI, dims 16,
    # 24 floats = 96); adj_y -> no rhs copy; output dims 16; float -> no quantization struct.
    assert r.persistent == (12, 16, 96, 16)


def test_batch_matmul_unknown_adjoint_is_bounded():
    ins, outs = bmm()
    r, *_ = run("BATCH_MATMUL", ins, outs, {}, HOST, options_type="BatchMatMulOptions")
    assert r.unmodelled and r.bound_bytes == 32 + 16 + 32  # a 16-aligned lhs copy


# --------------------------------------------------------------------------- SVDF


def svdf_model(dtype="INT8", bias=True, batch=2, rank=2):
    filters, units, memory, input_size = 8, 4, 10, 6
    f = dtype
    ins = [
        T(f, (batch, input_size)),
        T(f, (filters, input_size), const=True),
        T("INT16" if f == "INT8" else f, (filters, memory), const=True, scale=0.25),
        (T("INT32" if f == "INT8" else f, (units,), scale=0.125) if bias else None),
        T("INT16" if f == "INT8" else f, (batch, memory * filters), var=True, scale=0.5),
    ]
    return ins, [T(f, (batch, units))], {"rank": rank}


@pytest.mark.parametrize("target", [HOST, CMSIS])
def test_svdf_int8(target):
    ins, outs, opts = svdf_model()
    r, i, o = run("SVDF", ins, outs, opts, target)
    # svdf_common.cc:481-490 (same in cmsis_nn/svdf.cc:177-186): batch*filters and
    # batch*units int32 = 2*8*4 and 2*4*4; arm_svdf_s8_get_buffer_size is 0 on DSP.
    assert r.scratch == (64, 32)
    assert r.persistent == ()
    assert r.temp_tensors == (i[0], i[1], i[2], i[3], i[4], o[0])  # :377-411


def test_svdf_float_and_int8_without_bias():
    ins, outs, opts = svdf_model("FLOAT32")
    assert run("SVDF", ins, outs, opts, CM)[0].scratch == (64,)  # svdf_common.cc:501-504
    ins, outs, opts = svdf_model(bias=False)
    with pytest.raises(UnsupportedModelError, match="bias"):  # :464-468 reads bias->params
        run("SVDF", ins, outs, opts, HOST)


# --------------------------------------------------------------------------- LSTM


def lstm(act="INT8", cell="INT16", batch=1, steps=7, n_in=5, state=20, channels=1):
    w = "INT8" if act != "FLOAT32" else "FLOAT32"
    b = "INT32" if act == "INT8" else ("INT64" if act == "INT16" else "FLOAT32")
    ins: list = [T(act, (batch, steps, n_in))]
    ins += [T(w, (state, n_in), const=True, channels=channels) for _ in range(4)]
    ins += [T(w, (state, state), const=True, channels=channels) for _ in range(4)]
    ins += [None] * 3
    ins += [T(b, (state,), const=True) for _ in range(4)]
    ins += [None] * 2
    ins += [T(act, (batch, state), var=True), T(cell, (batch, state), var=True)]
    ins += [None] * 4
    return ins, [T(act, (batch, steps, state))], {"time_major": False}


def test_lstm_int8_reference():
    ins, outs, opts = lstm()
    r, i, o = run("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, outs, opts, HOST)
    # unidirectional_sequence_lstm.cc:87-94: 4 x batch*state*sizeof(int16) = 4 x 40
    # (the trained_lstm_int8 truth: four 40-byte scratch buffers).
    assert r.scratch == (40,) * 4
    assert r.persistent == ()
    # LstmTensors (lstm_eval.cc:34-38): the 15 present inputs in order, then the output.
    assert r.temp_tensors == tuple(x for x in i if x >= 0) + (o[0],)


def test_lstm_int8_cmsis():
    ins, outs, opts = lstm()
    r, *_ = run("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, outs, opts, CMSIS)
    # cmsis_nn/unidirectional_sequence_lstm.cc:120-144: 8 kernel sums of 20 int32 = 80
    # each (the truth's eight 80-byte buffers); :397-419: 3 buffers of 40.
    assert r.persistent == (80,) * 8
    assert r.scratch == (40,) * 3


def test_lstm_int16_cmsis_and_float():
    ins, outs, opts = lstm("INT16")
    r, *_ = run("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, outs, opts, CMSIS)
    assert r.persistent == (160,) * 8  # int64 kernel sums (:406)
    ins, outs, opts = lstm("FLOAT32", "FLOAT32", batch=2)
    for target in (HOST, CMSIS):
        r, *_ = run("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, outs, opts, target)
        assert r.scratch == (2 * 20 * 4,) * 4  # float cell state: 4 buffers of 4 bytes each
        assert r.persistent == ()


def test_lstm_per_channel_weights():
    # lstm_eval_common.cc:130-140 -> fully_connected_common.cc:111-116: every one of the 8
    # CalculateOpDataFullyConnected calls allocates 2 arrays of 20 int32.
    ins, outs, opts = lstm(channels=20)
    r, *_ = run("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, outs, opts, HOST)
    assert r.persistent == (80,) * 16


def test_lstm_cifg_refused():
    ins, outs, opts = lstm()
    ins[1] = None  # no input-to-input weights
    with pytest.raises(UnsupportedModelError, match="eight weights"):  # lstm_eval.cc:78-81
        run("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, outs, opts, HOST)


@pytest.mark.parametrize("target", [HOST, CM])
def test_int16_conv_with_a_large_output_multiplier_is_refused(target):
    # kernels/internal/common.cc:104: MultiplyByQuantizedMultiplier(int64_t, ...) asserts
    # shift < 8; 0.5 * 0.5 / 0.001 = 250 = 0.977 * 2^8 -> shift 8 aborts at Invoke.
    # A ratio of 100 (shift 7) runs. Seen on real TFLM with untrained 16x8 models.
    ins = [T("INT16", (1, 4, 4, 2)), T("INT8", (3, 1, 1, 2)), T("INT64", (3,), q=False)]
    with pytest.raises(UnsupportedModelError, match="left shift of 8"):
        run("CONV_2D", ins, [T("INT16", (1, 4, 4, 3), scale=0.001)], conv_opts(), target)
    r, _, _ = run("CONV_2D", ins, [T("INT16", (1, 4, 4, 3), scale=0.0025)], conv_opts(), target)
    assert r.persistent == (12, 12)
    # With an int32 bias the kernel accumulates in 32 bits (conv.cc:88-92): no such check.
    ins32 = [*ins[:2], T("INT32", (3,), q=False)]
    run("CONV_2D", ins32, [T("INT16", (1, 4, 4, 3), scale=0.001)], conv_opts(), target)
