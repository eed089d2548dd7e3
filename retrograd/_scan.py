"""cumsum and cumprod, as torch.cumsum and torch.cumprod: argument checks, then one op of
``ops/scan.py``."""

import numpy as np

from retrograd import _checks
from retrograd.ops.scan import Cumprod, Cumsum
from retrograd.tensor import Tensor

__all__ = ["cumsum", "cumprod"]


def _prepare(op, input, dim, dtype):  # noqa: A002 - PyTorch's name
    """(x, axis): x cast to ``dtype`` when given, integers and bools widened to int64 (as
    torch: a running sum of int32 or bool values is int64), a 0-d x as one element."""
    x = _checks.instance_of(op, "input", input, Tensor)
    axis = _checks.dim(op, dim, x.ndim)
    if dtype is not None:
        x = x.to(dtype)
    elif x._data.dtype.kind in "biu":
        x = x.to(np.int64)
    return (x.reshape(1), 0) if x.ndim == 0 else (x, axis)


def cumsum(input, dim, *, dtype=None):  # noqa: A002
    """y_i = x_0 + ... + x_i along ``dim``; the gradient is the reverse running sum of dL/dy.

    Example:
        >>> import retrograd as rg
        >>> rg.cumsum(rg.tensor([[1, 2, 3], [4, 5, 6]]), dim=1)
        tensor([[ 1,  3,  6],
                [ 4,  9, 15]])
    """
    x, axis = _prepare("cumsum", input, dim, dtype)
    return Cumsum.apply(x, axis=axis).reshape(input.shape)


def cumprod(input, dim, *, dtype=None):  # noqa: A002
    """y_i = x_0 * ... * x_i along ``dim``; the gradient is exact also where x holds zeros
    (ops/scan.py Cumprod).

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([2.0, 0.0, 3.0], requires_grad=True)
        >>> y = rg.cumprod(x, 0)
        >>> y.sum().backward()
        >>> y, x.grad
        (tensor([2., 0., 0.], grad_fn=<CumprodBackward>), tensor([1., 8., 0.]))
    """
    x, axis = _prepare("cumprod", input, dim, dtype)
    return Cumprod.apply(x, axis=axis).reshape(input.shape)
