"""What TFLM's runtime structs and kernels cost on each supported target.

Three targets are modelled, each measured against TFLM commit 90b983c2:

- ``host``: 64-bit Linux (x86-64), reference kernels;
- ``cortex-m``: the bare-metal 32-bit ARM EABI (short enums), reference kernels;
- ``cortex-m-cmsis``: the same ABI with CMSIS-NN kernels for a Cortex-M4 with
  DSP and no MVE, GCC, debug configuration.

Builtin option structs are laid out from their C field lists (so new ops only
need a field list); kernel ``OpData`` sizes come from TFLM's kernel sources as
measured on each build.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Target", "get_target", "TARGETS", "struct_layout"]

logger = logging.getLogger("tfnas")

# C field kinds of TfLite*Params structs: int/float (4), enum (4, or 1 with
# short enums), bool (1), TfLiteType (an enum), int[8] arrays.
_PARAMS: dict[str, tuple[str, ...]] = {
    "ADD": ("enum", "bool"),
    "SUB": ("enum", "bool"),
    "MUL": ("enum",),
    "DIV": ("enum",),
    "AVERAGE_POOL_2D": ("enum",) + ("int",) * 4 + ("enum",) + ("int",) * 4,
    "MAX_POOL_2D": ("enum",) + ("int",) * 4 + ("enum",) + ("int",) * 4,
    "L2_POOL_2D": ("enum",) + ("int",) * 4 + ("enum",) + ("int",) * 4,
    "CONCATENATION": ("int", "enum"),
    "CONV_2D": ("enum", "int", "int", "enum", "int", "int", "enum"),
    "DEPTHWISE_CONV_2D": ("enum", "int", "int", "int", "enum", "int", "int"),
    "TRANSPOSE_CONV": ("enum", "int", "int", "enum", "enum"),
    "FULLY_CONNECTED": ("enum", "enum", "bool", "bool", "enum"),
    "MEAN": ("bool",),
    "SUM": ("bool",),
    "REDUCE_MAX": ("bool",),
    "REDUCE_MIN": ("bool",),
    "REDUCE_PROD": ("bool",),
    "MIRROR_PAD": ("enum",),
    "RESHAPE": ("int",) * 9,
    "SQUEEZE": ("int",) * 9,
    "SOFTMAX": ("int",),
    "LEAKY_RELU": ("int",),
    "SVDF": ("int", "enum", "bool"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("enum", "int", "int", "bool", "bool", "bool"),
    "STRIDED_SLICE": ("int",) * 5 + ("bool",),
    "GATHER": ("int", "int"),
    "SPLIT": ("int",),
    "SPLIT_V": ("int",),
    "PACK": ("int", "int"),
    "UNPACK": ("int", "int"),
    "RESIZE_NEAREST_NEIGHBOR": ("bool", "bool"),
    "RESIZE_BILINEAR": ("bool", "bool"),
    "SHAPE": ("enum",),
    "ARG_MAX": ("enum",),
    "ARG_MIN": ("enum",),
    "CAST": ("enum", "enum"),
    "DEPTH_TO_SPACE": ("int",),
    "SPACE_TO_DEPTH": ("int",),
    "IF": ("int", "int"),
    "WHILE": ("int", "int"),
    "CALL_ONCE": ("int",),
}

# Kernel OpData bytes requested in Init, per kernel family (measured).
_OP_DATA_REF_64 = {
    "ADD": 60,
    "AVERAGE_POOL_2D": 32,
    "MAX_POOL_2D": 32,
    "CONCATENATION": 40,
    "CONV_2D": 72,
    "DEPTHWISE_CONV_2D": 72,
    "DEQUANTIZE": 32,
    "QUANTIZE": 32,
    "FULLY_CONNECTED": 64,
    "MEAN": 44,
    "SUM": 44,
    "REDUCE_MAX": 44,
    "REDUCE_MIN": 44,
    "MIRROR_PAD": 20,
    "PAD": 56,
    "PADV2": 56,
    "SOFTMAX": 80,
    "SVDF": 36,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 688,
}
_OP_DATA_REF_32 = {
    **_OP_DATA_REF_64,
    "CONCATENATION": 24,
    "CONV_2D": 56,
    "DEPTHWISE_CONV_2D": 56,
    "FULLY_CONNECTED": 48,
    "SOFTMAX": 56,
}
_OP_DATA_CMSIS = {
    **_OP_DATA_REF_32,
    "AVERAGE_POOL_2D": 36,
    "MAX_POOL_2D": 36,
    "CONV_2D": 60,
    "DEPTHWISE_CONV_2D": 60,
    "FULLY_CONNECTED": 72,
    "SOFTMAX": 64,
    "SVDF": 40,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 912,
}
# Kernels known to allocate no OpData in Init.
_NO_OP_DATA = frozenset(
    {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "IF", "WHILE", "CALL_ONCE", "SHAPE", "ZEROS_LIKE"}
)


def struct_layout(fields: tuple[tuple[int, int], ...]) -> tuple[int, int]:
    """Return ``(sizeof, alignof)`` of a C struct from ``(size, align)`` fields."""
    offset, align = 0, 1
    for size, a in fields:
        offset = (offset + a - 1) // a * a + size
        align = max(align, a)
    return (offset + align - 1) // align * align, align


@dataclass(frozen=True)
class Target:
    """Struct sizes and kernel rules of one TFLM build.

    ``sizes`` maps a runtime struct name to ``(sizeof, alignof)``.
    """

    name: str
    description: str
    pointer_bytes: int
    short_enums: bool
    cmsis_nn: bool
    sizes: Mapping[str, tuple[int, int]]
    op_data: Mapping[str, int]

    def params_struct(self, opcode: str) -> tuple[int, int] | None:
        """``(sizeof, alignof)`` of the builtin params the op's parser allocates."""
        fields = _PARAMS.get(opcode)
        if fields is None:
            return None
        enum = (1, 1) if self.short_enums else (4, 4)
        kinds = {"int": (4, 4), "bool": (1, 1), "enum": enum}
        return struct_layout(tuple(kinds[f] for f in fields))

    def op_data_bytes(self, opcode: str) -> int:
        """Bytes the kernel's Init asks for (0 when it keeps no OpData)."""
        if opcode in self.op_data:
            return self.op_data[opcode]
        if opcode in _NO_OP_DATA:
            return 0
        logger.warning(
            "No OpData size known for %s on target %s; counting 0 bytes.", opcode, self.name
        )
        return 0


