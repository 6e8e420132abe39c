"""Find the operator order of subgraph 0 with the smallest planned arena.

The planned size of an order is what TFLM's greedy planner makes of it, which
is never below the peak of live bytes over the steps. :func:`best_order` first
computes, by dynamic programming over down-sets of the operator DAG, the
smallest achievable peak of live bytes from every down-set; it then runs a
branch and bound over topological orders that evaluates complete orders with
the real greedy planner and prunes any prefix whose bound cannot beat the best
planned size found. Graphs whose down-sets are too many for the DP fall back to
a greedy heuristic (each step runs the operator that frees the most memory),
and the file's own order is always a candidate, so the result is never worse.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

from tfnas.memory.arena import plan_head, scratch_requests
from tfnas.memory.lifetimes import ARENA_ALIGNMENT, align_up
from tfnas.memory.targets import get_target
from tfnas.tflite.model import Model, read_model

__all__ = ["ReorderResult", "best_order", "live_peak"]

logger = logging.getLogger("tfnas")


@dataclass(frozen=True)
class ReorderResult:
    """The best order found and its planned size, next to the original's.

    ``exact`` is True when the search proved that no topological order has a
    smaller planned size.
    """

    order: tuple[int, ...]
    planned_bytes: int
    original_planned_bytes: int
    exact: bool
    evaluated: int


class _Graph:
    """Operator DAG of subgraph 0 with live-byte bookkeeping on bitmasks."""

    def __init__(self, model: Model, scratch_bytes: list[int]) -> None:
        sg = model.main
        self.n = n = len(sg.operators)
        size = {
            t.index: align_up(t.nbytes, ARENA_ALIGNMENT)
            for t in sg.tensors
            if not t.is_constant and not t.is_variable and t.nbytes
        }
        producer: dict[int, int] = {}
        for op in sg.operators:
            for t in op.outputs:
                producer[t] = op.index
        consumers: dict[int, int] = {}
        self.preds = [0] * n
        for op in sg.operators:
            for t in op.inputs:
                if t in producer and producer[t] != op.index:
                    self.preds[op.index] |= 1 << producer[t]
                if t >= 0:
                    consumers[t] = consumers.get(t, 0) | (1 << op.index)
        outputs = set(sg.outputs)
        self.out_bytes = [sum(size.get(t, 0) for t in set(op.outputs)) for op in sg.operators]
        self.out_kept = [
            sum(size.get(t, 0) for t in set(op.outputs) if t in consumers or t in outputs)
            for op in sg.operators
        ]
        self.scratch = scratch_bytes
        # Tensors an op may free: (size, consumer mask) of its inputs that are planned.
        self.frees = [
            [
                (size[t], consumers[t])
                for t in set(op.inputs)
                if t in size and t not in outputs and (t in producer or t in sg.inputs)
            ]
            for op in sg.operators
        ]
        self.start = sum(size.get(t, 0) for t in set(sg.inputs) | outputs if t not in producer)
        self.full = (1 << n) - 1

    def step(self, done: int, live: int, v: int) -> tuple[int, int]:
        """Memory while ``v`` runs after ``done``, and live bytes after it."""
        now = live + self.out_bytes[v] + self.scratch[v]
        after = live + self.out_kept[v]
        new_done = done | (1 << v)
        for s, cons in self.frees[v]:
            if cons & new_done == cons:
                after -= s
        return now, after

    def ready(self, done: int) -> list[int]:
        return [
            v for v in range(self.n) if not done >> v & 1 and self.preds[v] & done == self.preds[v]
        ]


def live_peak(model: Model | bytes | str | os.PathLike, order: list[int] | None = None) -> int:
    """Peak of live planned bytes over the steps of ``order`` (a planner lower bound)."""
    model = read_model(model)
    g = _Graph(model, [0] * len(model.main.operators))
    done, live, peak = 0, g.start, g.start
    for v in order if order is not None else range(g.n):
        now, live = g.step(done, live, v)
        done |= 1 << v
        peak = max(peak, now)
    return peak


def best_order(
    model: Model | bytes | str | os.PathLike,
    target: str = "host",
    max_states: int = 200_000,
    max_evaluations: int = 5_000,
    time_limit: float = 20.0,
) -> ReorderResult:
    """Search the topological order of subgraph 0 with the smallest planned bytes.

    Parameters
    ----------
    model : Model, bytes or path-like
        The model.
    target : str
        Target whose scratch buffers count in the plan.
    max_states : int
        Down-sets the exact DP may visit before falling back to the heuristic.
    max_evaluations : int
        Complete orders the branch and bound may evaluate with the planner.
    time_limit : float
        Seconds after which the search returns the best order found so far.

    Returns
    -------
    ReorderResult
    """
    model = read_model(model)
    tgt = get_target(target)
    scratch, _ = scratch_requests(model, tgt)
    per_op = [0] * len(model.main.operators)
    for r in scratch:
        if r.subgraph == 0:
            per_op[r.op] += align_up(r.bytes, ARENA_ALIGNMENT)
    g = _Graph(model, per_op)
    original = tuple(range(g.n))
    original_bytes = plan_head(model, scratch, original)
    best = [original_bytes, original]
    evaluated = [1]
    deadline = time.monotonic() + time_limit

    def evaluate(order: tuple[int, ...]) -> None:
        evaluated[0] += 1
        size = plan_head(model, scratch, order)
        if size < best[0]:
            best[0], best[1] = size, order

    memo: dict[int, int] = {}

    def min_peak(done: int, live: int) -> int:
        """Smallest achievable peak of live bytes from ``done`` to the end."""
        if done == g.full:
            return 0
        got = memo.get(done)
        if got is not None:
            return got
        if len(memo) >= max_states:
            raise _TooLarge
        result = None
        for v in g.ready(done):
            now, after = g.step(done, live, v)
            cand = max(now, min_peak(done | 1 << v, after))
            result = cand if result is None else min(result, cand)
        memo[done] = result if result is not None else 0
        return memo[done]

    greedy = _greedy_order(g)
    evaluate(greedy)
    try:
        if g.n > 400:
            raise _TooLarge
        lower = max(g.start, min_peak(0, g.start))
    except _TooLarge:
        logger.info("Reorder: %d operators exceed the exact search; using a heuristic.", g.n)
        return ReorderResult(best[1], best[0], original_bytes, False, evaluated[0])

    exact = [True]

    def search(done: int, live: int, peak: int, prefix: list[int]) -> None:
        if best[0] <= lower:
            return
        if evaluated[0] >= max_evaluations or time.monotonic() > deadline:
            exact[0] = False
            return
        if done == g.full:
            evaluate(tuple(prefix))
            return
        options = []
        for v in g.ready(done):
            now, after = g.step(done, live, v)
            bound = max(peak, now, memo.get(done | 1 << v, 0))
            options.append((bound, v, after, max(peak, now)))
        for bound, v, after, new_peak in sorted(options):
            if bound >= best[0]:
                break
            prefix.append(v)
            search(done | 1 << v, after, new_peak, prefix)
            prefix.pop()

    search(0, g.start, g.start, [])
    proved = exact[0] or best[0] <= lower
    return ReorderResult(best[1], best[0], original_bytes, proved, evaluated[0])


class _TooLarge(Exception):
    pass


def _greedy_order(g: _Graph) -> tuple[int, ...]:
    done, live, order = 0, g.start, []
    while done != g.full:
        choices = []
        for v in g.ready(done):
            now, after = g.step(done, live, v)
            choices.append((after, now, v))
        _, _, v = min(choices)
        _, live = g.step(done, live, v)
        done |= 1 << v
        order.append(v)
    return tuple(order)
