"""Read a ``.tflite`` flatbuffer into plain, immutable Python value objects.

Nothing here imports TensorFlow: the names of operators, types and option
tables come from ``ai_edge_litert.schema_py_generated`` and the bytes are read
with the bounds-checked reader in :mod:`tfnas.tflite._flatbuffer`.

Examples
--------
>>> model = read_model("model.tflite")  # doctest: +SKIP
>>> [op.opcode for op in model.subgraphs[0].operators]  # doctest: +SKIP
['CONV_2D', 'DEPTHWISE_CONV_2D', ...]
"""

from __future__ import annotations

import math
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai_edge_litert import schema_py_generated as _schema

from tfnas.errors import FlatbufferError
from tfnas.tflite._flatbuffer import Reader, Table

__all__ = [
    "Quantization",
    "Tensor",
    "Operator",
    "Subgraph",
    "Buffer",
    "Model",
    "read_model",
    "load_bytes",
    "DTYPE_SIZES",
]

_MAX_FILE_BYTES = 2**31 - 1


def _enum_names(cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


BUILTIN_NAMES = _enum_names(_schema.BuiltinOperator)
_OPTION_NAMES = _enum_names(_schema.BuiltinOptions)
_DTYPE_NAMES = _enum_names(_schema.TensorType)

#: Bytes per element of each tensor type, as TFLM's ``TfLiteTypeSizeOf`` reports.
DTYPE_SIZES: dict[str, int] = {
    "FLOAT32": 4,
    "FLOAT16": 2,
    "BFLOAT16": 2,
    "FLOAT64": 8,
    "INT32": 4,
    "UINT32": 4,
    "INT64": 8,
    "UINT64": 8,
    "INT16": 2,
    "UINT16": 2,
    "INT8": 1,
    "UINT8": 1,
    "BOOL": 1,
    "COMPLEX64": 8,
    "COMPLEX128": 16,
    "INT4": 1,
}

# Option tables we decode: field name, struct format, default (schema order).
_PAD = ("padding", "b", 0)
_ACT = ("fused_activation_function", "b", 0)
_OPTION_FIELDS: dict[str, tuple[tuple[str, str, Any], ...]] = {
    "Conv2DOptions": (
        _PAD,
        ("stride_w", "i", 0),
        ("stride_h", "i", 0),
        _ACT,
        ("dilation_w_factor", "i", 1),
        ("dilation_h_factor", "i", 1),
        ("quantized_bias_type", "b", 0),
    ),
    "DepthwiseConv2DOptions": (
        _PAD,
        ("stride_w", "i", 0),
        ("stride_h", "i", 0),
        ("depth_multiplier", "i", 0),
        _ACT,
        ("dilation_w_factor", "i", 1),
        ("dilation_h_factor", "i", 1),
    ),
    "Pool2DOptions": (
        _PAD,
        ("stride_w", "i", 0),
        ("stride_h", "i", 0),
        ("filter_width", "i", 0),
        ("filter_height", "i", 0),
        _ACT,
    ),
    "FullyConnectedOptions": (
        _ACT,
        ("weights_format", "b", 0),
        ("keep_num_dims", "B", 0),
        ("asymmetric_quantize_inputs", "B", 0),
        ("quantized_bias_type", "b", 0),
    ),
    "TransposeConvOptions": (
        _PAD,
        ("stride_w", "i", 0),
        ("stride_h", "i", 0),
        _ACT,
        ("quantized_bias_type", "b", 0),
    ),
    "ConcatenationOptions": (("axis", "i", 0), _ACT),
    "ReducerOptions": (("keep_dims", "B", 0),),
    "SoftmaxOptions": (("beta", "f", 0.0),),
    "AddOptions": (_ACT, ("pot_scale_int16", "B", 1)),
    "SubOptions": (_ACT, ("pot_scale_int16", "B", 1)),
    "MulOptions": (_ACT,),
    "MirrorPadOptions": (("mode", "b", 0),),
    "SVDFOptions": (("rank", "i", 0), _ACT, ("asymmetric_quantize_inputs", "B", 0)),
    "IfOptions": (("then_subgraph_index", "i", 0), ("else_subgraph_index", "i", 0)),
    "WhileOptions": (("cond_subgraph_index", "i", 0), ("body_subgraph_index", "i", 0)),
    "CallOnceOptions": (("init_subgraph_index", "i", 0),),
    "BatchMatMulOptions": (
        ("adj_x", "B", 0),
        ("adj_y", "B", 0),
        ("asymmetric_quantize_inputs", "B", 0),
    ),
    "GatherOptions": (("axis", "i", 0), ("batch_dims", "i", 0)),
    "StridedSliceOptions": (
        ("begin_mask", "i", 0),
        ("end_mask", "i", 0),
        ("ellipsis_mask", "i", 0),
        ("new_axis_mask", "i", 0),
        ("shrink_axis_mask", "i", 0),
        ("offset", "B", 0),
    ),
    "L2NormOptions": (_ACT,),
    "DepthToSpaceOptions": (("block_size", "i", 0),),
    "SpaceToDepthOptions": (("block_size", "i", 0),),
    "ResizeBilinearOptions": (
        ("new_height", "i", 0),  # deprecated
        ("new_width", "i", 0),  # deprecated
        ("align_corners", "B", 0),
        ("half_pixel_centers", "B", 0),
    ),
    "ResizeNearestNeighborOptions": (("align_corners", "B", 0), ("half_pixel_centers", "B", 0)),
    "LeakyReluOptions": (("alpha", "f", 0.0),),
    "CumsumOptions": (("exclusive", "B", 0), ("reverse", "B", 0)),
    "PackOptions": (("values_count", "i", 0), ("axis", "i", 0)),
    "UnpackOptions": (("num", "i", 0), ("axis", "i", 0)),
    "SplitOptions": (("num_splits", "i", 0),),
    "SplitVOptions": (("num_splits", "i", 0),),
    "UnidirectionalSequenceLSTMOptions": (
        _ACT,
        ("cell_clip", "f", 0.0),
        ("proj_clip", "f", 0.0),
        ("time_major", "B", 0),
        ("asymmetric_quantize_inputs", "B", 0),
        ("diagonal_recurrent_tensors", "B", 0),
    ),
}


@dataclass(frozen=True)
class Quantization:
    """Affine quantisation of one tensor (``scale`` has one entry per channel)."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    quantized_dimension: int = 0

    @property
    def channels(self) -> int:
        """Number of quantisation channels (1 for per-tensor quantisation)."""
        return len(self.scale)

    @property
    def is_quantized(self) -> bool:
        """True when TFLM would build a ``TfLiteAffineQuantization`` for it."""
        return len(self.scale) > 0 and len(self.zero_point) > 0


@dataclass(frozen=True)
class Tensor:
    """One tensor of a subgraph.

    ``nbytes`` is the size TFLM computes from ``shape`` and ``dtype``;
    ``is_constant`` is True when its buffer holds data (weights).
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    nbytes: int
    is_constant: bool
    is_variable: bool = False
    quantization: Quantization | None = None
    shape_signature: tuple[int, ...] | None = None

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def quant_channels(self) -> int:
        """Per-channel count of the quantisation (0 when not quantised)."""
        q = self.quantization
        return q.channels if q is not None and q.is_quantized else 0


@dataclass(frozen=True)
class Operator:
    """One operator: its opcode, tensor indices (-1 = omitted) and options."""

    index: int
    opcode: str
    builtin_code: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...] = ()
    custom_code: str | None = None
    version: int = 1
    options_type: str | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))

    @property
    def name(self) -> str:
        """Opcode for display: the custom code for custom operators."""
        return f"CUSTOM:{self.custom_code}" if self.opcode == "CUSTOM" else self.opcode