def _sizes(ptr: int) -> dict[str, tuple[int, int]]:
    if ptr == 8:
        return {
            "SingleArenaBufferAllocator": (72, 8),
            "GreedyMemoryPlanner": (72, 8),
            "MicroAllocator": (72, 8),
            "MicroBuiltinDataAllocator": (16, 8),
            "SubgraphAllocations": (16, 8),
            "TfLiteEvalTensor": (24, 8),
            "NodeAndRegistration": (64, 8),
            "TfLiteTensor": (64, 8),
            "TfLiteAffineQuantization": (24, 8),
            "TfLiteIntArray": (4, 4),
            "ScratchBufferHandle": (8, 8),
            "ScratchBufferRequest": (16, 8),
            "AllocationInfo": (32, 8),
            "size_t": (8, 8),
            "pointer": (8, 8),
        }
    return {
        "SingleArenaBufferAllocator": (36, 4),
        "GreedyMemoryPlanner": (44, 4),
        "MicroAllocator": (36, 4),
        "MicroBuiltinDataAllocator": (8, 4),
        "SubgraphAllocations": (8, 4),
        "TfLiteEvalTensor": (12, 4),
        "NodeAndRegistration": (32, 4),
        "TfLiteTensor": (32, 4),
        "TfLiteAffineQuantization": (12, 4),
        "TfLiteIntArray": (4, 4),
        "ScratchBufferHandle": (4, 4),
        "ScratchBufferRequest": (12, 4),
        "AllocationInfo": (24, 4),
        "size_t": (4, 4),
        "pointer": (4, 4),
    }


TARGETS: Mapping[str, Target] = types.MappingProxyType(
    {
        "host": Target(
            "host",
            "x86-64 Linux host, reference kernels",
            8,
            False,
            False,
            types.MappingProxyType(_sizes(8)),
            types.MappingProxyType(_OP_DATA_REF_64),
        ),
        "cortex-m": Target(
            "cortex-m",
            "32-bit bare-metal ARM EABI (Cortex-M), reference kernels",
            4,
            True,
            False,
            types.MappingProxyType(_sizes(4)),
            types.MappingProxyType(_OP_DATA_REF_32),
        ),
        "cortex-m-cmsis": Target(
            "cortex-m-cmsis",
            "Cortex-M4 with DSP, CMSIS-NN kernels, GCC debug build",
            4,
            True,
            True,
            types.MappingProxyType(_sizes(4)),
            types.MappingProxyType(_OP_DATA_CMSIS),
        ),
    }
)


def get_target(target: str | Target) -> Target:
    """Return the :class:`Target` named ``target`` (or ``target`` itself).

    Raises
    ------
    ValueError
        If the name is not one of ``host``, ``cortex-m``, ``cortex-m-cmsis``.
    """
    if isinstance(target, Target):
        return target
    if target not in TARGETS:
        raise ValueError(f"Unknown target: expected one of {sorted(TARGETS)}. Received: {target!r}")
    return TARGETS[target]
