"""Kernel rules: shape and data-movement kernels.

Read from TFLM at commit 90b983c2 (``tensorflow/lite/micro/kernels/``, the
file:line references below are relative to it). Of these kernels only PAD,
PADV2 and TRANSPOSE have CMSIS-NN versions (``cmsis_nn/pad.cc``,
``cmsis_nn/transpose.cc``); both reuse the reference Prepare
(``pad_common.cc``, ``transpose_common.cc``) and request nothing more, so every
rule here is the same on all three targets except for the pointer size in
EMBEDDING_LOOKUP's Prepare-time OpData.

What these kernels allocate while preparing:

- temporary ``TfLiteTensor`` structs for the tensors they inspect, in the
  order their Prepare (or its context struct's constructor) asks for them;
- a persistent copy of the output dims, ``TfLiteIntArrayGetSizeInBytes(rank)``
  = ``4 + 4 * rank`` bytes, for kernels that compute their output shape
  (``CreateWritableTensorDimsWithCopy``, kernel_util.cc:128-147);
- EMBEDDING_LOOKUP also allocates its OpData in Prepare.

No kernel here requests a scratch buffer except MIRROR_PAD.
"""

from __future__ import annotations

import math

from tfnas.memory.kernels import KernelContext, KernelRequests, rule, temp_indices
from tfnas.memory.kernels.pool_reduce import _count, _qparams, _required
from tfnas.tflite.model import DTYPE_SIZES, Tensor


def _dims_copy(t: Tensor) -> int:
    """Bytes of ``CreateWritableTensorDimsWithCopy`` for tensor ``t``."""
    return 4 + 4 * len(t.shape)


def _temps(k: KernelContext, inputs: tuple[int, ...], outputs: tuple[int, ...]) -> tuple[int, ...]:
    """Temp tensors for the given input positions then output positions (absent ones skipped)."""
    return temp_indices(k, *(("in", i) for i in inputs), *(("out", i) for i in outputs))


def _io(k: KernelContext, inputs: int, outputs: int, where: str) -> list[Tensor]:
    """The first ``inputs`` inputs then ``outputs`` outputs, refusing any that is absent."""
    _required(k, inputs, outputs, where)
    got = [k.input(i) for i in range(inputs)] + [k.output(i) for i in range(outputs)]
    return [t for t in got if t is not None]


def _eval_types(k: KernelContext, dtype: str, allowed: tuple[str, ...], where: str) -> None:
    """Refuse when Eval's type switch has no case for ``dtype``."""
    if dtype not in allowed:
        raise k.refuse(
            f"{k.op.opcode} runs {', '.join(a.lower() for a in allowed)} only, not {dtype}; "
            f"Eval fails ({where})"
        )


def _constant(k: KernelContext, t: Tensor, what: str, where: str) -> None:
    """Refuse when ``t`` is not a constant (``IsConstantTensor``) tensor."""
    if not t.is_constant:
        raise k.refuse(f"the {what} tensor must be constant ({where})")


# --------------------------------------------------------------------------- batch/space/depth


@rule("BATCH_TO_SPACE_ND", "SPACE_TO_BATCH_ND")
def batch_space_nd(k: KernelContext) -> KernelRequests:
    """BATCH_TO_SPACE_ND / SPACE_TO_BATCH_ND: temporaries input 0, output 0.

    batch_to_space_nd.cc:41-63, space_to_batch_nd.cc:48-69 (3-D or 4-D,
    float32/int8, same types).
    """
    src = "batch_to_space_nd.cc" if k.op.opcode == "BATCH_TO_SPACE_ND" else "space_to_batch_nd.cc"
    _count(k, 3, 1, f"{src} Prepare")
    inp, out = k.input(0), k.output(0)
    if inp is None or out is None:
        raise k.refuse(f"input or output missing ({src} Prepare)")
    if not (3 <= len(inp.shape) <= 4 and 3 <= len(out.shape) <= 4):
        raise k.refuse(f"input and output must be 3-D or 4-D ({src} Prepare)")
    if inp.dtype != out.dtype:
        raise k.refuse(f"input and output types differ ({src} Prepare)")
    _eval_types(k, inp.dtype, ("FLOAT32", "INT8"), f"{src} Eval")
    return KernelRequests(temp_tensors=_temps(k, (0,), (0,)))


