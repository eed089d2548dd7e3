"""retrograd's dtypes: thin named wrappers over NumPy dtypes.

A retrograd dtype prints like PyTorch's (``retrograd.float32``) and compares equal to the
NumPy dtype it stands for, so ``t.dtype == np.float32`` and ``t.dtype == retrograd.float32``
both hold. bfloat16 comes from ``ml_dtypes``, which registers it with NumPy.
"""

import numpy as np

try:  # bfloat16 comes from ml_dtypes, an optional dependency (the 'bfloat16' extra)
    import ml_dtypes
except ImportError:  # pragma: no cover - exercised only where ml_dtypes is missing
    ml_dtypes = None

__all__ = [
    "dtype", "float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16", "int32",
    "int64", "bool", "as_numpy_dtype", "from_numpy_dtype", "is_floating", "default_float",
    "result_type", "promote",
]


class dtype:
    """A named NumPy dtype. ``np`` is the NumPy dtype; ``is_floating_point`` says whether
    tensors of this dtype may require gradients."""

    __slots__ = ("name", "np", "is_floating_point", "itemsize")

    def __init__(self, name, np_dtype, is_floating_point):
        self.name = name
        self.np = np.dtype(np_dtype) if np_dtype is not None else None
        self.is_floating_point = is_floating_point
        self.itemsize = self.np.itemsize if self.np is not None else 2

    def __repr__(self):
        return f"retrograd.{self.name}"

    @property
    def dtype(self):
        """The NumPy dtype: NumPy accepts any object with this attribute as a dtype, so
        ``np.zeros(3, dtype=retrograd.float32)`` works."""
        return self.np

    def __eq__(self, other):
        if isinstance(other, dtype):
            return self.np == other.np
        if other is None:  # NOTE: np.dtype(None) is float64, so float64 == None would hold
            return False
        try:
            return self.np == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.np)

    def __reduce__(self):
        return (from_numpy_dtype, (self.np,))


float16 = dtype("float16", np.float16, True)
bfloat16 = dtype("bfloat16", ml_dtypes.bfloat16 if ml_dtypes else None, True)
float32 = dtype("float32", np.float32, True)
float64 = dtype("float64", np.float64, True)
int8 = dtype("int8", np.int8, False)
uint8 = dtype("uint8", np.uint8, False)
int16 = dtype("int16", np.int16, False)
int32 = dtype("int32", np.int32, False)
int64 = dtype("int64", np.int64, False)
bool = dtype("bool", np.bool_, False)  # noqa: A001 - PyTorch's spelling

_ALL = tuple(d for d in (float16, bfloat16, float32, float64, int8, uint8, int16, int32, int64,
                         bool) if d.np is not None)
_BY_NUMPY = {d.np: d for d in _ALL}
_FLOATING_NUMPY = frozenset(d.np for d in _ALL if d.is_floating_point)
default_float = float32


def from_numpy_dtype(np_dtype):
    """The retrograd dtype for a NumPy dtype; raises TypeError for dtypes retrograd lacks."""
    try:
        return _BY_NUMPY[np_dtype]
    except KeyError:
        pass
    try:
        return _BY_NUMPY[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        names = ", ".join(d.name for d in _ALL)
        raise TypeError(f"retrograd: unsupported dtype {np_dtype!r}; supported: {names}") from None


def as_numpy_dtype(d):
    """Accept a retrograd dtype, a NumPy dtype, a type like ``np.float32`` or a name."""
    if isinstance(d, dtype):
        if d.np is None:
            raise TypeError(f"{d!r} needs the ml_dtypes package: pip install ml_dtypes")
        return d.np
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d].np
    return from_numpy_dtype(d).np


_BY_NAME = {d.name: d for d in _ALL}


def is_floating(np_dtype):
    """True for float16, bfloat16, float32 and float64 NumPy dtypes."""
    return np_dtype in _FLOATING_NUMPY


# ---------------------------------------------------------------------------- promotion

def result_type(a, b):
    """PyTorch's promotion between two NumPy dtypes of tensors: a float beats any integer or
    bool; two floats or two integers promote as NumPy does (float16 with bfloat16 gives
    float32).

    Example:
        >>> result_type(np.dtype(np.int64), np.dtype(np.float16))
        dtype('float16')
    """
    fa, fb = is_floating(a), is_floating(b)
    if fa != fb:
        return a if fa else b
    if a == b:
        return a
    try:
        return np.promote_types(a, b)
    except TypeError:  # NOTE: NumPy has no common type for float16 and bfloat16; torch's is float32
        return np.dtype(np.float32)


def _category(np_dtype):
    """bool < integer < floating: the order of PyTorch's type categories."""
    return 2 if is_floating(np_dtype) else 0 if np_dtype == np.bool_ else 1


