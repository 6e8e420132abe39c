"""What an architecture is: a chain of DAG stages joined by downsampling modules.

A :class:`Genome` holds

* ``stages``: one :class:`networkx.DiGraph` per stage. Two reserved nodes,
  ``"in"`` (the stage input) and ``"out"`` (the stage output), bracket the
  op nodes. Each op node has attributes ``op`` plus that op's parameters
  (``kernel``, ``channels``, ``stride``) and ``merge``: how its inputs are
  combined before its op, ``"concat"`` along channels (the structural wiring of
  MSNAS) or ``"add"``. The stage output concatenates the predecessors of
  ``"out"``; inputs are always ordered by the stage's topological order.
* ``downsamples``: one :class:`Downsample` between consecutive stages.
* ``head``: a :class:`Head` (global average pool or flatten, hidden dense
  layers, dense output).
* ``input_shape`` and ``num_classes``: the task it was sampled for. A rank-2
  input ``(length, channels)`` is 1-D: kernels and strides act on the length.

Genomes are validated on construction and are treated as immutable: mutations
return new genomes.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import networkx as nx

from tfnas.errors import SearchSpaceError
from tfnas.genome.ops import (
    DOWNSAMPLE_OPS,
    HEAD_POOLS,
    MAX_CHANNELS,
    MAX_UNITS,
    MERGES,
    NODE_OPS,
    node_output_shape,
)

__all__ = ["Genome", "Downsample", "Head", "SCHEMA_VERSION", "IN", "OUT", "stage_order"]

SCHEMA_VERSION = 1
IN = "in"
OUT = "out"
_NODE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Downsample:
    """The module between two stages.

    ``maxpool`` and ``avgpool`` are 2x2 windows with stride 2 and no padding
    (the size is floored); ``conv`` is a 3x3 conv-BN-ReLU with stride 2 and
    'same' padding to ``channels`` outputs (``None`` keeps the input's
    channels); ``none`` passes the tensor through.
    """

    op: str = "maxpool"
    channels: int | None = None

    def to_dict(self) -> dict:
        d = {"op": self.op}
        if self.channels is not None:
            d["channels"] = self.channels
        return d


@dataclass(frozen=True)
class Head:
    """Classifier head: ``pool`` ('gap' or 'flatten'), hidden ReLU dense widths."""

    pool: str = "gap"
    hidden: tuple[int, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"pool": self.pool, "hidden": list(self.hidden)}


def stage_order(graph: nx.DiGraph) -> list[str]:
    """The op nodes of a stage in their canonical execution order.

    A topological order that breaks ties by node id, so that it does not depend
    on insertion order; ``"in"`` and ``"out"`` are left out.
    """
    order = nx.lexicographical_topological_sort(graph, key=str)
    return [n for n in order if n not in (IN, OUT)]


def _where(stage: int, node: str) -> str:
    return f"node {node!r} in stage {stage}"


class Genome:
    """A neural architecture as a chain of DAG stages.

    Parameters
    ----------
    stages:
        One ``networkx.DiGraph`` per stage (see the module docstring).
    downsamples:
        ``len(stages) - 1`` :class:`Downsample` modules (dicts are accepted).
    head:
        The :class:`Head` (a dict is accepted).
    input_shape:
        ``(height, width, channels)`` or, for 1-D data, ``(length, channels)``.
    num_classes:
        Number of output classes (at least 2).

    Raises
    ------
    SearchSpaceError
        If the genome is not a valid architecture for ``input_shape``; the
        message names the stage, the node and the offending value.
    """

    def __init__(
        self,
        stages: Sequence[nx.DiGraph],
        downsamples: Sequence[Downsample | dict] = (),
        head: Head | dict | None = None,
        *,
        input_shape: Sequence[int],
        num_classes: int,
    ) -> None:
        self.stages = [nx.DiGraph(g) for g in stages]
        self.downsamples = [d if isinstance(d, Downsample) else _downsample(d) for d in downsamples]
        if head is None:
            head = Head()
        self.head = head if isinstance(head, Head) else _head(head)
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.validate()

    # ------------------------------------------------------------------ shape

    @property
    def one_d(self) -> bool:
        """Whether the input is 1-D ``(length, channels)``."""
        return len(self.input_shape) == 2

    def spatial_input_shape(self, input_shape: Sequence[int] | None = None) -> tuple[int, int, int]:
        """The input as ``(H, W, C)``; a 1-D ``(L, C)`` becomes ``(L, 1, C)``."""
        shape = tuple(self.input_shape if input_shape is None else input_shape)
        _check_input_shape(shape)
        if len(shape) == 2:
            return (shape[0], 1, shape[1])
        return shape  # type: ignore[return-value]

    def stage_shapes(
        self, stage: int, in_shape: tuple[int, int, int]
    ) -> tuple[dict[str, tuple[int, int, int]], dict[str, tuple[int, int, int]]]:
        """Shapes inside one stage.

        Returns
        -------
        (merged, outputs)
            ``merged[node]`` is the shape of a node's combined input and
            ``outputs[node]`` the shape of its output; ``outputs["in"]`` is
            ``in_shape`` and ``outputs["out"]`` the stage output.
        """
        graph = self.stages[stage]
        outputs = {IN: in_shape}
        merged = {}
        for node, preds, merge in self.stage_steps(stage):
            merged[node] = _merge_shapes(stage, node, merge, [(p, outputs[p]) for p in preds])
            if node == OUT:
                outputs[OUT] = merged[OUT]
            else:
                outputs[node] = node_output_shape(graph.nodes[node], merged[node])
        return merged, outputs

    def stage_steps(self, stage: int) -> list[tuple[str, list[str], str]]:
        """How a stage is computed: ``(node, ordered inputs, merge)`` per node, ``"out"`` last.

        This is the one walk that the model builder, the analytic costs and the
        memory estimate all follow, so they agree on order and merges. The
        stage output always concatenates.
        """
        graph = self.stages[stage]
        order = stage_order(graph)
        rank = {n: i for i, n in enumerate([IN, *order])}
        return [
            (
                node,
                sorted(graph.predecessors(node), key=rank.__getitem__),
                graph.nodes[node].get("merge", "concat") if node != OUT else "concat",
            )
            for node in [*order, OUT]
        ]

    def stage_input_shape(
        self, stage: int, input_shape: Sequence[int] | None = None
    ) -> tuple[int, int, int]:
        """Shape ``(H, W, C)`` entering stage ``stage``."""
        shape = self.spatial_input_shape(input_shape)
        for s in range(stage):
            shape = self.downsample_shape(s, self.stage_shapes(s, shape)[1][OUT])
        return shape

    def downsample_shape(self, index: int, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """Output shape of downsample ``index`` for an input of ``shape``."""
        d = self.downsamples[index]
        h, w, c = shape
        sw = 2 if w > 1 else 1
        if d.op in ("maxpool", "avgpool"):
            out = (h // 2, w // sw, c)
        elif d.op == "conv":
            out = (-(-h // 2), -(-w // sw), d.channels or c)
        else:
            out = shape
        if out[0] <= 0 or out[1] <= 0:
            raise SearchSpaceError(
                f"Downsample {index} ({d.op}) reduces the spatial size to zero. Expected a "
                f"spatial size of at least 2 before each pooling downsample. Received: "
                f"input {shape[:2]} -> output {out[:2]}"
            )
        return out

    # ------------------------------------------------------------- validation

    def validate(self, input_shape: Sequence[int] | None = None) -> None:
        """Check the whole genome; raise :class:`SearchSpaceError` at the first fault."""
        shape = self.spatial_input_shape(input_shape)
        if not isinstance(self.num_classes, int) or isinstance(self.num_classes, bool):
            raise SearchSpaceError(
                f"num_classes must be an integer. Received: num_classes={self.num_classes!r}"
            )
        if not 2 <= self.num_classes <= MAX_UNITS:
            raise SearchSpaceError(
                f"num_classes is out of range. Expected 2 <= num_classes <= {MAX_UNITS}. "
                f"Received: num_classes={self.num_classes}"
            )
        if not self.stages:
            raise SearchSpaceError("A genome needs at least one stage. Received: 0 stages")
        if len(self.downsamples) != len(self.stages) - 1:
            raise SearchSpaceError(
                f"A genome with {len(self.stages)} stages needs {len(self.stages) - 1} "
                f"downsamples. Received: {len(self.downsamples)} downsamples"
            )
        for i, d in enumerate(self.downsamples):
            _check_downsample(i, d)
        _check_head(self.head)
        for s, graph in enumerate(self.stages):
            _check_structure(s, graph)
            for node in stage_order(graph):
                _check_node(s, node, graph.nodes[node])
        for s in range(len(self.stages)):
            _, outputs = self.stage_shapes(s, shape)
            shape = outputs[OUT]
            if s < len(self.downsamples):
                shape = self.downsample_shape(s, shape)

    # ------------------------------------------------------------------- JSON

    def to_dict(self) -> dict:
        """A JSON-ready dict (schema version included)."""
        stages = []
        for graph in self.stages:
            nodes = []
            for node in graph.nodes:
                if node in (IN, OUT):
                    continue
                attrs = graph.nodes[node]
                nodes.append({"id": node, **{k: attrs[k] for k in sorted(attrs)}})
            stages.append({"nodes": nodes, "edges": [list(e) for e in graph.edges]})
        return {
            "schema_version": SCHEMA_VERSION,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "stages": stages,
            "downsamples": [d.to_dict() for d in self.downsamples],
            "head": self.head.to_dict(),
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to a JSON string; ``from_json(to_json(g))`` equals ``g`` exactly."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Genome:
        """Build a genome from :meth:`to_dict` output."""
        if not isinstance(data, dict):
            raise SearchSpaceError(
                f"A genome must be a JSON object. Received: {type(data).__name__}"
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise SearchSpaceError(
                f"Unknown genome schema version. Expected schema_version={SCHEMA_VERSION}. "
                f"Received: schema_version={version!r}"
            )
        try:
            stages = [_stage_from_dict(s, i) for i, s in enumerate(data["stages"])]
            return cls(
                stages,
                [_downsample(d) for d in data.get("downsamples", [])],
                _head(data.get("head", {})),
                input_shape=data["input_shape"],
                num_classes=data["num_classes"],
            )
        except KeyError as e:
            raise SearchSpaceError(
                f"Malformed genome: a required key is missing. Received: missing key {e}"
            ) from None
        except (TypeError, AttributeError) as e:
            raise SearchSpaceError(f"Malformed genome: wrong value type. Received: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Genome:
        """Parse a genome from JSON text.

        Raises
        ------
        SearchSpaceError
            On malformed JSON, an unknown schema version or an invalid genome.
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
            raise SearchSpaceError(
                f"Malformed genome JSON. Expected a JSON object. Received: {e}"
            ) from None
        return cls.from_dict(data)

    # ---------------------------------------------------------------- hashing

    def canonical_hash(self) -> str:
        """A hash under which isomorphic genomes are equal.

        Node ids and insertion order do not matter; ops, parameters, merges,
        wiring, downsamples, head and task do. Each stage is summarised by a
        Weisfeiler-Lehman refinement over predecessors and successors (run to
        a fixed point), so relabelled copies of a genome hash alike.
        """
        parts = [
            json.dumps([list(self.input_shape), self.num_classes]),
            json.dumps([d.to_dict() for d in self.downsamples], sort_keys=True),
            json.dumps(self.head.to_dict(), sort_keys=True),
        ]
        parts += [_stage_signature(g) for g in self.stages]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Genome):
            return NotImplemented
        return self.canonical_hash() == other.canonical_hash()

    def __hash__(self) -> int:
        return hash(self.canonical_hash())

    # ------------------------------------------------------------------ misc

    def copy(self) -> Genome:
        """A deep copy (validated again)."""
        return Genome(
            [g.copy() for g in self.stages],
            list(self.downsamples),
            self.head,
            input_shape=self.input_shape,
            num_classes=self.num_classes,
        )

    def num_nodes(self) -> int:
        """Number of op nodes over all stages."""
        return sum(g.number_of_nodes() - 2 for g in self.stages)

    def num_edges(self) -> int:
        """Number of edges over all stages (``in``/``out`` edges included)."""
        return sum(g.number_of_edges() for g in self.stages)

    def summary(self) -> str:
        """One line: stages as node/edge counts, downsamples and head."""
        stages = " ".join(
            f"[{g.number_of_nodes() - 2}n/{g.number_of_edges()}e]" for g in self.stages
        )
        hidden = "-".join(str(u) for u in self.head.hidden)
        return f"{stages} {self.head.pool}{'-' + hidden if hidden else ''}-{self.num_classes}"

    def __repr__(self) -> str:
        return f"Genome({self.summary()}, input_shape={self.input_shape})"


