"""Timing shared by the benchmark scripts (run as ``python benchmarks/NAME.py``, which puts
this folder on the import path)."""

import platform
import statistics
import subprocess
import time


def median_step_seconds(step, steps):
    """The median wall time of ``steps`` calls of ``step()``, in seconds."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(steps_by_name, rounds, steps):
    """{name: median seconds per step}: one warm-up call each, then ``rounds`` rounds that
    time every step function in turn (so that the machine's drift hits all of them alike)."""
    for step in steps_by_name.values():
        step()
    times = {name: [] for name in steps_by_name}
    for _ in range(rounds):
        for name, step in steps_by_name.items():
            times[name].append(median_step_seconds(step, steps))
    return {name: statistics.median(values) for name, values in times.items()}


def cpu_model():
    """The CPU's model name, as lscpu says it."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"
