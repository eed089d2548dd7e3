"""What the benchmark scripts share: 2 BLAS threads, timing, the CPU's name, and batches of
the shipped tiny Shakespeare (run as ``python benchmarks/NAME.py``, which puts this folder on
the import path). Import it before NumPy: importing it sets the BLAS thread counts (unless
the environment already does), which NumPy reads when it loads."""

import argparse
import os
import platform
import statistics
import subprocess
import time

THREADS = 2
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, str(THREADS))


def step_seconds(step, steps):
    """The wall time of each of ``steps`` calls of ``step()``, in seconds."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def median_step_seconds(step, steps):
    """The median wall time of ``steps`` calls of ``step()``, in seconds."""
    return statistics.median(step_seconds(step, steps))


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


def shakespeare_batch(context, batch):
    """(x, y) int64 arrays (batch, context) of training windows of the shipped tiny
    Shakespeare (y: x shifted by one character), and the vocabulary size."""
    import numpy as np

    from retrograd.datasets import shakespeare_path
    from retrograd.datasets.text import load_text_splits

    train, _, tokenizer = load_text_splits(shakespeare_path(), context)
    x, y = train.get_batch(np.random.default_rng(0).integers(0, len(train), batch))
    return x.numpy(), y.numpy(), tokenizer.vocab_size


def rounds_and_steps(doc, rounds=5, steps=2):
    """The --rounds and --steps of a script that times interleaved rounds (``doc``: its
    module docstring, whose first line describes it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--steps", type=int, default=steps)
    return parser.parse_args()
