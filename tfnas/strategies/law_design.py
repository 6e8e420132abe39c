"""Designing sampling laws for a cost window (no TensorFlow).

After Scheidegger, Benini, Bekas, Malossi, "Constrained deep neural network
architecture search for IoT devices accounting for hardware calibration",
NeurIPS 2019. A law (:class:`tfnas.genome.laws.SamplingLaw`) narrows a space
to one uniform range per variable.

:func:`design_laws` searches for laws whose samples' metric (MACs, parameters,
estimated planned bytes or modelled latency: nothing is trained) lands inside
a target interval ``[t1, t2]``, with a steady-state genetic algorithm:

- **Fitness** (lower is better; 0 is a law on target). The metric of
  ``n_eval`` samples is taken in log10; with their mean ``mu`` and standard
  deviation ``sigma`` (ddof 0) and ``a, b = log10(t1), log10(t2)``::

      fitness = max(0, a - (mu - sigma)) + max(0, (mu + sigma) - b)

  the length, in decades, of ``[mu - sigma, mu + sigma]`` outside ``[a, b]``.
  Given the search's screening (``feasible``), the GA minimises the fitness
  plus the share of the samples that screening rejects
  (:attr:`LawStats.score`): the law's samples must also meet the bounds the
  metric does not describe (a MAC law under an arena and a weight bound).
- **Population**: ``n_init`` random laws (each range the sorted pair of two
  uniform draws in the variable's limits).
- **Step** (``steps`` times): two parents, each the best of a tournament of
  ``tournament_size`` random members; a child by uniform crossover (each
  variable's range from either parent) and mutation (each variable with
  probability ``1 / len(variables)``, at least one: one bound moved, or the
  whole range shifted, by up to an eighth of the variable's span); the child
  replaces the worst member (the oldest among equals) unless it is worse.
- **Clustering**: spectral clustering (:func:`cluster_laws`) of the final
  population into ``clusters`` groups (only the laws on target when at least
  ``clusters`` distinct ones are); the best law of each group is kept, and
  each kept law is evaluated again on ``check_samples`` fresh samples
  (:class:`LawStats`).

:func:`decade_windows` splits a range at ``1, 2, 5 x 10^k`` (the sliding
windows of the paper) and :func:`design_windows` designs laws for each; the
result is a :class:`LawSet`, saved as JSON and reusable on another dataset of
the same input shape (:meth:`LawSet.load`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tfnas.errors import SearchSpaceError
from tfnas.genome import Genome, SearchSpace, analyze
from tfnas.genome.laws import (
    FORMAT,
    VERSION,
    SamplingLaw,
    _Draft,
    _draws,
    _genome,
    _loads,
    _rng,
    _short,
    _space_from,
    law_variables,
)
from tfnas.validation import read_text

__all__ = [
    "METRICS",
    "LawStats",
    "LawWindow",
    "LawSet",
    "evaluate_law",
    "law_fitness",
    "design_laws",
    "cluster_laws",
    "decade_windows",
    "design_windows",
    "default_range",
    "DESIGN_DEFAULTS",
    "check_law_options",
    "load_for_space",
]

logger = logging.getLogger("tfnas")

#: Metrics a law can be designed for (all computed before anything is built or trained).
METRICS = ("macs", "params", "planned_bytes", "latency_ms")
Metric = str | Callable[[Genome], float]


def _metric(drawn: _Draft | Genome, space: SearchSpace, metric: Metric, device) -> float:
    if callable(metric):
        return float(metric(_genome(drawn, space)))
    if metric in ("macs", "params"):
        macs, params = drawn.costs(space) if isinstance(drawn, _Draft) else (
            lambda c: (c.macs, c.params))(analyze(drawn))  # fmt: skip
        return float(macs if metric == "macs" else params)
    from tfnas.memory.estimate import estimate_memory

    genome = _genome(drawn, space)
    estimate = estimate_memory(genome)
    if metric == "planned_bytes":
        return float(estimate.planned_bytes)
    from tfnas.objectives.latency import DEFAULT_LATENCY_DEVICE, estimate_genome_latency

    return float(
        estimate_genome_latency(genome, device or DEFAULT_LATENCY_DEVICE, estimate=estimate)
    )


def _check_metric(metric: Metric) -> None:
    if not callable(metric) and metric not in METRICS:
        raise SearchSpaceError(
            f"Unknown law metric. Expected one of {list(METRICS)} or a callable on a genome. "
            f"Received: metric={metric!r}"
        )


def evaluate_law(
    law: SamplingLaw, n: int, metric: Metric = "macs", *, seed=None, device=None
) -> np.ndarray:
    """The metric of ``n`` samples of ``law`` (``device``: the board of ``latency_ms``)."""
    _check_metric(metric)
    rng = _rng(seed)
    return np.array([_metric(d, law.space, metric, device) for d in _draws(law, int(n), rng)])


def _law_stats(law, n, metric, target, *, rng, device, feasible) -> LawStats:
    """Stats of ``n`` fresh samples of ``law``; with ``feasible``, the share that passes it."""
    drawn = _draws(law, int(n), rng)
    stats = law_fitness([_metric(d, law.space, metric, device) for d in drawn], target)
    if feasible is None:
        return stats
    share = float(np.mean([bool(feasible(_genome(d, law.space))) for d in drawn]))
    return replace(stats, feasible=share)


# ------------------------------------------------------------------- fitness


@dataclass(frozen=True)
class LawStats:
    """How a law's samples fall: log10 ``mean`` and ``std`` of the metric, ``fitness``
    (decades of ``mean ± std`` outside the target), ``inside`` (share of samples in
    the target) over ``samples`` samples, and ``feasible``, the share that passes
    the search's screening (1 when the law was designed without constraints)."""

    mean: float
    std: float
    fitness: float
    inside: float
    samples: int
    feasible: float = 1.0

    @property
    def score(self) -> float:
        """What the GA minimises: ``fitness`` plus the share of samples that screening rejects."""
        return self.fitness + (1.0 - self.feasible)

    @property
    def interval(self) -> tuple[float, float]:
        """``10 ** (mean ± std)``: mean ± std in the metric's units."""
        return (10 ** (self.mean - self.std), 10 ** (self.mean + self.std))

    def to_dict(self) -> dict:
        return {"mean_log10": self.mean, "std_log10": self.std, "fitness": self.fitness,
                "inside": self.inside, "samples": self.samples, "feasible": self.feasible}  # fmt: skip


