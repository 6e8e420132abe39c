"""A replica of TFLM's arena planning: lifetimes, greedy planner, tail, reordering.

Nothing here imports TensorFlow.
"""

from tfnas.memory.arena import MemoryPlan, PlacedBuffer, plan_memory
from tfnas.memory.planner import BufferSpec, GreedyPlan, GreedyPlanner, find_overlaps, greedy_plan
from tfnas.memory.reorder import ReorderResult, best_order
from tfnas.memory.targets import TARGETS, Target, get_target

__all__ = [
    "BufferSpec",
    "EstimatedOp",
    "GenomeEstimate",
    "estimate_memory",
    "GreedyPlan",
    "GreedyPlanner",
    "MemoryPlan",
    "PlacedBuffer",
    "ReorderResult",
    "TARGETS",
    "Target",
    "best_order",
    "find_overlaps",
    "get_target",
    "greedy_plan",
    "plan_memory",
]


def __getattr__(name: str):
    # The genome estimate needs tfnas.genome (networkx); load it only when asked for,
    # so that planning a flatbuffer stays fast to import.
    if name in ("EstimatedOp", "GenomeEstimate", "estimate_memory"):
        from tfnas.memory import estimate

        return getattr(estimate, name)
    raise AttributeError(f"module 'tfnas.memory' has no attribute {name!r}")
