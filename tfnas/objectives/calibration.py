"""Latency calibration: fit the latency model's coefficients to a board's measured latencies.

The latency model (:mod:`tfnas.objectives.latency`) gives every operator

    cycles = MACs x c[kind]  or  bytes moved x c[kind],   plus  c["overhead"]

with nine coefficients: cycles per MAC for ``conv``, ``depthwise`` and
``fully_connected``, cycles per byte moved for ``memory``, ``pooling``,
``elementwise``, ``reduce`` and ``softmax``, and cycles per operator
(``overhead``). A model's cycles are therefore linear in these coefficients,
and measured cycles of a few models on one board determine them by
non-negative least squares (:func:`scipy.optimize.nnls`).

What is fitted (``coefficients=``):

- ``"kinds"``: each of the nine coefficients that the measured models exercise
  (the others keep the default model's value);
- ``"groups"``: three multipliers on the default model: one on every MAC
  kind (``macs``), one on every byte kind (``bytes``), one on the overhead
  (``overhead``), keeping the default ratios inside each group;
- ``"scale"``: one multiplier on the whole default model;
- or a list of names from these (``["macs", "overhead"]``, ``["conv", "depthwise", "overhead"]``);
  a kind named alone and inside a group at once is refused.

Each fitted name needs one measurement at least, and leave-one-out needs one
more: with n measurements and k fitted names, n >= k is required, and the
leave-one-out error exists only when the n - 1 remaining measurements still
determine all k.

Measurements come as a CSV (:func:`read_measurements`), one row per
measurement, with a header naming these columns (any order):

- ``model``: the ``.tflite`` file, relative to the CSV's folder (or absolute);
- ``board``: a board of :data:`~tfnas.objectives.DEVICES` (all rows the same);
- ``cycles`` or ``ms``: the measured time of one inference (``Invoke``); each
  row fills exactly one of the two (both columns may be present). Milliseconds
  become cycles at the board's clock;
- ``kernels`` (optional): ``optimized`` (CMSIS-NN, ESP-NN; the default) or
  ``reference``, the same for all rows.

Examples
--------
>>> cal = calibrate_csv("measurements.csv", coefficients="groups")  # doctest: +SKIP
>>> cal.save("mcxn947.json")  # doctest: +SKIP
>>> estimate_latency("model.tflite", "frdm-mcxn947", calibration=cal)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tfnas.errors import InputError
from tfnas.objectives.devices import DEVICES, get_device
from tfnas.objectives.latency import (
    BYTE_KINDS,
    KERNELS,
    MAC_KINDS,
    _core,
    default_cycle_table,
    effective_kernels,
    op_quantities,
)

__all__ = [
    "COEFFICIENTS",
    "GROUPS",
    "MODES",
    "Measurement",
    "LatencyCalibration",
    "read_measurements",
    "model_features",
    "fit_calibration",
    "calibrate_csv",
]

logger = logging.getLogger("tfnas")

#: The nine coefficients of the latency model, in the order they are printed.
COEFFICIENTS = (*MAC_KINDS, *BYTE_KINDS, "overhead")

#: Names that multiply several coefficients of the default model at once.
GROUPS = {"macs": MAC_KINDS, "bytes": BYTE_KINDS, "scale": COEFFICIENTS}

#: The named choices of ``coefficients=``.
MODES = {"kinds": COEFFICIENTS, "groups": ("macs", "bytes", "overhead"), "scale": ("scale",)}

_UNITS = {**dict.fromkeys(MAC_KINDS, "cycles/MAC"), **dict.fromkeys(BYTE_KINDS, "cycles/byte"),
          "overhead": "cycles/op"}  # fmt: skip
_COLUMNS = ("model", "board", "cycles", "ms", "kernels")


@dataclass(frozen=True)
class Measurement:
    """One measured inference time.

    Attributes
    ----------
    model:
        The ``.tflite`` path as written in the CSV.
    path:
        That path resolved against the CSV's folder.
    board, kernels:
        The board (catalogue name) and kernel family it was measured with.
    cycles:
        The measured cycles (milliseconds converted at the board's clock).
    line:
        The CSV line it came from (0 when built in code).
    """

    model: str
    path: str
    board: str
    cycles: float
    kernels: str = "optimized"
    line: int = 0


@dataclass(frozen=True)
class LatencyCalibration:
    """Latency-model coefficients fitted to measurements on one board.

    Attributes
    ----------
    board, core, clock_mhz:
        The board measured, its core and clock (the clock converted milliseconds
        to cycles). The calibration applies to latency estimates on this core.
    kernels:
        The kernel family the measured int8 operators ran with (``"optimized"``
        or ``"reference"``); estimates with the other family are refused.
    coefficients:
        All nine coefficients, fitted or default: cycles per MAC, per byte
        moved, per operator (see :data:`COEFFICIENTS`).
    defaults:
        The default model's value of each, for comparison.
    fitted:
        The names fitted (kinds, groups or ``"scale"``); ``multipliers`` gives
        each one's factor on the default model.
    measurements:
        One row per measurement: ``model``, ``measured_cycles``,
        ``fitted_cycles`` (the fit to all of them), ``loo_cycles`` (the fit to
        all others, ``None`` where those do not determine every fitted name),
        ``loo_ratio`` (``loo_cycles / measured_cycles``).
    """

    board: str
    core: str
    clock_mhz: float
    kernels: str
    coefficients: dict[str, float]
    defaults: dict[str, float]
    fitted: tuple[str, ...]
    multipliers: dict[str, float] = field(default_factory=dict)
    measurements: tuple[dict, ...] = ()

    def __post_init__(self) -> None:
        if self.kernels not in KERNELS:
            raise InputError(
                f"kernels must be one of {KERNELS}. Received: kernels={self.kernels!r}"
            )
        _core(self.core)  # raises for an unknown core
        missing = sorted(set(COEFFICIENTS) - set(self.coefficients))
        if missing:
            raise InputError(f"A latency calibration needs all of {list(COEFFICIENTS)}. "
                             f"Received: coefficients without {missing}")  # fmt: skip
        for name, value in self.coefficients.items():
            if name not in COEFFICIENTS:
                raise InputError(f"Unknown coefficient {name!r}. Expected some of "
                                 f"{list(COEFFICIENTS)}. Received: {name}")  # fmt: skip
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value >= 0)
            ):
                raise InputError(f"Coefficient {name} must be a finite number >= 0. "
                                 f"Received: {name}={value!r}")  # fmt: skip
        object.__setattr__(self, "fitted", tuple(self.fitted))
        object.__setattr__(self, "measurements", tuple(dict(m) for m in self.measurements))

    # ------------------------------------------------------------------ use

    def cycle_table(self) -> dict:
        """``{(kernels, kind): cycles per unit, "overhead": cycles per op}`` for the latency model."""
        table = {(self.kernels, k): self.coefficients[k] for k in (*MAC_KINDS, *BYTE_KINDS)}
        table["overhead"] = self.coefficients["overhead"]
        return table

    def check_applies(self, core: str, kernels: str) -> None:
        """Raise ``ValueError`` unless this calibration is for ``core`` (as modelled) and ``kernels``."""
        mine = _core(self.core).name
        if _core(core).name != mine or kernels != self.kernels:
            raise ValueError(
                f"The latency calibration was fitted on {self.board} ({self.core}, modelled as "
                f"{mine}) with {self.kernels} kernels. Expected an estimate for that core and those "
                f"kernels. Received: core={core!r}, kernels={kernels!r}"
            )

    # ----------------------------------------------------------------- JSON

    def to_dict(self) -> dict:
        data = asdict(self)
        data["fitted"] = list(self.fitted)
        data["measurements"] = [dict(m) for m in self.measurements]
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> LatencyCalibration:
        if not isinstance(data, Mapping):
            raise InputError(f"A latency calibration must be a JSON object. Received: "
                             f"{type(data).__name__}")  # fmt: skip
        names = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - names)
        missing = sorted(
            n for n in ("board", "core", "clock_mhz", "kernels", "coefficients", "defaults",
                        "fitted") if n not in data
        )  # fmt: skip
        if unknown or missing:
            raise InputError(
                f"Not a tfnas latency calibration: expected the keys {sorted(names)}. Received: "
                + (f"unknown {unknown}" if unknown else f"no {missing}")
            )
        return cls(**{k: v for k, v in data.items()})

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> LatencyCalibration:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"A latency calibration must be JSON. Received: invalid JSON at line "
                             f"{e.lineno}, column {e.colno}: {e.msg}") from e  # fmt: skip
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_json(indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> LatencyCalibration:
        """Read a calibration written by :meth:`save` (``InputError`` naming the file otherwise)."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"Latency calibration {path} does not exist. Expected the JSON that "
                             f"`tfnas latency calibrate` writes. Received: {path}")  # fmt: skip
        try:
            return cls.from_json(path.read_text())
        except UnicodeDecodeError as e:
            raise InputError(f"{path} is not a text file. Expected a latency calibration JSON. "
                             f"Received: undecodable bytes at offset {e.start}") from e  # fmt: skip
        except (InputError, TypeError) as e:
            raise InputError(f"{path}: {e}") from e

    def describe(self) -> str:
        """A short line for reports: board, kernels and what was fitted."""
        return (f"calibrated on {len(self.measurements)} measurement(s) on {self.board} "
                f"({self.kernels} kernels), fitted {', '.join(self.fitted)}")  # fmt: skip


