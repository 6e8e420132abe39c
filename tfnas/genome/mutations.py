"""Mutations for evolutionary search (μNAS-style morphisms).

Each mutation takes ``(genome, space, rng)`` and returns a new, valid genome,
or raises :class:`~tfnas.errors.MutationError` saying why it cannot apply. The
space supplies the choices (ops, channel bounds, pooling kinds); whether the
child stays inside the space is checked by :meth:`SearchSpace.mutate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from tfnas.errors import MutationError, SearchSpaceError
from tfnas.genome.genome import IN, OUT, Downsample, Genome, Head, clone_stages, stage_order
from tfnas.genome.ops import NODE_OPS

if TYPE_CHECKING:
    from tfnas.genome.spaces import SearchSpace

__all__ = [
    "add_node",
    "remove_node",
    "add_edge",
    "remove_edge",
    "change_op",
    "change_kernel",
    "change_channels",
    "change_stride",
    "change_pooling",
    "change_dense",
]


def _pick(rng: np.random.Generator, items: list, what: str):
    if not items:
        raise MutationError(f"Nothing to mutate: the genome has no {what}.")
    return items[int(rng.integers(len(items)))]


def _rebuild(genome: Genome, name: str, stages=None, downsamples=None, head=None) -> Genome:
    try:
        return Genome(
            stages if stages is not None else clone_stages(genome),
            downsamples if downsamples is not None else list(genome.downsamples),
            head if head is not None else genome.head,
            input_shape=genome.input_shape,
            num_classes=genome.num_classes,
        )
    except MutationError:
        raise
    except SearchSpaceError as e:
        raise MutationError(f"{name} would make the genome invalid: {e}") from None


def _nodes(genome: Genome, where: Callable[[dict], bool] = lambda a: True) -> list[tuple[int, str]]:
    return [
        (s, n) for s, g in enumerate(genome.stages) for n in stage_order(g) if where(g.nodes[n])
    ]


def _fresh_id(graph: nx.DiGraph) -> str:
    i = graph.number_of_nodes()
    while f"n{i}" in graph:
        i += 1
    return f"n{i}"


def add_node(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Insert a new node on a random edge ``u -> v`` (giving ``u -> new -> v``)."""
    stages = clone_stages(genome)
    s = int(rng.integers(len(stages)))
    graph = stages[s]
    u, v = _pick(rng, sorted(graph.edges), "edges")
    _, outputs = genome.stage_shapes(s, genome.stage_input_shape(s))
    node = _fresh_id(graph)
    graph.add_node(node, **space.new_node(rng, s, outputs[u][2]))
    graph.remove_edge(u, v)
    graph.add_edges_from([(u, node), (node, v)])
    return _rebuild(genome, "add_node", stages=stages)