# ---------------------------------------------------------------------- helpers


def _check_input_shape(shape: tuple) -> None:
    if len(shape) not in (2, 3) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape
    ):
        raise SearchSpaceError(
            "input_shape must be (height, width, channels) or (length, channels) of positive "
            f"integers. Received: input_shape={shape}"
        )


def _check_int(where: str, name: str, value, allowed: Iterable[int] | range) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        shown = (
            f"{allowed.start} <= {name} <= {allowed.stop - 1}"
            if isinstance(allowed, range)
            else f"one of {list(allowed)}"
        )
        raise SearchSpaceError(
            f"{where}: {name} is out of range. Expected {shown}. Received: {name}={value!r}"
        )


def _check_node(stage: int, node: str, attrs: dict) -> None:
    where = _where(stage, node)
    op = attrs.get("op")
    if op not in NODE_OPS:
        raise SearchSpaceError(
            f"{where} has an unknown op. Expected one of {sorted(NODE_OPS)}. Received: op={op!r}"
        )
    spec = NODE_OPS[op]
    allowed_keys = {"op", "merge", *spec.param_names}
    extra = sorted(set(attrs) - allowed_keys)
    missing = sorted(set(spec.param_names) - set(attrs))
    if extra or missing:
        raise SearchSpaceError(
            f"{where}: op {op!r} takes parameters {list(spec.param_names)}. "
            f"Received: unexpected={extra}, missing={missing}"
        )
    if spec.kernels:
        _check_int(where, "kernel", attrs["kernel"], spec.kernels)
    if spec.has_channels:
        _check_int(where, "channels", attrs["channels"], range(1, MAX_CHANNELS + 1))
    if spec.strides:
        _check_int(where, "stride", attrs["stride"], spec.strides)
    merge = attrs.get("merge", "concat")
    if merge not in MERGES:
        raise SearchSpaceError(
            f"{where} has an unknown merge. Expected one of {list(MERGES)}. Received: merge={merge!r}"
        )


