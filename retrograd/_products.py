"""Matrix products under PyTorch's names: mm, bmm, addmm, baddbmm, outer.

Each checks the ranks and sizes PyTorch requires (errors name the op and the shapes), then
composes matmul (ops/linalg.py MatMul, whose gradients are those of every product here) with
scaling and addition. Mixed dtypes are promoted, as retrograd's matmul does.
"""

import numpy as np

from retrograd import _checks
from retrograd._operands import matmul
from retrograd.tensor import Tensor, make_tensor

__all__ = ["mm", "bmm", "addmm", "baddbmm", "outer"]


def _tensor(op, name, value):
    return _checks.instance_of(op, name, value, Tensor)


def _ranked(op, name, value, ndim):
    t = _tensor(op, name, value)
    if t.ndim != ndim:
        kind = {1: "a vector (1-D)", 2: "a matrix (2-D)", 3: "a 3-D tensor (batch, n, m)"}[ndim]
        raise RuntimeError(f"{op}: {name} must be {kind}, got shape {tuple(t.shape)}")
    return t


def _inner(op, a, b):
    if a.shape[-1] != b.shape[-2]:
        raise RuntimeError(f"{op}: cannot multiply {tuple(a.shape)} by {tuple(b.shape)}: "
                           f"inner dims {a.shape[-1]} != {b.shape[-2]}")


def mm(input, mat2):  # noqa: A002 - PyTorch's names
    """input @ mat2 for matrices (n, k) @ (k, m) -> (n, m); no broadcasting (see matmul)."""
    a, b = _ranked("mm", "input", input, 2), _ranked("mm", "mat2", mat2, 2)
    _inner("mm", a, b)
    return matmul(a, b)


def bmm(input, mat2):  # noqa: A002
    """Batched matrix product (b, n, k) @ (b, k, m) -> (b, n, m); the batch sizes must be
    equal (no broadcasting, as torch.bmm; see matmul).

    Example:
        >>> import retrograd as rg
        >>> rg.bmm(rg.ones(2, 3, 4), rg.ones(2, 4, 5)).shape
        (2, 3, 5)
    """
    a, b = _ranked("bmm", "input", input, 3), _ranked("bmm", "mat2", mat2, 3)
    if a.shape[0] != b.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: input {tuple(a.shape)} and mat2 "
                           f"{tuple(b.shape)} (torch.bmm does not broadcast; use matmul)")
    _inner("bmm", a, b)
    return matmul(a, b)


def _scaled_sum(op, input, product, beta, alpha):  # noqa: A002
    """beta * input + alpha * product, input broadcast to the product's shape. beta = 0
    ignores input's values (nan and inf in it do not propagate, as PyTorch); its gradient is
    then 0."""
    base = _tensor(op, "input", input)
    try:
        base = base.expand(*product.shape)
    except ValueError:
        raise RuntimeError(f"{op}: input of shape {tuple(input.shape)} does not broadcast to "
                           f"the product's shape {tuple(product.shape)}") from None
    scaled = product if alpha == 1 else product * alpha
    if beta == 0:
        return scaled + base.masked_fill(make_tensor(np.ones((), bool)), 0.0) \
            if base.requires_grad else scaled
    return scaled + (base if beta == 1 else base * beta)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):  # noqa: A002
    """beta * input + alpha * (mat1 @ mat2); mat1 (n, k), mat2 (k, m), input broadcasts to
    (n, m)."""
    return _scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):  # noqa: A002
    """beta * input + alpha * bmm(batch1, batch2); input broadcasts to (b, n, m).

    Example:
        >>> import retrograd as rg
        >>> rg.baddbmm(rg.zeros(1, 2, 2), rg.ones(3, 2, 4), rg.ones(3, 4, 2), alpha=0.5)[0]
        tensor([[2., 2.],
                [2., 2.]])
    """
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def outer(input, vec2):  # noqa: A002
    """The outer product of two vectors: (n,) and (m,) -> (n, m), y[i, j] = a[i] * b[j]."""
    a, b = _ranked("outer", "input", input, 1), _ranked("outer", "vec2", vec2, 1)
    return a.unsqueeze(1) * b.unsqueeze(0)
