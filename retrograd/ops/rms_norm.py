"""RMS normalization (Zhang and Sennrich, 2019) as one fused op: each row is divided by its
root mean square, then scaled per element. There is no mean subtracted and no bias.

Over A, the trailing normalized dims (a "row" is one slice of x over A, with M elements):

    ms = mean(x^2, A)     rstd = 1 / sqrt(ms + eps)     x_hat = x * rstd     y = x_hat * gamma

Backward, with g = dL/dy * gamma (the gradient reaching x_hat). Inside one row,
    d x_hat_j / d x_i = rstd * delta_ij + x_j * d rstd / d x_i
and, because d ms / d x_i = 2 x_i / M,
    d rstd / d x_i = -1/2 (ms + eps)^(-3/2) * 2 x_i / M = -rstd^3 x_i / M = -rstd^2 x_hat_i / M,
so d x_hat_j / d x_i = rstd * (delta_ij - x_hat_i x_hat_j / M), and summing g_j over j:

    dL/dx = rstd * (g - x_hat * mean(g * x_hat, A))                       (x's shape)
    dL/dgamma = sum(dL/dy * x_hat) over the leading (row) dims       (normalized_shape)

It is layer norm's rule (ops/norm.py) without the mean(g) term, which came from subtracting
the mean. The op saves x_hat (x's shape) and gamma, and keeps rstd (one value per row) on ctx;
its backward is a raw-array kernel, so it is once-differentiable. float16 and bfloat16 inputs
are normalized in float32 (the output keeps the input's dtype). A row whose mean square is
not accurate in x's dtype (x^2 overflows, or is subnormal with a tiny eps) is normalized from
x divided by a power of two, as layer norm's statistics are (``_rms_scaled``).

``rms_norm_reference_backward`` at the end of the file is the rule above in plain NumPy,
recomputing rstd and x_hat from x; the tests check the op against it.
"""

import math

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.ops.norm import _accurate, _affine, _compute_dtype
from retrograd.ops.reduce import power_of_two_scale

__all__ = ["RMSNorm", "rms_norm_reference_backward"]


def _row_mean(a, b):
    """mean(a * b) of each row of a, b:(R, M), as (R, 1); 0 for rows of no element."""
    return np.einsum("rm,rm->r", a, b)[:, None] * (1.0 / max(a.shape[1], 1))


def _mean_square(x2d):
    """mean(x^2) of each row of x2d:(R, M), as (R, 1)."""
    return _row_mean(x2d, x2d)


def _rms_normalize(x2d, eps):
    """(x_hat, rstd) of the rows of x2d:(R, M); rstd is (R, 1)."""
    ms = _mean_square(x2d)
    if not _accurate(ms, eps):
        return _rms_scaled(x2d, eps)
    rstd = 1.0 / np.sqrt(ms + eps)
    return x2d * rstd, rstd


def _rms_scaled(x2d, eps):
    """_rms_normalize for rows whose mean square overflows or underflows in x's dtype: each
    row is divided by a power of two s (power_of_two_scale: exact, |u| <= 1 for u = x / s),
        rstd = 1 / sqrt(ms + eps) = (1 / s) / sqrt(ms_u + eps / s^2),   x_hat = u * (s rstd)
    where eps / s^2 overflows it is the whole denominator (s rstd = s / sqrt(eps)), and where
    ms = ms_u * s^2 is itself exact (normal, or 0 for a zero row) rstd is taken from it
    (eps / s^2 may be subnormal and lose digits). Rows with inf or nan give nan, as the
    unscaled formula."""
    scale = power_of_two_scale(x2d, (1,))
    u = x2d / scale
    ms_u = _mean_square(u)
    ms = ms_u * scale * scale
    eps_u = eps / scale / scale
    direct = (ms_u == 0) | (np.isfinite(ms) & (ms >= np.finfo(ms.dtype).tiny))
    rstd_u = np.where(np.isinf(eps_u), scale / math.sqrt(eps) if eps > 0 else np.inf,
                      1.0 / np.sqrt(ms_u + eps_u))
    rstd_u = np.where(direct, scale / np.sqrt(np.where(direct, ms, 1.0) + eps), rstd_u)
    return u * rstd_u, rstd_u / scale


