"""Multi-objective helpers: Pareto front, hypervolume, constraint-aware scalarisation.

Objectives are given as ``(metric key, "min" | "max")`` pairs, e.g.
``[("val_accuracy", "max"), ("arena_bytes", "min"), ("flash_bytes", "min"),
("macs", "min")]``. Internally everything is turned into minimisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from tfnas.objectives.constraints import Constraints

__all__ = ["Objective", "dominates", "pareto_front", "front_2d", "hypervolume", "scalarise"]

Objective = tuple[str, str]


def _as_min(metrics: Mapping[str, float], objectives: Sequence[Objective]) -> tuple[float, ...]:
    values = []
    for key, direction in objectives:
        if direction not in ("min", "max"):
            raise ValueError(
                f"Objective direction must be 'min' or 'max'. Received: ({key!r}, {direction!r})"
            )
        if key not in metrics:
            raise KeyError(f"Metric {key!r} is missing. Received metrics: {sorted(metrics)}")
        value = float(metrics[key])
        values.append(value if direction == "min" else -value)
    return tuple(values)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether ``a`` Pareto-dominates ``b`` (minimisation): no worse anywhere, better somewhere."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )


def front_2d(items: Sequence, cost: Callable, value: Callable, name: Callable) -> list:
    """The items on the 2-D front of ``value`` (max) against ``cost`` (min), by increasing cost.

    An item is on it when no other item has at most its cost and a higher
    value: walking by increasing cost, the value strictly increases (ties:
    the lower ``name`` first).

    Examples
    --------
    >>> pts = [(10, 0.9, "a"), (5, 0.8, "b"), (8, 0.7, "c"), (5, 0.8, "d")]
    >>> front_2d(pts, lambda p: p[0], lambda p: p[1], lambda p: p[2])
    [(5, 0.8, 'b'), (10, 0.9, 'a')]
    """
    front, best = [], -math.inf
    for item in sorted(items, key=lambda i: (cost(i), -value(i), name(i))):
        if value(item) > best:
            front.append(item)
            best = value(item)
    return front


def pareto_front(
    points: Sequence[Mapping[str, float]], objectives: Sequence[Objective]
) -> list[int]:
    """Indices of the non-dominated points, in input order.

    Duplicates of a non-dominated point are all kept.

    Examples
    --------
    >>> pts = [{"acc": 0.9, "ram": 10}, {"acc": 0.8, "ram": 5}, {"acc": 0.7, "ram": 8}]
    >>> pareto_front(pts, [("acc", "max"), ("ram", "min")])
    [0, 1]
    """
    vectors = [_as_min(p, objectives) for p in points]
    return [
        i
        for i, v in enumerate(vectors)
        if not any(dominates(w, v) for j, w in enumerate(vectors) if j != i)
    ]


def hypervolume(
    points: Sequence[Mapping[str, float]],
    objectives: Sequence[Objective],
    reference: Mapping[str, float],
) -> float:
    """Exact hypervolume dominated by ``points`` and bounded by ``reference``.

    The reference is the worst acceptable value of each objective (e.g.
    accuracy 0, arena at its bound). Points that do not strictly beat the
    reference in every objective add nothing. Computed by slicing one
    objective at a time, exact in any dimension (fine for hundreds of points
    in four objectives).
    """
    ref = _as_min(reference, objectives)
    vectors = [
        v
        for v in (_as_min(p, objectives) for p in points)
        if all(x < r for x, r in zip(v, ref, strict=True))
    ]
    return _slice_volume(_nondominated(vectors), ref)


def _nondominated(vectors: list[tuple[float, ...]]) -> list[tuple[float, ...]]:
    unique = sorted(set(vectors))
    return [v for v in unique if not any(dominates(w, v) for w in unique if w != v)]


def _slice_volume(vectors: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    if not vectors:
        return 0.0
    if len(ref) == 1:
        return ref[0] - min(v[0] for v in vectors)
    ordered = sorted(vectors, key=lambda v: v[-1])
    volume = 0.0
    for i, v in enumerate(ordered):
        upper = ordered[i + 1][-1] if i + 1 < len(ordered) else ref[-1]
        if upper > v[-1]:
            slab = _nondominated([w[:-1] for w in ordered[: i + 1]])
            volume += (upper - v[-1]) * _slice_volume(slab, ref[:-1])
    return volume


def scalarise(
    metrics: Mapping[str, float],
    objectives: Sequence[Objective],
    weights: Sequence[float],
    scales: Mapping[str, float],
    constraints: Constraints | None = None,
    *,
    penalty: float = 10.0,
) -> float:
    """A single score to minimise: weighted objectives plus constraint penalties.

    Each objective is divided by its scale (e.g. a resource by its bound,
    accuracy by 1) and turned into minimisation (``max`` objectives count as
    ``1 - value / scale``). Every broken constraint adds ``penalty`` times its
    relative excess, so infeasible candidates rank behind feasible ones unless
    they are far better, as μNAS's constraint-aware selection does.
    """
    if len(weights) != len(objectives):
        raise ValueError(
            f"One weight per objective is needed. Received: {len(weights)} weights for "
            f"{len(objectives)} objectives"
        )
    score = 0.0
    for (key, direction), weight in zip(objectives, weights, strict=True):
        value = float(metrics[key]) / float(scales.get(key, 1.0))
        score += weight * (value if direction == "min" else 1.0 - value)
    if constraints is not None:
        score += penalty * sum(constraints.violations(metrics).values())
    return score
