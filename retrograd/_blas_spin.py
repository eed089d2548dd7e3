"""Whether OpenBLAS's idle threads spin briefly, which the compiled kernels need to run on
every thread (retrograd/_numba/policy.py).

OpenBLAS's worker threads wait for the next matrix product by spinning for
2^OPENBLAS_THREAD_TIMEOUT cycles (28 by default: ~0.1 s) and hold a core all that time; a
compiled kernel running on both cores then waits for it (~4 ms, a scheduler tick). With a
short spin (OPENBLAS_THREAD_TIMEOUT=4, set before NumPy is imported) the parallel kernels pay,
but every matrix product must wake the BLAS threads again: the MLP training step of
benchmarks/vs_torch.py took ~20% longer. retrograd leaves the variable to the user: by
default BLAS owns both cores and the compiled kernels run on one thread.
"""

import os

__all__ = ["short_spin"]

_VARIABLE = "OPENBLAS_THREAD_TIMEOUT"
_LONGEST_SHORT = 12     # 2^12 cycles: ~2 us


def short_spin():
    """Whether OpenBLAS's threads spin briefly (OPENBLAS_THREAD_TIMEOUT <= 12)."""
    value = os.environ.get(_VARIABLE, "").strip()
    return value.isdigit() and int(value) <= _LONGEST_SHORT
