"""Sampling laws: variables, sampling inside ranges, JSON, the GA, clustering, windows, oracle, CLI."""

import json
import math
import subprocess
import sys

import keras_tuner
import numpy as np
import pytest

from tfnas.errors import SearchSpaceError
from tfnas.genome import CellSpace, Genome, MicroSpace, MSNASSpace, analyze, stage_order
from tfnas.genome import laws as gl
from tfnas.genome.laws import SamplingLaw, law_variables, sample
from tfnas.objectives import Constraints
from tfnas.strategies import law_design as ld
from tfnas.strategies.law_design import (
    LawSet,
    cluster_laws,
    decade_windows,
    design_laws,
    design_windows,
    evaluate_law,
    law_fitness,
)


def micro(**kw):
    return MicroSpace((16, 16, 1), 10, **{"max_blocks": 4, "max_channels": 16, **kw})


def random_laws(space, count, seed):
    rng = np.random.default_rng(seed)
    return [ld._random_law(space, law_variables(space), rng) for _ in range(count)]


def test_law_work_needs_no_tensorflow():
    code = (
        "import sys; from tfnas.genome import MicroSpace; from tfnas.genome import laws as gl; from tfnas.strategies import law_design as ld; "
        "s = MicroSpace((8, 8, 1), 10, max_blocks=2, max_channels=8); "
        "w = ld.design_laws(s, (1e3, 5e3), n_init=6, steps=6, clusters=2, check_samples=5); "
        "gl.sample(w.laws[0], 3, seed=0); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# ----------------------------------------------------------------- variables


def test_variables_of_each_space():
    names = [v.name for v in law_variables(micro(max_blocks=2))]
    assert names == ["blocks",
                     "block0.layers", "block0.op", "block0.kernel", "block0.channels", "block0.stride",
                     "block0.residual",
                     "block1.layers", "block1.op", "block1.kernel", "block1.channels", "block1.stride",
                     "block1.residual", "block1.pool",
                     "head.pool", "head.dense", "head.units"]  # fmt: skip
    by_name = {v.name: v for v in law_variables(micro(max_blocks=2))}
    assert (by_name["block1.channels"].low, by_name["block1.channels"].high) == (1, 16)
    assert by_name["block0.kernel"].choices == (1, 3, 5, 7)
    msnas = law_variables(MSNASSpace((16, 16, 1), 10, stages=2, nodes=4, channels=(8, 16)))
    assert [(v.name, v.low, v.high) for v in msnas[:4]] == [
        ("stage0.nodes", 1, 4), ("stage0.op", 0, 1), ("stage0.channels", 1, 32), ("stage0.edges", 0, 100)
    ]  # fmt: skip
    cell = law_variables(CellSpace((8, 8, 1), 10, channels=(4,)))
    assert [v.name for v in cell] == [
        "edge0_1",
        "edge0_2",
        "edge1_2",
        "edge0_3",
        "edge1_3",
        "edge2_3",
    ]


# ------------------------------------------------------------------ sampling


def _check_micro_sample(law: SamplingLaw, g: Genome) -> None:
    r = dict(zip([v.name for v in law.variables], law.ranges, strict=True))
    kernels = law.variables[3].choices

    def inside(name, value, labels=None):
        lo, hi = r[name]
        allowed = labels[lo : hi + 1] if labels else range(lo, hi + 1)
        assert value in allowed, (name, value, r[name])

    inside("blocks", len(g.stages))
    pools = ("none", "maxpool", "avgpool")
    for b, graph in enumerate(g.stages):
        layers = [n for n in stage_order(graph) if n.startswith("n")]
        inside(f"block{b}.layers", len(layers))
        inside(f"block{b}.residual", int("add" in graph))
        for n in layers:
            a = graph.nodes[n]
            if a["op"] == "conv":
                inside(f"block{b}.channels", a["channels"])
                inside(f"block{b}.kernel", a["kernel"], kernels)
            else:  # a depthwise layer: the op and its kernel are both in range
                inside(f"block{b}.op", "dwconv", ("conv", "dwconv"))
                inside(f"block{b}.kernel", a["kernel"], kernels)
        if graph.nodes["n0"]["stride"] == 2:
            inside(f"block{b}.stride", 2)
        if b and g.downsamples[b - 1].op != "none":
            inside(f"block{b}.pool", g.downsamples[b - 1].op, pools)
    inside("head.dense", len(g.head.hidden) + 1)
    inside("head.pool", g.head.pool, ("gap", "flatten"))
    for units in g.head.hidden:
        inside("head.units", units)


def test_micro_samples_stay_inside_their_ranges_and_costs_match_analyze():
    space = micro()
    laws = random_laws(space, 40, seed=3)
    count = 0
    for i, law in enumerate(laws):
        rng = np.random.default_rng(i)
        for drawn in gl._draws(law, 8, rng):
            g = drawn.genome(space)
            assert space.contains(g)
            _check_micro_sample(law, g)
            costs = analyze(g)
            assert drawn.costs(space) == (costs.macs, costs.params)
            count += 1
    assert count == 320


def test_a_one_value_law_gives_exactly_that_architecture():
    space = micro()
    pairs = {"blocks": (2, 2), "block0.layers": (1, 1), "block0.op": (0, 0), "block0.kernel": (1, 1),
             "block0.channels": (4, 4), "block0.stride": (1, 1), "block0.residual": (0, 0),
             "block1.layers": (1, 1), "block1.op": (0, 0), "block1.kernel": (1, 1),
             "block1.channels": (8, 8), "block1.stride": (1, 1), "block1.residual": (0, 0),
             "block1.pool": (1, 1), "head.pool": (0, 0), "head.dense": (1, 1)}  # fmt: skip
    ranges = tuple(pairs.get(v.name, (v.low, v.low)) for v in law_variables(space))
    genomes = sample(SamplingLaw(space, ranges), 5, seed=0)
    assert len({g.canonical_hash() for g in genomes}) == 1
    # conv3x3 1->4 on 16x16, maxpool to 8x8, conv3x3 4->8, gap, dense 8->10 (hand count).
    assert analyze(genomes[0]).macs == 9 * 1 * 4 * 256 + 9 * 4 * 8 * 64 + 8 * 10
    assert evaluate_law(SamplingLaw(space, ranges), 3, "macs", seed=1).tolist() == [27_728.0] * 3


def test_msnas_and_cell_samples_stay_inside_their_ranges():
    space = MSNASSpace((16, 16, 1), 10, stages=2, nodes=5, channels=(8, 16))
    for i, law in enumerate(random_laws(space, 20, seed=5)):
        r = dict(zip([v.name for v in law.variables], law.ranges, strict=True))
        for drawn in gl._draws(law, 5, np.random.default_rng(i)):
            g = drawn.genome(space)
            assert space.contains(g)
            assert drawn.costs(space) == (analyze(g).macs, analyze(g).params)
            for s, graph in enumerate(g.stages):
                nodes = stage_order(graph)
                assert r[f"stage{s}.nodes"][0] <= len(nodes) <= r[f"stage{s}.nodes"][1]
                lo, hi = r[f"stage{s}.op"]
                for n in nodes:
                    kind = "conv1x1" if graph.nodes[n]["op"] == "conv" else "sepconv3x3"
                    assert space.ops.index(kind) in range(lo, hi + 1)
                    assert (
                        r[f"stage{s}.channels"][0]
                        <= graph.nodes[n]["channels"]
                        <= r[f"stage{s}.channels"][1]
                    )
    # Edges kept with probability 0: every node is fed by exactly one earlier node.
    ranges = tuple(
        (0, 0) if v.name.endswith(".edges") else (v.high, v.high) for v in law_variables(space)
    )
    for g in sample(SamplingLaw(space, ranges), 10, seed=1):
        assert all(graph.in_degree(n) == 1 for graph in g.stages for n in stage_order(graph))
    cell = CellSpace((8, 8, 1), 10, channels=(4,))
    for i, law in enumerate(random_laws(cell, 20, seed=6)):
        try:
            genomes = sample(law, 4, seed=i)
        except SearchSpaceError as e:  # a law whose every genotype is cut off
            assert "no valid genome" in str(e)
            continue
        for g in genomes:  # an edge out of a node that receives nothing is dropped: "none"
            for op, (lo, hi) in zip(cell.genotype(g), law.ranges, strict=True):
                assert cell.ops.index(op) in range(lo, hi + 1) or op == "none"
    # Without "none" in any range every node is live, and every edge's op is in its range.
    for i, law in enumerate(random_laws(cell, 10, seed=7)):
        law = SamplingLaw(cell, tuple((max(lo, 1), max(hi, 1)) for lo, hi in law.ranges))
        for g in sample(law, 4, seed=i):
            for op, (lo, hi) in zip(cell.genotype(g), law.ranges, strict=True):
                assert cell.ops.index(op) in range(lo, hi + 1)


# ---------------------------------------------------------------------- JSON


def test_law_and_law_set_round_trip_through_json(tmp_path):
    space = micro()
    for law in random_laws(space, 10, seed=1):
        again = SamplingLaw.from_json(law.to_json())
        assert again == law and hash(again) == hash(law)
        assert [g.canonical_hash() for g in sample(again, 4, seed=2)] == [
            g.canonical_hash() for g in sample(law, 4, seed=2)
        ]
    lawset = design_windows(space, [(2e3, 5e3), (5e3, 1e4)], n_init=8, steps=10, clusters=3,
                            check_samples=10, seed=4)  # fmt: skip
    path = lawset.save(tmp_path / "laws.json")
    loaded = LawSet.load(path)
    assert loaded.laws == lawset.laws and loaded.metric == "macs"
    assert [w.stats for w in loaded.windows] == [w.stats for w in lawset.windows]
    assert [w.target for w in loaded.windows] == [(2e3, 5e3), (5e3, 1e4)]
    # Another dataset with the same input shape: the laws move to its class count.
    moved = LawSet.load(path, (16, 16, 1), 3)
    assert moved.space.num_classes == 3 and [law.ranges for law in moved.laws] == [
        law.ranges for law in lawset.laws
    ]
    assert all(g.num_classes == 3 for g in sample(moved.laws[0], 3, seed=0))
    with pytest.raises(
        SearchSpaceError,
        match=r"inputs of shape \(16, 16, 1\).*Received: input shape \(28, 28, 1\)",
    ):
        LawSet.load(path, (28, 28, 1), 10)


def _law_dict(space):
    return SamplingLaw.full(space).to_dict()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["ranges"].pop("blocks"), r"missing \['blocks'\], unknown \[\]"),
        (lambda d: d["ranges"].update(depth=[1, 2]), r"missing \[\], unknown \['depth'\]"),
        (lambda d: d["ranges"].update(blocks=[0, 3]), r"'blocks' is empty or outside .* 1 <= low <= high <= 4. Received: \[0, 3\]"),
        (lambda d: d["ranges"].update(blocks=[3, 2]), r"'blocks' is empty or outside.*Received: \[3, 2\]"),
        (lambda d: d["ranges"].update(blocks=[1]), r"range of 'blocks' must be \[low, high\]. Received: \[1\]"),
        (lambda d: d["ranges"].update(blocks=[1.5, 2]), r"'blocks' takes integers in \[1, 4\]. Received: 1.5"),
        (lambda d: d["ranges"].update({"block0.kernel": [2, 5]}), r"'block0.kernel' takes choices from \[1, 3, 5, 7\]. Received: 2"),
        (lambda d: d["space"].update(name="nope"), "Unknown search space"),
        (lambda d: d.update(ranges=[1, 2]), "'ranges' must map each variable"),
    ],
)  # fmt: skip
def test_bad_law_json_is_refused_with_the_reason(edit, message):
    data = _law_dict(micro())
    edit(data)
    with pytest.raises(SearchSpaceError, match=message):
        SamplingLaw.from_json(json.dumps(data))


