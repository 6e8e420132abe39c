"""Latency calibration: exact recovery, NNLS, leave-one-out by hand, the CSV, JSON, CLI, search."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tfnas.errors import InputError
from tfnas.objectives import Constraints
from tfnas.objectives.calibration import (
    COEFFICIENTS,
    LatencyCalibration,
    Measurement,
    calibrate_csv,
    fit_calibration,
    model_features,
    read_measurements,
)
from tfnas.objectives.latency import estimate_genome_latency, estimate_latency

BOARD = "frdm-mcxn947"


@pytest.fixture
def models(shared_dir):
    return shared_dir / "tflm" / "models"


def _write(path, text):
    path.write_text(text)
    return path


def _synthetic(models, names, truth, board=BOARD, kernels="optimized"):
    """Measurements whose cycles follow the latency model with the coefficients ``truth``."""
    out = []
    for name in names:
        features, fixed = model_features(models / name, board, kernels)
        cycles = fixed + sum(features[k] * truth[k] for k in COEFFICIENTS)
        out.append(Measurement(name, str(models / name), board, cycles, kernels))
    return out


ALL_INT8 = [
    *(f"c{i:02d}" for i in range(1, 25)),
    "hello_world_int8",
    "keyword_scrambled_8bit",
    "micro_speech_quantized",
    "person_detect",
    "trained_lstm_int8",
]


def _names(models):
    return [next(models.glob(f"{stem}*.tflite")).name for stem in ALL_INT8]


@pytest.mark.parametrize("seed", range(3))
def test_calibration_recovers_known_coefficients_exactly(models, seed):
    rng = np.random.default_rng(seed)
    truth = {k: float(rng.uniform(0.2, 40.0)) for k in COEFFICIENTS}
    truth["overhead"] = float(rng.uniform(200, 3000))
    cal = fit_calibration(_synthetic(models, _names(models), truth), "kinds")
    assert set(cal.fitted) == set(COEFFICIENTS)  # every kind is exercised by these 29 models
    for k in COEFFICIENTS:
        assert cal.coefficients[k] == pytest.approx(truth[k], rel=1e-9), k
    for row in cal.measurements:  # an exact fit, in and out of sample
        assert row["fitted_cycles"] == pytest.approx(row["measured_cycles"], rel=1e-9)
        assert row["loo_ratio"] == pytest.approx(1.0, rel=1e-7)
    # The calibrated model reproduces each model's cycles through estimate_latency too.
    for name in ("person_detect.tflite", "c05_dag_32x32x3.tflite"):
        features, fixed = model_features(models / name, BOARD)
        expected = fixed + sum(features[k] * truth[k] for k in COEFFICIENTS)
        got = estimate_latency(models / name, BOARD, calibration=cal).total_cycles
        assert got == pytest.approx(expected, rel=1e-9)


def test_groups_and_lists_recover_multipliers_and_keep_default_ratios(models):
    cal0 = fit_calibration(
        _synthetic(models, ["hello_world_int8.tflite"], dict.fromkeys(COEFFICIENTS, 1.0)), "scale"
    )
    d = cal0.defaults
    truth = {k: d[k] * (0.4 if k in ("conv", "depthwise", "fully_connected") else 2.5) for k in d}
    truth["overhead"] = d["overhead"] * 1.3
    cal = fit_calibration(_synthetic(models, _names(models)[:8], truth), "groups")
    assert cal.multipliers == pytest.approx({"macs": 0.4, "bytes": 2.5, "overhead": 1.3}, rel=1e-9)
    cal = fit_calibration(_synthetic(models, _names(models)[:6], truth), ["conv", "bytes"])
    # Only conv and the byte kinds move; everything else keeps the default value exactly.
    assert cal.coefficients["conv"] != d["conv"]
    assert cal.coefficients["depthwise"] == d["depthwise"]
    assert cal.coefficients["overhead"] == d["overhead"]
    with pytest.raises(
        InputError, match=r"Coefficient conv is fitted twice \(in 'macs' and 'conv'\)"
    ):
        fit_calibration(_synthetic(models, _names(models)[:3], truth), ["macs", "conv"])
    with pytest.raises(InputError, match=r"Unknown coefficient 'convs' \(did you mean 'conv'\?\)"):
        fit_calibration(_synthetic(models, _names(models)[:3], truth), ["convs"])


def test_nnls_keeps_every_coefficient_non_negative(models):
    """Cycles below what the operators' overhead allows: least squares wants a negative overhead."""
    from scipy.optimize import lsq_linear

    names = _names(models)[:12]
    truth = {k: 0.0 for k in COEFFICIENTS}
    truth.update(conv=2.0, depthwise=3.0, overhead=-5000.0)  # impossible on a board
    ms = _synthetic(models, names, truth)
    ms = [m for m in ms if m.cycles > 0]
    cal = fit_calibration(ms, ["conv", "depthwise", "overhead"])
    assert all(v >= 0 for v in cal.multipliers.values())
    assert cal.multipliers["overhead"] == 0.0
    # The same bounded problem solved by another method (relative residuals, as documented).
    rows = [model_features(m.path, BOARD) for m in ms]
    y = np.array([m.cycles for m in ms])
    d = cal.defaults
    a = np.array([[f["conv"] * d["conv"], f["depthwise"] * d["depthwise"],
                   f["overhead"] * d["overhead"]] for f, _ in rows])  # fmt: skip
    rest = np.array([sum(f[k] * d[k] for k in COEFFICIENTS if k not in ("conv", "depthwise", "overhead"))
                     for f, _ in rows])  # fmt: skip
    ref = lsq_linear(a / y[:, None], (y - rest) / y, bounds=(0, np.inf), tol=1e-14)
    got = [cal.multipliers[n] for n in ("conv", "depthwise", "overhead")]
    assert got == pytest.approx(list(ref.x), rel=1e-6, abs=1e-9)
    unconstrained = np.linalg.lstsq(a / y[:, None], (y - rest) / y, rcond=None)[0]
    assert unconstrained[2] < 0  # the constraint is active: plain least squares goes negative


