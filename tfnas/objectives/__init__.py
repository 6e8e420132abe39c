"""Objectives, device constraints, Pareto fronts, hypervolume and latency (no TensorFlow).

The latency model (:mod:`tfnas.objectives.latency`) reads flatbuffers, so it
loads on first use and ``import tfnas.objectives`` stays cheap.
"""

from importlib import import_module

from tfnas.objectives.constraints import Constraints
from tfnas.objectives.devices import DEVICES, Device, get_device
from tfnas.objectives.pareto import Objective, dominates, hypervolume, pareto_front, scalarise

_LAZY = {"estimate_latency", "LatencyEstimate", "OpLatency", "DEFAULT_LATENCY_DEVICE"}
#: Latency calibration (tfnas.objectives.calibration), also loaded on first use.
_LAZY_CALIBRATION = {"LatencyCalibration", "calibrate_csv", "fit_calibration", "read_measurements"}

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
    *sorted(_LAZY),
    *sorted(_LAZY_CALIBRATION),
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module("tfnas.objectives.latency"), name)
    if name in _LAZY_CALIBRATION:
        return getattr(import_module("tfnas.objectives.calibration"), name)
    raise AttributeError(f"module 'tfnas.objectives' has no attribute {name!r}")