@dataclass(frozen=True)
class Subgraph:
    """A subgraph: tensors, operators in execution order, inputs and outputs."""

    index: int
    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class Buffer:
    """A flatbuffer buffer: ``size`` bytes of data at ``offset`` in the file."""

    index: int
    offset: int
    size: int


@dataclass(frozen=True)
class Model:
    """A parsed ``.tflite`` model. ``data`` keeps the original bytes."""

    version: int
    description: str
    subgraphs: tuple[Subgraph, ...]
    buffers: tuple[Buffer, ...]
    metadata: Mapping[str, int]
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        """File size in bytes (what the model costs in flash)."""
        return len(self.data)

    @property
    def main(self) -> Subgraph:
        """Subgraph 0, the one TFLM invokes."""
        return self.subgraphs[0]

    @property
    def weights_bytes(self) -> int:
        """Bytes of constant tensor data referenced by any subgraph."""
        used = {t.buffer for sg in self.subgraphs for t in sg.tensors if t.is_constant}
        return sum(self.buffers[i].size for i in used)


def load_bytes(model: bytes | bytearray | memoryview | str | os.PathLike) -> bytes:
    """Return the bytes of a model given as bytes or a path.

    Raises
    ------
    FlatbufferError
        If the file cannot be read or is too large for a flatbuffer.
    """
    if isinstance(model, bytes | bytearray | memoryview):
        return bytes(model)
    if not isinstance(model, str | os.PathLike):
        raise FlatbufferError(
            f"Expected the model as bytes or a path. Received: type={type(model).__name__}"
        )
    path = Path(model)
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise FlatbufferError(f"Not a TFLite flatbuffer: {path} has {size} bytes (max 2 GiB).")
        return path.read_bytes()
    except OSError as exc:
        raise FlatbufferError(f"Cannot read model file {str(path)!r}: {exc.strerror}.") from None


