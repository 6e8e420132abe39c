"""Checks on everything a search is given, run before anything trains.

Nothing here imports TensorFlow, so the CLI reports a bad setting, file or
array in a fraction of a second. Every message says what is wrong, what was
expected and what was received, in the Keras style; every error is a
:class:`~tfnas.errors.InputError` (a ``ValueError``).

- :func:`check_int`, :func:`check_number`, :func:`check_choice`: one setting.
- :func:`check_keys`: names in a mapping, an unknown one reported with the
  closest valid name.
- :func:`check_arrays`: samples and labels against the task (input shape,
  class count): rank, shape, dtype, NaN and inf, label range, one-hot labels.
- :func:`read_text`: a user's text file, or one error if it is missing or binary.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from tfnas.errors import InputError

__all__ = [
    "check_int",
    "check_number",
    "check_choice",
    "check_keys",
    "check_arrays",
    "check_headroom",
    "closest",
    "read_text",
]


def closest(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest valid name, or an empty string."""
    match = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_int(name: str, value, low: int = 1, high: int | None = None, *, optional: bool = False):
    """``value`` as an integer in ``[low, high]`` (``None`` passes when ``optional``).

    Raises
    ------
    InputError
        If ``value`` is not an integer (booleans and floats are refused) or is out of range.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(
            f"{name} must be an integer{_range(low, high)}. Received: {name}={value!r} "
            f"(type {type(value).__name__})"
        )
    if value < low or (high is not None and value > high):
        raise InputError(
            f"{name} must be an integer{_range(low, high)}. Received: {name}={value!r}"
        )
    return int(value)


def check_number(
    name: str,
    value,
    low: float | None = None,
    high: float | None = None,
    *,
    high_open: bool = False,
    optional: bool = False,
):
    """``value`` as a finite float in ``[low, high]`` (``[low, high)`` with ``high_open``)."""
    if value is None and optional:
        return None
    interval = (
        f" in [{low}, {high}{')' if high_open else ']'}"
        if high is not None
        else (f" >= {low}" if low is not None else "")
    )
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(
            f"{name} must be a number{interval}. Received: {name}={value!r} (type {type(value).__name__})"
        )
    ok = np.isfinite(value) and (low is None or value >= low)
    if high is not None:
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        raise InputError(f"{name} must be a number{interval}. Received: {name}={value!r}")
    return float(value)


def check_choice(name: str, value, choices: Sequence[str]):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise InputError(
            f"{name} must be one of {list(choices)}. Received: {name}={value!r}"
            + (closest(value, choices) if isinstance(value, str) else "")
        )
    return value


def check_headroom(value, name: str = "headroom"):
    """A board budget's headroom: a fraction in [0, 1) of RAM and flash, or whole bytes >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or (isinstance(value, (float, np.floating)) and not 0.0 <= value < 1.0)
        or value < 0
    ):
        raise InputError(
            f"{name} must be a fraction in [0, 1) of the board's RAM and flash, or a whole "
            f"number of bytes. Received: {name}={value!r}"
        )
    return value


def check_keys(where: str, given: Mapping | Iterable[str], valid: Iterable[str]) -> None:
    """Refuse any name of ``given`` that is not in ``valid``, naming the closest valid one."""
    valid = sorted(valid)
    for key in given:
        if key not in valid:
            raise InputError(
                f"Unknown setting {key!r} in {where}{closest(key, valid)}. Expected some of "
                f"{valid}. Received: {key}"
            )