def law_fitness(values: Sequence[float], target: tuple[float, float]) -> LawStats:
    """The fitness of samples ``values`` against ``target`` (see the module docstring).

    Examples
    --------
    >>> law_fitness([100, 1000], (100, 1000)).fitness  # log10: mean 2.5, std 0.5
    0.0
    >>> round(law_fitness([10, 10], (100, 1000)).fitness, 6)
    1.0
    """
    lo, hi = target
    v = np.asarray(values, dtype=float)
    x = np.log10(np.maximum(v, 1e-300))
    mu, sigma = float(x.mean()), float(x.std())
    a, b = math.log10(lo), math.log10(hi)
    fitness = max(0.0, a - (mu - sigma)) + max(0.0, (mu + sigma) - b)
    inside = float(np.mean((v >= lo) & (v <= hi)))
    return LawStats(mu, sigma, round(fitness, 12), inside, len(v))


def _check_target(target) -> tuple[float, float]:
    try:
        lo, hi = (float(t) for t in target)
    except (TypeError, ValueError):
        raise SearchSpaceError(f"A target is two numbers [t1, t2]. Received: {target!r}") from None
    if not (0 < lo < hi and math.isfinite(hi)):
        raise SearchSpaceError(f"A target needs 0 < t1 < t2. Received: [{lo}, {hi}]")
    return lo, hi


# ----------------------------------------------------------------------- GA


