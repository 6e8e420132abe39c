"""Built-in search spaces: ``msnas`` (structural wiring) and ``micro`` (μNAS).

A :class:`SearchSpace` samples genomes, says whether a genome belongs to it and
mutates genomes without leaving it. Both spaces are parameterised by the task's
input shape and class count; rank-2 input shapes ``(length, channels)`` give
1-D models.
"""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx
import numpy as np

from tfnas.errors import MutationError, SearchSpaceError
from tfnas.genome import mutations as mut
from tfnas.genome.genome import IN, OUT, Downsample, Genome, Head, stage_order
from tfnas.genome.ops import DOWNSAMPLE_OPS, parse_op_choice

__all__ = [
    "SearchSpace",
    "MSNASSpace",
    "MicroSpace",
    "get_space",
    "SPACES",
    "chain_stage",
    "wiring_op",
    "concat_node",
    "stage_channels",
]


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class SearchSpace:
    """Base class: a set of genomes for one task, with sampling and mutation.

    Subclasses implement :meth:`sample` and :meth:`check`, and list the
    mutations that keep a genome inside the space in ``mutation_names``.
    """

    name = "base"
    mutation_names: tuple[str, ...] = ()

    def __init__(self, input_shape: Sequence[int], num_classes: int) -> None:
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        # Validate the task once with a trivial genome.
        Genome(
            [chain_stage([{"op": "identity"}])],
            input_shape=self.input_shape,
            num_classes=num_classes,
        )

    @property
    def one_d(self) -> bool:
        return len(self.input_shape) == 2

    def sample(self, seed: int | np.random.Generator | None = None) -> Genome:
        """Draw a random genome from the space."""
        raise NotImplementedError

    def check(self, genome: Genome) -> None:
        """Raise :class:`SearchSpaceError` if ``genome`` is outside the space."""
        if genome.input_shape != self.input_shape or genome.num_classes != self.num_classes:
            raise SearchSpaceError(
                f"Genome is for another task. Expected input_shape={self.input_shape}, "
                f"num_classes={self.num_classes}. Received: input_shape={genome.input_shape}, "
                f"num_classes={genome.num_classes}"
            )

    def contains(self, genome: Genome) -> bool:
        """Whether ``genome`` lies inside the space."""
        try:
            self.check(genome)
        except SearchSpaceError:
            return False
        return True

    def mutate(self, genome: Genome, seed: int | np.random.Generator | None = None) -> Genome:
        """Apply one random mutation that keeps the genome valid and in the space.

        Mutations are tried in a random order, each a few times; the first that
        succeeds is returned.

        Raises
        ------
        MutationError
            If no mutation applies (every reason is listed).
        """
        rng = _rng(seed)
        reasons = []
        for name in rng.permutation(self.mutation_names):
            for _ in range(3):
                try:
                    child = getattr(mut, str(name))(genome, self, rng)
                    self.check(child)
                    return child
                except SearchSpaceError as e:
                    reasons.append(f"{name}: {e}")
        raise MutationError(
            "No mutation applies to this genome. Received: " + "; ".join(reasons[-6:])
        )

    # Hooks used by the generic mutations.
    def new_node(self, rng: np.random.Generator, stage: int, channels: int) -> dict:
        """Attributes of a fresh node for :func:`tfnas.genome.mutations.add_node`."""
        raise NotImplementedError

    def op_choices(self) -> list[dict]:
        """Op attributes (without channels/stride) a node may switch to."""
        raise NotImplementedError

    def channel_bounds(self) -> tuple[int, int]:
        return (1, 128)

    def downsample_choices(self) -> tuple[str, ...]:
        return DOWNSAMPLE_OPS

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict) -> SearchSpace:
        return cls(**config)


def wiring_op(choice: str) -> dict:
    """Attributes of a structural-wiring op choice (``"sepconv3x3"``): the kernel, stride 1."""
    attrs = parse_op_choice(choice)
    if attrs["op"] in ("conv", "sepconv", "dwconv", "maxpool", "avgpool"):
        attrs["stride"] = 1
    return attrs


def stage_channels(channels: Sequence[int], stages: int) -> tuple[int, ...]:
    """Channels of each of ``stages`` wiring stages: ``channels``, its last value repeated."""
    channels = tuple(int(c) for c in channels)
    if not channels:
        raise SearchSpaceError("channels needs at least one value. Received: ()")
    return (channels + (channels[-1],) * stages)[:stages]


def concat_node(attrs: dict, channels: int) -> dict:
    """A wiring node: ``attrs`` (from :func:`wiring_op`) with its channels, merging by concatenation."""
    node = dict(attrs)
    if node["op"] in ("conv", "sepconv"):
        node["channels"] = channels
    node["merge"] = "concat"
    return node


