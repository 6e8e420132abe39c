"""The bad-input battery: hundreds of wrong flags, configs, files, arrays and callbacks.

Every case must end in one clear line (CLI: exit code 2, ``tfnas search: error: ...``
on stderr, no traceback, nothing written) or an :class:`~tfnas.errors.InputError`
with the expected message (API), before any training. ``BATTERY`` counts the cases;
docs/benchmarks.md quotes it.
"""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.test_tuner import CLASSES, SHAPE, space, tiny_data, tiny_npz
from tfnas.cli import main
from tfnas.errors import InputError
from tfnas.genome import Genome
from tfnas.validation import check_arrays

# ----------------------------------------------------------------- CLI flags

INT_FLAGS = {  # flag: the smallest valid value
    "--max-trials": 1, "--epochs": 1, "--batch-size": 1, "--max-arena": 1, "--max-flash": 1,
    "--max-weights": 1, "--max-macs": 1, "--population": 1, "--sample": 1, "--proxy-samples": 1,
    "--proxy-pool": 1, "--final-epochs": 1, "--final-top": 1, "--min-epochs": 1, "--seed": 0,
}  # fmt: skip
FLAG_CASES = []
for flag, low in INT_FLAGS.items():
    key = flag[2:].replace("-", "_")
    FLAG_CASES += [
        ([flag, str(low - 1)], f"{key} must be an integer >= {low}. Received: {key}={low - 1}"),
        ([flag, "-7"], f"{key} must be an integer >= {low}. Received: {key}=-7"),
        ([flag, "three"], f"argument {flag}: invalid int value: 'three'"),
        ([flag, "1.5"], f"argument {flag}: invalid int value: '1.5'"),
    ]
for flag in ("--space", "--strategy", "--arena", "--target", "--quantization"):
    FLAG_CASES.append(([flag, "bogus"], f"argument {flag}: invalid choice: 'bogus'"))
FLAG_CASES += [
    (["--device", "stm32f446"], "(did you mean 'stm32f446re'?)"),
    (["--device", "arduino-nano"], "device must be one of"),
    (["--device", "Arduino-Nano-33-BLE-Sense"], "(did you mean 'arduino-nano-33-ble-sense'?)"),
    (["--device", ""], "device must be one of"),
    (["--device", "stm32f446re", "--headroom", "1.5"], "headroom must be a fraction in [0, 1)"),
    (["--device", "stm32f446re", "--headroom", "-0.1"], "Received: headroom=-0.1"),
    (["--device", "stm32f446re", "--headroom", "-5"], "Received: headroom=-5"),
    (["--device", "stm32f446re", "--headroom", "abc"], "argument --headroom: expected a fraction"),
    (["--headroom", "2.0"], "Received: headroom=2.0"),
    (["--eta", "1", "--min-epochs", "1"], "eta must be an integer >= 2. Received: eta=1"),
    (["--min-epochs", "6", "--epochs", "6"], "min_epochs must be below epochs"),
    (["--min-data", "0.2"], "min_data is a successive-halving setting and needs min_epochs"),
    (["--min-epochs", "1", "--min-data", "0"], "min_data must be a fraction of the training set in (0, 1]. Received: min_data=0.0"),
    (["--min-epochs", "1", "--min-data", "1.5"], "Received: min_data=1.5"),
    (["--min-epochs", "1", "--min-data", "nan"], "Received: min_data=nan"),
    (["--population", "2", "--sample", "3"], "sample must not exceed population"),
    (["--max-trials"], "argument --max-trials: expected one argument"),
    (["--frobnicate", "3"], "unrecognized arguments: --frobnicate 3"),
    (["--config", "/nonexistent/c.yaml"], "Config file /nonexistent/c.yaml does not exist"),
    (["--data", "/nonexistent/d.npz"], "Data file /nonexistent/d.npz does not exist"),
    (["--max-latency-ms", "0"], "max_latency_ms must be a positive number of milliseconds. Received: max_latency_ms=0.0"),
    (["--max-latency-ms", "abc"], "argument --max-latency-ms: invalid float value: 'abc'"),
    (["--latency-calibration", "/nonexistent/c.json"], "Latency calibration /nonexistent/c.json does not exist"),
    (["--strategy", "laws", "--laws", "/nonexistent/l.json"], "Laws file /nonexistent/l.json does not exist"),
    (["--laws", "/nonexistent/l.json"], "Unknown setting 'laws' in strategy_options (for the evolution strategy)"),
]  # fmt: skip


