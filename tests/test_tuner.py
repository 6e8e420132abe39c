"""The Tuner API end to end on tiny generated data: search, rejection, report, resume."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tfnas.genome import MicroSpace
from tfnas.objectives import Constraints
from tfnas.strategies import AgingEvolutionOracle, RandomSearchOracle, screen, tournament
from tfnas.strategies.core import ESTIMATE_SLACK

SHAPE, CLASSES = (8, 8, 1), 3


def tiny_data(n=96, seed=0):
    """Three classes told apart by which third of the image is bright."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=n)
    x = rng.uniform(0, 0.2, size=(n, *SHAPE)).astype(np.float32)
    for i, label in enumerate(y):
        x[i, :, 3 * label : 3 * label + 2, 0] += 0.8
    return x, y


def tiny_npz(path):
    """``tiny_data`` as a ``tfnas search --data`` file: 96 training and 48 test images."""
    x, y = tiny_data(96, 0)
    xt, yt = tiny_data(48, 1)
    np.savez(path, x_train=x, y_train=y, x_test=xt, y_test=yt)
    return path


def space():
    return MicroSpace(SHAPE, CLASSES, max_blocks=2, max_layers=2, max_channels=8, max_dense=1)


def test_tiny_search_end_to_end(tmp_path):
    from tfnas.tuner import NASTuner

    x, y = tiny_data()
    constraints = Constraints(max_arena_bytes=20_000, arena="total", target="cortex-m")
    oracle = AgingEvolutionOracle(
        space(), constraints, max_trials=3, seed=0, population_size=2, sample_size=2
    )
    tuner = NASTuner(oracle, directory=tmp_path, project_name="p", verbose=0)
    tuner.search(x, y, validation_data=tiny_data(48, 1), epochs=2, batch_size=16)
    report = json.loads((tmp_path / "p" / "report.json").read_text())
    done = [r for r in report["trials"] if r["status"] == "completed"]
    assert len(done) == 3
    for r in done:
        assert 0.0 <= r["int8_accuracy"] <= 1.0 and 0.0 <= r["val_accuracy"] <= 1.0
        assert r["arena_bytes"] == r["planned_bytes"] + r["persistent_bytes"]
        assert r["feasible"] == (r["arena_bytes"] <= 20_000)
        tflite = (tmp_path / "p" / f"trial_{r['trial_id']}" / "model.tflite").read_bytes()
        assert len(tflite) == r["flash_bytes"]
    assert report["best"] in {r["trial_id"] for r in done}
    assert set(report["pareto"]) <= {r["trial_id"] for r in done if r["feasible"]}
    best = next(r for r in done if r["trial_id"] == report["best"])
    genome = tuner.get_best_genomes(1)[0]
    assert genome.to_dict() == best["genome"]
    model = tuner.get_best_models(1)[0]  # rebuilt from the genome with the trial's trained weights
    assert model.output_shape == (None, CLASSES)
    x_val, y_val = tiny_data(48, 1)
    float_acc = float(np.mean(model.predict(x_val, verbose=0).argmax(1) == y_val))
    assert float_acc == pytest.approx(best["val_accuracy"], abs=1e-6)


def test_infeasible_candidates_are_rejected_before_training(tmp_path):
    from tfnas.tuner import NASTuner

    # 300-byte planned arena: the 64-byte input alone fits, most candidates do not.
    constraints = Constraints(max_arena_bytes=300, arena="planned", target="cortex-m")
    # A seed whose first proposal is surely over the bound, so at least one is rejected.
    seed = next(
        s
        for s in range(100)
        if screen(space().sample(np.random.default_rng([s, 0, 0])), constraints)["violations"]
    )
    oracle = RandomSearchOracle(space(), constraints, max_trials=1, seed=seed)
    tuner = NASTuner(oracle, directory=tmp_path, project_name="p", verbose=0)
    x, y = tiny_data()
    tuner.search(x, y, epochs=1, batch_size=16)
    report = tuner.report()
    assert len(report["rejected"]) >= 1
    for r in report["rejected"]:
        assert r["status"] == "rejected" and r["estimate"]["planned_bytes"] / ESTIMATE_SLACK > 300
    assert [t["status"] for t in report["trials"]] == ["completed"]  # rejections are not failures
    assert not any(os.path.exists(tmp_path / "p" / f"trial_{r['proposed_for']}" / "weights.h5")
                   for r in report["rejected"] if r["proposed_for"] != "0")  # fmt: skip