@rule("DEPTH_TO_SPACE", "SPACE_TO_DEPTH")
def depth_space(k: KernelContext) -> KernelRequests:
    """DEPTH_TO_SPACE / SPACE_TO_DEPTH: temporaries input 0, output 0, output dims copy.

    depth_to_space.cc:37-94, space_to_depth.cc:36-86 (4-D, float32/int8).
    """
    src = (
        "depth_to_space.cc:37-94" if k.op.opcode == "DEPTH_TO_SPACE" else "space_to_depth.cc:36-86"
    )
    _count(k, 1, 1, src)
    inp, out = _io(k, 1, 1, src)
    if len(inp.shape) != 4:
        raise k.refuse(f"the input must be 4-D ({src})")
    if out.dtype not in ("FLOAT32", "INT8") or inp.dtype != out.dtype:
        raise k.refuse(f"float32 or int8 only, same input and output type ({src})")
    return KernelRequests(persistent=(_dims_copy(out),), temp_tensors=_temps(k, (0,), (0,)))


# --------------------------------------------------------------------------- broadcasting


@rule("BROADCAST_ARGS")
def broadcast_args(k: KernelContext) -> KernelRequests:
    """BROADCAST_ARGS (broadcast_args.cc:31-60): temporaries inputs 0, 1, output 0."""
    where = "broadcast_args.cc:32-53"
    _count(k, 2, 1, where)
    s1, s2, out = _io(k, 2, 1, where)
    if s1.dtype not in ("INT32", "INT64") or s2.dtype != s1.dtype or out.dtype != s1.dtype:
        raise k.refuse(f"shapes and output must all be int32 or all int64 ({where})")
    if len(s1.shape) != 1 or len(s2.shape) != 1 or len(out.shape) != 1:
        raise k.refuse(f"shapes and output must be 1-D ({where})")
    return KernelRequests(temp_tensors=_temps(k, (0, 1), (0,)))


@rule("BROADCAST_TO")
def broadcast_to(k: KernelContext) -> KernelRequests:
    """BROADCAST_TO (broadcast_to.cc:76-106): temporaries input 0, shape, output 0."""
    where = "broadcast_to.cc:77-92"
    _count(k, 2, 1, where)
    inp, shape, out = _io(k, 2, 1, where)
    if len(inp.shape) > 5 or len(out.shape) > 5:
        raise k.refuse("BROADCAST_TO supports 1-5D tensors (broadcast_to.cc:47, 87)")
    if shape.dtype not in ("INT32", "INT64"):
        raise k.refuse(f"the shape must be int32 or int64 ({where})")
    if inp.dtype != out.dtype:
        raise k.refuse(f"input and output types differ ({where})")
    _constant(k, shape, "shape", "broadcast_to.cc:98-99")
    if len(shape.shape) != 1 or shape.shape[0] != len(out.shape):
        raise k.refuse("the shape tensor must list the output dims (broadcast_to.cc:33-43)")
    if len(inp.shape) > len(out.shape):
        raise k.refuse("output shape must be broadcastable from input shape (broadcast_to.cc:45)")
    extra = len(out.shape) - len(inp.shape)
    for i, d in enumerate(inp.shape):
        if d != 1 and d != out.shape[extra + i]:
            raise k.refuse(
                "output shape must be broadcastable from input shape (broadcast_to.cc:61-65)"
            )
    return KernelRequests(temp_tensors=_temps(k, (0, 1), (0,)))


# --------------------------------------------------------------------------- concatenation