def test_bad_law_sets_are_refused_with_the_reason(tmp_path):
    space = micro()
    good = design_windows(
        space, [(2e3, 5e3)], n_init=4, steps=2, clusters=2, check_samples=4
    ).to_dict()
    cases = [
        (lambda d: d.update(format="other"), "is not a tfnas laws file"),
        (lambda d: d.update(version=9), "unsupported laws version. Expected 1. Received: 9"),
        (lambda d: d.update(metric="flops"), "unknown metric.*Received: 'flops'"),
        (lambda d: d.update(windows=[]), "'windows' must be a non-empty list"),
        (lambda d: d["windows"][0].update(target=[5, 1]), "window 0: A target needs 0 < t1 < t2. Received: \\[5.0, 1.0\\]"),
        (lambda d: d["windows"][0]["laws"][0]["ranges"].update(blocks=[1, 9]), "window 0, law 0: The range of 'blocks'"),
        (lambda d: d["windows"][0]["laws"][0].update(stats={"fitness": "x"}), "'stats' must hold the numbers"),
    ]  # fmt: skip
    for edit, message in cases:
        data = json.loads(json.dumps(good))
        edit(data)
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
        with pytest.raises(SearchSpaceError, match=message):
            LawSet.load(path)
    path.write_text("{not json")
    with pytest.raises(SearchSpaceError, match="is not valid JSON"):
        LawSet.load(path)
    with pytest.raises(SearchSpaceError, match="does not exist"):
        LawSet.load(tmp_path / "missing.json")


