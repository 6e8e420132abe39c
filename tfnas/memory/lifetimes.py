"""Which buffers TFLM plans, and when each one is live.

This follows TFLM's ``AllocationInfoBuilder``: one allocation scope per
operator (graph inputs and outputs are created at scope 0, operator ``i``'s
outputs at its scope), a tensor lives until its last consumer, graph outputs to
the end of the subgraph, and control-flow operators (IF, WHILE, CALL_ONCE)
enter their subgraphs in place. Scratch buffers live during their operator.
Sizes are rounded up to 16 bytes (``MicroArenaBufferAlignment``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tfnas.errors import UnsupportedModelError
from tfnas.tflite.model import Model

__all__ = ["ScratchRequest", "PlannedBuffer", "allocation_lifetimes", "ARENA_ALIGNMENT"]

ARENA_ALIGNMENT = 16

_CONTROL_FLOW = {
    "IF": ("then_subgraph_index", "else_subgraph_index"),
    "WHILE": ("cond_subgraph_index", "body_subgraph_index"),
    "CALL_ONCE": ("init_subgraph_index",),
}


def align_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class ScratchRequest:
    """A kernel's ``RequestScratchBufferInArena`` call."""

    subgraph: int
    op: int
    bytes: int


@dataclass(frozen=True)
class PlannedBuffer:
    """One buffer handed to the planner.

    ``kind`` is ``"tensor"`` or ``"scratch"``; ``tensor`` is the tensor index
    (-1 for scratch), ``op`` the operator that requested a scratch buffer
    (-1 for tensors). ``size`` is rounded up to 16, ``bytes`` is the raw size.
    """

    kind: str
    subgraph: int
    tensor: int
    op: int
    bytes: int
    size: int
    first: int
    last: int


def allocation_lifetimes(
    model: Model, scratch: Sequence[ScratchRequest] = (), order: Sequence[int] | None = None
) -> list[PlannedBuffer]:
    """List the buffers TFLM plans, in the order it adds them to the planner.

    Parameters
    ----------
    model : Model
        The parsed model.
    scratch : sequence of ScratchRequest
        Kernel scratch requests, in request order.
    order : sequence of int, optional
        An execution order for subgraph 0 (a permutation of its operator
        indices); the file's order by default.

    Returns
    -------
    list of PlannedBuffer
        Tensor buffers of every subgraph by index, then scratch buffers.
    """
    n_sub = len(model.subgraphs)
    first: list[list[int]] = [[-1] * len(sg.tensors) for sg in model.subgraphs]
    last: list[list[int]] = [[-1] * len(sg.tensors) for sg in model.subgraphs]
    s_first = [-1] * len(scratch)
    s_last = [-1] * len(scratch)
    scope = 0
    depth = 0

    def mark(si: int, op_order: Sequence[int]) -> None:
        nonlocal scope, depth
        depth += 1
        if depth > 64:
            raise UnsupportedModelError("Control-flow subgraphs nest deeper than 64 levels.")
        sg = model.subgraphs[si]
        f, la = first[si], last[si]
        for t in (*sg.inputs, *sg.outputs):
            if t >= 0:
                f[t] = la[t] = scope
        for oi in op_order:
            scope += 1
            op = sg.operators[oi]
            for t in op.outputs:
                if t >= 0:
                    f[t] = la[t] = scope
            start = scope
            for key in _CONTROL_FLOW.get(op.opcode, ()):
                sub = int(op.options.get(key, -1))
                if not 0 <= sub < n_sub:
                    raise UnsupportedModelError(
                        f"{op.opcode} operator {oi} names subgraph {sub}, but the model has "
                        f"{n_sub} subgraphs."
                    )
                scope += 1
                mark(sub, range(len(model.subgraphs[sub].operators)))
            for t in (*op.inputs, *op.outputs):
                if t >= 0:
                    la[t] = scope
            for k, req in enumerate(scratch):
                if req.op == oi and req.subgraph == si:
                    s_first[k], s_last[k] = start, scope
        for t in sg.outputs:
            if t >= 0:
                la[t] = scope
        depth -= 1

    main_order = list(range(len(model.main.operators))) if order is None else list(order)
    mark(0, main_order)

    out: list[PlannedBuffer] = []
    for si, sg in enumerate(model.subgraphs):
        for t in sg.tensors:
            if t.is_constant or t.is_variable or t.nbytes == 0:
                continue
            size = align_up(t.nbytes, ARENA_ALIGNMENT)
            out.append(
                PlannedBuffer(
                    "tensor", si, t.index, -1, t.nbytes, size, first[si][t.index], last[si][t.index]
                )
            )
    for k, req in enumerate(scratch):
        out.append(
            PlannedBuffer(
                "scratch",
                req.subgraph,
                -1,
                req.op,
                req.bytes,
                align_up(req.bytes, ARENA_ALIGNMENT),
                s_first[k],
                s_last[k],
            )
        )
    return out
