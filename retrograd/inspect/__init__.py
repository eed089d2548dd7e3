"""Observing training: the profiler, the FLOP counter, the memory ledger, reports of runs
(and, as they land, the gradient-flow tools)."""

from retrograd.inspect.flops import FlopCounter
from retrograd.inspect.memory import MemoryLedger, MemoryReport, memory_report
from retrograd.inspect.profiler import profile, record_function
from retrograd.inspect.report import (Report, Section, plot_curves, plot_step_curves,
                                      write_run_report, write_step_report)

__all__ = ["FlopCounter", "MemoryLedger", "MemoryReport", "memory_report", "profile",
           "record_function", "Report", "Section", "plot_curves", "plot_step_curves",
           "write_run_report", "write_step_report"]
