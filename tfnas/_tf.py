"""Import TensorFlow the one way tfnas supports: Keras 2 (tf_keras) for TF-MOT.

``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported, or
TF-MOT sees Keras 3 layers; ``tfnas/__init__.py`` sets it, and it always runs
before this module. Every tfnas module that needs TensorFlow imports it from here.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
