"""Datasets from files on this machine: scikit-learn's 8x8 digits and ``.npz`` archives.

Nothing here downloads. Images come back as float32 in [0, 1] with a channel
axis (``(n, h, w, c)``), labels as int64.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


def _prepare_x(x: np.ndarray, key: str, path: Path) -> np.ndarray:
    if x.ndim < 2 or not np.issubdtype(x.dtype, np.number):
        raise ValueError(
            f"{path}: {key} must be a numeric array of samples. Received: dtype={x.dtype}, shape={x.shape}"
        )
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    x = x.astype(np.float32) / scale
    if x.ndim == 3 and key.startswith("x"):
        x = x[..., None]  # (n, h, w) grey images -> (n, h, w, 1)
    return x


def load_npz(path: str | Path) -> Dataset:
    """Load ``x_train, y_train, x_test, y_test`` from an ``.npz`` file.

    uint8 images are scaled to [0, 1]; ``(n, h, w)`` images gain a channel axis;
    ``(n, length, channels)`` stays 1-D.

    Raises
    ------
    ValueError
        If the file lacks a key, or the arrays do not fit together.
    """
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in data.files]
        if missing:
            raise ValueError(
                f"{path} lacks arrays. Expected x_train, y_train, x_test, y_test. "
                f"Received: {sorted(data.files)} (missing {missing})"
            )
        x_train = _prepare_x(data["x_train"], "x_train", path)
        x_test = _prepare_x(data["x_test"], "x_test", path)
        y_train = data["y_train"].astype(np.int64).reshape(-1)
        y_test = data["y_test"].astype(np.int64).reshape(-1)
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError(
            f"{path}: samples and labels differ in number. Received: x_train {len(x_train)}, "
            f"y_train {len(y_train)}, x_test {len(x_test)}, y_test {len(y_test)}"
        )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"{path}: train and test samples differ in shape. Received: {x_train.shape[1:]} "
            f"and {x_test.shape[1:]}"
        )
    return Dataset(x_train, y_train, x_test, y_test, path.stem)
