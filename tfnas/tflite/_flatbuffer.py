"""A small bounds-checked FlatBuffers reader.

The generated FlatBuffers accessors trust every offset they read, so a corrupted
file can make them read outside the buffer, loop or allocate huge lists. This
reader checks every offset and length against the buffer size before using it
and counts the elements it decodes, so any input either parses or raises
:class:`~tfnas.errors.FlatbufferError` quickly.
"""

from __future__ import annotations

import struct

from tfnas.errors import FlatbufferError

__all__ = ["Reader", "Table"]

_SCALAR = {
    "b": struct.Struct("<b"),
    "B": struct.Struct("<B"),
    "h": struct.Struct("<h"),
    "H": struct.Struct("<H"),
    "i": struct.Struct("<i"),
    "I": struct.Struct("<I"),
    "q": struct.Struct("<q"),
    "Q": struct.Struct("<Q"),
    "f": struct.Struct("<f"),
    "d": struct.Struct("<d"),
}


class Reader:
    """Bounds-checked access to a FlatBuffers byte buffer.

    Parameters
    ----------
    data : bytes
        The whole flatbuffer.
    budget : int, optional
        How many vector elements may be decoded in total before the file is
        rejected as malicious (shared vectors could otherwise make decoding
        quadratic). Defaults to 16 elements per byte of input plus a constant.
    """

    def __init__(self, data: bytes, budget: int | None = None) -> None:
        self.data = memoryview(data).cast("B")
        self.size = len(self.data)
        self.budget = budget if budget is not None else 16 * self.size + 100_000

    def fail(self, what: str) -> FlatbufferError:
        return FlatbufferError(f"Corrupted flatbuffer: {what} (file has {self.size} bytes).")

    def scalar(self, pos: int, fmt: str) -> int | float:
        st = _SCALAR[fmt]
        if pos < 0 or pos + st.size > self.size:
            raise self.fail(f"read of {st.size} bytes at offset {pos} is out of bounds")
        return st.unpack_from(self.data, pos)[0]

    def spend(self, count: int) -> None:
        self.budget -= count
        if self.budget < 0:
            raise self.fail("too many elements decoded (shared or looping vectors)")

    def uoffset(self, pos: int) -> int:
        """Follow the unsigned offset stored at ``pos`` and return the target."""
        target = pos + int(self.scalar(pos, "I"))
        if target >= self.size:
            raise self.fail(f"offset at {pos} points to {target}, past the end")
        return target

    def table(self, pos: int) -> Table:
        return Table(self, pos)

    def root(self) -> Table:
        if self.size < 8:
            raise FlatbufferError(
                f"Not a TFLite flatbuffer: expected at least 8 bytes. Received: {self.size} bytes."
            )
        return self.table(self.uoffset(0))


class Table:
    """One FlatBuffers table, with its vtable checked on construction."""

    def __init__(self, reader: Reader, pos: int) -> None:
        self.r = reader
        self.pos = pos
        vt = pos - int(reader.scalar(pos, "i"))
        if vt < 0 or vt + 4 > reader.size:
            raise reader.fail(f"vtable of table at {pos} is out of bounds")
        vt_size = int(reader.scalar(vt, "H"))
        obj_size = int(reader.scalar(vt + 2, "H"))
        if vt_size < 4 or vt_size % 2 or vt + vt_size > reader.size:
            raise reader.fail(f"bad vtable size {vt_size} for table at {pos}")
        if pos + obj_size > reader.size:
            raise reader.fail(f"table at {pos} of {obj_size} bytes runs past the end")
        self.vt = vt
        self.nfields = (vt_size - 4) // 2
        self.obj_size = obj_size

    def _field(self, index: int) -> int:
        if index >= self.nfields:
            return 0
        rel = int(self.r.scalar(self.vt + 4 + 2 * index, "H"))
        if rel and rel >= self.obj_size:
            raise self.r.fail(f"field {index} of table at {self.pos} lies outside the table")
        return self.pos + rel if rel else 0

    def has(self, index: int) -> bool:
        return self._field(index) != 0

    def scalar(self, index: int, fmt: str, default: int | float = 0) -> int | float:
        pos = self._field(index)
        return self.r.scalar(pos, fmt) if pos else default

    def _vector(self, index: int, elem_size: int) -> tuple[int, int] | None:
        pos = self._field(index)
        if not pos:
            return None
        start = self.r.uoffset(pos)
        length = int(self.r.scalar(start, "I"))
        body = start + 4
        if length * elem_size > self.r.size - body:
            raise self.r.fail(f"vector at {start} claims {length} elements, past the end")
        return body, length

    def vector(self, index: int, fmt: str) -> list | None:
        """Decode a vector of scalars, or return None when the field is absent."""
        found = self._vector(index, _SCALAR[fmt].size)
        if found is None:
            return None
        body, length = found
        self.r.spend(length)
        return list(struct.unpack_from(f"<{length}{fmt}", self.r.data, body))

    def bytes_span(self, index: int) -> tuple[int, int] | None:
        """Return ``(start, length)`` of a byte vector without copying it."""
        found = self._vector(index, 1)
        return found

    def string(self, index: int) -> str | None:
        found = self._vector(index, 1)
        if found is None:
            return None
        body, length = found
        self.r.spend(length // 64 + 1)
        return bytes(self.r.data[body : body + length]).decode("utf-8", errors="replace")

    def table_field(self, index: int) -> Table | None:
        pos = self._field(index)
        return self.r.table(self.r.uoffset(pos)) if pos else None

    def tables(self, index: int) -> list[Table]:
        found = self._vector(index, 4)
        if found is None:
            return []
        body, length = found
        self.r.spend(length * 4)
        return [self.r.table(self.r.uoffset(body + 4 * i)) for i in range(length)]

    def offsets_vector(self, index: int) -> tuple[int, int] | None:
        """Return ``(body, length)`` of a vector of offsets (for in-place rewriting)."""
        return self._vector(index, 4)
