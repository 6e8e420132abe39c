"""A cell search space after NAS-Bench-201, the setting of MicroNAS.

Dong and Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural
Architecture Search", ICLR 2020: a cell is a DAG over four nodes; node ``j``
sums ``op(node_i)`` over the six edges ``i < j``, each edge picking one of
``none``, ``skip``, ``conv1x1``, ``conv3x3``, ``avgpool3x3``; node 0 is the
cell input and node 3 its output. The network is a stem conv, then stages of
``cells`` identical cells, stages joined by a residual reduction block (a
3x3 stride-2 conv and a 3x3 conv on one path, a 2x2 stride-2 average pool and
a 1x1 conv on the shortcut, added), then global average pooling and the
classifier.

Every genome of this space is an ordinary tfnas :class:`~tfnas.genome.Genome`
(edge ops become op nodes, cell nodes become ``identity`` nodes merging by
``add``), so it is built, converted, estimated and measured like the others.
Convolutions are conv-BN-ReLU (NAS-Bench-201 uses ReLU-conv-BN; the converter
fuses ours into one int8 CONV_2D). A node that receives nothing (all its
edges ``none``) is zero and is dropped with the edges leaving it; a cell whose
output receives nothing is not a network, and such genotypes are not in the
space.

The same builder takes several ops per edge (summed): the *supernet* that
MicroNAS's pruning search starts from (:meth:`CellSpace.supernet`).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import networkx as nx
import numpy as np

from tfnas.errors import MutationError, SearchSpaceError
from tfnas.genome.genome import IN, OUT, Downsample, Genome, Head
from tfnas.genome.spaces import SearchSpace, _rng

__all__ = ["CELL_OPS", "CELL_EDGES", "CellSpace"]

CELL_OPS = ("none", "skip", "conv1x1", "conv3x3", "avgpool3x3")
#: The six edges (source, target) in NAS-Bench-201's order.
CELL_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_ATTRS = {
    "conv1x1": {"op": "conv", "kernel": 1, "stride": 1},
    "conv3x3": {"op": "conv", "kernel": 3, "stride": 1},
    "avgpool3x3": {"op": "avgpool", "kernel": 3, "stride": 1},
}


def _as_sets(edge_ops: Sequence) -> tuple[frozenset, ...]:
    if len(edge_ops) != len(CELL_EDGES):
        raise SearchSpaceError(
            f"A cell has {len(CELL_EDGES)} edges {list(CELL_EDGES)}. Received: {len(edge_ops)} "
            f"edge choices {list(edge_ops)!r}"
        )
    sets = []
    for e, ops in zip(CELL_EDGES, edge_ops, strict=True):
        ops = frozenset([ops] if isinstance(ops, str) else ops)
        bad = sorted(ops - set(CELL_OPS))
        if bad or not ops:
            raise SearchSpaceError(
                f"Edge {e} has an unknown or empty op choice. Expected ops from {list(CELL_OPS)}. "
                f"Received: {sorted(ops)}"
            )
        sets.append(ops)
    return tuple(sets)


class CellSpace(SearchSpace):
    """NAS-Bench-201 cells (one genotype shared by every cell), sized for microcontrollers.

    Parameters
    ----------
    input_shape, num_classes:
        The task (2-D images or 1-D signals).
    channels:
        Channels of each stage (NAS-Bench-201: 16, 32, 64); one stage per value.
    cells:
        Cells per stage (NAS-Bench-201: 5).
    stem_stride:
        Stride of the 3x3 stem conv (2 quarters every activation, for tight arenas).
    ops:
        The op choices per edge (default all five).
    """

    name = "cell"
    mutation_names = ("change_edge",)

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        channels: Sequence[int] = (8, 16, 32),
        cells: int = 1,
        stem_stride: int = 1,
        ops: Sequence[str] = CELL_OPS,
    ) -> None:
        super().__init__(input_shape, num_classes)
        self.channels = tuple(int(c) for c in channels)
        if not self.channels or any(c < 1 for c in self.channels):
            raise SearchSpaceError(
                f"CellSpace needs at least one stage of positive channels. Received: channels={list(channels)}"
            )
        if isinstance(cells, bool) or not isinstance(cells, int) or cells < 1:
            raise SearchSpaceError(f"cells must be a positive integer. Received: cells={cells!r}")
        if stem_stride not in (1, 2):
            raise SearchSpaceError(
                f"stem_stride must be 1 or 2. Received: stem_stride={stem_stride!r}"
            )
        bad = sorted(set(ops) - set(CELL_OPS))
        if bad or not ops:
            raise SearchSpaceError(
                f"Unknown cell ops. Expected a non-empty subset of {list(CELL_OPS)}. Received: {list(ops)}"
            )
        self.cells, self.stem_stride = cells, stem_stride
        self.ops = tuple(o for o in CELL_OPS if o in ops)
        self.genome(("conv3x3",) * len(CELL_EDGES))  # fail early if the input is too small

    # ------------------------------------------------------------- genotypes

    def genome(self, edge_ops: Sequence) -> Genome:
        """The network of a genotype: one op (or, for a supernet, a set of ops) per edge."""
        sets = _as_sets(edge_ops)
        stages = []
        for s, channels in enumerate(self.channels):
            graph = nx.DiGraph()
            graph.add_nodes_from([IN, OUT])
            if s == 0:
                graph.add_node("stem", op="conv", kernel=3, stride=self.stem_stride,
                               channels=channels, merge="concat")  # fmt: skip
                graph.add_edge(IN, "stem")
                prev = "stem"
            else:
                _reduction(graph, channels)
                prev = "r"
            for k in range(self.cells):
                prev = _cell(graph, f"c{k}", prev, sets, channels)
            graph.add_edge(prev, OUT)
            stages.append(graph)
        return Genome(stages, [Downsample("none")] * (len(stages) - 1), Head("gap", ()),
                      input_shape=self.input_shape, num_classes=self.num_classes)  # fmt: skip

    def supernet(self, edge_ops: Sequence | None = None) -> Genome:
        """Every op of ``self.ops`` on every edge (or the given op sets), summed."""
        return self.genome(edge_ops or [self.ops] * len(CELL_EDGES))

    def genotype(self, genome: Genome) -> tuple[str, ...]:
        """The genotype of a genome of this space (the inverse of :meth:`genome`).

        Raises
        ------
        SearchSpaceError
            If ``genome`` is not one of this space's networks.
        """
        self.check(genome)
        return self._decode(genome)

    def _decode(self, genome: Genome) -> tuple[str, ...]:
        graph = genome.stages[0]
        ops = []
        for i, j in CELL_EDGES:
            source = "stem" if i == 0 else f"c0_n{i}"
            found = "none"
            if f"c0_n{j}" in graph:
                for pred in graph.predecessors(f"c0_n{j}"):
                    if pred == source:
                        found = "skip"
                    elif pred.startswith(f"c0_e{i}{j}_"):
                        found = pred.split("_", 2)[2]
            ops.append(found)
        return tuple(ops)

    def check(self, genome: Genome) -> None:
        super().check(genome)
        try:
            ops = self._decode(genome)
            same = self.genome(ops) == genome
        except (SearchSpaceError, KeyError, IndexError):
            same, ops = False, None
        if not same:
            raise SearchSpaceError(
                "Genome is not a network of this cell space (stem, cells of one genotype over "
                f"{list(self.ops)}, reduction blocks, channels {list(self.channels)}, "
                f"{self.cells} cells per stage). Received: {genome.summary()}"
            )
        if any(o not in self.ops for o in ops):
            raise SearchSpaceError(
                f"Genome uses cell ops outside the space. Expected ops from {list(self.ops)}. "
                f"Received: {list(ops)}"
            )

    # -------------------------------------------------------- sample, mutate

    def sample(self, seed: int | np.random.Generator | None = None) -> Genome:
        rng = _rng(seed)
        for _ in range(1000):
            ops = [str(self.ops[rng.integers(len(self.ops))]) for _ in CELL_EDGES]
            try:
                return self.genome(ops)
            except SearchSpaceError:
                continue
        raise SearchSpaceError(
            f"No connected cell found in 1000 draws. Expected ops besides 'none'. Received: {list(self.ops)}"
        )

    def mutate(self, genome: Genome, seed: int | np.random.Generator | None = None) -> Genome:
        """Change one edge's op so that the network changes (a connected genotype always can)."""
        rng = _rng(seed)
        ops = list(self.genotype(genome))
        moves = [(e, o) for e in range(len(CELL_EDGES)) for o in self.ops if o != ops[e]]
        for idx in rng.permutation(len(moves)):
            e, o = moves[idx]
            try:
                child = self.genome([*ops[:e], o, *ops[e + 1 :]])
            except SearchSpaceError:
                continue
            if child != genome:  # an edge into a dropped node changes nothing
                return child
        raise MutationError(
            f"No single-edge change of {ops} gives a connected cell. Received: {ops}"
        )

    def genotypes(self) -> list[tuple[str, ...]]:
        """Every connected genotype of the space (5**6 = 15,625 before removing the disconnected)."""
        found = []
        for ops in itertools.product(self.ops, repeat=len(CELL_EDGES)):
            if _connected(ops):
                found.append(tuple(ops))
        return found

    def get_config(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "channels": list(self.channels),
            "cells": self.cells,
            "stem_stride": self.stem_stride,
            "ops": list(self.ops),
        }