@rule("CONCATENATION")
def concatenation(k: KernelContext) -> KernelRequests:
    """CONCATENATION (concatenation.cc:128-228).

    Temporaries: input 0 and output 0, then every input again in order
    (:136-140, :166-167). int8 inputs must share the output's scale and zero
    point; int16 zero points must be 0.
    """
    where = "concatenation.cc:136-141"
    inp0, out = k.input(0), k.output(0)
    if inp0 is None or out is None:
        raise k.refuse(f"input 0 or output missing ({where})")
    if k.option("fused_activation_function", 0) != 0:
        raise k.refuse("fused activations are not supported (concatenation.cc:147)")
    dtype = inp0.dtype
    allowed = ("FLOAT32", "INT8", "INT16", "INT32", "INT64", "BOOL")
    if dtype not in allowed:
        raise k.refuse(f"{dtype} is not supported (concatenation.cc:148-151)")
    if out.dtype != dtype:
        raise k.refuse("output type differs from input type (concatenation.cc:154)")
    if len(k.op.inputs) > 10:
        raise k.refuse(f"at most 10 inputs, has {len(k.op.inputs)} (concatenation.cc:157-158)")
    s_out, z_out = _qparams(out)
    for i in range(len(k.op.inputs)):
        t = k.input(i)
        if t is None:
            raise k.refuse(f"input {i} is missing (concatenation.cc:168)")
        if t.dtype != dtype:
            raise k.refuse(f"input {i} has type {t.dtype}, not {dtype} (concatenation.cc:169)")
        if len(t.shape) > 6:
            raise k.refuse("inputs of more than 6 dimensions (concatenation.cc:172-178)")
        s, z = _qparams(t)
        if dtype == "INT8" and (s != s_out or z != z_out):
            raise k.refuse(
                f"int8 input {i} has scale/zero point {s}/{z}, output {s_out}/{z_out}: "
                "TFLM does not rescale (concatenation.cc:180-186)"
            )
        if dtype == "INT16" and z != 0:
            raise k.refuse(f"int16 input {i} has a non-zero zero point (concatenation.cc:189)")
    if dtype == "INT16" and z_out != 0:
        raise k.refuse("int16 output has a non-zero zero point (concatenation.cc:204-206)")
    temps = (k.input_index(0), k.output_index(0)) + tuple(k.op.inputs)
    return KernelRequests(temp_tensors=temps)


# --------------------------------------------------------------------------- lookups


@rule("EMBEDDING_LOOKUP")
def embedding_lookup(k: KernelContext) -> KernelRequests:
    """EMBEDDING_LOOKUP (embedding_lookup.cc:68-121): no Init.

    Temporaries: lookup, value, output. Persistent, in order: the output dims
    copy (:102-103), then the OpData ``{float scale; size_t num_columns;}``
    (:114 -> :54, struct at :46-49): 16 bytes with 8-byte ``size_t``, 8 with 4-byte.
    """
    where = "embedding_lookup.cc:69-89"
    _count(k, 2, 1, where)
    lookup, value, out = _io(k, 2, 1, where)
    if len(lookup.shape) != 1 or lookup.dtype != "INT32":
        raise k.refuse("the lookup tensor must be 1-D int32 (embedding_lookup.cc:77-78)")
    if len(value.shape) < 2 or value.dtype not in ("FLOAT32", "INT8"):
        raise k.refuse(
            "the value tensor must be float32 or int8, 2-D or more (embedding_lookup.cc:83-85)"
        )
    if value.dtype == "FLOAT32" and out.dtype != "FLOAT32":
        raise k.refuse("float32 values need a float32 output (embedding_lookup.cc:91)")
    if out.dtype not in ("FLOAT32", "INT8"):
        raise k.refuse("the output must be float32 or int8 (embedding_lookup.cc:93-94)")
    if len(out.shape) < len(value.shape):
        raise k.refuse("output rank below value rank (embedding_lookup.cc:98)")
    dims = [lookup.shape[0], *value.shape[1:], *out.shape[len(value.shape) :]]
    if math.prod(dims) * DTYPE_SIZES[out.dtype] > out.nbytes:
        raise k.refuse("the looked-up rows do not fit the output (embedding_lookup.cc:112)")
    if value.dtype == "INT8" and out.dtype == "FLOAT32" and _qparams(value)[1] != 0:
        raise k.refuse("hybrid lookup needs a zero value zero point (embedding_lookup.cc:59)")
    op_data = k.target.struct_bytes("OpData@embedding_lookup.cc")
    return KernelRequests(
        persistent=(_dims_copy(out), op_data), temp_tensors=_temps(k, (0, 1), (0,))
    )