def test_leave_one_out_by_hand(models):
    """Scale fit: minimise sum((s d_i - m_i) / m_i)^2, so s = sum(r_i) / sum(r_i^2), r_i = d_i / m_i."""
    names = ["hello_world_int8.tflite", "micro_speech_quantized.tflite", "person_detect.tflite"]
    measured = [4813.0, 1705940.0, 11526407.0]
    d = [estimate_latency(models / n, BOARD).total_cycles for n in names]
    ms = [Measurement(n, str(models / n), BOARD, c) for n, c in zip(names, measured, strict=True)]
    cal = fit_calibration(ms, "scale")
    r = [di / mi for di, mi in zip(d, measured, strict=True)]
    s = sum(r) / sum(x * x for x in r)
    assert cal.multipliers["scale"] == pytest.approx(s, rel=1e-12)
    for i, row in enumerate(cal.measurements):
        others = [j for j in range(3) if j != i]
        s_i = sum(r[j] for j in others) / sum(r[j] ** 2 for j in others)
        assert row["fitted_cycles"] == pytest.approx(s * d[i], rel=1e-12)
        assert row["loo_cycles"] == pytest.approx(s_i * d[i], rel=1e-12)
        assert row["loo_ratio"] == pytest.approx(s_i * d[i] / measured[i], rel=1e-12)
    # hello_world: default 4,812 cycles (the default model is fitted to these three counts);
    # the other two ask for s = 0.99986, so 4,811 cycles.
    assert cal.measurements[0]["loo_cycles"] == pytest.approx(4811.4, rel=1e-4)
    # Three names from three measurements: an exact fit, and nothing left to leave out.
    exact = fit_calibration(ms, ["conv", "depthwise", "overhead"])
    assert [row["fitted_cycles"] for row in exact.measurements] == pytest.approx(measured, rel=1e-9)
    assert all(row["loo_cycles"] is None for row in exact.measurements)


