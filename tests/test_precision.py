"""Precision analysis: six formats per Pareto model, TFLM's verdict, sizes, fronts and the CLI."""

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from tfnas.cli import main
from tfnas.errors import ConversionError, InputError
from tfnas.precision import (
    FORMATS,
    check_formats,
    check_run,
    check_targets,
    precision_fronts,
    tflm_interpreter_check,
)

HAVE_TFLM = importlib.util.find_spec("tflite_micro") is not None


@pytest.fixture(scope="module")
def digits():
    from tfnas.data import load_digits

    return load_digits(seed=0)


@pytest.fixture(scope="module")
def conv_net(digits):
    """Conv2D(8, 3x3, same) -> Flatten -> Dense(10) -> softmax on 8x8 digits, trained 5 epochs.

    Parameters: conv 3*3*1*8 + 8 = 80, dense 512*10 + 10 = 5,130; 5,210 in all.
    """
    from tfnas._tf import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ])  # fmt: skip
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(digits.x_train, digits.y_train, epochs=5, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def converted(conv_net, digits):
    """Every format of ``conv_net`` and its measurement (8 samples through the real TFLM)."""
    from tfnas.precision import convert_format, measure_format

    out = {}
    for fmt in FORMATS:
        tflite = convert_format(conv_net, fmt, digits.x_train, digits.y_train, qat_epochs=1)
        out[fmt] = (tflite, measure_format(tflite, digits.x_test, digits.y_test, tflm_samples=8))
    return out


# ------------------------------------------------------------------ TFLM's verdict


def test_tflm_refuses_float16_and_dynamic_range_with_the_reason(converted):
    for fmt in ("float16", "dynamic"):
        row = converted[fmt][1]
        assert all(not v["runs"] for v in row["tflm"].values()), fmt
        assert row["arena_bytes"] == {"host": None, "cortex-m": None, "cortex-m-cmsis": None}
        reason = row["tflm"]["cortex-m"]["reason"]
        if HAVE_TFLM:  # the real interpreter refused it while allocating, and says which kernel
            assert reason.startswith("TFLM interpreter (allocate): "), reason
            assert row["interpreter"]["ok"] is False and row["interpreter"]["agreement"] is None
            # float16: the first DEQUANTIZE (float16 -> float32 weights) has no float16 kernel.
            # dynamic: the converter keeps the 72-weight conv kernel float (dynamic-range
            # quantisation skips tensors under 1,024 elements), so the hybrid op is the dense.
            node = "DEQUANTIZE (number 0)" if fmt == "float16" else "FULLY_CONNECTED (number 2)"
            assert f"Node {node} failed to prepare with status 1" in reason, reason
        else:
            assert reason.startswith("tfnas memory model (cortex-m): "), reason
    if HAVE_TFLM:
        assert (
            "Input type: FLOAT32 with filter type: INT8 not supported"
            in (converted["dynamic"][1]["tflm"]["host"]["reason"])
        )


def test_tflm_runs_float32_int8_and_int16x8_and_agrees_with_litert(converted):
    for fmt in ("float32", "int8", "int8_qat", "int16x8"):
        row = converted[fmt][1]
        for target in ("host", "cortex-m"):
            assert row["tflm"][target] == {"runs": True, "reason": None}, (fmt, target)
            assert row["exact"][target] is True and row["arena_bytes"][target] > 0
        if HAVE_TFLM:
            assert row["interpreter"]["ok"] and row["interpreter"]["samples"] == 8
            assert row["interpreter"]["agreement"] == 1.0, fmt
    # CMSIS-NN's fully-connected kernel takes per-channel weights only with int8 input (DESIGN.md §3)
    cmsis = converted["int16x8"][1]["tflm"]["cortex-m-cmsis"]
    assert not cmsis["runs"] and "CMSIS-NN FULLY_CONNECTED supports per-channel" in cmsis["reason"]
    assert converted["int16x8"][1]["arena_bytes"]["cortex-m-cmsis"] is None


def test_interpreter_check_reports_a_broken_flatbuffer_instead_of_crashing(digits):
    if not HAVE_TFLM:
        assert tflm_interpreter_check(b"garbage", digits.x_test[:2]) is None
        return
    result = tflm_interpreter_check(b"not a flatbuffer" * 8, digits.x_test[:2])
    assert result["ok"] is False and result["stage"] == "allocate" and result["error"]
    assert result["outputs"] is None


# ------------------------------------------------------------------------ sizes


def test_weights_and_flash_shrink_with_the_weight_type(converted):
    """Weight bytes by hand: 5,210 parameters (72 + 5,120 kernel, 18 biases) + 8 B reshape shape."""
    weights = {fmt: converted[fmt][1]["weights_bytes"] for fmt in FORMATS}
    assert weights["float32"] == 4 * 5210 + 8
    assert weights["float16"] == 2 * 5210 + 8  # biases too are stored as float16
    assert weights["int8"] == weights["int8_qat"] == 72 + 5120 + 4 * 18 + 8  # int32 biases
    assert weights["int16x8"] == 72 + 5120 + 8 * 18 + 8  # int64 biases
    assert weights["dynamic"] == 4 * 80 + 5120 + 4 * 10 + 8  # conv stays float32 (< 1,024 weights)
    flash = {fmt: converted[fmt][1]["flash_bytes"] for fmt in FORMATS}
    assert flash["float32"] > flash["float16"] > flash["int8"]
    assert flash["float32"] > flash["dynamic"]
    assert all(converted[fmt][1]["flash_bytes"] == len(converted[fmt][0]) for fmt in FORMATS)


def test_activation_width_scales_the_planned_arena(converted):
    """Planned bytes by hand for the chain input -> conv -> reshape -> fc -> softmax.

    int8 tensors: input 64, conv out 512, reshape out 512, fc out 10 -> 16, softmax out 16.
    conv out lives at ops 0-1 and the reshape out at ops 1-2, so the two 512 B tensors
    cannot share and the greedy planner stacks them: 1,024 B. Every other tensor fits below
    a dead one. 16-bit activations double every size (128, 1,024, 1,024, 32, 32): 2,048 B;
    float32 quadruples them: 4,096 B.
    """
    from tfnas.inspection import inspect

    planned = {
        fmt: inspect(converted[fmt][0], target="cortex-m")["planned_bytes"]
        for fmt in ("int8", "int8_qat", "int16x8", "float32")
    }
    assert planned == {"int8": 1024, "int8_qat": 1024, "int16x8": 2048, "float32": 4096}
    arena = {fmt: converted[fmt][1]["arena_bytes"]["cortex-m"] for fmt in ("int8", "int16x8")}
    assert arena["int16x8"] - arena["int8"] >= 1024  # the head's 1,024 B plus a larger tail
    if HAVE_TFLM:
        from tests.tflm_reference import tflm_heads

        for fmt in ("int8", "int16x8", "float32"):
            path = converted_path(converted, fmt)
            assert tflm_heads([path])[str(path)] == planned[fmt], fmt


def converted_path(converted, fmt):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp(prefix="tfnas-prec-")) / f"{fmt}.tflite"
    path.write_bytes(converted[fmt][0])
    return path