@rule("GATHER")
def gather(k: KernelContext) -> KernelRequests:
    """GATHER (gather.cc:100-189): temporaries input, positions, output; output dims copy.

    The axis and batch_dims checks (:143-160) need GatherOptions, which the
    model reader does not decode; converter output satisfies them.
    """
    where = "gather.cc:103-116"
    _count(k, 2, 1, where)
    inp, coords, out = _io(k, 2, 1, where)
    if coords.dtype != "INT32":
        raise k.refuse(f"positions must be int32, not {coords.dtype} (gather.cc:118-126)")
    if inp.dtype not in ("FLOAT32", "INT8"):
        raise k.refuse(f"GATHER runs float32 and int8 only, not {inp.dtype} (gather.cc:132-141)")
    return KernelRequests(persistent=(_dims_copy(out),), temp_tensors=_temps(k, (0, 1), (0,)))


@rule("GATHER_ND")
def gather_nd(k: KernelContext) -> KernelRequests:
    """GATHER_ND (gather_nd.cc:31-113): temporaries params, indices, output; output dims copy."""
    where = "gather_nd.cc:34-44"
    _count(k, 2, 1, where)
    params, indices, out = _io(k, 2, 1, where)
    if params.dtype not in ("FLOAT32", "INT8"):
        raise k.refuse(f"params must be float32 or int8, not {params.dtype} (gather_nd.cc:46-55)")
    if indices.dtype != "INT32":
        raise k.refuse(f"indices must be int32, not {indices.dtype} (gather_nd.cc:56-63)")
    if len(params.shape) < 1 or len(indices.shape) < 1:
        raise k.refuse("params and indices must be at least vectors (gather_nd.cc:68-75)")
    nd = indices.shape[-1]
    if nd > len(params.shape) or nd > 5:
        raise k.refuse("index depth exceeds the params rank or 5 (gather_nd.cc:76-84)")
    return KernelRequests(persistent=(_dims_copy(out),), temp_tensors=_temps(k, (0, 1), (0,)))


# --------------------------------------------------------------------------- expand/fill/reshape


@rule("EXPAND_DIMS")
def expand_dims(k: KernelContext) -> KernelRequests:
    """EXPAND_DIMS (expand_dims.cc:87-110): temporaries input, axis, output."""
    where = "expand_dims.cc:90-100"
    _count(k, 2, 1, where)
    inp, axis, out = _io(k, 2, 1, where)
    _constant(k, axis, "axis", "expand_dims.cc:102-103")
    if len(axis.shape) > 1 or axis.dtype != "INT32":
        raise k.refuse(
            "the axis must be an int32 scalar or 1-element vector (expand_dims.cc:35-49)"
        )
    if len(out.shape) != len(inp.shape) + 1:
        raise k.refuse("output rank must be input rank + 1 (expand_dims.cc:73-74)")
    _eval_types(k, inp.dtype, ("FLOAT32", "INT16", "INT8"), "expand_dims.cc:126-145")
    return KernelRequests(temp_tensors=_temps(k, (0, 1), (0,)))


@rule("FILL")
def fill(k: KernelContext) -> KernelRequests:
    """FILL (fill.cc:67-100): temporaries dims, value, output."""
    where = "fill.cc:71-79"
    dims, value, out = _io(k, 2, 1, where)
    if len(value.shape) != 0:
        raise k.refuse("the fill value must be a scalar (fill.cc:82)")
    if value.dtype != out.dtype:
        raise k.refuse("value and output types differ (fill.cc:85)")
    _constant(k, dims, "dims", "fill.cc:90-91")
    if len(dims.shape) != 1 or dims.shape[0] != len(out.shape):
        raise k.refuse("the dims tensor must list the output dims (fill.cc:43-45)")
    if dims.dtype not in ("INT8", "INT16", "INT32", "INT64"):
        raise k.refuse(f"dims of type {dims.dtype} (fill.cc:47-60)")
    _eval_types(k, value.dtype, ("FLOAT32", "INT32", "INT8"), "fill.cc:114-128")
    return KernelRequests(temp_tensors=_temps(k, (0, 1), (0,)))


