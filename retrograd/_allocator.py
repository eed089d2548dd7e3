"""Keep freed memory for reuse: retrograd's stand-in for a caching allocator.

Training allocates and frees the same large arrays every step (im2col buffers, activations,
gradients). glibc's malloc serves blocks above a threshold (at most 32 MB by default) with
mmap and hands them back to the kernel when freed, so the next step's allocation of the same
size page-faults every page again (the kernel zeroes each one). Raising the mmap and trim
thresholds keeps those blocks in the heap, where the next step reuses them: measured 25%
faster for a 3x3 64->64 conv forward+backward on 32x64x32x32 and 5% for a ResNet-8 training
step (benchmarks/cnn.py; docs/architecture.md). The price is that the process keeps its peak
memory until it exits, as frameworks with a caching allocator do.

Applied once at import on Linux with glibc; set RETROGRAD_KEEP_FREED_MEMORY=0 to leave
malloc's defaults alone.
"""

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory():
    """Raise glibc's mmap and trim thresholds; True when applied, False where not possible
    (not Linux, not glibc) or switched off by RETROGRAD_KEEP_FREED_MEMORY=0."""
    if os.environ.get("RETROGRAD_KEEP_FREED_MEMORY", "1") == "0" \
            or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30) and mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1))
