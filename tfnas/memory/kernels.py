"""Per-kernel memory rules: what each TFLM kernel asks for while preparing.

For one operator on one target, :func:`kernel_requests` returns the scratch
buffers it requests in the arena, the persistent buffers its Prepare allocates
(per-channel quantisation arrays, lookup tables) and the tensors it holds as
temporary ``TfLiteTensor`` structs. :func:`check_supported` raises
:class:`~tfnas.errors.UnsupportedModelError` for what TFLM refuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfnas.errors import UnsupportedModelError
from tfnas.memory.targets import Target
from tfnas.tflite.model import Operator, Subgraph, Tensor

__all__ = ["KernelRequests", "kernel_requests", "check_supported", "TFLM_BUILTIN_OPS"]

#: Builtin operators with a TFLM kernel (TFLM commit 90b983c2, all_ops_resolver).
TFLM_BUILTIN_OPS = frozenset(
    """ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL
    BATCH_TO_SPACE_ND BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION
    CONV_2D COS CUMSUM DEPTH_TO_SPACE DEPTHWISE_CONV_2D DEQUANTIZE DIV ELU
    EMBEDDING_LOOKUP EQUAL EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD
    FULLY_CONNECTED GATHER GATHER_ND GREATER GREATER_EQUAL HARD_SWISH IF
    L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG LOG_SOFTMAX
    LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC MAX_POOL_2D MAXIMUM MEAN MINIMUM
    MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE
    REDUCE_MAX REDUCE_MIN RELU RELU6 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR
    REVERSE_V2 ROUND RSQRT SELECT_V2 SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND
    SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE SQUEEZE
    STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
    UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE""".split()
)
_RUNNABLE_TYPES = frozenset({"FLOAT32", "INT8", "INT16", "INT32", "INT64", "UINT8", "BOOL"})
_WEIGHTED = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "SVDF", "BATCH_MATMUL"}
)
_REDUCE = frozenset({"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN"})


@dataclass(frozen=True)
class KernelRequests:
    """Memory one kernel asks for while preparing one operator.

    The kernel allocates ``temp_tensors`` as temporary ``TfLiteTensor`` structs,
    then its ``persistent`` buffers, then ``temp_after`` (TFLM does not reclaim
    temporaries until the operator is prepared, so they add up).
    """

    scratch: tuple[int, ...] = ()
    persistent: tuple[int, ...] = ()
    temp_tensors: tuple[int, ...] = ()
    temp_after: tuple[int, ...] = ()


def _tensor(sg: Subgraph, index: int) -> Tensor | None:
    return sg.tensors[index] if 0 <= index < len(sg.tensors) else None


def check_supported(sg: Subgraph, op: Operator, target: Target) -> None:
    """Raise UnsupportedModelError if TFLM cannot run ``op`` on ``target``."""
    where = f"operator {op.index} ({op.name}) of subgraph {sg.index}"
    if op.opcode == "CUSTOM":
        raise UnsupportedModelError(
            f"{where} is a custom operator; TFLM needs a registered kernel for it."
        )
    if op.opcode not in TFLM_BUILTIN_OPS:
        raise UnsupportedModelError(f"{where}: TFLM has no kernel for {op.opcode}.")
    tensors = [t for i in (*op.inputs, *op.outputs) if (t := _tensor(sg, i)) is not None]
    for t in tensors:
        if t.dtype not in _RUNNABLE_TYPES:
            raise UnsupportedModelError(
                f"{where}: tensor {t.index} has type {t.dtype}, which TFLM kernels do not run "
                "(float16 or other weights must be converted to int8 or float32)."
            )
        if any(d < 0 for d in t.shape):
            raise UnsupportedModelError(
                f"{where}: tensor {t.index} has a dynamic shape {t.shape}; TFLM needs static shapes."
            )
    inp = _tensor(sg, op.inputs[0]) if op.inputs else None
    weights = _tensor(sg, op.inputs[1]) if len(op.inputs) > 1 else None
    if (
        op.opcode in _WEIGHTED
        and inp is not None
        and weights is not None
        and inp.dtype == "FLOAT32"
        and weights.dtype in ("INT8", "UINT8")
    ):
        raise UnsupportedModelError(
            f"{where}: Hybrid models are not supported on TFLite Micro "
            "(float activations with int8 weights)."
        )
    if op.opcode in ("MIRROR_PAD", "REDUCE_MAX") and inp is not None and inp.dtype == "INT16":
        raise UnsupportedModelError(f"{where}: TFLM's {op.opcode} kernel fails for int16 input.")
    if (
        target.cmsis_nn
        and op.opcode == "FULLY_CONNECTED"
        and inp is not None
        and weights is not None
        and weights.quant_channels > 1
        and inp.dtype != "INT8"
    ):
        raise UnsupportedModelError(
            f"{where}: CMSIS-NN FULLY_CONNECTED rejects per-channel weights with "
            f"{inp.dtype} input (only int8 input is per-channel)."
        )


def _same_padding(size: int, filt: int, stride: int, dilation: int, out: int) -> int:
    effective = (filt - 1) * dilation + 1
    return max((out - 1) * stride + effective - size, 0) // 2


def _conv_padding(op: Operator, inp: Tensor, weights: Tensor, out: Tensor) -> tuple[int, int]:
    if op.options.get("padding", 0) != 0 or len(inp.shape) != 4 or len(out.shape) != 4:
        return 0, 0
    kh, kw = weights.shape[1], weights.shape[2]
    ph = _same_padding(
        inp.shape[1],
        kh,
        op.options.get("stride_h", 1),
        op.options.get("dilation_h_factor", 1),
        out.shape[1],
    )
    pw = _same_padding(
        inp.shape[2],
        kw,
        op.options.get("stride_w", 1),
        op.options.get("dilation_w_factor", 1),
        out.shape[2],
    )
    return ph, pw


def _cmsis_scratch(sg: Subgraph, op: Operator) -> tuple[int, ...] | None:
    """CMSIS-NN buffer sizes (Cortex-M4 with DSP), or None to use the reference rule."""
    inp = _tensor(sg, op.inputs[0]) if op.inputs else None
    out = _tensor(sg, op.outputs[0]) if op.outputs else None
    weights = _tensor(sg, op.inputs[1]) if len(op.inputs) > 1 else None
    if inp is None or out is None:
        return None
    quantized = inp.dtype in ("INT8", "INT16")
    dil = (op.options.get("dilation_h_factor", 1), op.options.get("dilation_w_factor", 1))
    if op.opcode == "CONV_2D" and quantized and weights is not None and len(weights.shape) == 4:
        _, kh, kw, cin = weights.shape
        ph, pw = _conv_padding(op, inp, weights, out)
        if inp.dtype == "INT16":
            return (4 * kh * kw * cin,)
        if kh == 1 and kw == 1 and ph == 0 and pw == 0 and dil == (1, 1):
            return ()
        return (4 * (-(-(kh * kw * cin) // 4) * 4),)
    if op.opcode == "DEPTHWISE_CONV_2D" and quantized and weights is not None:
        _, kh, kw, _ = weights.shape
        cin = inp.shape[-1]
        if cin != out.shape[-1] or inp.shape[0] != 1 or dil != (1, 1):
            return ()
        ph, pw = _conv_padding(op, inp, weights, out)
        if inp.dtype == "INT8" and kh == 3 and kw == 3 and ph <= 1 and pw <= 1:
            return ()
        return (2 * cin * kh * kw,)
    if op.opcode == "AVERAGE_POOL_2D" and quantized:
        return (4 * out.shape[-1],)
    if op.opcode == "MAX_POOL_2D":
        return ()
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" and inp.dtype == "INT8":
        batch = inp.shape[0] if inp.shape else 1
        return (2 * batch * out.shape[-1],) * 3
    if op.opcode == "FULLY_CONNECTED" and inp.dtype == "INT8" and weights is not None:
        depth = weights.shape[-1] if weights.shape else 0
        if weights.quant_channels <= 1 and len(out.shape) > 2 and depth % 4 == 0:
            return (8 * weights.shape[0],)
        return ()
    return None


def _reference_scratch(sg: Subgraph, op: Operator) -> tuple[int, ...]:
    inp = _tensor(sg, op.inputs[0]) if op.inputs else None
    out = _tensor(sg, op.outputs[0]) if op.outputs else None
    if inp is None or out is None:
        return ()
    if op.opcode in _REDUCE:
        axis = _tensor(sg, op.inputs[1]) if len(op.inputs) > 1 else None
        num_axis = axis.num_elements if axis is not None else 1
        common = (4 * len(inp.shape), 4 * num_axis)
        if op.opcode in ("MEAN", "SUM") and inp.dtype in ("INT8", "INT16"):
            return (4 * out.num_elements, *common)
        return common
    if op.opcode == "MIRROR_PAD":
        return (4 * len(out.shape), 4 * len(out.shape))
    if op.opcode == "SVDF" and len(op.inputs) > 1:
        weights = _tensor(sg, op.inputs[1])
        rank = max(int(op.options.get("rank", 1)), 1)
        filters = weights.shape[0] if weights is not None and weights.shape else 0
        batch = inp.shape[0] if inp.shape else 1
        if inp.dtype == "INT8":
            return (4 * batch * filters, 4 * batch * (filters // rank))
        return (4 * batch * filters,)
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" and inp.dtype == "INT8":
        cell = out.shape[-1] if out.shape else 0
        batch = inp.shape[0] if inp.shape else 1
        return (2 * batch * cell,) * 4
    return ()


def _prepare_persistent(sg: Subgraph, op: Operator, target: Target) -> tuple[int, ...]:
    inp = _tensor(sg, op.inputs[0]) if op.inputs else None
    weights = _tensor(sg, op.inputs[1]) if len(op.inputs) > 1 else None
    if inp is None:
        return ()
    quantized = inp.dtype in ("INT8", "INT16")
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and weights is not None:
        if target.cmsis_nn and not quantized:
            return ()
        channels = weights.shape[-1] if op.opcode == "DEPTHWISE_CONV_2D" else weights.shape[0]
        return (4 * channels, 4 * channels)
    if op.opcode == "FULLY_CONNECTED" and weights is not None:
        if quantized and weights.quant_channels > 1:
            return (4 * weights.shape[0], 4 * weights.shape[0])
        return ()
    if op.opcode == "SOFTMAX" and inp.dtype == "INT16":
        return (1026, 1026)
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" and target.cmsis_nn and inp.dtype == "INT8":
        return (80,) * 8
    return ()


def kernel_requests(sg: Subgraph, op: Operator, target: Target) -> KernelRequests:
    """Return what ``op``'s kernel asks for while preparing on ``target``.

    Raises
    ------
    UnsupportedModelError
        If TFLM would refuse the operator on this target.
    """
    check_supported(sg, op, target)
    scratch = _cmsis_scratch(sg, op) if target.cmsis_nn else None
    if scratch is None:
        scratch = _reference_scratch(sg, op)
    temps = tuple(i for i in (*op.inputs, *op.outputs) if i >= 0)
    after: tuple[int, ...] = ()
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) >= 2 and op.outputs:
        # Prepare holds output, input, filter; CalculateOpData* then takes all four again.
        temps = (op.outputs[0], op.inputs[0], op.inputs[1])
        after = tuple(i for i in (*op.inputs[:3], op.outputs[0]) if i >= 0)
    return KernelRequests(
        scratch=tuple(scratch),
        persistent=_prepare_persistent(sg, op, target),
        temp_tensors=temps,
        temp_after=after,
    )