@rule("RESHAPE")
def reshape(k: KernelContext) -> KernelRequests:
    """RESHAPE (reshape_common.cc:32-92): temporaries input 0 and output 0 only.

    The shape input (if any) is not taken. Only an output shape holding -1
    moves the dims to the tail (:67-75).
    """
    if len(k.op.inputs) not in (1, 2) or len(k.op.outputs) != 1:
        raise k.refuse("RESHAPE takes 1 or 2 inputs and 1 output (reshape_common.cc:88-89)")
    inp, out = _io(k, 1, 1, "reshape_common.cc:35-40")
    shape = list(out.shape)
    if len(k.op.inputs) == 1 and shape == [0]:
        shape = []  # legacy scalar (reshape_common.cc:48-54)
    stretch = [i for i, d in enumerate(shape) if d == -1]
    if len(stretch) > 1:
        raise k.refuse("more than one -1 in the output shape (reshape_common.cc:61)")
    known = math.prod(d for d in shape if d != -1)
    persistent: tuple[int, ...] = ()
    if stretch:
        persistent = (_dims_copy(out),)
        known *= inp.num_elements // known if known else 0
    if inp.dtype != out.dtype:
        raise k.refuse("input and output types differ (reshape_common.cc:77)")
    if known != inp.num_elements:
        raise k.refuse("input and output element counts differ (reshape_common.cc:78)")
    return KernelRequests(persistent=persistent, temp_tensors=_temps(k, (0,), (0,)))


@rule("SQUEEZE")
def squeeze(k: KernelContext) -> KernelRequests:
    """SQUEEZE (squeeze.cc:47-88): temporaries input 0, output 0 (``SqueezeContext``)."""
    _count(k, 1, 1, "squeeze.cc:48-49")
    inp, out = _io(k, 1, 1, "squeeze.cc:34-35")
    if len(inp.shape) > 8:
        raise k.refuse("SQUEEZE supports at most 8 dimensions (squeeze.cc:60-61)")
    if inp.nbytes != out.nbytes:
        raise k.refuse("input and output byte sizes differ; Eval fails (squeeze.cc:107)")
    return KernelRequests(temp_tensors=_temps(k, (0,), (0,)))


# --------------------------------------------------------------------------- padding


@rule("PAD", "PADV2")
def pad(k: KernelContext) -> KernelRequests:
    """PAD and PADV2 (``PadPrepare``, pad_common.cc:30-126; CMSIS-NN uses it too).

    Temporaries: input, paddings, constant value (only when there are three
    inputs and the third is present), output.
    """
    if len(k.op.inputs) not in (2, 3) or len(k.op.outputs) != 1:
        raise k.refuse("PAD takes 2 or 3 inputs and 1 output (pad_common.cc:36-37)")
    inp, paddings, out = _io(k, 2, 1, "pad_common.cc:39-51")
    value = k.input(2) if len(k.op.inputs) == 3 else None
    if inp.dtype != out.dtype:
        raise k.refuse("input and output types differ (pad_common.cc:53)")
    if len(inp.shape) > 5:
        raise k.refuse("PAD supports at most 5 dimensions (pad_common.cc:56-57)")
    if value is not None and (value.dtype != inp.dtype or value.num_elements != 1):
        raise k.refuse("the pad value must be one element of the input type (pad_common.cc:60-62)")
    if paddings.num_elements != 2 * len(out.shape):
        raise k.refuse("paddings must have 2 entries per output dim (pad_common.cc:66-67)")
    _constant(k, paddings, "paddings", "pad_common.cc:72-73")
    if paddings.dtype != "INT32":
        raise k.refuse(
            f"PAD reads paddings as int32 (pad_common.cc:74); {paddings.dtype} paddings fail "
            "the output-shape check (pad_common.cc:75-80)"
        )
    if inp.dtype == "INT8" and value is not None and _qparams(value) != _qparams(out):
        raise k.refuse(
            "the int8 pad value must share the output scale and zero point (pad_common.cc:110-113)"
        )
    src = "cmsis_nn/pad.cc:87-133" if k.cmsis else "pad.cc:41-104"
    _eval_types(k, inp.dtype, ("FLOAT32", "INT8", "INT16", "INT32"), src)
    temps = _temps(k, (0, 1, 2) if len(k.op.inputs) == 3 else (0, 1), (0,))
    return KernelRequests(temp_tensors=temps)


