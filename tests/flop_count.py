"""Brute-force FLOP counts: run NumPy arithmetic on counting arrays and count every element
operation, by the cost model's convention (docs/cost-model.md).

``Counted`` is an ndarray subclass whose ufunc calls add to a shared tally: an elementwise
ufunc (add, multiply, exp, maximum, greater, where-like selects through ``np.where``...) costs
one FLOP per output element; ``ufunc.reduce`` of n elements to m costs n - m; ``matmul``,
``dot``, ``einsum`` and ``tensordot`` cost 2 x MACs. Copies, views, casts and fills are free.
Write a reference computation of an op's forward or backward with NumPy on ``counted(x)``
arrays and compare ``tally.flops`` with the op's declared Cost.

    >>> import numpy as np
    >>> with counting() as tally:
    ...     a, b = counted(np.ones((2, 3))), counted(np.ones((3, 4)))
    ...     y = np.exp(a @ b).sum(axis=1)
    >>> tally.flops  # 2*2*3*4 + 8 + (8 - 2)
    62
"""

import contextlib

import numpy as np

__all__ = ["Counted", "counted", "counting"]

_FREE_UFUNCS = {"positive", "conjugate"}   # identity ufuncs: no arithmetic
_tally = None


class _Tally:
    def __init__(self):
        self.flops = 0


@contextlib.contextmanager
def counting():
    """A block in which Counted arrays add their FLOPs to the yielded tally."""
    global _tally
    outer, _tally = _tally, _Tally()
    try:
        yield _tally
    finally:
        _tally = outer


def counted(array):
    """``array`` as a Counted array (a view; no copy)."""
    return np.asarray(array).view(Counted)


def _add(n):
    if _tally is not None:
        _tally.flops += int(n)


def _plain(x):
    return x.view(np.ndarray) if isinstance(x, Counted) else x


class Counted(np.ndarray):
    """An array whose arithmetic is counted (see the module docstring)."""

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = [_plain(x) for x in inputs]
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        _count_ufunc(ufunc, method, plain, result)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types, args, kwargs):
        plain_args = [_unwrap(a) for a in args]
        plain_kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        result = func(*plain_args, **plain_kwargs)
        _count_function(func, plain_args, plain_kwargs, result)
        return _wrap(result)


def _unwrap(value):
    if isinstance(value, (list, tuple)):
        return type(value)(_unwrap(v) for v in value)
    return _plain(value)


def _wrap(result):
    if isinstance(result, tuple):
        return tuple(_wrap(r) for r in result)
    if isinstance(result, np.ndarray):
        return result.view(Counted)
    return result


def _count_ufunc(ufunc, method, inputs, result):
    if ufunc.__name__ in _FREE_UFUNCS:
        return
    if ufunc.__name__ == "matmul":
        _add(2 * np.asarray(result).size * np.asarray(inputs[0]).shape[-1])
        return
    if method == "__call__":
        first = result[0] if isinstance(result, tuple) else result
        _add(np.asarray(first).size)
    elif method == "reduce":
        _add(max(np.asarray(inputs[0]).size - np.asarray(result).size, 0))
    elif method == "accumulate":
        _add(max(np.asarray(inputs[0]).size - 1, 0))
    elif method == "at":  # np.add.at(a, index, values): one add per value
        values = inputs[2] if len(inputs) > 2 else 1
        _add(np.size(values))


def _count_function(func, args, kwargs, result):
    name = func.__name__
    if name in ("dot", "inner"):  # contracts the last axis of a (dot: with b's second-to-last)
        _add(2 * np.asarray(result).size * np.asarray(args[0]).shape[-1])
    elif name == "tensordot":
        _add(2 * np.asarray(result).size * _contracted_length(args, kwargs))
    elif name == "einsum":
        _add(2 * _einsum_macs(args))
    elif name in ("where", "select"):
        _add(np.asarray(result).size)
    # everything else (copies, reshapes, concatenation, pads, fills, takes) is free


def _contracted_length(args, kwargs):
    """For tensordot: the product of the lengths of the contracted axes."""
    a = np.asarray(args[0])
    axes = kwargs.get("axes", args[2] if len(args) > 2 else 2)
    if isinstance(axes, int):
        return int(np.prod(a.shape[a.ndim - axes:])) if axes else 1
    return int(np.prod([a.shape[i] for i in np.atleast_1d(axes[0])]))


def _einsum_macs(args):
    """Multiply-adds of an einsum: the product of the lengths of every distinct index."""
    spec = args[0].replace(" ", "")
    operands = [np.asarray(a) for a in args[1:]]
    inputs = spec.split("->")[0].split(",")
    sizes = {}
    for subscript, operand in zip(inputs, operands):
        for letter, length in zip(subscript, operand.shape):
            sizes[letter] = length
    macs = 1
    for length in sizes.values():
        macs *= length
    return macs
