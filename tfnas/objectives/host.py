"""Host time: LiteRT's own timing of a ``.tflite`` on this computer (no TensorFlow).

A relative signal between models, measured on the machine tfnas runs on: it
is **not** a microcontroller's latency (another ISA, caches, clock and
kernels), so tfnas never mixes it with the latency model's board numbers.

Examples
--------
>>> time_on_host("person_detect.tflite", runs=20).median_ms  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["HostTime", "time_on_host"]


@dataclass(frozen=True)
class HostTime:
    """Wall time of ``runs`` invokes on this machine, in milliseconds (host time, not board time)."""

    runs: int
    median_ms: float
    min_ms: float
    max_ms: float


def time_on_host(
    model: bytes | str | os.PathLike, *, runs: int = 50, warmup: int = 3, seed: int = 0
) -> HostTime:
    """Median wall time of one invoke of ``model`` with LiteRT's interpreter on this machine.

    The input is random (seeded) data of the input tensor's type; LiteRT's
    built-in kernels run single-threaded without the XNNPACK delegate (as
    :func:`tfnas.compress.evaluate_tflite` runs them), after ``warmup``
    untimed invokes.

    Parameters
    ----------
    model:
        The ``.tflite`` bytes or path.
    runs:
        Timed invokes (>= 1).
    warmup:
        Untimed invokes first (>= 0).
    seed:
        Seeds the random input.

    Returns
    -------
    HostTime

    Raises
    ------
    ValueError
        For a non-positive ``runs`` or a model LiteRT cannot load.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be an integer >= 1. Received: runs={runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0. Received: warmup={warmup!r}")
    content = model if isinstance(model, bytes | bytearray) else Path(model).read_bytes()
    try:
        interpreter = Interpreter(
            model_content=bytes(content),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            num_threads=1,
        )
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = " ".join(str(e).split()).split(".")[0]  # LiteRT repeats its reason per tensor
        raise ValueError(f"LiteRT cannot load the model. Expected a .tflite LiteRT can run. "
                         f"Received: {first}") from e  # fmt: skip
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        dtype = np.dtype(detail["dtype"])
        shape = [max(1, int(d)) for d in detail["shape"]]
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            value = rng.integers(info.min, int(info.max) + 1, size=shape, dtype=np.int64)
        else:
            value = rng.uniform(0, 1, size=shape)
        interpreter.set_tensor(detail["index"], value.astype(dtype))
    for _ in range(warmup):
        interpreter.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - start) * 1e3)
    return HostTime(runs, float(np.median(times)), float(min(times)), float(max(times)))