# ------------------------------------------------------------------- fitness


def test_fitness_by_hand():
    assert (
        law_fitness([100, 1000], (100, 1000)).fitness == 0.0
    )  # log10 mean 2.5, std 0.5: exactly inside
    stats = law_fitness([1e3, 1e5], (1e2, 1e3))  # mean 4, std 1: [3, 5] sticks out 2 decades above
    assert (stats.mean, stats.std, stats.fitness, stats.inside) == (4.0, 1.0, 2.0, 0.5)
    assert law_fitness([10, 10], (100, 1000)).fitness == pytest.approx(1.0)  # 1 decade below
    # mean 2, std 2: [0, 4] is 2 decades below [2, 3] and 1 above.
    assert law_fitness([1, 1e4], (100, 1000)).fitness == pytest.approx(3.0)


def test_the_ga_moves_a_law_onto_a_synthetic_target_exactly():
    # Metric 10 ** blocks: [1e3, 1e4] is on target only if every sample has 3 blocks, or every one 4
    # (a law of 3 to 4 blocks has mean ± std inside only at an exact half-half split).
    space = MicroSpace((16, 16, 1), 10, max_blocks=6, max_channels=8)

    def metric(g):
        return 10.0 ** len(g.stages)

    window = design_laws(space, (1e3, 1e4), metric, n_init=20, steps=120, n_eval=10, clusters=3,
                         check_samples=50, seed=1)  # fmt: skip
    trace = window.design["trace"]
    assert trace[0]["mean"] > 0.3 and trace[-1]["best"] == 0.0
    best = window.laws[0]
    assert window.stats[0].fitness == 0.0 and window.stats[0].inside == 1.0
    assert best.range_of("blocks") in [(3, 3), (4, 4)]
    values = evaluate_law(best, 400, metric, seed=9)
    assert law_fitness(values, (1e3, 1e4)).fitness == 0.0
    assert set(values) <= {1e3, 1e4}
    # The uniform law is far off: blocks 1..6 give [mu - sigma, mu + sigma] = [1.79, 5.21].
    full = law_fitness([10.0**b for b in range(1, 7)], (1e3, 1e4))
    assert full.fitness == pytest.approx(
        (3 - (3.5 - math.sqrt(35 / 12))) + (3.5 + math.sqrt(35 / 12) - 4)
    )