def _check_structure(stage: int, graph: nx.DiGraph) -> None:
    for node in graph.nodes:
        if node in (IN, OUT):
            continue
        if not isinstance(node, str) or not _NODE_ID.match(node):
            raise SearchSpaceError(
                f"Stage {stage} has an invalid node id. Expected a name of letters, digits and "
                f"'_' starting with a letter (at most 32 characters). Received: {node!r}"
            )
    for reserved in (IN, OUT):
        if reserved not in graph:
            raise SearchSpaceError(
                f"Stage {stage} has no {reserved!r} node. Received: {list(graph.nodes)}"
            )
    if graph.in_degree(IN):
        raise SearchSpaceError(
            f"Stage {stage}: 'in' cannot have inputs. Received: edges from {sorted(graph.predecessors(IN))}"
        )
    if graph.out_degree(OUT):
        raise SearchSpaceError(
            f"Stage {stage}: 'out' cannot feed other nodes. Received: edges to {sorted(graph.successors(OUT))}"
        )
    if graph.number_of_nodes() == 2:
        raise SearchSpaceError(
            f"Stage {stage} has no op nodes. Expected at least one. Received: none"
        )
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join([str(u) for u, _ in cycle] + [str(cycle[0][0])])
        raise SearchSpaceError(
            f"Stage {stage} has a cycle. Expected a DAG. Received: cycle {path} "
            f"through node {cycle[0][0]!r}"
        )
    reachable = nx.descendants(graph, IN)
    reaches_out = nx.ancestors(graph, OUT)
    for node in sorted(n for n in graph.nodes if n not in (IN, OUT)):
        where = _where(stage, node)
        if graph.in_degree(node) == 0:
            raise SearchSpaceError(
                f"{where} has no inputs. Expected at least one edge into it. Received: in-degree 0"
            )
        if node not in reachable:
            raise SearchSpaceError(
                f"{where} is unreachable from the stage input. Expected a path from 'in'. "
                f"Received: inputs {sorted(graph.predecessors(node))}, none reachable from 'in'"
            )
        if node not in reaches_out:
            raise SearchSpaceError(
                f"{where} is dangling: its output never reaches 'out'. Expected a path to 'out'. "
                f"Received: successors {sorted(graph.successors(node))}"
            )
    if graph.in_degree(OUT) == 0:
        raise SearchSpaceError(f"Stage {stage}: 'out' has no inputs. Received: in-degree 0")


