"""Dropout: zero each element with probability p and scale the survivors by 1 / (1 - p);
FeatureDropout (Dropout1d/2d/3d) does it to whole channels."""

import numpy as np

from retrograd import random as _random
from retrograd.autograd.cost import call_arg
from retrograd.autograd.function import Function
from retrograd.ops.elementwise import elementwise_cost

__all__ = ["Dropout", "FeatureDropout", "dropout_mask"]


class Dropout(Function):
    """y = x * m, with m = keep / (1 - p) and keep ~ Bernoulli(1 - p) drawn independently per
    element from retrograd's generator (``retrograd.manual_seed`` makes it reproducible).

    dL/dx = dL/dy * m: the same mask as forward, so dropped elements get no gradient and kept
    ones get their gradient scaled by 1 / (1 - p).
    Saves: m (a constant of x's shape and dtype, holding 0 or 1 / (1 - p)). The backward is
    linear in dL/dy with a constant mask, so it is also right under create_graph.
    Attributes: p in [0, 1]; p = 1 drops everything (m = 0).
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x, p=0.5):
        ctx.mask = dropout_mask(x.shape, x.dtype, p)
        return x * ctx.mask

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * ctx.mask

    @staticmethod
    def cost(call):
        """x * m: n; backward dL/dy * m: n (drawing the mask is not arithmetic on x)."""
        return elementwise_cost(call, "dropout", 1, 1, f"n (p = {call_arg(call, 1, 'p', 0.5)})")


class FeatureDropout(Function):
    """y = x * m with one draw per (sample, channel): x:(N, C, *), m:(N, C, 1, ..., 1),
    m = keep / (1 - p), keep ~ Bernoulli(1 - p), broadcast over the feature map, so that
    each channel of each sample is zeroed whole or kept whole and scaled by 1 / (1 - p)
    (neighbouring pixels are correlated; dropping them one by one barely regularizes).

    dL/dx = dL/dy * m: a dropped channel gets no gradient, a kept one its gradient scaled by
    1 / (1 - p). Linear in dL/dy with a constant mask, so also right under create_graph.
    Saves: m (a constant of shape (N, C, 1, ..., 1): one number per channel, not per element).
    Attributes: p in [0, 1]; p = 1 drops everything.
    """

    @staticmethod
    def forward(ctx, x, p=0.5):
        ctx.mask = dropout_mask(x.shape[:2] + (1,) * (x.ndim - 2), x.dtype, p)
        return x * ctx.mask

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * ctx.mask

    @staticmethod
    def cost(call):
        """x * m (m broadcast over each channel): n; backward dL/dy * m: n."""
        return elementwise_cost(call, "feature_dropout", 1, 1,
                                f"n (p = {call_arg(call, 1, 'p', 0.5)})")


def dropout_mask(shape, dtype, p):
    """0 with probability p, 1 / (1 - p) otherwise, in ``dtype``; all zeros when p = 1.
    Drawn from retrograd's generator; shared by every op that drops (Dropout, attention).

    Example:
        >>> import numpy as np
        >>> import retrograd as rg
        >>> from retrograd.ops.dropout import dropout_mask
        >>> _ = rg.manual_seed(0)
        >>> sorted(set(dropout_mask((100,), np.float32, 0.5).tolist()))
        [0.0, 2.0]
    """
    draw_dtype = np.float64 if dtype == np.float64 else np.float32
    keep = _random.generator().random(shape, dtype=draw_dtype) >= p
    mask = keep.astype(dtype)
    if p < 1.0:
        mask *= 1.0 / (1.0 - p)
    return mask
