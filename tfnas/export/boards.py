"""Fill the board templates in ``deploy/`` with a model's C sources.

Each board has a template in ``deploy/BOARD/`` with ``{{PLACEHOLDERS}}``: a
minimal TensorFlow Lite Micro program that loads the model, registers exactly
its operators, allocates a ``kTensorArenaSize`` arena, quantises an input,
invokes and prints ``arena_used_bytes()``.

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

__all__ = ["Board", "BOARDS", "DEPLOY_DIR", "render_board"]

#: The repository's ``deploy/`` folder, where the board templates live.
DEPLOY_DIR = Path(__file__).resolve().parents[2] / "deploy"

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
# Arduino sketch folder and primary file names (arduino-cli's sketch specification).
_SKETCH_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}\Z")


@dataclass(frozen=True)
class Board:
    """A board template: where it is, the program file it becomes, the C source suffix."""

    name: str
    template: str
    program: str
    source_suffix: str


BOARDS: dict[str, Board] = {
    # The .ino must be named after its folder; "{sketch}" is the output folder's name.
    "arduino": Board("arduino", "arduino/main.ino.in", "{sketch}.ino", ".cpp"),
    "stm32": Board("stm32", "stm32/main.cc.in", "main.cc", ".cc"),
}


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
    template_dir: str | os.PathLike | None = None,
) -> list[Path]:
    """Write a ready-to-build TFLM program for ``board`` with the model's C sources.

    Parameters
    ----------
    board : {"arduino", "stm32"}
        Which template to fill.
    tflite : bytes, path-like or Model
        The ``.tflite`` model.
    out_dir : path-like
        Folder to write into (created if missing). For Arduino it is the sketch
        folder, and the sketch file is named after it (``out_dir/out_dir.ino``).
    name : str
        Name of the model's C array.
    target : {"cortex-m", "cortex-m-cmsis", "host"}
        The TFLM build the arena is sized for: ``cortex-m-cmsis`` when the
        firmware links CMSIS-NN kernels (as the Arduino_TensorFlowLite library
        does on Arm boards), ``cortex-m`` for reference kernels.
    arena_headroom_bytes : int
        Extra arena bytes, rounded up to 16.
    template_dir : path-like, optional
        Folder holding ``arduino/`` and ``stm32/`` templates (``deploy/`` by default).

    Returns
    -------
    list of Path
        The program file, then the model's ``.cc``/``.cpp`` source and header.

    Raises
    ------
    ValueError
        If ``board`` is unknown, an Arduino folder name is not a valid sketch
        name, a template has an unknown placeholder, or as
        :func:`~tfnas.export.to_c_source`.
    FileNotFoundError
        If the template is missing.
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
    template_path = Path(template_dir or DEPLOY_DIR) / spec.template
    if not template_path.is_file():
        raise FileNotFoundError(
            f"Board template for {board!r} not found: expected {template_path}. "
            "Pass template_dir= to point at a copy of the repository's deploy/ folder."
        )
    model = read_model(tflite)
    text = _fill(
        template_path.read_text(encoding="utf-8"),
        {
            "SKETCH": sketch,
            "MODEL": name,
            "TARGET": target,
            "RESOLVER": resolver_snippet(model, indent="  "),
        },
        template_path,
    )
    source, header = write_c_files(
        model,
        out,
        source_suffix=spec.source_suffix,
        name=name,
        target=target,
        arena_headroom_bytes=arena_headroom_bytes,
    )
    program = out / spec.program.format(sketch=sketch)
    program.write_text(text, encoding="utf-8")
    return [program, source, header]
