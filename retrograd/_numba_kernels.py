"""Numba kernels (the 'fast' extra) beside the NumPy code they replace (retrograd/_fast.py
chooses between them). Each kernel gives the NumPy path's result bit for bit.

float32 <-> bfloat16, the conversions autocast makes for most activations and gradients:
ml_dtypes' cast takes ~1 ns per element; these compiled loops ~0.3 (bfloat16 autocast of the
GPT case study: 1.49x the float32 step with ml_dtypes' cast, 1.10x with these). They run on
one thread on purpose: spread over the cores they were 7x faster alone and 2x slower in a
training step, where they fight BLAS's threads for the cores. bfloat16 is the top half of a
float32, rounded to nearest even:

    bits16 = (u + 0x7FFF + ((u >> 16) & 1)) >> 16          u = the float32's bits

except for NaN, whose payload could round to inf: it becomes the quiet NaN 0x7FC0 with its
sign, as ml_dtypes makes it. Back to float32, the half is shifted up (exact).
"""

import numba
import numpy as np

__all__ = ["float32_to_bfloat16", "bfloat16_to_float32"]


@numba.njit(cache=True)
def _narrow_bits(src, dst):
    for i in range(src.size):
        u = src[i]
        if (u & 0x7F800000) == 0x7F800000 and (u & 0x007FFFFF) != 0:
            dst[i] = ((u >> 16) & 0x8000) | 0x7FC0
        else:
            dst[i] = (u + 0x7FFF + ((u >> 16) & 1)) >> 16


@numba.njit(cache=True)
def _widen_bits(src, dst):
    for i in range(src.size):
        dst[i] = np.uint32(src[i]) << 16


def float32_to_bfloat16(array, bfloat16):
    """A C-contiguous float32 array as a new bfloat16 array of its shape."""
    out = np.empty(array.shape, bfloat16)
    _narrow_bits(array.reshape(-1).view(np.uint32), out.reshape(-1).view(np.uint16))
    return out


def bfloat16_to_float32(array):
    """A C-contiguous bfloat16 array as a new float32 array of its shape."""
    out = np.empty(array.shape, np.float32)
    _widen_bits(array.reshape(-1).view(np.uint16), out.reshape(-1).view(np.uint32))
    return out
