"""Pairwise distances: cdist, the p-norm distance between every row of x1 and every row of x2.

Shapes: x1:(..., P, M), x2:(..., R, M) with the same batch dims (the caller broadcasts them),
y:(..., P, R) with y[..., p, r] = ||x1[..., p, :] - x2[..., r, :]||_p.
"""

import numpy as np

from retrograd.autograd.cost import Cost, shape_text
from retrograd.autograd.function import Function
from retrograd.ops._matmul import matmul

__all__ = ["Cdist", "uses_matmul"]


def uses_matmul(p, rows1, rows2):
    """PyTorch's default compute_mode ("use_mm_for_euclid_dist_if_necessary"): the Euclidean
    distance goes through a matrix product when either side has more than 25 rows."""
    return p == 2 and (rows1 > 25 or rows2 > 25)


def _euclidean_by_matmul(x1, x2):
    """sqrt(|a|^2 + |b|^2 - 2 a.b), clamped at 0 (rounding can make it slightly negative):
    one matrix product instead of a (P, R, M) difference. Less accurate for close points,
    as PyTorch's same path."""
    sq1 = np.sum(x1 * x1, axis=-1)[..., :, None]
    sq2 = np.sum(x2 * x2, axis=-1)[..., None, :]
    squared = sq1 + sq2 - 2.0 * matmul(x1, np.swapaxes(x2, -1, -2))
    return np.sqrt(np.maximum(squared, 0.0))


def _differences(x1, x2):
    """diff[..., p, r, :] = x1[..., p, :] - x2[..., r, :] (arrays or Tensors)."""
    return np.expand_dims(x1, -2) - np.expand_dims(x2, -3)


def _pnorm_of_rows(diff, p):
    """The p-norm of diff over its last axis (p = 0 counts non-zeros)."""
    magnitude = np.abs(diff)
    if p == 0:
        return np.sum(diff != 0, axis=-1).astype(diff.dtype)
    if p == np.inf:
        return np.max(magnitude, axis=-1, initial=0.0)
    if p == 1:
        return np.sum(magnitude, axis=-1)
    if p == 2:
        return np.sqrt(np.sum(diff * diff, axis=-1))
    return np.sum(magnitude ** p, axis=-1) ** (1.0 / p)


def _euclidean_backward(grad, x1, x2, y):
    """p = 2: with W = dL/dy / y (0 where y == 0),
    dL/dx1 = x1 * rowsum(W) - W @ x2,  dL/dx2 = x2 * colsum(W) - W^T @ x1."""
    zero = y == 0
    weights = np.where(zero, 0.0, grad / np.where(zero, 1.0, y))
    weights_t = np.swapaxes(weights, -1, -2)
    grad_x1 = x1 * np.sum(weights, axis=-1, keepdims=True) - matmul(weights, x2)
    grad_x2 = x2 * np.sum(weights_t, axis=-1, keepdims=True) - matmul(weights_t, x1)
    return grad_x1, grad_x2


def _pnorm_backward(grad, x1, x2, y, p):
    """Other p, on the (..., P, R, M) differences (PyTorch's _cdist_backward rules):
        p = 1:    dL/ddiff = dL/dy * sign(diff)
        p = inf:  dL/ddiff = dL/dy * sign(diff) * [|diff| == y]  (ties are not split)
        other p:  dL/ddiff = dL/dy * sign(diff) |diff|^(p-1) / y^(p-1), 0 where y == 0 (and
                  where diff == 0)
    then dL/dx1 = sum over r, dL/dx2 = -sum over p."""
    diff = _differences(x1, x2)
    sign = np.sign(_plain(diff))
    g = np.expand_dims(grad, -1)
    if p == 1:
        per_diff = g * sign
    elif p == np.inf:
        per_diff = g * sign * (np.abs(_plain(diff)) == np.expand_dims(_plain(y), -1))
    else:
        y_ = np.expand_dims(y, -1)
        dead = (_plain(y_) == 0) | (_plain(diff) == 0)
        safe_y = np.where(dead, 1.0, y_)
        safe_abs = np.where(dead, 1.0, np.abs(diff))
        per_diff = np.where(dead, 0.0, g * sign * (safe_abs / safe_y) ** (p - 1))
    return np.sum(per_diff, axis=-2), -np.sum(per_diff, axis=-3)


def _plain(x):
    """x's values as an array (a Tensor in double backward: a condition or a sign is a
    constant)."""
    return x if isinstance(x, np.ndarray) else x.detach().numpy()


class Cdist(Function):
    """y[..., p, r] = ||x1[..., p, :] - x2[..., r, :]||_p for p = 2 (default), 1, inf, 0 or
    any other p > 0. x1:(..., P, M), x2:(..., R, M), y:(..., P, R).

    p = 2 (W = dL/dy / y, taken as 0 where y == 0: a zero distance, as PyTorch, gives no
    gradient rather than nan):
        dL/dx1 = x1 * sum_r W - W @ x2          (..., P, M)
        dL/dx2 = x2 * sum_p W^T - W^T @ x1      (..., R, M)
    other p: see _pnorm_backward (on the (..., P, R, M) differences); p = 0 has gradient 0.
    Forward with ``matmul`` (p = 2 only) uses one matrix product (_euclidean_by_matmul):
    PyTorch's default compute_mode does when a side has more than 25 rows (uses_matmul).
    Saves: x1, x2 and y.
    """

    @staticmethod
    def forward(ctx, x1, x2, p=2.0, matmul=False):
        ctx.p = p
        if matmul and p == 2:
            y = _euclidean_by_matmul(x1, x2)
        else:
            y = _pnorm_of_rows(_differences(x1, x2), p)
        y = np.asarray(y).astype(x1.dtype, copy=False)
        ctx.save_for_backward(x1, x2, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x1, x2, y = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return np.zeros(x1.shape, x1.dtype), np.zeros(x2.shape, x2.dtype)
        if p == 2:
            return _euclidean_backward(grad_out, x1, x2, y)
        return _pnorm_backward(grad_out, x1, x2, y, p)

    @staticmethod
    def cost(call):
        """With B batches, P and R rows, M features (n = B P R M):
            p = 2, small: differences n, squares n, sums n - B P R, square roots B P R: 3n;
            p = 2 by matmul: 2n (the product) + the row norms and the combination;
            other p: differences, |.|, ^p, sum, ^(1/p): about 4n.
        Backward p = 2: W (3 B P R), two row sums and two matmuls with the combinations:
        4n + 2 B (P + R) M; other p: about 8n."""
        x1, x2 = call.inputs[0], call.inputs[1]
        y = call.outputs[0]
        p, matmul = call.attrs.get("p", 2.0), call.attrs.get("matmul", False)
        m = x1.shape[-1]
        n = y.size * m
        rows = y.size // max(x1.shape[-2] * x2.shape[-2], 1) * (x1.shape[-2] + x2.shape[-2])
        if p == 2:
            forward = 2 * n + 2 * rows * m + 4 * y.size if matmul else 3 * n + y.size
            backward = 3 * y.size + 4 * n + 2 * rows * m
        else:
            forward, backward = 4 * n, 8 * n
        return Cost(forward, backward if call.any_grad else 0,
                    f"cdist p={p:g} ({shape_text(x1)}, {shape_text(x2)}) -> {shape_text(y)}: "
                    f"about {3 if p == 2 else 4}*B*P*R*M")
