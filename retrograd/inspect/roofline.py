"""The machine's roofline: its peak GEMM throughput (GFLOP/s) and memory bandwidth (GB/s),
measured once and cached, against which the profiler places each op.

GEMM peak: the best of several float32 1024x1024 @ 1024x1024 products as retrograd's ops
make them (2 * 1024^3 FLOPs each): on its one thread pool where it has one
(retrograd/ops/_matmul.py), else through NumPy's BLAS with the threads the process has.
Memory bandwidth: the best of several copies of a 64 MiB float32 array into another (bytes
read + bytes written per second), far larger than the caches. Best-of, because the peak is
what the machine can do; an op's place is its achieved rate over min(peak GFLOP/s, FLOPs per
byte x peak GB/s).

The figures are cached in ``$RETROGRAD_CACHE_DIR/roofline.json`` (default
``~/.cache/retrograd``), keyed by CPU model, BLAS and pool thread counts and NumPy version, so a new
machine or a new NumPy measures again; ``machine_peaks(refresh=True)`` re-measures.
"""

import json
import math
import os
import platform
import time
from typing import NamedTuple

import numpy as np

from retrograd.ops._matmul import matmul, pool_threads
from retrograd.utils.serialization import atomic_write

__all__ = ["Peaks", "machine_peaks", "measure_peaks"]

_GEMM_SIZE = 1024
_COPY_BYTES = 64 * 2 ** 20
_ROUNDS = 5


class Peaks(NamedTuple):
    """The roofline's two peaks, and the key of the machine they were measured on."""

    gflops: float
    gbytes_per_s: float
    machine: str


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return os.environ.get("OMP_NUM_THREADS", "default")
    return ",".join(str(p.get("num_threads")) for p in threadpool_info()
                    if p.get("user_api") == "blas") or "default"


def machine_key():
    """What the cached peaks depend on: CPU model, BLAS and pool threads, NumPy version."""
    pool = pool_threads()         # first: loading the pool sets NumPy's BLAS to one thread
    return (f"{_cpu_model()} | blas threads {_blas_threads()} | pool threads {pool} | "
            f"numpy {np.__version__}")


def _best_seconds(run):
    best = float("inf")
    for _ in range(_ROUNDS):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def measure_peaks():
    """Measure the two peaks now (about a second)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((_GEMM_SIZE, _GEMM_SIZE), dtype=np.float32)
    b = rng.standard_normal((_GEMM_SIZE, _GEMM_SIZE), dtype=np.float32)
    out = np.empty_like(a)
    gemm = _best_seconds(lambda: matmul(a, b, out=out))
    src = np.ones(_COPY_BYTES // 4, np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # touch every page before timing
    copy = _best_seconds(lambda: np.copyto(dst, src))
    return Peaks(2 * _GEMM_SIZE ** 3 / gemm / 1e9, 2 * _COPY_BYTES / copy / 1e9, machine_key())


def _cache_path():
    folder = os.environ.get("RETROGRAD_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "retrograd")
    return os.path.join(folder, "roofline.json")


def machine_peaks(refresh=False):
    """The peaks of this machine: from the cache when it holds this machine's key, else
    measured now and cached (a cache that cannot be written is skipped, not an error)."""
    path, key = _cache_path(), machine_key()
    cached = {}
    try:
        with open(path, encoding="utf-8") as f:
            cached = json.load(f)
    except (OSError, ValueError):
        cached = {}
    entry = cached.get(key) if isinstance(cached, dict) and not refresh else None
    if isinstance(entry, dict):
        found = [_positive(entry.get(name)) for name in ("gflops", "gbytes_per_s")]
        if None not in found:   # else a damaged entry: measured again
            return Peaks(*found, key)
    peaks = measure_peaks()
    cached = cached if isinstance(cached, dict) else {}
    cached[key] = {"gflops": peaks.gflops, "gbytes_per_s": peaks.gbytes_per_s}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, lambda f: f.write(json.dumps(cached, indent=1).encode()),
                     owner="roofline cache")
    except OSError:
        pass
    return peaks


def _positive(value):
    """``value`` as a finite positive float, or None (not a number: a damaged cache)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None