def _merge_shapes(stage: int, node: str, merge: str, inputs: list) -> tuple[int, int, int]:
    spatial = {shape[:2] for _, shape in inputs}
    if len(spatial) > 1:
        shown = ", ".join(f"{p} {s[:2]}" for p, s in inputs)
        raise SearchSpaceError(
            f"{_where(stage, node)} merges inputs of different spatial sizes. Expected equal "
            f"sizes (strides inside a stage must agree). Received: {shown}"
        )
    h, w = spatial.pop()
    if merge == "add":
        channels = {shape[2] for _, shape in inputs}
        if len(channels) > 1:
            shown = ", ".join(f"{p} {s[2]}" for p, s in inputs)
            raise SearchSpaceError(
                f"{_where(stage, node)} adds inputs with different channel counts. Expected equal "
                f"channels. Received: {shown}"
            )
        return (h, w, inputs[0][1][2])
    return (h, w, sum(shape[2] for _, shape in inputs))


def _check_downsample(index: int, d: Downsample) -> None:
    if d.op not in DOWNSAMPLE_OPS:
        raise SearchSpaceError(
            f"Downsample {index} has an unknown op. Expected one of {list(DOWNSAMPLE_OPS)}. "
            f"Received: op={d.op!r}"
        )
    if d.channels is not None:
        if d.op != "conv":
            raise SearchSpaceError(
                f"Downsample {index}: only 'conv' takes channels. Received: op={d.op!r}, "
                f"channels={d.channels}"
            )
        _check_int(f"Downsample {index}", "channels", d.channels, range(1, MAX_CHANNELS + 1))


