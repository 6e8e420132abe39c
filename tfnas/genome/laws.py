"""Sampling laws: narrow parts of a search space, and genomes drawn from them (no TensorFlow).

After Scheidegger, Benini, Bekas, Malossi, "Constrained deep neural network
architecture search for IoT devices accounting for hardware calibration",
NeurIPS 2019.

A *sampling law* is an ordered set of uniform integer ranges, one per variable
of a search space (:func:`law_variables`: blocks, layers, channels, kernels,
strides, pooling, dense units, ...), each inside the space's absolute limits.
Sampling from a law (:func:`sample`) draws every use of a variable uniformly
from its range and gives ordinary genomes of the space. A choice variable
(kernel sizes, pooling, op types) is a range over its ordered choices. Laws
are designed for a cost window by :mod:`tfnas.strategies.law_design`.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from tfnas.errors import SearchSpaceError
from tfnas.genome import CellSpace, Genome, MicroSpace, MSNASSpace, SearchSpace, get_space
from tfnas.genome.cells import CELL_EDGES
from tfnas.genome.genome import IN, OUT, Downsample, Head
from tfnas.genome.ops import node_macs, node_output_shape, node_params
from tfnas.genome.spaces import concat_node

__all__ = ["FORMAT", "VERSION", "Variable", "SamplingLaw", "law_variables", "sample"]

logger = logging.getLogger("tfnas")

#: The ``format`` tag of a laws JSON file, and its version.
FORMAT, VERSION = "tfnas.laws", 1


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ----------------------------------------------------------------- variables


@dataclass(frozen=True)
class Variable:
    """One variable of a space's laws: integers ``low..high``, or indices of ``choices``.

    For a choice variable ``low`` is 0 and ``high`` is ``len(choices) - 1``; in
    JSON its ranges are written with the choice labels.
    """

    name: str
    low: int
    high: int
    choices: tuple | None = None

    def label(self, value: int):
        """The JSON form of ``value``: itself, or its choice label."""
        return self.choices[value] if self.choices is not None else int(value)

    def value(self, label, where: str = "law") -> int:
        """The integer of a JSON ``label`` (raises :class:`SearchSpaceError` if it is not one)."""
        if self.choices is not None:
            if label not in self.choices or isinstance(label, bool):
                raise SearchSpaceError(
                    f"{where}: {self.name!r} takes choices from {list(self.choices)}. Received: {label!r}"
                )
            return self.choices.index(label)
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
            raise SearchSpaceError(
                f"{where}: {self.name!r} takes integers in [{self.low}, {self.high}]. Received: {label!r}"
            )
        return int(label)


_VARIABLES: dict[str, tuple[Variable, ...]] = {}


def _space_key(space: SearchSpace) -> str:
    return json.dumps([space.name, space.get_config()], sort_keys=True)


def law_variables(space: SearchSpace) -> tuple[Variable, ...]:
    """The ordered variables of ``space``'s sampling laws.

    - micro (:class:`~tfnas.genome.MicroSpace`): ``blocks``; per block ``b`` of
      ``max_blocks``: ``block{b}.layers``, ``.op`` (conv, dwconv), ``.kernel``,
      ``.channels``, ``.stride`` (of its first layer), ``.residual`` (0 or 1)
      and, from the second block, ``.pool`` (none, maxpool, avgpool before it);
      ``head.pool`` (gap, flatten), ``head.dense`` (dense layers, the classifier
      included), ``head.units`` (hidden widths).
    - msnas (:class:`~tfnas.genome.MSNASSpace`): per stage ``s``:
      ``stage{s}.nodes``, ``.op``, ``.channels`` (the space's channel bounds) and
      ``.edges`` (the percent chance of keeping each edge of the complete DAG).
    - cell (:class:`~tfnas.genome.CellSpace`): ``edge{i}_{j}``, the op of each of
      the six cell edges.

    Raises
    ------
    SearchSpaceError
        For a space without law variables.

    Examples
    --------
    >>> from tfnas.genome import MicroSpace
    >>> [v.name for v in law_variables(MicroSpace((8, 8, 1), 10, max_blocks=1))]
    ['blocks', 'block0.layers', 'block0.op', 'block0.kernel', 'block0.channels', 'block0.stride', 'block0.residual', 'head.pool', 'head.dense', 'head.units']
    """
    key = _space_key(space)
    if key in _VARIABLES:
        return _VARIABLES[key]
    if isinstance(space, MicroSpace):
        out = [Variable("blocks", 1, space.max_blocks)]
        for b in range(space.max_blocks):
            out += [
                Variable(f"block{b}.layers", 1, space.max_layers),
                Variable(f"block{b}.op", 0, 1, ("conv", "dwconv")),
                Variable(
                    f"block{b}.kernel", 0, len(space.kernels) - 1, tuple(sorted(space.kernels))
                ),
                Variable(f"block{b}.channels", 1, space.max_channels),
                Variable(f"block{b}.stride", 1, 2),
                Variable(f"block{b}.residual", 0, 1),
            ]
            if b:
                out.append(Variable(f"block{b}.pool", 0, 2, ("none", "maxpool", "avgpool")))
        out += [
            Variable("head.pool", 0, 1, ("gap", "flatten")),
            Variable("head.dense", 1, space.max_dense),
            Variable("head.units", min(8, space.max_units), space.max_units),
        ]
    elif isinstance(space, MSNASSpace):
        low, high = space.channel_bounds()
        out = []
        for s in range(space.stages):
            out += [
                Variable(f"stage{s}.nodes", 1, space.nodes),
                Variable(f"stage{s}.op", 0, len(space.ops) - 1, tuple(space.ops)),
                Variable(f"stage{s}.channels", low, high),
                Variable(f"stage{s}.edges", 0, 100),
            ]
    elif isinstance(space, CellSpace):
        out = [Variable(f"edge{i}_{j}", 0, len(space.ops) - 1, space.ops) for i, j in CELL_EDGES]
    else:
        raise SearchSpaceError(
            "Sampling laws are defined for the micro, msnas and cell spaces. Received: "
            f"{type(space).__name__} ({space.name!r})"
        )
    _VARIABLES[key] = tuple(out)
    return _VARIABLES[key]


# ----------------------------------------------------------------------- law


@dataclass(frozen=True, eq=False)
class SamplingLaw:
    """Uniform ranges over a space's variables (:func:`law_variables`), inside their limits.

    Parameters
    ----------
    space:
        The space whose genomes the law samples.
    ranges:
        One ``(low, high)`` pair per variable, in :func:`law_variables` order;
        choice variables use choice indices.

    Raises
    ------
    SearchSpaceError
        If the number of ranges is wrong or a range is empty or outside its limits.

    Examples
    --------
    >>> from tfnas.genome import MicroSpace
    >>> space = MicroSpace((8, 8, 1), 10, max_blocks=2)
    >>> law = SamplingLaw.full(space)
    >>> SamplingLaw.from_json(law.to_json()) == law
    True
    """

    space: SearchSpace
    ranges: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        variables = law_variables(self.space)
        ranges = tuple((int(lo), int(hi)) for lo, hi in self.ranges)
        object.__setattr__(self, "ranges", ranges)
        object.__setattr__(self, "_space_key", _space_key(self.space))
        if len(ranges) != len(variables):
            raise SearchSpaceError(
                f"A law of this {self.space.name} space has {len(variables)} ranges. "
                f"Received: {len(ranges)}"
            )
        for v, (lo, hi) in zip(variables, ranges, strict=True):
            if not v.low <= lo <= hi <= v.high:
                raise SearchSpaceError(
                    f"The range of {v.name!r} is empty or outside the space's limits. Expected "
                    f"{v.label(v.low)!r} <= low <= high <= {v.label(v.high)!r}. Received: "
                    f"[{_label(v, lo)!r}, {_label(v, hi)!r}]"
                )

    @property
    def variables(self) -> tuple[Variable, ...]:
        return law_variables(self.space)

    @classmethod
    def full(cls, space: SearchSpace) -> SamplingLaw:
        """The widest law: every variable over its whole limits."""
        return cls(space, tuple((v.low, v.high) for v in law_variables(space)))

    def range_of(self, name: str) -> tuple[int, int]:
        """The integer range of variable ``name``."""
        for v, r in zip(self.variables, self.ranges, strict=True):
            if v.name == name:
                return r
        raise KeyError(
            f"No variable {name!r} in this law. Expected one of {[v.name for v in self.variables]}"
        )

    def labels(self) -> dict[str, list]:
        """``{variable: [low, high]}`` with choice labels, the form written to JSON."""
        return {
            v.name: [v.label(lo), v.label(hi)]
            for v, (lo, hi) in zip(self.variables, self.ranges, strict=True)
        }

    def to_dict(self) -> dict:
        return {"space": {"name": self.space.name, "config": self.space.get_config()},
                "ranges": self.labels()}  # fmt: skip

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(
        cls, data: dict, space: SearchSpace | None = None, where: str = "law"
    ) -> SamplingLaw:
        """A law from :meth:`to_dict`'s form; ``space`` (if given) replaces the stored one.

        Raises
        ------
        SearchSpaceError
            If the ranges name other variables than the space's, or a range is malformed,
            empty or outside the space's limits.
        """
        if not isinstance(data, dict) or "ranges" not in data:
            raise SearchSpaceError(
                f"{where} must be an object with 'ranges'. Received: {_short(data)}"
            )
        if space is None:
            space = _space_from(data.get("space"), where)
        ranges = data["ranges"]
        variables = law_variables(space)
        if not isinstance(ranges, dict):
            raise SearchSpaceError(
                f"{where}: 'ranges' must map each variable to [low, high]. Received: {_short(ranges)}"
            )
        names = [v.name for v in variables]
        missing, unknown = [n for n in names if n not in ranges], sorted(set(ranges) - set(names))
        if missing or unknown:
            raise SearchSpaceError(
                f"{where}: the ranges do not match the {space.name} space's variables. Expected "
                f"exactly {names}. Received: missing {missing}, unknown {unknown}"
            )
        pairs = []
        for v in variables:
            r = ranges[v.name]
            if not isinstance(r, list) or len(r) != 2:
                raise SearchSpaceError(
                    f"{where}: the range of {v.name!r} must be [low, high]. Received: {r!r}"
                )
            pairs.append((v.value(r[0], where), v.value(r[1], where)))
        try:
            return cls(space, tuple(pairs))
        except SearchSpaceError as e:
            raise SearchSpaceError(f"{where}: {e}") from None

    @classmethod
    def from_json(cls, text: str | bytes, space: SearchSpace | None = None) -> SamplingLaw:
        return cls.from_dict(_loads(text, "law JSON"), space)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SamplingLaw) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def _key(self):
        return (self._space_key, self.ranges)

    def __repr__(self) -> str:
        return f"SamplingLaw({self.space.name}, {self.labels()})"


def _label(v: Variable, value: int):
    return v.label(value) if v.choices is not None and 0 <= value < len(v.choices) else value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _loads(text, what: str):
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
        raise SearchSpaceError(
            f"The {what} is not valid JSON: {e}. Received: {_short(text)}"
        ) from e


def _space_from(data, where: str) -> SearchSpace:
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise SearchSpaceError(
            f"{where}: 'space' must be {{'name': ..., 'config': {{...}}}}. Received: {_short(data)}"
        )
    try:
        return get_space(data.get("name"), **data["config"])
    except TypeError as e:
        raise SearchSpaceError(
            f"{where}: the space config is not valid: {e}. Received: {_short(data)}"
        ) from e


# ------------------------------------------------------------------ sampling


@dataclass
class _Draft:
    """A genome before it is built: per stage ``(node, attrs, inputs)`` in order, and outputs."""

    stages: list[list[tuple[str, dict, list[str]]]]
    outputs: list[list[str]]
    downsamples: list[str]
    head: Head

    def genome(self, space: SearchSpace) -> Genome:
        graphs = []
        for nodes, outs in zip(self.stages, self.outputs, strict=True):
            graph = nx.DiGraph()
            graph.add_node(IN)
            for name, attrs, inputs in nodes:
                graph.add_node(name, **attrs)
                graph.add_edges_from((u, name) for u in inputs)
            graph.add_node(OUT)
            graph.add_edges_from((u, OUT) for u in outs)
            graphs.append(graph)
        return Genome(graphs, [Downsample(d) for d in self.downsamples], self.head,
                      input_shape=space.input_shape, num_classes=space.num_classes)  # fmt: skip

    def costs(self, space: SearchSpace) -> tuple[int, int]:
        """``(macs, params)``, as :func:`tfnas.genome.analyze` of the built genome gives them."""
        one_d = len(space.input_shape) == 2
        h, w, c = (space.input_shape[0], 1, space.input_shape[1]) if one_d else space.input_shape
        shape = (h, w, c)
        macs = params = 0
        for s, (nodes, outs) in enumerate(zip(self.stages, self.outputs, strict=True)):
            if s:
                shape = _pooled(shape, self.downsamples[s - 1])
            shapes = {IN: shape}
            for name, attrs, inputs in nodes:
                merged = _merged([shapes[u] for u in inputs], attrs.get("merge", "concat"))
                shapes[name] = node_output_shape(attrs, merged)
                params += node_params(attrs, merged[2], one_d)
                macs += node_macs(attrs, merged[2], shapes[name], one_d)
            shape = _merged([shapes[u] for u in outs], "concat")
        features = shape[2] if self.head.pool == "gap" else math.prod(shape)
        for units in (*self.head.hidden, space.num_classes):
            params += features * units + units
            macs += features * units
            features = units
        return macs, params


def _merged(shapes: list[tuple[int, int, int]], merge: str) -> tuple[int, int, int]:
    if merge == "add" or len(shapes) == 1:
        return shapes[0]
    return (shapes[0][0], shapes[0][1], sum(s[2] for s in shapes))


def _pooled(shape: tuple[int, int, int], op: str) -> tuple[int, int, int]:
    if op == "none":
        return shape
    h, w, c = shape
    return (h // 2, w // 2 if w > 1 else 1, c)


class _Draw:
    """Uniform draws from a law's ranges by variable name."""

    def __init__(self, law: SamplingLaw, rng: np.random.Generator) -> None:
        self.rng = rng
        self.ranges = {v.name: (v, r) for v, r in zip(law.variables, law.ranges, strict=True)}

    def __call__(self, name: str):
        v, (lo, hi) = self.ranges[name]
        return v.label(int(self.rng.integers(lo, hi + 1)))

    def labels(self, name: str) -> list:
        v, (lo, hi) = self.ranges[name]
        return [v.label(i) for i in range(lo, hi + 1)]


def _draw_micro(space: MicroSpace, draw: _Draw) -> _Draft:
    one_d = len(space.input_shape) == 2
    shape = (space.input_shape[0], 1, space.input_shape[1]) if one_d else tuple(space.input_shape)
    stages, outputs, downsamples = [], [], []
    for b in range(draw("blocks")):
        if b:
            pool = draw(f"block{b}.pool") if shape[0] >= 2 else "none"
            downsamples.append(pool)
            shape = _pooled(shape, pool)
        in_channels = shape[2]
        stride = draw(f"block{b}.stride") if shape[0] > 1 else 1
        nodes = []
        for i in range(draw(f"block{b}.layers")):
            op = draw(f"block{b}.op")
            dw = [k for k in draw.labels(f"block{b}.kernel") if k >= 3]
            if op == "dwconv" and dw:
                attrs = {"op": "dwconv", "kernel": int(dw[draw.rng.integers(len(dw))])}
            else:
                attrs = {"op": "conv", "kernel": draw(f"block{b}.kernel"),
                         "channels": draw(f"block{b}.channels")}  # fmt: skip
            attrs.update(stride=stride if i == 0 else 1, merge="concat")
            nodes.append((f"n{i}", attrs, [f"n{i - 1}" if i else IN]))
            shape = node_output_shape(attrs, shape)
        last = nodes[-1][0]
        if draw(f"block{b}.residual"):
            if stride == 1 and shape[2] == in_channels:
                nodes.append(("add", {"op": "identity", "merge": "add"}, [last, IN]))
            else:
                proj = {
                    "op": "conv",
                    "kernel": 1,
                    "stride": stride,
                    "channels": shape[2],
                    "merge": "concat",
                }
                nodes.append(("proj", proj, [IN]))
                nodes.append(("add", {"op": "identity", "merge": "add"}, [last, "proj"]))
            last = "add"
        stages.append(nodes)
        outputs.append([last])
    dense = draw("head.dense")
    head = Head(draw("head.pool"), tuple(draw("head.units") for _ in range(dense - 1)))
    return _Draft(stages, outputs, downsamples, head)


def _draw_msnas(space: MSNASSpace, draw: _Draw) -> _Draft:
    ops = space.op_choices()
    stages, outputs = [], []
    for s in range(space.stages):
        count, channels = draw(f"stage{s}.nodes"), draw(f"stage{s}.channels")
        keep = draw(f"stage{s}.edges") / 100.0
        names = [f"n{j}" for j in range(count)]
        nodes, fed = [], set()
        for j, name in enumerate(names):
            attrs = concat_node(ops[space.ops.index(draw(f"stage{s}.op"))], channels)
            sources = [IN, *names[:j]]
            kept = [u for u in sources if draw.rng.random() < keep]
            if not kept:
                kept = [sources[draw.rng.integers(len(sources))]]
            fed.update(kept)
            nodes.append((name, attrs, kept))
        stages.append(nodes)
        outputs.append([n for n in names if n not in fed])
    return _Draft(stages, outputs, [space.downsample] * (space.stages - 1),
                  Head(space.head_pool, space.hidden))  # fmt: skip


def _draw(law: SamplingLaw, rng: np.random.Generator) -> _Draft | Genome:
    draw = _Draw(law, rng)
    if isinstance(law.space, MicroSpace):
        return _draw_micro(law.space, draw)
    if isinstance(law.space, MSNASSpace):
        return _draw_msnas(law.space, draw)
    return law.space.genome(tuple(draw(v.name) for v in law.variables))


def _draws(law: SamplingLaw, n: int, rng: np.random.Generator) -> list[_Draft | Genome]:
    out, failures = [], []
    while len(out) < n:
        try:
            out.append(_draw(law, rng))
        except SearchSpaceError as e:
            failures.append(str(e))
            if len(failures) > 10 * n + 10:
                raise SearchSpaceError(
                    f"This law gives no valid genome in {len(failures)} draws. Expected a law whose "
                    f"samples are networks. Received: {failures[-1]}"
                ) from e
    return out


def _genome(drawn: _Draft | Genome, space: SearchSpace) -> Genome:
    return drawn if isinstance(drawn, Genome) else drawn.genome(space)


def sample(law: SamplingLaw, n: int, seed: int | np.random.Generator | None = None) -> list[Genome]:
    """``n`` genomes of ``law.space`` drawn from ``law``.

    Every use of a variable (each layer's channels, kernel and op, each hidden
    width, ...) is drawn uniformly from its range. Where the space forbids a
    value at that point (a stride of 2 or a pooling once the feature map is 1
    high, a depthwise layer when no kernel of the range is 3 or more), the
    neutral value is used (stride 1, no pooling, a conv layer).

    Raises
    ------
    SearchSpaceError
        If the law gives no valid genome (a cell law whose every genotype is cut off).

    Examples
    --------
    >>> from tfnas.genome import MicroSpace
    >>> space = MicroSpace((8, 8, 1), 10, max_blocks=3)
    >>> genomes = sample(SamplingLaw.full(space), 5, seed=0)
    >>> all(space.contains(g) for g in genomes)
    True
    """
    rng = _rng(seed)
    return [_genome(d, law.space) for d in _draws(law, int(n), rng)]
