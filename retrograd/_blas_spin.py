"""OpenBLAS's idle spin, shortened before NumPy loads it (retrograd/__init__.py imports this
module first). OpenBLAS's worker threads wait for the next matrix product by spinning for
2^OPENBLAS_THREAD_TIMEOUT cycles (28 by default: ~0.1 s) and hold a core all that time, which
a compiled kernel running on every thread then waits for (retrograd/_numba/policy.py has the
figures). With 2^4 cycles they sleep at once; the next product wakes them.

The variable is read by OpenBLAS when NumPy is imported, so it is set only if NumPy is not
loaded yet and the user has not set it; a program that imports NumPy first can set
OPENBLAS_THREAD_TIMEOUT=4 itself (else the compiled kernels run on one thread).
"""

import os
import sys

__all__ = ["short_spin"]

_VARIABLE = "OPENBLAS_THREAD_TIMEOUT"
_SHORT = 4
_LONGEST_SHORT = 12     # 2^12 cycles: ~2 us

if "numpy" not in sys.modules:
    os.environ.setdefault(_VARIABLE, str(_SHORT))


def short_spin():
    """Whether OpenBLAS's threads spin briefly (OPENBLAS_THREAD_TIMEOUT <= 12)."""
    value = os.environ.get(_VARIABLE, "").strip()
    return value.isdigit() and int(value) <= _LONGEST_SHORT
