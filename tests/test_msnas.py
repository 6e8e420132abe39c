"""MSNAS: the meta-graph, its update rule, the IoT penalty, families, transfer (no TensorFlow)."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from tfnas.errors import InfeasibleModelError, SearchSpaceError
from tfnas.genome import IN, OUT, analyze
from tfnas.strategies import MetaGraph, connectivity_penalty, iot_penalty


def tiny(**kwargs):
    """One stage of two nodes: edges in->n0, in->n1, n0->n1, each at weight 0.5."""
    options = {"stages": 1, "nodes": 2, "channels": (4,), "node_ops": [["conv1x1", "sepconv3x3"]]}
    return MetaGraph((8, 8, 1), 3, **{**options, **kwargs})


def random_metagraph(seed, stages=2, nodes=6):
    """A meta-graph whose weights went through a few seeded random updates."""
    m = MetaGraph((16, 16, 1), 5, stages=stages, nodes=nodes, channels=(4, 8), seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(8):
        m.update(m.sample(rng), float(rng.uniform(-0.5, 1.0)), alpha=2.0)
    return m


def test_meta_graph_work_needs_no_tensorflow():
    code = (
        "import sys; from tfnas.strategies import MetaGraph; "
        "m = MetaGraph((16, 16, 1), 4, stages=2, nodes=5); g = m.sample(0); m.update(g, 0.7); "
        "m.derive_family(); m.transfer((8, 8, 3), 2).derive(0.4); "
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# ------------------------------------------------------------------ update rule


def test_update_rule_two_updates_by_hand():
    m = tiny()
    assert m.edges() == [(IN, "n0"), (IN, "n1"), ("n0", "n1")]
    first = m.genome_from_edges([{(IN, "n0"), ("n0", "n1")}])
    second = m.genome_from_edges([{(IN, "n1")}])
    # Update 1, score 0.9, beta 0.4: factor exp(0.9 * 0.5) = 1.568312; used edges 0.5 -> 0.784156,
    # Z = (0.784156 * 2 + 0.5) / 1.5 = 1.378875; weights 0.56869, 0.36261, 0.56869.
    m.update(first, 0.9, alpha=0.9, beta_decay=0.9)
    w = [m.weights[0][e] for e in m.edges()]
    np.testing.assert_allclose(w, [0.56869, 0.36261, 0.56869], atol=1e-5)
    assert m.beta == pytest.approx(0.45)  # 0.9 * 0.4 + 0.1 * 0.9
    # Update 2, score 0.2, beta 0.45: factor exp(0.9 * -0.25) = 0.798516 on in->n1 only:
    # 0.36261 -> 0.289553, Z = (0.56869 * 2 + 0.289553) / 1.5 = 0.951289.
    m.update(second, 0.2, alpha=0.9, beta_decay=0.9)
    w = [m.weights[0][e] for e in m.edges()]
    np.testing.assert_allclose(w, [0.59781, 0.30438, 0.59781], atol=1e-5)
    assert m.beta == pytest.approx(0.425)
    assert [h["score"] for h in m.history] == [0.9, 0.2]


@pytest.mark.parametrize("seed", range(20))
def test_normalisation_keeps_each_stage_total_and_scales_used_edges(seed):
    m = random_metagraph(seed)
    rng = np.random.default_rng(100 + seed)
    genome = m.sample(rng)
    used = m.sampled_edges(genome)
    before = [dict(w) for w in m.weights]
    score, beta = float(rng.uniform(-1, 1)), m.beta
    m.update(genome, score, alpha=0.9)
    factor = math.exp(0.9 * (score - beta))
    for s in range(m.stages):
        assert sum(m.weights[s].values()) == pytest.approx(sum(before[s].values()), rel=1e-12)
        z = None
        for e, w in m.weights[s].items():
            ratio = before[s][e] * (factor if e in used[s] else 1.0) / w
            z = ratio if z is None else z
            assert ratio == pytest.approx(z, rel=1e-9)  # one Z for every edge of the stage


def test_update_rejects_bad_input():
    m = tiny()
    g = m.sample(0)
    with pytest.raises(ValueError, match="finite score"):
        m.update(g, float("nan"))
    with pytest.raises(ValueError, match="beta_decay must be in"):
        m.update(g, 0.5, beta_decay=1.0)


# ------------------------------------------------------------------ IoT penalty


def test_connectivity_penalty_by_hand_on_five_nodes():
    a = np.zeros((5, 5), dtype=int)
    a[0, 1] = a[1, 2] = a[0, 4] = 1
    assert connectivity_penalty(a, kernel_sizes=(1,)) == 3  # the edges
    # 3x3 neighbourhoods, clipped at the border: row 0 cols 0-4, row 1 cols 0-4, row 2 cols 1-3.
    assert connectivity_penalty(a, kernel_sizes=(1, 3)) == 13
    assert connectivity_penalty(a, kernel_sizes=(3,)) == 13
    # Three edges in a chain next to the diagonal cover fewer cells than three scattered edges
    # (7x7): chain rows 0-3 cover 4 + 5 + 4 + 3 cells; scattered 6 + 6 + 9 without overlap.
    chain = np.zeros((7, 7), dtype=int)
    chain[0, 1] = chain[1, 2] = chain[2, 3] = 1
    scattered = np.zeros((7, 7), dtype=int)
    scattered[0, 1] = scattered[1, 6] = scattered[4, 5] = 1
    assert connectivity_penalty(chain) == 16
    assert connectivity_penalty(scattered) == 21
    # A kernel that sums to zero over a filled region: the sum's L0 norm, not each term's.
    kernel = np.array([[1.0, -1.0]])
    assert connectivity_penalty(np.ones((5, 5)), kernels=[kernel]) == 5  # only the last column


def test_connectivity_penalty_errors():
    with pytest.raises(ValueError, match="must be square"):
        connectivity_penalty(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="kernel_sizes must be positive"):
        connectivity_penalty(np.zeros((2, 2)), kernel_sizes=(0,))


def test_iot_penalty_terms():
    a = np.zeros((5, 5), dtype=int)
    a[0, 1] = a[1, 2] = a[0, 4] = 1
    terms = iot_penalty([a], macs=230_000, params=12_000, arena_bytes=40_000, lambda_arena=2.0)
    assert terms["connectivity"] == pytest.approx(13 / 25)
    assert terms["total"] == pytest.approx(0.1 * 13 / 25 + 0.23 + 0.012 + 2.0 * 0.04)
    two = iot_penalty([a, np.zeros((5, 5))], macs=0, params=0)
    assert two["total"] == pytest.approx(0.1 * (13 / 25 + 0) / 2)


# ------------------------------------------------------------------ sampling


def test_sampling_follows_the_weights():
    m = MetaGraph((8, 8, 1), 3, stages=1, nodes=4, channels=(4,), initial_weight=0.3)
    counts = {e: 0 for e in m.edges()}
    n = 3000
    rng = np.random.default_rng(0)
    for _ in range(n):
        for e in m.sampled_edges(m.sample(rng))[0]:
            counts[e] += 1
    # in->n_j edges are kept with probability 0.3 (plus the forced edge when nothing was kept).
    assert 0.27 < counts[(IN, "n3")] / n < 0.33
    # n0->n1 needs n0 reachable: in->n0 kept (0.3) or no input edge kept at all (0.7^4, then
    # the fallback keeps in->n0, the first of the equally strong input edges), times 0.3: 0.162.
    assert 0.14 < counts[("n0", "n1")] / n < 0.185


def test_weight_one_gives_the_complete_dag_and_tiny_weights_one_edge():
    m = MetaGraph((8, 8, 1), 3, stages=2, nodes=5, channels=(4, 8), initial_weight=1.0)
    g = m.sample(0)
    assert [len(e) for e in m.sampled_edges(g)] == [15, 15]  # 5 * 6 / 2 edges per stage
    m = MetaGraph((8, 8, 1), 3, stages=2, nodes=5, channels=(4, 8), initial_weight=1e-9)
    g = m.sample(0)
    assert [sorted(e) for e in m.sampled_edges(g)] == [[(IN, "n0")], [(IN, "n0")]]
    assert all(set(st.nodes) == {IN, "n0", OUT} for st in g.stages)


@pytest.mark.parametrize("seed", range(10))
def test_samples_are_valid_members(seed):
    m = random_metagraph(seed)
    g = m.sample(seed)
    m.check(g)
    for stage in m.sampled_edges(g):
        assert stage  # never empty
    assert analyze(g).macs > 0


def test_check_rejects_foreign_genomes():
    m = tiny()
    other = MetaGraph((8, 8, 1), 3, stages=1, nodes=2, channels=(4,),
                      node_ops=[["sepconv3x3", "sepconv3x3"]])  # fmt: skip
    with pytest.raises(SearchSpaceError, match="is not a node of the meta-graph"):
        m.check(other.derive(0.0))
    with pytest.raises(SearchSpaceError, match="another task"):
        m.check(m.transfer((12, 12, 1), 3).sample(0))
    with pytest.raises(SearchSpaceError, match="not by mutation"):
        m.mutate(m.sample(0))
    with pytest.raises(SearchSpaceError, match="edges outside the meta-graph"):
        m.genome_from_edges([{("n1", "n0")}])


# ------------------------------------------------------------------ families


@pytest.mark.parametrize("seed", range(20))
def test_families_are_nested(seed):
    m = random_metagraph(seed)
    family = m.derive_family([0.2, 0.3, 0.4, 0.5, 0.65, 0.8])
    assert [f.threshold for f in family] == [0.8, 0.65, 0.5, 0.4, 0.3, 0.2]
    for small, large in zip(family[:-1], family[1:], strict=True):
        small_edges, large_edges = m.sampled_edges(small.genome), m.sampled_edges(large.genome)
        for s in range(m.stages):
            assert small_edges[s] <= large_edges[s]
            assert set(small.genome.stages[s].nodes) <= set(large.genome.stages[s].nodes)
        # (MACs and params need not grow: a new edge can take a node out of the stage output.)
        assert small.edges <= large.edges and small.nodes <= large.nodes


def test_derive_keeps_exactly_the_edges_at_or_above_the_threshold():
    m = tiny()
    m.weights[0] = {(IN, "n0"): 0.7, (IN, "n1"): 0.2, ("n0", "n1"): 0.5}
    assert m.sampled_edges(m.derive(0.5)) == [{(IN, "n0"), ("n0", "n1")}]
    assert m.sampled_edges(m.derive(0.6)) == [{(IN, "n0")}]
    # Above every weight the strongest input edge is kept so the stage is never empty.
    assert m.sampled_edges(m.derive(0.9)) == [{(IN, "n0")}]
    assert m.sampled_edges(m.derive(0.1)) == [{(IN, "n0"), (IN, "n1"), ("n0", "n1")}]


def test_fit_device_picks_the_largest_member_that_fits():
    from tfnas.objectives import get_device

    m = random_metagraph(3)
    family = m.derive_family()
    nano = get_device("arduino-nano-33-ble-sense")
    budget = nano.budget().max_arena_bytes
    # A stand-in measurement whose arena grows with the edge count: exactly the members with at
    # most `limit` edges fit, so the answer is the one with `limit` edges (the largest that fits).
    limit = sorted({f.edges for f in family})[1]

    def measure(genome, target):
        assert target == nano.target
        edges = sum(len(e) for e in m.sampled_edges(genome))
        return {"arena_bytes": budget * edges / limit, "flash_bytes": 1000, "macs": 1}

    member, metrics = m.fit_device(nano, measure=measure)
    assert member.edges == limit
    assert member.threshold == min(f.threshold for f in family if f.edges == limit)
    assert metrics["arena_bytes"] <= budget
    with pytest.raises(InfeasibleModelError, match="No family member fits"):
        m.fit_device(nano, measure=lambda g, t: {"arena_bytes": 10**9})


# ------------------------------------------------------------------ state, transfer


def test_state_round_trips_through_json(tmp_path):
    m = random_metagraph(1)
    again = MetaGraph.from_dict(json.loads(json.dumps(m.to_dict())))
    assert again.to_dict() == m.to_dict()
    assert again.sample(5) == m.sample(5)
    m.save(tmp_path / "mg.json")
    assert MetaGraph.load(tmp_path / "mg.json").to_dict() == m.to_dict()
    bad = m.to_dict()
    bad["weights"][0] = bad["weights"][0][:-1]
    with pytest.raises(SearchSpaceError, match="does not list exactly"):
        MetaGraph.from_dict(bad)
    with pytest.raises(SearchSpaceError, match="state_version"):
        MetaGraph.from_dict({**m.to_dict(), "state_version": 99})
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SearchSpaceError, match="Cannot read a meta-graph"):
        MetaGraph.load(tmp_path / "broken.json")


def test_transfer_keeps_the_learned_structure():
    m = random_metagraph(2)
    t = m.transfer((32, 32, 3), 10)
    assert (t.input_shape, t.num_classes) == ((32, 32, 3), 10)
    assert t.weights == m.weights and t.node_ops == m.node_ops and t.beta == m.beta
    for thr in (0.3, 0.5, 0.65):
        assert m.sampled_edges(m.derive(thr)) == t.sampled_edges(t.derive(thr))
    assert t.derive(0.3).input_shape == (32, 32, 3)


def test_bad_configuration_errors():
    with pytest.raises(SearchSpaceError, match="at least one stage and one node"):
        MetaGraph((8, 8, 1), 3, stages=0)
    with pytest.raises(SearchSpaceError, match="initial_weight must be positive"):
        MetaGraph((8, 8, 1), 3, initial_weight=0)
    with pytest.raises(SearchSpaceError, match="node_ops must list"):
        MetaGraph((8, 8, 1), 3, stages=1, nodes=2, node_ops=[["conv1x1"]])
    with pytest.raises(SearchSpaceError, match="outside"):
        MetaGraph((8, 8, 1), 3, stages=1, nodes=1, node_ops=[["conv3x3"]])
