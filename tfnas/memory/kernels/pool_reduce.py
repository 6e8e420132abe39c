"""Kernel rules: pooling, reductions, arg-min/max and cumulative sum.

Read from TFLM at commit 90b983c2: ``kernels/pooling*.cc``, ``l2_pool_2d.cc``,
``reduce*.cc``, ``arg_min_max.cc``, ``cumsum.cc`` and, for the
``cortex-m-cmsis`` target, ``kernels/cmsis_nn/pooling.cc`` with CMSIS-NN's
buffer-size functions (DSP path, no MVE). File:line references below are to
``tensorflow/lite/micro/kernels/`` unless a path says otherwise.

Every Prepare here allocates its temporary tensors in a fixed order and keeps
them until the whole Prepare returns (TFLM resets temporaries per operator), so
a tensor that Prepare or one of its helpers asks for twice appears twice in
``temp_tensors``.
"""

from __future__ import annotations

import struct

from tfnas.memory.kernels import KernelContext, KernelRequests, rule
from tfnas.tflite.model import Tensor

_QUANTIZED = ("INT8", "INT16")


def _f32(x: float) -> float:
    """``x`` rounded to a C ``float``."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _qparams(t: Tensor) -> tuple[float, int]:
    """``TfLiteTensor.params`` (scale, zero point) as TFLM fills them.

    The first scale and zero point when both lists are non-empty, else (0, 0)
    (``micro_allocator.cc:275-286``).
    """
    q = t.quantization
    if q is None or not q.is_quantized:
        return 0.0, 0
    return _f32(q.scale[0]), int(q.zero_point[0])


def _required(k: KernelContext, inputs: int, outputs: int, where: str) -> None:
    """Refuse unless the first ``inputs`` inputs and ``outputs`` outputs are present."""
    for i in range(inputs):
        if k.input(i) is None:
            raise k.refuse(f"input {i} is missing ({where})")
    for i in range(outputs):
        if k.output(i) is None:
            raise k.refuse(f"output {i} is missing ({where})")


def _count(k: KernelContext, inputs: int | None, outputs: int | None, where: str) -> None:
    """Refuse unless the operator has exactly that many inputs and outputs."""
    if inputs is not None and len(k.op.inputs) != inputs:
        raise k.refuse(f"expects {inputs} inputs, has {len(k.op.inputs)} ({where})")
    if outputs is not None and len(k.op.outputs) != outputs:
        raise k.refuse(f"expects {outputs} outputs, has {len(k.op.outputs)} ({where})")


# --------------------------------------------------------------------------- pooling


@rule("AVERAGE_POOL_2D", "MAX_POOL_2D")
def pool_2d(k: KernelContext) -> KernelRequests:
    """AVERAGE_POOL_2D and MAX_POOL_2D (reference and CMSIS-NN).

    ``PoolingPrepare`` (pooling_common.cc:50-95) takes input 0 then output 0 as
    temporaries and allocates nothing else. CMSIS-NN's ``AveragePrepare``
    (cmsis_nn/pooling.cc:160-197) runs ``PoolingPrepare`` and then takes input
    and output again; for int8/int16 it requests
    ``arm_avgpool_s{8,16}_get_buffer_size(out_w, channels)`` = ``4 * channels``
    on the DSP path (cmsis_nn/Source/PoolingFunctions/
    arm_avgpool_get_buffer_sizes_s{8,16}.c:55-59) when that is positive.
    CMSIS-NN's ``MaxPrepare`` (cmsis_nn/pooling.cc:153-158) is
    ``PoolingPrepare`` alone.
    """
    where = "pooling_common.cc:59-64"
    _required(k, 1, 1, where)
    inp, out = k.input(0), k.output(0)
    assert inp is not None and out is not None
    if inp.dtype not in ("FLOAT32", *_QUANTIZED):
        raise k.refuse(f"pooling does not support {inp.dtype} input (pooling_common.cc:85-88)")
    if inp.dtype in _QUANTIZED:
        (s_in, z_in), (s_out, z_out) = _qparams(inp), _qparams(out)
        if abs(_f32(s_in - s_out)) > 1.0e-6 or z_in != z_out:
            raise k.refuse(
                "quantized pooling needs the same input and output scale and zero point "
                f"(input {s_in}/{z_in}, output {s_out}/{z_out}; pooling_common.cc:70-76)"
            )
    if len(inp.shape) != 4 or len(out.shape) != 4 or inp.shape[3] != out.shape[3]:
        raise k.refuse(
            "pooling needs 4-D input and output with the same channels; Eval aborts "
            "(TFLITE_DCHECK, lite/kernels/internal/reference/pooling.h:32-33, "
            "integer_ops/pooling.h:32-33, cmsis_nn/pooling.cc:43-44)"
        )
    temps = (k.input_index(0), k.output_index(0))
    scratch: tuple[int, ...] = ()
    if k.cmsis and k.op.opcode == "AVERAGE_POOL_2D":
        temps = temps * 2  # cmsis_nn/pooling.cc:161-168
        channels = inp.shape[3]  # MatchingDim, cmsis_nn/pooling.cc:177
        if inp.dtype in _QUANTIZED and channels > 0:
            scratch = (4 * channels,)  # cmsis_nn/pooling.cc:180-188
    return KernelRequests(scratch=scratch, temp_tensors=temps)


@rule("L2_POOL_2D")
def l2_pool_2d(k: KernelContext) -> KernelRequests:
    """L2_POOL_2D (l2_pool_2d.cc:39-93): float32 only.

    Temporaries: output 0 then input 0. Prepare moves the output dims to the
    persistent tail with ``CreateWritableTensorDimsWithCopy``
    (kernel_util.cc:128-147): ``TfLiteIntArrayGetSizeInBytes(rank)`` =
    ``4 + 4 * rank`` bytes.
    """
    _count(k, 1, 1, "l2_pool_2d.cc:44-45")
    _required(k, 1, 1, "l2_pool_2d.cc:46-51")
    inp, out = k.input(0), k.output(0)
    assert inp is not None and out is not None
    if len(inp.shape) != 4 or len(out.shape) != 4:
        raise k.refuse("L2_POOL_2D needs 4-D input and output (l2_pool_2d.cc:52-53)")
    if inp.dtype != out.dtype:
        raise k.refuse("input and output types differ (l2_pool_2d.cc:54)")
    if inp.dtype != "FLOAT32":
        raise k.refuse(f"L2_POOL_2D has no {inp.dtype} kernel, float32 only (l2_pool_2d.cc:71)")
    return KernelRequests(
        persistent=(4 + 4 * len(out.shape),),
        temp_tensors=(k.output_index(0), k.input_index(0)),
    )


# --------------------------------------------------------------------------- reductions


def _axis_count(axis: Tensor) -> int:
    """``NumElements``/``ElementCount`` of the axis tensor (1 for a scalar)."""
    return axis.num_elements


def _reduce_common(k: KernelContext) -> tuple[Tensor, Tensor, Tensor]:
    """Checks shared by every reduction (``PrepareSimple``, reduce_common.cc:33-64)."""
    _count(k, 2, 1, "reduce_common.cc:46-47")
    _required(k, 2, 1, "reduce_common.cc:40-51")
    inp, axis, out = k.input(0), k.input(1), k.output(0)
    assert inp is not None and axis is not None and out is not None
    if axis.dtype != "INT32":
        raise k.refuse(f"the axis must be int32, not {axis.dtype} (reduce_common.cc:52)")
    return inp, axis, out


def _prepare_simple_temps(k: KernelContext, inp: Tensor) -> tuple[int, ...]:
    """``PrepareSimple``: input 0, input 1 (axis), and output 0 for int8 input."""
    temps = (k.input_index(0), k.input_index(1))
    if inp.dtype == "INT8":
        temps += (k.output_index(0),)  # reduce_common.cc:54-60
    return temps


@rule("MEAN", "SUM")
def mean_sum(k: KernelContext) -> KernelRequests:
    """MEAN and SUM (``PrepareMeanOrSumHelper``, reduce_common.cc:223-260).

    Temporaries: input 0, output 0, axis, then ``PrepareSimple``'s input 0,
    axis (and output 0 for int8). Scratch, in order: ``4 * output elements``
    for int8/int16 (the int32 accumulator, :238-241), ``4 * rank(input)``
    (:247-248), ``4 * axis elements`` (:249-250).
    """
    inp, axis, out = _reduce_common(k)
    op = k.op.opcode
    if inp.dtype not in ("FLOAT32", *_QUANTIZED):
        line = "345-348" if op == "MEAN" else "405-407"
        raise k.refuse(f"{op} has no {inp.dtype} kernel; Eval fails (reduce_common.cc:{line})")
    if op == "SUM" and inp.dtype != out.dtype:
        raise k.refuse("SUM input and output types differ; Eval fails (reduce_common.cc:368)")
    scratch: tuple[int, ...] = ()
    if inp.dtype in _QUANTIZED:
        scratch = (4 * out.num_elements,)
    scratch += (4 * len(inp.shape), 4 * _axis_count(axis))
    temps = (k.input_index(0), k.output_index(0), k.input_index(1))
    temps += _prepare_simple_temps(k, inp)
    return KernelRequests(scratch=scratch, temp_tensors=temps)


@rule("REDUCE_MAX", "REDUCE_MIN")
def reduce_min_max(k: KernelContext) -> KernelRequests:
    """REDUCE_MAX and REDUCE_MIN (``PrepareMinMaxHelper``, reduce_common.cc:196-221).

    ``PrepareSimple`` first (input 0, axis, output 0 for int8), then input 0,
    output 0, axis. Scratch: ``4 * rank(input)``, ``4 * axis elements``.
    Eval (``EvalMinMaxHelper``, :144-192) runs float32 and int8 only, and int8
    only with equal input/output scale and zero point: int16 fails at Invoke.
    """
    inp, axis, out = _reduce_common(k)
    if inp.dtype != out.dtype:
        raise k.refuse("input and output types differ; Eval fails (reduce_common.cc:149)")
    if inp.dtype not in ("FLOAT32", "INT8"):
        raise k.refuse(
            f"{k.op.opcode} runs float32 and int8 only, not {inp.dtype}; Eval fails "
            "(reduce_common.cc:187-189)"
        )
    if inp.dtype == "INT8" and _qparams(inp) != _qparams(out):
        raise k.refuse(
            "int8 min/max needs the same input and output scale and zero point; Eval fails "
            "(reduce_common.cc:174-176)"
        )
    temps = _prepare_simple_temps(k, inp)
    temps += (k.input_index(0), k.output_index(0), k.input_index(1))
    return KernelRequests(scratch=(4 * len(inp.shape), 4 * _axis_count(axis)), temp_tensors=temps)


@rule("REDUCE_ALL")
def reduce_all(k: KernelContext) -> KernelRequests:
    """REDUCE_ALL (``PrepareAllHelper``, reduce_common.cc:262-288): bool only.

    Temporaries: input 0, output 0, axis, then ``PrepareSimple``'s input 0 and
    axis. Scratch: ``4 * rank(input)``, ``4 * axis elements``.
    """
    inp, axis, out = _reduce_common(k)
    if inp.dtype != "BOOL":
        raise k.refuse(f"REDUCE_ALL needs bool input, not {inp.dtype} (reduce_common.cc:268)")
    if out.dtype != "BOOL":
        raise k.refuse("input and output types differ; Eval fails (reduce_common.cc:417)")
    temps = (k.input_index(0), k.output_index(0), k.input_index(1))
    temps += _prepare_simple_temps(k, inp)
    return KernelRequests(scratch=(4 * len(inp.shape), 4 * _axis_count(axis)), temp_tensors=temps)


# --------------------------------------------------------------------------- others


@rule("ARG_MAX", "ARG_MIN")
def arg_min_max(k: KernelContext) -> KernelRequests:
    """ARG_MAX and ARG_MIN: no Init and no Prepare (arg_min_max.cc:110-116).

    Nothing is allocated. Eval (:54-98) runs float32/int8 input with int32
    axis and int32 output only; TensorFlow's default int64 output fails.
    """
    _required(k, 2, 1, "arg_min_max.cc:55-60")
    inp, axis, out = k.input(0), k.input(1), k.output(0)
    assert inp is not None and axis is not None and out is not None
    if axis.dtype != "INT32":
        raise k.refuse(
            f"the axis must be int32, not {axis.dtype}; Eval fails (arg_min_max.cc:68, 88-92)"
        )
    if out.dtype != "INT32":
        raise k.refuse(
            f"the output must be int32, not {out.dtype} (convert with output_type=tf.int32); "
            "Eval fails (arg_min_max.cc:69, 83-87)"
        )
    if inp.dtype not in ("FLOAT32", "INT8"):
        raise k.refuse(f"{inp.dtype} input is not supported; Eval fails (arg_min_max.cc:77-82)")
    return KernelRequests()


@rule("CUMSUM")
def cumsum(k: KernelContext) -> KernelRequests:
    """CUMSUM (``CalculateOpData``, cumsum.cc:47-101): no Init.

    Temporaries: input 0, axis, output 0. For int8, Prepare allocates its
    OpData (nine 32-bit fields, 36 bytes on every ABI) as a persistent buffer
    (cumsum.cc:72-74).
    """
    _count(k, 2, 1, "cumsum.cc:48-49")
    _required(k, 2, 1, "cumsum.cc:53-67")
    inp, axis, out = k.input(0), k.input(1), k.output(0)
    assert inp is not None and axis is not None and out is not None
    if inp.dtype not in ("FLOAT32", "INT8"):
        raise k.refuse(f"CUMSUM runs float32 and int8 only, not {inp.dtype} (cumsum.cc:58-59)")
    if axis.dtype != "INT32":
        raise k.refuse(f"the axis must be int32, not {axis.dtype} (cumsum.cc:60)")
    if axis.num_elements != 1:
        raise k.refuse("the axis must have one element (cumsum.cc:62)")
    if len(inp.shape) < 1:
        raise k.refuse("the input must have at least one dimension (cumsum.cc:64)")
    if inp.dtype != out.dtype or inp.shape != out.shape:
        raise k.refuse("input and output differ in type or shape (cumsum.cc:69-70)")
    persistent = (k.target.struct_bytes("OpData@cumsum.cc"),) if out.dtype == "INT8" else ()
    return KernelRequests(
        persistent=persistent,
        temp_tensors=(k.input_index(0), k.input_index(1), k.output_index(0)),
    )