def test_with_screening_the_ga_also_keeps_samples_feasible():
    # On target: 3 or 4 blocks (metric 10 ** blocks in [1e3, 1e4]); "screening" rejects 4 blocks,
    # so only the law of exactly 3 blocks is on target with every sample feasible (score 0).
    space = MicroSpace((16, 16, 1), 10, max_blocks=6, max_channels=8)

    def metric(g):
        return 10.0 ** len(g.stages)

    def passes(g):
        return len(g.stages) != 4

    window = design_laws(space, (1e3, 1e4), metric, n_init=20, steps=400, n_eval=10, clusters=3,
                         check_samples=50, feasible=passes, seed=1)  # fmt: skip
    assert window.design["screened"] is True and window.design["trace"][-1]["best"] == 0.0
    best, stats = window.laws[0], window.stats[0]
    assert best.range_of("blocks") == (3, 3)
    assert (stats.fitness, stats.feasible, stats.score, stats.inside) == (0.0, 1.0, 0.0, 1.0)
    # Without screening, the 4-block law scores as well; the stats say how many samples pass.
    plain = design_laws(space, (1e3, 1e4), metric, n_init=20, steps=150, n_eval=10, clusters=3,
                        check_samples=50, seed=1)  # fmt: skip
    assert plain.design["screened"] is False and plain.stats[0].feasible == 1.0
    four = SamplingLaw(space, tuple((4, 4) if v.name == "blocks" else r
                                    for v, r in zip(best.variables, best.ranges, strict=True)))  # fmt: skip
    from tfnas.strategies.law_design import _law_stats

    rejected = _law_stats(four, 20, metric, (1e3, 1e4), rng=np.random.default_rng(0), device=None,
                          feasible=passes)  # fmt: skip
    assert (rejected.fitness, rejected.feasible, rejected.score) == (0.0, 0.0, 1.0)


