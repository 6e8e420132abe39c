"""Fill the board templates in ``deploy/`` with a model's C sources.

Each board has template files in ``deploy/`` with ``{{PLACEHOLDERS}}``: a minimal
TensorFlow Lite Micro program that loads the model, registers exactly its
operators, allocates a ``kTensorArenaSize`` arena, quantises an input, invokes
and prints ``arena_used_bytes()``, plus the board's build files:

- ``arduino``: a sketch folder for the Arduino_TensorFlowLite library;
- ``stm32``: ``main.cc``, a ``CMakeLists.txt`` and an ``arm-none-eabi`` toolchain
  file (a firmware image with your part's linker script and startup file, or a
  library for an existing CubeMX project);
- ``generic``: ``main.cc`` and a ``Makefile`` for any compiler and TFLM build;
  on a PC it runs as it is.

Examples
--------
>>> render_board("arduino", "best.tflite", "tfnas_model")  # doctest: +SKIP
[PosixPath('tfnas_model/tfnas_model.ino'), PosixPath('tfnas_model/model_data.cpp'),
 PosixPath('tfnas_model/model_data.h')]
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from tfnas.export.c_array import resolver_snippet, write_c_files
from tfnas.tflite.model import Model, read_model

__all__ = ["Board", "BOARDS", "DEPLOY_DIR", "cpu_flags", "render_board"]

#: The repository's ``deploy/`` folder, where the board templates live.
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
# Arduino sketch folder and primary file names (arduino-cli's sketch specification).
_SKETCH_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}\Z")


@dataclass(frozen=True)
class Board:
    """A board: its program and build files (template, output name), the C source suffix.

    Output names may contain ``{sketch}`` (the output folder's name) and
    ``{project}`` (that name made a C identifier).
    """

    name: str
    files: tuple[tuple[str, str], ...]
    source_suffix: str


BOARDS: dict[str, Board] = {
    # The .ino must be named after its folder.
    "arduino": Board("arduino", (("arduino/main.ino.in", "{sketch}.ino"),), ".cpp"),
    "stm32": Board(
        "stm32",
        (
            ("main.cc.in", "main.cc"),
            ("stm32/CMakeLists.txt.in", "CMakeLists.txt"),
            ("stm32/arm-none-eabi.cmake", "arm-none-eabi.cmake"),
        ),
        ".cc",
    ),
    "generic": Board(
        "generic", (("main.cc.in", "main.cc"), ("generic/Makefile.in", "Makefile")), ".cc"
    ),
}

# GCC core and FPU flags, and TFLM's TARGET_ARCH, per core of the device catalogue.
_CORES = {
    "Cortex-M0+": ("-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft", "cortex-m0plus"),
    "Cortex-M4": ("-mcpu=cortex-m4 -mthumb -mfloat-abi=soft", "cortex-m4"),
    "Cortex-M4F": ("-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16", "cortex-m4+fp"),
    "Cortex-M7": ("-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16", "cortex-m7+fp"),
    "Cortex-M33": ("-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16", "cortex-m33"),
}
# Parts whose FPU differs from their core's default (the STM32F7x6 has a single-precision FPU).
_PARTS = {
    "stm32f746zg": ("-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16", "cortex-m7+fp")
}


def cpu_flags(device: str | None = None) -> tuple[str, str]:
    """GCC flags and TFLM ``TARGET_ARCH`` for a catalogue device (a Cortex-M4F without one).

    Raises
    ------
    ValueError
        If the device is unknown or not an Arm Cortex-M.
    """
    if device is None:
        return _CORES["Cortex-M4F"]
    from tfnas.objectives.devices import get_device

    core = get_device(device).core
    if device in _PARTS:
        return _PARTS[device]
    if core not in _CORES:
        raise ValueError(
            f"No Arm compiler flags for {device}: expected a Cortex-M core, one of "
            f"{sorted(_CORES)}. Received: core {core!r}"
        )
    return _CORES[core]


def _fill(template: str, values: dict[str, str], where: Path) -> str:
    missing = sorted(set(_PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise ValueError(
            f"Template {where} has placeholders with no value: expected only "
            f"{sorted(values)}. Received: {missing}"
        )
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def render_board(
    board: str,
    tflite: bytes | str | os.PathLike | Model,
    out_dir: str | os.PathLike,
    *,
    name: str = "g_model",
    target: str = "cortex-m",
    arena_headroom_bytes: int = 0,
    device: str | None = None,
    template_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Write a ready-to-build TFLM project for ``board`` with the model's C sources.

    Parameters
    ----------
    board : {"arduino", "stm32", "generic"}
        Which templates to fill.
    tflite : bytes, path-like or Model
        The ``.tflite`` model.
    out_dir : path-like
        Folder to write into (created if missing). For Arduino it is the sketch
        folder, and the sketch file is named after it (``out_dir/out_dir.ino``);
        for the others the folder's name names the program.
    name : str
        Name of the model's C array.
    target : {"cortex-m", "cortex-m-cmsis", "host"}
        The TFLM build the arena is sized for: ``cortex-m-cmsis`` when the
        firmware links CMSIS-NN kernels (as the Arduino_TensorFlowLite library
        does on Arm boards), ``cortex-m`` for reference kernels.
    arena_headroom_bytes : int
        Extra arena bytes, rounded up to 16.
    device : str, optional
        A catalogue board; for ``stm32`` it sets the core and FPU flags
        (a Cortex-M4F's without it).
    template_dir : path-like, optional
        Folder holding the templates (``deploy/`` by default).

    Returns
    -------
    list of Path
        The program file, the build files, then the model's ``.cc``/``.cpp``
        source and header.

    Raises
    ------
    ValueError
        If ``board`` is unknown, an Arduino folder name is not a valid sketch
        name, a template has an unknown placeholder, ``device`` has no Arm
        flags, or as :func:`~tfnas.export.to_c_source`.
    FileNotFoundError
        If a template is missing.
    UnsupportedModelError
        As :func:`~tfnas.export.to_c_source`.
    """
    if board not in BOARDS:
        raise ValueError(f"Unknown board: expected one of {sorted(BOARDS)}. Received: {board!r}")
    spec = BOARDS[board]
    out = Path(out_dir)
    sketch = out.resolve().name
    if board == "arduino" and not _SKETCH_NAME.match(sketch):
        raise ValueError(
            "An Arduino sketch folder name must start with a letter, digit or underscore, "
            "continue with letters, digits, '_', '.' or '-', and have at most 63 characters. "
            f"Received: out_dir={str(out)!r}"
        )
    project = re.sub(r"\W", "_", sketch, flags=re.ASCII) or "tfnas_app"
    flags, arch = cpu_flags(device if board == "stm32" else None)
    templates = []
    for template, output in spec.files:
        path = Path(template_dir or DEPLOY_DIR) / template
        if not path.is_file():
            raise FileNotFoundError(
                f"Board template for {board!r} not found: expected {path}. "
                "Pass template_dir= to point at a copy of the repository's deploy/ folder."
            )
        templates.append((path, out / output.format(sketch=sketch, project=project)))
    model = read_model(tflite)
    values = {
        "SKETCH": sketch,
        "PROJECT": project,
        "MODEL": name,
        "TARGET": target,
        "RESOLVER": resolver_snippet(model, indent="  "),
        "CPU_FLAGS": flags,
        "TFLM_ARCH": arch,
    }
    texts = [
        (_fill(path.read_text(encoding="utf-8"), values, path), dest) for path, dest in templates
    ]
    source, header = write_c_files(
        model,
        out,
        source_suffix=spec.source_suffix,
        name=name,
        target=target,
        arena_headroom_bytes=arena_headroom_bytes,
    )
    for text, dest in texts:
        dest.write_text(text, encoding="utf-8")
    return [dest for _, dest in texts] + [source, header]
