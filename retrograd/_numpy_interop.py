"""NumPy calls on Tensors: ``np.exp(t)``, ``np.sum(t, axis=...)``, ``array * t``.

This is what lets one backward rule serve two purposes. In a plain backward, rules receive
arrays and NumPy runs them directly. With ``create_graph=True`` they receive Tensors, NumPy
hands the call to ``Tensor.__array_ufunc__``/``__array_function__``, and this module maps it to
the differentiable Tensor op, so the backward itself is recorded. Only the functions below
are supported; anything else raises a TypeError that names the NumPy function.
"""

import numpy as np

from retrograd._operands import where
from retrograd.tensor import Tensor, make_tensor

__all__ = ["array_ufunc", "array_function"]


def _differentiable_ufuncs():
    return {
        np.add: lambda a, b: _t(a) + b,
        np.subtract: lambda a, b: _t(a) - b if isinstance(a, Tensor) else _t(b).__rsub__(a),
        np.multiply: lambda a, b: _t(a) * b if isinstance(a, Tensor) else _t(b) * a,
        np.true_divide: lambda a, b: a / b if isinstance(a, Tensor) else _t(b).__rtruediv__(a),
        np.power: lambda a, b: a ** b if isinstance(a, Tensor) else _t(b).__rpow__(a),
        np.matmul: lambda a, b: _t(a) @ b,
        np.negative: lambda a: -a,
        np.exp: lambda a: a.exp(),
        np.log: lambda a: a.log(),
        np.sqrt: lambda a: a.sqrt(),
        np.sin: lambda a: a.sin(),
        np.cos: lambda a: a.cos(),
        np.tanh: lambda a: a.tanh(),
        np.sinh: lambda a: a.sinh(),
        np.cosh: lambda a: a.cosh(),
        np.absolute: lambda a: a.abs(),
        np.maximum: lambda a, b: _t(a).maximum(b),
        np.minimum: lambda a, b: _t(a).minimum(b),
    }


def _t(x):
    return x if isinstance(x, Tensor) else make_tensor(np.asarray(x))


def _plain(x):
    return x._data if isinstance(x, Tensor) else x


_UFUNCS = _differentiable_ufuncs()
_NON_DIFFERENTIABLE_UFUNCS = {
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_not, np.logical_xor, np.sign, np.isfinite,
    np.isnan, np.isinf, np.bitwise_and, np.bitwise_or, np.invert,
}


def array_ufunc(ufunc, method, inputs, kwargs):
    if method != "__call__" or kwargs:
        return NotImplemented
    if ufunc in _UFUNCS:
        return _UFUNCS[ufunc](*inputs)
    if ufunc in _NON_DIFFERENTIABLE_UFUNCS:
        return make_tensor(np.asarray(ufunc(*(_plain(x) for x in inputs))))
    return NotImplemented


def _no_out(name, out):
    """Tensors are never written through NumPy's out=: ignoring it would leave out unfilled."""
    if out is not None:
        raise TypeError(f"np.{name}: out= is not supported on retrograd Tensors")


def _sum(a, axis=None, dtype=None, out=None, keepdims=False):
    _no_out("sum", out)
    return _t(a).sum(axis=axis, keepdims=keepdims, dtype=dtype)


def _mean(a, axis=None, dtype=None, out=None, keepdims=False):
    _no_out("mean", out)
    return _t(a).mean(axis=axis, keepdims=keepdims, dtype=dtype)


def _transpose(a, axes=None):
    a = _t(a)
    return a.permute(*(axes if axes is not None else reversed(range(a.ndim))))


def _where(condition, x=None, y=None):
    if x is None and y is None:
        return NotImplemented
    return where(condition, x, y)


def _concatenate(arrays, axis=0, out=None, dtype=None, casting=None):
    from retrograd.creation import cat
    _no_out("concatenate", out)
    y = cat([_t(a) for a in arrays], dim=axis)
    return y if dtype is None else y.to(dtype)


def _stack(arrays, axis=0, out=None, dtype=None, casting=None):
    from retrograd.creation import stack
    _no_out("stack", out)
    y = stack([_t(a) for a in arrays], dim=axis)
    return y if dtype is None else y.to(dtype)


_FUNCTIONS = {
    np.sum: _sum,
    np.mean: _mean,
    np.transpose: _transpose,
    np.swapaxes: lambda a, axis1, axis2: _t(a).transpose(axis1, axis2),
    np.broadcast_to: lambda array, shape, subok=False: _t(array).expand(*shape),
    np.expand_dims: lambda a, axis: _expand_dims(_t(a), axis),
    np.reshape: lambda a, shape=None, order="C", **kw: _t(a).reshape(shape),
    np.squeeze: lambda a, axis=None: _t(a).squeeze(axis),
    np.where: _where,
    np.concatenate: _concatenate,
    np.stack: _stack,
    np.clip: lambda a, a_min=None, a_max=None, **kw: _t(a).clamp(a_min, a_max),
    np.shape: lambda a: a.shape,
    np.ndim: lambda a: a.ndim,
    np.size: lambda a, axis=None: a.numel() if axis is None else a.shape[axis],
}


def _expand_dims(t, axis):
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    ndim = t.ndim + len(axes)
    shape = list(t.shape)
    for a in sorted(d % ndim for d in axes):
        shape.insert(a, 1)
    return t.reshape(tuple(shape))


def array_function(func, args, kwargs):
    handler = _FUNCTIONS.get(func)
    if handler is None:
        raise TypeError(f"np.{func.__name__} is not supported on retrograd Tensors "
                        f"(call .numpy() on a detached tensor, or use the Tensor method)")
    return handler(*args, **kwargs)