def chain_stage(layers: Sequence[dict], prefix: str = "n") -> nx.DiGraph:
    """A stage graph that runs ``layers`` (node attribute dicts) one after another.

    Nodes are named ``{prefix}0``, ``{prefix}1``, ...

    Examples
    --------
    >>> g = chain_stage([{"op": "conv", "kernel": 3, "channels": 8, "stride": 1}])
    >>> sorted(g.edges)
    [('in', 'n0'), ('n0', 'out')]
    """
    graph = nx.DiGraph()
    graph.add_node(IN)
    prev = IN
    for i, attrs in enumerate(layers):
        graph.add_node(f"{prefix}{i}", **attrs)
        graph.add_edge(prev, f"{prefix}{i}")
        prev = f"{prefix}{i}"
    graph.add_node(OUT)
    graph.add_edge(prev, OUT)
    return graph


class MSNASSpace(SearchSpace):
    """The structural-wiring space of MSNAS (MSNet, ICCV Workshops 2019).

    ``stages`` stages, each a complete DAG over ``nodes`` ordered nodes: every
    edge ``in -> j`` and ``i -> j`` (``i < j``) is kept with probability
    ``edge_probability``; a node left without inputs is fed by a random
    earlier node or the input. A node concatenates its inputs and applies an op
    from ``ops``; the nodes without successors are concatenated into the stage
    output. Stage ``s`` uses ``channels[s]`` output channels per node, and
    stages are joined by ``downsample`` (max-pool 2x2 stride 2 by default).

    Parameters
    ----------
    input_shape, num_classes:
        The task.
    stages, nodes:
        Number of stages and nodes per stage (the paper: 3 and 30).
    ops:
        Op choices such as ``"conv1x1"``, ``"sepconv3x3"`` (the paper's two).
    channels:
        Output channels of every node in each stage.
    edge_probability:
        Probability of keeping each edge of the complete DAG when sampling.
    downsample, head_pool, hidden:
        The modules around the stages.
    """

    name = "msnas"
    mutation_names = (
        "add_edge",
        "remove_edge",
        "add_node",
        "remove_node",
        "change_op",
        "change_channels",
    )

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        stages: int = 3,
        nodes: int = 6,
        ops: Sequence[str] = ("conv1x1", "sepconv3x3"),
        channels: Sequence[int] = (16, 32, 64),
        edge_probability: float = 0.5,
        downsample: str = "maxpool",
        head_pool: str = "gap",
        hidden: Sequence[int] = (),
    ) -> None:
        super().__init__(input_shape, num_classes)
        if stages < 1 or nodes < 1:
            raise SearchSpaceError(
                f"MSNASSpace needs at least one stage and one node. Received: stages={stages}, nodes={nodes}"
            )
        if not 0.0 <= edge_probability <= 1.0:
            raise SearchSpaceError(
                f"edge_probability must be in [0, 1]. Received: edge_probability={edge_probability}"
            )
        self.stages, self.nodes = stages, nodes
        self.ops = tuple(ops)
        self._op_attrs = [wiring_op(o) for o in self.ops]
        self.channels = stage_channels(channels, stages)
        self.edge_probability = edge_probability
        self.downsample = downsample
        self.head_pool = head_pool
        self.hidden = tuple(hidden)
        self.sample(seed=0)  # fail early if the shape cannot take this many stages

    def _node(self, attrs: dict, channels: int) -> dict:
        return concat_node(attrs, channels)

    def sample(self, seed: int | np.random.Generator | None = None) -> Genome:
        rng = _rng(seed)
        stages = []
        for s in range(self.stages):
            graph = nx.DiGraph()
            graph.add_node(IN)
            names = [f"n{j}" for j in range(self.nodes)]
            for j, name in enumerate(names):
                attrs = self._op_attrs[rng.integers(len(self._op_attrs))]
                graph.add_node(name, **self._node(attrs, self.channels[s]))
                sources = [IN, *names[:j]]
                kept = [u for u in sources if rng.random() < self.edge_probability]
                if not kept:
                    kept = [sources[rng.integers(len(sources))]]
                graph.add_edges_from((u, name) for u in kept)
            graph.add_node(OUT)
            graph.add_edges_from((n, OUT) for n in names if graph.out_degree(n) == 0)
            stages.append(graph)
        return Genome(
            stages,
            [Downsample(self.downsample)] * (self.stages - 1),
            Head(self.head_pool, self.hidden),
            input_shape=self.input_shape,
            num_classes=self.num_classes,
        )

    def check(self, genome: Genome) -> None:
        super().check(genome)
        allowed = [dict(a) for a in self._op_attrs]
        if len(genome.stages) != self.stages:
            raise SearchSpaceError(
                f"The msnas space has {self.stages} stages. Received: {len(genome.stages)} stages"
            )
        for s, graph in enumerate(genome.stages):
            if graph.number_of_nodes() - 2 > self.nodes:
                raise SearchSpaceError(
                    f"Stage {s} has too many nodes. Expected at most {self.nodes}. "
                    f"Received: {graph.number_of_nodes() - 2}"
                )
            for node in stage_order(graph):
                attrs = {
                    k: v for k, v in graph.nodes[node].items() if k not in ("channels", "merge")
                }
                if attrs not in allowed:
                    raise SearchSpaceError(
                        f"Node {node!r} in stage {s} uses an op outside the space. Expected one of "
                        f"{list(self.ops)} with stride 1. Received: {attrs}"
                    )
        if any(d.op != self.downsample for d in genome.downsamples):
            raise SearchSpaceError(
                f"The msnas space downsamples with {self.downsample!r}. "
                f"Received: {[d.op for d in genome.downsamples]}"
            )

    def new_node(self, rng: np.random.Generator, stage: int, channels: int) -> dict:
        attrs = self._op_attrs[rng.integers(len(self._op_attrs))]
        return self._node(attrs, self.channels[stage])

    def op_choices(self) -> list[dict]:
        return [dict(a) for a in self._op_attrs]

    def channel_bounds(self) -> tuple[int, int]:
        return (1, max(self.channels) * 2)

    def get_config(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "stages": self.stages,
            "nodes": self.nodes,
            "ops": list(self.ops),
            "channels": list(self.channels),
            "edge_probability": self.edge_probability,
            "downsample": self.downsample,
            "head_pool": self.head_pool,
            "hidden": list(self.hidden),
        }