def test_screen_and_tournament_by_hand():
    genome = space().sample(0)
    loose = screen(genome, Constraints(max_arena_bytes=10**7))
    assert loose["violations"] == {} and loose["estimate"]["planned_bytes"] > 0
    tight = screen(genome, Constraints(max_macs=1))
    assert set(tight["violations"]) == {"macs"}
    population = [{"val_accuracy": 0.9, "arena_bytes": 100}, {"val_accuracy": 0.5, "arena_bytes": 100},
                  {"val_accuracy": 0.9, "arena_bytes": 5000}]  # fmt: skip
    objectives = [("val_accuracy", "max"), ("arena_bytes", "min")]
    # With every member drawn, member 0 dominates the others and always wins.
    wins = {
        tournament(population, objectives, Constraints(), 3, np.random.default_rng(s))
        for s in range(50)
    }
    assert wins == {0}
    # An infeasible member loses to a feasible one even when more accurate.
    bounded = [{"val_accuracy": 0.95, "arena_bytes": 200}, {"val_accuracy": 0.8, "arena_bytes": 90}]
    picks = {tournament(bounded, objectives, Constraints(max_arena_bytes=100, arena="total"), 2,
                        np.random.default_rng(s)) for s in range(50)}  # fmt: skip
    assert picks == {1}


def test_strategies_do_not_import_tensorflow():
    code = "import sys, tfnas.strategies, tfnas.strategies.core; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


RUN = """
import sys
sys.path.insert(0, {tests!r})
from test_tuner import tiny_data, space
from tfnas.objectives import Constraints
from tfnas.strategies import RandomSearchOracle
from tfnas.tuner import NASTuner
oracle = RandomSearchOracle(space(), Constraints(max_arena_bytes=50_000), max_trials={trials}, seed=5)
tuner = NASTuner(oracle, directory={directory!r}, project_name="p", verbose=0)
x, y = tiny_data()
tuner.search(x, y, epochs=1, batch_size=16)
"""


def test_resume_after_kill(tmp_path):
    tests = os.path.dirname(os.path.abspath(__file__))
    script = RUN.format(tests=tests, trials=4, directory=str(tmp_path))
    report_path = tmp_path / "p" / "report.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while time.time() < deadline:  # kill it once at least one trial has completed
        if report_path.exists() and json.loads(report_path.read_text())["trials"]:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = json.loads(report_path.read_text())
    completed = {r["trial_id"]: r for r in before["trials"] if r["status"] == "completed"}
    assert 1 <= len(completed) < 4
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, timeout=600)
    after = json.loads(report_path.read_text())
    done = [r for r in after["trials"] if r["status"] == "completed"]
    assert len(done) == 4  # the trial count is right: nothing lost, nothing run twice
    for trial_id, row in completed.items():  # completed trials are intact
        again = next(r for r in after["trials"] if r["trial_id"] == trial_id)
        assert again == row


def test_seed_zero_is_a_seed():
    # keras-tuner's Oracle turns seed=0 into a random seed; a tfnas search with seed 0 must repeat.
    first = RandomSearchOracle(space(), seed=0)
    second = RandomSearchOracle(space(), seed=0)
    assert first.seed == second.seed == 0
    assert first.populate_space("3")["values"] == second.populate_space("3")["values"]


