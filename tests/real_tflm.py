"""The real TFLM, built from ``../shared/tflm-src``, as the oracle for the memory model.

Three builds of TFLM at the commit tfnas replicates serve the three targets:

==================  ===============  ==========================================
tfnas target        build.sh target  runs with
==================  ===============  ==========================================
``host``            ``host``         directly (x86-64)
``cortex-m``        ``eabi32``       ``qemu-arm -cpu cortex-a7`` (bare-metal ABI)
``cortex-m-cmsis``  ``eabi32-cmsis`` ``qemu-arm -cpu cortex-a7``
==================  ===============  ==========================================

Builds go to ``.tflm-build/`` in the checkout (ignored by git; override with
``TFNAS_TFLM_BUILD_DIR``); the first build of a target takes about 15
CPU-minutes, a rerun seconds. :func:`compare` checks one model with two runs of
the harness: at tfnas's smallest arena (it must allocate and invoke, and report
tfnas's head, tail and ``arena_used_bytes()``) and 16 bytes below it (it must
fail). Where either run disagrees, it bisects with one process per try for the
real minimum, so a mismatch report always has the real numbers.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TFLM_SRC = REPO.parent / "shared" / "tflm-src"
BUILD_DIR = Path(os.environ.get("TFNAS_TFLM_BUILD_DIR", REPO / ".tflm-build"))
QEMU = ("qemu-arm", "-cpu", "cortex-a7")
BUILDS = {
    "host": ("host", ()),
    "cortex-m": ("eabi32", QEMU),
    "cortex-m-cmsis": ("eabi32-cmsis", QEMU),
}
FIELDS = ("planned_bytes", "persistent_bytes", "arena_bytes", "min_arena_bytes")
_FIRST_ARENA = 16 << 20


class TflmUnavailable(RuntimeError):
    """The real TFLM cannot be built or run here (missing source or toolchain)."""


def binary_path(target: str) -> Path:
    """Where the harness binary of ``target``'s build lives."""
    return BUILD_DIR / "bin" / BUILDS[target][0] / "tflm_arena"


def missing_tools(target: str) -> list[str]:
    """Programs the build or the runs of ``target`` need that are not installed."""
    need = ["make", "g++"]
    if target != "host":
        need += ["arm-none-eabi-g++", QEMU[0]]
    return [tool for tool in need if shutil.which(tool) is None]


def ensure_built(target: str) -> Path:
    """Build TFLM and its harness for ``target`` once (a rerun takes seconds).

    Raises
    ------
    TflmUnavailable
        If ``../shared/tflm-src`` or a needed program is missing.
    RuntimeError
        If the build fails.
    """
    if not (TFLM_SRC / "build.sh").is_file():
        raise TflmUnavailable(f"no TFLM source snapshot at {TFLM_SRC}")
    missing = missing_tools(target)
    if missing:
        raise TflmUnavailable(f"missing programs for the {target} build: {', '.join(missing)}")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / f".lock-{target}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes build once
        log = BUILD_DIR / f"build-{BUILDS[target][0]}.log"
        with open(log, "w") as out:
            done = subprocess.run(
                ["bash", str(TFLM_SRC / "build.sh"), BUILDS[target][0], str(BUILD_DIR)],
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            raise RuntimeError(f"TFLM build for {target} failed; see {log}")
    return binary_path(target)


def run_harness(target: str, model: Path, arena: int, timeout: float = 120.0) -> dict:
    """One run of the harness with an ``arena``-byte arena (no search of its own).

    Returns the harness's JSON with ``ok`` added: True when ``AllocateTensors()``
    and ``Invoke()`` both succeeded. A crash, a timeout or a TFLM abort is not ok.
    """
    cmd = [*BUILDS[target][1], str(binary_path(target)), str(model), "--no-min"]
    cmd += ["--arena", str(arena)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "timeout"}
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "error": (done.stdout + done.stderr)[-300:]}
    result["ok"] = bool(
        done.returncode == 0 and result.get("allocate_ok") and result.get("invoke_ok")
    )
    if not result["ok"]:
        result["error"] = done.stderr[-300:]
    return result


def real_minimum(target: str, model: Path, low: int = 0, high: int = _FIRST_ARENA) -> int | None:
    """The smallest working arena (a multiple of 16) by bisection, one process per try."""
    if not run_harness(target, model, high)["ok"]:
        return None
    low, high = low // 16, high // 16  # invariant: high works, low does not (or is 0)
    while high - low > 1:
        mid = (low + high) // 2
        if run_harness(target, model, mid * 16)["ok"]:
            high = mid
        else:
            low = mid
    return high * 16


@dataclass
class Comparison:
    """tfnas's numbers and the real TFLM's for one model on one target."""

    model: str
    target: str
    ours: dict
    real: dict = field(default_factory=dict)
    error: str = ""

    @property
    def equal(self) -> bool:
        return not self.error and all(self.ours[k] == self.real.get(k) for k in FIELDS)

    def describe(self) -> str:
        if self.error:
            return f"{self.model} [{self.target}]: {self.error}"
        diff = ", ".join(
            f"{k} tfnas {self.ours[k]} real {self.real.get(k)}"
            for k in FIELDS
            if self.ours[k] != self.real.get(k)
        )
        return f"{self.model} [{self.target}]: {diff or 'equal'}"


def compare(target: str, model: Path, ours: dict) -> Comparison:
    """Check tfnas's four numbers for ``model`` against the real TFLM on ``target``.

    ``ours`` holds ``planned_bytes``, ``persistent_bytes``, ``arena_bytes`` and
    ``min_arena_bytes`` as :func:`tfnas.inspect` reports them.
    """
    ours = {k: int(ours[k]) for k in FIELDS}
    result = Comparison(str(model), target, ours)
    at_min = run_harness(target, model, ours["min_arena_bytes"])
    below = run_harness(target, model, ours["min_arena_bytes"] - 16) if at_min["ok"] else None
    measured = at_min
    if not at_min["ok"]:
        measured = run_harness(target, model, _FIRST_ARENA)
        if not measured["ok"]:
            result.error = f"the real TFLM does not run it: {measured.get('error', '')!r}"
            return result
    result.real = {
        "planned_bytes": measured.get("head_bytes"),
        "persistent_bytes": measured.get("tail_bytes"),
        "arena_bytes": measured.get("arena_used_bytes"),
        "min_arena_bytes": ours["min_arena_bytes"],
    }
    if not at_min["ok"] or (below is not None and below["ok"]):
        result.real["min_arena_bytes"] = real_minimum(target, model)
    return result


def compare_many(
    target: str, items: Iterable[tuple[Path, dict]], workers: int = 2
) -> list[Comparison]:
    """:func:`compare` over many ``(model_path, ours)`` pairs, ``workers`` at a time."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda item: compare(target, *item), items))