def _cli(argv, capsys) -> tuple[int, list[str]]:
    code = main(["search", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


@pytest.mark.parametrize("argv,expected", FLAG_CASES)
def test_bad_flag(tmp_path, capsys, argv, expected):
    out = tmp_path / "o"
    code, err = _cli([*argv, "--out", str(out)], capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("tfnas search: error: "), err
    assert expected in err[0]
    assert not out.exists()


# -------------------------------------------------------------- config files

SETTING_TYPES = {  # setting: (a wrong value, text expected in the message)
    "max_trials": [("three", "max_trials must be an integer >= 1. Received: max_trials='three'"),
                   (0, "Received: max_trials=0"), (2.5, "Received: max_trials=2.5"),
                   (True, "Received: max_trials=True"), ([3], "Received: max_trials=[3]")],
    "epochs": [(-2, "Received: epochs=-2"), ("6", "Received: epochs='6'"), (None, "epochs=None")],
    "batch_size": [(-4, "Received: batch_size=-4"), (0, "batch_size=0"), ("32", "batch_size='32'")],
    "max_arena": [(0, "max_arena=0"), ("24k", "max_arena='24k'"), (-1, "max_arena=-1")],
    "max_flash": [(0, "max_flash=0"), (1e9 + 0.5, "max_flash=")],
    "max_weights": [(-100, "max_weights=-100")],
    "max_macs": [("many", "max_macs='many'"), (0, "max_macs=0")],
    "seed": [(-1, "seed must be an integer >= 0. Received: seed=-1"), ("zero", "seed='zero'")],
    "headroom": [(1.5, "headroom=1.5"), ("25%", "headroom='25%'"), (-0.5, "headroom=-0.5")],
    "space": [("mikro", "(did you mean 'micro'?)"), (3, "space must be one of")],
    "strategy": [("evolve", "(did you mean 'evolution'?)"), ("grid", "strategy must be one of")],
    "arena": [("peak", "arena must be one of ['planned', 'total', 'min']")],
    "target": [("cortex-m7", "(did you mean 'cortex-m'?)"), ("x86", "target must be one of")],
    "quantization": [("int8", "quantization must be one of ['ptq', 'qat']")],
    "device": [("stm32", "device must be one of"), ("esp32s3", "(did you mean 'esp32-s3'?)")],
    "population": [(0, "population=0")],
    "sample": [(-2, "sample=-2")],
    "proxy_samples": [(0, "proxy_samples=0")],
    "proxy_pool": [(0, "proxy_pool=0"), ("5", "proxy_pool='5'")],
    "eta": [(1, "eta=1")],
    "final_epochs": [(0, "final_epochs=0")],
    "final_top": [(0, "final_top=0")],
    "min_epochs": [(0, "min_epochs=0")],
    "min_data": [("0.5", "min_data='0.5'"), (True, "min_data=True")],
    "data": [(12, "data must be a path"), ("/nonexistent.npz", "does not exist")],
    "space_options": [([1], "space_options must be a mapping"), ({"max_blockz": 3}, "(did you mean 'max_blocks'?)"),
                      ({"channel": [8]}, "Unknown setting 'channel' in space_options")],
    "strategy_options": [("fast", "strategy_options must be a mapping"),
                         ({"populaton_size": 4}, "Unknown setting 'populaton_size' in strategy_options")],
}  # fmt: skip
CONFIG_CASES = [
    (key, value, expected) for key, cases in SETTING_TYPES.items() for value, expected in cases
]
CONFIG_CASES += [
    ("space_options", {"max_channels": 8, "cells": 2}, "Unknown setting 'cells' in space_options (for the micro space)"),
    ("strategy_options", {"pool": 5}, "Unknown setting 'pool' in strategy_options (for the evolution strategy)"),
    ("strategy_options", {"alpha": 0.5}, "Unknown setting 'alpha' in strategy_options"),
    ("strategy_options", {"proxy_weight": {"macs": 1}}, "(did you mean 'proxy_weights'?)"),
    ("max_trails", 3, "(did you mean 'max_trials'?)"),
    ("epoch", 3, "(did you mean 'epochs'?)"),
    ("batchsize", 3, "(did you mean 'batch_size'?)"),
    ("max-arena-bytes", 3, "Unknown setting 'max_arena_bytes'"),
    ("lr", 0.01, "Unknown setting 'lr'"),
]  # fmt: skip
# Strategy-specific options belong to their strategy only.
for strategy, option in (("random", "population_size"), ("micronas", "alpha"), ("msnas", "pool")):
    CONFIG_CASES.append(({"strategy": strategy}, {option: 1}, f"Unknown setting '{option}' in strategy_options (for the {strategy} strategy)"))  # fmt: skip


@pytest.mark.parametrize("key,value,expected", CONFIG_CASES)
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_bad_config_setting(tmp_path, capsys, key, value, expected, fmt):
    import yaml

    settings = {**key, "strategy_options": value} if isinstance(key, dict) else {key: value}
    path = tmp_path / f"c.{fmt}"
    path.write_text(yaml.safe_dump(settings) if fmt == "yaml" else json.dumps(settings))
    out = tmp_path / "o"
    code, err = _cli(["--config", str(path), "--out", str(out)], capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("tfnas search: error: "), err
    assert expected in err[0]
    assert not out.exists()


MALFORMED = [
    ("c.yaml", "max_trials: [\n", "is not valid YAML at line 2"),
    ("c.yaml", "max_trials: 3\n  epochs: 2\n", "is not valid YAML"),
    ("c.yaml", "- 3\n- 4\n", "a config file must hold a mapping of settings. Received: list"),
    ("c.yaml", "just text\n", "Received: str"),
    ("c.yaml", "\tmax_trials: 3\n", "is not valid YAML"),
    ("c.json", "{max_trials: 3}", "is not valid JSON at line 1"),
    ("c.json", '{"max_trials": 3,}', "is not valid JSON"),
    ("c.json", "[1, 2]", "Received: list"),
    ("c.json", "", "is not valid JSON"),
    ("c.json", "3", "Received: int"),
]  # fmt: skip


@pytest.mark.parametrize("name,text,expected", MALFORMED)
def test_malformed_config_file(tmp_path, capsys, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    code, err = _cli(["--config", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "o").exists()


def test_binary_config_file(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_bytes(b"\xff\xfe\x00\x81binary")
    code, err = _cli(["--config", str(path)], capsys)
    assert code == 2 and len(err) == 1 and "is not a text file" in err[0]


# ------------------------------------------------------------------ data files


def _npz(path, **arrays):
    x, y = tiny_data(24, 0)
    xt, yt = tiny_data(12, 1)
    base = {"x_train": x[..., 0], "y_train": y, "x_test": xt[..., 0], "y_test": yt}
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})


def _nan(n=24):
    x = tiny_data(n, 0)[0][..., 0].copy()
    x[3, 2, 2] = np.nan
    return x


DATA_CASES = [
    ({"x_train": _nan()}, "x_train contains NaN values (1 in 1 samples, the first at sample 3)"),
    ({"x_train": np.full((24, 8, 8), np.inf)}, "x_train contains inf values"),
    ({"x_test": _nan(12)}, "x_test contains NaN values"),
    ({"y_train": np.arange(23) % 3}, "x_train and y_train differ in length. Expected one label per sample (24)"),
    ({"y_test": np.zeros(13, int)}, "x_test and y_test differ in length"),
    ({"y_train": np.full(24, -1)}, "y_train holds labels outside [0, n_classes - 1]"),
    ({"y_train": np.arange(24) % 3 + 0.5}, "y_train must hold integer class labels. Received: non-integer values such as 0.5"),
    ({"y_train": np.full(24, np.nan)}, "y_train must hold integer class labels"),
    ({"y_train": np.zeros(24, int)}, "y_train holds 1 distinct class(es). Expected at least 2"),
    ({"y_train": np.array(["a", "b", "c"] * 8)}, "y_train must hold integer class labels. Received: dtype=<U1"),
    ({"y_train": np.ones((24, 3)) / 3}, "y_train has shape (24, 3) but its rows are not one-hot"),
    ({"y_train": np.zeros((24, 2, 2))}, "y_train must be a vector of integer labels"),
    ({"x_train": np.zeros((0, 8, 8)), "y_train": np.zeros(0, int)}, "x_train must hold at least one sample"),
    ({"x_test": np.zeros((0, 8, 8)), "y_test": np.zeros(0, int)}, "x_test must hold at least one sample"),
    ({"x_train": np.zeros(24)}, "x_train must hold at least one sample of at least one value"),
    ({"x_train": np.array([["a"] * 4] * 24)}, "x_train must be a numeric array of samples"),
    ({"x_test": np.zeros((12, 6, 6))}, "x_test does not match the task's input shape. Expected samples of shape (8, 8, 1)"),
    ({"x_test": np.zeros((12, 8, 8, 3))}, "Received: x_test.shape=(12, 8, 8, 3)"),
    ({"x_train": None}, "lacks arrays. Expected x_train, y_train, x_test, y_test"),
    ({"y_test": None}, "(missing ['y_test'])"),
    ({"x_test": np.zeros((12, 8, 8)) + 1j}, "x_test must be a numeric array of real-valued samples"),
    ({"layout": "signal"}, "layout must be 'images' or 'signals' (a string saved with np.savez). Received: layout='signal'"),
    ({"layout": np.array(["signals", "images"])}, "Received: layout=['signals', 'images']"),
]  # fmt: skip


@pytest.mark.parametrize("arrays,expected", DATA_CASES)
def test_bad_npz(tmp_path, capsys, arrays, expected):
    path = tmp_path / "d.npz"
    _npz(path, **arrays)
    code, err = _cli(["--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], err
    assert str(path) in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content,expected", [
    (b"hello, not numpy\n", "is not an .npz archive of arrays"),
    (b"", "is not an .npz archive"),
    (b"PK\x03\x04 truncated zip", "is not an .npz archive"),
    ("npy", "holds a single array, not an .npz archive"),
    ("empty", "lacks arrays"),
    ("pickled", "an array cannot be read"),
])  # fmt: skip
def test_not_an_npz(tmp_path, capsys, content, expected):
    path = tmp_path / "d.npz"
    if content == "npy":
        with open(path, "wb") as f:
            np.save(f, np.zeros(3))
    elif content == "empty":
        np.savez(path)
    elif content == "pickled":
        _npz(path, y_train=np.array([{"a": 1}] * 24, dtype=object))
    else:
        path.write_bytes(content)
    code, err = _cli(["--data", str(path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and len(err) == 1 and expected in err[0], err


def test_cli_errors_come_before_tensorflow(tmp_path):
    # Bad settings, devices and data are reported without importing TensorFlow (~0.5 s, not ~15 s).
    path = tmp_path / "d.npz"
    _npz(path, x_train=_nan())
    code = (
        "import sys; from tfnas.cli import main\n"
        "for argv in (['--device', 'stm32'], ['--max-trials', '0'], ['--data', sys.argv[1]],\n"
        "             ['--headroom', '1.5', '--device', 'stm32f446re']):\n"
        "    assert main(['search', *argv, '--out', sys.argv[2]]) == 2\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "o")],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 4


# ----------------------------------------------------------- arrays (API)

X, Y = tiny_data(24, 0)


def _onehot(y, k=CLASSES):
    return np.eye(k)[y]


ARRAY_CASES = [
    (X[..., 0], Y, "Add the channel axis: x[..., None]"),
    (X[0], Y[:1], "A single sample needs a batch axis: x[None]"),
    (X[:, :4], Y, "Expected samples of shape (8, 8, 1)"),
    (np.repeat(X, 3, axis=-1), Y, "Received: x.shape=(24, 8, 8, 3)"),
    (X[:0], Y[:0], "x is empty"),
    (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), Y, "x contains NaN values (1 in 1 samples, the first at sample 0)"),
    (X * np.inf, Y, "x contains"),
    (X.astype(str), Y, "x must hold numbers. Received: dtype=<U"),
    (X.astype(object), Y, "x must hold numbers. Received: dtype=object"),
    (X, Y[:-1], "x and y differ in length. Expected one label per sample (24). Received: 23 labels"),
    (X, np.r_[Y, 0], "Received: 25 labels"),
    (X, Y + CLASSES, f"y holds labels outside [0, {CLASSES - 1}]"),
    (X, -Y - 1, "Received: labels from -3 to -1"),
    (X, Y + 0.25, f"non-integer values such as {Y[0] + 0.25}"),
    (X, np.zeros_like(Y), "Expected at least 2 to learn a classifier"),
    (X, _onehot(Y, 5), f"y is one-hot with 5 columns. Expected {CLASSES} columns"),
    (X, _onehot(Y) * 0.9, "its rows are not one-hot"),
    (X, Y.astype(str), "y must hold integer class labels"),
    (X, Y[:, None, None], "y must be a vector of integer labels"),
    (X, None, "y is missing"),
    (None, Y, "x is missing"),
    ([[1, 2], [3]], Y, "x must be an array"),
]  # fmt: skip


@pytest.mark.parametrize("x,y,expected", ARRAY_CASES)
def test_bad_arrays(x, y, expected):
    with pytest.raises(InputError, match=_literal(expected)):
        check_arrays(x, y, input_shape=SHAPE, num_classes=CLASSES)


def _literal(text: str) -> str:
    import re

    return re.escape(text)


def test_good_labels_are_normalised():
    x, y = check_arrays(X, _onehot(Y), input_shape=SHAPE, num_classes=CLASSES)
    assert y.dtype == np.int64 and (y == Y).all()  # one-hot rows become integer labels
    assert (check_arrays(X, Y[:, None].astype(float), input_shape=SHAPE)[1] == Y).all()
    assert (check_arrays(X.tolist(), Y.tolist(), input_shape=SHAPE)[0] == X).all()


def test_npz_layout_says_whether_3d_arrays_are_images_or_signals(tmp_path):
    from tfnas.data import load_npz

    windows = np.random.default_rng(0).normal(size=(24, 64, 3))
    _npz(tmp_path / "images.npz", x_train=windows, x_test=windows[:12])
    assert load_npz(tmp_path / "images.npz").input_shape == (64, 3, 1)  # grey images by default
    _npz(tmp_path / "s.npz", x_train=windows, x_test=windows[:12], layout="signals")
    data = load_npz(tmp_path / "s.npz")
    assert data.input_shape == (64, 3) and np.array_equal(data.x_train, windows.astype(np.float32))
    _npz(tmp_path / "i.npz", layout="images")
    assert load_npz(tmp_path / "i.npz").input_shape == (8, 8, 1)


# ----------------------------------------------------------- tuner (API)


@pytest.fixture(scope="module")
def tuner(tmp_path_factory):
    from tfnas.objectives import Constraints
    from tfnas.strategies import RandomSearchOracle
    from tfnas.tuner import NASTuner

    oracle = RandomSearchOracle(space(), Constraints(max_arena_bytes=20_000), max_trials=1, seed=0)
    return NASTuner(oracle, directory=tmp_path_factory.mktemp("t"), project_name="p", verbose=0)


def _keras3_callback():
    import keras

    return keras.callbacks.EarlyStopping()


def _tf_dataset():
    from tfnas._tf import tf

    return tf.data.Dataset.from_tensor_slices((X, Y))


VAL = tiny_data(12, 1)
SEARCH_CASES = [
    ({"x": X[..., 0]}, "Add the channel axis"),
    ({"x": _nan()[..., None]}, "x contains NaN values"),
    ({"y": Y[:5]}, "x and y differ in length"),
    ({"y": _onehot(Y, 4)}, "y is one-hot with 4 columns"),
    ({"y": Y + 3}, "y holds labels outside [0, 2]"),
    ({"x": X[:0], "y": Y[:0]}, "x is empty"),
    ({"validation_data": (VAL[0][..., 0], VAL[1])}, "validation x does not match the task's input shape"),
    ({"validation_data": (VAL[0], VAL[1][:3])}, "validation x and validation y differ in length"),
    ({"validation_data": (VAL[0], VAL[1] + 7)}, "validation y holds labels outside [0, 2]"),
    ({"validation_data": (VAL[0],)}, "validation_data must be a pair (x_val, y_val). Received: tuple of length 1"),
    ({"validation_data": VAL[0]}, "validation_data must be a pair"),
    ({"validation_data": (VAL[0][:0], VAL[1][:0])}, "validation x is empty"),
    ({"epochs": 0}, "epochs must be an integer >= 1. Received: epochs=0"),
    ({"epochs": -2}, "Received: epochs=-2"),
    ({"epochs": 2.5}, "Received: epochs=2.5"),
    ({"batch_size": -4}, "batch_size must be an integer >= 1. Received: batch_size=-4"),
    ({"batch_size": "32"}, "Received: batch_size='32'"),
    ({"callbacks": [_keras3_callback]}, "It is a Keras 3 callback: tfnas trains tf_keras (Keras 2) models, so use tf_keras.callbacks.EarlyStopping"),
    ({"callbacks": [lambda: "not a callback"]}, "callbacks[0] is not a tf_keras callback. Received: builtins.str"),
    ({"validation_split": 0.2}, "Unsupported search arguments ['validation_split']"),
    ({"x": _tf_dataset}, "x must be a NumPy array"),
]  # fmt: skip


@pytest.mark.parametrize("change,expected", SEARCH_CASES)
def test_bad_search_arguments(tuner, change, expected):
    kwargs = {"x": X, "y": Y, "validation_data": VAL, "epochs": 1, "batch_size": 16, **change}
    if callable(kwargs["x"]):
        kwargs["x"] = kwargs["x"]()
    if kwargs.get("callbacks"):
        kwargs["callbacks"] = [make() for make in kwargs["callbacks"]]
    with pytest.raises(InputError, match=_literal(expected)):
        tuner.search(**kwargs)
    assert not tuner.oracle.trials  # nothing trained, nothing recorded


# ------------------------------------------------------ oracle and tuner (API)

ORACLE_CASES = [
    ({"max_trials": 0}, "max_trials must be an integer >= 1. Received: max_trials=0"),
    ({"max_trials": None}, "max_trials=None"),
    ({"max_trials": 2.5}, "max_trials=2.5"),
    ({"seed": -1}, "seed must be an integer >= 0. Received: seed=-1"),
    ({"seed": "0"}, "seed='0'"),
    ({"max_rejections": 0}, "max_rejections=0"),
    ({"max_consecutive_failed_trials": 0}, "max_consecutive_failed_trials=0"),
    ({"proxy_pool": 0}, "proxy_pool must be an integer >= 1"),
    ({"lease_seconds": 0}, "lease_seconds must be a positive number"),
    ({"halving": {"min_epochs": 2, "max_epochs": 2}}, "halving needs max_epochs > min_epochs"),
    ({"halving": {"rungs": 3}}, "Unknown halving settings ['rungs']"),
    ({"halving": {"max_epochs": 4, "min_data": 0}}, "halving['min_data'] must be a fraction of the training set in (0, 1]"),
    ({"halving": {"max_epochs": 4, "min_data": 2}}, "Received: min_data=2"),
    ({"proxy_weights": {"flops": 1}}, "Unknown hybrid weights ['flops']"),
    ({"space": "micro"}, "space must be a tfnas SearchSpace. Received: str"),
    ({"constraints": {"max_arena_bytes": 1000}}, "constraints must be a tfnas Constraints. Received: dict"),
]  # fmt: skip


@pytest.mark.parametrize("change,expected", ORACLE_CASES)
def test_bad_oracle_settings(change, expected):
    from tfnas.strategies import RandomSearchOracle

    kwargs = {"space": space(), "max_trials": 2, **change}
    with pytest.raises(ValueError, match=_literal(expected)):
        RandomSearchOracle(**kwargs)


TUNER_CASES = [
    ({"learning_rate": 0}, "learning_rate must be positive"),
    ({"learning_rate": "fast"}, "learning_rate must be a number"),
    ({"calibration_samples": 0}, "calibration_samples must be an integer >= 1"),
    ({"prune_sparsity": 1.0}, "prune_sparsity must be a number in [0.0, 1.0)"),
    ({"quantization": "int4"}, "quantization must be 'ptq' or 'qat'"),
    ({"augment": "yes"}, "augment must be 'auto', True or False"),
]  # fmt: skip


@pytest.mark.parametrize("change,expected", TUNER_CASES)
def test_bad_tuner_settings(tmp_path, change, expected):
    from tfnas.strategies import RandomSearchOracle
    from tfnas.tuner import NASTuner

    oracle = RandomSearchOracle(space(), max_trials=1)
    with pytest.raises(ValueError, match=_literal(expected)):
        NASTuner(oracle, directory=tmp_path, project_name="p", **change)
    assert not (tmp_path / "p").exists()  # nothing written


# -------------------------------------------------------------- genome JSON

GENOME_CASES = [
    ("", "Malformed genome JSON. Expected a JSON object"), ("{", "Malformed genome JSON"),
    ("[]", "A genome must be a JSON object. Received: list"), ("null", "Received: NoneType"),
    ('"text"', "Received: str"), ('{"stages": 3}', "Expected schema_version=1"),
    ('{"schema_version": 1, "stages": 3}', "Malformed genome: wrong value type"),
    ('{"schema_version": 1, "stages": []}', "missing key 'input_shape'"),
    ('{"schema_version": 99}', "Received: schema_version=99"),
]  # fmt: skip


@pytest.mark.parametrize("text,expected", GENOME_CASES)
def test_bad_genome_json(text, expected):
    from tfnas.errors import SearchSpaceError

    with pytest.raises(SearchSpaceError, match=expected):
        Genome.from_json(text)


BATTERY = (
    len(FLAG_CASES) + 2 * len(CONFIG_CASES) + len(MALFORMED) + 1 + len(DATA_CASES) + 6
    + 1 + len(ARRAY_CASES) + len(SEARCH_CASES) + len(GENOME_CASES) + len(ORACLE_CASES) + len(TUNER_CASES)
)  # fmt: skip


def test_battery_has_at_least_200_cases():
    assert BATTERY >= 200, BATTERY


# ------------------------------------------------------ nothing done is lost


def _digest(folder) -> dict:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_bad_reruns_of_a_finished_search_change_no_file(tmp_path, capsys):
    data = tiny_npz(tmp_path / "d.npz")
    out = tmp_path / "o"
    argv = ["--data", str(data), "--max-trials", "1", "--epochs", "1", "--strategy", "random",
            "--out", str(out)]  # fmt: skip
    assert main(["search", *argv]) == 0
    capsys.readouterr()
    before = _digest(out)
    for extra, expected in [
        (["--max-trials", "-3"], "max_trials must be an integer >= 1"),
        (["--device", "stm32"], "device must be one of"),
        (["--space", "msnas"], "The search being resumed used another search space"),
        (["--strategy", "evolution"], "The search being resumed used another strategy"),
        (["--space-options"], "unrecognized arguments"),
    ]:
        assert main(["search", *argv, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
        assert _digest(out) == before, extra  # a refused resume changes no file


def test_strategy_options_table_matches_the_oracles():
    import inspect

    from tfnas.strategies import COMMON_OPTIONS, STRATEGY_OPTIONS, NASOracle, get_strategy

    def own(cls):
        return {
            n
            for n, p in inspect.signature(cls.__init__).parameters.items()
            if p.kind is p.KEYWORD_ONLY
        }

    assert set(COMMON_OPTIONS) | {"objective", "max_trials", "seed"} == own(NASOracle)
    for name, options in STRATEGY_OPTIONS.items():
        cls = get_strategy(name)
        assert set(options) == (own(cls) if cls.__init__ is not NASOracle.__init__ else set()), name