def _check_head(head: Head) -> None:
    if head.pool not in HEAD_POOLS:
        raise SearchSpaceError(
            f"Head has an unknown pool. Expected one of {list(HEAD_POOLS)}. Received: pool={head.pool!r}"
        )
    for i, units in enumerate(head.hidden):
        _check_int(f"Head hidden layer {i}", "units", units, range(1, MAX_UNITS + 1))


def _downsample(d: dict) -> Downsample:
    if not isinstance(d, dict):
        raise SearchSpaceError(f"A downsample must be an object. Received: {d!r}")
    unknown = sorted(set(d) - {"op", "channels"})
    if unknown:
        raise SearchSpaceError(
            f"Downsample has unknown keys. Expected op, channels. Received: {unknown}"
        )
    return Downsample(op=d.get("op", "maxpool"), channels=d.get("channels"))


def _head(d: dict) -> Head:
    if not isinstance(d, dict):
        raise SearchSpaceError(f"A head must be an object. Received: {d!r}")
    unknown = sorted(set(d) - {"pool", "hidden"})
    if unknown:
        raise SearchSpaceError(f"Head has unknown keys. Expected pool, hidden. Received: {unknown}")
    return Head(pool=d.get("pool", "gap"), hidden=tuple(d.get("hidden", ())))


def _stage_from_dict(data: dict, index: int) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_node(IN)
    for node in data["nodes"]:
        attrs = dict(node)
        node_id = attrs.pop("id")
        if node_id in graph or node_id == OUT:
            raise SearchSpaceError(
                f"Stage {index} repeats or reuses a node id. Received: id={node_id!r}"
            )
        graph.add_node(node_id, **attrs)
    graph.add_node(OUT)
    for edge in data["edges"]:
        if len(edge) != 2:
            raise SearchSpaceError(
                f"Stage {index} has a malformed edge. Expected [src, dst]. Received: {edge!r}"
            )
        u, v = edge
        for end in (u, v):
            if end not in graph:
                raise SearchSpaceError(
                    f"Stage {index} has an edge to an unknown node. Received: edge [{u!r}, {v!r}], "
                    f"unknown {end!r}"
                )
        graph.add_edge(u, v)
    return graph


def _node_label(graph: nx.DiGraph, node: str) -> str:
    if node in (IN, OUT):
        return node
    return json.dumps(graph.nodes[node], sort_keys=True)


def _stage_signature(graph: nx.DiGraph) -> str:
    colors = {n: _node_label(graph, n) for n in graph.nodes}
    for _ in range(graph.number_of_nodes()):
        new = {
            n: hashlib.sha256(
                json.dumps(
                    [
                        colors[n],
                        sorted(colors[p] for p in graph.predecessors(n)),
                        sorted(colors[s] for s in graph.successors(n)),
                    ]
                ).encode()
            ).hexdigest()
            for n in graph.nodes
        }
        if len(set(new.values())) == len(set(colors.values())):
            colors = new
            break
        colors = new
    edges = sorted(f"{colors[u]}>{colors[v]}" for u, v in graph.edges)
    return json.dumps([sorted(colors.values()), edges])


def clone_stages(genome: Genome) -> list[nx.DiGraph]:
    """Deep copies of a genome's stage graphs, for building a mutated genome."""
    return [copy.deepcopy(g) for g in genome.stages]
