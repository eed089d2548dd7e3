"""Observing training: reports of runs (and, as they land, gradient-flow tools)."""

from retrograd.inspect.report import (plot_curves, plot_step_curves,  # noqa: F401
                                      write_run_report, write_step_report)

__all__ = ["plot_curves", "plot_step_curves", "write_run_report", "write_step_report"]
