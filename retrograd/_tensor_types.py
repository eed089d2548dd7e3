"""PyTorch's legacy tensor types: ``Tensor(2, 3)``, ``FloatTensor([1, 2])``, ``x.type()``.

Older PyTorch code (and much code still written today) makes tensors through the class:

- ``Tensor(2, 3)``: a float tensor of that shape (PyTorch leaves it uninitialized; retrograd
  fills it with zeros, which is one of the values PyTorch may give);
- ``Tensor([1, 2])``, ``Tensor(array)``: a copy of the data in the default float dtype
  (float32 unless ``set_default_dtype`` changed it), ints included, as PyTorch;
- ``Tensor(other_tensor)``: a tensor sharing ``other_tensor``'s memory, of its dtype;
- ``Tensor()``: an empty float tensor, shape (0,);
- ``FloatTensor``, ``DoubleTensor``, ``HalfTensor``, ``BFloat16Tensor``, ``LongTensor``,
  ``IntTensor``, ``ShortTensor``, ``CharTensor``, ``ByteTensor``, ``BoolTensor``: the same for
  one dtype each, and ``isinstance(x, FloatTensor)`` tells whether x is a float32 tensor.

``x.type()`` names a tensor's type in PyTorch's spelling, ``'torch.FloatTensor'``, because
PyTorch code compares it with such strings; ``x.type('torch.DoubleTensor')`` converts.
"""

import numbers

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.device import check_cpu
from retrograd._size import Size

__all__ = ["TYPE_NAMES", "type_name", "dtype_of_type", "legacy_array", "set_default_tensor_type",
           "FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor",
           "IntTensor", "ShortTensor", "CharTensor", "ByteTensor", "BoolTensor"]

TYPE_NAMES = {_dt.float32: "FloatTensor", _dt.float64: "DoubleTensor",
              _dt.float16: "HalfTensor", _dt.bfloat16: "BFloat16Tensor",
              _dt.int64: "LongTensor", _dt.int32: "IntTensor", _dt.int16: "ShortTensor",
              _dt.int8: "CharTensor", _dt.uint8: "ByteTensor", _dt.bool: "BoolTensor"}
_DTYPE_OF_NAME = {name: d for d, name in TYPE_NAMES.items()}


def type_name(dtype):
    """'torch.FloatTensor' for float32, ...: PyTorch's name, which PyTorch code compares with."""
    return f"torch.{TYPE_NAMES[dtype]}"


def dtype_of_type(owner, value):
    """The dtype named by a type string ('torch.FloatTensor'; 'retrograd.FloatTensor' too) or
    a legacy type class (``retrograd.FloatTensor``); None for anything else."""
    if isinstance(value, _TensorType):
        return value.dtype
    if not isinstance(value, str):
        return None
    prefix, _, name = value.rpartition(".")
    if prefix in ("torch.cuda", "retrograd.cuda") and name in _DTYPE_OF_NAME:
        check_cpu(owner, "cuda")
    if prefix not in ("torch", "retrograd") or name not in _DTYPE_OF_NAME:
        raise ValueError(f"{owner}: invalid type {value!r}; expected a dtype such as "
                         f"retrograd.float64 or a type name such as 'torch.DoubleTensor'")
    return _DTYPE_OF_NAME[name]


# ---------------------------------------------------------------------------- constructors

def legacy_array(owner, args, dtype, device):
    """The array of ``Tensor(*args)`` (or of a typed constructor, with its ``dtype``): sizes
    make zeros, data is copied and converted to ``dtype`` (the default float dtype when None),
    a tensor is shared (its own dtype when ``dtype`` is None)."""
    from retrograd.tensor import Tensor, as_array  # here: tensor.py imports this module

    check_cpu(owner, device)
    if not args:
        return np.zeros(0, _target(dtype))
    if _are_sizes(args):
        return np.zeros(_sizes(owner, args), _target(dtype))
    if len(args) > 1:
        raise TypeError(f"{owner}: expected sizes (ints) or one sequence of data, got "
                        f"{', '.join(type(a).__name__ for a in args)}")
    data = args[0]
    if isinstance(data, Tensor):
        if dtype is not None and _target(dtype) != data._data.dtype:
            wanted = _dt.from_numpy_dtype(_target(dtype))
            raise TypeError(f"{owner}: expected a tensor of dtype {wanted!r}, got one of dtype "
                            f"{data.dtype!r}; convert it with .to()")
        return data._data
    if data is None or isinstance(data, (numbers.Number, np.generic, str, bytes)):
        raise TypeError(f"{owner}: data must be a sequence (got {type(data).__name__}); for a "
                        f"tensor holding one number use retrograd.tensor({data!r})")
    array = as_array(data, _target(dtype))
    return array.copy() if array is data else array


def _target(dtype, owner="Tensor"):
    return _dt.default_float.np if dtype is None else _dt.as_numpy_dtype(dtype, owner)


def _are_sizes(args):
    if len(args) == 1 and isinstance(args[0], Size):
        return True
    return all(_checks.is_int(a) for a in args)


def _sizes(owner, args):
    sizes = tuple(args[0]) if isinstance(args[0], Size) else tuple(int(a) for a in args)
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"{owner}: negative dimension in size {sizes}")
    return sizes


class _TensorType(type):
    """The class of FloatTensor, LongTensor, ...: calling one makes a Tensor of its dtype,
    and ``isinstance(x, FloatTensor)`` checks x's dtype (as PyTorch's torch.tensortype)."""

    def __call__(cls, *args, device=None):
        from retrograd.tensor import make_tensor

        return make_tensor(legacy_array(cls.__name__, args, cls.dtype, device))

    def __instancecheck__(cls, value):
        from retrograd.tensor import Tensor

        return isinstance(value, Tensor) and value._data.dtype == cls.dtype.np

    def __repr__(cls):
        return f"<class 'retrograd.{cls.__name__}'>"


def _tensor_type(dtype):
    doc = (f"A legacy constructor of {dtype!r} tensors: ``{TYPE_NAMES[dtype]}(2, 3)`` (sizes, "
           f"zeros) or ``{TYPE_NAMES[dtype]}([1, 2])`` (data, converted).")
    return _TensorType(TYPE_NAMES[dtype], (), {"dtype": dtype, "__doc__": doc,
                                               "__module__": "retrograd"})


FloatTensor = _tensor_type(_dt.float32)
DoubleTensor = _tensor_type(_dt.float64)
HalfTensor = _tensor_type(_dt.float16)
BFloat16Tensor = _tensor_type(_dt.bfloat16)
LongTensor = _tensor_type(_dt.int64)
IntTensor = _tensor_type(_dt.int32)
ShortTensor = _tensor_type(_dt.int16)
CharTensor = _tensor_type(_dt.int8)
ByteTensor = _tensor_type(_dt.uint8)
BoolTensor = _tensor_type(_dt.bool)


def set_default_tensor_type(t):
    """The legacy form of ``set_default_dtype``: 'torch.DoubleTensor', DoubleTensor, or a
    floating dtype; integer types are errors, CUDA types say that retrograd is CPU-only."""
    dtype = dtype_of_type("set_default_tensor_type", t) or t
    _dt.set_default_dtype(dtype)
