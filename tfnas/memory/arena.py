"""Plan a model's TFLM arena: head (planned), tail (persistent), smallest arena.

Examples
--------
>>> plan = plan_memory("model.tflite", target="cortex-m")  # doctest: +SKIP
>>> plan.planned_bytes, plan.persistent_bytes, plan.min_arena_bytes  # doctest: +SKIP
(2048, 1860, 3920)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from tfnas.errors import UnsupportedModelError
from tfnas.memory.kernels import KernelRequests, kernel_requests
from tfnas.memory.lifetimes import (
    PlannedBuffer,
    ScratchRequest,
    align_up,
    allocation_lifetimes,
)
from tfnas.memory.persistent import PersistentAllocation, simulate_allocation
from tfnas.memory.planner import BufferSpec, greedy_plan
from tfnas.memory.targets import Target, get_target
from tfnas.tflite.model import Model, read_model

logger = logging.getLogger("tfnas")

__all__ = ["PlacedBuffer", "MemoryPlan", "plan_memory", "plan_head", "scratch_requests"]


@dataclass(frozen=True)
class PlacedBuffer(PlannedBuffer):
    """A planned buffer with the offset the greedy planner gave it."""

    offset: int


@dataclass(frozen=True)
class MemoryPlan:
    """TFLM's arena for one model on one target.

    Attributes
    ----------
    planned_bytes : int
        The head laid out by the greedy planner (``planner_max_memory_size``).
    persistent_bytes : int
        The tail of persistent allocations.
    arena_bytes : int
        Their sum, what ``MicroInterpreter::arena_used_bytes()`` reports.
    min_arena_bytes : int
        The smallest arena (a multiple of 16) with which ``AllocateTensors``
        succeeds; planning temporaries can make it exceed ``arena_bytes``.
    buffers : tuple of PlacedBuffer
        Every planned buffer in the order TFLM adds them.
    order : tuple of int
        The execution order of subgraph 0 the plan was made for.
    timeline : tuple of int
        Planned bytes live at each step (step 0: inputs; step i + 1: operator i).
    peak_op : int
        Index (in ``order``) of the operator at which live planned memory peaks.
    exact : bool
        False when some kernel or type combination is not modelled; then
        ``min_arena_bytes`` includes an allowance for it and is an upper bound.
    reasons : tuple of str
        What is not modelled (empty when ``exact``).
    """

    target: str
    planned_bytes: int
    persistent_bytes: int
    arena_bytes: int
    min_arena_bytes: int
    buffers: tuple[PlacedBuffer, ...]
    order: tuple[int, ...]
    timeline: tuple[int, ...]
    peak_op: int
    allocations: tuple[PersistentAllocation, ...]
    exact: bool = True
    reasons: tuple[str, ...] = ()


def scratch_requests(
    model: Model, target: Target
) -> tuple[list[ScratchRequest], list[list[KernelRequests]]]:
    """Kernel requests of every operator and the scratch requests in TFLM's order.

    Operators are prepared subgraph by subgraph in file order, which fixes the
    order of scratch requests whatever the execution order later is.
    """
    kernels = []
    for sg in model.subgraphs:
        row = []
        for op in sg.operators:
            try:
                row.append(kernel_requests(sg, op, target))
            except (IndexError, KeyError, TypeError, ZeroDivisionError) as exc:
                raise UnsupportedModelError(
                    f"Operator {op.index} ({op.name}) of subgraph {sg.index} has tensors of "
                    f"unexpected rank or shape for its kernel. Received: {type(exc).__name__}"
                ) from None
        kernels.append(row)
    scratch = [
        ScratchRequest(sg.index, op.index, size)
        for sg in model.subgraphs
        for op in sg.operators
        for size in kernels[sg.index][op.index].scratch
    ]
    return scratch, kernels


def _place(buffers: Sequence[PlannedBuffer]) -> tuple[tuple[PlacedBuffer, ...], int]:
    plan = greedy_plan([BufferSpec(b.size, b.first, b.last) for b in buffers])
    placed = tuple(
        PlacedBuffer(**vars(b), offset=o) for b, o in zip(buffers, plan.offsets, strict=True)
    )
    return placed, plan.arena_bytes


def plan_head(
    model: Model, scratch: Sequence[ScratchRequest] = (), order: Sequence[int] | None = None
) -> int:
    """Planned (head) bytes for an execution order of subgraph 0; fast path for search."""
    buffers = allocation_lifetimes(model, scratch, order)
    return greedy_plan([BufferSpec(b.size, b.first, b.last) for b in buffers]).arena_bytes


def _timeline(placed: Sequence[PlacedBuffer], steps: int) -> tuple[int, ...]:
    live = [0] * (steps + 1)
    for b in placed:
        if b.subgraph not in (0, -1) and b.kind == "tensor":
            continue
        for s in range(max(b.first, 0), min(b.last, steps) + 1):
            live[s] += b.size
    return tuple(live)


def plan_memory(
    model: bytes | str | os.PathLike | Model,
    target: str | Target = "host",
    order: Sequence[int] | None = None,
) -> MemoryPlan:
    """Reproduce TFLM's arena plan for ``model`` on ``target``.

    Parameters
    ----------
    model : bytes, path-like or Model
        The ``.tflite`` model.
    target : {"host", "cortex-m", "cortex-m-cmsis"} or Target
        The TFLM build to model.
    order : sequence of int, optional
        Execution order of subgraph 0 (default: the file's order).

    Returns
    -------
    MemoryPlan

    Raises
    ------
    FlatbufferError
        If the model cannot be parsed.
    UnsupportedModelError
        If TFLM would refuse to allocate the model on this target.
    """
    model = read_model(model)
    tgt = get_target(target)
    n_ops = len(model.main.operators)
    if order is None:
        order = tuple(range(n_ops))
    else:
        order = tuple(int(i) for i in order)
        if sorted(order) != list(range(n_ops)):
            raise ValueError(
                f"order must be a permutation of 0..{n_ops - 1}. Received: order={list(order)}"
            )
    scratch, kernels = scratch_requests(model, tgt)
    buffers = allocation_lifetimes(model, scratch, order)
    placed, head = _place(buffers)
    trace = simulate_allocation(model, tgt, kernels, head, len(placed))
    reasons = list(trace.unmodelled)
    bound = trace.bound_bytes
    for sg in model.subgraphs:
        for op in sg.operators:
            req = kernels[sg.index][op.index]
            for why in req.unmodelled:
                reason = f"operator {op.index} of subgraph {sg.index}: {why}"
                reasons.append(reason)
                logger.warning("Memory model not exact: %s", reason)
            bound += req.bound_bytes if req.unmodelled else 0
    timeline = _timeline(placed, n_ops)
    op_steps = timeline[1:] or (0,)
    peak_op = max(range(len(op_steps)), key=op_steps.__getitem__) if n_ops else -1
    return MemoryPlan(
        target=tgt.name,
        planned_bytes=head,
        persistent_bytes=trace.persistent_bytes,
        arena_bytes=head + trace.persistent_bytes,
        min_arena_bytes=trace.min_arena_bytes + align_up(bound, 16),
        buffers=placed,
        order=order,
        timeline=timeline,
        peak_op=peak_op,
        allocations=trace.allocations,
        exact=not reasons,
        reasons=tuple(reasons),
    )