def _random_law(space, variables, rng) -> SamplingLaw:
    pairs = []
    for v in variables:
        a, b = rng.integers(v.low, v.high + 1, size=2)
        pairs.append((min(a, b), max(a, b)))
    return SamplingLaw(space, tuple(pairs))


def _crossover(a: SamplingLaw, b: SamplingLaw, rng) -> list[tuple[int, int]]:
    pick = rng.random(len(a.ranges)) < 0.5
    return [ra if p else rb for p, ra, rb in zip(pick, a.ranges, b.ranges, strict=True)]


def _mutate(pairs: list[tuple[int, int]], variables, rng) -> list[tuple[int, int]]:
    pairs = list(pairs)
    chosen = np.flatnonzero(rng.random(len(pairs)) < 1.0 / len(pairs))
    if not len(chosen):
        chosen = [rng.integers(len(pairs))]
    for i in chosen:
        v, (lo, hi) = variables[i], pairs[i]
        if v.high == v.low:
            continue
        step = int(rng.integers(1, max(1, math.ceil((v.high - v.low) / 8)) + 1)) * int(
            rng.choice([-1, 1])
        )
        kind = rng.integers(3)
        if kind == 0:
            lo += step
        elif kind == 1:
            hi += step
        else:
            step = min(max(step, v.low - lo), v.high - hi)  # shift the whole range, kept inside
            lo, hi = lo + step, hi + step
        lo, hi = (min(max(x, v.low), v.high) for x in (lo, hi))
        pairs[i] = (min(lo, hi), max(lo, hi))
    return pairs


def _tournament(fitness: list[float], size: int, rng) -> int:
    picks = rng.choice(len(fitness), size=min(size, len(fitness)), replace=False)
    return int(min(picks, key=lambda i: fitness[i]))


@dataclass(frozen=True, eq=False)
class LawWindow:
    """The laws designed for one ``target`` window, best first, with their stats.

    ``design`` holds the GA's trace: the best and mean fitness at every 100 steps
    and at the end, the final population's share on target, and its time in seconds.
    """

    target: tuple[float, float]
    laws: tuple[SamplingLaw, ...]
    stats: tuple[LawStats, ...]
    design: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"target": list(self.target), "design": self.design,
                "laws": [{"ranges": law.labels(), "stats": s.to_dict()}
                         for law, s in zip(self.laws, self.stats, strict=True)]}  # fmt: skip