def test_halving_continues_from_the_parent_and_final_fit_replaces_best(tmp_path):
    from tfnas.search import SearchConfig, run_search

    config = SearchConfig(max_trials=3, epochs=2, min_epochs=1, eta=2, final_epochs=2, final_top=2,
                          max_arena=None, max_flash=None, out=str(tmp_path / "run"), seed=3,
                          space_options={"max_blocks": 2, "max_channels": 8})  # fmt: skip
    report = run_search(config, verbose=0)
    rows = {r["trial_id"]: r for r in report["trials"]}
    promoted = [r for r in rows.values() if r.get("rung") == 1]
    assert len(promoted) == 1 and promoted[0]["epochs"] == 2
    parent = rows[promoted[0]["parent"]]
    assert parent["genome"] == promoted[0]["genome"] and parent["epochs"] == 1
    assert parent["score"] == min(
        r["score"]
        for r in rows.values()
        if r.get("rung") == 0 and r["trial_id"] < promoted[0]["trial_id"]
    )
    final = report["final"]
    fits = {f["trial_id"]: f for f in final["fits"]}
    # one fit per distinct genome: the promotion shares its parent's
    assert len(fits) == 2 and len({json.dumps(rows[t]["genome"]) for t in fits}) == 2
    best = fits[final["best"]]
    out = tmp_path / "run"
    final_tflite = (out / "search" / "final" / final["best"] / "model.tflite").read_bytes()
    assert (out / "best.tflite").read_bytes() == final_tflite
    assert len(final_tflite) == best["flash_bytes"]
    assert best["score"] == min(f["score"] for f in fits.values())
    assert f"_len = {len(final_tflite)};" in (out / "model_data.cc").read_text()
    assert "Final fit" in (out / "report.md").read_text()
    # Running it again redoes nothing: the final fits are read back.
    mtime = (out / "search" / "final" / final["best"] / "model.tflite").stat().st_mtime_ns
    again = run_search(config, verbose=0)
    assert again["final"] == final
    assert (out / "search" / "final" / final["best"] / "model.tflite").stat().st_mtime_ns == mtime


def test_final_fit_quantizes_as_the_trials_did(tmp_path, monkeypatch):
    """A QAT search's final models are QAT too, and the setting is part of what a rerun reuses."""
    import tfnas.tuner.tuner as tuner_module
    from tfnas.tuner import NASTuner

    wrapped = []

    def spy(model, **kwargs):
        wrapped.append(model.name)
        return real(model, **kwargs)

    real = tuner_module.quantize_aware
    monkeypatch.setattr(tuner_module, "quantize_aware", spy)
    x, y = tiny_data()
    oracle = RandomSearchOracle(space(), Constraints(max_arena_bytes=20_000, arena="total"),
                                max_trials=2, seed=1)  # fmt: skip
    tuner = NASTuner(oracle, directory=tmp_path, project_name="p", verbose=0, quantization="qat")
    tuner.search(x, y, validation_data=tiny_data(48, 1), epochs=1, batch_size=16)
    assert len(wrapped) == 2  # one QAT fine-tune per trial
    final = tuner.final_fit(x, y, tiny_data(48, 1), top_k=1, epochs=1, batch_size=16)
    assert len(wrapped) == 3 and final["settings"]["quantization"] == "qat"
    fit = final["fits"][0]
    tflite = (tmp_path / "p" / "final" / fit["trial_id"] / "model.tflite").read_bytes()
    assert len(tflite) == fit["flash_bytes"]
    tuner.final_fit(x, y, tiny_data(48, 1), top_k=1, epochs=1, batch_size=16)
    assert len(wrapped) == 3  # the same settings: read back, not redone


def test_rung_subset_is_nested_paired_and_seeded():
    from tfnas.tuner.tuner import rung_subset

    x = np.arange(100, dtype=np.float32).reshape(100, 1) * 2
    y = np.arange(100)
    subsets = [rung_subset(x, y, f, seed=4) for f in (0.1, 1 / 3, 0.9, 1.0)]
    assert [len(s[1]) for s in subsets] == [10, 34, 90, 100]
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert set(small[1]) < set(large[1])  # a promotion sees everything its parent saw
    for sx, sy in subsets:
        assert np.array_equal(sx[:, 0], 2 * sy) and np.all(np.diff(sy) > 0)  # pairs kept, in order
    assert subsets[3][0] is x  # all of it: no copy
    assert np.array_equal(rung_subset(x, y, 0.1, seed=4)[1], subsets[0][1])
    assert not np.array_equal(rung_subset(x, y, 0.1, seed=5)[1], subsets[0][1])
    assert len(rung_subset(x, y, 1e-6, seed=4)[1]) == 1