def promote(a, b):
    """The result dtype of an op on the arrays of two tensors, as PyTorch: a 0-d tensor decides
    the dtype only when its category is higher than the other tensor's (float32 tensor *
    float64 0-d tensor is float32, but int64 tensor * float64 0-d tensor is float64).

    Example:
        >>> promote(np.ones(3, np.float32), np.array(2.0))
        dtype('float32')
        >>> promote(np.ones(3, np.int64), np.array(2.0))
        dtype('float64')
    """
    da, db = a.dtype, b.dtype
    a_0d, b_0d = a.ndim == 0, b.ndim == 0
    if a_0d != b_0d:
        zero_d, dims = (da, db) if a_0d else (db, da)
        return zero_d if _category(zero_d) > _category(dims) else dims
    return result_type(da, db)


# ---------------------------------------------------------------------------- conversions

_F16, _F32 = np.dtype(np.float16), np.dtype(np.float32)
# the low-precision floating dtypes (bfloat16 with ml_dtypes): autocast's, the fast casts'
LOW_PRECISION = tuple(np.dtype(d.np) for d in (float16, bfloat16) if d.np is not None)
_F16_TINY = np.float32(2.0 ** -14)           # float16's smallest normal
_F16_SUBNORMAL_UNITS = np.float32(2.0 ** 24)  # subnormal float16 = k * 2**-24, k < 1024
_SAMPLE = 61                                 # every 61st element tells whether to care
_F16_TABLE = []


def convert(array, np_dtype):
    """``array.astype(np_dtype)``, bit for bit, faster where it matters for autocast:

    - float32 <-> bfloat16 and float16 run on the compiled kernels of the 'fast' extra when
      they are there (retrograd/_fast.py): ml_dtypes' cast takes ~1 ns per element, and
      NumPy's float16 cast is slow for subnormals;
    - without them, float16 avoids NumPy's slow path for subnormals (its float32 -> float16
      cast takes ~40x longer per result below 2**-14, the float16 -> float32 cast ~10x
      longer per subnormal input, and softmax probabilities or unscaled gradients are mostly
      there): when a sample of the array says that more than a few percent of it is there,
      float16 is made from its bits (k * 2**-24, rounded to nearest even) and widened
      through a 65,536-entry table, which cost a few passes over the array whatever its
      values."""
    np_dtype = np.dtype(np_dtype)
    if array.size > _COMPILED_MIN and array.flags.c_contiguous:
        converted = _compiled(array, np_dtype)
        if converted is not None:
            return converted
    if array.size > 4096 and _F16 in (np_dtype, array.dtype) and _F32 in (np_dtype, array.dtype):
        if np_dtype == _F16 and _small_share(np.abs(_sample(array))) > 0.04:
            return _to_float16(array)
        if np_dtype == _F32 and _small_share(_sample(array).view(np.uint16) & 0x7C00) > 0.1:
            return _float16_table()[array.view(np.uint16)]
    return array.astype(np_dtype)


_COMPILED_MIN = 1 << 14   # elements: below this NumPy's cast is as fast


def _compiled(array, np_dtype):
    """float32 <-> bfloat16 or float16 by the compiled kernels (the 'fast' extra), or None."""
    low = np_dtype if array.dtype == _F32 else array.dtype
    if _F32 not in (array.dtype, np_dtype) or low not in LOW_PRECISION:
        return None
    from retrograd._fast import compiled_kernels

    kernels = compiled_kernels()
    if kernels is None:
        return None
    if low == _F16:
        return (kernels.float32_to_float16(array) if np_dtype == _F16
                else kernels.float16_to_float32(array))
    if np_dtype == low:
        return kernels.float32_to_bfloat16(array, low)
    return kernels.bfloat16_to_float32(array)



def _sample(array):
    return array.reshape(-1)[::_SAMPLE] if array.flags.c_contiguous else array.ravel()[::_SAMPLE]


def _small_share(magnitudes):
    """The share of the sample below float16's smallest normal (float32 magnitudes) or with
    a zero exponent (float16 bits masked by 0x7C00): zeros count, a cheap upper bound."""
    limit = _F16_TINY if magnitudes.dtype == _F32 else 1
    return np.count_nonzero(magnitudes < limit) / max(magnitudes.size, 1)


def _to_float16(array):
    with np.errstate(over="ignore", invalid="ignore"):
        small = np.abs(array) < _F16_TINY
        out = np.where(small, np.float32(0.0), array).astype(_F16)
        units = np.rint(np.abs(array) * _F16_SUBNORMAL_UNITS).astype(np.uint16)
    units |= np.signbit(array).astype(np.uint16) << np.uint16(15)
    np.copyto(out.view(np.uint16), units, where=small)
    return out


def _float16_table():
    if not _F16_TABLE:
        _F16_TABLE.append(np.arange(65536, dtype=np.uint16).view(np.float16).astype(_F32))
    return _F16_TABLE[0]