# ----------------------------------------------------------------- reading


def read_measurements(path: str | os.PathLike) -> list[Measurement]:
    """Read and check a measurements CSV (format in the module docstring).

    Raises
    ------
    InputError
        One line naming the file (and line) for a missing file or column, an
        unknown column or board (with the closest name), a model file that
        does not exist, a time that is not a positive number, a row with both
        or neither of ``cycles`` and ``ms``, an unknown kernel family, no rows,
        or rows for several boards or kernel families.
    """
    from tfnas.validation import closest, read_text

    path = Path(path)
    text = read_text(
        path, "Measurements file", "a CSV with the columns model, board and cycles or ms"
    )
    rows = list(csv.reader(text.splitlines()))
    rows = [(n, r) for n, r in enumerate(rows, 1) if any(c.strip() for c in r)]
    if not rows:
        raise InputError(f"{path} is empty. Expected a header (model,board,cycles or ms) and one row "
                         "per measurement. Received: no lines")  # fmt: skip
    header = [c.strip().lower() for c in rows[0][1]]
    for name in header:
        if name not in _COLUMNS:
            raise InputError(f"{path}: unknown column {name!r}{closest(name, _COLUMNS)}. Expected "
                             f"model, board, cycles or ms, and optionally kernels. Received: header "
                             f"{header}")  # fmt: skip
    missing = [c for c in ("model", "board") if c not in header]
    if missing or not {"cycles", "ms"} & set(header):
        need = missing + ([] if {"cycles", "ms"} & set(header) else ["cycles or ms"])
        raise InputError(f"{path}: missing column(s) {', '.join(need)}. Expected a header with model, "
                         f"board and cycles or ms. Received: header {header}")  # fmt: skip
    if len(header) != len(set(header)):
        raise InputError(f"{path}: a column is named twice. Expected each of {list(_COLUMNS)} at most "
                         f"once. Received: header {header}")  # fmt: skip
    out = []
    for line, raw in rows[1:]:
        where = f"{path} line {line}"
        if len(raw) > len(header):
            raise InputError(f"{where}: {len(raw)} fields. Expected at most {len(header)} (the header's "
                             f"columns). Received: {raw}")  # fmt: skip
        cells = [c.strip() for c in raw] + [""] * (len(header) - len(raw))
        row = dict(zip(header, cells, strict=True))
        board = row["board"]
        if board not in DEVICES:
            raise InputError(f"{where}: unknown board {board!r}{closest(board, DEVICES)}. Expected one "
                             f"of {sorted(DEVICES)} (tfnas devices). Received: board={board!r}")  # fmt: skip
        kernels = row.get("kernels") or "optimized"
        if kernels not in KERNELS:
            raise InputError(f"{where}: kernels must be one of {list(KERNELS)}. Received: "
                             f"kernels={kernels!r}{closest(kernels, KERNELS)}")  # fmt: skip
        given = [c for c in ("cycles", "ms") if row.get(c)]
        if len(given) != 1:
            raise InputError(f"{where}: give exactly one of cycles or ms. Received: "
                             + ", ".join(f"{c}={row.get(c, '')!r}" for c in ("cycles", "ms") if c in row))  # fmt: skip
        unit = given[0]
        try:
            value = float(row[unit])
        except ValueError:
            value = float("nan")
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"{where}: {unit} must be a positive number. Received: "
                             f"{unit}={row[unit]!r}")  # fmt: skip
        if not row["model"]:
            raise InputError(f"{where}: the model column is empty. Expected a .tflite path. "
                             f"Received: model=''")  # fmt: skip
        model_path = Path(row["model"])
        if not model_path.is_absolute():
            model_path = path.parent / model_path
        if not model_path.is_file():
            raise InputError(f"{where}: model file {model_path} does not exist. Expected a .tflite "
                             f"path relative to the CSV's folder. Received: model={row['model']!r}")  # fmt: skip
        cycles = value if unit == "cycles" else value * get_device(board).clock_mhz * 1e3
        out.append(Measurement(row["model"], str(model_path), board, cycles, kernels, line))
    if not out:
        raise InputError(f"{path} has a header but no measurements. Expected one row per measured "
                         "model. Received: 0 rows")  # fmt: skip
    for key in ("board", "kernels"):
        values = sorted({getattr(m, key) for m in out})
        if len(values) > 1:
            raise InputError(f"{path}: one calibration is for one board and kernel family. Expected "
                             f"one {key} in every row; split the file. Received: {key}s {values}")  # fmt: skip
    return out


