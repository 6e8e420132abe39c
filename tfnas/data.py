"""Datasets from files on this machine: scikit-learn's 8x8 digits and ``.npz`` archives.

Nothing here downloads. Images come back as float32 in [0, 1] with a channel
axis (``(n, h, w, c)``), labels as int64.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfnas.errors import InputError
from tfnas.validation import check_arrays

__all__ = ["Dataset", "load_digits", "load_npz"]


@dataclass(frozen=True)
class Dataset:
    """A train/test split with its input shape and class count."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def subset(self, train: int | None = None, test: int | None = None, seed: int = 0) -> Dataset:
        """A seeded random subset (``None`` keeps a split whole)."""
        rng = np.random.default_rng(seed)

        def pick(x, y, n):
            if n is None or n >= len(x):
                return x, y
            index = np.sort(rng.choice(len(x), size=n, replace=False))
            return x[index], y[index]

        xtr, ytr = pick(self.x_train, self.y_train, train)
        xte, yte = pick(self.x_test, self.y_test, test)
        return Dataset(xtr, ytr, xte, yte, self.name)


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), split and seeded."""
    from sklearn.datasets import load_digits as sk_digits

    digits = sk_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - test_fraction))
    train, test = order[:cut], order[cut:]
    return Dataset(x[train], y[train], x[test], y[test], "digits8x8")


def _prepare_x(x: np.ndarray, key: str, path: Path, signals: bool = False) -> np.ndarray:
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InputError(f"{path}: {key} must be a numeric array of samples. "
                         f"Received: dtype={x.dtype}, shape={x.shape}")  # fmt: skip
    if np.iscomplexobj(x):
        raise InputError(f"{path}: {key} must be a numeric array of real-valued samples. "
                         f"Received: dtype={x.dtype}")  # fmt: skip
    if x.ndim < 2 or len(x) == 0:
        raise InputError(f"{path}: {key} must hold at least one sample of at least one value. "
                         f"Received: shape={x.shape}")  # fmt: skip
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype(np.float32) / scale
    if x.ndim == 3 and not signals:
        x = x[..., None]  # (n, h, w) grey images -> (n, h, w, 1)
    return x


def load_npz(path: str | Path) -> Dataset:
    """Load ``x_train, y_train, x_test, y_test`` from an ``.npz`` file.

    uint8 images are scaled to [0, 1]; ``(n, h, w)`` arrays are grey images
    and gain a channel axis, unless the archive also holds ``layout="signals"``
    (``np.savez(..., layout="signals")``): then ``(n, length, channels)`` stays
    1-D, for sensor windows such as accelerometer axes. Labels may be integers (or
    integral floats) or one-hot rows. Everything is checked with
    :func:`tfnas.validation.check_arrays` (finite samples, matching shapes and
    lengths, labels in range, two classes at least) before it is returned.

    Raises
    ------
    InputError
        If the file is missing or not an ``.npz`` of numeric arrays, lacks a
        key, or its arrays do not fit together.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Data file {path} does not exist. Expected an .npz with x_train, y_train, "
                         f"x_test, y_test. Received: {path}")  # fmt: skip
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(
            f"{path} is not an .npz archive of arrays. Expected an .npz with x_train, y_train, "
            f"x_test, y_test (np.savez). Received: a file np.load cannot read as one"
        ) from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise InputError(f"{path} holds a single array, not an .npz archive. Expected x_train, "
                         "y_train, x_test, y_test saved with np.savez. Received: one .npy array")  # fmt: skip
    with archive as data:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data.files]
        if missing:
            raise InputError(
                f"{path} lacks arrays. Expected x_train, y_train, x_test, y_test. "
                f"Received: {sorted(data.files)} (missing {missing})"
            )
        keys = [
            "x_train",
            "y_train",
            "x_test",
            "y_test",
            *(["layout"] if "layout" in data.files else []),
        ]
        try:
            arrays = {k: data[k] for k in keys}
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            raise InputError(f"{path}: an array cannot be read ({' '.join(str(e).split())}). "
                             "Expected numeric arrays saved with np.savez") from e  # fmt: skip
    layout = arrays.get("layout")
    if layout is not None and (layout.shape != () or str(layout) not in ("images", "signals")):
        raise InputError(f"{path}: layout must be 'images' or 'signals' (a string saved with "
                         f"np.savez). Received: layout={layout.tolist()!r}")  # fmt: skip
    signals = layout is not None and str(layout) == "signals"
    x_train = _prepare_x(arrays["x_train"], "x_train", path, signals)
    x_test = _prepare_x(arrays["x_test"], "x_test", path, signals)
    try:
        x_train, y_train = check_arrays(
            x_train, arrays["y_train"], name="x_train", label_name="y_train"
        )
        x_test, y_test = check_arrays(x_test, arrays["y_test"], input_shape=x_train.shape[1:],
                                      name="x_test", label_name="y_test", min_classes=0)  # fmt: skip
    except InputError as e:
        raise InputError(f"{path}: {e}") from e
    return Dataset(x_train, y_train, x_test, y_test, path.stem)
