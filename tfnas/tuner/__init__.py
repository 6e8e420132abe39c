"""The Tuner API: NASTuner on keras-tuner's BaseTuner, and the search report."""

from tfnas.tuner.report import build_report, plot_pareto, write_report
from tfnas.tuner.tuner import NASTuner

__all__ = ["NASTuner", "build_report", "write_report", "plot_pareto"]
