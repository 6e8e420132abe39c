"""Import keras-tuner the quiet way: after TensorFlow (see :mod:`tfnas._tf`).

keras-tuner imports TensorFlow and TensorBoard itself; importing it first
would let TensorFlow's start-up logging through. Every tfnas module that
needs keras-tuner imports it from here.
"""

from tfnas._quiet import quiet
from tfnas._tf import tf  # noqa: F401  TensorFlow first, with its logging silenced

with quiet():
    import keras_tuner

__all__ = ["keras_tuner"]
