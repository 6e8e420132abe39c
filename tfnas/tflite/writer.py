"""Rewrite ``.tflite`` flatbuffers: a new operator order, or strings stripped.

:func:`reorder_operators` permutes the operator offsets of subgraph 0 in place,
so every other byte (weights included) stays identical. :func:`strip_strings`
rebuilds the flatbuffer with ``ai_edge_litert``'s object API, dropping tensor
and subgraph names and the model description (signatures and metadata stay), keeping
buffer data 16-byte aligned as the converter writes it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence

import flatbuffers
from ai_edge_litert import schema_py_generated as _schema

from tfnas.errors import FlatbufferError
from tfnas.tflite._flatbuffer import Reader
from tfnas.tflite.model import Model, read_model

__all__ = ["reorder_operators", "strip_strings"]

_BUFFER_ALIGN = 16


def reorder_operators(
    model: bytes | str | os.PathLike | Model,
    order: Sequence[int],
    subgraph: int = 0,
    *,
    renumber: bool = False,
) -> bytes:
    """Return a copy of ``model`` whose operators run in ``order``.

    Parameters
    ----------
    model : bytes, path-like or Model
        The source model.
    order : sequence of int
        ``order[k]`` is the index of the operator to run at position ``k``.
        It must be a permutation and keep every producer before its consumers.
    subgraph : int, optional
        The subgraph to reorder (0, the one TFLM invokes, by default).
    renumber : bool, optional
        Also renumber the operators' output tensors so that their indices
        follow the new order, as the converter numbers them in the order it
        emits operators. TFLM's planner breaks ties between buffers of equal
        size by tensor index, so this makes a reordered model plan like a
        model converted in that order. Every reference (operator inputs,
        outputs and intermediates, subgraph inputs and outputs, signatures)
        follows.

    Returns
    -------
    bytes
        The new flatbuffer, identical to the source except for the order.

    Raises
    ------
    ValueError
        If ``order`` is not a permutation or is not a topological order.
    """
    parsed = read_model(model)
    sg = parsed.subgraphs[subgraph]
    n = len(sg.operators)
    order = [int(i) for i in order]
    if sorted(order) != list(range(n)):
        raise ValueError(f"order must be a permutation of 0..{n - 1}. Received: order={order}")
    produced_at = {t: pos for pos, i in enumerate(order) for t in sg.operators[i].outputs}
    for pos, i in enumerate(order):
        for t in sg.operators[i].inputs:
            if produced_at.get(t, -1) > pos:
                raise ValueError(
                    f"order runs operator {i} before the producer of its input tensor {t}. "
                    f"Received: order={order}"
                )
    data = bytearray(parsed.data)
    reader = Reader(bytes(data))
    sub_table = reader.root().tables(2)[subgraph]
    found = sub_table.offsets_vector(3)
    if found is None:
        raise FlatbufferError("Corrupted flatbuffer: subgraph has no operator vector.")
    body, length = found
    targets = [body + 4 * i + int(reader.scalar(body + 4 * i, "I")) for i in range(length)]
    for pos, i in enumerate(order):
        slot = body + 4 * pos
        struct.pack_into("<I", data, slot, targets[i] - slot)
    if renumber:
        _renumber_outputs(data, reader, sg, order, subgraph)
    return bytes(data)


def _renumber_outputs(data: bytearray, reader: Reader, sg, order: list[int], subgraph: int) -> None:
    """Give the operators' output tensors indices in the order the operators now run."""
    slots = sorted({t for op in sg.operators for t in op.outputs if t >= 0})
    in_order = list(dict.fromkeys(t for i in order for t in sg.operators[i].outputs if t >= 0))
    new_index = dict(zip(in_order, slots, strict=True))
    if all(old == new for old, new in new_index.items()):
        return
    root = reader.root()
    sub_table = root.tables(2)[subgraph]
    body, _ = sub_table.offsets_vector(0)  # the tensor table vector
    targets = {t: body + 4 * t + int(reader.scalar(body + 4 * t, "I")) for t in slots}
    for old, new in new_index.items():
        slot = body + 4 * new
        struct.pack_into("<I", data, slot, targets[old] - slot)
    patched: set[int] = set()

    def remap(table, field: int, fmt: str = "i") -> None:
        found = table._vector(field, 4)
        if found is None or found[0] in patched:
            return
        vbody, length = found
        patched.add(vbody)
        for k in range(length):
            value = struct.unpack_from(f"<{fmt}", data, vbody + 4 * k)[0]
            if value in new_index:
                struct.pack_into(f"<{fmt}", data, vbody + 4 * k, new_index[value])

    for op in sub_table.tables(3):
        for field in (1, 2, 8):  # inputs, outputs, intermediates
            remap(op, field)
    remap(sub_table, 1)  # subgraph inputs
    remap(sub_table, 2)  # subgraph outputs
    for signature in root.tables(7):  # SignatureDef: inputs, outputs (TensorMap), subgraph_index
        if int(signature.scalar(4, "I")) != subgraph:
            continue
        for field in (0, 1):
            for tensor_map in signature.tables(field):
                pos = tensor_map._field(1)
                if pos:
                    value = struct.unpack_from("<I", data, pos)[0]
                    if value in new_index:
                        struct.pack_into("<I", data, pos, new_index[value])


class _AlignedBufferT(_schema.BufferT):
    """A BufferT that packs its data 16-byte aligned like the TFLite converter."""

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (flatbuffers API)
        data = None
        if self.data is not None and len(self.data):
            raw = bytes(bytearray(self.data))
            builder.StartVector(1, len(raw), _BUFFER_ALIGN)
            builder.head -= len(raw)
            builder.Bytes[builder.head : builder.head + len(raw)] = raw
            data = builder.EndVector()
        _schema.BufferStart(builder)
        if data is not None:
            _schema.BufferAddData(builder, data)
        _schema.BufferAddOffset(builder, self.offset)
        _schema.BufferAddSize(builder, self.size)
        return _schema.BufferEnd(builder)


def strip_strings(model: bytes | str | os.PathLike | Model) -> bytes:
    """Return ``model`` without tensor names, subgraph names and descriptions.

    Raises
    ------
    FlatbufferError
        If the source is not a valid model.
    """
    parsed = read_model(model)
    obj = _schema.ModelT.InitFromPackedBuf(parsed.data, 0)
    obj.description = None
    for sg in obj.subgraphs or []:
        sg.name = None
        for t in sg.tensors or []:
            t.name = None
    for buf in obj.buffers or []:
        buf.__class__ = _AlignedBufferT
    builder = flatbuffers.Builder(len(parsed.data) + 1024)
    builder.Finish(obj.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
