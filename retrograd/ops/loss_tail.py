"""The multi-class margin loss (PyTorch's multi_margin_loss). The other losses of PyTorch's
tail (margin ranking, hinge and cosine embedding, triplet, soft margin, Poisson and Gaussian
NLL, multi-label soft margin) are compositions in nn.functional, as in PyTorch.

MultiMarginLoss returns one loss per sample; nn.functional reduces them with the
differentiable reductions. Why an op and not a composition (gather, clamp, where, pow, sum,
as tests/ops/test_loss_tail.py builds it): PyTorch's kernel counts z = 0 as inactive, while
clamp passes the gradient at its bound, and the op makes one pass over the (N, C) scores
where the composition makes about eight.
"""

import numpy as np

from retrograd.autograd.cost import Cost, shape_text
from retrograd.autograd.function import Function

__all__ = ["MultiMarginLoss"]


class MultiMarginLoss(Function):
    """The multi-class hinge loss of scores x:(N, C), class-index targets t:(N,) and class
    weights w:(C,) (None means 1), with z[n, i] = margin - x[n, t_n] + x[n, i]:
        loss_n = w[t_n] / C * sum over i != t_n of max(z[n, i], 0)^p        (p = 1 or 2)
    dL/dx[n, i]   = dL/dloss_n * w[t_n] / C * p z[n, i]^(p - 1)   where i != t_n and z > 0
    dL/dx[n, t_n] = -(the sum of those over i)
    and 0 elsewhere. z = 0 counts as inactive (no gradient), as PyTorch's kernel; the target
    (int64) and the weights (no gradient, as PyTorch) are constants.
    Saves: the mask [z > 0] without the target column (a constant), and x (an input) for
    p = 2, whose gradient needs z. Once-differentiable (raw-array backward).
    Shapes: x (N, C), t (N,), w (C,) or None, y (N,).
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, target, weight=None, p=1, margin=1.0):
        rows = np.arange(x.shape[0])
        z = margin - x[rows, target][:, None] + x
        active = z > 0
        active[rows, target] = False
        hinge = np.where(active, z, 0.0)
        terms = hinge * hinge if p == 2 else hinge
        scale = (weight[target] if weight is not None else 1.0) / x.shape[1]
        ctx.active, ctx.target, ctx.scale, ctx.p, ctx.margin = active, target, scale, p, margin
        if p == 2:
            ctx.save_for_backward(x)
        return (np.sum(terms, axis=1) * scale).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        coefficient = (grad_out * ctx.scale)[:, None]
        if ctx.p == 2:
            (x,) = ctx.saved_tensors
            rows = np.arange(x.shape[0])
            z = ctx.margin - x[rows, ctx.target][:, None] + x
            grad = np.where(ctx.active, 2.0 * z * coefficient, 0.0)
        else:
            grad = np.where(ctx.active, coefficient, 0.0)
        grad[np.arange(grad.shape[0]), ctx.target] = -np.sum(grad, axis=1)
        return grad, None, None

    @staticmethod
    def cost(call):
        """N rows of C classes (w[t] / C is a constant of the call, not counted): z (margin -
        x_t, then + x: N + NC), the select, the square (p = 2), the row sums (N(C - 1)) and
        the product by w_t / C (N): (2 + [p=2]) NC + N(C - 1) + 2N. Backward dL/dy * w_t / C
        (N), z recomputed and 2 z * (.) for p = 2 (N + 3NC), the select (NC), the row sums of
        the target column and their negation (N(C - 1) + N)."""
        n, c = call.inputs[0].shape
        p = call.attrs.get("p", 1)
        squared = int(p == 2)
        forward = (2 + squared) * n * c + n * (c - 1) + 2 * n
        backward = 2 * n + n * (c - 1) + n * c + squared * (n + 3 * n * c)
        return Cost(forward, backward * call.needs(0),
                    f"multi_margin_loss(p={p}) {shape_text(call.inputs[0])}: "
                    f"{2 + squared}*N*C + N*(C-1) + 2*N")