def _shape(values: list | None) -> tuple[int, ...]:
    return tuple(int(v) for v in values or ())


def _read_quantization(table: Table | None) -> Quantization | None:
    if table is None:
        return None
    scale = table.vector(2, "f") or []
    zero_point = table.vector(3, "q") or []
    if not scale and not zero_point:
        return None
    return Quantization(
        scale=tuple(float(s) for s in scale),
        zero_point=tuple(int(z) for z in zero_point),
        quantized_dimension=int(table.scalar(6, "i", 0)),
    )


def _read_options(table: Table, union_type: int) -> tuple[str | None, Mapping[str, Any]]:
    name = _OPTION_NAMES.get(union_type) if union_type else None
    opts: dict[str, Any] = {}
    spec = _OPTION_FIELDS.get(name or "")
    if spec is not None:
        sub = table.table_field(4)
        if sub is not None:
            for i, (fname, fmt, default) in enumerate(spec):
                opts[fname] = sub.scalar(i, fmt, default)
    if name == "ReshapeOptions":
        sub = table.table_field(4)
        if sub is not None:
            opts["new_shape"] = tuple(sub.vector(0, "i") or ())
    return name, types.MappingProxyType(opts)


def _check_index(value: int, limit: int, what: str, allow_minus_one: bool = False) -> int:
    if allow_minus_one and value == -1:
        return value
    if not 0 <= value < limit:
        raise FlatbufferError(
            f"Corrupted flatbuffer: {what} {value} is out of range, expected 0..{limit - 1}."
        )
    return value


def _read_subgraph(
    index: int, table: Table, opcodes: list[tuple[int, str | None, int]], buffers: list[Buffer]
) -> Subgraph:
    tensors: list[Tensor] = []
    for ti, t in enumerate(table.tables(0)):
        shape = _shape(t.vector(0, "i"))
        code = int(t.scalar(1, "b", 0))
        dtype = _DTYPE_NAMES.get(code, f"TYPE_{code}")
        buf = _check_index(int(t.scalar(2, "I", 0)), max(len(buffers), 1), "tensor buffer")
        has_data = bool(buffers) and buffers[buf].size > 0
        count = math.prod(shape) if all(d >= 0 for d in shape) else 0
        sig = t.vector(7, "i")
        tensors.append(
            Tensor(
                index=ti,
                name=t.string(3) or "",
                shape=shape,
                dtype=dtype,
                buffer=buf,
                nbytes=count * DTYPE_SIZES.get(dtype, 0),
                is_constant=has_data,
                is_variable=bool(t.scalar(5, "B", 0)),
                quantization=_read_quantization(t.table_field(4)),
                shape_signature=None if sig is None else _shape(sig),
            )
        )
    n = len(tensors)

    def indices(values: list | None, what: str) -> tuple[int, ...]:
        return tuple(_check_index(int(v), n, what, allow_minus_one=True) for v in values or ())

    operators: list[Operator] = []
    for oi, o in enumerate(table.tables(3)):
        op_index = _check_index(int(o.scalar(0, "I", 0)), max(len(opcodes), 1), "opcode index")
        if not opcodes:
            raise FlatbufferError("Corrupted flatbuffer: operators but no operator codes.")
        code, custom, version = opcodes[op_index]
        options_type, options = _read_options(o, int(o.scalar(3, "B", 0)))
        operators.append(
            Operator(
                index=oi,
                opcode=BUILTIN_NAMES.get(code, f"BUILTIN_{code}"),
                builtin_code=code,
                inputs=indices(o.vector(1, "i"), "operator input"),
                outputs=indices(o.vector(2, "i"), "operator output"),
                intermediates=indices(o.vector(8, "i"), "operator intermediate"),
                custom_code=custom,
                version=version,
                options_type=options_type,
                options=options,
            )
        )
    return Subgraph(
        index=index,
        name=table.string(4) or "",
        tensors=tuple(tensors),
        operators=tuple(operators),
        inputs=indices(table.vector(1, "i"), "subgraph input"),
        outputs=indices(table.vector(2, "i"), "subgraph output"),
    )


