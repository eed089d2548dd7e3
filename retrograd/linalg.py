"""retrograd.linalg: norms and singular values, as torch.linalg.

Supported orders. ``vector_norm``: 2 (the default), any other positive number, 0 (the count
of non-zeros), inf (max |x|) and -inf (min |x|); negative finite orders are refused.
``matrix_norm``: 'fro' (the default), 'nuc' (the sum of the singular values), 2 and -2 (the
largest and smallest singular value), inf and -inf (the max and min absolute row sum), 1 and
-1 (the max and min absolute column sum). ``norm`` picks one of the two, as
torch.linalg.norm. The vector norms are one op (ops/reduce.py Norm): at x = 0 the gradient
of the 2-norm is 0 (PyTorch's subgradient), never nan. Row and column sums are composed of
abs, sum and amax/amin (tied maxima share the gradient evenly, as PyTorch's); the spectral
and nuclear norms reduce ``svdvals`` (ops/svd.py SingularValues).
"""

import math
import numbers

from retrograd import _checks
from retrograd.ops.svd import SingularValues
from retrograd.tensor import Tensor

__all__ = ["norm", "vector_norm", "matrix_norm", "svdvals"]

_MATRIX_ORDS = ("'fro'", "'nuc'", "2", "-2", "inf", "-inf", "1", "-1")


def _floating_tensor(op, A, dtype):
    t = _checks.instance_of(op, "input", A, Tensor)
    return t.to(dtype) if dtype is not None else _checks.floating(op, t)


def _vector_ord(op, ord):  # noqa: A002 - PyTorch's name
    if isinstance(ord, numbers.Real) and not isinstance(ord, bool) \
            and (ord >= 0 or ord == -math.inf):
        return float(ord)
    raise ValueError(f"{op}: ord must be a number >= 0, inf or -inf for a vector norm, got "
                     f"{ord!r} (negative orders other than -inf are not supported)")


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """(sum |x|^ord)^(1/ord) over ``dim`` (all dims by default); ord 0, inf, -inf as above.

    Example:
        >>> import retrograd as rg
        >>> rg.linalg.vector_norm(rg.tensor([3.0, -4.0]))
        tensor(5.)
        >>> rg.linalg.vector_norm(rg.tensor([3.0, -4.0]), ord=float("inf"))
        tensor(4.)
    """
    t = _floating_tensor("linalg.vector_norm", x, dtype)
    return t.norm(_vector_ord("linalg.vector_norm", ord), dim=dim, keepdim=keepdim)


def _matrix_dims(op, dim, ndim):
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise ValueError(f"{op}: dim must be a 2-tuple of dims, got {dim!r}")
    if ndim < 2:
        raise ValueError(f"{op}: the input must have at least 2 dims, got {ndim}")
    d0, d1 = (_checks.dim(op, d, ndim) for d in dim)
    if d0 == d1:
        raise ValueError(f"{op}: dim {dim!r} names the same dimension twice")
    return d0, d1


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):  # noqa: A002
    """The matrix norm of the matrices in ``A`` over the dims ``dim`` (rows, columns).

    Example:
        >>> import retrograd as rg
        >>> A = rg.tensor([[1.0, -2.0], [3.0, 4.0]])
        >>> rg.linalg.matrix_norm(A, ord=1), rg.linalg.matrix_norm(A, ord=float("inf"))
        (tensor(6.), tensor(7.))
    """
    op = "linalg.matrix_norm"
    t = _floating_tensor(op, A, dtype)
    rows, cols = _matrix_dims(op, dim, t.ndim)
    if isinstance(ord, str):
        if ord == "fro":
            return t.norm(2.0, dim=(rows, cols), keepdim=keepdim)
        if ord == "nuc":
            return _spectral(t, rows, cols, keepdim, "sum")
    elif ord in (2, -2):
        return _spectral(t, rows, cols, keepdim, "amax" if ord > 0 else "amin")
    elif ord in (math.inf, -math.inf, 1, -1):
        summed, picked = (cols, rows) if ord in (math.inf, -math.inf) else (rows, cols)
        sums = t.abs().sum(dim=summed, keepdim=True)
        y = sums.amax(dim=picked, keepdim=True) if ord > 0 else \
            sums.amin(dim=picked, keepdim=True)
        return y if keepdim else y.squeeze((rows, cols))
    raise ValueError(f"{op}: ord must be one of {', '.join(_MATRIX_ORDS)}, got {ord!r}")


def _spectral(t, rows, cols, keepdim, reduction):
    """sum, max or min of the singular values of the (rows, cols) matrices of t."""
    others = [d for d in range(t.ndim) if d not in (rows, cols)]
    values = SingularValues.apply(t.permute(*others, rows, cols))
    y = getattr(values, reduction)(dim=-1)
    if keepdim:
        for d in sorted((rows, cols)):
            y = y.unsqueeze(d)
    return y


def svdvals(A):
    """The singular values of the matrices in A (*, m, n), descending: (*, min(m, n)).

    Example:
        >>> import retrograd as rg
        >>> rg.linalg.svdvals(rg.tensor([[3.0, 0.0], [0.0, -4.0]]))
        tensor([4., 3.])
    """
    t = _floating_tensor("linalg.svdvals", A, None)
    if t.ndim < 2:
        raise ValueError(f"linalg.svdvals: the input must have at least 2 dims, got shape "
                         f"{tuple(t.shape)}")
    return SingularValues.apply(t)


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """torch.linalg.norm: a vector norm over one dim (an int or a 1-tuple), a matrix norm over
    two; with dim None, the 2-norm of all elements when ord is None, else the vector norm of
    a 1-D A or the matrix norm of a 2-D A.

    Example:
        >>> import retrograd as rg
        >>> rg.linalg.norm(rg.tensor([[3.0, 0.0], [0.0, 4.0]]))
        tensor(5.)
        >>> rg.linalg.norm(rg.tensor([[3.0, 0.0], [0.0, 4.0]]), ord="nuc")
        tensor(7.)
    """
    op = "linalg.norm"
    t = _checks.instance_of(op, "input", A, Tensor)
    if dim is not None:
        dims = dim if isinstance(dim, (tuple, list)) else (dim,)
        if len(dims) == 1:
            return vector_norm(t, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        if len(dims) == 2:
            return matrix_norm(t, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
        raise ValueError(f"{op}: dim must be an int, a 1-tuple or a 2-tuple, got {dim!r}")
    if ord is None:
        return vector_norm(t, 2, None, keepdim, dtype=dtype)
    if t.ndim == 1:
        return vector_norm(t, ord, None, keepdim, dtype=dtype)
    if t.ndim == 2:
        return matrix_norm(t, ord, (0, 1), keepdim, dtype=dtype)
    raise ValueError(f"{op}: when dim is not given but ord is, the input must be 1-D or 2-D, "
                     f"got shape {tuple(t.shape)}")