def test_json_round_trip_and_constraints(models, tmp_path):
    ms = [Measurement(n, str(models / n), BOARD, c) for n, c in
          [("hello_world_int8.tflite", 4813), ("person_detect.tflite", 11526407),
           ("micro_speech_quantized.tflite", 1705940)]]  # fmt: skip
    cal = fit_calibration(ms, ["conv", "depthwise", "overhead"])
    again = LatencyCalibration.from_json(cal.to_json())
    assert again == cal and again.fitted == ("conv", "depthwise", "overhead")
    path = cal.save(tmp_path / "cal.json")
    assert LatencyCalibration.load(path) == cal
    assert (cal.board, cal.core, cal.kernels, cal.clock_mhz) == (
        BOARD,
        "Cortex-M33",
        "optimized",
        150.0,
    )
    c = Constraints(max_latency_ms=100.0, target="cortex-m-cmsis", latency_calibration=str(path))
    assert c.latency_calibration == cal and c.latency_device.name == BOARD
    # to_dict survives JSON unchanged (a resume compares them), and rebuilds the same constraints.
    assert json.loads(json.dumps(c.to_dict())) == c.to_dict()
    assert Constraints.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert (
        "latency_calibration" not in Constraints().to_dict()
    )  # earlier saved states compare equal
    other = fit_calibration(ms, "scale")
    assert Constraints(target="cortex-m-cmsis", latency_calibration=other).to_dict() != c.to_dict()
    with pytest.raises(ValueError, match=r"fitted on frdm-mcxn947 .* with optimized kernels.*"
                       r"Received: core='Cortex-M33', kernels='reference'"):  # fmt: skip
        Constraints(target="cortex-m", latency_calibration=cal)
    with pytest.raises(ValueError, match=r"Received: core='Cortex-M7', kernels='optimized'"):
        Constraints(device="stm32f746zg", target="cortex-m-cmsis", latency_calibration=cal)
    with pytest.raises(InputError, match=r"Latency calibration .*nope.json does not exist"):
        Constraints(latency_calibration=str(tmp_path / "nope.json"))
    _write(tmp_path / "bad.json", '{"board": "x"}')
    with pytest.raises(InputError, match=r"Not a tfnas latency calibration.*Received: no \["):
        LatencyCalibration.load(tmp_path / "bad.json")


def test_calibrated_constraints_change_feasibility(models):
    """person_detect: 76.8 ms by the default model; a board measured twice as slow on it, 153.7 ms."""
    slow = 2 * 11526407  # e.g. the same model run from flash with wait states
    ms = [Measurement(n, str(models / n), BOARD, c) for n, c in
          [("hello_world_int8.tflite", 4813), ("person_detect.tflite", slow),
           ("micro_speech_quantized.tflite", 1705940)]]  # fmt: skip
    cal = fit_calibration(ms, ["conv", "depthwise", "overhead"])
    plain = Constraints(max_latency_ms=100.0, device=BOARD, target="cortex-m-cmsis")
    calibrated = Constraints(max_latency_ms=100.0, device=BOARD, target="cortex-m-cmsis",
                             latency_calibration=cal)  # fmt: skip
    model = models / "person_detect.tflite"
    default_ms = estimate_latency(model, plain.latency_device).latency_ms
    cal_ms = estimate_latency(model, calibrated.latency_device, calibration=cal).latency_ms
    assert default_ms == pytest.approx(11526407 / 150e3, rel=1e-3)
    assert cal_ms == pytest.approx(slow / 150e3, rel=1e-9)
    assert plain.feasible({"latency_ms": default_ms})
    assert not calibrated.feasible({"latency_ms": cal_ms})


def test_screening_rejects_genomes_over_the_latency_bound():
    from tfnas.genome import MicroSpace
    from tfnas.memory import estimate_memory
    from tfnas.strategies.core import LATENCY_SLACK, screen

    space = MicroSpace((28, 28, 1), 10, max_blocks=4, max_channels=32)
    cal = _scaled_calibration(0.5)
    for seed in range(30):
        g = space.sample(seed)
        latency = estimate_genome_latency(g, BOARD, estimate=estimate_memory(g))
        tight = Constraints(max_latency_ms=latency / LATENCY_SLACK * 0.99, device=BOARD,
                            target="cortex-m-cmsis")  # fmt: skip
        loose = Constraints(max_latency_ms=latency / LATENCY_SLACK * 1.01, device=BOARD,
                            target="cortex-m-cmsis")  # fmt: skip
        checked = screen(g, tight)
        assert checked["estimate"]["latency_ms"] == pytest.approx(latency, rel=1e-12)
        assert "latency_ms" in checked["violations"]
        assert "latency_ms" not in screen(g, loose)["violations"]
        # A calibration that halves every coefficient halves the genome's latency: accepted.
        halved = Constraints(max_latency_ms=latency / LATENCY_SLACK * 0.99, device=BOARD,
                             target="cortex-m-cmsis", latency_calibration=cal)  # fmt: skip
        checked = screen(g, halved)
        assert checked["estimate"]["latency_ms"] == pytest.approx(latency / 2, rel=1e-12)
        assert "latency_ms" not in checked["violations"]
    assert "latency_ms" not in screen(space.sample(0), Constraints())["estimate"]


