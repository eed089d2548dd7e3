"""Operands of Tensor arithmetic: PyTorch's type promotion applied to tensors and Python
numbers (the rules themselves are ``dtypes.result_type`` and ``dtypes.promote``), comparisons,
``where``, and matmul's rules for 1-D operands. Each function checks its operands, so that
errors name the op, the shapes and the dtypes, then calls one op.
"""

import numbers

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.ops import elementwise as _ew
from retrograd.ops import linalg as _la
from retrograd.tensor import Tensor, _floating, as_array, make_tensor

__all__ = ["binary", "compare", "matmul", "where"]


def operand(other, like, op):
    """Python numbers and arrays become constants of a dtype that follows PyTorch's rules."""
    if isinstance(other, Tensor):
        return other
    if isinstance(other, bool) or isinstance(other, numbers.Integral):
        return other
    if isinstance(other, numbers.Real):
        return float(other)
    if isinstance(other, (np.ndarray, list, tuple, np.generic)):
        return make_tensor(as_array(other))
    raise TypeError(f"{op}: unsupported operand of type {type(other).__name__} with a tensor of "
                    f"dtype {like.dtype}")


def binary(fn, a, b, reflected=False, true_divide=False):
    """Apply a binary op after PyTorch's type promotion; errors name the op and the shapes."""
    op = fn.__name__.lower()
    b = operand(b, a, op)
    if isinstance(b, Tensor):
        _checks.broadcastable(op, a, b)
        target = _dt.promote(a._data, b._data)
        if true_divide and not _dt.is_floating(target):
            target = _dt.default_float.np
        if a._data.dtype != target:
            a = a.to(target)
        if b._data.dtype != target:
            b = b.to(target)
    elif (isinstance(b, float) or true_divide) and not _dt.is_floating(a._data.dtype):
        a = a.to(_dt.default_float.np)
    if isinstance(b, float) and a._data.dtype.kind != "f" and _dt.is_floating(a._data.dtype):
        # NOTE: NumPy keeps float16 * 2.5 in float16 (a Python float is "weak"), but ml_dtypes
        # promotes bfloat16 * 2.5 to float32; a scalar of the tensor's own dtype keeps bfloat16.
        b = a._data.dtype.type(b)
    return fn.apply(b, a) if reflected else fn.apply(a, b)


def compare(ufunc, a, b):
    other = b._data if isinstance(b, Tensor) else b
    if isinstance(other, (list, tuple)):
        other = np.asarray(other)
    try:
        return make_tensor(np.asarray(ufunc(a._data, other)))
    except ValueError:
        raise ValueError(f"{ufunc.__name__}: shapes {a.shape} and {np.shape(other)} cannot be "
                         f"broadcast together") from None


def matmul(a, b):
    """Matrix product with PyTorch's rules for 1-D operands (a vector is promoted to a matrix
    for the product and the added dim removed afterwards)."""
    if not isinstance(b, Tensor):
        b = make_tensor(as_array(b))
    ad, bd = a._data, b._data
    if (ad.ndim >= 2 and bd.ndim == 2 and ad.dtype == bd.dtype
            and ad.shape[-1] == bd.shape[0]):  # the common case, checked cheaply
        return _la.MatMul.apply(a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dim, got shapes {a.shape} @ "
                         f"{b.shape}")
    target = _dt.result_type(a._data.dtype, b._data.dtype)
    a, b = a.to(target), b.to(target)
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(-1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: cannot multiply {a.shape} @ {b.shape}: inner dims "
                         f"{a2.shape[-1]} != {b2.shape[-2]} (dtypes {a.dtype}, {b.dtype})")
    try:
        np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dims of {a.shape} @ {b.shape} cannot be "
                         f"broadcast") from None
    y = _la.MatMul.apply(a2, b2)
    if a.ndim == 1:
        y = y.squeeze(-2)
    if b.ndim == 1:
        y = y.squeeze(-1)
    return y


def where(condition, input=None, other=None):  # noqa: A002 - PyTorch's names
    """Elements of ``input`` where condition is True, else of ``other`` (broadcast); with the
    condition alone, ``condition.nonzero(as_tuple=True)`` (the indices where it is True)."""
    if input is None and other is None:
        if not isinstance(condition, Tensor):
            condition = make_tensor(as_array(condition))
        return condition.nonzero(as_tuple=True)
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must have dtype bool, got {cond.dtype}")
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        # two Python numbers: float32 when either is a float, as torch (NumPy would say float64)
        input, other = make_tensor(as_array(input)), make_tensor(as_array(other))
    like = input if isinstance(input, Tensor) else other
    a = operand(input, like, "where")
    b = operand(other, like, "where")
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        target = _dt.promote(a._data, b._data)
        a, b = a.to(target), b.to(target)
    elif isinstance(a, float) or isinstance(b, float):  # a Python float and a tensor
        a, b = (_floating(x, "where") if isinstance(x, Tensor) else x for x in (a, b))
    try:
        np.broadcast_shapes(cond.shape, np.shape(_data_of(a)), np.shape(_data_of(b)))
    except ValueError:
        raise ValueError(f"where: shapes {cond.shape}, {np.shape(_data_of(a))} and "
                         f"{np.shape(_data_of(b))} cannot be broadcast together") from None
    return _ew.Where.apply(cond, a, b)


def _data_of(x):
    return x._data if isinstance(x, Tensor) else x
