"""Import TensorFlow the one way tfnas supports: Keras 2 (tf_keras) for TF-MOT.

``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first imported, or
TF-MOT sees Keras 3 layers; ``tfnas/__init__.py`` sets it, and it always runs
before this module. Every tfnas module that needs TensorFlow imports it from here.
TensorFlow's own logging is silenced unless ``TFNAS_TF_LOGS=1`` (see :mod:`tfnas._quiet`).
"""

import logging
import os

from tfnas._quiet import quiet, tf_logs_wanted

if not tf_logs_wanted():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

with quiet():  # oneDNN, CUDA probing and absl's start-up lines go to descriptor 2
    import tensorflow as tf
    import tf_keras as keras

if not tf_logs_wanted():
    tf.get_logger().setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)

__all__ = ["tf", "keras"]
