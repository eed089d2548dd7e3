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
# loops take the same time whatever the values (narrowing ~2.5x NumPy's speed on normal
# values). They round as NumPy does (to nearest even, subnormals included; overflow to inf;
# a NaN keeps the top of its payload, or 1, so that it stays a NaN).

@numba.njit(cache=True)
def _narrow16_bits(src, dst):
    """Branch-free (both roundings computed, one selected), so that LLVM vectorizes it:
    - normal: the float32 rebased to float16's exponent, its low 13 bits rounded to nearest
      even ((a - (112 << 23) + 0xFFF + odd) >> 13; a carry into the exponent is right);
    - subnormal (|x| < 2**-14): |x| + 0.5 in float32 leaves k * 2**-24 in the low mantissa
      bits, rounded to nearest even by the float addition itself;
    - from 65520 up: inf; NaN: 0x7C00 | the top of its payload (1 if that is 0)."""
    magnitudes = src.view(np.float32)
    for i in range(src.size):
        u = src[i]
        a = u & np.uint32(0x7FFFFFFF)
        sign = (u >> np.uint32(16)) & np.uint32(0x8000)
        odd = (a >> np.uint32(13)) & np.uint32(1)
        normal = (a + np.uint32(0xC8000FFF) + odd) >> np.uint32(13)
        shifted = np.float32(np.abs(magnitudes[i]) + np.float32(0.5))
        subnormal = shifted.view(np.uint32) - np.uint32(126 << 23)
        payload = (a >> np.uint32(13)) & np.uint32(0x3FF)
        nan = np.uint32(0x7C00) | (payload if payload != 0 else np.uint32(1))
        half = subnormal if a < np.uint32(113 << 23) else normal
        big = np.uint32(0x7C00) if a <= np.uint32(0x7F800000) else nan
        dst[i] = sign | (big if a >= np.uint32(0x47800000) else half)


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
