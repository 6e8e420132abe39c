"""Run a ``.tflite`` model with the LiteRT interpreter and score it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

__all__ = ["TfliteEvaluation", "predict_tflite", "evaluate_tflite"]


@dataclass(frozen=True)
class TfliteEvaluation:
    """Accuracy of a ``.tflite`` model and its agreement with a reference.

    ``agreement`` is the fraction of samples on which the predicted class equals
    the reference's (e.g. the float Keras model); ``None`` without a reference.
    """

    accuracy: float
    agreement: float | None
    samples: int


def predict_tflite(tflite: bytes, x: np.ndarray) -> np.ndarray:
    """Float outputs of ``tflite`` on float inputs ``x``, one sample at a time.

    Quantised inputs and outputs are (de)quantised with the tensors' own scale
    and zero point, so int8, int16 and float models are called the same way.
    """
    # Built-in kernels without the default XNNPACK delegate: it fails to prepare some
    # small int8 graphs, and the built-in kernels are closer to what TFLM runs.
    interpreter = Interpreter(
        model_content=bytes(tflite),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    results = []
    for sample in np.asarray(x, dtype=np.float32):
        value = sample[None]
        if np.issubdtype(inp["dtype"], np.integer):
            info = np.iinfo(inp["dtype"])
            value = np.clip(np.round(value / in_scale + in_zero), info.min, info.max)
        interpreter.set_tensor(inp["index"], value.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])[0].astype(np.float32)
        if np.issubdtype(out["dtype"], np.integer):
            y = (y - out_zero) * out_scale
        results.append(y)
    return np.stack(results)


def evaluate_tflite(
    tflite: bytes, x: np.ndarray, y: np.ndarray, reference: np.ndarray | None = None
) -> TfliteEvaluation:
    """Accuracy of ``tflite`` on ``(x, y)`` and agreement with ``reference``.

    Parameters
    ----------
    tflite:
        The flatbuffer.
    x, y:
        Float inputs and integer labels.
    reference:
        Optional class scores (or labels) of a reference model on ``x``.
    """
    if len(x) != len(y):
        raise ValueError(
            f"x and y must have the same length. Received: len(x)={len(x)}, len(y)={len(y)}"
        )
    predicted = predict_tflite(tflite, x).argmax(axis=-1)
    accuracy = float(np.mean(predicted == np.asarray(y).reshape(-1)))
    agreement = None
    if reference is not None:
        ref = np.asarray(reference)
        ref = ref.argmax(axis=-1) if ref.ndim > 1 else ref
        agreement = float(np.mean(predicted == ref))
    return TfliteEvaluation(accuracy, agreement, len(x))
