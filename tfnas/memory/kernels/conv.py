"""Kernel rules: weighted kernels (see tfnas.memory.kernels).

CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV, FULLY_CONNECTED, BATCH_MATMUL and
SVDF, on the reference kernels (``host``, ``cortex-m``) and on CMSIS-NN
(``cortex-m-cmsis``: ``kernels/cmsis_nn/*.cc`` with the DSP, non-MVE branches of
the ``arm_*_get_buffer_size*`` functions, built with GCC so that
``__ARMCC_VERSION`` is undefined). Line numbers cite TFLM at commit 90b983c2
(``tensorflow/lite/micro/kernels/``) and CMSIS-NN at 4ab83cc3
(``tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Source/``).

The build defines ``KERNELS_OPTIMIZED_FOR_SPEED`` (TFLM Makefile:89) and not
``USE_TFLM_COMPRESSION``. Every Init here allocates only its OpData, so the
rules leave ``init=None``.
"""

from __future__ import annotations

import math
import struct

from tfnas.errors import UnsupportedModelError
from tfnas.memory.kernels import KernelContext, KernelRequests, kernel_requests, rule, temp_indices
from tfnas.memory.kernels.elementwise import quantize_multiplier_shift
from tfnas.memory.targets import Target
from tfnas.tflite.model import DTYPE_SIZES, Tensor

__all__ = ["prepare_struct_bytes"]

_F32, _I8, _I16, _I4 = "FLOAT32", "INT8", "INT16", "INT4"
_QUANT = (_I8, _I16)
_TENSOR_TYPE_INT32 = 2  # schema.fbs TensorType
# Flatbuffer Padding enum (schema.fbs): SAME = 0, VALID = 1.
_SAME, _VALID = 0, 1


def prepare_struct_bytes(target: Target, name: str) -> int:
    """sizeof(``name``) on ``target``, compiled from TFLM's sources (tflm_sizes.json)."""
    return target.struct_bytes(name)


def _int_array_bytes(rank: int) -> int:
    """TfLiteIntArrayGetSizeInBytes (core/c/common.cc:36-44): int size + int data[rank]."""
    return 4 + 4 * rank


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _out_size(padding: int, image: int, filt: int, stride: int, dilation: int) -> int | None:
    """ComputeOutSizeChecked (lite/kernels/padding.h:83-107); None when it fails."""
    if padding not in (_SAME, _VALID) or image < 0 or filt <= 0 or stride <= 0 or dilation <= 0:
        return None
    effective = (filt - 1) * dilation + 1
    if padding == _SAME:
        value = _cdiv(image + stride - 1, stride)
    else:
        value = _cdiv(image + stride - effective, stride)
    return None if value < 0 else value


def _pad(stride: int, dilation: int, image: int, filt: int, out: int) -> int:
    effective = (filt - 1) * dilation + 1
    total = max((out - 1) * stride + effective - image, 0)
    return total // 2


def conv_padding(
    k: KernelContext, in_h: int, in_w: int, f_h: int, f_w: int, dilation: bool = True
) -> tuple[int, int]:
    """(pad_h, pad_w) as ComputePaddingHeightWidth computes them (padding.h:130-175).

    The output size is recomputed from the options, not read from the output
    tensor; when either size is invalid both paddings stay 0.
    """
    if k.op.options_type is None:  # params zero-initialised: padding kTfLitePaddingUnknown
        return 0, 0
    padding = int(k.option("padding", _SAME))
    s_h, s_w = int(k.option("stride_h", 0)), int(k.option("stride_w", 0))
    d_h = int(k.option("dilation_h_factor", 1)) if dilation else 1
    d_w = int(k.option("dilation_w_factor", 1)) if dilation else 1
    out_w = _out_size(padding, in_w, f_w, s_w, d_w)
    out_h = _out_size(padding, in_h, f_h, s_h, d_h)
    if out_w is None or out_h is None:
        return 0, 0
    return _pad(s_h, d_h, in_h, f_h, out_h), _pad(s_w, d_w, in_w, f_w, out_w)


def _need(k: KernelContext, *tensors: Tensor | None) -> None:
    if any(t is None for t in tensors):
        raise k.refuse("a required input or output tensor is missing (Prepare's TF_LITE_ENSURE).")


def _zero_point(t: Tensor) -> int:
    """TfLiteTensor.params.zero_point: the first zero point (0 when unquantized)."""
    q = t.quantization
    return int(q.zero_point[0]) if q is not None and q.is_quantized else 0


def _f32(x: float) -> float:
    """``x`` rounded to float32."""
    return struct.unpack("f", struct.pack("f", x))[0]


def _scale(t: Tensor) -> float:
    """TfLiteTensor.params.scale: the first scale (0 when unquantized)."""
    q = t.quantization
    return float(q.scale[0]) if q is not None and q.is_quantized else 0.0


