"""Every TFLM builtin is modelled; what is not modelled says so and stays an upper bound."""

from __future__ import annotations

import dataclasses

import pytest

from tests import real_tflm
from tfnas.export.c_array import to_c_source
from tfnas.inspection import format_table, inspect
from tfnas.memory import kernels
from tfnas.memory.kernels import RULES, TFLM_BUILTIN_OPS
from tfnas.memory.targets import TARGETS


def test_every_builtin_has_a_rule():
    assert TFLM_BUILTIN_OPS <= set(RULES), sorted(TFLM_BUILTIN_OPS - set(RULES))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_builtin_has_compiled_init_and_params_sizes(target):
    tgt = TARGETS[target]
    missing_init = sorted(op for op in TFLM_BUILTIN_OPS if tgt.op_data(op) is None)
    missing_params = sorted(op for op in TFLM_BUILTIN_OPS if op not in tgt.params)
    assert not missing_init and not missing_params, (missing_init, missing_params)


def test_known_opdata_sizes_come_out_of_the_compiler():
    # Sizes measured on real builds before the table was compiled (docs/memory.md history).
    host, m, cmsis = TARGETS["host"], TARGETS["cortex-m"], TARGETS["cortex-m-cmsis"]
    assert host.op_data("CONV_2D") == (72,) and m.op_data("CONV_2D") == (56,)
    assert host.op_data("FULLY_CONNECTED") == (64,) and m.op_data("FULLY_CONNECTED") == (48,)
    assert host.op_data("SOFTMAX") == (80,) and cmsis.op_data("SOFTMAX") == (64,)
    assert host.op_data("UNIDIRECTIONAL_SEQUENCE_LSTM") == (688,)
    assert cmsis.op_data("UNIDIRECTIONAL_SEQUENCE_LSTM") == (912,)
    assert host.op_data("RESHAPE") == ()  # no Init at all


def test_runtime_struct_table_matches_the_compiler():
    from tfnas.memory.targets import _TABLES

    for name, tgt in TARGETS.items():
        compiled = _TABLES["targets"][name]["runtime"]
        for struct, (size, align) in tgt.sizes.items():
            if struct in compiled:
                assert tuple(compiled[struct]) == (size, align), (name, struct)


@pytest.fixture
def hello_world(shared_dir):
    return shared_dir / "tflm" / "models" / "hello_world_int8.tflite"


def test_unmodelled_kernel_is_reported_and_bounded(monkeypatch, hello_world):
    exact = inspect(hello_world, target="host")
    assert exact["exact"] and exact["reasons"] == []
    monkeypatch.delitem(RULES, "FULLY_CONNECTED")
    report = inspect(hello_world, target="host")
    assert not report["exact"]
    assert any("FULLY_CONNECTED" in why for why in report["reasons"])
    assert report["min_arena_bytes"] > exact["min_arena_bytes"]
    assert "not exact" in format_table(report)
    cc, h = to_c_source(hello_world, target="host")
    assert "NOT EXACT" in h and "FULLY_CONNECTED" in h


def test_missing_init_size_is_reported_not_zero(hello_world):
    host = TARGETS["host"]
    init = {k: v for k, v in host.init.items() if k != "FULLY_CONNECTED"}
    patched = dataclasses.replace(host, init=init)
    report = inspect(hello_world, target=patched)
    assert not report["exact"]
    assert any("Init OpData" in why and "FULLY_CONNECTED" in why for why in report["reasons"])


def test_unmodelled_bounds_stay_above_the_real_tflm(monkeypatch, shared_dir):
    """With any one kernel's rule taken away, the bound still allocates on the real TFLM."""
    try:
        real_tflm.ensure_built("host")
    except real_tflm.TflmUnavailable as exc:
        pytest.skip(str(exc))
    models = ["hello_world_int8", "micro_speech_quantized", "trained_lstm_int8",
              "c22_ops_pad_concat6_mean", "c29_unas_res_32x32x3_int16x8_floatio_of_c21"]  # fmt: skip
    checked = 0
    for stem in models:
        path = shared_dir / "tflm" / "models" / f"{stem}.tflite"
        for opcode in sorted({op["opcode"] for op in inspect(path)["ops"]}):
            with monkeypatch.context() as m:
                m.setitem(RULES, opcode, kernels.default_requests)
                bound = inspect(path, target="host")
            assert not bound["exact"]
            real = real_tflm.real_minimum("host", path)
            assert bound["min_arena_bytes"] >= real, (stem, opcode, bound["min_arena_bytes"], real)
            checked += 1
    assert checked >= 15