def read_text(
    path: str | os.PathLike,
    what: str,
    expected: str,
    *,
    received: str | None = None,
    error: type[Exception] = InputError,
) -> str:
    """The text of a file the user named, or one clear ``error``.

    ``what`` names the file in the missing-file message ("Config file"),
    ``expected`` says what it should hold ("a YAML or JSON file"), and
    ``received`` how the user named it (default: the path).
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist. Expected {expected}. "
                    f"Received: {received or path}")  # fmt: skip
    try:
        return path.read_text()
    except UnicodeDecodeError as e:
        raise error(f"{path} is not a text file. Expected {expected}. Received: undecodable "
                    f"bytes at offset {e.start}") from e  # fmt: skip


def _range(low, high) -> str:
    if high is None:
        return f" >= {low}" if low is not None else ""
    return f" in [{low}, {high}]"


def _as_array(name: str, value) -> np.ndarray:
    if value is None:
        raise InputError(f"{name} is missing. Expected an array. Received: {name}=None")
    if not isinstance(value, np.ndarray):
        module = type(value).__module__.split(".")[0]
        if module in ("tensorflow", "tf_keras", "keras") or hasattr(value, "element_spec"):
            raise InputError(
                f"{name} must be a NumPy array (tfnas batches, shuffles and augments the data "
                f"itself). Received: {type(value).__module__}.{type(value).__name__}"
            )
        try:
            value = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise InputError(
                f"{name} must be an array. Received: {type(value).__name__} ({e})"
            ) from e
    return value


def check_arrays(
    x,
    y,
    *,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    name: str = "x",
    label_name: str = "y",
    min_classes: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Samples and integer labels checked against the task; returns ``(x, y)`` ready to train.

    ``x`` must be numeric, finite, non-empty and shaped ``(n, *input_shape)``;
    ``y`` must hold ``n`` integer labels in ``[0, num_classes)``, as a vector,
    a column, or one-hot rows (converted to integers). With ``min_classes``,
    at least that many distinct labels must occur.

    Raises
    ------
    InputError
        With what is wrong, what was expected and what was received.
    """
    x = _as_array(name, x)
    y = _as_array(label_name, y)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InputError(f"{name} must hold numbers. Received: dtype={x.dtype}")
    if x.ndim == 0 or len(x) == 0:
        raise InputError(
            f"{name} is empty. Expected at least one sample. Received: shape={x.shape}"
        )
    if input_shape is not None:
        want = tuple(int(d) for d in input_shape)
        if x.shape[1:] != want:
            hint = ""
            if x.shape[1:] == want[:-1] and want[-1] == 1:
                hint = f" Add the channel axis: {name}[..., None]."
            elif x.ndim == len(want) and x.shape == want:
                hint = f" A single sample needs a batch axis: {name}[None]."
            raise InputError(
                f"{name} does not match the task's input shape. Expected samples of shape "
                f"{want}, i.e. {name}.shape == (n, {', '.join(map(str, want))}).{hint} "
                f"Received: {name}.shape={x.shape}"
            )
    if np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.complexfloating):
        bad = ~np.isfinite(x)
        if bad.any():
            rows = np.unique(np.nonzero(bad.reshape(len(x), -1))[0])
            kinds = "NaN" if np.isnan(x).any() else "inf"
            raise InputError(
                f"{name} contains {kinds} values ({int(bad.sum())} in {len(rows)} samples, the first "
                f"at sample {int(rows[0])}). Expected finite inputs; drop or impute those samples. "
                f"Received: {int(bad.sum())} non-finite of {x.size}"
            )
        if np.issubdtype(x.dtype, np.complexfloating):
            raise InputError(f"{name} must be real. Received: dtype={x.dtype}")
    y = _labels(y, len(x), num_classes, label_name, name)
    if min_classes and len(np.unique(y)) < min_classes:
        raise InputError(
            f"{label_name} holds {len(np.unique(y))} distinct class(es). Expected at least "
            f"{min_classes} to learn a classifier. Received: classes {np.unique(y).tolist()}"
        )
    return x, y


def _labels(y: np.ndarray, n: int, num_classes: int | None, name: str, x_name: str) -> np.ndarray:
    if y.dtype == object or not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_):
        raise InputError(
            f"{name} must hold integer class labels. Received: dtype={y.dtype}"
            + (f", e.g. {y.flat[0]!r}" if y.size else "")
        )
    if y.ndim == 2 and y.shape[1] > 1:
        rows_ok = np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)
        if not rows_ok:
            raise InputError(
                f"{name} has shape {y.shape} but its rows are not one-hot. Expected integer labels "
                f"of shape (n,) (or one-hot rows). Received: first row {y[0].tolist()}"
            )
        if num_classes is not None and y.shape[1] != num_classes:
            raise InputError(
                f"{name} is one-hot with {y.shape[1]} columns. Expected {num_classes} columns "
                f"(one per class) or integer labels of shape (n,). Received: {name}.shape={y.shape}"
            )
        y = y.argmax(axis=1)  # one-hot rows -> the integer labels tfnas trains with
    elif y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim != 1:
        raise InputError(
            f"{name} must be a vector of integer labels. Expected shape ({n},). "
            f"Received: {name}.shape={y.shape}"
        )
    if len(y) != n:
        raise InputError(
            f"{x_name} and {name} differ in length. Expected one label per sample ({n}). "
            f"Received: {len(y)} labels"
        )
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            bad = y[~(np.isfinite(y) & (y == np.round(y)))]
            raise InputError(
                f"{name} must hold integer class labels. Received: non-integer values such as "
                f"{float(bad[0])!r}"
            )
    y = y.astype(np.int64)
    low, high = int(y.min()), int(y.max())
    if low < 0 or (num_classes is not None and high >= num_classes):
        upper = f"{num_classes - 1}" if num_classes is not None else "n_classes - 1"
        raise InputError(
            f"{name} holds labels outside [0, {upper}]. Expected integer labels from 0 to "
            f"{upper}. Received: labels from {low} to {high}"
        )
    return y