def design_laws(
    space: SearchSpace,
    target: tuple[float, float],
    metric: Metric = "macs",
    *,
    n_init: int = 100,
    steps: int = 900,
    n_eval: int = 10,
    tournament_size: int = 5,
    clusters: int = 10,
    check_samples: int = 100,
    device=None,
    feasible: Callable[[Genome], bool] | None = None,
    seed: int | None = 0,
) -> LawWindow:
    """Design laws whose samples' ``metric`` has mean ± std inside ``target`` (a GA).

    Parameters
    ----------
    space:
        The micro, msnas or cell space.
    target:
        ``(t1, t2)``, the interval of the metric, ``0 < t1 < t2``.
    metric:
        ``"macs"``, ``"params"``, ``"planned_bytes"`` (the genome estimate),
        ``"latency_ms"`` (modelled, on ``device``) or a callable on a genome.
    n_init, steps, n_eval:
        Population size, GA steps (one child each) and samples per law evaluation
        (the paper's 100, 900 and 10).
    tournament_size:
        Members drawn for each parent's tournament.
    clusters:
        Laws kept: the best of each spectral cluster of the final population.
    check_samples:
        Fresh samples on which each kept law is evaluated again for its stats.
    feasible:
        The search's screening (a genome -> bool); the GA then minimises the
        fitness plus the share of samples it rejects (:attr:`LawStats.score`),
        so that laws put their samples where the other bounds hold too.
    seed:
        Seeds the population, the GA and every sample.

    Returns
    -------
    LawWindow
        The kept laws, best first (by their fresh stats' fitness, then share inside).

    Raises
    ------
    SearchSpaceError
        For an unknown metric, a bad target or setting, or a space without law variables.

    Examples
    --------
    >>> from tfnas.genome import MicroSpace
    >>> space = MicroSpace((8, 8, 1), 10, max_blocks=2, max_channels=8)
    >>> w = design_laws(space, (2e3, 5e3), n_init=10, steps=20, clusters=2, check_samples=20)
    >>> len(w.laws)
    2
    """
    _check_metric(metric)
    target = _check_target(target)
    for name, value, low in [("n_init", n_init, 2), ("steps", steps, 0), ("n_eval", n_eval, 2),
                             ("tournament_size", tournament_size, 1), ("clusters", clusters, 1),
                             ("check_samples", check_samples, 2)]:  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise SearchSpaceError(
                f"{name} must be an integer >= {low}. Received: {name}={value!r}"
            )
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    variables = law_variables(space)

    def fitness_of(law: SamplingLaw) -> float:
        try:
            return _law_stats(law, n_eval, metric, target, rng=rng, device=device,
                              feasible=feasible).score  # fmt: skip
        except SearchSpaceError:
            return math.inf

    population = [_random_law(space, variables, rng) for _ in range(n_init)]
    fitness = [fitness_of(law) for law in population]
    trace = []
    for step in range(steps):
        if step % 100 == 0:
            trace.append({"step": step, "best": min(fitness), "mean": float(np.mean(fitness))})
        a = population[_tournament(fitness, tournament_size, rng)]
        b = population[_tournament(fitness, tournament_size, rng)]
        pairs = _crossover(a, b, rng)
        known = set(population)
        for _ in range(10):  # a child that is already in the population is mutated again
            pairs = _mutate(pairs, variables, rng)
            child = SamplingLaw(space, tuple(pairs))
            if child not in known:
                break
        f = fitness_of(child)
        worst = int(np.argmax(fitness))
        if f <= fitness[worst]:
            del population[worst], fitness[worst]
            population.append(child)
            fitness.append(f)
    trace.append({"step": steps, "best": min(fitness), "mean": float(np.mean(fitness))})
    kept = cluster_laws(population, fitness, clusters, seed=rng)
    laws = [population[i] for i in kept]
    stats = [_law_stats(law, check_samples, metric, target, rng=rng, device=device,
                        feasible=feasible) for law in laws]  # fmt: skip
    order = sorted(range(len(laws)), key=lambda i: (stats[i].score, -stats[i].inside, i))
    design = {
        "screened": feasible is not None,
        "trace": trace,
        "on_target": float(np.mean([f == 0 for f in fitness])),
        "seconds": round(time.perf_counter() - start, 3),
    }
    logger.info("laws for %s in [%g, %g]: best fitness %.3g, %.0f%% of the population on target, %.1f s",
                metric if isinstance(metric, str) else "metric", *target, min(fitness),
                100 * design["on_target"], design["seconds"])  # fmt: skip
    return LawWindow(target, tuple(laws[i] for i in order), tuple(stats[i] for i in order), design)


