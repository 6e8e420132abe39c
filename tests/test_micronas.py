"""MicroNAS pruning, hybrid ranks, proxy pre-ranking and successive halving (no training)."""

import keras_tuner
import numpy as np
import pytest

from tfnas.genome import Genome, analyze, get_space
from tfnas.genome.costs import narrowest_channels
from tfnas.objectives import Constraints
from tfnas.strategies import AgingEvolutionOracle, RandomSearchOracle, hybrid_scores, prune_edges

# Per-op contributions of a toy 2-edge space: kappa (lower better), regions (higher better).
_TOY = {"a": (1, 5), "b": (3, 1), "c": (2, 2), "d": (1, 6), "e": (4, 3)}


def _toy_metrics(edges):
    ops = [o for e in edges for o in e]
    return {"ntk_cond": float(sum(_TOY[o][0] for o in ops)),
            "regions": float(sum(_TOY[o][1] for o in ops)), "macs": 0.0, "latency_ms": 0.0}  # fmt: skip


def test_pruning_on_a_two_edge_toy_space_follows_the_hand_worked_order():
    # Round 1 candidates (kappa, regions): -a (10, 12), -b (8, 16), -c (9, 15), -d (10, 11),
    # -e (7, 14); kappa ranks 3.5, 1, 2, 3.5, 0; region ranks 3, 0, 1, 4, 2; sums 6.5, 1, 3,
    # 7.5, 2: edge 0 drops b, edge 1 drops e. Round 2: -c (2, 11) beats -d (3, 7): drop c.
    history = prune_edges([("a", "b"), ("c", "d", "e")], _toy_metrics)
    assert [h["removed"] for h in history] == [{0: "b", 1: "e"}, {1: "c"}]
    assert history[-1]["edges"] == [["a"], ["d"]]


def test_pruning_prefers_removals_that_meet_the_bounds():
    # d over budget: edge 1 drops d first; round 2 ties (-c: 5, 8; -e: 3, 7) break by name.
    history = prune_edges([("a", "b"), ("c", "d", "e")], _toy_metrics,
                          violation=lambda edges: float("d" in edges[1]))  # fmt: skip
    assert [h["removed"] for h in history] == [{0: "b", 1: "d"}, {1: "c"}]
    assert history[-1]["edges"] == [["a"], ["e"]]


def test_pruning_never_picks_an_invalid_network():
    def metrics(edges):
        return None if edges[0] == frozenset({"b"}) else _toy_metrics(edges)

    history = prune_edges([("a", "b")], metrics)
    assert history[-1]["edges"] == [["a"]]


def test_hybrid_scores_rank_sum_and_weights():
    records = [
        {"ntk_cond": 10.0, "regions": 5.0, "macs": 300, "latency_ms": 1.0},
        {"ntk_cond": float("inf"), "regions": 9.0, "macs": 100, "latency_ms": 3.0},
        {"ntk_cond": 2.0, "regions": 1.0, "macs": 200, "latency_ms": 2.0},
    ]
    np.testing.assert_allclose(hybrid_scores(records), [1 + 1, 2 + 0, 0 + 2])
    np.testing.assert_allclose(hybrid_scores(records, {"macs": 0.5}), [2 + 1.0, 2 + 0.0, 2 + 0.5])
    with pytest.raises(ValueError, match=r"Unknown hybrid weights \['flops'\]"):
        hybrid_scores(records, {"flops": 1.0})


def _params_proxy(oracle):
    # Smallest network best on both indicators: the expected pick is the min-params candidate.
    def fake(genome):
        p = float(analyze(genome).params)
        return {"ntk_cond": p, "regions": -p, "macs": 0.0, "latency_ms": 0.0}

    oracle.zero_shot = fake


def test_proxy_pre_ranking_trains_the_top_proxy_candidate():
    space = get_space("micro", (8, 8, 1), 10, max_blocks=3, max_channels=16)
    oracle = RandomSearchOracle(space, Constraints(), proxy_pool=4, seed=5)
    _params_proxy(oracle)
    values = oracle.populate_space("0")["values"]
    pool = [space.sample(oracle.rng("0", a)) for a in range(4)]
    best = min(pool, key=lambda g: analyze(g).params)
    assert values["genome"] == best.to_json()
    plain = RandomSearchOracle(space, Constraints(), seed=5).populate_space("0")["values"]
    assert plain["genome"] == pool[0].to_json()


