"""When a compiled kernel runs on all the threads: only when its array is large enough to
pay for waking them (PARALLEL_MIN elements) and when BLAS's threads do not spin.

OpenBLAS's worker threads keep spinning for about 2^28 cycles (~0.1 s) after each matrix
product, waiting for the next one; on a 2-core machine a parallel kernel that starts then
finds one core taken and waits for it. Measured on the 2-core Xeon of the notes: a 64K-element
SGD update took 17 us in parallel right after a GEMM with a short spin, and 3,800 us with
OpenBLAS's default (23 us serial). retrograd/_blas_spin.py shortens the spin when it can
(before NumPy loads OpenBLAS); when it could not, every kernel runs serially.

``twins`` compiles a kernel whose outer loop is ``numba.prange`` twice, serial and parallel
(as two functions of their own, so that Numba's disk cache keeps both).
"""

import types

import numba

__all__ = ["PARALLEL_MIN", "allow_parallel", "parallel", "twins"]

PARALLEL_MIN = 1 << 16
_ALLOWED = [False]


def allow_parallel(flag):
    """Let kernels run on all threads (retrograd/_fast.py decides, once)."""
    _ALLOWED[0] = bool(flag)


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
    """Decorator: the function as Twins, each numba.njit(cache=True, **options)."""
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
