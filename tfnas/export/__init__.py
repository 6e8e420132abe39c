"""Export a model to firmware: C arrays, the op resolver, the arena size, board programs.

Nothing here imports TensorFlow.
"""

from tfnas.export.boards import BOARDS, DEPLOY_DIR, Board, render_board
from tfnas.export.c_array import (
    CUSTOM_RESOLVER_METHODS,
    RESOLVER_METHODS,
    TFLM_COMMIT,
    IOTensor,
    arena_size,
    io_tensors,
    resolver_methods,
    resolver_snippet,
    to_c_source,
    write_c_files,
)

__all__ = [
    "BOARDS",
    "Board",
    "CUSTOM_RESOLVER_METHODS",
    "DEPLOY_DIR",
    "IOTensor",
    "RESOLVER_METHODS",
    "TFLM_COMMIT",
    "arena_size",
    "io_tensors",
    "render_board",
    "resolver_methods",
    "resolver_snippet",
    "to_c_source",
    "write_c_files",
]
