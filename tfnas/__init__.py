"""tfnas: Keras-native neural architecture search for microcontrollers.

``import tfnas`` is cheap: every public name but the errors loads its module on
first use, so ``tfnas inspect`` never imports TensorFlow or networkx, and the
names that need TensorFlow (``build_model``, ``to_tflite``,
``evaluate_tflite``) load it only when called for.
"""

import os
from importlib import import_module

# TF-MOT needs Keras 2: this must be set before TensorFlow is first imported,
# and keras-tuner imports TensorFlow, so it is set as soon as tfnas is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfnas.errors import (
    ConversionError,
    FlatbufferError,
    InfeasibleModelError,
    MutationError,
    SearchSpaceError,
    UnsupportedModelError,
)

__version__ = "0.1.0"

_LAZY = {
    "inspect": ("tfnas.inspection", "inspect"),
    "Genome": ("tfnas.genome", "Genome"),
    "MSNASSpace": ("tfnas.genome", "MSNASSpace"),
    "MicroSpace": ("tfnas.genome", "MicroSpace"),
    "get_space": ("tfnas.genome", "get_space"),
    "analyze": ("tfnas.genome", "analyze"),
    "plan_memory": ("tfnas.memory", "plan_memory"),
    "estimate_memory": ("tfnas.memory", "estimate_memory"),
    "build_model": ("tfnas.model", "build_model"),
    "to_tflite": ("tfnas.compress", "to_tflite"),
    "evaluate_tflite": ("tfnas.compress", "evaluate_tflite"),
}

__all__ = [
    "SearchSpaceError",
    "MutationError",
    "FlatbufferError",
    "UnsupportedModelError",
    "InfeasibleModelError",
    "ConversionError",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'tfnas' has no attribute {name!r}")
