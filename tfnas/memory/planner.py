"""A replica of TFLM's ``GreedyMemoryPlanner`` on abstract buffers.

Buffers are placed largest first (a stable sort of the buffers in reverse order
of addition, so among equal sizes the later buffer goes first, as TFLM's
``ReverseSortInPlace`` does) at the lowest offset where they do not overlap,
in time and space, any buffer already placed.

Examples
--------
>>> plan = greedy_plan([BufferSpec(10, 0, 1), BufferSpec(20, 2, 3)])
>>> plan.offsets, plan.arena_bytes
((0, 0), 20)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BufferSpec", "GreedyPlan", "GreedyPlanner", "greedy_plan", "find_overlaps"]

#: Bytes of planner scratch per buffer (``GreedyMemoryPlanner::per_buffer_size``).
PER_BUFFER_BYTES = 40


@dataclass(frozen=True)
class BufferSpec:
    """A buffer to place: ``size`` bytes live from step ``first`` to ``last`` inclusive."""

    size: int
    first: int
    last: int
    offline_offset: int | None = None


@dataclass(frozen=True)
class GreedyPlan:
    """The planner's result: one offset per buffer and the arena they need."""

    buffers: tuple[BufferSpec, ...]
    offsets: tuple[int, ...]
    arena_bytes: int


def _overlap_in_time(a: BufferSpec, first: int, last: int) -> bool:
    return not (a.first > last or first > a.last)


class GreedyPlanner:
    """Incremental interface mirroring TFLM: ``add_buffer`` then ``plan``.

    Parameters
    ----------
    max_buffers : int, optional
        Capacity, like TFLM's ``scratch_buffer_size / per_buffer_size``; adding
        more buffers raises ``ValueError``. Unlimited by default.
    """

    def __init__(self, max_buffers: int | None = None) -> None:
        self.max_buffers = max_buffers
        self.buffers: list[BufferSpec] = []

    def add_buffer(
        self, size: int, first: int, last: int, offline_offset: int | None = None
    ) -> int:
        """Add a buffer and return its id (the order of addition)."""
        if self.max_buffers is not None and len(self.buffers) >= self.max_buffers:
            raise ValueError(
                f"Too many buffers for the planner: expected at most {self.max_buffers}. "
                f"Received: buffer number {len(self.buffers) + 1}"
            )
        if size < 0 or first > last:
            raise ValueError(
                f"A buffer needs size >= 0 and first <= last. "
                f"Received: size={size}, first={first}, last={last}"
            )
        self.buffers.append(BufferSpec(size, first, last, offline_offset))
        return len(self.buffers) - 1

    def plan(self) -> GreedyPlan:
        return greedy_plan(self.buffers)


def greedy_plan(buffers: Sequence[BufferSpec]) -> GreedyPlan:
    """Place ``buffers`` exactly as TFLM's greedy planner does.

    Parameters
    ----------
    buffers : sequence of BufferSpec
        In the order TFLM adds them (tensors by index, then scratch buffers).

    Returns
    -------
    GreedyPlan
        Offsets in the order of ``buffers`` and the largest end offset.
    """
    buffers = tuple(buffers)
    n = len(buffers)
    if n == 0:
        return GreedyPlan((), (), 0)
    offline = [i for i, b in enumerate(buffers) if b.offline_offset is not None]
    online = [i for i in reversed(range(n)) if buffers[i].offline_offset is None]
    # Python's sort is stable, like TFLM's bubble sort; online ids start reversed.
    online.sort(key=lambda i: -buffers[i].size)
    order = offline + online
    offsets = [-1] * n
    placed: list[tuple[int, int]] = []  # (offset, id), kept sorted by offset, ties by arrival
    for rank, bid in enumerate(order):
        want = buffers[bid]
        if want.offline_offset is not None:
            candidate = want.offline_offset
        elif rank == 0:
            candidate = 0
        else:
            candidate = 0
            for off, other in placed:
                spec = buffers[other]
                if not _overlap_in_time(spec, want.first, want.last):
                    continue
                if off - candidate >= want.size:
                    break
                candidate = max(candidate, off + spec.size)
        offsets[bid] = candidate
        pos = len(placed)
        if rank > 0 and placed[0][0] > candidate:
            pos = 0
        else:
            for k in range(1, len(placed)):
                if placed[k][0] > candidate:
                    pos = k
                    break
        placed.insert(pos, (candidate, bid))
    arena = max(offsets[i] + buffers[i].size for i in range(n))
    return GreedyPlan(buffers, tuple(offsets), arena)


def find_overlaps(buffers: Sequence[BufferSpec], offsets: Sequence[int]) -> list[tuple[int, int]]:
    """Return every pair of buffers that overlap both in time and in memory.

    An empty list means the plan is valid (``DoAnyBuffersOverlap`` is false).
    """
    pairs = []
    for i, a in enumerate(buffers):
        for j in range(i + 1, len(buffers)):
            b = buffers[j]
            if a.first > b.last or b.first > a.last:
                continue
            if offsets[i] + a.size <= offsets[j] or offsets[j] + b.size <= offsets[i]:
                continue
            if a.size and b.size:
                pairs.append((i, j))
    return pairs