# --------------------------------------------------------------------- accuracy


def test_reduced_precision_keeps_the_trained_accuracy(conv_net, converted, digits):
    keras_accuracy = float(conv_net.evaluate(digits.x_test, digits.y_test, verbose=0)[1])
    assert keras_accuracy > 0.85  # a trained model, so the comparison means something
    one = 1 / len(digits.x_test)
    assert abs(converted["float32"][1]["accuracy"] - keras_accuracy) <= one
    assert abs(converted["float16"][1]["accuracy"] - keras_accuracy) <= 2 * one
    for fmt in ("int8", "int16x8", "dynamic", "int8_qat"):
        assert abs(converted[fmt][1]["accuracy"] - keras_accuracy) <= 0.02, fmt


# ------------------------------------------------------------------------ fronts


def test_fronts_by_hand():
    def row(trial, fmt, accuracy, arena, flash, runs=True):
        return {"trial_id": trial, "format": fmt, "status": "ok", "accuracy": accuracy,
                "arena_bytes": {"cortex-m": arena if runs else None}, "flash_bytes": flash,
                "tflm": {"cortex-m": {"runs": runs, "reason": None if runs else "no"}}}  # fmt: skip

    rows = [
        row("a", "int8", 0.90, 5000, 20000),
        row("b", "int8", 0.95, 9000, 15000),  # flash: b dominates a
        row("c", "int8", 0.93, 9500, 30000),  # dominated by b on both
        row("d", "int8", 0.97, 12000, 40000),
        row("a", "float16", 0.91, None, 12000, runs=False),
        row("b", "float16", 0.95, None, 10000, runs=False),
        {"trial_id": "a", "format": "int8_qat", "status": "failed", "reason": "same scale"},
    ]
    fronts = precision_fronts(rows, "cortex-m")
    assert fronts["int8"] == {"arena": ["a", "b", "d"], "flash": ["b", "d"]}
    assert fronts["float16"] == {"arena": [], "flash": ["b"]}
    assert fronts["int8_qat"] == {"arena": [], "flash": []}