@rule("MIRROR_PAD")
def mirror_pad(k: KernelContext) -> KernelRequests:
    """MIRROR_PAD (mirror_pad.cc:169-207).

    Temporaries: input, padding matrix, output. Scratch: ``4 * rank(input)``
    twice (:196-201). Eval handles float32 and int8 only, so int16 (and every
    other type) fails at Invoke (:137-157).
    """
    inp, paddings, out = _io(k, 2, 1, "mirror_pad.cc:175-179")
    if len(paddings.shape) != 2 or paddings.shape[0] != len(inp.shape):
        raise k.refuse("the padding matrix must be [rank(input), 2] (mirror_pad.cc:181-183)")
    _eval_types(k, out.dtype, ("FLOAT32", "INT8"), "mirror_pad.cc:137-157")
    rank = len(inp.shape)
    return KernelRequests(scratch=(4 * rank, 4 * rank), temp_tensors=_temps(k, (0, 1), (0,)))


# --------------------------------------------------------------------------- pack/unpack/shape


@rule("PACK", "UNPACK")
def pack_unpack(k: KernelContext) -> KernelRequests:
    """PACK and UNPACK: no Init and no Prepare (pack.cc, unpack.cc); nothing allocated."""
    if k.op.opcode == "PACK":
        out = k.output(0)
        if out is None:
            raise k.refuse("output missing (pack.cc:76-77)")
        _eval_types(k, out.dtype, ("FLOAT32", "INT8", "INT16", "INT32", "INT64"), "pack.cc:79-104")
    else:
        inp = k.input(0)
        if inp is None:
            raise k.refuse("input missing (unpack.cc:79-80)")
        _eval_types(k, inp.dtype, ("FLOAT32", "INT32", "INT16", "INT8"), "unpack.cc:82-99")
    return KernelRequests()


@rule("SHAPE")
def shape_op(k: KernelContext) -> KernelRequests:
    """SHAPE (shape.cc:38-59): Prepare only counts tensors; nothing allocated."""
    _count(k, 1, 1, "shape.cc:39-40")
    (out,) = _io(k, 0, 1, "shape.cc:48-49")
    if out.dtype != "INT32":
        raise k.refuse(
            f"SHAPE writes int32 only, not {out.dtype} (convert with out_type=tf.int32); "
            "Eval fails (shape.cc:50-53)"
        )
    return KernelRequests()


# --------------------------------------------------------------------------- resize/reverse


@rule("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR")
def resize(k: KernelContext) -> KernelRequests:
    """RESIZE_BILINEAR / RESIZE_NEAREST_NEIGHBOR: temporaries input, size, output.

    resize_bilinear.cc:33-67, resize_nearest_neighbor.cc:34-65. The
    half_pixel_centers/align_corners check (resize_bilinear.cc:58-61) needs
    options the model reader does not decode.
    """
    bilinear = k.op.opcode == "RESIZE_BILINEAR"
    src = "resize_bilinear.cc" if bilinear else "resize_nearest_neighbor.cc"
    _count(k, 2, 1, f"{src} Prepare")
    inp, size, out = _io(k, 2, 1, f"{src} Prepare")
    if len(inp.shape) != 4 or len(size.shape) != 1 or size.dtype != "INT32":
        raise k.refuse(f"4-D input and a 1-D int32 size are required ({src} Prepare)")
    if not bilinear and size.shape[0] != 2:
        raise k.refuse("the size tensor must have 2 elements (resize_nearest_neighbor.cc:53)")
    _constant(k, size, "size", f"{src} Prepare")
    if bilinear:
        _eval_types(k, out.dtype, ("FLOAT32", "INT8"), "resize_bilinear.cc:80-105")
    else:
        _eval_types(k, out.dtype, ("FLOAT32", "INT8", "INT16"), "resize_nearest_neighbor.cc:83-111")
    return KernelRequests(temp_tensors=_temps(k, (0, 1), (0,)))


