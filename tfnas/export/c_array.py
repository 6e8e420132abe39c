"""Turn a ``.tflite`` model into C++ sources for TensorFlow Lite Micro firmware.

:func:`to_c_source` returns the text of ``model_data.cc`` (the flatbuffer as a
16-byte aligned byte array) and ``model_data.h`` (declarations, the tensor
arena size, the input and output tensors' shapes and quantisation, and the op
resolver registration). :func:`write_c_files` writes them to a folder.

``kTensorArenaSize`` is the smallest arena with which TFLM's
``AllocateTensors()`` succeeds on the chosen target, as tfnas's memory model
(a replica of TFLM commit 90b983c2) computes it, plus the requested headroom
rounded up to 16 bytes.

Nothing here imports TensorFlow.

Examples
--------
>>> cc, h = to_c_source(Path("model.tflite").read_bytes(), target="cortex-m")  # doctest: +SKIP
>>> write_c_files("model.tflite", "firmware/", arena_headroom_bytes=1024)  # doctest: +SKIP
(PosixPath('firmware/model_data.cc'), PosixPath('firmware/model_data.h'))
"""

from __future__ import annotations

import math
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfnas.errors import UnsupportedModelError
from tfnas.inspection import inspect
from tfnas.memory.targets import get_target
from tfnas.tflite.model import Model, Subgraph, Tensor, read_model

__all__ = [
    "TFLM_COMMIT",
    "RESOLVER_METHODS",
    "CUSTOM_RESOLVER_METHODS",
    "IOTensor",
    "resolver_methods",
    "resolver_snippet",
    "io_tensors",
    "arena_size",
    "to_c_source",
    "write_c_files",
]

#: The TFLM commit whose memory behaviour tfnas models.
TFLM_COMMIT = "90b983c2"

_BYTES_PER_LINE = 12
_INT_MAX = 2**31 - 1

#: ``MicroMutableOpResolver`` method registering each builtin operator, as named in
#: TFLM's ``tensorflow/lite/micro/micro_mutable_op_resolver.h``.
RESOLVER_METHODS: dict[str, str] = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}

#: Custom operators (by custom code) that ``MicroMutableOpResolver`` registers itself.
CUSTOM_RESOLVER_METHODS: dict[str, str] = {
    "TFLite_Detection_PostProcess": "AddDetectionPostprocess",
    "CIRCULAR_BUFFER": "AddCircularBuffer",
    "ethos-u": "AddEthosU",
}

