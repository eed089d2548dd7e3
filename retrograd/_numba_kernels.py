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

__all__ = ["float32_to_bfloat16", "bfloat16_to_float32", "float32_to_float16",
           "float16_to_float32"]


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


# float32 <-> float16. NumPy's cast takes ~40x longer per subnormal float16 result (and ~10x
# per subnormal input back), which softmax probabilities and gradients are full of; these
# loops take the same time whatever the values. They round as NumPy does (to nearest even,
# subnormals included; overflow to inf; a NaN keeps the top of its payload, or 1, so that it
# stays a NaN).

@numba.njit(cache=True)
def _narrow16_bits(src, dst):
    for i in range(src.size):
        dst[i] = _half_bits(src[i])


@numba.njit(cache=True)
def _half_bits(u):
    sign = (u >> 16) & 0x8000
    exponent = np.int32((u >> 23) & 0xFF) - 112        # rebased from 127 to 15
    mantissa = u & 0x7FFFFF
    if exponent == 143:                                 # inf or NaN
        payload = mantissa >> 13
        return sign | 0x7C00 | (0 if mantissa == 0 else (payload if payload != 0 else 1))
    if exponent >= 31:
        return sign | 0x7C00                            # beyond 65504 after rounding: inf
    if exponent < -10:
        return sign                                     # below half the smallest subnormal
    if exponent <= 0:                                   # a subnormal float16
        mantissa |= 0x800000
        shift = np.uint32(14 - exponent)
    else:
        mantissa |= np.uint32(exponent) << 23           # normal: exponent rides along
        shift = np.uint32(13)
    half = mantissa >> shift
    rest = mantissa & ((np.uint32(1) << shift) - 1)
    tie = np.uint32(1) << (shift - 1)
    if rest > tie or (rest == tie and (half & 1)):
        half += 1                                       # a carry into the exponent is right
    return sign | half


@numba.njit(cache=True)
def _widen16_bits(src, dst, table):
    for i in range(src.size):
        dst[i] = table[src[i]]


_HALF_TABLE = []


def float32_to_float16(array):
    """A C-contiguous float32 array as a new float16 array of its shape."""
    out = np.empty(array.shape, np.float16)
    _narrow16_bits(array.reshape(-1).view(np.uint32), out.reshape(-1).view(np.uint16))
    return out


def float16_to_float32(array):
    """A C-contiguous float16 array as a new float32 array of its shape."""
    if not _HALF_TABLE:
        _HALF_TABLE.append(np.arange(65536, dtype=np.uint16).view(np.float16)
                           .astype(np.float32).view(np.uint32))
    out = np.empty(array.shape, np.float32)
    _widen16_bits(array.reshape(-1).view(np.uint16), out.reshape(-1).view(np.uint32),
                  _HALF_TABLE[0])
    return out
