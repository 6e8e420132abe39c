"""Analytic costs of a genome, computed without TensorFlow.

Conventions (see :mod:`tfnas.genome.ops`): a multiply-add is one MAC; only
convolutions, depthwise convolutions and dense layers count MACs (BN and ReLU
are folded by the converter; pooling, concatenation and addition do no weight
multiplications and count zero); parameters follow Keras ``count_params()``.
Activation bytes are int8 bytes (one per element, batch 1) of every tensor the
model computes, named as the model builder names the producing layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from tfnas.genome.genome import IN, OUT, Genome
from tfnas.genome.ops import node_macs, node_params

__all__ = ["TensorCost", "GenomeCosts", "analyze", "narrowest_channels"]


@dataclass(frozen=True)
class TensorCost:
    """One activation tensor: ``name``, ``shape`` (batch left out), int8 ``bytes``."""

    name: str
    shape: tuple[int, ...]
    bytes: int


@dataclass(frozen=True)
class GenomeCosts:
    """What a genome costs before it is built.

    Attributes
    ----------
    params:
        Total parameters (equals the Keras model's ``count_params()``).
    macs:
        Total multiply-accumulates for one inference.
    node_shapes:
        Output shape ``(H, W, C)`` of every node, keyed ``"s{stage}/{node}"``
        (``"s{stage}/out"`` is the stage output).
    tensors:
        Every activation tensor in execution order.
    """

    params: int
    macs: int
    node_shapes: dict[str, tuple[int, int, int]]
    tensors: tuple[TensorCost, ...]

    @property
    def activation_bytes(self) -> int:
        """Sum of all int8 activation tensors (an upper bound on arena need)."""
        return sum(t.bytes for t in self.tensors)

    @property
    def largest_tensor_bytes(self) -> int:
        """The largest single int8 activation tensor."""
        return max(t.bytes for t in self.tensors)


def analyze(
    genome: Genome,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
) -> GenomeCosts:
    """Shapes, parameters, MACs and int8 activation bytes of ``genome``.

    Parameters
    ----------
    genome:
        The architecture.
    input_shape, num_classes:
        Evaluate the genome on another task (defaults: the genome's own).

    Returns
    -------
    GenomeCosts

    Raises
    ------
    SearchSpaceError
        If the genome is not valid for ``input_shape``.

    Examples
    --------
    >>> from tfnas.genome import MSNASSpace
    >>> g = MSNASSpace((8, 8, 1), 10, stages=1, nodes=2).sample(seed=0)
    >>> analyze(g).params > 0
    True
    """
    if input_shape is not None:
        genome.validate(input_shape)
    classes = genome.num_classes if num_classes is None else num_classes
    shape = genome.spatial_input_shape(input_shape)
    one_d = genome.one_d if input_shape is None else len(tuple(input_shape)) == 2
    params = macs = 0
    tensors = [TensorCost("input", tuple(shape), math.prod(shape))]
    node_shapes: dict[str, tuple[int, int, int]] = {}

    def add(name: str, shp: tuple[int, ...]) -> None:
        tensors.append(TensorCost(name, tuple(shp), math.prod(shp)))

    for s, graph in enumerate(genome.stages):
        merged, outputs = genome.stage_shapes(s, shape)
        for node, sources, merge in genome.stage_steps(s):
            if len(sources) > 1:
                add(f"s{s}_{node}_{merge}", merged[node])
            if node == OUT:
                continue
            attrs = graph.nodes[node]
            cin = merged[node][2]
            params += node_params(attrs, cin, one_d)
            macs += node_macs(attrs, cin, outputs[node], one_d)
            if attrs["op"] == "sepconv":
                add(f"s{s}_{node}_dw", (*outputs[node][:2], cin))
            if attrs["op"] != "identity":
                add(f"s{s}_{node}", outputs[node])
            node_shapes[f"s{s}/{node}"] = outputs[node]
        node_shapes[f"s{s}/{OUT}"] = outputs[OUT]
        shape = outputs[OUT]
        if s < len(genome.downsamples):
            d = genome.downsamples[s]
            new = genome.downsample_shape(s, shape)
            if d.op == "conv":
                area = 3 if one_d else 9
                params += area * shape[2] * new[2] + 4 * new[2]
                macs += area * shape[2] * new[2] * new[0] * new[1]
            if d.op != "none":
                add(f"down{s}", new)
            shape = new
    features = shape[2] if genome.head.pool == "gap" else math.prod(shape)
    add("head_pool", (features,))
    for i, units in enumerate((*genome.head.hidden, classes)):
        params += features * units + units
        macs += features * units
        add(f"dense{i}" if i < len(genome.head.hidden) else "classifier", (units,))
        features = units
    add("softmax", (classes,))
    return GenomeCosts(params, macs, node_shapes, tuple(tensors))


def narrowest_channels(genome: Genome) -> int:
    """The network's bottleneck width: the fewest channels that every feature passes
    through on its way from the input to the head.

    A minimum cut of the stage graphs, each node weighing its output channels.
    Branches joined by concatenation or addition add their widths, so a skip
    connection bypasses a narrow branch; the input itself does not count. A
    1-channel conv between wider ones makes it 1 however long the network trains.
    Kept out of :func:`analyze`, which screening calls on every proposal: the
    cuts would make it about 4x slower.
    """
    shape = genome.spatial_input_shape()
    narrowest = math.inf
    for s, graph in enumerate(genome.stages):
        outputs = genome.stage_shapes(s, shape)[1]
        narrowest = min(narrowest, _stage_cut(graph, outputs, count_input=s > 0))
        shape = outputs[OUT]
        if s < len(genome.downsamples):
            shape = genome.downsample_shape(s, shape)
    return int(narrowest)


def _stage_cut(graph, outputs: dict, *, count_input: bool) -> int:
    """The fewest channels whose removal cuts a stage's input from its output.

    Each node becomes an edge ``node/i -> node/o`` whose capacity is its output
    channels; graph edges have no capacity limit. The stage input (the image, in
    the first stage) is left uncut unless ``count_input``.
    """
    flow = nx.DiGraph()
    for node in graph.nodes:
        if node == IN and not count_input:
            flow.add_edge(f"{node}/i", f"{node}/o")  # no capacity: never cut
        else:
            flow.add_edge(f"{node}/i", f"{node}/o", capacity=outputs[node][2])
    flow.add_edges_from((f"{u}/o", f"{v}/i") for u, v in graph.edges)
    return int(nx.minimum_cut_value(flow, f"{IN}/i", f"{OUT}/o"))
