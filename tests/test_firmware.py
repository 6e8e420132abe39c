"""Firmware from a real search, built against the real TFLM (``../shared/tflm-src``).

The C files and the board projects that tfnas writes for a searched model are
compiled with ``-Wall -Wextra -Werror`` against the real headers, linked with
the host TFLM library and run:
- the shared harness ``fw_check.cc`` allocates and invokes with exactly
  ``kTensorArenaSize``, fails with 16 bytes less, and reports the real
  ``arena_used_bytes()``, which must equal tfnas's;
- the generic project (its Makefile), the STM32 project (its CMakeLists.txt,
  as a library for a CubeMX main) and the Arduino sketch (with stand-ins for
  Arduino's ``delay()`` and umbrella header) run as on a board.
The model's C file is also cross-compiled for a Cortex-M4, where its array
must be the flatbuffer's size, and the STM32 project builds for a Cortex-M4F
with its own toolchain file.
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


def _expect_run(program, report, arena):
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=120)
    printed = run.stdout + run.stderr
    assert run.returncode == 0, printed
    assert f"arena_used_bytes = {report['arena_bytes']} of kTensorArenaSize = {arena}" in printed
    assert re.search(r"top output index \d+", printed)


def _need(tool):
    if shutil.which(tool) is None:
        if os.environ.get("TFNAS_REQUIRE_TFLM") == "1":
            pytest.fail(f"TFNAS_REQUIRE_TFLM=1 but {tool} is not installed (make toolchains)")
        pytest.skip(f"{tool} is not installed (make toolchains)")


def test_board_projects_build_and_run_on_the_real_tflm(tmp_path, searched):
    """The three project kinds, built with their own build files, run as on a board."""
    _need_build("host")
    _need("cmake")
    env = _env("host")
    lib = env["TFLM_LIB"]
    root = real_tflm.BUILD_DIR / "tflite-micro"
    report = inspect(searched, target="host")
    arena = -(-report["min_arena_bytes"] // 16) * 16

    # generic: its Makefile builds a program that runs on a PC as it is.
    generic = render_board("generic", searched, tmp_path / "app", target="host")[0].parent
    make = subprocess.run(["make", "-C", str(generic), f"TFLM_ROOT={root}", f"TFLM_LIB={lib}",
                           "CXXFLAGS=-O1 -Werror"], capture_output=True, text=True)  # fmt: skip
    assert make.returncode == 0, make.stdout[-2000:] + make.stderr[-3000:]
    _expect_run(generic / "app", report, arena)

    # stm32: its CMake project, configured as for a CubeMX project (TFNAS_NO_MAIN), builds
    # libtfnas_model.a; a main that calls tfnas_run() links it with the library and runs.
    board = render_board("stm32", searched, tmp_path / "stm32", target="host")[0].parent
    build = tmp_path / "stm32-build"
    for command in (
        ["cmake", "-S", str(board), "-B", str(build), f"-DTFLM_ROOT={root}",
         "-DTFNAS_NO_MAIN=ON", "-DCMAKE_CXX_FLAGS=-Werror"],
        ["cmake", "--build", str(build)],
    ):  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (board / "host_main.cc").write_text(
        'extern "C" int tfnas_run(void);\nint main() { return tfnas_run(); }\n'
    )
    _compile(env, [board / "host_main.cc", build / "libtfnas_model.a"], board / "app",
             libs=[lib, *_flags(env, "TFLM_LDFLAGS")])  # fmt: skip
    _expect_run(board / "app", report, arena)

    # arduino: the sketch as C++, with Arduino's delay() and an empty TensorFlowLite.h (the
    # Arduino library's umbrella header) standing in for the Arduino core; setup() then loop().
    sketch = render_board("arduino", searched, tmp_path / "sketch", target="host")[0]
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "TensorFlowLite.h").write_text("#pragma once\n")
    (shim / "Arduino.h").write_text("#pragma once\nvoid delay(unsigned long ms);\n")
    (shim / "host_main.cc").write_text(
        "void setup();\nvoid loop();\nvoid delay(unsigned long) {}\n"
        "int main() { setup(); loop(); return 0; }\n"
    )
    (shim / "sketch.cc").write_text(f'#include "Arduino.h"\n#include "{sketch}"\n')
    _compile(env, [shim / "sketch.cc", sketch.parent / "model_data.cpp", shim / "host_main.cc"],
             shim / "app", extra=[f"-I{shim}", f"-I{sketch.parent}"],
             libs=[lib, *_flags(env, "TFLM_LDFLAGS")])  # fmt: skip
    run = subprocess.run([str(shim / "app")], capture_output=True, text=True, timeout=120)
    printed = run.stdout + run.stderr
    assert run.returncode == 0, printed
    used = f"arena_used_bytes = {report['arena_bytes']}"
    assert f"{used} of kTensorArenaSize = {arena}" in printed  # setup()
    assert re.search(rf"top output index \d+, {used}", printed)  # loop()


def test_stm32_project_cross_compiles_for_cortex_m4(tmp_path, searched):
    """The STM32 CMake project with its arm-none-eabi toolchain file builds for a Cortex-M4F."""
    _need("cmake")
    _need("arm-none-eabi-g++")
    _need_build("host")  # the headers are the same for every build
    root = real_tflm.BUILD_DIR / "tflite-micro"
    board = render_board("stm32", searched, tmp_path / "stm32", target="cortex-m")[0].parent
    build = tmp_path / "build"
    for command in (
        ["cmake", "-S", str(board), "-B", str(build), "-DCMAKE_TOOLCHAIN_FILE=arm-none-eabi.cmake",
         f"-DTFLM_ROOT={root}", "-DTFNAS_NO_MAIN=ON", "-DCMAKE_CXX_FLAGS=-Werror -Os"],
        ["cmake", "--build", str(build)],
    ):  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, cwd=board)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    attributes = subprocess.run(["arm-none-eabi-readelf", "-A", str(build / "libtfnas_model.a")],
                                capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert 'Tag_CPU_name: "7E-M"' in attributes  # Armv7E-M: the Cortex-M4
    assert (
        "Tag_FP_arch: VFPv4-D16" in attributes and "Tag_ABI_VFP_args: VFP registers" in attributes
    )


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


def test_a_model_not_made_by_tfnas_exports_and_runs(tmp_path, capsys):
    """person_detect (TFLM's example) through `tfnas export --board generic`, built and run."""
    _need_build("host")
    model = real_tflm.REPO.parent / "shared" / "tflm" / "models" / "person_detect.tflite"
    truth = json.loads(
        (
            real_tflm.REPO.parent / "shared" / "tflm" / "truth" / "x86_64" / "person_detect.json"
        ).read_text()
    )
    from tfnas.cli import main

    out = tmp_path / "person"
    assert (
        main(["export", str(model), "--out", str(out), "--board", "generic", "--target", "host"])
        == 0
    )
    assert "kTensorArenaSize 85,024 B on host" in capsys.readouterr().out
    env = _env("host")
    make = subprocess.run(["make", "-C", str(out), f"TFLM_ROOT={real_tflm.BUILD_DIR / 'tflite-micro'}",
                           f"TFLM_LIB={env['TFLM_LIB']}", "CXXFLAGS=-O1 -Werror"],
                          capture_output=True, text=True)  # fmt: skip
    assert make.returncode == 0, make.stdout[-2000:] + make.stderr[-3000:]
    run = subprocess.run([str(out / "person")], capture_output=True, text=True, timeout=300)
    printed = run.stdout + run.stderr
    assert run.returncode == 0, printed
    # The real TFLM's numbers for this model, from the truth file of a separate build.
    assert truth["arena_used_bytes"] == 85024 == truth["min_arena_bytes_multiple_of_16"]
    assert "arena_used_bytes = 85024 of kTensorArenaSize = 85024" in printed
    assert re.search(r"top output index [01] ", printed)