def _parse(data: bytes) -> Model:
    ident = bytes(data[4:8])
    if len(data) < 8 or ident != b"TFL3":
        raise FlatbufferError(
            "Not a TFLite flatbuffer: expected the identifier b'TFL3' at bytes 4-8. "
            f"Received: {ident!r} in a file of {len(data)} bytes."
        )
    root = Reader(data).root()
    opcodes: list[tuple[int, str | None, int]] = []
    for oc in root.tables(1):
        deprecated = int(oc.scalar(0, "b", 0))
        code = max(deprecated, int(oc.scalar(3, "i", 0)))
        opcodes.append((code, oc.string(1), int(oc.scalar(2, "i", 1))))
    buffers: list[Buffer] = []
    for bi, b in enumerate(root.tables(4)):
        span = b.bytes_span(0)
        offset, size = (span[0], span[1]) if span else (0, 0)
        ext_offset, ext_size = int(b.scalar(1, "Q", 0)), int(b.scalar(2, "Q", 0))
        if not size and ext_offset > 1:
            if ext_offset + ext_size > len(data):
                raise FlatbufferError(
                    f"Corrupted flatbuffer: buffer {bi} points past the end of the file."
                )
            offset, size = ext_offset, ext_size
        buffers.append(Buffer(index=bi, offset=offset, size=size))
    subgraph_tables = root.tables(2)
    if not subgraph_tables:
        raise FlatbufferError("Not a TFLite model: the flatbuffer has no subgraphs.")
    subgraphs = tuple(_read_subgraph(i, t, opcodes, buffers) for i, t in enumerate(subgraph_tables))
    metadata = {}
    for m in root.tables(6):
        metadata[m.string(0) or ""] = int(m.scalar(1, "I", 0))
    return Model(
        version=int(root.scalar(0, "I", 0)),
        description=root.string(3) or "",
        subgraphs=subgraphs,
        buffers=tuple(buffers),
        metadata=types.MappingProxyType(metadata),
        data=data,
    )


def read_model(model: bytes | bytearray | memoryview | str | os.PathLike | Model) -> Model:
    """Parse a ``.tflite`` file into a :class:`Model`.

    Parameters
    ----------
    model : bytes or path-like or Model
        The flatbuffer bytes, a path to a ``.tflite`` file, or an already parsed
        model (returned unchanged).

    Returns
    -------
    Model
        Subgraphs with tensors and operators in execution order, buffers and
        metadata.

    Raises
    ------
    FlatbufferError
        If the input is truncated, corrupted or not a TFLite flatbuffer. The
        message is a single line.
    """
    if isinstance(model, Model):
        return model
    data = load_bytes(model)
    try:
        return _parse(data)
    except FlatbufferError:
        raise
    except (ValueError, OverflowError, MemoryError, RecursionError, UnicodeError) as exc:
        raise FlatbufferError(
            f"Corrupted flatbuffer: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