# ----------------------------------------------------------------- fitting


def model_features(model, board: str, kernels: str = "optimized") -> tuple[dict[str, float], float]:
    """What a model's modelled cycles on ``board`` are linear in.

    Returns
    -------
    features, fixed:
        ``features[name]`` is the quantity that multiplies coefficient
        ``name`` (MACs, bytes moved, or the operator count for ``overhead``)
        over the operators run with ``kernels``; ``fixed`` is the default
        model's cycles of the operators that run with the other family
        (float operators, for example), whose rates a calibration leaves alone.
    """
    device = get_device(board)
    used_kernels = effective_kernels(device.core, kernels)
    table = default_cycle_table(device.core, kernels)
    features = dict.fromkeys(COEFFICIENTS, 0.0)
    fixed = 0.0
    for _sg, _op, kind, used, macs, moved in op_quantities(model, device.core, kernels):
        features["overhead"] += 1.0
        amount = macs or moved
        if used == used_kernels:
            features[kind] += float(amount)
        else:
            fixed += amount * table[used, kind]
    return features, fixed


def _resolve(coefficients: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(coefficients, str):
        if coefficients not in MODES:
            from tfnas.validation import closest

            raise InputError(f"coefficients must be one of {list(MODES)} or a list of names from "
                             f"{[*COEFFICIENTS, *GROUPS]}. Received: coefficients={coefficients!r}"
                             f"{closest(coefficients, [*MODES, *COEFFICIENTS, *GROUPS])}")  # fmt: skip
        return MODES[coefficients]
    names = tuple(coefficients)
    covered: dict[str, str] = {}
    for name in names:
        if name not in COEFFICIENTS and name not in GROUPS:
            from tfnas.validation import closest

            raise InputError(f"Unknown coefficient {name!r}{closest(name, [*COEFFICIENTS, *GROUPS])}. "
                             f"Expected names from {[*COEFFICIENTS, *GROUPS]}. Received: {list(names)}")  # fmt: skip
        for kind in GROUPS.get(name, (name,)):
            if kind in covered:
                raise InputError(f"Coefficient {kind} is fitted twice (in {covered[kind]!r} and "
                                 f"{name!r}). Expected each kind in one name at most. Received: "
                                 f"{list(names)}")  # fmt: skip
            covered[kind] = name
    if not names:
        raise InputError("coefficients is empty. Expected at least one name to fit. Received: []")
    return names


def _design(rows, names, defaults):
    """The NNLS system: columns are each name's default cycles; targets minus what stays fixed."""
    a = np.zeros((len(rows), len(names)))
    b = np.zeros(len(rows))
    for i, (features, fixed, measured) in enumerate(rows):
        covered = set()
        for j, name in enumerate(names):
            for kind in GROUPS.get(name, (name,)):
                a[i, j] += features[kind] * defaults[kind]
                covered.add(kind)
        rest = sum(features[k] * defaults[k] for k in COEFFICIENTS if k not in covered)
        b[i] = measured - fixed - rest
    return a, b


def _nnls(a: np.ndarray, b: np.ndarray, measured: np.ndarray) -> tuple[np.ndarray, int]:
    """Non-negative least squares of relative residuals; returns (x, rank of ``a``).

    Each row is divided by its measured cycles, so that a 10 M-cycle model does
    not drown a 5 k-cycle one, and each column is scaled to unit norm before
    :func:`scipy.optimize.nnls` (a positive scaling keeps the sign constraint).
    """
    from scipy.optimize import nnls

    weighted = a / measured[:, None]
    norms = np.linalg.norm(weighted, axis=0)
    norms[norms == 0] = 1.0
    scaled = weighted / norms
    rank = int(np.linalg.matrix_rank(scaled)) if scaled.size else 0
    x, _ = nnls(scaled, b / measured)
    return x / norms, rank


def fit_calibration(
    measurements: Sequence[Measurement],
    coefficients: str | Sequence[str] = "kinds",
) -> LatencyCalibration:
    """Fit the latency model's coefficients to measured cycles by non-negative least squares.

    Each fitted name is a non-negative multiplier on the default model's
    cycles of the kinds it covers; the residuals are relative (each row is
    divided by its measured cycles), so small and large models weigh alike.
    Names that no measured operator exercises are not fitted (they keep their
    default value). Every measurement is also predicted by a fit to all the
    others (leave-one-out).

    Parameters
    ----------
    measurements:
        From :func:`read_measurements`: one board, one kernel family.
    coefficients:
        ``"kinds"``, ``"groups"``, ``"scale"`` or a list of names (module docstring).

    Returns
    -------
    LatencyCalibration

    Raises
    ------
    InputError
        For no measurements, several boards or kernel families, unknown or
        overlapping names, fewer measurements than fitted names, or
        measurements whose operator mixes do not determine every fitted name
        (each message says what to fit instead).
    """
    names = _resolve(coefficients)
    if not measurements:
        raise InputError("No measurements. Expected at least one. Received: 0")
    boards = sorted({m.board for m in measurements})
    kernel_sets = sorted({m.kernels for m in measurements})
    if len(boards) > 1 or len(kernel_sets) > 1:
        raise InputError(f"One calibration is for one board and kernel family. Expected one of each. "
                         f"Received: boards {boards}, kernels {kernel_sets}")  # fmt: skip
    device = get_device(boards[0])
    kernels = effective_kernels(device.core, kernel_sets[0])
    table = default_cycle_table(device.core, kernels)
    defaults = {k: table[kernels, k] for k in (*MAC_KINDS, *BYTE_KINDS)}
    defaults["overhead"] = table["overhead"]
    rows = []
    for m in measurements:
        try:
            features, fixed = model_features(m.path, m.board, m.kernels)
        except (
            ValueError,
            OSError,
        ) as e:  # FlatbufferError and UnsupportedModelError are ValueErrors
            where = f"line {m.line}: " if m.line else ""
            raise InputError(f"{where}{m.model} is not a model tfnas can read: "
                             f"{' '.join(str(e).split())}") from e  # fmt: skip
        rows.append((features, fixed, m.cycles))
    observed = {k for f, _, _ in rows for k in COEFFICIENTS if f[k] > 0}
    names = tuple(n for n in names if observed & set(GROUPS.get(n, (n,))))
    if not names:
        raise InputError("None of the names to fit has an operator in the measured models. Expected "
                         f"models with operators of {list(observed)}. Received: coefficients={coefficients!r}")  # fmt: skip
    if len(rows) < len(names):
        raise InputError(
            f"{len(rows)} measurement(s) cannot determine the {len(names)} coefficients {list(names)} "
            "that the measured models exercise. Expected at least as many measurements as fitted "
            "coefficients (one more for a leave-one-out error): measure more models with other "
            "operator mixes, or fit fewer: coefficients='groups' (macs, bytes, overhead) or 'scale' "
            "(1), which keep the default model's ratios for the rest. "
            f"Received: {len(rows)} rows for coefficients={coefficients!r}"
        )
    a, b = _design(rows, names, defaults)
    measured = np.array([r[2] for r in rows], dtype=float)
    x, rank = _nnls(a, b, measured)
    if rank < len(names):
        raise InputError(
            f"The {len(rows)} measurements determine only {rank} of the {len(names)} coefficients "
            f"{list(names)}: the measured models' operator mixes are proportional. Expected models "
            "whose mixes differ, or fewer coefficients (coefficients='groups' or 'scale'). "
            f"Received: {len(rows)} rows"
        )
    multipliers = dict(zip(names, (float(v) for v in x), strict=True))
    coefs = dict(defaults)
    for name, mult in multipliers.items():
        for kind in GROUPS.get(name, (name,)):
            coefs[kind] = mult * defaults[kind]
    report = []
    fitted_cycles = a @ x + (measured - b)
    for i, m in enumerate(measurements):
        loo = None
        if len(rows) - 1 >= len(names):
            keep = [j for j in range(len(rows)) if j != i]
            xi, rank_i = _nnls(a[keep], b[keep], measured[keep])
            if rank_i == len(names):
                loo = float(a[i] @ xi + (m.cycles - b[i]))
        report.append({
            "model": m.model,
            "measured_cycles": float(m.cycles),
            "fitted_cycles": float(fitted_cycles[i]),
            "loo_cycles": loo,
            "loo_ratio": None if loo is None else loo / m.cycles,
        })  # fmt: skip
    return LatencyCalibration(board=device.name, core=device.core, clock_mhz=float(device.clock_mhz),
                              kernels=kernels, coefficients=coefs, defaults=defaults, fitted=names,
                              multipliers=multipliers, measurements=tuple(report))  # fmt: skip


def calibrate_csv(
    path: str | os.PathLike, coefficients: str | Sequence[str] = "kinds"
) -> LatencyCalibration:
    """:func:`read_measurements` then :func:`fit_calibration`, errors naming the file."""
    measurements = read_measurements(path)
    try:
        return fit_calibration(measurements, coefficients)
    except InputError as e:
        raise InputError(f"{path}: {e}") from e


def format_calibration(cal: LatencyCalibration) -> str:
    """The coefficient table and the leave-one-out table, as the CLI prints them."""
    lines = [
        f"{cal.board} ({cal.core}, {cal.kernels} kernels, {cal.clock_mhz:g} MHz): "
        f"{len(cal.measurements)} measurement(s), fitted {', '.join(cal.fitted)}",  # fmt: skip
        "",
        f"{'coefficient':<16} {'value':>12} {'default':>12}  {'unit':<12} status",
    ]
    fitted_kinds = {k for n in cal.fitted for k in GROUPS.get(n, (n,))}
    for name in COEFFICIENTS:
        status = "fitted" if name in fitted_kinds else "default"
        lines.append(f"{name:<16} {cal.coefficients[name]:>12.4g} {cal.defaults[name]:>12.4g}  "
                     f"{_UNITS[name]:<12} {status}")  # fmt: skip
    if cal.multipliers:
        lines.append("multipliers on the default model: "
                     + ", ".join(f"{n} {v:.4g}" for n, v in cal.multipliers.items()))  # fmt: skip
    lines += ["", "leave-one-out: each measurement predicted by a fit to all the others",
              f"{'model':<32} {'measured cycles':>16} {'fit (all)':>14} {'fit (others)':>14} {'others/measured':>16}"]  # fmt: skip
    for row in cal.measurements:
        loo = "-" if row["loo_cycles"] is None else f"{row['loo_cycles']:,.0f}"
        ratio = "not determined" if row["loo_ratio"] is None else f"{row['loo_ratio']:.3f}"
        lines.append(f"{Path(row['model']).name[:32]:<32} {row['measured_cycles']:>16,.0f} "
                     f"{row['fitted_cycles']:>14,.0f} {loo:>14} {ratio:>16}")  # fmt: skip
    if any(r["loo_ratio"] is None for r in cal.measurements):
        lines.append(f"'not determined': the other measurements cannot determine the "
                     f"{len(cal.fitted)} fitted coefficient(s) alone")  # fmt: skip
    return "\n".join(lines)