def _scaled_calibration(factor):
    from tfnas.objectives.latency import default_cycle_table

    table = default_cycle_table("Cortex-M33", "optimized")
    defaults = {k: table["optimized", k] for k in COEFFICIENTS if k != "overhead"}
    defaults["overhead"] = table["overhead"]
    return LatencyCalibration(board=BOARD, core="Cortex-M33", clock_mhz=150.0, kernels="optimized",
                              coefficients={k: v * factor for k, v in defaults.items()},
                              defaults=defaults, fitted=("scale",), multipliers={"scale": factor})  # fmt: skip


# ---------------------------------------------------------------- the CSV


def _csv_errors(tmp_path, models):
    m = "person_detect.tflite"
    (tmp_path / m).write_bytes((models / m).read_bytes())
    return [
        ("model,board\n", "missing column(s) cycles or ms. Expected a header with model, board and "
         "cycles or ms. Received: header ['model', 'board']"),
        ("model,cycles\n", "missing column(s) board."),
        ("model,board,cycle\n", "unknown column 'cycle' (did you mean 'cycles'?)"),
        ("model,board,cycles\n", "has a header but no measurements. Expected one row per measured "
         "model. Received: 0 rows"),
        (f"model,board,cycles\n{m},frdm-mcxn94,100\n", "line 2: unknown board 'frdm-mcxn94' (did you "
         "mean 'frdm-mcxn947'?)"),
        (f"model,board,cycles\n{m},{BOARD},fast\n", "line 2: cycles must be a positive number. "
         "Received: cycles='fast'"),
        (f"model,board,ms\n{m},{BOARD},-3\n", "line 2: ms must be a positive number. Received: ms='-3'"),
        (f"model,board,cycles,ms\n{m},{BOARD},100,2\n", "line 2: give exactly one of cycles or ms. "
         "Received: cycles='100', ms='2'"),
        (f"model,board,cycles\nmissing.tflite,{BOARD},100\n", "line 2: model file "),
        (f"model,board,cycles\n{m},{BOARD},100\n{m},stm32f446re,100\n", "one calibration is for one "
         "board and kernel family. Expected one board in every row; split the file. Received: boards "
         "['frdm-mcxn947', 'stm32f446re']"),
        (f"model,board,cycles,kernels\n{m},{BOARD},100,cmsis\n", "line 2: kernels must be one of "
         "['optimized', 'reference']. Received: kernels='cmsis'"),
    ]  # fmt: skip


def test_csv_errors_say_what_was_wrong(tmp_path, models):
    for i, (text, message) in enumerate(_csv_errors(tmp_path, models)):
        path = _write(tmp_path / f"m{i}.csv", text)
        with pytest.raises(InputError, match=re.escape(message)):
            read_measurements(path)
    with pytest.raises(InputError, match=r"Measurements file .*none.csv does not exist"):
        read_measurements(tmp_path / "none.csv")


def test_csv_paths_ms_and_too_few_rows(tmp_path, models):
    sub = tmp_path / "runs"
    sub.mkdir()
    for m in ("person_detect.tflite", "hello_world_int8.tflite"):
        (tmp_path / m).write_bytes((models / m).read_bytes())
    path = _write(sub / "m.csv", f"board,ms,model\n{BOARD},76.84,../person_detect.tflite\n"
                  f"{BOARD},0.032,../hello_world_int8.tflite\n")  # fmt: skip
    rows = read_measurements(path)
    assert [r.cycles for r in rows] == pytest.approx([76.84 * 150e3, 0.032 * 150e3])
    assert rows[0].model == "../person_detect.tflite" and rows[0].line == 2
    with pytest.raises(InputError) as e:
        calibrate_csv(path)
    assert (
        "2 measurement(s) cannot determine the 7 coefficients ['conv', 'depthwise', "
        "'fully_connected', 'memory', 'pooling', 'softmax', 'overhead']"
    ) in str(e.value)
    assert "coefficients='groups' (macs, bytes, overhead) or 'scale' (1)" in str(e.value)
    cal = calibrate_csv(path, "scale")  # one coefficient: fine, with a leave-one-out error each
    assert all(r["loo_ratio"] is not None for r in cal.measurements)
    # Proportional mixes: the same model twice cannot separate conv from depthwise.
    same = _write(sub / "same.csv", f"model,board,cycles\n../person_detect.tflite,{BOARD},1e7\n"
                  f"../person_detect.tflite,{BOARD},1.1e7\n")  # fmt: skip
    with pytest.raises(
        InputError, match=r"determine only 1 of the 2 coefficients \['conv', 'depthwise'\]"
    ):
        calibrate_csv(same, ["conv", "depthwise"])


