"""Objectives, device constraints, Pareto fronts and hypervolume (no TensorFlow)."""

from tfnas.objectives.constraints import Constraints
from tfnas.objectives.devices import DEVICES, Device, get_device
from tfnas.objectives.pareto import Objective, dominates, hypervolume, pareto_front, scalarise

__all__ = [
    "Constraints",
    "Device",
    "DEVICES",
    "get_device",
    "Objective",
    "dominates",
    "pareto_front",
    "hypervolume",
    "scalarise",
]