def _affine(t: Tensor) -> bool:
    """Whether TFLM gives the tensor kTfLiteAffineQuantization."""
    return t.quantization is not None and t.quantization.is_quantized


def _flat(t: Tensor) -> int:
    return math.prod(t.shape)


def _check_filter_scales(k: KernelContext, filt: Tensor, dim: int, where: str) -> None:
    """The filter must be affine with 1 or dims[dim] scales (and as many zero points)."""
    if not _affine(filt):
        raise k.refuse(f"the quantized kernel needs affine-quantized weights ({where}).")
    q = filt.quantization
    assert q is not None
    if len(q.scale) != 1 and len(q.scale) != filt.shape[dim]:
        raise k.refuse(
            f"weights have {len(q.scale)} scales, expected 1 or {filt.shape[dim]} ({where})."
        )


def _check_zp_count(k: KernelContext, filt: Tensor, where: str) -> None:
    q = filt.quantization
    if q is not None and len(q.scale) != len(q.zero_point):
        raise k.refuse(f"weights have unequal scale and zero-point counts ({where}).")


def _populate_conv_quant(
    k: KernelContext, inp: Tensor, filt: Tensor, num_channels: int, where: str
) -> None:
    """Refusals of PopulateConvolutionQuantizationParams (lite/kernels/kernel_util.cc:214-247)."""
    if not _affine(inp) or not _affine(filt):
        raise k.refuse(f"quantized input and weights must be affine-quantized ({where}).")
    q = filt.quantization
    assert q is not None
    if len(q.scale) > 1:
        if inp.dtype not in _QUANT or filt.dtype not in (_I8, _I4):
            raise k.refuse(
                f"per-channel weights need int8/int16 input and int8/int4 weights ({where})."
            )
        qdim = q.quantized_dimension
        if len(q.scale) != num_channels or not (
            0 <= qdim < len(filt.shape) and filt.shape[qdim] == num_channels
        ):
            raise k.refuse(f"per-channel scale count does not match the channels ({where}).")


def _check_int16_requant(
    k: KernelContext, inp: Tensor, filt: Tensor, out: Tensor, int64_acc: bool, where: str
) -> None:
    """Refuse 16x8 kernels whose output multiplier needs a left shift of 8 or more.

    The reference int16 kernels with 64-bit accumulators requantize through
    ``MultiplyByQuantizedMultiplier(int64_t, ...)``, which asserts ``shift < 8``
    (kernels/internal/common.cc:61 and :104) and aborts at the first Invoke. The
    shift is QuantizeMultiplier's exponent of input scale x filter scale / output
    scale, per channel (kernel_util.cc:214-247), so a ratio of 128 or more aborts.
    """
    if inp.dtype != _I16 or not int64_acc or not (_affine(inp) and _affine(filt)):
        return
    for filt_scale in filt.quantization.scale:  # type: ignore[union-attr]
        ratio = _scale(inp) * filt_scale / _scale(out) if _scale(out) else 0.0
        if quantize_multiplier_shift(ratio) >= 8:
            raise k.refuse(
                f"int16 output multiplier {ratio:.4g} needs a left shift of 8 or more, and "
                f"TFLM aborts at Invoke (MultiplyByQuantizedMultiplier asserts shift < 8, "
                f"kernels/internal/common.cc:104; {where})."
            )


def _int64_accumulator(k: KernelContext, bias: Tensor | None) -> bool:
    """16x8 conv and fully connected accumulate in 64 bits unless the bias is int32."""
    if bias is not None:
        return bias.dtype != "INT32"
    return k.option("quantized_bias_type", 0) != _TENSOR_TYPE_INT32


def _check_int16_zero_points(k: KernelContext, where: str, *tensors: Tensor) -> None:
    if any(_zero_point(t) != 0 for t in tensors):
        raise k.refuse(f"int16 tensors must have zero point 0 ({where}).")


# ----------------------------------------------------------------------------- CONV_2D


def _check_weight_types(k: KernelContext, inp: Tensor, filt: Tensor, where: str) -> None:
    """Refuse hybrid models: float32 with float32, int16 with int8, int8 with int8/int4 only."""
    ok = (
        (inp.dtype == _F32 and filt.dtype == _F32)
        or (inp.dtype == _I16 and filt.dtype == _I8)
        or (inp.dtype == _I8 and filt.dtype in (_I4, _I8))
    )
    if not ok:
        raise k.refuse(
            f"Hybrid models are not supported on TFLite Micro ({inp.dtype} input with "
            f"{filt.dtype} weights; {where})."
        )


