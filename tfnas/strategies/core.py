"""Strategy logic that needs no TensorFlow: screening and tournament selection.

The keras-tuner oracles (which import TensorFlow through keras-tuner) are thin
shells around these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from tfnas.genome import Genome, analyze
from tfnas.objectives import Constraints, scalarise

__all__ = [
    "ESTIMATE_SLACK",
    "LATENCY_SLACK",
    "screen",
    "resource_scales",
    "tournament",
    "HYBRID_METRICS",
    "average_ranks",
    "hybrid_scores",
    "prune_edges",
]

#: Screening divides the estimate by this slack before comparing it with an arena bound, so
#: that a candidate is rejected only if even the largest over-estimate measured (1.20x the
#: converted planned bytes over 500 genomes; docs/benchmarks.md) would still break the bound.
ESTIMATE_SLACK = 1.25

#: Screening divides the genome's modelled latency by this slack before comparing it with a
#: latency bound: the genome estimate of the latency model against the same model on the
#: converted flatbuffer agreed within 0.995-1.004 on 40 genomes (tools/bench/latency_calibration.py,
#: docs/benchmarks.md); QAT's extra requantize operators only make the genome estimate lower.
LATENCY_SLACK = 1.05


def screen(genome: Genome, constraints: Constraints) -> dict:
    """Estimated metrics of ``genome`` and the bounds they already break.

    Returns ``{"estimate": {...}, "violations": {...}}``. Only bounds that are
    surely broken count: the arena bound is checked on the estimated planned
    bytes divided by :data:`ESTIMATE_SLACK` (planned bytes are a lower bound of
    every arena measure; persistent bytes need the flatbuffer), the weight and
    flash bounds on the parameter count (int8 stores at least a byte per
    parameter, and the flatbuffer holds the weights), MACs exactly. With a
    latency bound, the genome's modelled latency on the constraints' board (with
    their calibration, if any) divided by :data:`LATENCY_SLACK` is checked too.
    """
    from tfnas.memory.estimate import estimate_memory

    costs = analyze(genome)
    memory = estimate_memory(genome)
    estimate = {
        "planned_bytes": memory.planned_bytes,
        "macs": costs.macs,
        "params": costs.params,
    }
    checked = {
        "macs": costs.macs,
        "weights_bytes": costs.params,
        "flash_bytes": costs.params,
        constraints.arena_metric: estimate["planned_bytes"] / ESTIMATE_SLACK,
    }
    if constraints.max_latency_ms is not None:
        from tfnas.objectives.latency import estimate_genome_latency, kernels_for_target

        estimate["latency_ms"] = estimate_genome_latency(
            genome, constraints.latency_device, kernels=kernels_for_target(constraints.target),
            estimate=memory, calibration=constraints.latency_calibration,
        )  # fmt: skip
        checked["latency_ms"] = estimate["latency_ms"] / LATENCY_SLACK
    return {"estimate": estimate, "violations": constraints.violations(checked)}


def resource_scales(
    objectives: Sequence[tuple[str, str]],
    constraints: Constraints,
    population: Sequence[Mapping[str, float]],
) -> dict[str, float]:
    """Normalisers for scalarisation: each resource's bound, else its largest value seen."""
    bounds = constraints.bounds()
    scales = {}
    for key, direction in objectives:
        if direction == "max":
            scales[key] = 1.0
        else:
            seen = [float(m.get(key, 0.0)) for m in population]
            scales[key] = float(bounds.get(key) or max([*seen, 1.0]))
    return scales


def tournament(
    population: Sequence[Mapping[str, float]],
    objectives: Sequence[tuple[str, str]],
    constraints: Constraints,
    sample_size: int,
    rng: np.random.Generator,
) -> int:
    """Index of the winner among ``sample_size`` random members (μNAS selection).

    Objective weights are drawn afresh from a flat Dirichlet at every call, and
    members are ranked by :func:`tfnas.objectives.scalarise` (broken
    constraints penalised), lowest score winning.
    """
    if not population:
        raise ValueError("A tournament needs a non-empty population. Received: 0 members")
    picks = rng.choice(len(population), size=min(sample_size, len(population)), replace=False)
    weights = rng.dirichlet(np.ones(len(objectives)))
    scales = resource_scales(objectives, constraints, population)
    scores = {
        int(i): scalarise(population[i], objectives, weights, scales, constraints) for i in picks
    }
    return min(scores, key=scores.__getitem__)


# ------------------------------------------------------------------ MicroNAS

#: Metrics of the hybrid objective and their directions; ``macs``, ``latency_ms``,
#: ``params`` and ``width`` count with their weights (0 by default). ``params`` (more is
#: better) is tfnas's capacity term: on the micro and cell spaces it raised the hybrid's
#: Kendall τ against trained int8 accuracy from +0.62 to +0.68 and from +0.15 to +0.31.
#: ``width`` (more is better) is the bottleneck width
#: (:func:`tfnas.genome.costs.narrowest_channels`): on the micro space it raised the
#: hybrid's τ on CIFAR-10 from +0.45 to +0.56 (docs/benchmarks.md).
HYBRID_METRICS = (
    ("ntk_cond", "min"),
    ("regions", "max"),
    ("macs", "min"),
    ("latency_ms", "min"),
    ("params", "max"),
    ("width", "max"),
)


