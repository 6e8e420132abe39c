"""MSNAS end to end on generated data: search, learned state, resume, family, transfer."""

import csv
import json

import numpy as np
import pytest

from tests.test_tuner import tiny_npz
from tfnas.cli import main
from tfnas.genome import Genome, analyze
from tfnas.strategies import MetaGraph


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("msnas")
    tiny_npz(tmp / "tiny.npz")
    config = {
        "data": str(tmp / "tiny.npz"),
        "strategy": "msnas",
        "max_trials": 3,
        "epochs": 1,
        "max_arena": 60000,
        "max_flash": 60000,
        "proxy_samples": 64,
        "space_options": {"stages": 2, "nodes": 4, "channels": [4, 8]},
        "strategy_options": {"alpha": 2.0},
        "out": str(tmp / "run"),
    }
    (tmp / "msnas.json").write_text(json.dumps(config))
    assert main(["search", "--config", str(tmp / "msnas.json")]) == 0
    return tmp / "run"


def test_search_learns_and_saves_the_metagraph(run_dir):
    report = json.loads((run_dir / "report.json").read_text())
    done = [t for t in report["trials"] if t["status"] == "completed"]
    assert len(done) == 3 and report["strategy"] == "MSNASOracle"
    learned = MetaGraph.load(run_dir / "metagraph.json")
    assert [h["trial_id"] for h in learned.history] == [t["trial_id"] for t in done]
    # Replaying the three updates on a fresh meta-graph gives the saved weights exactly.
    fresh = MetaGraph.from_config(learned.get_config())
    for h, t in zip(learned.history, done, strict=True):
        genome = Genome.from_dict(t["genome"])
        assert h["score"] == pytest.approx(h["perf"] - h["iot"])
        assert h["perf"] == pytest.approx(t["int8_accuracy"])
        fresh.update(genome, h["score"], alpha=2.0)
    for s in range(learned.stages):
        for e, w in learned.weights[s].items():
            assert w == pytest.approx(fresh.weights[s][e], rel=1e-12)
    assert learned.weights != MetaGraph.from_config(learned.get_config()).weights


def test_rerun_resumes_without_new_trials_or_updates(run_dir):
    before = (run_dir / "metagraph.json").read_text()
    config = json.loads((run_dir / "config.json").read_text())
    path = run_dir.parent / "again.json"
    path.write_text(json.dumps(config))
    assert main(["search", "--config", str(path)]) == 0
    report = json.loads((run_dir / "report.json").read_text())
    assert sum(t["status"] == "completed" for t in report["trials"]) == 3
    assert (run_dir / "metagraph.json").read_text() == before


def test_family_cli_writes_the_table(run_dir, capsys):
    rc = main(["family", str(run_dir), "--thresholds", "0.7,0.5,0.3", "--epochs", "1",
               "--device", "raspberry-pi-pico"])  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert "MSNet-0" in out and "is the largest member" in out
    rows = list(csv.DictReader((run_dir / "family.csv").open()))
    assert [float(r["threshold"]) for r in rows] == [0.7, 0.5, 0.3]
    assert (run_dir / "family.png").stat().st_size > 0
    edges = [int(r["edges"]) for r in rows]
    assert edges == sorted(edges)
    from tfnas.inspection import inspect

    for r in rows:
        tflite = (run_dir / "family" / f"{r['name']}.tflite").read_bytes()
        assert int(r["flash_bytes"]) == len(tflite)
        assert int(r["arena_bytes"]) == inspect(tflite, target=r["target"])["arena_bytes"]
        assert 0.0 <= float(r["int8_accuracy"]) <= 1.0


def test_family_transfers_to_a_new_task_without_search(run_dir, tmp_path, capsys):
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (40, 12, 12, 3)).astype(np.float32)
    y = rng.integers(0, 5, 40)
    np.savez(tmp_path / "other.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    rc = main(["family", str(run_dir), "--thresholds", "0.5", "--epochs", "1",
               "--data", str(tmp_path / "other.npz"), "--out", str(tmp_path)])  # fmt: skip
    assert rc == 0
    assert "transfer: meta-graph applied" in capsys.readouterr().out
    genome = json.loads((tmp_path / "family" / "MSNet-0.genome.json").read_text())
    assert genome["input_shape"] == [12, 12, 3] and genome["num_classes"] == 5
    learned = MetaGraph.load(run_dir / "metagraph.json")
    transferred = Genome.from_json((tmp_path / "family" / "MSNet-0.genome.json").read_text())
    moved = learned.transfer((12, 12, 3), 5)
    assert moved.sampled_edges(transferred) == learned.sampled_edges(learned.derive(0.5))


def test_family_cli_errors(tmp_path, capsys):
    assert main(["family", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "metagraph.json does not exist" in err and len(err.strip().splitlines()) == 1


def test_fit_device_measures_members_exactly_by_default(run_dir):
    from tfnas.objectives import get_device
    from tfnas.strategies.msnas import measure_genome

    learned = MetaGraph.load(run_dir / "metagraph.json")
    pico = get_device("raspberry-pi-pico")
    member, metrics = learned.fit_device(pico, [0.7, 0.3])
    assert member.threshold == 0.3  # both fit a 264 KB board; the larger is chosen
    assert metrics == measure_genome(member.genome, pico.target)
    assert metrics["arena_bytes"] == metrics["planned_bytes"] + metrics["persistent_bytes"]
    assert metrics["macs"] == analyze(member.genome).macs
