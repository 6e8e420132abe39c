"""tfnas: Keras-native neural architecture search for microcontrollers.

``import tfnas`` does not import TensorFlow: the names that need it
(``build_model``, ``to_tflite``, ``evaluate_tflite``) load it on first use.
"""

from importlib import import_module

from tfnas.errors import (
    ConversionError,
    FlatbufferError,
    InfeasibleModelError,
    MutationError,
    SearchSpaceError,
    UnsupportedModelError,
)
from tfnas.genome import Genome, MicroSpace, MSNASSpace, analyze, get_space
from tfnas.memory import plan_memory

__version__ = "0.1.0"

_LAZY = {
    "inspect": ("tfnas.inspect", "inspect"),
    "build_model": ("tfnas.model", "build_model"),
    "to_tflite": ("tfnas.compress", "to_tflite"),
    "evaluate_tflite": ("tfnas.compress", "evaluate_tflite"),
}

__all__ = [
    "Genome",
    "MSNASSpace",
    "MicroSpace",
    "get_space",
    "analyze",
    "plan_memory",
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