def remove_node(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Remove a node, wiring each of its inputs to each of its successors."""
    s, node = _pick(rng, _nodes(genome), "nodes")
    stages = clone_stages(genome)
    graph = stages[s]
    if graph.number_of_nodes() <= 3:
        raise MutationError(
            f"remove_node: stage {s} has a single node {node!r} and cannot lose it."
        )
    preds, succs = list(graph.predecessors(node)), list(graph.successors(node))
    graph.remove_node(node)
    graph.add_edges_from((p, q) for p in preds for q in succs if not (p == IN and q == OUT))
    return _rebuild(genome, "remove_node", stages=stages)


def add_edge(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Add an edge ``u -> v`` that keeps the stage acyclic."""
    stages = clone_stages(genome)
    candidates = []
    for s, graph in enumerate(stages):
        order = [IN, *stage_order(graph), OUT]
        candidates += [
            (s, u, v)
            for i, u in enumerate(order)
            for v in order[i + 1 :]
            if not graph.has_edge(u, v) and not (u == IN and v == OUT)
        ]
    s, u, v = _pick(rng, candidates, "missing forward edges")
    stages[s].add_edge(u, v)
    return _rebuild(genome, "add_edge", stages=stages)


def remove_edge(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Remove an edge whose ends keep at least one input and one output."""
    stages = clone_stages(genome)
    candidates = [
        (s, u, v)
        for s, g in enumerate(stages)
        for u, v in g.edges
        if g.out_degree(u) > 1 and g.in_degree(v) > 1
    ]
    s, u, v = _pick(
        rng, candidates, "removable edges (every edge is a node's only input or output)"
    )
    stages[s].remove_edge(u, v)
    return _rebuild(genome, "remove_edge", stages=stages)


def change_op(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Give a node another op from the space's choices, keeping channels and stride."""
    s, node = _pick(rng, _nodes(genome, lambda a: a["op"] != "identity"), "op nodes")
    stages = clone_stages(genome)
    attrs = stages[s].nodes[node]
    current = {k: attrs[k] for k in ("op", "kernel") if k in attrs}
    choices = [
        c for c in space.op_choices() if {k: c[k] for k in ("op", "kernel") if k in c} != current
    ]
    choice = dict(_pick(rng, choices, "alternative ops"))
    spec = NODE_OPS[choice["op"]]
    if spec.has_channels:
        choice["channels"] = attrs.get("channels", 8)
    if spec.strides:
        choice["stride"] = choice.get("stride", attrs.get("stride", 1))
    choice["merge"] = attrs.get("merge", "concat")
    attrs.clear()
    attrs.update(choice)
    return _rebuild(genome, "change_op", stages=stages)


def change_kernel(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Switch a node's kernel to another size its op and the space allow."""
    s, node = _pick(rng, _nodes(genome, lambda a: "kernel" in a), "nodes with a kernel")
    stages = clone_stages(genome)
    attrs = stages[s].nodes[node]
    allowed = {c["kernel"] for c in space.op_choices() if c["op"] == attrs["op"] and "kernel" in c}
    attrs["kernel"] = int(_pick(rng, sorted(allowed - {attrs["kernel"]}), "other kernel sizes"))
    return _rebuild(genome, "change_kernel", stages=stages)


def change_channels(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Grow or shrink a node's channels by a small step (up to a quarter, at least 1)."""
    s, node = _pick(rng, _nodes(genome, lambda a: "channels" in a), "nodes with channels")
    stages = clone_stages(genome)
    attrs = stages[s].nodes[node]
    low, high = space.channel_bounds()
    step = max(1, attrs["channels"] // 4)
    options = [c for c in range(attrs["channels"] - step, attrs["channels"] + step + 1)
               if low <= c <= high and c != attrs["channels"]]  # fmt: skip
    attrs["channels"] = int(_pick(rng, options, "channel counts within bounds"))
    return _rebuild(genome, "change_channels", stages=stages)


def change_stride(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Toggle the stride (1 <-> 2) of a node, and of its block's projection if it has one."""
    s, node = _pick(rng, _nodes(genome, lambda a: "stride" in a), "nodes with a stride")
    stages = clone_stages(genome)
    graph = stages[s]
    stride = 3 - graph.nodes[node]["stride"]
    graph.nodes[node]["stride"] = stride
    if "proj" in graph and node != "proj":
        graph.nodes["proj"]["stride"] = stride
    return _rebuild(genome, "change_stride", stages=stages)


def change_pooling(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Change one downsample's kind, or the head's pooling (gap <-> flatten)."""
    targets = list(range(len(genome.downsamples))) + ["head"]
    target = _pick(rng, targets, "pooling")
    if target == "head":
        pool = "flatten" if genome.head.pool == "gap" else "gap"
        return _rebuild(genome, "change_pooling", head=Head(pool, genome.head.hidden))
    downsamples = list(genome.downsamples)
    current = downsamples[target].op
    op = _pick(rng, [o for o in space.downsample_choices() if o != current], "other pooling kinds")
    downsamples[target] = Downsample(str(op))
    return _rebuild(genome, "change_pooling", downsamples=downsamples)


def change_dense(genome: Genome, space: SearchSpace, rng: np.random.Generator) -> Genome:
    """Add or remove a hidden dense layer, or resize one by a small step."""
    hidden = list(genome.head.hidden)
    action = _pick(rng, ["add", "remove", "resize"] if hidden else ["add"], "dense layers")
    if action == "add":
        hidden.insert(int(rng.integers(len(hidden) + 1)), int(rng.integers(8, 129)))
    elif action == "remove":
        hidden.pop(int(rng.integers(len(hidden))))
    else:
        i = int(rng.integers(len(hidden)))
        step = max(1, hidden[i] // 4)
        hidden[i] = max(1, hidden[i] + int(rng.choice([-step, step])))
    return _rebuild(genome, "change_dense", head=Head(genome.head.pool, tuple(hidden)))
