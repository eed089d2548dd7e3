"""Timing shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, which puts
this folder on the import path)."""

import statistics
import time


def median_step_seconds(step, steps):
    """The median wall time of ``steps`` calls of ``step()``, in seconds."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
