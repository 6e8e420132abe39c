"""The memory model against a real TFLM build, byte for byte.

The operator zoo (``tests/op_zoo.py``: every kernel the converter emits from
tf_keras layers and TF ops, in int8, float32 and int16x8) and a seeded sample
of models from tfnas's search spaces are planned by tfnas and run by TFLM built
from ``../shared/tflm-src`` (``tests/real_tflm.py``). Planned bytes, persistent
bytes, ``arena_used_bytes()`` and the smallest working arena must be equal.

The host build runs in the default test run (built once into ``.tflm-build/``);
the 32-bit bare-metal ABI (``cortex-m``) and CMSIS-NN (``cortex-m-cmsis``)
builds run under ``qemu-arm`` as slow tests. Without the TFLM source or a
toolchain these tests skip, unless ``TFNAS_REQUIRE_TFLM=1`` (set by CI) makes
that a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests import real_tflm
from tfnas.errors import UnsupportedModelError
from tfnas.inspection import inspect

GENERATED_DEFAULT = 6
GENERATED_SLOW = 24


def _need_build(target: str) -> Path:
    try:
        return real_tflm.ensure_built(target)
    except real_tflm.TflmUnavailable as exc:
        if os.environ.get("TFNAS_REQUIRE_TFLM") == "1":
            pytest.fail(f"TFNAS_REQUIRE_TFLM=1 but the real TFLM is unavailable: {exc}")
        pytest.skip(f"real TFLM unavailable: {exc}")


@pytest.fixture(scope="session")
def zoo_models(tmp_path_factory) -> list[Path]:
    from tests import op_zoo

    out = tmp_path_factory.mktemp("zoo")
    # No harness filter: every model that converts is compared (or must be refused), so a
    # kernel the real TFLM cannot run is caught here rather than dropped.
    return [Path(path) for path, _ in op_zoo.generate_all(out, harness=False)]


@pytest.fixture(scope="session")
def space_models(tmp_path_factory):
    """``space_models(n)``: the first ``n`` generated models of tfnas's spaces, as files."""
    from tests.test_generated_vs_tflm import generate

    out = tmp_path_factory.mktemp("spaces")

    def first(count: int) -> list[Path]:
        paths = []
        for i in range(count):
            try:
                _, mode, tflite = generate(i)  # cached: shared with the tflite-micro test
            except Exception:  # a converter failure is not a memory-model failure
                continue
            path = out / f"space{i:03d}_{mode}.tflite"
            path.write_bytes(tflite)
            paths.append(path)
        return paths

    return first


def _check(target: str, paths: list[Path]) -> None:
    items, refused = [], []
    for path in paths:
        try:
            report = inspect(path, target=target)
        except UnsupportedModelError as exc:
            refused.append((path, str(exc)))
            continue
        assert report["exact"], (path.name, report["reasons"])
        items.append((path, report))
    results = real_tflm.compare_many(target, items)
    bad = [r.describe() for r in results if not r.equal]
    assert not bad, "\n".join(bad)
    # A model tfnas refuses must really fail on this build.
    for path, why in refused:
        assert not real_tflm.run_harness(target, path, 16 << 20)["ok"], (path.name, why)
    assert items, "no model was compared"


def test_zoo_covers_60_builtins(zoo_models):
    from tfnas.memory.kernels import TFLM_BUILTIN_OPS
    from tfnas.tflite import read_model

    seen = {op.opcode for p in zoo_models for sg in read_model(p).subgraphs for op in sg.operators}
    assert len(seen & TFLM_BUILTIN_OPS) >= 60, sorted(seen)


def test_zoo_equals_real_tflm_host(zoo_models):
    _need_build("host")
    _check("host", zoo_models)


def test_space_models_equal_real_tflm_host(space_models):
    _need_build("host")
    _check("host", space_models(GENERATED_DEFAULT))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["cortex-m", "cortex-m-cmsis"])
def test_zoo_equals_real_tflm_32bit(target, zoo_models):
    _need_build(target)
    _check(target, zoo_models)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["host", "cortex-m", "cortex-m-cmsis"])
def test_space_models_equal_real_tflm(target, space_models):
    _need_build(target)
    _check(target, space_models(GENERATED_SLOW))
