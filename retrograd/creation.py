"""Creating tensors: from data, filled, ranges, random, and joining (cat, stack)."""

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd import random as _random
from retrograd.ops import shape as _shape
from retrograd.tensor import Tensor, as_array, make_tensor

__all__ = [
    "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "arange", "linspace",
    "eye", "randn", "rand", "randint", "randperm", "zeros_like", "ones_like", "full_like",
    "empty_like", "randn_like", "rand_like", "cat", "concat", "stack",
]


def _float_dtype(dtype):
    return _dt.as_numpy_dtype(dtype) if dtype is not None else _dt.default_float.np


def _finish(array, requires_grad):
    t = make_tensor(array)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (numbers, nested lists, an array or a tensor).
    Python floats become float32, ints int64, bools bool; NumPy arrays keep their dtype."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad)


def as_tensor(data, dtype=None):
    """Like tensor(), but shares memory with a NumPy array or tensor when no cast is needed."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == dtype):
        return data
    return make_tensor(as_array(data, dtype))


def from_numpy(array):
    """A tensor sharing memory with ``array`` (changes to one are seen by the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    _dt.from_numpy_dtype(array.dtype)
    return make_tensor(array)


def zeros(*shape, dtype=None, requires_grad=False):
    return _finish(np.zeros(_checks.sizes("zeros", shape), _float_dtype(dtype)), requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    return _finish(np.ones(_checks.sizes("ones", shape), _float_dtype(dtype)), requires_grad)


def empty(*shape, dtype=None, requires_grad=False):
    return _finish(np.empty(_checks.sizes("empty", shape), _float_dtype(dtype)), requires_grad)


def full(shape, fill_value, dtype=None, requires_grad=False):
    if dtype is None:
        dtype = as_array(fill_value).dtype
    return _finish(np.full(_checks.sizes("full", (shape,)), fill_value, _dt.as_numpy_dtype(dtype)),
                   requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """[start, end) with the given step; int64 unless any argument is a float."""
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if is_int else _dt.default_float.np
    return _finish(np.arange(start, end, step).astype(_dt.as_numpy_dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    return _finish(np.linspace(start, end, steps).astype(_float_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def randn(*shape, dtype=None, requires_grad=False):
    """Standard normal samples from retrograd's generator (see ``manual_seed``)."""
    shape = _checks.sizes("randn", shape)
    return _finish(_random.normal(0.0, 1.0, shape, _float_dtype(dtype)), requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    shape = _checks.sizes("rand", shape)
    return _finish(_random.uniform(0.0, 1.0, shape, _float_dtype(dtype)), requires_grad)


def randint(low, high=None, size=(), dtype=None):
    """Integers uniform in [low, high) (or [0, low) when high is omitted)."""
    if high is None:
        low, high = 0, low
    array = _random.integers(low, high, _checks.sizes("randint", (size,)))
    return make_tensor(array if dtype is None else array.astype(_dt.as_numpy_dtype(dtype)))


def randperm(n, dtype=None):
    array = _random.permutation(n)
    return make_tensor(array if dtype is None else array.astype(_dt.as_numpy_dtype(dtype)))


def _like(fill, t, dtype, requires_grad):
    dtype = t._data.dtype if dtype is None else _dt.as_numpy_dtype(dtype)
    return _finish(fill(t.shape, dtype), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return _like(np.zeros, t, dtype, requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return _like(np.ones, t, dtype, requires_grad)


def empty_like(t, dtype=None, requires_grad=False):
    return _like(np.empty, t, dtype, requires_grad)


def full_like(t, fill_value, dtype=None, requires_grad=False):
    return _like(lambda shape, d: np.full(shape, fill_value, d), t, dtype, requires_grad)


def randn_like(t, dtype=None, requires_grad=False):
    return _like(lambda shape, d: _random.normal(0.0, 1.0, shape, d), t, dtype, requires_grad)


def rand_like(t, dtype=None, requires_grad=False):
    return _like(lambda shape, d: _random.uniform(0.0, 1.0, shape, d), t, dtype, requires_grad)


def _joinable(tensors, op):
    """Tensors (or array-likes) promoted to one dtype, with an error naming the op."""
    if isinstance(tensors, Tensor) or not len(tensors):
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    tensors = [t if isinstance(t, Tensor) else make_tensor(as_array(t)) for t in tensors]
    target = tensors[0]._data.dtype
    for t in tensors[1:]:
        target = _dt.result_type(target, t._data.dtype)
    return [t.to(target) for t in tensors]


def cat(tensors, dim=0):
    """Join tensors along an existing dim; all other dims must match."""
    tensors = _joinable(tensors, "cat")
    ndim = tensors[0].ndim
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise ValueError(f"cat: zero-dimensional tensor (at position {i}) cannot be "
                             f"concatenated; use stack() to join scalars")
    d = _checks.dim("cat", dim, ndim)
    for i, t in enumerate(tensors):
        if t.ndim != ndim or any(a != b for k, (a, b) in enumerate(zip(t.shape, tensors[0].shape))
                                 if k != d):
            shapes = [tuple(x.shape) for x in tensors]
            raise ValueError(f"cat: tensor {i} has shape {t.shape}, which does not match the "
                             f"others outside dim {dim} (shapes {shapes})")
    return _shape.Cat.apply(*tensors, axis=d)


concat = cat


def stack(tensors, dim=0):
    """Join tensors of equal shape along a new dim."""
    tensors = _joinable(tensors, "stack")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            shapes = [tuple(x.shape) for x in tensors]
            raise ValueError(f"stack: all tensors need the same shape; tensor {i} has shape "
                             f"{t.shape} (shapes {shapes})")
    d = _checks.dim("stack", dim, tensors[0].ndim + 1)
    return _shape.Stack.apply(*tensors, axis=d)
