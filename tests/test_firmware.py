"""Firmware from a real search, built against the real TFLM (``../shared/tflm-src``).

The C files and the STM32 program that tfnas writes for a searched model are
compiled with ``-Wall -Wextra -Werror`` against the real headers. They are
linked with the host TFLM library and run:
- the shared harness ``fw_check.cc`` allocates and invokes with exactly
  ``kTensorArenaSize``, fails with 16 bytes less, and reports the real
  ``arena_used_bytes()``, which must equal tfnas's;
- the STM32 program runs as it would on the board.
The model's C file is also cross-compiled for a Cortex-M4, where its array
must be the flatbuffer's size.
"""

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest

from tests import real_tflm
from tests.test_memory_vs_real_tflm import _need_build
from tests.test_tuner import space, tiny_data
from tfnas.export import write_c_files
from tfnas.export.boards import render_board
from tfnas.inspection import inspect
from tfnas.objectives import Constraints

WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def _env(target_dir: str) -> dict:
    text = (real_tflm.BUILD_DIR / "bin" / target_dir / "tflm.env").read_text()
    env = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        env[key] = shlex.split(value)[0] if key in ("TFLM_CXX", "TFLM_LIB") else value
    return env


def _flags(env: dict, key: str) -> list[str]:
    """tflm.env holds shell-escaped values (``-a\\ -b``): one shell word of several flags."""
    return [flag for word in shlex.split(env[key]) for flag in shlex.split(word)]


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """The best model of a real two-trial search, as best.tflite."""
    from tfnas.strategies import RandomSearchOracle
    from tfnas.tuner import NASTuner

    folder = tmp_path_factory.mktemp("search")
    oracle = RandomSearchOracle(space(), Constraints(max_arena_bytes=50_000), max_trials=2, seed=0)
    tuner = NASTuner(oracle, directory=folder, project_name="p", verbose=0)
    x, y = tiny_data(64, 0)
    tuner.search(x, y, validation_data=tiny_data(32, 1), epochs=1, batch_size=16)
    return tuner.get_best_tflite(1)[0]


def _compile(env, sources, out, *, extra=(), libs=(), warnings=True):
    cxx, flags, includes = (
        env["TFLM_CXX"],
        _flags(env, "TFLM_CXXFLAGS"),
        _flags(env, "TFLM_INCLUDES"),
    )
    command = [
        cxx,
        *flags,
        *(WARNINGS if warnings else []),
        *includes,
        *extra,
        *map(str, sources),
        *libs,
    ]
    done = subprocess.run([*command, "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_generated_firmware_runs_on_the_real_tflm_with_exactly_its_arena(tmp_path, searched):
    _need_build("host")
    env = _env("host")
    lib = env["TFLM_LIB"]
    report = inspect(searched, target="host")
    c_dir = tmp_path / "c"
    write_c_files(searched, c_dir, target="host")
    header = (c_dir / "model_data.h").read_text()
    arena = int(re.search(r"constexpr int kTensorArenaSize = (\d+);", header).group(1))
    assert arena == -(-report["min_arena_bytes"] // 16) * 16
    # Our generated source compiles cleanly under -Wall -Wextra -Werror against the real headers.
    _compile(env, [c_dir / "model_data.cc"], tmp_path / "model_data.o", extra=["-c", f"-I{c_dir}"])
    # The shared harness: exactly kTensorArenaSize works, 16 bytes less does not.
    harness = real_tflm.TFLM_SRC / "harness" / "fw_check.cc"
    _compile(env, [harness, tmp_path / "model_data.o"], tmp_path / "fw_check",
             extra=[f"-I{c_dir}"], libs=[lib, *_flags(env, "TFLM_LDFLAGS")], warnings=False)  # fmt: skip
    done = subprocess.run([str(tmp_path / "fw_check")], capture_output=True, text=True, timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, result
    assert result["kTensorArenaSize"] == arena
    assert result["at_kTensorArenaSize"] == "ok"
    assert result["at_kTensorArenaSize_minus_16"] != "ok"
    assert result["arena_used_bytes"] == report["arena_bytes"]  # the real number equals tfnas's

    # The STM32 program, built for the host against the same library, runs as on a board.
    board = tmp_path / "stm32"
    render_board("stm32", searched, board, target="host")
    (board / "host_main.cc").write_text(
        'extern "C" int tfnas_run(void);\nint main() { return tfnas_run(); }\n'
    )
    _compile(env, [board / "main.cc", board / "model_data.cc", board / "host_main.cc"], board / "app",
             extra=["-DTFNAS_NO_MAIN", f"-I{board}"], libs=[lib, *_flags(env, "TFLM_LDFLAGS")])  # fmt: skip
    run = subprocess.run([str(board / "app")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    printed = run.stdout + run.stderr
    assert f"arena_used_bytes = {report['arena_bytes']} of kTensorArenaSize = {arena}" in printed
    assert re.search(r"top output index \d+", printed)


def test_model_data_cross_compiles_for_cortex_m4(tmp_path, searched):
    gxx, size = shutil.which("arm-none-eabi-g++"), shutil.which("arm-none-eabi-size")
    if not (gxx and size):
        if os.environ.get("TFNAS_REQUIRE_TFLM") == "1":
            pytest.fail(
                "TFNAS_REQUIRE_TFLM=1 but arm-none-eabi-g++ is not installed (make toolchains)"
            )
        pytest.skip("arm-none-eabi-g++ is not installed (make toolchains)")
    _need_build("host")  # the headers are the same for every build
    env = _env("host")
    c_dir = tmp_path / "c"
    write_c_files(searched, c_dir, target="cortex-m")
    obj = tmp_path / "model_data.o"
    command = [gxx, "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os",
               "-std=c++17", "-fno-rtti", "-fno-exceptions", "-DTF_LITE_STATIC_MEMORY", "-fdata-sections",
               *WARNINGS, *_flags(env, "TFLM_INCLUDES"), f"-I{c_dir}", "-c", str(c_dir / "model_data.cc"),
               "-o", str(obj)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    sections = subprocess.run(
        [size, "-A", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    model = next(
        int(line.split()[1])
        for line in sections.splitlines()
        if line.split()[:1] == [".rodata.g_model"]
    )
    assert model == len(searched) + (
        -len(searched) % 16
    )  # the flatbuffer, padded to its 16-byte alignment