def _connected(ops: Sequence[str]) -> bool:
    """Whether node 3 receives a non-zero input (node 0 reaches it through non-none edges)."""
    live = {0}
    for (i, j), op in zip(CELL_EDGES, ops, strict=True):
        if op != "none" and i in live:
            live.add(j)
    return 3 in live


def _reduction(graph: nx.DiGraph, channels: int) -> None:
    conv = {"op": "conv", "kernel": 3, "channels": channels, "merge": "concat"}
    graph.add_node("r_a", **conv, stride=2)
    graph.add_node("r_b", **conv, stride=1)
    graph.add_node("r_p", op="avgpool", kernel=2, stride=2, merge="concat")
    graph.add_node("r_q", op="conv", kernel=1, stride=1, channels=channels, merge="concat")
    graph.add_node("r", op="identity", merge="add")
    graph.add_edges_from([(IN, "r_a"), ("r_a", "r_b"), (IN, "r_p"), ("r_p", "r_q"),
                          ("r_b", "r"), ("r_q", "r")])  # fmt: skip


def _cell(graph: nx.DiGraph, prefix: str, source: str, sets, channels: int) -> str:
    """Add one cell fed by node ``source``; return the name of its output node."""
    # Node j is live when a non-none op links it to a live node; dead nodes are zero.
    live = {0}
    for (i, j), ops in zip(CELL_EDGES, sets, strict=True):
        if i in live and ops - {"none"}:
            live.add(j)
    # Keep only nodes that also reach node 3.
    useful = {3} if 3 in live else set()
    for (i, j), ops in reversed(list(zip(CELL_EDGES, sets, strict=True))):
        if j in useful and i in live and ops - {"none"}:
            useful.add(i)
    if 3 not in useful:
        raise SearchSpaceError(
            "The cell output receives nothing: every path from node 0 to node 3 has a 'none' "
            f"edge. Expected a connected cell. Received: edges {[sorted(o) for o in sets]}"
        )
    names = {0: source}
    for j in (1, 2, 3):
        if j not in useful:
            continue
        node = f"{prefix}_n{j}"
        graph.add_node(node, op="identity", merge="add")
        for (i, jj), ops in zip(CELL_EDGES, sets, strict=True):
            if jj != j or i not in useful:
                continue
            for op in sorted(ops):
                if op == "skip":
                    graph.add_edge(names[i], node)
                elif op != "none":
                    edge_node = f"{prefix}_e{i}{j}_{op}"
                    attrs = dict(_ATTRS[op], merge="concat")
                    if attrs["op"] == "conv":
                        attrs["channels"] = channels
                    graph.add_node(edge_node, **attrs)
                    graph.add_edges_from([(names[i], edge_node), (edge_node, node)])
        names[j] = node
    return names[3]
