"""The Tuner API: NASTuner on keras-tuner's BaseTuner, and the search report."""

from tfnas.tuner.family import format_family, train_family, write_family
from tfnas.tuner.report import build_report, plot_pareto, write_report
from tfnas.tuner.tuner import NASTuner

__all__ = [
    "NASTuner",
    "build_report",
    "write_report",
    "plot_pareto",
    "train_family",
    "write_family",
    "format_family",
]