def cluster_laws(
    laws: Sequence[SamplingLaw], fitness: Sequence[float], k: int = 10, *, seed=0
) -> list[int]:
    """Indices of the best law of each of ``k`` spectral clusters of ``laws``, best first.

    Laws are points in ``[0, 1]^(2 x variables)`` (each range's bounds scaled by
    the variable's limits); the affinity is a Gaussian of their squared
    distance, scaled by its median. When at least ``k`` distinct laws have
    fitness 0, only those are clustered. With ``k`` or fewer distinct laws,
    each distinct law is its own cluster (so fewer than ``k`` may come back).

    Examples
    --------
    >>> from tfnas.genome import MicroSpace
    >>> law = SamplingLaw.full(MicroSpace((8, 8, 1), 10, max_blocks=1))
    >>> cluster_laws([law, law, law], [0.5, 0.0, 0.2], k=10)
    [1]
    """
    if len(laws) != len(fitness):
        raise ValueError(
            f"laws and fitness differ in length. Received: {len(laws)} and {len(fitness)}"
        )
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1. Received: k={k!r}")
    best: dict[SamplingLaw, int] = {}
    for i, law in enumerate(laws):
        if law not in best or fitness[i] < fitness[best[law]]:
            best[law] = i
    distinct = sorted(best.values(), key=lambda i: (fitness[i], i))
    on_target = [i for i in distinct if fitness[i] == 0]
    if len(on_target) >= k:
        distinct = on_target
    if len(distinct) <= k:
        return distinct
    from sklearn.cluster import SpectralClustering

    variables = laws[distinct[0]].variables
    span = np.array([max(v.high - v.low, 1) for v in variables], dtype=float)
    low = np.array([v.low for v in variables], dtype=float)
    points = np.array([((np.array(laws[i].ranges, dtype=float) - low[:, None]) / span[:, None]).ravel()
                       for i in distinct])  # fmt: skip
    d2 = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    scale = float(np.median(d2[d2 > 0])) if (d2 > 0).any() else 1.0
    affinity = np.exp(-d2 / scale)
    state = int(_rng(seed).integers(2**31 - 1))
    labels = SpectralClustering(k, affinity="precomputed", random_state=state).fit_predict(affinity)
    kept = []
    for label in sorted(set(labels)):
        members = [distinct[j] for j in np.flatnonzero(labels == label)]
        kept.append(min(members, key=lambda i: (fitness[i], i)))
    return sorted(kept, key=lambda i: (fitness[i], i))


# ------------------------------------------------------------------- windows


def decade_windows(low: float, high: float) -> list[tuple[float, float]]:
    """Split ``[low, high]`` at the points ``1, 2, 5 x 10^k`` inside it (the sliding windows).

    Examples
    --------
    >>> decade_windows(1e5, 1e6)
    [(100000.0, 200000.0), (200000.0, 500000.0), (500000.0, 1000000.0)]
    >>> decade_windows(3e3, 4e3)
    [(3000.0, 4000.0)]
    """
    low, high = _check_target((low, high))
    cuts = []
    for e in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 2):
        for m in (1, 2, 5):
            x = float(f"{m}e{e}")
            if low * (1 + 1e-9) < x < high * (1 - 1e-9):
                cuts.append(x)
    edges = [low, *sorted(cuts), high]
    return list(zip(edges[:-1], edges[1:], strict=True))


