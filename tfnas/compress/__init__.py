"""Pruning, quantization and conversion to ``.tflite`` (TF-MOT + TFLiteConverter)."""

from tfnas.compress.convert import MODES, representative_samples, to_tflite
from tfnas.compress.evaluate import TfliteEvaluation, evaluate_tflite, predict_tflite
from tfnas.compress.prune import (
    channel_importance,
    prune_channels,
    prune_magnitude,
    pruning_schedule,
    sparsity,
)
from tfnas.compress.quantize import match_pooling_ranges, quantize_aware

__all__ = [
    "MODES",
    "to_tflite",
    "representative_samples",
    "TfliteEvaluation",
    "evaluate_tflite",
    "predict_tflite",
    "quantize_aware",
    "match_pooling_ranges",
    "pruning_schedule",
    "prune_magnitude",
    "sparsity",
    "channel_importance",
    "prune_channels",
]