def _cmsis_conv_s8_buffer(
    k: KernelContext, in_c: int, f_h: int, f_w: int, f_c: int, pad: tuple[int, int]
) -> int:
    """arm_convolve_wrapper_s8_get_buffer_size, DSP branch.

    arm_convolve_get_buffer_sizes_s8.c:198-223: 1x1 (arm_nn_is_convolve_1x1,
    arm_nnsupportfunctions.h:125-132) -> 0 (the fast 1x1 size is 0 unless the
    compiler is armclang, :43-51); 1xN (:153-159) and the general case ->
    arm_convolve_s8_get_buffer_size (:84-94) = 2 * align4(f_w*f_h*in_c) * 2 bytes.
    """
    d_h = int(k.option("dilation_h_factor", 1))
    d_w = int(k.option("dilation_w_factor", 1))
    if pad == (0, 0) and f_w == 1 and f_h == 1 and d_w == 1 and d_h == 1 and in_c == f_c:
        return 0
    cols = f_w * f_h * in_c
    return 4 * (-(-cols // 4) * 4)


@rule("CONV_2D")
def conv_2d(k: KernelContext) -> KernelRequests:
    """conv_common.cc:139-234 (reference) and cmsis_nn/conv.cc:45-180."""
    inp, filt, out = k.input(0), k.input(1), k.output(0)
    _need(k, inp, filt, out)
    assert inp is not None and filt is not None and out is not None
    if len(k.op.inputs) not in (2, 3) or len(k.op.outputs) != 1:
        raise k.refuse("CONV_2D takes 2 or 3 inputs and 1 output (conv_common.cc:86-89).")
    if inp.dtype != out.dtype:
        raise k.refuse("input and output types differ (conv_common.cc:158).")
    if k.cmsis and inp.dtype not in (_F32, _I16, _I8):
        raise k.refuse(f"Input data type not supported: {inp.dtype} (cmsis_nn/conv.cc:70-74).")
    _check_weight_types(k, inp, filt, "conv_common.cc:159-165")
    if len(filt.shape) != 4 or len(inp.shape) != 4 or len(out.shape) != 4:
        raise k.refuse("CONV_2D needs 4-D input, filter and output (cmsis_nn/conv.cc:85-87).")
    channels = filt.shape[0]
    quantized = inp.dtype in _QUANT
    if quantized:
        _check_filter_scales(k, filt, 0, "conv_common.cc:184-198")
        _populate_conv_quant(k, inp, filt, channels, "conv_common.cc:117-122")
    _, in_h, in_w, in_c = inp.shape
    _, f_h, f_w, f_c = filt.shape
    # CalculateOpDataConv (conv_common.cc:100-110): input, filter, bias, output.
    calc = temp_indices(k, ("in", 0), ("in", 1), ("in", 2), ("out", 0))
    if not k.cmsis:
        _check_int16_requant(k, inp, filt, out, _int64_accumulator(k, k.input(2)), "conv.cc:88-120")
        # Prepare: output, input, filter (conv_common.cc:148-156); per-channel
        # multiplier and shift for every type, float included (:175-181).
        scratch = (_flat(filt),) if filt.dtype == _I4 else ()  # :204-211
        return KernelRequests(
            scratch=scratch,
            persistent=(4 * channels, 4 * channels),
            temp_tensors=temp_indices(k, ("out", 0), ("in", 0), ("in", 1)),
            temp_after=calc,
        )
    # CMSIS-NN: input, filter, output, then "bias" read as output 2, which does
    # not exist, so nothing is allocated (cmsis_nn/conv.cc:56-67).
    if inp.shape[0] != out.shape[0]:
        raise k.refuse("input and output batch differ (cmsis_nn/conv.cc:89).")
    if f_c <= 0 or in_c % f_c != 0:
        raise k.refuse(
            "input channels are not a multiple of filter channels (cmsis_nn/conv.cc:91-92)."
        )
    persistent = (4 * channels, 4 * channels) if quantized else ()  # :122-130
    scratch: tuple[int, ...] = ()
    if inp.dtype == _I8:
        pad = conv_padding(k, in_h, in_w, f_h, f_w)
        size = _cmsis_conv_s8_buffer(k, in_c, f_h, f_w, f_c, pad)
        scratch = (size,) if size > 0 else ()  # :154-169
    elif inp.dtype == _I16:
        _check_int16_zero_points(k, "cmsis_nn/conv.cc:158-159", inp, out)
        # arm_convolve_get_buffer_sizes_s16.c:46-53 (non-MVE): 2*in_c*f_w*f_h int16s.
        size = 4 * in_c * f_w * f_h
        scratch = (size,) if size > 0 else ()
    return KernelRequests(
        scratch=scratch,
        persistent=persistent,
        temp_tensors=temp_indices(k, ("in", 0), ("in", 1), ("out", 0)),
        temp_after=calc,
    )


# ----------------------------------------------------------------------------- DEPTHWISE


@rule("DEPTHWISE_CONV_2D")
def depthwise_conv_2d(k: KernelContext) -> KernelRequests:
    """depthwise_conv_common.cc:139-237 (reference) and cmsis_nn/depthwise_conv.cc:58-200."""
    inp, filt, out = k.input(0), k.input(1), k.output(0)
    _need(k, inp, filt, out)
    assert inp is not None and filt is not None and out is not None
    if len(k.op.inputs) not in (2, 3) or len(k.op.outputs) != 1:
        raise k.refuse(
            "DEPTHWISE_CONV_2D takes 2 or 3 inputs and 1 output (depthwise_conv_common.cc:86-89)."
        )
    if len(filt.shape) != 4 or len(inp.shape) != 4 or len(out.shape) != 4:
        raise k.refuse("DEPTHWISE_CONV_2D needs 4-D input, filter and output.")
    channels = filt.shape[3]
    calc = temp_indices(k, ("in", 0), ("in", 1), ("in", 2), ("out", 0))  # :100-110
    if not k.cmsis:
        if inp.dtype == _I8:
            _check_filter_scales(k, filt, 3, "depthwise_conv_common.cc:175-189")
            _check_zp_count(k, filt, "depthwise_conv_common.cc:190-191")
        ok_types = (
            inp.dtype == filt.dtype
            or (inp.dtype == _I8 and filt.dtype in (_I4, _I8))
            or (inp.dtype == _I16 and filt.dtype == _I8)
        )
        if not ok_types:
            raise k.refuse(
                f"Hybrid models are not supported on TFLite Micro ({inp.dtype} input with "
                f"{filt.dtype} weights; depthwise_conv_common.cc:194-200)."
            )
        if inp.dtype != _F32:
            _populate_conv_quant(k, inp, filt, channels, "depthwise_conv_common.cc:114-123")
        _check_int16_requant(k, inp, filt, out, True, "depthwise_conv.cc:142-160")
        return KernelRequests(
            scratch=(_flat(filt),) if filt.dtype == _I4 else (),  # :202-209
            persistent=(4 * channels, 4 * channels),  # :166-172, every type
            temp_tensors=temp_indices(k, ("out", 0), ("in", 0), ("in", 1)),
            temp_after=calc,  # :148-156
        )
    if inp.dtype != out.dtype:
        raise k.refuse("input and output types differ (cmsis_nn/depthwise_conv.cc:78).")
    if inp.dtype not in (_F32, _I16, _I8):
        raise k.refuse(
            f"Input data type not supported: {inp.dtype} (cmsis_nn/depthwise_conv.cc:79-83)."
        )
    _check_weight_types(k, inp, filt, "cmsis_nn/depthwise_conv.cc:84-90")
    persistent: tuple[int, ...] = ()
    if inp.dtype in _QUANT:
        if inp.dtype == _I16:
            _check_int16_zero_points(k, "cmsis_nn/depthwise_conv.cc:104-107", inp, out)
        _check_filter_scales(k, filt, 3, "cmsis_nn/depthwise_conv.cc:100-119")
        _check_zp_count(k, filt, "cmsis_nn/depthwise_conv.cc:120-121")
        persistent = (4 * channels, 4 * channels)  # :124-132
        _populate_conv_quant(k, inp, filt, channels, "depthwise_conv_common.cc:114-123")
    scratch: tuple[int, ...] = ()
    if inp.dtype == _I8:
        # :140-193; arm_depthwise_conv_get_buffer_sizes_s8.c:120-139 (DSP) and
        # _s4.c:36-56 for int4 weights.
        n, in_h, in_w, in_c = inp.shape
        _, f_h, f_w, _ = filt.shape
        out_c = out.shape[3]
        d_h = int(k.option("dilation_h_factor", 1))
        d_w = int(k.option("dilation_w_factor", 1))
        size = 0
        if in_c == out_c and n == 1 and d_w == 1 and d_h == 1:
            pad_h, pad_w = conv_padding(k, in_h, in_w, f_h, f_w)
            small_3x3 = f_w == 3 and f_h == 3 and pad_h <= 1 and pad_w <= 1
            if filt.dtype == _I4 or not small_3x3:
                size = in_c * f_w * f_h * 2
        scratch = (size,) if size > 0 else ()
    return KernelRequests(
        scratch=scratch,
        persistent=persistent,
        temp_tensors=temp_indices(k, ("in", 0), ("in", 1), ("out", 0)),
        temp_after=calc,  # :68-76
    )


# ----------------------------------------------------------------------------- TRANSPOSE_CONV


def _cmsis_transpose_conv_s8(
    k: KernelContext, inp: Tensor, filt: Tensor, out: Tensor
) -> tuple[int, int]:
    """arm_transpose_conv_s8_get_buffer_size and _get_reverse_conv_buffer_size (non-MVE).

    arm_transpose_conv_get_buffer_sizes_s8.c:37-66 and :98-115; the reverse
    conversion is used for strides <= 2 and more than 16 input channels
    (REVERSE_TCOL_EFFICIENT_THRESHOLD, arm_nnsupportfunctions.h:78).
    """
    s_w, s_h = int(k.option("stride_w", 0)), int(k.option("stride_h", 0))
    in_w, in_c = inp.shape[2], inp.shape[3]
    _, f_h, f_w, _ = filt.shape
    out_c = out.shape[3]
    if s_w <= 2 and s_h <= 2 and in_c > 16:
        buf = 4 * (-(-(f_w * f_h * in_c) // 4) * 4)
        reverse = in_c * f_w * f_h * filt.shape[0]
        return buf, reverse
    buf_x = ((in_w - 1) * s_w + max(f_w, s_h)) * out_c  # the source takes max(w, stride_h)
    buf_y = max(f_h, s_h)
    return buf_x * buf_y * 4, 0


@rule("TRANSPOSE_CONV")
def transpose_conv(k: KernelContext) -> KernelRequests:
    """transpose_conv.cc:72-259 (reference) and cmsis_nn/transpose_conv.cc:75-300.

    Inputs: 0 output shape, 1 filter, 2 input, 3 bias (optional).
    """
    inp, filt, out = k.input(2), k.input(1), k.output(0)
    _need(k, inp, filt, out)
    assert inp is not None and filt is not None and out is not None
    if len(k.op.inputs) not in (3, 4) or len(k.op.outputs) != 1:
        raise k.refuse("TRANSPOSE_CONV takes 3 or 4 inputs and 1 output (transpose_conv.cc:76-79).")
    if len(filt.shape) != 4 or len(out.shape) != 4 or len(inp.shape) != 4:
        raise k.refuse("TRANSPOSE_CONV needs 4-D input, filter and output.")
    if k.cmsis:
        if inp.dtype != out.dtype:
            raise k.refuse("input and output types differ (cmsis_nn/transpose_conv.cc:177).")
        if inp.dtype not in (_F32, _I16, _I8):
            raise k.refuse(
                f"Input data type not supported: {inp.dtype} (cmsis_nn/transpose_conv.cc:178-182)."
            )
        ok_types = (
            (inp.dtype == _F32 and filt.dtype == _F32)
            or (inp.dtype == _I16 and filt.dtype == _I8)
            or (inp.dtype == _I8 and filt.dtype == _I8)
        )
        where = "cmsis_nn/transpose_conv.cc:183-188"
    else:
        ok_types = inp.dtype == filt.dtype or (inp.dtype == _I16 and filt.dtype == _I8)
        where = "transpose_conv.cc:172-176"
    if not ok_types:
        raise k.refuse(
            f"Hybrid models are not supported on TFLite Micro ({inp.dtype} input with "
            f"{filt.dtype} weights; {where})."
        )
    channels = filt.shape[0]
    bias = k.input(3)
    scratch: list[int] = []
    if inp.dtype == _I8:
        if k.cmsis:
            scratch.extend(_cmsis_transpose_conv_s8(k, inp, filt, out))  # both always requested
        else:
            scratch.append(_flat(out) * 4)  # transpose_conv.cc:194-200
    elif inp.dtype == _I16:
        scratch.append(_flat(out) * 8)  # transpose_conv.cc:203-209
    if inp.dtype in _QUANT:
        _check_filter_scales(k, filt, 0, "transpose_conv.cc:212-227")
        _check_zp_count(k, filt, "transpose_conv.cc:226-227")
    calc: tuple[int, ...] = ()
    if inp.dtype != _F32:
        # CalculateOpData (transpose_conv.cc:97-142): input, filter, bias, output.
        calc = temp_indices(k, ("in", 2), ("in", 1), ("in", 3), ("out", 0))
        _populate_conv_quant(k, inp, filt, channels, "transpose_conv.cc:113-119")
        # Both builds run the reference int16 kernel (cmsis_nn/transpose_conv.cc:437-470).
        _check_int16_requant(k, inp, filt, out, True, "transpose_conv.cc:340-370")
        if inp.dtype == _I16:
            if bias is None and k.cmsis:
                raise k.refuse(
                    "CMSIS-NN TRANSPOSE_CONV reads the type of an absent bias for int16 "
                    "(cmsis_nn/transpose_conv.cc:134)."
                )
            if bias is not None and bias.dtype == _I16:
                scratch.append(_flat(bias) * 8)  # transpose_conv.cc:128-133
    return KernelRequests(
        scratch=tuple(scratch),
        persistent=(4 * channels, 4 * channels),  # :185-191, every type, both kernels
        temp_tensors=temp_indices(k, ("out", 0), ("in", 2), ("in", 1)),
        temp_after=calc,  # :162-170
    )


# ----------------------------------------------------------------------------- FULLY_CONNECTED


def fc_per_channel_persistent(
    k: KernelContext,
    data_type: str,
    inp: Tensor,
    filt: Tensor,
    where: str,
    bias: Tensor | None = None,
    out: Tensor | None = None,
) -> tuple[int, ...]:
    """Persistent buffers of CalculateOpDataFullyConnected (fully_connected_common.cc:55-157).

    Per-channel weights (more than one scale) of a non-float op get a
    multiplier and a shift array of 4 bytes per scale. Per-tensor weights with
    a bias must have a bias scale within 2% (of the output scale) of input
    scale times weights scale (lite/kernels/kernel_util.cc:300-322).
    """
    if data_type == _F32:
        return ()
    n = len(filt.quantization.scale) if _affine(filt) and filt.quantization else 0
    if n <= 1:
        if bias is not None and out is not None:
            diff = abs(_scale(inp) * _scale(filt) - _scale(bias))
            ratio = diff / _scale(out) if _scale(out) > 0 else math.inf  # 0/0 is NaN in C
            if not ratio <= 0.02:
                raise k.refuse(
                    "bias scale differs from input scale times weights scale "
                    "(lite/kernels/kernel_util.cc:319-322)."
                )
        return ()
    if inp.dtype not in _QUANT or filt.dtype == _I4:
        raise k.refuse(f"per-channel weights need int8/int16 input and non-int4 weights ({where}).")
    qdim = filt.quantization.quantized_dimension
    if not (0 <= qdim < len(filt.shape)) or filt.shape[qdim] != n:
        raise k.refuse(f"per-channel scale count does not match the weights' dimension ({where}).")
    return (4 * n, 4 * n)


@rule("FULLY_CONNECTED")
def fully_connected(k: KernelContext) -> KernelRequests:
    """fully_connected.cc:36-106 (reference) and cmsis_nn/fully_connected.cc:54-188."""
    inp, filt, out = k.input(0), k.input(1), k.output(0)
    _need(k, inp, filt, out)
    assert inp is not None and filt is not None and out is not None
    temps = temp_indices(k, ("in", 0), ("in", 1), ("in", 2), ("out", 0))
    if inp.dtype != out.dtype:
        raise k.refuse("input and output types differ (fully_connected.cc:57).")
    if not k.cmsis:
        bad = (
            (inp.dtype == _F32 and filt.dtype != _F32)
            or (inp.dtype == _I8 and filt.dtype not in (_I8, _I4))
            or (inp.dtype == _I16 and filt.dtype != _I8)
        )
        if bad:
            raise k.refuse(
                f"Input type {inp.dtype} with filter type {filt.dtype} not supported "
                "(hybrid models are not supported; fully_connected.cc:59-67)."
            )
        scratch = (_flat(filt),) if filt.dtype == _I4 else ()  # :69-76
        _check_int16_requant(
            k, inp, filt, out, _int64_accumulator(k, k.input(2)), "fully_connected.cc:238-333"
        )
        persistent = fc_per_channel_persistent(
            k, inp.dtype, inp, filt, "fully_connected_common.cc:99-116", k.input(2), out
        )
        return KernelRequests(scratch=scratch, persistent=persistent, temp_tensors=temps)
    if inp.dtype not in (_F32, _I16, _I8):
        raise k.refuse(
            f"Input data type not supported: {inp.dtype} (cmsis_nn/fully_connected.cc:76-80)."
        )
    _check_weight_types(k, inp, filt, "cmsis_nn/fully_connected.cc:81-87")
    persistent = fc_per_channel_persistent(
        k, inp.dtype, inp, filt, "fully_connected_common.cc:99-116", k.input(2), out
    )
    if persistent and not (inp.dtype == _I8 and filt.dtype != _I4):
        raise k.refuse(
            f"CMSIS-NN FULLY_CONNECTED supports per-channel weights only with int8 input "
            f"(here {inp.dtype}; cmsis_nn/fully_connected.cc:116-119)."
        )
    scratch: tuple[int, ...] = ()
    unmodelled: tuple[str, ...] = ()
    if inp.dtype == _I16:
        # arm_fully_connected_s16_get_buffer_size is 0 (..._sizes_s16.c:36-40).
        _check_int16_zero_points(k, "cmsis_nn/fully_connected.cc:124-125", inp, out)
    elif inp.dtype == _I8 and filt.dtype != _I4:
        accum_depth = filt.shape[-1] if filt.shape else 0
        if len(out.shape) > 2 and accum_depth % 4 == 0:
            # Per-tensor weights fake per-channel conv1x1 parameters (:131-140);
            # arm_convolve_1x1_s8_fast_get_buffer_size is 0 under GCC (DSP, :43-51).
            if not persistent:
                scratch = (out.shape[-1] * 4 * 2,)
                unmodelled = _check_conv_1x1_index(k)
        # else arm_fully_connected_s8_get_buffer_size is 0 on DSP
        # (..._sizes_s8.c:36-40), so no kernel-sum buffer (:153-170).
    return KernelRequests(
        scratch=scratch, persistent=persistent, temp_tensors=temps, unmodelled=unmodelled
    )


def _check_conv_1x1_index(k: KernelContext) -> tuple[str, ...]:
    """Refuse a CMSIS-NN FC whose fake per-channel scratch buffer gets an index below 4.

    EvalQuantizedInt8 checks ``TFLITE_DCHECK_GE(data.buffer_conv_1x1_idx, 4)``
    (cmsis_nn/fully_connected.cc:296), and scratch indices count every request
    made before in the whole model (micro_allocator.cc:695-733). This build keeps
    DCHECKs, so Invoke aborts when fewer than four scratch buffers were requested
    before this operator (measured: three earlier requests halt, four run).
    Operators of earlier subgraphs are not visible here; for a later subgraph
    that is short of four by itself, the outcome is reported as unknown.
    """
    before = 0
    for op in k.sg.operators[: k.op.index]:
        try:
            before += len(kernel_requests(k.sg, op, k.target).scratch)
        except UnsupportedModelError:
            return ()  # an earlier operator already fails to prepare
        if before >= 4:
            return ()
    why = (
        "CMSIS-NN FULLY_CONNECTED (int8, per-tensor weights, output rank > 2) aborts at "
        f"Invoke: its scratch buffer gets index {before}, below the 4 that "
        "EvalQuantizedInt8 checks (cmsis_nn/fully_connected.cc:296)"
    )
    if k.sg.index == 0:
        raise k.refuse(why + ".")
    return (why + " unless earlier subgraphs request enough scratch buffers",)


# ----------------------------------------------------------------------------- BATCH_MATMUL


def _transposed_copy(k: KernelContext, t: Tensor) -> tuple[int, ...]:
    """AllocInitTransposeTensorFromTfLiteTensor (batch_matmul.cc:91-126): struct, dims, data."""
    return (
        prepare_struct_bytes(k.target, "TfLiteEvalTensor"),
        _int_array_bytes(len(t.shape)),
        _flat(t) * DTYPE_SIZES.get(t.dtype, 1),
    )


def _aligned_total(sizes: tuple[int, ...]) -> int:
    return sum(-(-s // 16) * 16 for s in sizes)


@rule("BATCH_MATMUL")
def batch_matmul(k: KernelContext) -> KernelRequests:
    """batch_matmul.cc:131-281 (reference) and cmsis_nn/batch_matmul.cc:189-335."""
    if len(k.op.inputs) != 2 or len(k.op.outputs) != 1:
        raise k.refuse("BATCH_MATMUL takes 2 inputs and 1 output (batch_matmul.cc:180-181).")
    lhs, rhs, out = k.input(0), k.input(1), k.output(0)
    _need(k, lhs, rhs, out)
    assert lhs is not None and rhs is not None and out is not None
    temps = temp_indices(k, ("in", 0), ("in", 1), ("out", 0))
    types = (_F32, _I8, _I16)
    if lhs.dtype not in types or rhs.dtype not in types:
        raise k.refuse(f"BATCH_MATMUL runs float32, int8 and int16, not {lhs.dtype}/{rhs.dtype}.")
    if lhs.dtype != rhs.dtype or lhs.dtype != out.dtype:
        raise k.refuse("BATCH_MATMUL needs equal input and output types (batch_matmul.cc:199-201).")
    max_rank = 4 if k.cmsis else 5
    lr, rr = len(lhs.shape), len(rhs.shape)
    if not (2 <= lr <= max_rank and 2 <= rr <= max_rank):
        raise k.refuse(f"BATCH_MATMUL operands must have rank 2..{max_rank}.")
    if lhs.dtype == _I16:
        _check_int16_zero_points(k, "batch_matmul.cc:242-244", lhs, rhs, out)
    known = "adj_x" in k.op.options or k.op.options_type is None
    adj_x = bool(k.option("adj_x", False))
    adj_y = bool(k.option("adj_y", False))
    rank = max(lr, rr)
    el = (1,) * (rank - lr) + tuple(lhs.shape)
    er = (1,) * (rank - rr) + tuple(rhs.shape)
    for a, b in zip(el[:-2], er[:-2], strict=True):
        if a != b and a != 1 and b != 1:
            raise k.refuse(
                "BATCH_MATMUL batch dimensions do not broadcast (batch_matmul.cc:259-267)."
            )
    if known:
        acc_l = el[-2] if adj_x else el[-1]
        acc_r = er[-1] if adj_y else er[-2]
        if acc_l != acc_r:
            raise k.refuse("BATCH_MATMUL accumulation dimensions differ (batch_matmul.cc:271-276).")
    if rank > len(out.shape):
        raise k.refuse("BATCH_MATMUL output rank is too small (batch_matmul.cc:38).")
    quant = (prepare_struct_bytes(k.target, "QuantizationOpDataBatchMatmul"),)
    lhs_t = _transposed_copy(k, lhs) if adj_x else ()
    rhs_t = _transposed_copy(k, rhs) if not adj_y else ()
    # ReshapeOutputTensor -> CreateWritableTensorDimsWithCopy (kernel_util.cc:128-147).
    out_dims = (_int_array_bytes(len(out.shape)),)
    is_quant = lhs.dtype in (_I8, _I16)
    if k.cmsis:
        # lhs/rhs copies, output dims, then the quantization struct (:258-289);
        # arm_fully_connected_s8_get_buffer_size is 0 on DSP, so no scratch.
        persistent = lhs_t + rhs_t + out_dims + (quant if is_quant else ())
    else:
        # InitializeTemporaries (:131-167): quantization, lhs, rhs; then the dims copy.
        persistent = (quant if is_quant else ()) + lhs_t + rhs_t + out_dims
    if known:
        return KernelRequests(persistent=persistent, temp_tensors=temps)
    # adj_x / adj_y are not decoded from BatchMatMulOptions: counted as false
    # (the converter's default); adj_x=true would add a transposed lhs copy.
    return KernelRequests(
        persistent=persistent,
        temp_tensors=temps,
        unmodelled=("BATCH_MATMUL: adj_x/adj_y not read from the model; counted as false",),
        bound_bytes=_aligned_total(_transposed_copy(k, lhs)),
    )


# ----------------------------------------------------------------------------- SVDF


@rule("SVDF")
def svdf(k: KernelContext) -> KernelRequests:
    """svdf_common.cc:363-515 (reference) and cmsis_nn/svdf.cc:59-247 (same requests on DSP)."""
    inp, wf, wt, state, out = k.input(0), k.input(1), k.input(2), k.input(4), k.output(0)
    bias = k.input(3)
    _need(k, inp, wf, wt, state)
    assert inp is not None and wf is not None and wt is not None and state is not None
    # input, weights_feature, weights_time, bias, activation_state, then output (:377-411).
    temps = temp_indices(k, ("in", 0), ("in", 1), ("in", 2), ("in", 3), ("in", 4), ("out", 0))
    rank = int(k.option("rank", 0))
    if len(inp.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2:
        raise k.refuse("SVDF needs 2-D input and weights (svdf_common.cc:404-423).")
    batch, input_size = inp.shape
    filters = wf.shape[0]
    if rank <= 0 or filters % rank != 0:
        raise k.refuse("SVDF filters are not a multiple of its rank (svdf_common.cc:397).")
    units = filters // rank
    memory = wt.shape[1]
    if inp.dtype not in (_F32, _I8):
        raise k.refuse(
            f"SVDF runs float32 and int8 input, not {inp.dtype} (svdf_common.cc:402-403)."
        )
    if len(k.op.outputs) != 1 or out is None:
        raise k.refuse("SVDF has one output (svdf_common.cc:408-411).")
    if tuple(out.shape) != (batch, units) or wf.shape[1] != input_size or wt.shape[0] != filters:
        raise k.refuse("SVDF tensor shapes do not agree (svdf_common.cc:412-423).")
    if bias is not None and (not bias.shape or bias.shape[0] != units):
        raise k.refuse("SVDF bias size is not the number of units (svdf_common.cc:426-428).")
    if tuple(state.shape) != (batch, memory * filters) or not state.is_variable:
        raise k.refuse("SVDF activation state must be a variable [batch, memory*filters].")
    if len(k.op.inputs) != 5:
        raise k.refuse("SVDF takes 5 inputs (svdf_common.cc:438).")
    if inp.dtype == _I8:
        if (
            wf.dtype != _I8
            or wt.dtype not in (_I16, _I8)
            or state.dtype not in (_I16, _I8)
            or (bias is not None and bias.dtype != "INT32")
            or out.dtype != _I8
        ):
            raise k.refuse("int8 SVDF tensor types are not supported (svdf_common.cc:444-453).")
        if bias is None:
            raise k.refuse("int8 SVDF reads the scale of an absent bias (svdf_common.cc:464-468).")
        # The bias scale is computed in float32 (state scale * time-weights scale).
        product = _f32(_f32(_scale(state)) * _f32(_scale(wt)))
        if not abs(_scale(bias) - product) < 1e-5:
            raise k.refuse(
                "int8 SVDF bias scale is not activation-state scale times weights-time scale "
                "(svdf_common.cc:464-468)."
            )
        # :481-490; CMSIS-NN adds nothing: arm_svdf_s8_get_buffer_size is 0 on DSP
        # (arm_svdf_get_buffer_sizes_s8.c:36-40, cmsis_nn/svdf.cc:192-221).
        return KernelRequests(scratch=(4 * batch * filters, 4 * batch * units), temp_tensors=temps)
    if (
        wf.dtype != _F32
        or wt.dtype != _F32
        or state.dtype != _F32
        or (bias is not None and bias.dtype != _F32)
        or out.dtype != _F32
    ):
        raise k.refuse(
            "float SVDF needs float32 weights, state, bias and output (svdf_common.cc:492-498)."
        )
    return KernelRequests(scratch=(4 * batch * filters,), temp_tensors=temps)  # :501-504