@dataclass(frozen=True, eq=False)
class LawSet:
    """Laws designed for several windows of one metric on one space; saved as JSON.

    Attributes
    ----------
    space:
        The space the laws sample.
    metric:
        The metric they were designed for (a name from :data:`METRICS`).
    windows:
        One :class:`LawWindow` per target window, in increasing order.
    device:
        The board of ``latency_ms`` (``None``: the default board).
    settings:
        The design settings (``n_init``, ``steps``, ``n_eval``, ..., ``seed``).
    """

    space: SearchSpace
    metric: str
    windows: tuple[LawWindow, ...]
    device: str | None = None
    settings: dict = field(default_factory=dict)

    @property
    def laws(self) -> list[SamplingLaw]:
        return [law for w in self.windows for law in w.laws]

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION,
                "space": {"name": self.space.name, "config": self.space.get_config()},
                "metric": self.metric, "device": self.device, "settings": self.settings,
                "windows": [w.to_dict() for w in self.windows]}  # fmt: skip

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_json())
        return path

    @classmethod
    def from_dict(cls, data: dict, where: str = "laws") -> LawSet:
        """A law set from :meth:`to_dict`'s form, every field and range checked.

        Raises
        ------
        SearchSpaceError
            Naming the first wrong field: format, version, space, metric, a window's
            target, or a law's ranges (variables, form, limits).
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SearchSpaceError(
                f"{where} is not a tfnas laws file. Expected an object with format {FORMAT!r}. "
                f"Received: {_short(data if not isinstance(data, dict) else data.get('format'))}"
            )
        if data.get("version") != VERSION:
            raise SearchSpaceError(
                f"{where}: unsupported laws version. Expected {VERSION}. Received: {data.get('version')!r}"
            )
        space = _space_from(data.get("space"), where)
        metric = data.get("metric")
        if metric not in METRICS:
            raise SearchSpaceError(f"{where}: unknown metric. Expected one of {list(METRICS)}. "
                                   f"Received: {metric!r}")  # fmt: skip
        windows = data.get("windows")
        if not isinstance(windows, list) or not windows:
            raise SearchSpaceError(
                f"{where}: 'windows' must be a non-empty list. Received: {_short(windows)}"
            )
        out = []
        for i, w in enumerate(windows):
            at = f"{where}, window {i}"
            if not isinstance(w, dict) or not isinstance(w.get("laws"), list) or not w["laws"]:
                raise SearchSpaceError(f"{at}: expected an object with 'target' and a non-empty "
                                       f"'laws' list. Received: {_short(w)}")  # fmt: skip
            try:
                target = _check_target(w.get("target"))
            except SearchSpaceError as e:
                raise SearchSpaceError(f"{at}: {e}") from None
            laws = [
                SamplingLaw.from_dict(entry, space, f"{at}, law {j}")
                for j, entry in enumerate(w["laws"])
            ]
            stats = [
                _stats(entry.get("stats"), f"{at}, law {j}") for j, entry in enumerate(w["laws"])
            ]
            out.append(LawWindow(target, tuple(laws), tuple(stats), dict(w.get("design") or {})))
        device = data.get("device")
        if device is not None and not isinstance(device, str):
            raise SearchSpaceError(
                f"{where}: 'device' must be a board name or null. Received: {device!r}"
            )
        return cls(space, metric, tuple(out), device, dict(data.get("settings") or {}))

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "laws") -> LawSet:
        return cls.from_dict(_loads(text, f"{where} file"), where)

    @classmethod
    def load(
        cls,
        path: str | Path,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
    ) -> LawSet:
        """Read a laws file; with a task, check it and move the laws to it.

        Laws transfer to another dataset with the same input shape: the space is
        rebuilt for ``num_classes`` (the laws' variables do not involve it).

        Raises
        ------
        SearchSpaceError
            If the file is missing or malformed, or the input shape differs.
        """
        path = Path(path)
        text = read_text(path, "Laws file", "the JSON written by `tfnas laws design`",
                         error=SearchSpaceError)  # fmt: skip
        laws = cls.from_json(text, str(path))
        if input_shape is not None and tuple(input_shape) != tuple(laws.space.input_shape):
            raise SearchSpaceError(
                f"{path} holds laws for inputs of shape {tuple(laws.space.input_shape)}. Expected "
                f"data of that shape (laws transfer across datasets of one input shape). "
                f"Received: input shape {tuple(input_shape)}"
            )
        if num_classes is not None and num_classes != laws.space.num_classes:
            logger.info(
                "laws for %d classes used on %d classes", laws.space.num_classes, num_classes
            )
            laws = laws.for_space(
                type(laws.space)(**{**laws.space.get_config(), "num_classes": num_classes})
            )
        return laws

    def for_space(self, space: SearchSpace) -> LawSet:
        """The same ranges on ``space`` (another class count; the variables must be equal)."""
        if law_variables(space) != law_variables(self.space):
            raise SearchSpaceError(
                f"The laws are for a {self.space.name} space {self.space.get_config()}. Expected a "
                f"space with the same variables. Received: {space.name} {space.get_config()}"
            )
        windows = tuple(replace(w, laws=tuple(SamplingLaw(space, law.ranges) for law in w.laws))
                        for w in self.windows)  # fmt: skip
        return replace(self, space=space, windows=windows)


def _stats(data, where: str) -> LawStats:
    if data is None:
        return LawStats(math.nan, math.nan, math.nan, math.nan, 0)
    keys = ("mean_log10", "std_log10", "fitness", "inside", "samples")
    if not isinstance(data, dict) or any(not isinstance(data.get(k), (int, float)) for k in keys):
        raise SearchSpaceError(
            f"{where}: 'stats' must hold the numbers {list(keys)}. Received: {_short(data)}"
        )
    feasible = data.get("feasible", 1.0)  # files written before screening-aware design lack it
    if not isinstance(feasible, (int, float)) or not 0 <= feasible <= 1:
        raise SearchSpaceError(
            f"{where}: 'feasible' must be a share in [0, 1]. Received: {feasible!r}"
        )
    return LawStats(*(data[k] for k in keys[:4]), int(data["samples"]), float(feasible))


def design_windows(
    space: SearchSpace,
    windows: Sequence[tuple[float, float]],
    metric: str = "macs",
    *,
    device: str | None = None,
    feasible: Callable[[Genome], bool] | None = None,
    seed: int = 0,
    **settings,
) -> LawSet:
    """Design laws for every window (:func:`design_laws` with ``settings``), seeded per window.

    ``feasible`` (the search's screening) makes every window's laws favour
    samples that pass it; it is not saved with the laws.

    Examples
    --------
    >>> from tfnas.genome import MicroSpace
    >>> space = MicroSpace((8, 8, 1), 10, max_blocks=2, max_channels=8)
    >>> laws = design_windows(space, decade_windows(1e3, 5e3), n_init=8, steps=8, clusters=2,
    ...                       check_samples=10)
    >>> [w.target for w in laws.windows]
    [(1000.0, 2000.0), (2000.0, 5000.0)]
    """
    if metric not in METRICS:
        _check_metric(metric)
        raise SearchSpaceError(f"A saved law set needs a named metric from {list(METRICS)}. "
                               f"Received: a callable")  # fmt: skip
    if not windows:
        raise SearchSpaceError("design_windows needs at least one window. Received: []")
    out = [design_laws(space, w, metric, device=device, feasible=feasible, seed=[seed, i], **settings)
           for i, w in enumerate(windows)]  # fmt: skip
    name = getattr(device, "name", device)
    return LawSet(space, metric, tuple(out), name, {**settings, "seed": seed})


#: The constraint that bounds each law metric (parameters are at least the int8 weight bytes).
_BOUNDED_BY = {"macs": "max_macs", "params": "max_weights_bytes",
               "planned_bytes": "max_arena_bytes", "latency_ms": "max_latency_ms"}  # fmt: skip


def default_range(
    space: SearchSpace, metric: str, constraints, *, samples: int = 200, seed: int = 0
) -> tuple[float, float]:
    """The metric range a search covers when none is given.

    The 5th and 95th percentiles of the metric over ``samples`` samples of the
    widest law (:meth:`SamplingLaw.full`) that pass screening
    (:func:`tfnas.strategies.core.screen`), widened to the ``1, 2, 5 x 10^k``
    grid; the high end is capped by the constraint on the metric, if any.

    Raises
    ------
    SearchSpaceError
        If no sample passes screening.
    """
    from tfnas.strategies.core import screen

    _check_metric(metric)
    law = SamplingLaw.full(space)
    rng = np.random.default_rng([seed, 104729])
    device = constraints.latency_device if metric == "latency_ms" else None
    values = []
    for drawn in _draws(law, samples, rng):
        if not screen(_genome(drawn, space), constraints)["violations"]:
            values.append(_metric(drawn, space, metric, device))
    if not values:
        raise SearchSpaceError(
            f"No sample of the {space.name} space passes screening against {constraints.bounds()}. "
            f"Expected a space that can meet the bounds. Received: 0 of {samples}"
        )
    low, high = np.percentile(values, [5, 95])
    low = _grid_down(max(float(low), 1e-9))
    high = _grid_up(max(float(high), 2 * low))
    bound = getattr(constraints, _BOUNDED_BY[metric], None)
    if bound:
        high = min(high, float(bound))
    if not low < high:
        low = _grid_down(high / 2)
    return (float(low), float(high))


def _grid_down(x: float) -> float:
    e = math.floor(math.log10(x))
    return max(m * 10.0**k for k in (e - 1, e) for m in (1, 2, 5) if m * 10.0**k <= x * (1 + 1e-9))


def _grid_up(x: float) -> float:
    e = math.floor(math.log10(x))
    return min(m * 10.0**k for k in (e, e + 1) for m in (1, 2, 5) if m * 10.0**k >= x * (1 - 1e-9))


#: The paper's design settings (:func:`design_laws`), the defaults of a search's ``design`` option.
DESIGN_DEFAULTS = {"n_init": 100, "steps": 900, "n_eval": 10, "tournament_size": 5,
                   "clusters": 10, "check_samples": 100}  # fmt: skip


def load_for_space(path: str | Path, space: SearchSpace) -> LawSet:
    """The laws in ``path`` for a search on ``space`` (same space settings; the class count may differ).

    Raises
    ------
    SearchSpaceError
        If the file is missing or malformed, or its laws are for another input shape or space.
    """
    lawset = LawSet.load(path, space.input_shape, space.num_classes)
    if lawset.space.name != space.name or lawset.space.get_config() != space.get_config():
        raise SearchSpaceError(
            f"The laws in {path} are for the {lawset.space.name} space {lawset.space.get_config()}. "
            f"Expected laws for the search's space (design them with the same --space and "
            f"space_options). Received: {space.name} {space.get_config()}"
        )
    return lawset


def check_law_options(options: dict, space: SearchSpace | None = None) -> dict:
    """The ``laws`` strategy's options checked (and normalised) before anything is built.

    ``laws`` (a file, checked against ``space`` when given), ``metric``,
    ``metric_range`` (``[low, high]``), ``windows`` (``[[t1, t2], ...]``) and
    ``design`` (settings over :data:`DESIGN_DEFAULTS`, each an integer).

    Raises
    ------
    SearchSpaceError
        Naming the option, what it must be and what it was.
    """
    out = dict(options)
    if out.get("metric", "macs") not in METRICS:
        raise SearchSpaceError(
            f"metric must be one of {list(METRICS)}. Received: metric={out['metric']!r}"
        )
    if out.get("metric_range") is not None:
        try:
            out["metric_range"] = list(_check_target(out["metric_range"]))
        except SearchSpaceError as e:
            raise SearchSpaceError(f"metric_range: {e}") from None
    if out.get("windows") is not None:
        windows = out["windows"]
        if not isinstance(windows, (list, tuple)) or not windows:
            raise SearchSpaceError(
                f"windows must be a non-empty list of [t1, t2]. Received: windows={windows!r}"
            )
        try:
            out["windows"] = [list(_check_target(w)) for w in windows]
        except SearchSpaceError as e:
            raise SearchSpaceError(f"windows: {e}") from None
    design = out.get("design") or {}
    if not isinstance(design, dict):
        raise SearchSpaceError(f"design must be a mapping of settings. Received: design={design!r}")
    unknown = sorted(set(design) - set(DESIGN_DEFAULTS))
    if unknown:
        raise SearchSpaceError(f"Unknown design settings {unknown}. Expected some of "
                               f"{sorted(DESIGN_DEFAULTS)}. Received: design={design}")  # fmt: skip
    low = {"n_init": 2, "steps": 0, "n_eval": 2, "check_samples": 2}
    for key, value in design.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, np.integer))
            or value < low.get(key, 1)
        ):
            raise SearchSpaceError(
                f"design[{key!r}] must be an integer >= {low.get(key, 1)}. Received: {key}={value!r}"
            )
    if out.get("laws") is not None:
        if not isinstance(out["laws"], (str, Path)):
            raise SearchSpaceError(
                f"laws must be the path of a laws file. Received: laws={out['laws']!r}"
            )
        if space is not None:
            law_variables(space)
            load_for_space(out["laws"], space)
    if space is not None:
        law_variables(space)
    return out