@rule("REVERSE_V2")
def reverse_v2(k: KernelContext) -> KernelRequests:
    """REVERSE_V2 (reverse.cc:44-85): temporaries input, axis, output."""
    where = "reverse.cc:47-59"
    _count(k, 2, 1, where)
    inp, axis, out = _io(k, 2, 1, where)
    if len(axis.shape) != 1 or len(inp.shape) > 6 or len(inp.shape) < axis.num_elements:
        raise k.refuse("a 1-D axis and an input of at most 6 dimensions (reverse.cc:60-62)")
    allowed = ("INT32", "FLOAT32", "UINT8", "INT8", "INT16", "INT64", "BOOL")
    if inp.dtype not in allowed:
        raise k.refuse(f"{inp.dtype} is not supported by reverse (reverse.cc:64-71)")
    if axis.dtype != "INT32" or out.dtype != inp.dtype:
        raise k.refuse("the axis must be int32 and the output of the input type (reverse.cc:73-79)")
    return KernelRequests(temp_tensors=_temps(k, (0, 1), (0,)))


# --------------------------------------------------------------------------- slicing


@rule("SLICE")
def slice_op(k: KernelContext) -> KernelRequests:
    """SLICE (slice.cc:47-82): temporaries input, begin, size, output.

    Its checks are ``TFLITE_DCHECK``s, which abort in TFLM's default build.
    """
    _count(k, 3, 1, "slice.cc:50-51")
    inp, begin, size, out = _io(k, 3, 1, "slice.cc:53-64")
    if inp.dtype != out.dtype or begin.dtype != size.dtype:
        raise k.refuse("input/output or begin/size types differ (slice.cc:67-68)")
    if begin.dtype not in ("INT32", "INT64"):
        raise k.refuse("begin and size must be int32 or int64 (slice.cc:69-70)")
    if len(begin.shape) != 1 or len(size.shape) != 1 or begin.num_elements != size.num_elements:
        raise k.refuse("begin and size must be 1-D of the same length (slice.cc:71-73)")
    if len(inp.shape) > 5:
        raise k.refuse("SLICE supports at most 5 dimensions (slice.cc:74)")
    _eval_types(k, inp.dtype, ("FLOAT32", "INT32", "INT8", "INT16", "BOOL"), "slice.cc:114-154")
    return KernelRequests(temp_tensors=_temps(k, (0, 1, 2), (0,)))


@rule("STRIDED_SLICE")
def strided_slice(k: KernelContext) -> KernelRequests:
    """STRIDED_SLICE (strided_slice_common.cc:135-153).

    ``StridedSliceContext`` takes input, begin, end, strides, output
    (:33-46). begin/end/strides are read as int32 (:75-79). The output-size
    check (:92-125) needs the constant data and the masks, which are not
    read here.
    """
    _count(k, 4, 1, "strided_slice_common.cc:139-140")
    inp, begin, end, strides, _out = _io(k, 4, 1, "strided_slice_common.cc:36-44")
    if len(inp.shape) > 4:
        raise k.refuse("STRIDED_SLICE supports at most 4 dimensions (strided_slice_common.cc:142)")
    for t, what in ((begin, "begin"), (end, "end"), (strides, "strides")):
        _constant(k, t, what, "strided_slice_common.cc:144-149")
        if t.dtype != "INT32":
            raise k.refuse(
                f"{what} is read as int32 (strided_slice_common.cc:75-79); {t.dtype} "
                "values are misread and fail the output-size check"
            )
    _eval_types(
        k, inp.dtype, ("FLOAT32", "INT8", "INT16", "INT32", "BOOL"), "strided_slice.cc:41-80"
    )
    return KernelRequests(temp_tensors=_temps(k, (0, 1, 2, 3), (0,)))


