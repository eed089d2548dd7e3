"""Creating tensors: from data, filled, ranges, random, and joining (cat, stack).

Every creation function takes PyTorch's ``device=`` (the CPU only: None, "cpu" or a cpu
``retrograd.device``; anything else is a RuntimeError naming the function) and, where PyTorch
has it, ``pin_memory=`` (accepted and ignored: pinning speeds up copies to a GPU). A string
``dtype`` other than a retrograd dtype's exact name is a TypeError (see dtypes.as_numpy_dtype).
"""

import numpy as np

from retrograd import _checks
from retrograd.device import check_cpu as _check_device
from retrograd import dtypes as _dt
from retrograd import random as _random
from retrograd.ops import shape as _shape
from retrograd.tensor import Tensor, as_array, make_tensor

__all__ = [
    "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "arange", "linspace",
    "eye", "randn", "rand", "randint", "randperm", "zeros_like", "ones_like", "full_like",
    "empty_like", "randn_like", "rand_like", "cat", "concat", "stack",
]


def _dtype(op, dtype, default=None):
    """The NumPy dtype of ``dtype`` (errors name ``op``), or ``default`` (the default float
    dtype when that is None too)."""
    if dtype is not None:
        return _dt.as_numpy_dtype(dtype, op)
    return default if default is not None else _dt.default_float.np


def _place(op, device, pin_memory):
    """Check the device (the CPU only) and pin_memory (accepted: there is no GPU to copy to,
    so pinning changes nothing)."""
    _check_device(op, device)
    _checks.boolean(op, "pin_memory", pin_memory)


def _finish(array, requires_grad):
    t = make_tensor(array)
    if requires_grad:
        t.requires_grad = True
    return t


def tensor(data, dtype=None, requires_grad=False, *, device=None, pin_memory=False):
    """A new tensor holding a copy of ``data`` (numbers, nested lists, an array or a tensor).
    Python floats become the default float dtype (float32), ints int64, bools bool; NumPy
    arrays keep their dtype."""
    _place("tensor", device, pin_memory)
    target = _dtype("tensor", dtype) if dtype is not None else None
    array = as_array(data, target)
    if isinstance(data, Tensor) or (isinstance(data, np.ndarray) and array is data):
        array = array.copy()
    return _finish(array, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like tensor(), but shares memory with a NumPy array or tensor when no cast is needed."""
    _check_device("as_tensor", device)
    target = _dtype("as_tensor", dtype) if dtype is not None else None
    if isinstance(data, Tensor) and (target is None or data._data.dtype == target):
        return data
    return make_tensor(as_array(data, target))


def from_numpy(array):
    """A tensor sharing memory with ``array`` (changes to one are seen by the other)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    _dt.from_numpy_dtype(array.dtype)
    return make_tensor(array)


def _filled(op, fill, shape, dtype, device, requires_grad, pin_memory):
    _place(op, device, pin_memory)
    return _finish(fill(_checks.sizes(op, shape), _dtype(op, dtype)), requires_grad)


def zeros(*shape, dtype=None, device=None, requires_grad=False, pin_memory=False):
    return _filled("zeros", np.zeros, shape, dtype, device, requires_grad, pin_memory)


def ones(*shape, dtype=None, device=None, requires_grad=False, pin_memory=False):
    return _filled("ones", np.ones, shape, dtype, device, requires_grad, pin_memory)


def empty(*shape, dtype=None, device=None, requires_grad=False, pin_memory=False):
    return _filled("empty", np.empty, shape, dtype, device, requires_grad, pin_memory)


def full(shape, fill_value, dtype=None, requires_grad=False, *, device=None, pin_memory=False):
    _place("full", device, pin_memory)
    target = _dtype("full", dtype, as_array(fill_value).dtype)
    return _finish(np.full(_checks.sizes("full", (shape,)), fill_value, target), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, *, device=None,
           pin_memory=False):
    """[start, end) with the given step; int64 unless any argument is a float."""
    _place("arange", device, pin_memory)
    if end is None:
        start, end = 0, start
    is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    target = _dtype("arange", dtype, np.dtype(np.int64) if is_int else None)
    return _finish(np.arange(start, end, step).astype(target), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False, *, device=None,
             pin_memory=False):
    _place("linspace", device, pin_memory)
    return _finish(np.linspace(start, end, steps).astype(_dtype("linspace", dtype)),
                   requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, *, device=None, pin_memory=False):
    _place("eye", device, pin_memory)
    return _finish(np.eye(n, m, dtype=_dtype("eye", dtype)), requires_grad)


def randn(*shape, generator=None, dtype=None, device=None, requires_grad=False,
          pin_memory=False):
    """Standard normal samples from retrograd's generator (see ``manual_seed``)."""
    _place("randn", device, pin_memory)
    shape = _checks.sizes("randn", shape)
    return _finish(_random.normal(0.0, 1.0, shape, _dtype("randn", dtype), generator),
                   requires_grad)


def rand(*shape, generator=None, dtype=None, device=None, requires_grad=False,
         pin_memory=False):
    """Uniform samples in [0, 1)."""
    _place("rand", device, pin_memory)
    shape = _checks.sizes("rand", shape)
    return _finish(_random.uniform(0.0, 1.0, shape, _dtype("rand", dtype), generator),
                   requires_grad)


def randint(low, high=None, size=(), dtype=None, *, generator=None, device=None,
            requires_grad=False, pin_memory=False):
    """Integers uniform in [low, high) (or [0, low) when high is omitted)."""
    _place("randint", device, pin_memory)
    if high is None:
        low, high = 0, low
    array = _random.integers(low, high, _checks.sizes("randint", (size,)), generator)
    target = _dtype("randint", dtype, array.dtype)
    return _finish(array if target == array.dtype else array.astype(target), requires_grad)


def randperm(n, dtype=None, *, generator=None, device=None, requires_grad=False,
             pin_memory=False):
    _place("randperm", device, pin_memory)
    array = _random.permutation(n, generator)
    target = _dtype("randperm", dtype, array.dtype)
    return _finish(array if target == array.dtype else array.astype(target), requires_grad)


def _like(op, fill, t, dtype, device, requires_grad, pin_memory=False):
    _place(op, device, pin_memory)
    return _finish(fill(t.shape, _dtype(op, dtype, t._data.dtype)), requires_grad)


def zeros_like(t, dtype=None, requires_grad=False, *, device=None, pin_memory=False):
    return _like("zeros_like", np.zeros, t, dtype, device, requires_grad, pin_memory)


def ones_like(t, dtype=None, requires_grad=False, *, device=None, pin_memory=False):
    return _like("ones_like", np.ones, t, dtype, device, requires_grad, pin_memory)


def empty_like(t, dtype=None, requires_grad=False, *, device=None, pin_memory=False):
    return _like("empty_like", np.empty, t, dtype, device, requires_grad, pin_memory)


def full_like(t, fill_value, dtype=None, requires_grad=False, *, device=None,
              pin_memory=False):
    return _like("full_like", lambda shape, d: np.full(shape, fill_value, d), t, dtype, device,
                 requires_grad, pin_memory)


def randn_like(t, dtype=None, requires_grad=False, *, generator=None, device=None,
               pin_memory=False):
    return _like("randn_like", lambda shape, d: _random.normal(0.0, 1.0, shape, d, generator),
                 t, dtype, device, requires_grad, pin_memory)


def rand_like(t, dtype=None, requires_grad=False, *, generator=None, device=None,
              pin_memory=False):
    return _like("rand_like", lambda shape, d: _random.uniform(0.0, 1.0, shape, d, generator),
                 t, dtype, device, requires_grad, pin_memory)


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
