"""Keras model -> ``.tflite`` bytes, in the quantisation modes TFLM cares about.

Conversion always traces the model with a fixed batch of 1: a dynamic batch
leaves ops such as ``REDUCE_PROD`` (from a Dense on a 3-D tensor) that TFLM
does not have. Nothing is written to disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np

from tfnas._quiet import quiet
from tfnas._tf import keras, tf
from tfnas.errors import ConversionError

__all__ = ["MODES", "to_tflite", "representative_samples"]

logger = logging.getLogger("tfnas")

MODES = ("int8", "int16x8", "float32", "float16", "dynamic")


def representative_samples(x: np.ndarray, count: int = 100, seed: int = 0) -> np.ndarray:
    """Pick ``count`` calibration samples from ``x`` (without replacement, seeded)."""
    rng = np.random.default_rng(seed)
    index = rng.choice(len(x), size=min(count, len(x)), replace=False)
    return np.asarray(x[np.sort(index)], dtype=np.float32)


def to_tflite(
    model: keras.Model,
    mode: str = "int8",
    representative_data: np.ndarray | None = None,
    *,
    calibration_samples: int = 100,
    seed: int = 0,
) -> bytes:
    """Convert ``model`` to a TFLite flatbuffer.

    Parameters
    ----------
    model:
        A tf_keras model, plain or quantization-aware (TF-MOT).
    mode:
        ``"int8"``: full-integer post-training quantisation with int8 input and
        output (what TFLM runs best; for a QAT model the learned ranges are
        used). ``"int16x8"``: 16-bit activations, 8-bit weights. ``"float32"``,
        ``"float16"`` (float16 weights) and ``"dynamic"`` (dynamic-range int8
        weights) are for comparison; TFLM runs none of the last two.
    representative_data:
        Float inputs for calibration; required by ``int8`` and ``int16x8``.
    calibration_samples, seed:
        How many samples of ``representative_data`` calibrate, and which.

    Returns
    -------
    bytes
        The flatbuffer.

    Raises
    ------
    ConversionError
        If the mode is unknown, calibration data is missing, or the converter
        fails (its message is kept, on one line).
    """
    if mode not in MODES:
        raise ConversionError(
            f"Unknown conversion mode. Expected one of {list(MODES)}. Received: mode={mode!r}"
        )
    shape = (1, *model.input_shape[1:])
    if mode in ("int8", "int16x8"):
        if representative_data is None or len(representative_data) == 0:
            raise ConversionError(
                f"Mode {mode!r} needs representative_data for calibration. Received: "
                f"{None if representative_data is None else 'an empty array'}"
            )
        if tuple(representative_data.shape[1:]) != shape[1:]:
            raise ConversionError(
                f"representative_data does not match the model input. Expected samples of shape "
                f"{shape[1:]}. Received: {tuple(representative_data.shape[1:])}"
            )
    fn = tf.function(lambda t: model(t, training=False), autograph=False)
    concrete = fn.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in ("int8", "int16x8"):
        samples = representative_samples(representative_data, calibration_samples, seed)

        def calibration() -> Iterator[list[np.ndarray]]:
            for i in range(len(samples)):
                yield [samples[i : i + 1]]

        converter.representative_dataset = calibration
        if mode == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        else:
            ops = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            converter.target_spec.supported_ops = [ops]
            converter.inference_input_type = tf.int16
            converter.inference_output_type = tf.int16
    try:
        with quiet():  # the converter's C++ chatter (one `fully_quantize: ...` line per model)
            return bytes(converter.convert())
    except Exception as e:  # the converter raises many types; keep its message
        message = " ".join(str(e).split())
        raise ConversionError(f"The TFLite converter failed (mode={mode}): {message[:500]}") from e