def test_proxy_pool_validation():
    space = get_space("micro", (8, 8, 1), 10)
    with pytest.raises(ValueError, match="proxy_pool must be an integer >= 1"):
        RandomSearchOracle(space, proxy_pool=0)
    with pytest.raises(ValueError, match=r"halving\['eta'\] must be an integer >= 2"):
        RandomSearchOracle(space, halving={"min_epochs": 1, "eta": 1, "max_epochs": 4})
    with pytest.raises(ValueError, match="max_epochs > min_epochs"):
        RandomSearchOracle(space, halving={"min_epochs": 4, "max_epochs": 4})


def _run(oracle, scores, count, stop_after=None):
    """Create and end ``count`` trials; score = scores[genome] (lower is better)."""
    log = []
    for _ in range(count):
        trial = oracle.create_trial("tuner0")
        v = trial.hyperparameters.values
        log.append(
            (trial.trial_id, v.get("tuner/rung"), v.get("tuner/trial_id"), v.get("tuner/epochs"))
        )
        if stop_after is not None and len(log) == stop_after:
            return log, trial  # killed while running
        score = scores.setdefault(v["genome"], len(scores) * 0.37 % 1)
        oracle.update_trial(trial.trial_id, {"score": score, "feasible": 1.0})
        trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return log, None


def _halving_oracle(tmp_path):
    space = get_space("micro", (8, 8, 1), 10, max_blocks=2, max_channels=8)
    oracle = AgingEvolutionOracle(space, Constraints(), max_trials=20, seed=1, population_size=50,
                                  sample_size=5, halving={"min_epochs": 1, "eta": 2, "max_epochs": 4})  # fmt: skip
    oracle._set_project_dir(str(tmp_path), "p")
    return oracle


def test_successive_halving_promotes_the_best_and_resumes_after_a_kill(tmp_path):
    scores = {}
    oracle = _halving_oracle(tmp_path / "a")
    log, _ = _run(oracle, scores, 9)
    rung0 = [t for t in log if t[1] == 0]
    by_id = {t[0]: t for t in log}
    # t0, t1 at rung 0 -> t2 promotes the better of them to 2 epochs from epoch 1.
    assert [t[1] for t in log[:3]] == [0, 0, 1] and log[2][3] == 2
    first_two = sorted(
        log[:2], key=lambda t: scores[oracle.trials[t[0]].hyperparameters.values["genome"]]
    )
    assert log[2][2] == first_two[0][0]
    # every promotion's parent is the best rung member not promoted yet, when it was promoted
    for _tid, rung, parent, epochs in log:
        if rung and rung > 0:
            assert by_id[parent][1] == rung - 1 and epochs == min(4, 2**rung)
    assert len(rung0) >= 4
    # A second run killed in the middle resumes to exactly the same sequence.
    scores_b = dict(scores)
    oracle_b = _halving_oracle(tmp_path / "b")
    head, running = _run(oracle_b, scores_b, 9, stop_after=5)
    oracle_b.save()
    resumed = _halving_oracle(tmp_path / "b")
    resumed.reload()
    again = resumed.create_trial("tuner0")
    assert again.trial_id == running.trial_id  # the killed trial is run again, not lost
    resumed.update_trial(again.trial_id, {"score": scores_b[again.hyperparameters.values["genome"]],
                                          "feasible": 1.0})  # fmt: skip
    again.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
    resumed.end_trial(again)
    tail, _ = _run(resumed, scores_b, 4)
    assert head + tail == log


def test_micronas_trains_the_pruned_cell_first_then_the_ranked_pool_and_resumes(tmp_path):
    from tfnas.genome import CellSpace
    from tfnas.strategies import MicroNASOracle

    space = CellSpace((8, 8, 1), 3, channels=(4,))

    def make():
        oracle = MicroNASOracle(space, Constraints(), max_trials=4, pool=5, seed=2)
        _params_proxy(oracle)
        oracle._set_project_dir(str(tmp_path), "p")
        return oracle

    oracle = make()
    log, _ = _run(oracle, {}, 2)
    # The smallest network wins every round of a params-only proxy: pruning keeps one
    # zero-parameter op (skip or pool) on every edge.
    first = space.genotype(oracle.trial_genome(oracle.trials[log[0][0]]))
    assert all(op in ("skip", "avgpool3x3", "none") for op in first)
    assert len(oracle.pruning) == 4  # 5 ops per edge, one removed per edge per round
    ranked = oracle.ranking[1:]
    params = [analyze(Genome.from_json(g)).params for g in ranked]
    assert params == sorted(params)
    oracle.save()
    resumed = make()
    resumed.reload()
    assert resumed.ranking == oracle.ranking and resumed.pruning == oracle.pruning
    nxt = resumed.create_trial("tuner0")
    assert nxt.hyperparameters.values["genome"] == oracle.ranking[2]


