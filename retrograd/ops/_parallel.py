"""Large array copies on two threads.

NumPy runs a copy on one core; BLAS calls already use both. A strided copy of tens of
megabytes (im2col's column matrix, a layout change of a large gradient) releases the GIL, so
two Python threads each copying half of it finish in about 60% of the time.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["copy_contiguous"]

# Below this many elements a copy is too short to pay for handing half of it to a thread.
_PARALLEL_MIN_ELEMENTS = 1 << 20
_THREADS = max(1, min(2, os.cpu_count() or 1))
_pool = None


def _executor():
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="retrograd-copy")
    return _pool


def copy_contiguous(view):
    """``view`` as a C-contiguous array, like np.ascontiguousarray (``view`` itself when it is
    contiguous already), the copy split over two threads along its first axis when large.

    Example:
        >>> x = np.arange(12).reshape(3, 4)
        >>> copy_contiguous(x.T).tolist()
        [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
    """
    if view.flags.c_contiguous:
        return view
    out = np.empty(view.shape, dtype=view.dtype)
    if view.size < _PARALLEL_MIN_ELEMENTS or _THREADS < 2 or view.shape[0] < 2:
        np.copyto(out, view)
        return out
    half = view.shape[0] // 2
    second = _executor().submit(np.copyto, out[half:], view[half:])
    np.copyto(out[:half], view[:half])
    second.result()
    return out