def test_the_ga_on_real_macs_beats_uniform_sampling():
    space = micro()
    target = (2e4, 5e4)
    window = design_laws(
        space, target, "macs", n_init=30, steps=150, clusters=4, check_samples=100, seed=2
    )
    uniform = law_fitness(evaluate_law(SamplingLaw.full(space), 300, "macs", seed=3), target)
    assert len(window.laws) == 4
    assert window.stats[0].inside > 0.8 > 0.3 > uniform.inside
    assert window.stats[0].fitness < 0.05 < uniform.fitness


# ---------------------------------------------------------------- clustering


def test_clustering_keeps_the_best_of_each_group():
    space = micro()
    rng = np.random.default_rng(0)
    base = list(SamplingLaw.full(space).ranges)
    names = [v.name for v in law_variables(space)]
    laws, fitness, group = [], [], []
    for g, blocks in enumerate([(1, 1), (2, 2), (3, 3), (4, 4)]):
        for _ in range(10):
            pairs = list(base)
            pairs[names.index("blocks")] = blocks
            c = int(rng.integers(1, 4)) + 4 * g
            pairs[names.index("block0.channels")] = (c, c)
            laws.append(SamplingLaw(space, tuple(pairs)))
            fitness.append(float(rng.uniform(0.1, 1)))
            group.append(g)
    kept = cluster_laws(laws, fitness, k=4, seed=0)
    assert sorted(group[i] for i in kept) == [0, 1, 2, 3]
    for i in kept:
        assert fitness[i] == min(f for f, g in zip(fitness, group, strict=True) if g == group[i])
    assert [fitness[i] for i in kept] == sorted(fitness[i] for i in kept)


def test_clustering_returns_k_laws_or_every_distinct_one():
    space = micro()
    laws = random_laws(space, 60, seed=8)
    fitness = list(np.random.default_rng(1).uniform(0, 1, 60))
    kept = cluster_laws(laws, fitness, k=10, seed=0)
    assert len(kept) == 10 == len({laws[i] for i in kept})
    # Three distinct laws, each several times: each once, its best copy, best first.
    few = [laws[0], laws[1], laws[0], laws[2], laws[1]]
    assert cluster_laws(few, [0.5, 0.4, 0.1, 0.9, 0.6], k=10) == [2, 1, 3]
    # At least k laws on target: only they are clustered.
    on = [0.0] * 12 + [0.5] * 48
    assert all(on[i] == 0.0 for i in cluster_laws(laws, on, k=10, seed=0))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        cluster_laws(laws, fitness, k=0)


# ------------------------------------------------------------------- windows