def average_ranks(values: Sequence[float], direction: str = "min") -> np.ndarray:
    """0-based ranks, best first (``"min"``: smallest best), ties sharing their mean rank.

    ``nan`` and ``inf`` rank worst in ``"min"`` order (an infinite κ is a singular NTK);
    ``nan`` ranks worst in ``"max"`` order too.

    Examples
    --------
    >>> average_ranks([3.0, 1.0, 1.0, float("inf")]).tolist()
    [2.0, 0.5, 0.5, 3.0]
    """
    v = np.asarray(values, dtype=float)
    key = (
        np.where(np.isnan(v), np.inf, v)
        if direction == "min"
        else np.where(np.isnan(v), np.inf, -v)
    )
    order = np.argsort(key, kind="stable")
    ranks = np.empty(len(v))
    sorted_keys = key[order]
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and sorted_keys[j + 1] == sorted_keys[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2
        i = j + 1
    return ranks


def hybrid_scores(
    records: Sequence[Mapping[str, float]], weights: Mapping[str, float] | None = None
) -> np.ndarray:
    """The MicroNAS hybrid objective of each record (lower is better).

    ``rank(κ, lower better) + rank(regions, higher better)`` plus
    ``weights["macs"] * rank(MACs)``, ``weights["latency_ms"] * rank(latency)`` and
    ``weights["params"] * rank(parameters, more is better)`` and
    ``weights["width"] * rank(bottleneck width, more is better)``, ranks taken within
    ``records``.
    """
    weights = {"ntk_cond": 1.0, "regions": 1.0, "macs": 0.0, "latency_ms": 0.0, "params": 0.0,
               "width": 0.0, **(weights or {})}  # fmt: skip
    unknown = sorted(set(weights) - {m for m, _ in HYBRID_METRICS})
    if unknown:
        raise ValueError(
            f"Unknown hybrid weights {unknown}. Expected some of {[m for m, _ in HYBRID_METRICS]}"
        )
    total = np.zeros(len(records))
    for metric, direction in HYBRID_METRICS:
        if weights[metric]:
            total += weights[metric] * average_ranks([r[metric] for r in records], direction)
    return total


def prune_edges(
    edges: Sequence[Sequence[str]],
    evaluate: Callable[[tuple[frozenset, ...]], Mapping[str, float] | None],
    *,
    weights: Mapping[str, float] | None = None,
    violation: Callable[[tuple[frozenset, ...]], float] | None = None,
) -> list[dict]:
    """MicroNAS's pruning search over a supernet: one op per edge at the end.

    Starting from ``edges`` (each edge's candidate ops), every round evaluates,
    for each edge with more than one op and each of its ops, the supernet with
    that op removed. The candidates of a round are ranked together by
    :func:`hybrid_scores`; then each edge loses the op whose removal scores best
    (hurts the hybrid objective least). Rounds repeat until each edge holds one op.

    Parameters
    ----------
    edges:
        Candidate ops per edge.
    evaluate:
        Metrics of a supernet (``ntk_cond``, ``regions``, ``macs``, ``latency_ms``),
        or ``None`` if removing the op leaves no valid network (never chosen).
    weights:
        Hybrid weights (see :func:`hybrid_scores`).
    violation:
        How far a supernet is over the device bounds (0 when it fits); removals
        that leave less violation win over the hybrid objective, so the search
        ends inside the bounds whenever a path to them exists.

    Returns
    -------
    list of dict
        One entry per round: ``{"edges": [...after the round...], "removed": {edge: op}}``.

    Raises
    ------
    ValueError
        If some edge has no op, or no removal of a round gives a valid network.
    """
    current = tuple(frozenset(e) for e in edges)
    if any(not e for e in current):
        raise ValueError(
            f"Every edge needs at least one op. Received: {[sorted(e) for e in current]}"
        )
    history = []
    while any(len(e) > 1 for e in current):
        candidates = []  # (edge, op, edges after removal, metrics)
        for i, ops in enumerate(current):
            if len(ops) < 2:
                continue
            for op in sorted(ops):
                after = (*current[:i], ops - {op}, *current[i + 1 :])
                metrics = evaluate(after)
                if metrics is not None:
                    candidates.append((i, op, after, metrics))
        if not candidates:
            raise ValueError(
                f"No op can be removed without breaking the network. Received: {[sorted(e) for e in current]}"
            )
        scores = hybrid_scores([c[3] for c in candidates], weights)
        over = [violation(c[2]) if violation else 0.0 for c in candidates]
        removed = {}
        for i in sorted({c[0] for c in candidates}):
            mine = [k for k, c in enumerate(candidates) if c[0] == i]
            best = min(mine, key=lambda k: (over[k], scores[k], candidates[k][1]))
            removed[i] = candidates[best][1]
        current = tuple(
            ops - {removed[i]} if i in removed else ops for i, ops in enumerate(current)
        )
        history.append({"edges": [sorted(e) for e in current], "removed": removed})
    return history
