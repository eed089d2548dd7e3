"""Observing training: reports of runs (and, as they land, gradient-flow tools)."""

from retrograd.inspect.report import plot_curves, write_run_report  # noqa: F401

__all__ = ["plot_curves", "write_run_report"]
