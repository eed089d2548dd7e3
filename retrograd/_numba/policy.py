"""When a compiled kernel runs on all the threads: when its array is large enough to pay for
waking them (PARALLEL_MIN elements) and when no other pool's threads hold the cores.

OpenBLAS's worker threads keep spinning for about 2^28 cycles (~0.1 s) after each matrix
product, waiting for the next one; on a 2-core machine a parallel kernel that starts then
finds one core taken and waits for it (benchmarks/kernel_threads.py, on a 2-core Xeon: a
64K-element SGD update right after a GEMM took 5,911 us in parallel with OpenBLAS's default
spin, 15 us with OPENBLAS_THREAD_TIMEOUT=4, 19 us serially).

So retrograd runs **one thread pool**, Numba's, for both (retrograd/_numba/gemm.py): NumPy's
OpenBLAS is set to one thread, and retrograd's matrix products (retrograd/ops/_matmul.py)
call it from each of Numba's threads on a share of the work; nothing else spins, and the
kernels run on all threads. This changes the BLAS threads of the whole process: the user's
own NumPy products run on one thread once retrograd's kernels are loaded (the first op that
uses them). Where the pool cannot run (NumPy's BLAS is not the ILP64 OpenBLAS of its wheels)
BLAS keeps its threads, and the kernels run on all threads only where the user has shortened
the spin (OPENBLAS_THREAD_TIMEOUT of 12 or less, set before NumPy is imported; retrograd
does not set it: every matrix product then wakes the BLAS threads again, and the MLP
training step took 13% longer, 1.79 ms against 1.58).

``twins`` compiles a kernel whose outer loop is ``numba.prange`` twice, serial and parallel
(as two functions of their own, so that Numba's disk cache keeps both).
"""

import os
import types

import numba

__all__ = ["PARALLEL_MIN", "use_threads", "parallel", "twins"]

PARALLEL_MIN = 1 << 16
_LONGEST_SHORT_SPIN = 12     # OPENBLAS_THREAD_TIMEOUT: 2^12 cycles, ~2 us
_ALLOWED = [False]


def use_threads(count):
    """Let kernels and matrix products run on ``count`` threads where that pays: more than
    one, with the one pool, or OpenBLAS's threads spinning briefly (retrograd/_fast.py calls
    this when it loads Numba, retrograd.set_num_threads when the count changes)."""
    from retrograd._numba import gemm

    if gemm.AVAILABLE:
        gemm.use_pool(count)
        _ALLOWED[0] = count > 1
        return
    spin = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "").strip()
    _ALLOWED[0] = count > 1 and spin.isdigit() and int(spin) <= _LONGEST_SHORT_SPIN


def _forked_child():
    """In a child made by fork(): serial kernels and products on the calling thread. GNU
    OpenMP (Numba's threads) aborts a forked child that starts a parallel region after the
    parent ran one; a child that wants threads can call retrograd.set_num_threads."""
    _ALLOWED[0] = False
    from retrograd._numba import gemm

    gemm.use_pool(1)


os.register_at_fork(after_in_child=_forked_child)


def parallel(size):
    """Whether a kernel over ``size`` elements should run on all threads."""
    return _ALLOWED[0] and size >= PARALLEL_MIN


class Twins:
    """A kernel compiled serial and parallel; ``pick(size)`` chooses by ``parallel``."""

    def __init__(self, serial, parallel_version):
        self.serial, self.parallel = serial, parallel_version

    def pick(self, size):
        return self.parallel if parallel(size) else self.serial


def twins(**options):
    """Decorator: the function as Twins, each numba.njit(cache=True, error_model="numpy",
    **options). NumPy's error model (x / 0 is inf or NaN, as in NumPy) also lets LLVM
    vectorize loops that divide: Python's adds a zero test per division (an Adam update ran
    7x slower serially with it)."""
    options = {"error_model": "numpy", **options}

    def compile_both(func):
        return Twins(numba.njit(cache=True, **options)(_renamed(func, "_serial")),
                     numba.njit(cache=True, parallel=True, **options)(
                         _renamed(func, "_parallel")))
    return compile_both


def _renamed(func, suffix):
    copy = types.FunctionType(func.__code__, func.__globals__, func.__name__ + suffix,
                              func.__defaults__, func.__closure__)
    copy.__qualname__ = func.__qualname__ + suffix
    copy.__module__ = func.__module__
    copy.__doc__ = func.__doc__
    return copy
