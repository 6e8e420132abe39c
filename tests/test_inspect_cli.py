"""tfnas.inspection: the Python API, the table, the plot and the CLI contract."""

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas.errors import FlatbufferError, UnsupportedModelError
from tfnas.inspection import format_table, inspect, main, model_macs, model_params, plot_memory
from tfnas.memory import plan_memory
from tfnas.tflite import read_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MODELS = SHARED / "tflm" / "models"
ROOT = Path(__file__).resolve().parents[1]
C16 = MODELS / "c16_unas_tiny_32x32x1.tflite"
KEYS = {
    "planned_bytes", "persistent_bytes", "arena_bytes", "min_arena_bytes", "flash_bytes",
    "weights_bytes", "macs", "params", "ops", "peak_op", "target", "buffers",
}  # fmt: skip

pytestmark = pytest.mark.skipif(not MODELS.is_dir(), reason=f"shared models not found at {MODELS}")


def test_inspect_report_fields():
    report = inspect(C16, target="cortex-m")
    assert KEYS <= set(report)
    assert report["target"] == "cortex-m"
    assert report["planned_bytes"] == 2048
    assert report["persistent_bytes"] == 1860
    assert report["arena_bytes"] == 2048 + 1860
    assert report["min_arena_bytes"] == 3920
    assert report["flash_bytes"] == 9616
    assert report["weights_bytes"] == 3852
    assert [op["opcode"] for op in report["ops"]][:2] == ["CONV_2D", "CONV_2D"]
    assert [op["index"] for op in report["ops"]] == list(range(9))
    assert report["peak_op"] == 0
    assert json.loads(json.dumps(report)) == report


def test_inspect_accepts_bytes_and_rejects_unknown_target():
    assert inspect(C16.read_bytes())["planned_bytes"] == 2048
    with pytest.raises(ValueError, match="Unknown target"):
        inspect(C16, target="esp32")


def test_macs_and_params_by_hand():
    model = read_model(C16)
    sg = model.main
    expected_macs = 0
    expected_params = 0
    for op in sg.operators:
        out = sg.tensors[op.outputs[0]].shape
        if op.opcode in ("CONV_2D", "FULLY_CONNECTED"):
            w = sg.tensors[op.inputs[1]].shape
            n_out = 1
            for d in out:
                n_out *= d
            k = 1
            for d in w[1:]:
                k *= d
            expected_macs += n_out * k
            for t in op.inputs[1:]:
                expected_params += sg.tensors[t].num_elements
    assert model_macs(model) == expected_macs == 119_872
    assert model_params(model) == expected_params == 3_700


def test_format_table_marks_peak():
    text = format_table(inspect(C16))
    assert "planned (head) bytes" in text
    assert "<- peak" in text
    assert "2,048" in text


def test_plot_memory_writes_png(tmp_path):
    report = inspect(C16)
    plot_memory(report, tmp_path / "a.png")
    plot_memory(plan_memory(C16, "cortex-m-cmsis"), tmp_path / "b.png")
    for name in ("a.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_main_json(capsys):
    assert main([str(C16), "--json", "--target", "cortex-m-cmsis"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["planned_bytes"] == 2160
    assert out["arena_bytes"] == 2160 + 1956


def test_main_reorder_and_plot(tmp_path, capsys):
    src = MODELS / "c18_unas_micro_16x16x1.tflite"
    out = tmp_path / "r.tflite"
    png = tmp_path / "p.png"
    assert main([str(src), "--json", "--reorder", str(out), "--plot", str(png)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["reorder"]["planned_bytes"] == 448
    assert report["reorder"]["original_planned_bytes"] == 544
    assert inspect(out)["planned_bytes"] == 448
    assert png.stat().st_size > 0


def test_main_unsupported_model(capsys):
    path = MODELS / "c28_dag_8x8x1_int16x8_of_c03.tflite"
    assert main([str(path), "--target", "cortex-m-cmsis"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unsupported model" in err
    with pytest.raises(UnsupportedModelError):
        inspect(path, target="cortex-m-cmsis")


def test_main_bad_arguments(capsys):
    assert _exit_code(main, ["--target", "nope", str(C16)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _exit_code(fn, argv):
    try:
        return fn(argv)
    except SystemExit as exc:
        return exc.code


def _malformed_inputs(n):
    rng = random.Random(1234)
    models = [(MODELS / f).read_bytes() for f in ("hello_world_int8.tflite", C16.name)]
    foreign = [b"", b"TFL3", b"\x89PNG\r\n\x1a\n" + bytes(64), b"PK\x03\x04" + bytes(40), b"text\n"]
    out = list(foreign)
    while len(out) < n:
        kind = rng.randrange(3)
        if kind == 0:
            data = rng.choice(models)
            out.append(data[: rng.randrange(len(data) - 16)])
        elif kind == 1:
            out.append(rng.randbytes(rng.randint(0, 600)))
        else:
            data = bytearray(rng.randbytes(rng.randint(8, 600)))
            data[4:8] = b"TFL3"
            out.append(bytes(data))
    return out


def test_fuzz_main_in_process(tmp_path, capsys):
    inputs = _malformed_inputs(1000)
    path = tmp_path / "bad.tflite"
    for data in inputs:
        path.write_bytes(data)
        assert main([str(path), "--json"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.count("\n") == 1 and captured.err.startswith("tfnas inspect: error")
    with pytest.raises(FlatbufferError):
        inspect(inputs[7])


@pytest.mark.parametrize("index", [0, 2, 10, 500])
def test_fuzz_main_subprocess(tmp_path, index):
    path = tmp_path / "bad.tflite"
    path.write_bytes(_malformed_inputs(600)[index])
    result = subprocess.run(
        [sys.executable, "-m", "tfnas.inspection", str(path), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_subprocess_good_model():
    result = subprocess.run(
        [sys.executable, "-m", "tfnas.inspection", str(C16), "--json", "--target", "cortex-m"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["min_arena_bytes"] == 3920


def test_main_all_targets_side_by_side_against_the_truth(capsys):
    # The three TFLM builds' arena for one model, each equal to the real build's number.
    truth = {
        target: json.loads((SHARED / "tflm" / "truth" / folder / f"{C16.stem}.json").read_text())
        for target, folder in (("host", "x86_64"), ("cortex-m", "eabi32"), ("cortex-m-cmsis", "eabi32_cmsis"))
    }  # fmt: skip
    assert main([str(C16), "--json", "--target", "all"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "host" and set(report["targets"]) == set(truth)
    for target, real in truth.items():
        assert report["targets"][target]["arena_bytes"] == real["arena_used_bytes"], target
    assert main([str(C16), "--target", "all"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["target", "cortex-m", "cortex-m-cmsis", "host"]
    arena = table[3].split()
    assert arena[-3:] == [
        f"{truth[t]['arena_used_bytes']:,}" for t in ("cortex-m", "cortex-m-cmsis", "host")
    ]
    # The default says it is the default, and how to choose.
    assert main([str(C16)]) == 0
    assert "host (the default; use --target cortex-m" in capsys.readouterr().out.splitlines()[0]


def test_main_all_targets_marks_a_refusing_build(capsys):
    path = MODELS / "c28_dag_8x8x1_int16x8_of_c03.tflite"
    assert main([str(path), "--json", "--target", "all"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (
        "refused" in report["targets"]["cortex-m-cmsis"]
        and "arena_bytes" in report["targets"]["cortex-m"]
    )
