"""Similarities and distances: cosine_similarity and pairwise_distance, composed of
differentiable ops (the norm, division, product and sum), as PyTorch computes them."""

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.grad_mode import no_grad
from retrograd.tensor import Tensor

__all__ = ["cosine_similarity", "pairwise_distance"]


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """sum(x1 / max(||x1||, eps) * x2 / max(||x2||, eps)) along ``dim``, x1 and x2 broadcast
    together; the result has the broadcast shape without ``dim``.

    As in PyTorch, each input is divided by its norm before the product (the result stays in
    [-1, 1]), and the clamp at eps changes the norms' values only: the gradient flows through
    each norm as if it were not clamped (for a zero vector the norm's gradient is 0).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.cosine_similarity(rg.tensor([[1.0, 0.0], [1.0, 1.0]]), rg.tensor([[0.0, 2.0]]))
        tensor([0.    , 0.7071])
    """
    x1, x2 = _operands(x1, x2)
    dim = _checks.dim("cosine_similarity", dim, max(x1.ndim, x2.ndim, 1))
    shape = _broadcast_shape(x1, x2, "cosine_similarity")
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    scaled = [x / _clamped_norm(x, dim, eps) for x in (x1, x2)]
    return (scaled[0] * scaled[1]).sum(dim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """||x1 - x2 + eps||_p along the last dim of x1 and x2 broadcast together (PyTorch's
    formula: eps is added to every difference, so that the norm's gradient is defined when
    x1 == x2). p: 2, 1, inf, -inf, 0 or any positive number.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.pairwise_distance(rg.tensor([[0.0, 0.0], [1.0, 1.0]]), rg.tensor([[3.0, 4.0]]),
        ...                     eps=0.0)
        tensor([5.    , 3.6056])
    """
    return _pairwise_distance(x1, x2, p, eps, keepdim, "pairwise_distance")


def _pairwise_distance(x1, x2, p, eps, keepdim, op):
    """pairwise_distance whose errors name ``op`` (triplet_margin_loss calls it too)."""
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    p = _checks.norm_order(op, p)
    eps = _checks.number(op, "eps", eps)
    keepdim = _checks.boolean(op, "keepdim", keepdim)
    _broadcast_shape(x1, x2, op)
    # integer inputs are measured in the default float dtype (PyTorch accepts them too)
    x1, x2 = (x if _dt.is_floating(x._data.dtype) else x.to(_dt.default_float)
              for x in (x1, x2))
    if x1.dtype != x2.dtype:
        target = _dt.promote(x1._data, x2._data)
        x1, x2 = x1.to(target), x2.to(target)
    ndim = max(x1.ndim, x2.ndim)
    return (x1 - x2 + eps).norm(p, dim=ndim - 1 if ndim else None, keepdim=keepdim)

def _clamped_norm(x, dim, eps):
    """||x|| along dim (kept), its values clamped below at eps outside the graph."""
    norm = x.norm(dim=dim, keepdim=True).clone()
    with no_grad():
        norm.clamp_(min=eps)
    return norm


def _operands(x1, x2):
    for name, t in (("x1", x1), ("x2", x2)):
        if not isinstance(t, Tensor):
            raise TypeError(f"cosine_similarity: {name} must be a Tensor, got {type(t).__name__}")
        if not _dt.is_floating(t._data.dtype):
            raise TypeError(f"cosine_similarity: expected floating-point inputs, got {name} of "
                            f"dtype {t.dtype} (shapes {x1.shape} and {x2.shape})")
    if x1.dtype != x2.dtype:
        target = _dt.promote(x1._data, x2._data)
        x1, x2 = x1.to(target), x2.to(target)
    return x1, x2


def _broadcast_shape(x1, x2, op):
    try:
        return np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ValueError(f"{op}: x1 of shape {x1.shape} and x2 of shape "
                         f"{x2.shape} cannot be broadcast together") from None