def test_decade_windows():
    assert decade_windows(1e5, 1e7) == [
        (1e5, 2e5),
        (2e5, 5e5),
        (5e5, 1e6),
        (1e6, 2e6),
        (2e6, 5e6),
        (5e6, 1e7),
    ]
    assert decade_windows(3e4, 3e5) == [(3e4, 5e4), (5e4, 1e5), (1e5, 2e5), (2e5, 3e5)]
    with pytest.raises(SearchSpaceError, match="0 < t1 < t2"):
        decade_windows(10, 10)


def test_design_settings_are_checked():
    space = micro()
    with pytest.raises(
        SearchSpaceError, match="n_eval must be an integer >= 2. Received: n_eval=1"
    ):
        design_laws(space, (1e3, 1e4), n_eval=1)
    with pytest.raises(SearchSpaceError, match="Unknown law metric.*Received: metric='flops'"):
        design_laws(space, (1e3, 1e4), "flops")
    with pytest.raises(
        SearchSpaceError, match="A target needs 0 < t1 < t2. Received: \\[0.0, 5.0\\]"
    ):
        design_laws(space, (0, 5))


# -------------------------------------------------------------------- oracle


def _drive(oracle, count):
    genomes = []
    for _ in range(count):
        trial = oracle.create_trial("tuner0")
        genomes.append(trial.hyperparameters.values["genome"])
        oracle.update_trial(trial.trial_id, {"score": 0.5, "feasible": 1.0})
        trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return genomes


def test_oracle_takes_windows_in_turn_screens_and_resumes(tmp_path, monkeypatch):
    from tfnas.strategies import SamplingLawOracle, get_strategy

    assert get_strategy("laws") is SamplingLawOracle
    space = micro()
    windows = [[2e3, 5e3], [5e4, 1e5]]
    constraints = Constraints(max_macs=200_000)
    design = {"n_init": 20, "steps": 60, "clusters": 2, "check_samples": 20}

    def make(directory):
        oracle = SamplingLawOracle(
            space, constraints, max_trials=6, seed=3, windows=windows, design=design
        )
        oracle._set_project_dir(str(tmp_path / directory), "p")
        return oracle

    straight = make("a")
    genomes = _drive(straight, 6)
    macs = [analyze(Genome.from_json(g)).macs for g in genomes]
    assert all(m <= 200_000 for m in macs)
    assert np.median(macs[0::2]) < 5e3 * 2 and np.median(macs[1::2]) > 5e4 / 2  # windows take turns
    first = make("b")
    _drive(first, 3)
    first.save()
    monkeypatch.setattr(
        "tfnas.strategies.laws.design_windows", lambda *a, **k: pytest.fail("redesigned")
    )
    resumed = make("b")
    resumed.reload()
    assert resumed.lawset.laws == first.lawset.laws
    assert _drive(resumed, 3) == genomes[3:]
    with pytest.raises(SearchSpaceError, match="Unknown design settings \\['steps_'\\]"):
        SamplingLawOracle(space, design={"steps_": 3})
    with pytest.raises(SearchSpaceError, match="metric must be one of"):
        SamplingLawOracle(space, metric="flops")


def test_default_range_covers_the_screened_samples_and_respects_the_bound():
    space = micro()
    low, high = ld.default_range(space, "macs", Constraints(max_macs=30_000), seed=0)
    assert high == 30_000 and low in {1e2, 2e2, 5e2, 1e3, 2e3, 5e3, 1e4} and low < high
    free_low, free_high = ld.default_range(space, "macs", Constraints(), seed=0)
    for x in (free_low, free_high):  # on the 1, 2, 5 grid
        assert round(x / 10 ** math.floor(math.log10(x)), 6) in (1, 2, 5)


# ----------------------------------------------------------------------- CLI


