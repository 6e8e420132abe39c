"""Genome -> tf_keras functional model."""

from tfnas.model.builder import build_model

__all__ = ["build_model"]
