"""Exceptions raised by tfnas.

Every message says what was wrong, what was expected and what was received, so
that a failed candidate can be logged and skipped without reading a traceback.
"""

__all__ = [
    "TfnasError",
    "SearchSpaceError",
    "MutationError",
    "FlatbufferError",
    "UnsupportedModelError",
    "InfeasibleModelError",
    "ConversionError",
    "InputError",
    "TrialsFailedError",
]


class TfnasError(Exception):
    """Base class of every error raised on purpose by tfnas."""


class SearchSpaceError(TfnasError, ValueError):
    """A genome or a search space is invalid (structure, op, parameter, shape, JSON)."""


class MutationError(SearchSpaceError):
    """A mutation cannot be applied to this genome; the message says why."""


class FlatbufferError(TfnasError, ValueError):
    """A `.tflite` file is truncated, corrupted or not a TFLite flatbuffer."""


class UnsupportedModelError(TfnasError):
    """TFLM would refuse to allocate this model on the chosen target."""


class InfeasibleModelError(TfnasError):
    """A candidate breaks a device constraint (arena, flash, MACs, latency)."""


class ConversionError(TfnasError):
    """The TFLite converter could not turn a model into a flatbuffer."""


class InputError(TfnasError, ValueError):
    """Data, labels, a setting or a config given to a search is wrong; nothing was trained."""


class TrialsFailedError(TfnasError, RuntimeError):
    """Several trials in a row failed; the completed ones are kept and the search can resume."""