def test_format_and_target_names():
    assert check_formats("int16x8, int8") == ("int8", "int16x8")  # table order
    assert check_targets("all") == ("host", "cortex-m", "cortex-m-cmsis")
    assert check_targets(["cortex-m-cmsis", "host"]) == ("host", "cortex-m-cmsis")
    with pytest.raises(InputError, match=r"Unknown format 'fp16' \(did you mean 'float16'\?\)"):
        check_formats("fp16")
    with pytest.raises(InputError, match=r"No format given"):
        check_formats(" , ")
    with pytest.raises(InputError, match=r"Unknown target 'm4'"):
        check_targets("m4")


# ------------------------------------------------------------ a run, by hand


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished run as `tfnas search` leaves it: config.json, report.json, trial weights."""
    from tests.test_tuner import space, tiny_data, tiny_npz
    from tfnas._tf import keras
    from tfnas.model import build_model

    run = tmp_path_factory.mktemp("run")
    tiny_npz(run / "tiny.npz")
    x, y = tiny_data(96, 0)
    genome = space().sample(3)
    keras.utils.set_random_seed(0)
    model = build_model(genome, seed=0)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    (run / "search" / "trial_0").mkdir(parents=True)
    model.save_weights(str(run / "search" / "trial_0" / "weights.h5"))
    trials = [
        {"trial_id": "0", "status": "completed", "genome": genome.to_dict(), "feasible": True,
         "int8_accuracy": 0.5, "val_accuracy": 0.5, "arena_bytes": 1, "flash_bytes": 1},
        {"trial_id": "1", "status": "failed", "genome": genome.to_dict()},
    ]  # fmt: skip
    report = {"trials": trials, "pareto": ["0"], "target": "cortex-m",
              "constraints": {"max_arena_bytes": 20000}}  # fmt: skip
    (run / "report.json").write_text(json.dumps(report))
    config = {"data": str(run / "tiny.npz"), "seed": 0, "batch_size": 16, "target": "cortex-m"}
    (run / "config.json").write_text(json.dumps(config))
    return run


def test_cli_on_a_run_prints_the_table_and_writes_three_files(tiny_run, tmp_path, capsys):
    code = main(["precision", str(tiny_run), "--formats", "float16,int8", "--target", "cortex-m",
                 "--out", str(tmp_path)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"wrote {tmp_path}/precision.json, precision.md, precision.png" in out
    result = json.loads((tmp_path / "precision.json").read_text())
    assert [(r["trial_id"], r["format"]) for r in result["rows"]] == [
        ("0", "float16"),
        ("0", "int8"),
    ]
    assert result["targets"] == ["cortex-m"] and result["test_samples"] == 48
    float16, int8 = result["rows"]
    assert int8["tflm"]["cortex-m"]["runs"] and not float16["tflm"]["cortex-m"]["runs"]
    assert int8["arena_bytes"]["cortex-m"] > 0 and float16["arena_bytes"]["cortex-m"] is None
    assert result["fronts"]["int8"]["arena"] == ["0"] and result["fronts"]["float16"]["arena"] == []
    assert result["at_budget"]["float16"] is None and result["at_budget"]["int8"]["trial_id"] == "0"
    assert "[tfnas] trial 0 int8 PTQ: accuracy " in out  # a progress line per format
    table = next(line for line in out.splitlines() if line.startswith("    0  float16 weights"))
    assert "refused [1]" in table
    kind = re.sub(r"\b(operator|number) \d+", r"\1 #", float16["tflm"]["cortex-m"]["reason"])
    assert "[1] " + kind in out  # the cause, once, without operator numbers
    markdown = (tmp_path / "precision.md").read_text()
    assert "| 0 | int8 PTQ | " in markdown and "refused [1]" in markdown
    assert (tmp_path / "precision.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failed_conversion_is_a_row_with_its_reason(tiny_run, monkeypatch):
    import tfnas.precision as precision

    real = precision.convert_format

    def convert(model, fmt, *args, **kwargs):
        if fmt == "int8_qat":  # what some QAT models do in the converter
            raise ConversionError("The TFLite converter failed (mode=int8): 'tfl.max_pool_2d' op "
                                  "quantization parameters violate the same scale constraint")  # fmt: skip
        return real(model, fmt, *args, **kwargs)

    monkeypatch.setattr(precision, "convert_format", convert)
    result = precision.analyze_precision(tiny_run, ["int8", "int8_qat"], ["host"], tflm_samples=0)
    failed = result["rows"][1]
    assert failed["status"] == "failed" and "same scale constraint" in failed["reason"]
    assert "accuracy" not in failed and result["rows"][0]["status"] == "ok"
    assert result["rows"][0]["interpreter"] is None  # tflm_samples=0: memory model only
    text = precision.format_precision(result)
    assert "not converted [1]" in text and "[1] The TFLite converter failed" in text
    assert "the TFLM interpreter was not run" in text


# ------------------------------------------------------------------- CLI errors


def _error(argv, capsys) -> str:
    assert main(["precision", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    return captured.err.strip()


def test_cli_errors_are_one_line(tiny_run, tmp_path, capsys):
    missing = tmp_path / "nope"
    assert _error([str(missing)], capsys) == (
        f"tfnas precision: error: {missing} is not a folder. Expected the --out folder of a "
        f"finished `tfnas search`. Received: {missing}"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _error([str(empty)], capsys) == (
        f"tfnas precision: error: {empty}/report.json does not exist. Expected the --out folder "
        f"of a finished `tfnas search` (with report.json). Received: {empty}"
    )
    (empty / "report.json").write_text("{not json")
    assert _error([str(empty)], capsys).startswith(
        f"tfnas precision: error: {empty}/report.json is not valid JSON. Expected the report a "
        "search writes. Received: Expecting property name"
    )
    (empty / "report.json").write_text(json.dumps({"trials": [
        {"trial_id": "0", "status": "completed", "feasible": False},
        {"trial_id": "1", "status": "failed"}], "pareto": []}))  # fmt: skip
    assert _error([str(empty)], capsys) == (
        f"tfnas precision: error: {empty}/report.json has no Pareto front to analyse. Expected "
        "at least one completed feasible trial. Received: 1 completed trials, 0 feasible"
    )
    (empty / "report.json").write_text(json.dumps({"trials": [
        {"trial_id": "0", "status": "completed", "feasible": True}], "pareto": ["0"]}))  # fmt: skip
    assert _error([str(empty)], capsys) == (
        f"tfnas precision: error: Trial 0's trained weights are missing. Expected "
        f"{empty}/search/trial_0/weights.h5 (or {empty}/trial_0/weights.h5). Received: neither exists"
    )
    assert _error([str(tiny_run), "--formats", "int8,fp16"], capsys) == (
        "tfnas precision: error: Unknown format 'fp16' (did you mean 'float16'?). Expected some "
        "of ['float32', 'float16', 'dynamic', 'int8', 'int8_qat', 'int16x8']. Received: int8,fp16"
    )
    assert _error([str(tiny_run), "--target", "m4"], capsys) == (
        "tfnas precision: error: argument --target: invalid choice: 'm4' (choose from 'host', "
        "'cortex-m', 'cortex-m-cmsis', 'all')"
    )
    assert _error([str(tiny_run), "--qat-epochs", "0"], capsys) == (
        "tfnas precision: error: --qat-epochs must be an integer >= 1. Received: --qat-epochs=0"
    )
    assert _error([str(tiny_run), "--qat-learning-rate", "0"], capsys) == (
        "tfnas precision: error: --qat-learning-rate must be positive. Received: "
        "--qat-learning-rate=0.0"
    )
    assert _error([str(tiny_run), "--qat-epochs", "x"], capsys) == (
        "tfnas precision: error: argument --qat-epochs: invalid int value: 'x'"
    )


def test_bad_run_fails_before_tensorflow_is_imported(tmp_path):
    code = ("import sys; from tfnas.cli import main; rc = main(['precision', sys.argv[1]]); "
            "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'; sys.exit(rc)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"tfnas precision: error: {tmp_path}/report.json does not exist. "
                           "Expected the --out folder of a finished `tfnas search` (with "
                           f"report.json). Received: {tmp_path}\n")  # fmt: skip


def test_check_run_takes_named_trials(tiny_run):
    assert check_run(tiny_run).trial_ids == ("0",)
    assert check_run(tiny_run, ["0"]).weights["0"].name == "weights.h5"
    with pytest.raises(InputError, match=r"Trial '1' is not a completed trial .* Received: '1'"):
        check_run(tiny_run, ["1"])


# ------------------------------------------------------- a real search, end to end


@pytest.mark.slow
def test_precision_of_a_real_search_reproduces_its_int8_numbers(data_file, tmp_path, capsys):
    """The int8 PTQ row is the model the search deployed: same accuracy, flash and arena."""
    out = tmp_path / "run"
    assert main(["search", "--data", str(data_file), "--max-trials", "2", "--epochs", "2",
                 "--strategy", "random", "--out", str(out)]) == 0  # fmt: skip
    assert main(["precision", str(out), "--target", "cortex-m"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}/precision.json, precision.md, precision.png" in printed
    report = json.loads((out / "report.json").read_text())
    result = json.loads((out / "precision.json").read_text())
    assert result["trials"] == report["pareto"]
    assert len(result["rows"]) == len(report["pareto"]) * len(FORMATS)
    for trial in report["pareto"]:
        searched = next(r for r in report["trials"] if r["trial_id"] == trial)
        int8 = next(r for r in result["rows"] if r["trial_id"] == trial and r["format"] == "int8")
        assert int8["accuracy"] == searched["int8_accuracy"]
        assert int8["flash_bytes"] == searched["flash_bytes"]
        assert int8["arena_bytes"]["cortex-m"] == searched["arena_bytes"]
        rows = {r["format"]: r for r in result["rows"] if r["trial_id"] == trial}
        assert not rows["float16"]["tflm"]["cortex-m"]["runs"]
        assert not rows["dynamic"]["tflm"]["cortex-m"]["runs"]