class MicroSpace(SearchSpace):
    """The fine-grained space of μNAS (Liberis et al., EuroMLSys 2021).

    1 to ``max_blocks`` blocks; each block is a chain of 1 to ``max_layers``
    conv (kernel 1/3/5/7) or depthwise (3/5/7) layers with 1 to
    ``max_channels`` channels in steps of 1, an optional stride 2 on its first
    layer and an optional branch joined by add (the block input, or a 1x1
    projection when the shape changes). Blocks are joined by no pooling, max
    pooling or average pooling; the head is global average pooling or flatten
    followed by 1 to ``max_dense`` dense layers (the last one the classifier).
    """

    name = "micro"
    mutation_names = tuple(mut.__all__)  # every morphism applies in this space

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        *,
        max_blocks: int = 10,
        max_layers: int = 3,
        max_channels: int = 128,
        max_dense: int = 3,
        max_units: int = 256,
        kernels: Sequence[int] = (1, 3, 5, 7),
    ) -> None:
        super().__init__(input_shape, num_classes)
        for name, value in [("max_blocks", max_blocks), ("max_layers", max_layers),
                            ("max_channels", max_channels), ("max_dense", max_dense),
                            ("max_units", max_units)]:  # fmt: skip
            if value < 1:
                raise SearchSpaceError(
                    f"MicroSpace: {name} must be at least 1. Received: {name}={value}"
                )
        self.max_blocks, self.max_layers = max_blocks, max_layers
        self.max_channels, self.max_dense, self.max_units = max_channels, max_dense, max_units
        self.kernels = tuple(kernels)

    def _layer(self, rng: np.random.Generator, stride: int) -> dict:
        if rng.random() < 0.7:
            return {"op": "conv", "kernel": int(rng.choice(self.kernels)), "stride": stride,
                    "channels": int(rng.integers(1, self.max_channels + 1)), "merge": "concat"}  # fmt: skip
        dw = [k for k in self.kernels if k >= 3] or [3]
        return {"op": "dwconv", "kernel": int(rng.choice(dw)), "stride": stride, "merge": "concat"}

    def _block(self, rng: np.random.Generator, in_channels: int, size: int) -> nx.DiGraph:
        stride = 2 if size > 1 and rng.random() < 0.3 else 1
        layers = [
            self._layer(rng, stride if i == 0 else 1)
            for i in range(rng.integers(1, self.max_layers + 1))
        ]
        graph = chain_stage(layers)
        if rng.random() < 0.3:
            last = f"n{len(layers) - 1}"
            channels = in_channels
            for layer in layers:
                channels = layer.get("channels", channels)
            graph.remove_edge(last, OUT)
            graph.add_node("add", op="identity", merge="add")
            graph.add_edge(last, "add")
            if stride == 1 and channels == in_channels:
                graph.add_edge(IN, "add")
            else:
                graph.add_node(
                    "proj", op="conv", kernel=1, stride=stride, channels=channels, merge="concat"
                )
                graph.add_edges_from([(IN, "proj"), ("proj", "add")])
            graph.add_edge("add", OUT)
        return graph

    def sample(self, seed: int | np.random.Generator | None = None) -> Genome:
        rng = _rng(seed)
        shape = Genome([chain_stage([{"op": "identity"}])], input_shape=self.input_shape,
                       num_classes=self.num_classes).spatial_input_shape()  # fmt: skip
        stages, downsamples = [], []
        for b in range(rng.integers(1, self.max_blocks + 1)):
            if b:
                # A 2x2 pooling floors the height (and a width above 1): keep both positive.
                ops = ["none"] + (["maxpool", "avgpool"] if shape[0] >= 2 else [])
                downsamples.append(Downsample(str(rng.choice(ops))))
            graph = self._block(rng, shape[2], shape[0])
            stages.append(graph)
            partial = Genome(
                stages, downsamples, input_shape=self.input_shape, num_classes=self.num_classes
            )
            _, outputs = partial.stage_shapes(b, partial.stage_input_shape(b))
            shape = outputs[OUT]
        dense = int(rng.integers(1, self.max_dense + 1))
        hidden = tuple(int(rng.integers(8, self.max_units + 1)) for _ in range(dense - 1))
        pool = "flatten" if shape[0] * shape[1] * shape[2] <= 2048 and rng.random() < 0.3 else "gap"
        return Genome(stages, downsamples, Head(pool, hidden),
                      input_shape=self.input_shape, num_classes=self.num_classes)  # fmt: skip

    def check(self, genome: Genome) -> None:
        super().check(genome)
        if not 1 <= len(genome.stages) <= self.max_blocks:
            raise SearchSpaceError(
                f"The micro space has 1 to {self.max_blocks} blocks. Received: {len(genome.stages)} blocks"
            )
        if len(genome.head.hidden) + 1 > self.max_dense:
            raise SearchSpaceError(
                f"The micro space has at most {self.max_dense} dense layers. "
                f"Received: {len(genome.head.hidden) + 1}"
            )
        for i, d in enumerate(genome.downsamples):
            if d.op not in ("none", "maxpool", "avgpool"):
                raise SearchSpaceError(
                    f"Downsample {i}: the micro space pools with none, maxpool or avgpool. Received: {d.op!r}"
                )
        for s, graph in enumerate(genome.stages):
            main = [n for n in stage_order(graph) if graph.nodes[n]["op"] in ("conv", "dwconv")]
            layers = [n for n in main if n != "proj"]
            if not 1 <= len(layers) <= self.max_layers:
                raise SearchSpaceError(
                    f"Block {s} has 1 to {self.max_layers} layers in the micro space. Received: {len(layers)}"
                )
            for n in stage_order(graph):
                attrs = graph.nodes[n]
                if attrs["op"] not in ("conv", "dwconv", "identity"):
                    raise SearchSpaceError(
                        f"Node {n!r} in block {s}: the micro space uses conv and dwconv layers. "
                        f"Received: op={attrs['op']!r}"
                    )
                if attrs.get("channels", 1) > self.max_channels:
                    raise SearchSpaceError(
                        f"Node {n!r} in block {s} has too many channels. Expected at most "
                        f"{self.max_channels}. Received: channels={attrs['channels']}"
                    )

    def new_node(self, rng: np.random.Generator, stage: int, channels: int) -> dict:
        layer = self._layer(rng, 1)
        if "channels" in layer:
            layer["channels"] = channels
        return layer

    def op_choices(self) -> list[dict]:
        dw = [k for k in self.kernels if k >= 3] or [3]
        return [{"op": "conv", "kernel": k} for k in self.kernels] + [
            {"op": "dwconv", "kernel": k} for k in dw
        ]

    def channel_bounds(self) -> tuple[int, int]:
        return (1, self.max_channels)

    def downsample_choices(self) -> tuple[str, ...]:
        return ("none", "maxpool", "avgpool")

    def get_config(self) -> dict:
        return {
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "max_blocks": self.max_blocks,
            "max_layers": self.max_layers,
            "max_channels": self.max_channels,
            "max_dense": self.max_dense,
            "max_units": self.max_units,
            "kernels": list(self.kernels),
        }


SPACES = {"msnas": MSNASSpace, "micro": MicroSpace}


def get_space(name: str, input_shape: Sequence[int], num_classes: int, **kwargs) -> SearchSpace:
    """Construct a built-in space by name (``"msnas"``, ``"micro"`` or ``"cell"``)."""
    if name not in SPACES:
        raise SearchSpaceError(
            f"Unknown search space. Expected one of {sorted(SPACES)}. Received: {name!r}"
        )
    return SPACES[name](input_shape, num_classes, **kwargs)
