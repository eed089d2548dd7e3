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
    "result_type", "promote", "get_default_dtype", "set_default_dtype", "finfo", "iinfo",
]


class dtype:
    """A named NumPy dtype. ``np`` is the NumPy dtype; ``is_floating_point`` says whether
    tensors of this dtype may require gradients; ``is_signed`` and ``is_complex`` (always
    False: retrograd has no complex dtypes) are torch.dtype's flags."""

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

    @property
    def is_signed(self):
        return self.is_floating_point or self.np.kind == "i"

    @property
    def is_complex(self):
        return False

    def to_real(self):
        """As torch.dtype.to_real: the real dtype of the same size, the dtype itself here."""
        return self


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


def as_numpy_dtype(d, owner=None):
    """Accept a retrograd dtype, a NumPy dtype, a type like ``np.float32`` or ``float`` (as
    torch: float64), or a retrograd dtype's exact name ("float16"). Any other string is a
    TypeError naming ``owner`` (the op): NumPy would read "float" as float64 where PyTorch
    code means torch.float (float32), so strings are not guessed at.

    Example:
        >>> as_numpy_dtype("float", "zeros")
        Traceback (most recent call last):
        TypeError: zeros: dtype must be a retrograd dtype such as retrograd.float32, not the \
string 'float' (for torch.float write retrograd.float32, or retrograd.float)
    """
    if isinstance(d, dtype):
        if d.np is None:
            raise TypeError(f"{d!r} needs the ml_dtypes package: pip install ml_dtypes")
        return d.np
    if isinstance(d, str):
        if d in _BY_NAME:
            return _BY_NAME[d].np
        raise TypeError(_string_dtype_message(owner, d))
    try:
        return from_numpy_dtype(d).np
    except TypeError as e:
        if owner is None:
            raise
        raise TypeError(f"{owner}: {e}") from None


def _string_dtype_message(owner, name):
    message = (f"{owner or 'retrograd'}: dtype must be a retrograd dtype such as "
               f"retrograd.float32, not the string {name!r}")
    if name in TORCH_ALIASES:
        real = TORCH_ALIASES[name]
        return message + f" (for torch.{name} write retrograd.{real.name}, or retrograd.{name})"
    return message


_BY_NAME = {d.name: d for d in _ALL}
NAMES = frozenset(_BY_NAME)  # the exact names as_numpy_dtype accepts as strings
# PyTorch's other names for dtypes (torch.float is float32); retrograd exports them too
TORCH_ALIASES = {"float": float32, "double": float64, "half": float16, "long": int64,
                 "int": int32, "short": int16}


def is_floating(np_dtype):
    """True for float16, bfloat16, float32 and float64 NumPy dtypes."""
    return np_dtype in _FLOATING_NUMPY


# ---------------------------------------------------------------------------- default dtype

def get_default_dtype():
    """The dtype of floating-point tensors made without a dtype (``tensor(1.5)``,
    ``zeros(2)``, layers' parameters): float32 unless ``set_default_dtype`` changed it."""
    return default_float


def set_default_dtype(d):
    """Set the default floating-point dtype, as ``torch.set_default_dtype``: any floating
    dtype (float32, float64, float16, bfloat16); integer dtypes and strings are TypeErrors.

    Example:
        >>> import retrograd as rg
        >>> rg.set_default_dtype(rg.float64)
        >>> rg.tensor(0.1).dtype, rg.zeros(2).dtype
        (retrograd.float64, retrograd.float64)
        >>> rg.set_default_dtype(rg.float32)
    """
    global default_float
    if isinstance(d, str):
        raise TypeError(_string_dtype_message("set_default_dtype", d))
    chosen = from_numpy_dtype(as_numpy_dtype(d, "set_default_dtype"))
    if not chosen.is_floating_point:
        raise TypeError(f"set_default_dtype: only floating-point dtypes can be the default, "
                        f"got {chosen!r}")
    default_float = chosen


# ---------------------------------------------------------------------------- finfo, iinfo

def _format_limit(value):
    return format(value, ".6g")


class finfo:
    """Limits of a floating-point dtype, as ``torch.finfo``: ``bits``, ``eps``, ``max``,
    ``min``, ``tiny`` (= ``smallest_normal``), ``resolution`` (Python floats) and ``dtype``
    (its name). ``finfo()`` describes the default dtype.

    Example:
        >>> import retrograd as rg
        >>> rg.finfo(rg.float16).max, rg.finfo(rg.float32).eps == 2.0 ** -23
        (65504.0, True)
    """

    def __init__(self, type=None):  # noqa: A002 - PyTorch's name
        chosen = from_numpy_dtype(as_numpy_dtype(default_float if type is None else type,
                                                 "finfo"))
        if not chosen.is_floating_point:
            raise TypeError(f"finfo: requires a floating-point dtype, got {chosen!r}; use "
                            f"retrograd.iinfo for integer dtypes")
        info = ml_dtypes.finfo(chosen.np) if chosen is bfloat16 else np.finfo(chosen.np)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # NOTE: ml_dtypes' is rounded to bfloat16
        self.dtype = chosen.name

    def __eq__(self, other):
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self):
        return hash(("finfo", self.dtype))

    def __repr__(self):
        fields = ("resolution", "min", "max", "eps", "smallest_normal", "tiny")
        body = ", ".join(f"{name}={_format_limit(getattr(self, name))}" for name in fields)
        return f"finfo({body}, dtype={self.dtype})"


class iinfo:
    """Limits of an integer dtype, as ``torch.iinfo``: ``bits``, ``min``, ``max`` (Python
    ints) and ``dtype`` (its name). bool and floating dtypes are TypeErrors.

    Example:
        >>> import retrograd as rg
        >>> rg.iinfo(rg.uint8).max, rg.iinfo(rg.int64).min == -2 ** 63
        (255, True)
    """

    def __init__(self, type):  # noqa: A002 - PyTorch's name
        chosen = from_numpy_dtype(as_numpy_dtype(type, "iinfo"))
        if chosen.is_floating_point:
            raise TypeError(f"iinfo: requires an integer dtype, got {chosen!r}; use "
                            f"retrograd.finfo for floating-point dtypes")
        if chosen is bool:
            raise TypeError("iinfo: retrograd.bool is not supported (it is not an integer "
                            "dtype)")
        info = np.iinfo(chosen.np)
        self.bits = int(info.bits)
        self.min = int(info.min)
        self.max = int(info.max)
        self.dtype = chosen.name

    def __eq__(self, other):
        return isinstance(other, iinfo) and self.dtype == other.dtype

    def __hash__(self):
        return hash(("iinfo", self.dtype))

    def __repr__(self):
        return (f"iinfo(min={_format_limit(self.min)}, max={_format_limit(self.max)}, "
                f"dtype={self.dtype})")


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