def test_halving_over_data_trains_each_rung_on_its_fraction(tmp_path):
    """min_data=0.25, eta=2: rung 0 on 24 of 96 samples, rung 1 on 48, rung 2 on all 96."""
    from tfnas._tf import keras
    from tfnas.tuner import NASTuner

    steps = {}

    class Steps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            steps.setdefault("per_epoch", []).append(self.params["steps"])

    x, y = tiny_data()
    halving = {"min_epochs": 1, "eta": 2, "max_epochs": 4, "min_data": 0.25}
    oracle = RandomSearchOracle(space(), Constraints(max_arena_bytes=20_000, arena="total"),
                                max_trials=7, seed=2, halving=halving)  # fmt: skip
    tuner = NASTuner(oracle, directory=tmp_path, project_name="p", verbose=0)
    tuner.search(
        x, y, validation_data=tiny_data(48, 1), epochs=4, batch_size=8, callbacks=[Steps()]
    )
    rows = json.loads((tmp_path / "p" / "report.json").read_text())["trials"]
    fraction = {0: 0.25, 1: 0.5, 2: 1.0}
    assert {r["rung"] for r in rows} == {0, 1, 2}  # every rung is reached
    for row, per_epoch in zip(
        sorted(rows, key=lambda r: r["trial_id"]), steps["per_epoch"], strict=True
    ):
        assert row["data_fraction"] == fraction[row["rung"]]
        assert per_epoch == 96 * fraction[row["rung"]] / 8  # batches of 8 over the rung's samples


def test_front_2d_is_a_staircase_and_the_plot_has_three_views(tmp_path):
    from tfnas.tuner.report import front_2d, plot_pareto

    def row(i, acc, arena, flash, macs, feasible=True):
        return {"trial_id": str(i), "status": "completed", "int8_accuracy": acc, "arena_bytes": arena,
                "flash_bytes": flash, "macs": macs, "feasible": feasible}  # fmt: skip

    rows = [row(0, 0.90, 9000, 40000, 900_000), row(1, 0.49, 8000, 9000, 1_000),  # small but poor
            row(2, 0.95, 12000, 50000, 2_000_000), row(3, 0.93, 12000, 30000, 500_000),
            row(4, 0.97, 30000, 60000, 3_000_000, feasible=False)]  # fmt: skip
    feasible = [r for r in rows if r["feasible"]]
    # Accuracy against arena: 1 (smallest), 0, then 2 (3 has the same arena and less accuracy).
    assert [r["trial_id"] for r in front_2d(feasible, "arena_bytes")] == ["1", "0", "2"]
    # Against flash, 0 (40,000 B, 0.90) is dominated by 3 (30,000 B, 0.93).
    assert [r["trial_id"] for r in front_2d(feasible, "flash_bytes")] == ["1", "3", "2"]
    accuracies = [r["int8_accuracy"] for r in front_2d(feasible, "macs")]
    assert accuracies == sorted(accuracies)
    report = {"trials": rows, "pareto": ["0", "1", "2", "3"], "target": "cortex-m",
              "constraints": {"max_arena_bytes": 20000, "arena": "total", "max_flash_bytes": 64000}}  # fmt: skip
    plot_pareto(report, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


def test_progress_line_before_any_feasible_trial(tmp_path, capsys):
    # The line printed after each trial names the best feasible trial, or says there is none yet.
    from tfnas.tuner import NASTuner

    oracle = RandomSearchOracle(space(), Constraints(max_arena_bytes=50_000), max_trials=1, seed=0)
    tuner = NASTuner(oracle, directory=tmp_path, project_name="p", verbose=1)
    x, y = tiny_data(48, 0)
    tuner.search(x, y, epochs=1, batch_size=16)
    assert "| best 0 acc" in capsys.readouterr().out
    report = tuner.report()
    report["best"] = None  # as when every completed trial is over a bound
    report["trials"][0]["feasible"] = False
    tuner._print_progress(oracle.trials["0"], report)
    line = capsys.readouterr().out
    assert "OVER" in line and "| no feasible trial yet" in line
