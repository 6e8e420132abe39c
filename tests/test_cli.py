import json
import subprocess
import sys

import pytest

from tfnas.cli import main


def test_usage_and_unknown_command(capsys):
    assert main(["--help"]) == 0
    assert "inspect MODEL.tflite" in capsys.readouterr().out
    assert main(["frobnicate"]) == 2
    assert "usage: tfnas" in capsys.readouterr().err


def test_inspect_path_imports_neither_tensorflow_nor_networkx(shared_dir):
    model = shared_dir / "tflm" / "models" / "hello_world_int8.tflite"
    code = (
        "import sys; from tfnas.cli import main; rc = main(['inspect', sys.argv[1], '--json']); "
        "assert 'tensorflow' not in sys.modules and 'networkx' not in sys.modules, 'heavy import'; "
        "sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(model)], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)["planned_bytes"] == 32  # TFLM's head for hello_world


def test_python_dash_m_tfnas_inspect(shared_dir):
    model = shared_dir / "tflm" / "models" / "c16_unas_tiny_32x32x1.tflite"
    out = subprocess.run([sys.executable, "-m", "tfnas", "inspect", str(model), "--json", "--target", "cortex-m"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    report = json.loads(out.stdout)
    truth = json.loads(
        (shared_dir / "tflm" / "truth" / "eabi32" / "c16_unas_tiny_32x32x1.json").read_text()
    )
    assert report["arena_bytes"] == truth["arena_used_bytes"]


def test_demo_runs_the_pipeline(tmp_path, capsys):
    assert main(["demo", "--epochs", "1", "--space", "micro", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "int8      accuracy" in out and "TFLM      target cortex-m" in out
    report = json.loads((tmp_path / "inspect.json").read_text())
    assert report["planned_bytes"] > 0 and report["target"] == "cortex-m"
    assert (tmp_path / "model.tflite").stat().st_size == report["flash_bytes"]


def test_search_cli_writes_every_output_and_resumes(tmp_path, capsys):
    from tests.test_tuner import tiny_npz
    from tfnas.inspection import inspect

    data = tiny_npz(tmp_path / "tiny.npz")
    config = tmp_path / "search.yaml"
    config.write_text("max_trials: 2\nepochs: 1\nstrategy: random\nmax_arena: 30000\nmax_flash: 60000\n"
                      "space_options: {max_blocks: 2, max_channels: 8}\n")  # fmt: skip
    out = tmp_path / "run"
    argv = [
        "search",
        "--config",
        str(config),
        "--data",
        str(data),
        "--out",
        str(out),
        "--target",
        "cortex-m",
    ]
    assert main(argv) == 0
    for name in (
        "best.tflite",
        "model_data.cc",
        "model_data.h",
        "report.json",
        "pareto.png",
        "report.md",
    ):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert [t["status"] for t in report["trials"]] == ["completed", "completed"]
    best = next(t for t in report["trials"] if t["trial_id"] == report["best"])
    measured = inspect((out / "best.tflite").read_bytes(), target="cortex-m")
    assert measured["arena_bytes"] == best["arena_bytes"]
    assert best["feasible"] == (
        measured["arena_bytes"] <= 30000 and measured["flash_bytes"] <= 60000
    )
    assert (
        f"kTensorArenaSize = {measured['min_arena_bytes']};" in (out / "model_data.h").read_text()
    )
    # Running the same command again resumes: nothing is retrained, the report is the same.
    assert main(argv) == 0
    assert json.loads((out / "report.json").read_text())["trials"] == report["trials"]
    capsys.readouterr()


def test_search_cli_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"max_trails": 3}')
    assert main(["search", "--config", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Unknown setting 'max_trails'" in err[0]
    assert "(did you mean 'max_trials'?)" in err[0]


@pytest.mark.parametrize("flags,expected", [
    (["--proxy-pool", "0"], "proxy_pool must be an integer >= 1. Received: proxy_pool=0"),
    (["--eta", "1", "--min-epochs", "1"], "eta must be an integer >= 2. Received: eta=1"),
    (["--min-epochs", "0"], "min_epochs must be an integer >= 1. Received: min_epochs=0"),
    (["--min-epochs", "6", "--epochs", "6"], "min_epochs must be below epochs"),
    (["--final-epochs", "0"], "final_epochs must be an integer >= 1. Received: final_epochs=0"),
    (["--final-top", "-1"], "final_top must be an integer >= 1. Received: final_top=-1"),
])  # fmt: skip
def test_search_cli_bad_multi_fidelity_settings(tmp_path, capsys, flags, expected):
    out = tmp_path / "o"
    assert main(["search", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("settings,expected", [
    ({"strategy": "micronas", "strategy_options": {"pool": -1}}, "pool must be an integer >= 0. Received: pool=-1"),
    ({"space": "cell", "space_options": {"stem_stride": 3}}, "stem_stride must be 1 or 2. Received: stem_stride=3"),
    ({"strategy_options": {"proxy_weights": {"flops": 1}}}, "Unknown hybrid weights ['flops']"),
])  # fmt: skip
def test_search_cli_bad_micronas_and_cell_settings(tmp_path, capsys, settings, expected):
    config = tmp_path / "c.json"
    config.write_text(json.dumps(settings))
    out = tmp_path / "o"
    assert main(["search", "--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]
    assert not out.exists()


def test_devices_lists_the_catalogue_with_budgets(capsys):
    from tfnas.objectives import DEVICES

    assert main(["devices"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["device", "MCU", "core"] and len(out) == len(DEVICES) + 2
    nucleo = next(line for line in out if line.startswith("stm32f446re "))
    # 128 KiB SRAM and 512 KiB flash, a quarter kept for the application.
    assert "98,304" in nucleo and "393,216" in nucleo and "cortex-m-cmsis" in nucleo
    assert main(["devices", "--json", "--headroom", "20000"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["stm32h743"]["max_arena_bytes"] == 512 * 1024 - 20000  # the contiguous block
    assert main(["devices", "--headroom", "1.5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tfnas devices: error: headroom must be a fraction in [0, 1) of the board's RAM "
                   "and flash, or a whole number of bytes. Received: headroom=1.5"]  # fmt: skip


def test_search_prints_only_tfnas_lines_unless_asked(tmp_path):
    # TensorFlow's start-up lines, absl and the converter's per-model line are silenced;
    # TFNAS_TF_LOGS=1 brings them back.
    import os

    argv = [sys.executable, "-m", "tfnas", "search", "--max-trials", "1", "--epochs", "1"]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the user's default
    quiet = subprocess.run(
        [*argv, "--out", str(tmp_path / "a")], capture_output=True, text=True, env=env
    )
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr == ""
    lines = quiet.stdout.splitlines()
    assert lines[0].startswith("[tfnas] trial 0 (1/1)") and lines[-1].startswith("wrote ")
    assert len(lines) == 3
    loud = subprocess.run([*argv, "--out", str(tmp_path / "b")], capture_output=True, text=True,
                          env={**env, "TFNAS_TF_LOGS": "1"})  # fmt: skip
    assert loud.returncode == 0 and "fully_quantize" in loud.stderr
