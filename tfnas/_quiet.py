"""Keep TensorFlow's, absl's and the converter's own logging out of tfnas's output.

TensorFlow's C++ runtime writes straight to file descriptor 2 (oneDNN and CUDA
probing when it is imported, one ``fully_quantize: ...`` line per conversion),
where no Python logging setting reaches it. :func:`quiet` points descriptor 2
at ``/dev/null`` for the duration of such a call. Set ``TFNAS_TF_LOGS=1`` to
see everything again. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading

__all__ = ["quiet", "tf_logs_wanted"]

_lock = threading.RLock()  # re-entrant: a quiet block may call another


def tf_logs_wanted() -> bool:
    """Whether the user asked for TensorFlow's own logging (``TFNAS_TF_LOGS=1``)."""
    return os.environ.get("TFNAS_TF_LOGS", "") not in ("", "0")


@contextlib.contextmanager
def quiet():
    """Silence file descriptor 2 (C++ logging) while the block runs, unless TFNAS_TF_LOGS=1.

    Python exceptions are unaffected: an error raised inside the block still
    carries its message.
    """
    if tf_logs_wanted():
        yield
        return
    with _lock:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no real descriptor 2 (embedded interpreters)
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
