"""Observing training: reports of runs (and, as they land, gradient-flow tools)."""

from retrograd.inspect.report import (Report, Section, plot_curves, plot_step_curves,
                                      write_run_report, write_step_report)

__all__ = ["Report", "Section", "plot_curves", "plot_step_curves", "write_run_report",
           "write_step_report"]
