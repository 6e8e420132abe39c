"""Test set-up: every random source is seeded before each test; no test needs the network."""

import os
import random
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 -- only for third-party code that uses the global state; tfnas never does
    if "tensorflow" in sys.modules:
        import tf_keras

        tf_keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"../shared is not beside the repository (looked in {SHARED})")
    return SHARED


@pytest.fixture
def data_file(tmp_path) -> Path:
    """A tiny three-class 8x8 task as an .npz (96 training and 48 test images)."""
    from tests.test_tuner import tiny_npz

    return tiny_npz(tmp_path / "tiny.npz")