# ---------------------------------------------------------------- the CLI


def _eab_csv(tmp_path, models):
    lines = ["model,board,cycles"]
    for name, cycles in [("hello_world_int8", 4813), ("person_detect", 11526407),
                         ("micro_speech_quantized", 1705940)]:  # fmt: skip
        lines.append(f"{models / name}.tflite,{BOARD},{cycles}")
    return _write(tmp_path / "eab.csv", "\n".join(lines) + "\n")


def test_cli_calibrate_and_estimate(tmp_path, models, capsys):
    from tfnas.cli import main

    csv_path = _eab_csv(tmp_path, models)
    out = tmp_path / "cal.json"
    assert main(["latency", "calibrate", str(csv_path), "--coefficients", "conv,depthwise,overhead",
                 "--out", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "fitted conv, depthwise, overhead" in text and f"wrote {out}" in text
    assert "not determined" in text  # three names from three measurements: no leave-one-out
    cal = LatencyCalibration.load(out)
    assert main(["latency", "estimate", str(models / "person_detect.tflite"), "--calibration",
                 str(out), "--json"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["total_cycles"] == pytest.approx(11526407, rel=1e-9) and data["device"] == BOARD
    assert cal.measurements[1]["fitted_cycles"] == pytest.approx(11526407, rel=1e-9)
    # Default output name, scale fit with a leave-one-out column.
    assert main(["latency", "calibrate", str(csv_path), "--coefficients", "scale"]) == 0
    assert (tmp_path / "eab.calibration.json").is_file()
    assert "1.000" in capsys.readouterr().out  # hello_world predicted by the other two (0.9997)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["latency", "calibrate", "none.csv"], "Measurements file none.csv does not exist"),
        (["latency", "calibrate", "EAB", "--coefficients", "sclae"], "(did you mean 'scale'?)"),
        (["latency", "calibrate", "EAB"], "3 measurement(s) cannot determine the 7 coefficients"),
        (["latency", "estimate", "x.tflite", "--device", "uno"], "--device must be one of"),
        (["latency", "estimate", "x.tflite", "--calibration", "no.json"], "no.json does not exist"),
        (["latency", "host", "x.tflite", "--runs", "0"], "--runs must be an integer >= 1"),
        (["latency", "frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_cli_errors_are_one_line_exit_2(tmp_path, models, capsys, argv, message):
    from tfnas.cli import main

    argv = [str(_eab_csv(tmp_path, models)) if a == "EAB" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_host_time_is_labelled_and_tensorflow_free(models):
    code = (
        "import sys; from tfnas.cli import main; "
        f"rc = main(['latency', 'host', {str(models / 'hello_world_int8.tflite')!r}, '--runs', '5']); "
        "assert rc == 0 and 'tensorflow' not in sys.modules, rc"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "host time (LiteRT on this machine, not a board) median" in out.stdout
    code = (
        "import sys, tfnas.objectives.calibration, tfnas.strategies.core; "
        "assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_search_settings_check_the_calibration(tmp_path, models):
    from tfnas.search import SearchConfig, _constraints, check_config

    out = tmp_path / "cal.json"
    _scaled_calibration(0.5).save(out)
    config = SearchConfig(device=BOARD, max_latency_ms=50.0, latency_calibration=str(out))
    check_config(config)
    c = _constraints(config)
    assert c.max_latency_ms == 50.0 and c.latency_calibration.multipliers == {"scale": 0.5}
    assert c.max_arena_bytes == int(512 * 1024 * 0.75)  # the board's budget is kept
    with pytest.raises(InputError, match=r"max_latency_ms must be a positive number"):
        check_config(SearchConfig(max_latency_ms=0.0))
    with pytest.raises(InputError, match=r"Latency calibration .*missing.json does not exist"):
        check_config(SearchConfig(latency_calibration=str(tmp_path / "missing.json")))
    with pytest.raises(InputError, match=r"Received: core='Cortex-M33', kernels='reference'"):
        check_config(SearchConfig(target="cortex-m", latency_calibration=str(out)))
