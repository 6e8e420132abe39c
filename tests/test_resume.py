"""Safe resumes and honest endings: re-scoring under new constraints, failed and diverged trials."""

import json

import numpy as np
import pytest

from tests.test_tuner import space, tiny_data
from tfnas.cli import main
from tfnas.errors import InfeasibleModelError, TrialsFailedError
from tfnas.inspection import inspect
from tfnas.objectives import Constraints


def _report(out):
    return json.loads((out / "report.json").read_text())


def test_resume_with_other_constraints_rescores_both_ways(tmp_path, data_file, capsys):
    out = tmp_path / "o"
    argv = ["search", "--data", str(data_file), "--max-trials", "2", "--epochs", "1",
            "--strategy", "random", "--max-flash", "200000", "--out", str(out)]  # fmt: skip
    assert main([*argv, "--max-arena", "100000"]) == 0
    first = _report(out)
    arenas = {t["trial_id"]: t["arena_bytes"] for t in first["trials"]}
    assert all(t["feasible"] for t in first["trials"]) and first["best"] is not None
    best_bytes = (out / "best.tflite").read_bytes()
    capsys.readouterr()

    # Tighter than every trial: all become infeasible, nothing deployable is left behind.
    tight = min(arenas.values()) - 1
    assert main([*argv, "--max-arena", str(tight)]) == 1
    captured = capsys.readouterr()
    assert "no completed trial meets the constraints (2 completed, 0 failed)" in captured.err
    assert "best.tflite" not in captured.out  # never "wrote" a file that does not exist
    report = _report(out)
    assert report["constraints"]["max_arena_bytes"] == tight
    assert [t["feasible"] for t in report["trials"]] == [False, False]
    assert report["best"] is None and report["pareto"] == []
    for name in ("best.tflite", "model_data.cc", "model_data.h", "pareto.png"):
        assert not (out / name).exists(), name
    assert json.loads((out / "config.json").read_text())["max_arena"] == tight

    # Between the two arenas: only the smaller trial is feasible, and it is deployed.
    assert len(set(arenas.values())) == 2  # seed 0 draws two different networks
    middle = max(arenas.values()) - 1
    assert main([*argv, "--max-arena", str(middle)]) == 0
    report = _report(out)
    small = min(arenas, key=arenas.get)
    assert report["best"] == small and report["pareto"] == [small]
    model = (out / "search" / f"trial_{small}" / "model.tflite").read_bytes()
    assert (out / "best.tflite").read_bytes() == model
    capsys.readouterr()

    # Back to the first bound: the first result returns, byte for byte.
    assert main([*argv, "--max-arena", "100000"]) == 0
    report = _report(out)
    assert report["best"] == first["best"] and report["pareto"] == first["pareto"]
    assert (out / "best.tflite").read_bytes() == best_bytes
    assert [t["score"] for t in report["trials"]] == pytest.approx(
        [t["score"] for t in first["trials"]]
    )


def test_resume_on_another_target_remeasures_the_saved_models(tmp_path, data_file, capsys):
    out = tmp_path / "o"
    argv = ["search", "--data", str(data_file), "--max-trials", "1", "--epochs", "1",
            "--strategy", "random", "--out", str(out)]  # fmt: skip
    assert main([*argv, "--target", "cortex-m"]) == 0
    assert main([*argv, "--target", "host"]) == 0
    capsys.readouterr()
    row = _report(out)["trials"][0]
    model = (out / "search" / "trial_0" / "model.tflite").read_bytes()
    host = inspect(model, target="host")
    assert (
        row["arena_bytes"]
        == host["arena_bytes"]
        != inspect(model, target="cortex-m")["arena_bytes"]
    )
    assert _report(out)["target"] == "host"


def _tuner(tmp_path, max_trials, constraints=None, **kwargs):
    from tfnas.strategies import RandomSearchOracle
    from tfnas.tuner import NASTuner

    oracle = RandomSearchOracle(space(), constraints or Constraints(max_arena_bytes=50_000),
                                max_trials=max_trials, seed=0, **kwargs)  # fmt: skip
    return NASTuner(oracle, directory=tmp_path, project_name="p", verbose=0)


def test_a_diverged_trial_fails_with_its_reason_and_the_search_goes_on(tmp_path):
    from tfnas._tf import keras

    class PoisonFirstTrial(keras.callbacks.Callback):
        calls = 0

        def on_train_end(self, logs=None):
            PoisonFirstTrial.calls += 1
            if PoisonFirstTrial.calls == 1:  # the first trial's weights turn to NaN
                weights = self.model.get_weights()
                weights[0] = np.full_like(weights[0], np.nan)
                self.model.set_weights(weights)

    tuner = _tuner(tmp_path, 2)
    x, y = tiny_data(64, 0)
    tuner.search(x, y, validation_data=tiny_data(32, 1), epochs=1, batch_size=16,
                 callbacks=[PoisonFirstTrial()])  # fmt: skip
    report = tuner.report()
    statuses = {t["trial_id"]: t["status"] for t in report["trials"]}
    assert statuses == {"0": "failed", "1": "completed"}
    assert "training diverged" in tuner.oracle.trials["0"].message
    assert "feasible" not in report["trials"][0] and report["best"] == "1"


def test_trials_failing_in_a_row_end_in_one_line_and_lose_nothing(tmp_path):
    from tfnas._tf import keras

    class FailAfterFirst(keras.callbacks.Callback):
        calls = 0

        def on_train_begin(self, logs=None):
            FailAfterFirst.calls += 1
            if FailAfterFirst.calls > 1:
                raise RuntimeError("sensor data went missing")

    tuner = _tuner(tmp_path, 6)
    x, y = tiny_data(64, 0)
    with pytest.raises(TrialsFailedError, match=r"^3 trials in a row failed, so the search stopped\. "
                       r"Last reason: RuntimeError: sensor data went missing\. Completed trials are kept"):  # fmt: skip
        tuner.search(x, y, epochs=1, batch_size=16, callbacks=[FailAfterFirst()])
    saved = json.loads((tmp_path / "p" / "oracle.json").read_text())
    assert saved["end_order"] == ["0", "1", "2", "3"]
    resumed = _tuner(tmp_path, 6)
    trials = resumed.oracle.trials
    assert [trials[t].status for t in sorted(trials)] == ["COMPLETED", *["FAILED"] * 3]
    assert resumed.report()["best"] == "0"


def test_an_impossible_bound_points_to_a_report_that_exists(tmp_path, data_file, capsys):
    out = tmp_path / "o"
    code = main(["search", "--data", str(data_file), "--max-arena", "16", "--out", str(out),
                 "--strategy", "random"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].endswith(f"the rejected candidates are in {out / 'report.json'}")
    report = _report(out)
    assert report["trials"] == [] and len(report["rejected"]) == 500
    assert not (out / "best.tflite").exists()


def test_api_impossible_bound(tmp_path):
    tuner = _tuner(tmp_path, 1, Constraints(max_arena_bytes=16), max_rejections=20)
    x, y = tiny_data(32, 0)
    with pytest.raises(
        InfeasibleModelError, match="No candidate met the constraints in 20 proposals"
    ):
        tuner.search(x, y, epochs=1)
