import json
import subprocess
import sys

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
