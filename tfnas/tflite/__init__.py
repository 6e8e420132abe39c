"""Read and rewrite ``.tflite`` flatbuffers without TensorFlow."""

from tfnas.tflite.model import (
    Buffer,
    Model,
    Operator,
    Quantization,
    Subgraph,
    Tensor,
    read_model,
)
from tfnas.tflite.writer import reorder_operators, strip_strings

__all__ = [
    "Buffer",
    "Model",
    "Operator",
    "Quantization",
    "Subgraph",
    "Tensor",
    "read_model",
    "reorder_operators",
    "strip_strings",
]