def test_cli_design_writes_laws_and_prints_each_window(tmp_path, capsys, data_file):
    from tfnas.cli import main

    out = tmp_path / "laws.json"
    args = ["laws", "design", "--data", str(data_file), "--range", "1e3", "5e3", "--n-init", "10",
            "--steps", "20", "--clusters", "2", "--check-samples", "20", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(
        "laws for macs on the micro space, input (8, 8, 1), 3 classes (2 windows"
    )
    assert (
        lines[1].startswith("  window 1e+03..2e+03: 2 laws in ")
        and "% of its 20 samples inside" in lines[1]
    )
    assert lines[2].startswith("  window 2e+03..5e+03: 2 laws in ")
    assert lines[-1] == f"wrote {out}"
    lawset = LawSet.load(out)
    assert [w.target for w in lawset.windows] == [(1e3, 2e3), (2e3, 5e3)]
    printed = [float(line.split("% of its")[0].rsplit(" ", 1)[1]) for line in lines[1:3]]
    assert printed == [round(100 * w.stats[0].inside) for w in lawset.windows]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "x.json"], "Expected exactly one of --range LOW HIGH and --window T1 T2. Received: neither"),
        (["--range", "5", "1", "--out", "x.json"], "A target needs 0 < t1 < t2. Received: [5.0, 1.0]"),
        (["--range", "1e3", "1e4", "--n-eval", "1", "--out", "x.json"], "design['n_eval'] must be an integer >= 2"),
        (["--range", "1e3", "1e4", "--space-options", "{", "--out", "x.json"], "--space-options is not valid JSON"),
        (["--range", "1e3", "1e4", "--space-options", '{"depth": 3}', "--out", "x.json"], "Unknown setting 'depth'"),
        (["--range", "1e3", "1e4", "--device", "toaster", "--out", "x.json"], "toaster"),
        (["--range", "1e3", "1e4"], "the following arguments are required: --out"),
    ],
)  # fmt: skip
def test_cli_design_bad_arguments_one_line_exit_2(args, message, capsys):
    from tfnas.cli import main

    assert main(["laws", "design", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_cli_refuses_a_laws_file_for_another_shape_before_tensorflow(tmp_path, data_file):
    space = MicroSpace((28, 28, 1), 10, max_blocks=4, max_layers=3, max_channels=32, max_dense=2)
    path = design_windows(space, [(1e4, 1e5)], n_init=4, steps=2, clusters=1, check_samples=4).save(
        tmp_path / "laws.json"
    )
    code = (
        "import sys; from tfnas.cli import main; "
        f"rc = main(['search', '--data', {str(data_file)!r}, '--strategy', 'laws', '--laws', {str(path)!r}, "
        f"'--out', {str(tmp_path / 'o')!r}]); "
        "assert rc == 2, rc; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and "holds laws for inputs of shape (28, 28, 1)" in err[0]
    assert "Received: input shape (8, 8, 1)" in err[0]


@pytest.mark.slow  # about 45 s: three short searches that train
def test_search_with_laws_trains_writes_laws_json_and_resumes(tmp_path, data_file, capsys):
    from tfnas.cli import main

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"strategy_options": {"windows": [[1e3, 5e3], [5e3, 2e4]],
                                                       "design": {"n_init": 10, "steps": 20, "clusters": 2,
                                                                  "check_samples": 10}},
                                  "space_options": {"max_blocks": 2, "max_channels": 8, "max_dense": 1}}))  # fmt: skip
    out = tmp_path / "run"
    args = ["search", "--config", str(config), "--data", str(data_file), "--strategy", "laws",
            "--max-trials", "2", "--epochs", "1", "--max-arena", "40000", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in report["trials"]] == ["completed", "completed"]
    lawset = LawSet.load(out / "laws.json", (8, 8, 1), 3)
    assert [w.target for w in lawset.windows] == [(1e3, 5e3), (5e3, 2e4)]
    capsys.readouterr()
    # The same command again: nothing new is trained; the saved laws file is reusable.
    assert main(args) == 0
    assert len(json.loads((out / "report.json").read_text())["trials"]) == 2
    again = tmp_path / "run2"
    assert (
        main([*args[:-1], str(again), "--laws", str(out / "laws.json"), "--max-trials", "1"]) == 0
    )
    assert LawSet.load(again / "laws.json").laws == lawset.laws