class RMSNorm(Function):
    """RMS normalization over the last k dims of x:(*, D1..Dk), A = those dims,
    M = D1 * ... * Dk; gamma has shape (D1..Dk) (normalized_shape) or is None.

    With x seen as rows x_2d:(R, M), dL/dy_2d:(R, M) (module docstring):
        g = dL/dy_2d * gamma                                                  (R, M)
        dL/dx = rstd * (g - x_hat * mean(g * x_hat, -1))                        (R, M)
        dL/dgamma = sum over rows of dL/dy_2d * x_hat                           (M,)
    Saves: x_hat (when dL/dx or dL/dgamma is needed) and gamma; rstd (R values) on ctx.
    Reference: rms_norm_reference_backward, the same rule from the definitions.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, normalized_ndim=1, eps=1e-6):
        normalized_shape = x.shape[x.ndim - normalized_ndim:]
        rows = (math.prod(x.shape[:x.ndim - normalized_ndim]), math.prod(normalized_shape))
        x2d = x.reshape(rows).astype(_compute_dtype(x), copy=False)
        x_hat, rstd = _rms_normalize(x2d, eps)
        # NOTE: x_hat is kept in x's shape: without a weight (and a cast) it is the output
        # itself, and saving that very array lets an in-place change of it be caught
        x_hat = x_hat.reshape(x.shape)
        y = _affine(x_hat, weight, None, x.dtype)
        ctx.save_for_backward(x_hat if any(ctx.needs_input_grad) else None, weight)
        ctx.rstd, ctx.rows, ctx.normalized_shape = rstd, rows, normalized_shape
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x_hat, weight = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        g2d = grad_out.astype(_compute_dtype(grad_out), copy=False).reshape(ctx.rows)
        x_hat = x_hat.reshape(ctx.rows)
        grad_x = grad_w = None
        if need_x:
            g = g2d * weight.reshape(-1) if weight is not None else g2d
            grad_x = x_hat * -_row_mean(g, x_hat)
            grad_x += g
            grad_x *= ctx.rstd
            grad_x = grad_x.reshape(grad_out.shape)
        if need_w:
            grad_w = np.einsum("rm,rm->m", g2d, x_hat).reshape(ctx.normalized_shape)
        return grad_x, grad_w

    @staticmethod
    def cost(call):
        """R rows of M, n = R * M. Forward: mean(x^2) (n squares, n - R adds, R divides:
        2n), + eps, sqrt and 1 / per row (3R), x * rstd (n), * gamma (n when given): 3n + 3R.
        Backward dL/dx = rstd * (g - x_hat * mean(g * x_hat)): g * x_hat n, its mean n,
        x_hat * it n, g - it n, * rstd n: 5n, + n for g = dL/dy * gamma; dL/dgamma 2n - M."""
        x = call.inputs[0]
        m = math.prod(x.shape[len(x.shape) - call_arg(call, 2, "normalized_ndim", 1):])
        n, rows = x.size, x.size // max(m, 1)
        has_weight = call_arg(call, 1, "weight") is not None
        forward = 3 * n + 3 * rows + n * has_weight
        backward = (call.needs(0) * (5 + has_weight) * n
                    + call.needs(1) * (n + reduction_flops(n, m)))
        return Cost(forward, backward,
                    f"rms_norm x({shape_text(x)}), {rows} rows: 3*n + 3*rows + n per weight")


# ---------------------------------------------------------------- the reference backward
def rms_norm_reference_backward(x, weight, grad_out, normalized_ndim=1, eps=1e-6):
    """The backward of RMSNorm from the definitions, with A = the last normalized_ndim dims:

        rstd = 1 / sqrt(mean(x^2, A) + eps)       x_hat = x * rstd
        dL/dx = rstd * (g - x_hat * mean(g * x_hat, A)),       g = dL/dy * gamma
        dL/dgamma = sum(dL/dy * x_hat) over the leading dims

    x:(*, D1..Dk), weight (gamma):(D1..Dk) or None, grad_out = dL/dy (x's shape). Returns
    (dL/dx, dL/dgamma) (None for a missing weight), computed in x's dtype.
    """
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    rstd = 1.0 / np.sqrt((x * x).mean(axis=axes, keepdims=True) + eps)
    x_hat = x * rstd
    g = grad_out * weight if weight is not None else grad_out
    grad_x = rstd * (g - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))
    leading = tuple(range(x.ndim - normalized_ndim))
    grad_w = (grad_out * x_hat).sum(axis=leading) if weight is not None else None
    return grad_x, grad_w
