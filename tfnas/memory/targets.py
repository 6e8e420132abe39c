"""What TFLM's runtime structs and kernels cost on each supported target.

Three targets are modelled, each measured against TFLM commit 90b983c2:

- ``host``: 64-bit Linux (x86-64), reference kernels;
- ``cortex-m``: the bare-metal 32-bit ARM EABI (short enums), reference kernels;
- ``cortex-m-cmsis``: the same ABI with CMSIS-NN kernels for a Cortex-M4 with
  DSP and no MVE, GCC, debug configuration.

The sizes of builtin option structs (allocated by the flatbuffer parser) and of
each kernel's ``OpData`` (allocated by its Init) come from ``tflm_sizes.json``,
which ``tools/tflm_kernel_sizes.py`` makes by compiling each kernel's own
structs with each build's compiler and flags: nothing there is fitted.
"""

from __future__ import annotations

import json
import logging
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Target", "get_target", "TARGETS"]

logger = logging.getLogger("tfnas")

_SIZES_FILE = Path(__file__).with_name("tflm_sizes.json")


def _load_tables() -> dict:
    """The compiled size tables (``tools/tflm_kernel_sizes.py``), or {} if absent."""
    try:
        return json.loads(_SIZES_FILE.read_text())
    except FileNotFoundError:  # pragma: no cover - the file ships with the package
        logger.warning("%s is missing; kernel sizes are unknown.", _SIZES_FILE.name)
        return {}


_TABLES = _load_tables()


def _table(target: str, kind: str) -> Mapping:
    return types.MappingProxyType(_TABLES.get("targets", {}).get(target, {}).get(kind, {}))


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
    init: Mapping[str, list[int]] = field(default_factory=dict)
    params: Mapping[str, list[int] | None] = field(default_factory=dict)
    prepare_structs: Mapping[str, Mapping] = field(default_factory=dict)

    def params_struct(self, opcode: str) -> tuple[int, int] | None:
        """``(sizeof, alignof)`` of the builtin params the op's parser allocates.

        Raises KeyError when the table has no entry for ``opcode``.
        """
        found = self.params[opcode]
        return None if found is None else (int(found[0]), int(found[1]))

    def op_data(self, opcode: str) -> tuple[int, ...] | None:
        """Bytes of each buffer the kernel's Init allocates, or None if not known."""
        found = self.init.get(opcode)
        return None if found is None else tuple(int(n) for n in found)

    def struct_bytes(self, name: str) -> int:
        """``sizeof`` of a kernel struct that Prepare allocates (compiled table)."""
        return int(self.prepare_structs[name]["size"])


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
            _table("host", "init"),
            _table("host", "params"),
            _table("host", "prepare_structs"),
        ),
        "cortex-m": Target(
            "cortex-m",
            "32-bit bare-metal ARM EABI (Cortex-M), reference kernels",
            4,
            True,
            False,
            types.MappingProxyType(_sizes(4)),
            _table("cortex-m", "init"),
            _table("cortex-m", "params"),
            _table("cortex-m", "prepare_structs"),
        ),
        "cortex-m-cmsis": Target(
            "cortex-m-cmsis",
            "Cortex-M4 with DSP, CMSIS-NN kernels, GCC debug build",
            4,
            True,
            True,
            types.MappingProxyType(_sizes(4)),
            _table("cortex-m-cmsis", "init"),
            _table("cortex-m-cmsis", "params"),
            _table("cortex-m-cmsis", "prepare_structs"),
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