def test_hybrid_capacity_term_prefers_more_parameters():
    records = [
        {"ntk_cond": 5.0, "regions": 5.0, "params": 100.0},
        {"ntk_cond": 5.0, "regions": 5.0, "params": 900.0},
    ]
    np.testing.assert_allclose(hybrid_scores(records), [1.0, 1.0])  # ties: mean ranks 0.5 + 0.5
    np.testing.assert_allclose(hybrid_scores(records, {"params": 2.0}), [1.0 + 2.0, 1.0 + 0.0])


def test_hybrid_width_term_prefers_the_wider_bottleneck():
    records = [
        {"ntk_cond": 2.0, "regions": 9.0, "width": 1.0},
        {"ntk_cond": 3.0, "regions": 8.0, "width": 6.0},
    ]
    np.testing.assert_allclose(hybrid_scores(records), [0.0, 2.0])  # MicroNAS alone: the first
    np.testing.assert_allclose(hybrid_scores(records, {"width": 3.0}), [0.0 + 3.0, 2.0 + 0.0])


def test_saved_proxy_scores_gain_the_width_without_recomputing(monkeypatch):
    # A search saved before the width indicator resumes: its cached records get the width
    # from the genome, and the expensive proxies are not run again.
    import tfnas.proxies

    space = get_space("micro", (8, 8, 1), 10, max_blocks=3, max_channels=16)
    oracle = RandomSearchOracle(space, Constraints(), seed=5, proxy_weights={"width": 1.0})
    genome = space.sample(3)
    old = {"ntk_cond": 7.0, "regions": 3.0, "macs": 1.0, "latency_ms": 1.0, "params": 1.0}
    oracle.proxies[genome.canonical_hash()] = dict(old)

    def boom(*args, **kwargs):
        raise AssertionError("the proxies ran again")

    monkeypatch.setattr(tfnas.proxies, "zero_shot", boom)
    record = oracle.zero_shot(genome)
    assert record == {**old, "width": float(narrowest_channels(genome))}


def test_report_rows_show_each_trials_proxies_and_width(tmp_path):
    from tfnas.tuner.report import build_report

    space = get_space("micro", (8, 8, 1), 10, max_blocks=2, max_channels=8)
    oracle = RandomSearchOracle(space, Constraints(), max_trials=10, seed=1)
    oracle._set_project_dir(str(tmp_path), "p")
    for i in range(3):
        trial = oracle.create_trial("tuner0")
        oracle.update_trial(trial.trial_id, {"score": 0.1 * i, "feasible": 1.0, "int8_accuracy": 0.5,
                                             "arena_bytes": 100 + i, "flash_bytes": 200, "macs": 300})  # fmt: skip
        trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
    genomes = {t.trial_id: Genome.from_json(t.hyperparameters.values["genome"])
               for t in oracle.trials.values()}  # fmt: skip
    saved = next(iter(genomes.values())).canonical_hash()  # one record from before the width term
    for trial_id, g in genomes.items():
        record = {"ntk_cond": float(trial_id), "regions": 2.0}
        if g.canonical_hash() != saved:
            record["width"] = float(narrowest_channels(g))
        oracle.proxies[g.canonical_hash()] = record
    rows = {r["trial_id"]: r for r in build_report(oracle, "cortex-m")["trials"]}
    assert len({g.canonical_hash() for g in genomes.values()}) == 3
    for trial_id, g in genomes.items():
        assert rows[trial_id]["ntk_cond"] == float(trial_id)
        if g.canonical_hash() == saved:
            assert "width" not in rows[trial_id]
        else:
            assert rows[trial_id]["width"] == narrowest_channels(g)