# C++ type of each tensor type as seen through TfLiteTensor::data.
_C_TYPES: dict[str, str] = {
    "FLOAT32": "float",
    "FLOAT64": "double",
    "INT8": "int8_t",
    "UINT8": "uint8_t",
    "INT16": "int16_t",
    "UINT16": "uint16_t",
    "INT32": "int32_t",
    "UINT32": "uint32_t",
    "INT64": "int64_t",
    "UINT64": "uint64_t",
    "BOOL": "bool",
}
_INTEGER_TYPES = frozenset(t for t in _C_TYPES if t.startswith(("INT", "UINT")))

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# C++ keywords that Python's keyword list does not cover (and a few macros).
_CXX_RESERVED = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t
    char16_t char32_t class compl concept const consteval constexpr constinit const_cast
    continue co_await co_return co_yield decltype default delete do double dynamic_cast else
    enum explicit export extern false float for friend goto if inline int long mutable
    namespace new noexcept not not_eq nullptr operator or or_eq private protected public
    register reinterpret_cast requires return short signed sizeof static static_assert
    static_cast struct switch template this thread_local throw true try typedef typeid
    typename union unsigned using virtual void volatile wchar_t while xor xor_eq main""".split()
)


@dataclass(frozen=True)
class IOTensor:
    """One input or output tensor of subgraph 0, as firmware sees it.

    ``scale`` is 0.0 and ``zero_point`` 0 for a tensor that is not quantised.
    """

    kind: str
    position: int
    tensor: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    channels: int

    @property
    def elements(self) -> int:
        """Number of elements (1 for a scalar)."""
        return math.prod(self.shape)

    @property
    def quantized(self) -> bool:
        """True when the tensor carries a scale and zero point."""
        return self.channels > 0

    @property
    def c_type(self) -> str:
        """The C++ element type (``int8_t``, ``float``, ...)."""
        return _C_TYPES[self.dtype]


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name) or name in _CXX_RESERVED:
        raise ValueError(
            "name must be a C++ identifier that is not a keyword (letters, digits and "
            f"underscores, not starting with a digit). Received: name={name!r}"
        )
    return name


def _check_headroom(arena_headroom_bytes: Any) -> int:
    if (
        isinstance(arena_headroom_bytes, bool)
        or not isinstance(arena_headroom_bytes, int)
        or arena_headroom_bytes < 0
    ):
        raise ValueError(
            "arena_headroom_bytes must be a non-negative integer number of bytes. "
            f"Received: arena_headroom_bytes={arena_headroom_bytes!r}"
        )
    return arena_headroom_bytes


def _round16(n: int) -> int:
    return (n + 15) // 16 * 16


def _as_model(tflite: bytes | str | os.PathLike | Model) -> Model:
    return tflite if isinstance(tflite, Model) else read_model(tflite)


def resolver_methods(tflite: bytes | str | os.PathLike | Model) -> list[str]:
    """``MicroMutableOpResolver`` methods that register every operator of a model.

    Each distinct operator appears once, in order of first use (subgraph 0 first,
    then any subgraphs it calls).

    Parameters
    ----------
    tflite : bytes, path-like or Model
        The ``.tflite`` model.

    Returns
    -------
    list of str
        Method names such as ``["AddConv2D", "AddFullyConnected", "AddSoftmax"]``.

    Raises
    ------
    UnsupportedModelError
        If an operator has no ``Add*`` method in TFLM's ``MicroMutableOpResolver``.
    FlatbufferError
        If the input is not a valid ``.tflite`` flatbuffer.
    """
    model = _as_model(tflite)
    methods: list[str] = []
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode == "CUSTOM":
                method = CUSTOM_RESOLVER_METHODS.get(op.custom_code or "")
            else:
                method = RESOLVER_METHODS.get(op.opcode)
            if method is None:
                raise UnsupportedModelError(
                    f"Operator {op.name} (subgraph {sg.index}, operator {op.index}) has no "
                    "registration method in TFLM's MicroMutableOpResolver: expected a builtin "
                    f"operator TFLM implements ({len(RESOLVER_METHODS)} known, e.g. CONV_2D, "
                    "FULLY_CONNECTED) or one of the custom operators "
                    f"{sorted(CUSTOM_RESOLVER_METHODS)}. Received: opcode={op.name!r}"
                )
            if method not in methods:
                methods.append(method)
    return methods


def resolver_snippet(
    tflite: bytes | str | os.PathLike | Model,
    *,
    variable: str = "resolver",
    indent: str = "",
    static: bool = True,
) -> str:
    """C++ lines that declare a ``MicroMutableOpResolver`` and add the model's ops.

    Parameters
    ----------
    tflite : bytes, path-like or Model
        The ``.tflite`` model.
    variable : str
        Name of the resolver variable.
    indent : str
        Prefix of every line.
    static : bool
        Whether to declare the resolver ``static`` (it must outlive the interpreter).

    Returns
    -------
    str
        For example ``static tflite::MicroMutableOpResolver<2> resolver;`` followed
        by ``resolver.AddConv2D();`` and ``resolver.AddSoftmax();``, one per line.

    Raises
    ------
    UnsupportedModelError
        If an operator has no ``Add*`` method in TFLM.
    """
    _check_name(variable)
    methods = resolver_methods(tflite)
    lines = [
        f"{'static ' if static else ''}tflite::MicroMutableOpResolver<{max(1, len(methods))}> "
        f"{variable};"
    ]
    lines += [f"{variable}.{m}();" for m in methods]
    return "\n".join(indent + line for line in lines)


def _io_tensor(kind: str, position: int, sg: Subgraph, index: int) -> IOTensor:
    t: Tensor = sg.tensors[index]
    if t.dtype not in _C_TYPES:
        raise UnsupportedModelError(
            f"{kind.capitalize()} {position} (tensor {index}, {t.name!r}) has a type firmware "
            f"cannot address through TfLiteTensor::data: expected one of {sorted(_C_TYPES)}. "
            f"Received: dtype={t.dtype!r}"
        )
    q = t.quantization
    quantized = q is not None and q.is_quantized
    return IOTensor(
        kind=kind,
        position=position,
        tensor=index,
        name=t.name,
        dtype=t.dtype,
        shape=tuple(t.shape),
        scale=float(q.scale[0]) if quantized else 0.0,
        zero_point=int(q.zero_point[0]) if quantized else 0,
        channels=q.channels if quantized else 0,
    )


def io_tensors(tflite: bytes | str | os.PathLike | Model) -> list[IOTensor]:
    """The inputs then the outputs of subgraph 0, with dtype, shape and quantisation.

    Raises
    ------
    UnsupportedModelError
        If an input or output has a type with no C++ element type (e.g. STRING).
    """
    sg = _as_model(tflite).main
    return [_io_tensor("input", i, sg, t) for i, t in enumerate(sg.inputs)] + [
        _io_tensor("output", i, sg, t) for i, t in enumerate(sg.outputs)
    ]


def arena_size(min_arena_bytes: int, arena_headroom_bytes: int = 0) -> int:
    """``kTensorArenaSize``: the smallest working arena plus headroom rounded up to 16.

    Raises
    ------
    ValueError
        If ``arena_headroom_bytes`` is negative or not an integer.
    """
    return min_arena_bytes + _round16(_check_headroom(arena_headroom_bytes))


def _c_float(value: float) -> str:
    """A float32 literal that reads back as the same float32."""
    if not math.isfinite(value):
        raise UnsupportedModelError(
            f"A quantisation scale must be finite. Received: scale={value!r}"
        )
    f32 = struct.unpack("<f", struct.pack("<f", value))[0]
    text = f"{f32:.9g}"
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


def _byte_lines(data: bytes) -> list[str]:
    return [
        "    " + " ".join(f"0x{b:02x}," for b in data[i : i + _BYTES_PER_LINE])
        for i in range(0, len(data), _BYTES_PER_LINE)
    ]


def _io_block(t: IOTensor) -> list[str]:
    cap = "Input" if t.kind == "input" else "Output"
    p = f"k{cap}{t.position}"
    shape = ", ".join(str(d) for d in t.shape)
    if t.quantized:
        quant = f"scale {_c_float(t.scale)[:-1]}, zero point {t.zero_point}"
        if t.channels > 1:
            quant += f" (per-channel, {t.channels} channels: channel 0 shown)"
    else:
        quant = "not quantised"
    name = t.name.replace("*/", "* /").replace("\n", " ")
    lines = [
        f'// {cap} {t.position}: tensor {t.tensor} "{name}", {t.dtype.lower()} [{shape}], {quant}.',
        f"using {cap}{t.position}Type = {t.c_type};",
        f"constexpr int {p}Dims = {len(t.shape)};",
        f"constexpr int {p}Shape[] = {{{shape or '1'}}};",
        f"constexpr int {p}Elements = {t.elements};",
        f"constexpr int {p}Bytes = {t.elements} * static_cast<int>(sizeof({cap}{t.position}Type));",
        f"constexpr float {p}Scale = {_c_float(t.scale)};",
        f"constexpr int {p}ZeroPoint = {t.zero_point};",
    ]
    tp = f"{cap}{t.position}Type"
    if t.kind == "input":
        lines.append(f"// Turns a real value into what input {t.position} holds.")
        lines.append(f"inline {tp} QuantizeInput{t.position}(float x) {{")
        if t.quantized and t.dtype in _INTEGER_TYPES:
            lines += [
                "  // q = round(x / scale) + zero_point, clamped to the type's range.",
                f"  const float q = std::round(x / {p}Scale) + static_cast<float>({p}ZeroPoint);",
                f"  const float lo = static_cast<float>(std::numeric_limits<{tp}>::lowest());",
                f"  const float hi = static_cast<float>(std::numeric_limits<{tp}>::max());",
                f"  return static_cast<{tp}>(q < lo ? lo : (q > hi ? hi : q));",
            ]
        else:
            lines.append(f"  return static_cast<{tp}>(x);  // not quantised")
        lines.append("}")
    else:
        lines.append(f"// Turns a value of output {t.position} into a real value.")
        lines.append(f"inline float DequantizeOutput{t.position}({tp} q) {{")
        if t.quantized and t.dtype in _INTEGER_TYPES:
            lines.append("  // x = (q - zero_point) * scale")
            lines.append(
                f"  return (static_cast<float>(q) - static_cast<float>({p}ZeroPoint)) * {p}Scale;"
            )
        else:
            lines.append("  return static_cast<float>(q);  // not quantised")
        lines.append("}")
    return lines


def _fmt(n: int) -> str:
    return f"{n:,}"


def _arena_comment(report: dict[str, Any], headroom: int, size: int) -> list[str]:
    target = get_target(report["target"])
    planned, tail = report["planned_bytes"], report["persistent_bytes"]
    used, smallest = report["arena_bytes"], report["min_arena_bytes"]
    rounded = _round16(headroom)
    rows = [
        ("planned head (greedy planner, non-persistent tensors and scratch)", planned),
        ("+ persistent tail (TFLM runtime structs, op data, quantisation)", tail),
        ("= arena_used_bytes() after AllocateTensors()", used),
        ("smallest working arena (multiple of 16)", smallest),
        (f"+ headroom ({_fmt(headroom)} bytes requested, rounded up to 16)", rounded),
        ("= kTensorArenaSize", size),
    ]
    width = max(len(label) for label, _ in rows)
    value_width = max(len(_fmt(v)) for _, v in rows)
    lines = [
        "// Tensor arena, computed by tfnas's model of TFLM's memory planner (a replica of",
        f'// TFLM commit {TFLM_COMMIT}) for target "{target.name}": {target.description}.',
    ]
    lines += [f"//   {label.ljust(width)}  {_fmt(v).rjust(value_width)} bytes" for label, v in rows]
    lines += [
        "// The smallest working arena is the smallest multiple of 16 with which",
        "// AllocateTensors() succeeds; it can exceed arena_used_bytes() because TFLM keeps",
        "// temporary planner arrays on top of the tail while it plans.",
        "// Build TFLM for the same target; other kernels, compilers or TFLM versions can need",
        "// more, so pass arena_headroom_bytes when in doubt.",
    ]
    if not report.get("exact", True):
        lines += [
            "// NOT EXACT: some kernel allocations of this model are not modelled by tfnas, so the",
            "// smallest working arena above is a safe upper bound, not the exact minimum:",
            *[f"//   - {why}" for why in report.get("reasons", [])],
        ]
    return lines


def to_c_source(
    tflite: bytes | str | os.PathLike | Model,
    *,
    name: str = "g_model",
    target: str = "cortex-m",
    arena_headroom_bytes: int = 0,
) -> tuple[str, str]:
    """Render ``model_data.cc`` and ``model_data.h`` for a model.

    Parameters
    ----------
    tflite : bytes, path-like or Model
        The ``.tflite`` flatbuffer.
    name : str
        Name of the C array; its length is ``{name}_len``.
    target : {"cortex-m", "cortex-m-cmsis", "host"}
        The TFLM build whose arena ``kTensorArenaSize`` is sized for.
    arena_headroom_bytes : int
        Extra arena bytes on top of the smallest working arena, rounded up to 16.

    Returns
    -------
    tuple of str
        ``(cc_text, h_text)``. The ``.cc`` includes ``"model_data.h"``.

    Raises
    ------
    ValueError
        If ``name`` is not a C++ identifier, ``arena_headroom_bytes`` is negative
        or not an integer, or ``target`` is unknown.
    UnsupportedModelError
        If an operator has no ``MicroMutableOpResolver`` method, an input or output
        has no C++ type, or TFLM would refuse the model on ``target``.
    FlatbufferError
        If the input is not a valid ``.tflite`` flatbuffer.
    """
    name = _check_name(name)
    headroom = _check_headroom(arena_headroom_bytes)
    get_target(target)
    model = _as_model(tflite)
    data = model.data
    methods = resolver_methods(model)
    tensors = io_tensors(model)
    report = inspect(model, target=target)
    smallest = int(report["min_arena_bytes"])
    if smallest % 16:
        raise ValueError(
            f"The memory model returned a smallest working arena that is not a multiple of "
            f"16 bytes. Received: min_arena_bytes={smallest}"
        )
    size = arena_size(smallest, headroom)
    if size > _INT_MAX:
        raise UnsupportedModelError(
            f"The tensor arena does not fit a C int: expected at most {_INT_MAX} bytes. "
            f"Received: kTensorArenaSize={size}"
        )

    guard = f"TFNAS_{name.upper()}_MODEL_DATA_H_"
    sg = model.main
    op_count = max(1, len(methods))
    inputs = [t for t in tensors if t.kind == "input"]
    outputs = [t for t in tensors if t.kind == "output"]
    h = [
        "// model_data.h: generated by tfnas; do not edit.",
        f"// Model: {_fmt(len(data))}-byte .tflite flatbuffer, {len(sg.operators)} operators, "
        f"{len(model.subgraphs)} subgraph(s); {name} is defined in model_data.cc.",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <cmath>",
        "#include <cstdint>",
        "#include <limits>",
        "",
        "// The flatbuffer, 16-byte aligned; pass it to tflite::GetModel().",
        f"extern const unsigned char {name}[];",
        f"extern const unsigned int {name}_len;",
        "",
        *_arena_comment(report, headroom, size),
        f"constexpr int kTensorArenaSize = {size};",
        "",
        f"constexpr int kInputCount = {len(inputs)};",
        f"constexpr int kOutputCount = {len(outputs)};",
    ]
    for t in tensors:
        h += ["", *_io_block(t)]
    h += [
        "",
        f"// Operators: the {len(methods)} distinct operator(s) of this model, in order of first use.",
        f"constexpr int kModelOpCount = {op_count};",
        "// Register them with a TFLM op resolver, for example:",
        *[f"//   {line}" for line in resolver_snippet(model).splitlines()],
        "// or, equivalently:",
        "//   static tflite::MicroMutableOpResolver<kModelOpCount> resolver;",
        "//   if (!RegisterModelOps(resolver)) { /* registration failed */ }",
        "template <typename Resolver>",
        "inline bool RegisterModelOps(Resolver& resolver) {",
        "  // Each Add* returns a TfLiteStatus; kTfLiteOk is 0.",
        *[f"  if (static_cast<int>(resolver.{m}()) != 0) return false;" for m in methods],
        "  return true;",
        "}",
        "",
        f"#endif  // {guard}",
        "",
    ]
    cc = [
        "// model_data.cc: generated by tfnas; do not edit.",
        f"// The .tflite flatbuffer ({_fmt(len(data))} bytes), 16-byte aligned as TFLM requires.",
        '#include "model_data.h"',
        "",
        f"alignas(16) const unsigned char {name}[] = {{",
        *_byte_lines(data),
        "};",
        f"const unsigned int {name}_len = {len(data)};",
        "",
    ]
    return "\n".join(cc), "\n".join(h)


def write_c_files(
    tflite: bytes | str | os.PathLike | Model,
    out_dir: str | os.PathLike,
    *,
    source_suffix: str = ".cc",
    **kwargs: Any,
) -> tuple[Path, Path]:
    """Write ``model_data.cc`` and ``model_data.h`` into ``out_dir``.

    Parameters
    ----------
    tflite : bytes, path-like or Model
        The ``.tflite`` flatbuffer.
    out_dir : path-like
        Folder to write into (created if missing).
    source_suffix : {".cc", ".cpp"}
        Suffix of the source file (Arduino sketches compile ``.cpp``, not ``.cc``).
    **kwargs
        ``name``, ``target`` and ``arena_headroom_bytes``, as for :func:`to_c_source`.

    Returns
    -------
    tuple of Path
        The paths of the source and the header.

    Raises
    ------
    ValueError
        If ``source_suffix`` is not ``.cc`` or ``.cpp``, or as :func:`to_c_source`.
    """
    if source_suffix not in (".cc", ".cpp"):
        raise ValueError(
            f"source_suffix must be '.cc' or '.cpp'. Received: source_suffix={source_suffix!r}"
        )
    cc, h = to_c_source(tflite, **kwargs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cc_path, h_path = out / f"model_data{source_suffix}", out / "model_data.h"
    cc_path.write_text(cc, encoding="utf-8")
    h_path.write_text(h, encoding="utf-8")
    return cc_path, h_path