@rule("SPLIT")
def split(k: KernelContext) -> KernelRequests:
    """SPLIT (split.cc:70-83): only the axis (input 0) is a temporary."""
    axis, inp = _io(k, 2, 0, "split.cc:72-73")
    _constant(k, axis, "axis", "split.cc:78-79")
    _eval_types(k, inp.dtype, ("FLOAT32", "INT8", "INT16", "INT32"), "split.cc:97-114")
    for i in range(len(k.op.outputs)):
        t = k.output(i)
        if t is not None and len(t.shape) != len(inp.shape):
            raise k.refuse("outputs must have the input's rank (TFLITE_DCHECK, split.cc:40)")
    return KernelRequests(temp_tensors=_temps(k, (0,), ()))


@rule("SPLIT_V")
def split_v(k: KernelContext) -> KernelRequests:
    """SPLIT_V (split_v.cc:74-86): only the axis (input 2) is a temporary."""
    _count(k, 3, None, "split_v.cc:75")
    inp, _sizes, axis = _io(k, 3, 0, "split_v.cc:81")
    _constant(k, axis, "axis", "split_v.cc:82-83")
    _eval_types(k, inp.dtype, ("FLOAT32", "INT8", "INT16", "INT32"), "split_v.cc:100-117")
    return KernelRequests(temp_tensors=_temps(k, (2,), ()))


@rule("TRANSPOSE")
def transpose(k: KernelContext) -> KernelRequests:
    """TRANSPOSE (``TransposePrepare``, transpose_common.cc:26-52; CMSIS-NN uses it too).

    ``TransposeContext`` takes input, permutation, output (transpose.h:28-34).
    """
    _count(k, 2, 1, "transpose_common.cc:27-28")
    inp, perm, out = _io(k, 2, 1, "transpose.h:30-33")
    if len(inp.shape) > 5:
        raise k.refuse("TRANSPOSE supports 1-5D inputs (transpose_common.cc:33-34)")
    if inp.dtype != out.dtype:
        raise k.refuse("input and output types differ (transpose_common.cc:35-36)")
    _constant(k, perm, "permutation", "transpose_common.cc:37-38")
    if len(perm.shape) != 1 or perm.shape[0] != len(inp.shape):
        raise k.refuse("the permutation must list every input dim (transpose_common.cc:44-45)")
    src = "cmsis_nn/transpose.cc:75-96" if k.cmsis else "transpose.cc:44-68"
    _eval_types(k, inp.dtype, ("FLOAT32", "INT8", "INT16"), src)
    return KernelRequests(temp_tensors=_temps(k, (0, 1), (0,)))


@rule("DYNAMIC_UPDATE_SLICE")
def dynamic_update_slice(k: KernelContext) -> KernelRequests:
    """DYNAMIC_UPDATE_SLICE (dynamic_update_slice.cc:125-171): no Init.

    Temporaries: operand, update, start indices, output.
    """
    _count(k, 3, 1, "dynamic_update_slice.cc:127-128")
    operand, update, start, _out = _io(k, 3, 1, "dynamic_update_slice.cc:132-146")
    if operand.dtype != update.dtype:
        raise k.refuse("operand and update types differ (dynamic_update_slice.cc:149)")
    if start.dtype not in ("INT32", "INT64"):
        raise k.refuse("start indices must be int32 or int64 (dynamic_update_slice.cc:150-151)")
    if len(start.shape) != 1 or start.shape[0] != len(operand.shape):
        raise k.refuse("one start index per operand dim (dynamic_update_slice.cc:153-155)")
    if len(update.shape) != len(operand.shape) or any(
        u > o for u, o in zip(update.shape, operand.shape, strict=True)
    ):
        raise k.refuse("the update must fit inside the operand (dynamic_update_slice.cc:157-162)")
    _eval_types(
        k, operand.dtype, ("FLOAT32", "INT8", "INT16", "INT32"), "dynamic_update_slice.cc:200-220"
    )
    return KernelRequests(temp_tensors=_temps(k, (0, 1, 2), (0,)))
