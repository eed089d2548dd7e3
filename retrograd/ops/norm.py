"""Normalization ops: batch norm, layer norm and group norm, each one fused op.

All three normalize x over a set of axes A ("a group" is one slice of x over A, with M
elements), then apply a per-feature affine map:

    mu = mean(x, A)     var = mean((x - mu)^2, A)  (biased)     rstd = 1 / sqrt(var + eps)
    x_hat = (x - mu) * rstd                         y = x_hat * gamma + beta

Backward, with g = dL/dy * gamma (the gradient reaching x_hat). Inside one group,
    d x_hat_j / d x_i = rstd * (delta_ij - 1/M) + (x_j - mu) * d rstd / d x_i
and, because d var / d x_i = 2 (x_i - mu) / M (the mean's own term sums to zero),
    d rstd / d x_i = -rstd^3 (x_i - mu) / M = -rstd^2 x_hat_i / M,
so d x_hat_j / d x_i = rstd * (delta_ij - 1/M - x_hat_i x_hat_j / M), and summing over j:

    dL/dx = rstd * (g - mean(g, A) - x_hat * mean(g * x_hat, A))            (x's shape)
    dL/dgamma = sum(dL/dy * x_hat) over every axis gamma is broadcast along
    dL/dbeta  = sum(dL/dy)        over the same axes

The NumPy path saves x_hat (x's shape) and gamma (its input), and keeps rstd (one value per
group) on ctx; mu is not needed once x_hat is kept. The compiled path (below) saves x itself
instead, as PyTorch does, and its backward rebuilds mu and x_hat from x and rstd.
The backward is a raw-array kernel: the ops are once-differentiable (a double backward raises
an error naming the op).

Each op views x in a 3-D layout where the groups are easy to reach: layer norm as rows
(R, M) and group norm as (N, G, M), both reduced over the last axis; batch norm as
(N, C, S), reduced over N and S. Sums go through ``np.einsum``, which reduces these layouts
faster than ``np.sum`` and forms no temporary for the sum of a product (measured:
docs/ops/norm.md, 'Sums by einsum'). float16 and bfloat16 inputs are normalized in float32
(the output keeps the input's dtype).

With Numba installed (the 'fast' extra, retrograd/_fast.py), float32 C-contiguous arrays
(float16 and bfloat16 ones too, once in float32) take the compiled kernels of
retrograd/_numba/norm.py instead, one pass for the statistics and one for y per group; their
variance goes through the same ``_accurate`` check, and a batch that fails it is normalized by
the NumPy path (``_normalize_scaled``). The NumPy code stays the reference. With an affine map
(in training, for batch norm) the forward then writes no x_hat: the op saves x (the input
array, so that an in-place change of it before backward is caught; ``ctx.from_x``) and the
backward kernels rebuild mu and x_hat = (x - mu) * rstd by the forward's own operations, so
with the same bits; the bytes kept are x_hat's. Not writing x_hat took LayerNorm's forward of
(4096, 1024) from 3.3 to 1.4 ms. Without an affine map y is x_hat itself and is saved as the
NumPy path saves it.

``batch_norm_reference_backward``, ``layer_norm_reference_backward`` and
``group_norm_reference_backward`` at the end of this file are the formulas above in plain
NumPy, recomputing mu, var and x_hat from x; the tests check the fused kernels against them.
A worked example of the backward: docs/ops/norm.md.
"""

import math

import numpy as np

from retrograd._fast import compiled_for
from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.ops.elementwise import relu_backward
from retrograd.ops.reduce import power_of_two_scale

__all__ = ["BatchNorm", "BatchNormRelu", "LayerNorm", "GroupNorm", "batch_norm_reference_backward",
           "layer_norm_reference_backward", "group_norm_reference_backward"]

# einsum subscripts of one layout: (one operand's axes, the axes of a per-group statistic)
_LAST = ("...m", "...")     # rows (R, M) or groups (N, G, M): one statistic per row
_CHANNEL = ("ncs", "c")     # (N, C, S): one statistic per channel


def _sum(layout, *arrays):
    """Sum over each group of the elementwise product of one or two arrays."""
    operand, stat = layout
    return np.einsum(",".join([operand] * len(arrays)) + "->" + stat, *arrays)


def _mean(layout, *arrays):
    """_sum / M, shaped to broadcast against the layout."""
    shape = arrays[0].shape
    if layout is _LAST:
        return (_sum(layout, *arrays) * (1.0 / shape[-1]))[..., None]
    return (_sum(layout, *arrays) * (1.0 / (shape[0] * shape[2]))).reshape(1, -1, 1)


def _compute_dtype(x):
    """float16 and bfloat16 are normalized in float32: their sums would lose too much."""
    return np.float32 if x.dtype.itemsize < 4 else x.dtype


def _normalize(x, layout, eps):
    """(x_hat, mean, biased var, rstd); the statistics broadcast against x. When the
    variance of a group is not accurate in x's dtype (it overflowed, or fell where squares
    lose their digits), all groups are normalized again from x scaled (_normalize_scaled)."""
    mean = _mean(layout, x)
    x_hat = x - mean
    var = _mean(layout, x_hat, x_hat)
    if not _accurate(var, eps):
        return _normalize_scaled(x, layout, eps)
    rstd = 1.0 / np.sqrt(var + eps)
    x_hat *= rstd
    return x_hat, mean, var, rstd


_SMALLEST_ACCURATE = {np.dtype(t): np.finfo(t).tiny / np.finfo(t).eps
                      for t in (np.float32, np.float64)}


def _accurate(var, eps):
    """Whether every group's var + eps is finite and above the range where the squares that
    var sums are subnormal (so lost digits): a check on one value per group."""
    lowest = np.min(var, initial=np.inf) + eps
    return bool(np.isfinite(np.max(var, initial=0.0))) and lowest >= _SMALLEST_ACCURATE.get(
        var.dtype, 0.0)


def _normalize_scaled(x, layout, eps):
    """_normalize for groups whose statistics overflow or underflow in x's dtype (float32
    rows of 1e20, or of 1e-20 with a small eps): x is divided by a power of two s per group
    (power_of_two_scale: exact, |x / s| <= 1), u = x / s is normalized, and
        rstd = 1 / sqrt(var + eps) = (1 / s) / sqrt(var_u + eps / s^2)
    with eps / s^2 replaced, where it overflows, by what it then is: the whole denominator
    (rstd = 1 / sqrt(eps)); where var = var_u * s^2 is itself exact (normal, or 0 for a
    constant group) rstd = s / sqrt(var + eps) is taken from it instead (eps / s^2 may be
    subnormal, e.g. eps = 1e-320, and would lose digits). x_hat = (u - mean_u) * s * rstd
    is then finite and right; var and mean are scaled back (var may be inf: a float32
    variance of 1e40 is not representable, and then it is what the running variance of
    batch norm records).
    Inputs with nan or inf give nan, as in the unscaled formulas."""
    axes = (x.ndim - 1,) if layout is _LAST else (0, 2)
    scale = power_of_two_scale(x, axes)
    u = x / scale
    mean_u = _mean(layout, u)
    x_hat = u - mean_u
    var_u = _mean(layout, x_hat, x_hat)
    eps_u = eps / scale / scale
    var = var_u * scale * scale
    # where var is exact in x's dtype (normal, or 0 for a constant group) rstd comes from
    # var + eps itself: eps / s^2 may be subnormal (eps = 1e-320 in float64) and lose digits
    direct = (var_u == 0) | (np.isfinite(var) & (var >= np.finfo(var.dtype).tiny))
    rstd_u = np.where(np.isinf(eps_u), scale / math.sqrt(eps) if eps > 0 else np.inf,
                      1.0 / np.sqrt(var_u + eps_u))
    rstd_u = np.where(direct, scale / np.sqrt(np.where(direct, var, 1.0) + eps), rstd_u)
    x_hat *= rstd_u
    return x_hat, mean_u * scale, var, rstd_u / scale


def _kernels_for(*arrays):
    """The compiled norm kernels (retrograd._numba.norm) when Numba is used and every array
    is a non-empty float32 C-contiguous one, else None (the NumPy path)."""
    if not all(a.size for a in arrays):
        return None
    return compiled_for("norm", *arrays, dtypes=(np.dtype(np.float32),))


def _compiled_source(ctx, x, y, weight, bias):
    """What a compiled forward in training saves to rebuild x_hat from (module docstring): x,
    the op's input, when there is an affine map (ctx.from_x); else y, which is x_hat."""
    ctx.from_x = weight is not None or bias is not None
    return x if ctx.from_x else y


def _x_hat_source(saved, shape):
    """The saved x or x_hat in the backward's ``shape`` and compute dtype (x is the input,
    and may be float16 or not contiguous)."""
    return saved.reshape(shape).astype(_compute_dtype(saved), copy=False)


def _x_hat(ctx, source, axes):
    """x_hat for the NumPy backward: the saved x_hat, or, from the saved x (the compiled
    forward ran, and the kernels do not take this gradient or were switched off since),
    (x - mu) * rstd with mu the mean over ``axes`` in float64, rounded to float32 as the
    kernels round it."""
    if not ctx.from_x:
        return source
    mean = source.mean(axis=axes, dtype=np.float64, keepdims=True).astype(source.dtype)
    return (source - mean) * ctx.rstd


def _normalized_grad(g, x_hat, rstd, layout):
    """rstd * (g - mean(g) - x_hat * mean(g * x_hat)) per group: dL/dx from the gradient g
    reaching x_hat (module docstring). One allocation, updated in place."""
    mean_g = _mean(layout, g)
    dx = x_hat * -_mean(layout, g, x_hat)
    dx += g
    dx -= mean_g
    dx *= rstd
    return dx


def _affine(x_hat, gamma, beta, dtype):
    """x_hat * gamma + beta in ``dtype``, skipping what is None (x_hat itself is returned
    when both are None and no cast is needed)."""
    y = x_hat * gamma if gamma is not None else x_hat
    if beta is not None:
        y = y + beta if y is x_hat else np.add(y, beta, out=y)
    return y.astype(dtype, copy=False)


def _statistics_flops(n, groups):
    """mu, var, rstd and x_hat for n elements in ``groups`` groups: mean(x) n (n - groups
    adds, a divide per group), x - mu n, its square n, their mean n, var + eps, sqrt and
    1 / per group, (x - mu) * rstd n."""
    return 5 * n + 3 * groups


def _affine_flops(call, n):
    """x_hat * gamma and + beta, n each when the weight and the bias are given."""
    return n * ((call_arg(call, 1, "weight") is not None) + (call_arg(call, 2, "bias") is not None))


def _affine_grad_flops(call, n, params):
    """dL/dgamma = sum(dL/dy * x_hat) (n products, n - P adds) and dL/dbeta = sum(dL/dy)
    (n - P adds) over the axes the P parameters are broadcast along, each when needed."""
    return (call.needs(1) * (n + reduction_flops(n, params))
            + call.needs(2) * reduction_flops(n, params))


def _grouped_norm_cost(call, name, groups, params):
    """The Cost of LayerNorm and GroupNorm: statistics and affine map forward; backward
    dL/dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)) (7n: mean(g) n, g * x_hat n, its
    mean n, x_hat * it n, two subtractions and * rstd 3n), plus n for g = dL/dy * gamma, and
    the affine gradients."""
    x = call.inputs[0]
    has_weight = call_arg(call, 1, "weight") is not None
    grad_x = call.needs(0) * (7 + has_weight) * x.size
    return Cost(_statistics_flops(x.size, groups) + _affine_flops(call, x.size),
                grad_x + _affine_grad_flops(call, x.size, params),
                f"{name} x({shape_text(x)}), {groups} groups: 5*n + 3*groups + n per affine "
                f"term")


class BatchNorm(Function):
    """Batch normalization of x:(N, C, *) per channel, over A = (N, *): M = N * prod(*).

    training=True: mu and var are the batch statistics and the module docstring's backward
    applies; the per-channel gamma lets it be written without forming g:
        dL/dbeta  = sum(dL/dy, A)            dL/dgamma = sum(dL/dy * x_hat, A)       (C,)
        dL/dx = gamma * rstd * (dL/dy - dL/dbeta / M - x_hat * dL/dgamma / M)   (N, C, *)
    Side effect (as PyTorch's native op): the running statistics, when given, are updated in
    place: running_mean = (1 - momentum) running_mean + momentum mu, and running_var the same
    with the unbiased batch variance var * M / (M - 1).
    training=False: mu = running_mean and var = running_var are constants, so
        dL/dx = dL/dy * gamma * rstd
    and dL/dgamma, dL/dbeta are as above.
    Saves: x_hat, or x (the compiled path in training, module docstring), when dL/dx or
    dL/dgamma is needed (eval mode needs it only for dL/dgamma), and gamma; rstd (C values)
    on ctx. Inputs: weight (gamma) and bias (beta) are (C,) or None;
    running_mean and running_var are (C,) constants or None.
    Reference: batch_norm_reference_backward, the same rule without the speed paths.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training=True, momentum=0.1,
                eps=1e-5):
        y, saved, _ = _batch_norm_forward(ctx, x, weight, bias, running_mean, running_var,
                                          training, momentum, eps)
        ctx.save_for_backward(*saved)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        source, weight = ctx.saved_tensors
        return _batch_norm_backward(ctx, grad_out, source, weight)

    @staticmethod
    def cost(call):
        """Training: the statistics of C groups (5n + 3C), 3C per running statistic updated,
        the affine map (n per term); backward dL/dbeta, dL/dgamma (3n - 2C) then
        gamma * rstd * (dL/dy - dL/dbeta / M - x_hat * dL/dgamma / M) (4n + 2C, + C for
        gamma * rstd): 7n (+ C). Eval: x_hat = (x - mu) * rstd (2n + 3C) and the affine map;
        dL/dx = dL/dy * gamma * rstd (n, + C), and dL/dgamma, dL/dbeta as needed."""
        x = call.inputs[0]
        n, c = x.size, x.shape[1]
        training = call_arg(call, 5, "training", True)
        has_weight = call_arg(call, 1, "weight") is not None
        if training:
            running = sum(call_arg(call, i, name) is not None
                          for i, name in ((3, "running_mean"), (4, "running_var")))
            forward = _statistics_flops(n, c) + 3 * c * running
        else:
            forward = 2 * n + 3 * c
        affine_grads = _affine_grad_flops(call, n, c)
        if call.needs(0) and training:  # the sums of dL/dgamma and dL/dbeta are part of dL/dx
            backward = 7 * n + c * has_weight
        else:
            backward = call.needs(0) * (n + c * has_weight) + affine_grads
        mode = "train: 5*n + 3*C" if training else "eval: 2*n + 3*C"
        return Cost(forward + _affine_flops(call, n), backward,
                    f"batch_norm x({shape_text(x)}) {mode} + n per affine term")


def _batch_norm_forward(ctx, x, weight, bias, running_mean, running_var, training, momentum,
                        eps, relu=False):
    """BatchNorm.forward: (y, the arrays to save: x_hat or x (the compiled path) or None,
    weight; whether y is already max(y, 0)); keeps training, rstd and from_x on ctx and
    updates the running statistics. With relu the compiled kernels apply the ReLU
    as they write y (when there is an affine map)."""
    x3d = x.reshape(x.shape[0], x.shape[1], -1).astype(_compute_dtype(x), copy=False)
    need_x, need_w, _ = ctx.needs_input_grad[:3]
    keep_x_hat = need_w or (need_x and training)
    if not training:
        mean = running_mean.reshape(1, -1, 1).astype(x3d.dtype, copy=False)
        var = running_var.reshape(1, -1, 1).astype(x3d.dtype, copy=False)
        rstd = 1.0 / np.sqrt(var + eps)
    fast = _batch_norm_compiled(x3d, weight, bias, eps, x.shape,
                                None if training else (mean, rstd), relu)
    ctx.from_x = False
    if fast is not None:
        y, *batch_statistics = fast
        if training:
            mean, var, rstd = batch_statistics
            x_hat = _compiled_source(ctx, x, y, weight, bias)
        else:   # eval, for dL/dgamma: the running mean may change before backward
            x_hat = (x3d - mean) * rstd if keep_x_hat else None
    elif training:
        x_hat, mean, var, rstd = _normalize(x3d, _CHANNEL, eps)
    else:
        x_hat = (x3d - mean) * rstd
    if training:
        _update_running(running_mean, running_var, mean, var, momentum,
                        x.shape[0] * x3d.shape[2])
    if fast is None:
        # NOTE: x_hat is kept in x's shape: without weight and bias (and a cast) it is the
        # output itself, and saving that very array lets an in-place change of it be caught
        x_hat = x_hat.reshape(x.shape)
        channel_shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        gamma = weight.reshape(channel_shape) if weight is not None else None
        beta = bias.reshape(channel_shape) if bias is not None else None
        y = _affine(x_hat, gamma, beta, x.dtype)
    ctx.training, ctx.rstd = training, rstd
    rectified = relu and fast is not None and (weight is not None or bias is not None)
    return y.astype(x.dtype, copy=False), (x_hat if keep_x_hat else None, weight), rectified


def _batch_norm_backward(ctx, grad_out, source, weight, relu_out=None):
    """BatchNorm.backward (the class docstring's rule) from the saved x_hat (or x, the
    compiled path's) and weight; with relu_out, BatchNormRelu's: grad_out is first passed back
    through the ReLU (Relu's rule), inside the compiled kernel's loops where it runs, else
    as relu_backward's array."""
    if relu_out is not None and grad_out.dtype != np.float32:    # the kernels take float32
        grad_out, relu_out = relu_backward(relu_out, grad_out), None
    grad_out = grad_out.astype(_compute_dtype(grad_out), copy=False)
    need_x, need_w, need_b = ctx.needs_input_grad[:3]
    g3d = grad_out.reshape(grad_out.shape[0], grad_out.shape[1], -1)
    source = _x_hat_source(source, g3d.shape) if source is not None else None
    masks = [] if relu_out is None else [relu_out.reshape(g3d.shape)]
    kernels = _kernels_for(g3d, source, *masks) if source is not None else None
    if kernels is not None:
        grad_x, grad_w, grad_b = kernels.batch_norm_backward(
            g3d, source, weight, ctx.rstd, ctx.training, need_x, *masks, from_x=ctx.from_x)
        return (grad_x.reshape(grad_out.shape) if need_x else None,
                grad_w if need_w else None, grad_b if need_b else None, None, None)
    x_hat = _x_hat(ctx, source, (0, 2)) if source is not None else None
    if relu_out is not None:
        g3d = relu_backward(relu_out, grad_out).reshape(g3d.shape)
    scale = ctx.rstd if weight is None else ctx.rstd * weight.reshape(1, -1, 1)
    need_sums = need_x and ctx.training
    grad_b = _sum(_CHANNEL, g3d) if need_b or need_sums else None
    grad_w = _sum(_CHANNEL, g3d, x_hat) if x_hat is not None else None
    grad_x = None
    if need_sums:
        m = g3d.shape[0] * g3d.shape[2]
        grad_x = x_hat * (grad_w * (-1.0 / m)).reshape(1, -1, 1)
        grad_x += g3d
        grad_x -= (grad_b * (1.0 / m)).reshape(1, -1, 1)
        grad_x *= scale
    elif need_x:
        grad_x = g3d * scale
    return (grad_x.reshape(grad_out.shape) if need_x else None,
            grad_w if need_w else None, grad_b if need_b else None, None, None)


def _batch_norm_compiled(x3d, weight, bias, eps, shape, running, relu=False):
    """BatchNorm's forward by the compiled kernels: (y (float32), mean, var, rstd) with the
    batch statistics (1, C, 1) (meaningless in eval, where ``running`` = (mean, rstd) are
    used), or None where the kernels do not apply (not float32 C-contiguous, no Numba) or,
    in training, where the batch variance fails ``_accurate`` (the NumPy path then
    normalizes from x scaled)."""
    kernels = _kernels_for(x3d)
    if kernels is None:
        return None
    y, mean, var, rstd = kernels.batch_norm_forward(x3d, weight, bias, eps, shape, running,
                                                    relu)
    if running is None and not _accurate(var, eps):
        return None
    channel = (1, -1, 1)
    return y, mean.reshape(channel), var.reshape(channel), rstd.reshape(channel)


def _update_running(running_mean, running_var, mean, var, momentum, m):
    """In place, as PyTorch: new = (1 - momentum) old + momentum batch_value, with the
    unbiased variance var * M / (M - 1) for running_var."""
    if running_mean is not None:
        running_mean *= 1.0 - momentum
        running_mean += (momentum * mean.reshape(-1)).astype(running_mean.dtype, copy=False)
    if running_var is not None:
        unbiased = var.reshape(-1) * (momentum * m / (m - 1))
        running_var *= 1.0 - momentum
        running_var += unbiased.astype(running_var.dtype, copy=False)


def _grouped_compiled(kernel, x3d, weight, bias, eps, shape):
    """LayerNorm's or GroupNorm's forward by the compiled ``kernel``
    (retrograd._numba.norm.layer_norm_forward or group_norm_forward): (y (float32), rstd),
    or None where the kernels do not apply (not float32 C-contiguous, no Numba) or a
    group's variance fails ``_accurate`` (the NumPy path then normalizes from x scaled)."""
    kernels = _kernels_for(x3d)
    if kernels is None:
        return None
    y, _, var, rstd = getattr(kernels, kernel)(x3d, weight, bias, eps, shape)
    return (y, rstd) if _accurate(var, eps) else None


class BatchNormRelu(Function):
    """z = max(BatchNorm(x), 0): batch normalization and the ReLU after it as one op (what
    nn.Sequential runs for a BatchNorm layer followed by a ReLU layer, see
    nn/container.py). The ReLU is applied to y in place, so its output costs no array of its
    own; its backward, dL/dy = dL/dz where not z <= 0 (Relu's rule), feeds BatchNorm's
    backward in the same node, inside the compiled kernel's loops where it runs (no dL/dy
    array is made).

    Saves: BatchNorm's (x_hat or x, gamma) and z. Attrs and inputs: BatchNorm's.
    Reference: BatchNorm followed by Relu (tests/ops/test_norm_relu.py checks the equality).
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, training=True, momentum=0.1,
                eps=1e-5):
        y, saved, rectified = _batch_norm_forward(ctx, x, weight, bias, running_mean,
                                                  running_var, training, momentum, eps,
                                                  relu=True)
        # without an affine map y is x_hat itself, which backward needs unchanged
        z = y if rectified else np.maximum(y, 0, out=None if y is saved[0] else y)
        ctx.save_for_backward(*saved, z)
        return z

    @staticmethod
    def backward(ctx, grad_out):
        source, weight, z = ctx.saved_tensors
        return _batch_norm_backward(ctx, grad_out, source, weight, relu_out=z)

    @staticmethod
    def cost(call):
        """BatchNorm's, plus n maxes forward and n selects backward (Relu's)."""
        cost = BatchNorm.cost(call)
        n = call.inputs[0].size
        return Cost(cost.flops + n, cost.backward_flops + n * call.needs(0),
                    cost.formula + " + n (relu)")


class LayerNorm(Function):
    """Layer normalization over the last k dims of x:(*, D1..Dk), A = those dims,
    M = D1 * ... * Dk; gamma and beta have shape (D1..Dk) (normalized_shape) or are None.

    With x seen as rows x_2d:(R, M), dL/dy_2d:(R, M):
        g = dL/dy_2d * gamma                                                   (R, M)
        dL/dx = rstd * (g - mean(g, -1) - x_hat * mean(g * x_hat, -1))           (R, M)
        dL/dgamma = sum over rows of dL/dy_2d * x_hat     dL/dbeta = sum over rows of dL/dy_2d
    Saves: x_hat, or x (the compiled path, module docstring), when dL/dx or dL/dgamma is
    needed, and gamma; rstd (R values) on ctx.
    Reference: layer_norm_reference_backward, the same rule without the speed paths.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_ndim=1, eps=1e-5):
        normalized_shape = x.shape[x.ndim - normalized_ndim:]
        rows = (math.prod(x.shape[:x.ndim - normalized_ndim]), math.prod(normalized_shape))
        x2d = x.reshape(rows).astype(_compute_dtype(x), copy=False)
        need_x, need_w, _ = ctx.needs_input_grad
        fast = _grouped_compiled("layer_norm_forward", x2d, weight, bias, eps, x.shape)
        ctx.from_x = False
        if fast is not None:
            y, rstd = fast
            rstd = rstd.reshape(-1, 1)
            x_hat = _compiled_source(ctx, x, y, weight, bias)
        else:
            x_hat, _, _, rstd = _normalize(x2d, _LAST, eps)
            # NOTE: x_hat is kept in x's shape: without weight and bias (and a cast) it is the
            # output itself, and saving that very array lets an in-place change of it be caught
            x_hat = x_hat.reshape(x.shape)
            y = _affine(x_hat, weight, bias, x.dtype)
        ctx.save_for_backward(x_hat if need_x or need_w else None, weight)
        ctx.rstd, ctx.rows, ctx.normalized_shape = rstd, rows, normalized_shape
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        source, weight = ctx.saved_tensors
        grad_out = grad_out.astype(_compute_dtype(grad_out), copy=False)
        need_x, need_w, need_b = ctx.needs_input_grad
        g2d = grad_out.reshape(ctx.rows)
        source = _x_hat_source(source, ctx.rows) if source is not None else None
        kernels = _kernels_for(g2d, source) if source is not None else None
        if kernels is not None:
            grad_x, grad_w, grad_b = kernels.layer_norm_backward(g2d, source, weight, ctx.rstd,
                                                                 need_x, ctx.from_x)
            return (grad_x.reshape(grad_out.shape) if need_x else None,
                    grad_w.reshape(ctx.normalized_shape) if need_w else None,
                    grad_b.reshape(ctx.normalized_shape) if need_b else None)
        x_hat = _x_hat(ctx, source, -1) if source is not None else None
        grad_x = grad_w = grad_b = None
        if need_x:
            g = g2d * weight.reshape(-1) if weight is not None else g2d
            grad_x = _normalized_grad(g, x_hat, ctx.rstd, _LAST).reshape(grad_out.shape)
        if need_w:
            grad_w = np.einsum("rm,rm->m", g2d, x_hat).reshape(ctx.normalized_shape)
        if need_b:
            grad_b = np.einsum("rm->m", g2d).reshape(ctx.normalized_shape)
        return grad_x, grad_w, grad_b

    @staticmethod
    def cost(call):
        """Statistics of R rows of M (5n + 3R) and the affine map (n per term); backward 7n
        (+ n for g) for dL/dx, 2n - M for dL/dgamma, n - M for dL/dbeta (_grouped_norm_cost)."""
        x = call.inputs[0]
        size = math.prod(x.shape[len(x.shape) - call_arg(call, 3, "normalized_ndim", 1):])
        return _grouped_norm_cost(call, "layer_norm", x.size // max(size, 1), size)


class GroupNorm(Function):
    """Group normalization of x:(N, C, *): the C channels are split into G groups of C/G, and
    each sample's group is normalized, A = (its C/G channels, *), M = C/G * prod(*).
    gamma and beta are per channel, (C,) or None.

    With x seen as x_3d:(N, G, M) and gamma broadcast per channel:
        g = dL/dy * gamma, viewed as (N, G, M)
        dL/dx = rstd * (g - mean(g, -1) - x_hat * mean(g * x_hat, -1))       (N, C, *)
        dL/dgamma = sum(dL/dy * x_hat, (N, *))     dL/dbeta = sum(dL/dy, (N, *))     (C,)
    Saves: x_hat (x's shape), or x (the compiled path, module docstring), when dL/dx or
    dL/dgamma is needed, and gamma; rstd (N * G values) on ctx.
    Reference: group_norm_reference_backward, the same rule without the speed paths.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, weight, bias, num_groups=1, eps=1e-5):
        n, c = x.shape[0], x.shape[1]
        x3d = x.reshape(n, num_groups, -1).astype(_compute_dtype(x), copy=False)
        channel_shape = (1, c) + (1,) * (x.ndim - 2)
        need_x, need_w, _ = ctx.needs_input_grad
        fast = _grouped_compiled("group_norm_forward", x3d, weight, bias, eps, x.shape)
        ctx.from_x = False
        if fast is not None:
            y, rstd = fast
            rstd = rstd.reshape(n, num_groups, 1)
            x_hat = _compiled_source(ctx, x, y, weight, bias)
        else:
            x_hat, _, _, rstd = _normalize(x3d, _LAST, eps)
            x_hat = x_hat.reshape(x.shape)  # the output itself without weight and bias (BN)
            gamma = weight.reshape(channel_shape) if weight is not None else None
            beta = bias.reshape(channel_shape) if bias is not None else None
            y = _affine(x_hat, gamma, beta, x.dtype)
        ctx.save_for_backward(x_hat if need_x or need_w else None, weight)
        ctx.rstd, ctx.num_groups, ctx.channel_shape = rstd, num_groups, channel_shape
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        source, weight = ctx.saved_tensors
        grad_out = grad_out.astype(_compute_dtype(grad_out), copy=False)
        need_x, need_w, need_b = ctx.needs_input_grad
        n, c = grad_out.shape[0], grad_out.shape[1]
        grouped = (n, ctx.num_groups, -1)
        source = _x_hat_source(source, grouped) if source is not None else None
        kernels = _kernels_for(grad_out, source) if source is not None else None
        if kernels is not None:
            grad_x, grad_w, grad_b = kernels.group_norm_backward(
                grad_out.reshape(grouped), source, weight, ctx.rstd, c, need_x, ctx.from_x)
            return (grad_x.reshape(grad_out.shape) if need_x else None,
                    grad_w if need_w else None, grad_b if need_b else None)
        x_hat = _x_hat(ctx, source, -1) if source is not None else None
        grad_x = grad_w = grad_b = None
        if need_x:
            g = grad_out * weight.reshape(ctx.channel_shape) if weight is not None else grad_out
            grad_x = _normalized_grad(g.reshape(grouped), x_hat.reshape(grouped), ctx.rstd,
                                      _LAST).reshape(grad_out.shape)
        channels = (n, c, -1)
        if need_w:
            grad_w = _sum(_CHANNEL, grad_out.reshape(channels), x_hat.reshape(channels))
        if need_b:
            grad_b = _sum(_CHANNEL, grad_out.reshape(channels))
        return grad_x, grad_w, grad_b

    @staticmethod
    def cost(call):
        """Statistics of N*G groups (5n + 3NG) and the affine map (n per term); backward 7n
        (+ n for g) for dL/dx, 2n - C for dL/dgamma, n - C for dL/dbeta (_grouped_norm_cost)."""
        x = call.inputs[0]
        groups = x.shape[0] * call_arg(call, 3, "num_groups", 1)
        return _grouped_norm_cost(call, "group_norm", groups, x.shape[1])


# ---------------------------------------------------------------- the reference backwards
def _reference_normalize(x, axes, eps):
    """(x_hat, rstd) over ``axes``, from the definitions: mu = mean(x), var = mean((x - mu)^2)
    (biased), rstd = 1 / sqrt(var + eps), x_hat = (x - mu) * rstd; rstd keeps the axes."""
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    return (x - mu) * rstd, rstd


def _reference_grad_x(g, x_hat, rstd, axes):
    """dL/dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat)), the means over ``axes``, for
    the gradient g reaching x_hat (the module docstring's derivation)."""
    mean_g = g.mean(axis=axes, keepdims=True)
    mean_g_x_hat = (g * x_hat).mean(axis=axes, keepdims=True)
    return rstd * (g - mean_g - x_hat * mean_g_x_hat)


def _reference_affine_grads(grad_out, x_hat, weight, bias, axes, shape):
    """dL/dgamma = sum(dL/dy * x_hat) and dL/dbeta = sum(dL/dy) over the axes gamma is
    broadcast along, in ``shape`` (None for a missing weight or bias)."""
    grad_w = (grad_out * x_hat).sum(axis=axes).reshape(shape) if weight is not None else None
    grad_b = grad_out.sum(axis=axes).reshape(shape) if bias is not None else None
    return grad_w, grad_b


def batch_norm_reference_backward(x, weight, bias, running_mean, running_var, grad_out,
                                  training=True, eps=1e-5):
    """The backward of BatchNorm from the formulas, with A = (N, *) and M = N * prod(*):

        training:  dL/dx = rstd * (g - mean(g, A) - x_hat * mean(g * x_hat, A)), g = dL/dy * gamma
        eval:      dL/dx = g * rstd        (mu = running_mean, var = running_var: constants)
        dL/dgamma = sum(dL/dy * x_hat, A)       dL/dbeta = sum(dL/dy, A)

    x:(N, C, *), weight (gamma) and bias (beta):(C,) or None, running_mean and running_var
    (C,) (read in eval mode only), grad_out = dL/dy:(N, C, *); the attributes are
    BatchNorm.forward's (momentum is left out: the running statistics are not updated here).
    Returns (dL/dx, dL/dgamma, dL/dbeta), each in its input's shape (None for a missing weight
    or bias; the running statistics are constants and get none), computed in x's dtype.
    """
    axes = (0,) + tuple(range(2, x.ndim))
    channel = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        x_hat, rstd = _reference_normalize(x, axes, eps)
    else:
        rstd = 1.0 / np.sqrt(running_var.reshape(channel) + eps)
        x_hat = (x - running_mean.reshape(channel)) * rstd
    g = grad_out * weight.reshape(channel) if weight is not None else grad_out
    grad_x = _reference_grad_x(g, x_hat, rstd, axes) if training else g * rstd
    return (grad_x,) + _reference_affine_grads(grad_out, x_hat, weight, bias, axes, (-1,))


def layer_norm_reference_backward(x, weight, bias, grad_out, normalized_ndim=1, eps=1e-5):
    """The backward of LayerNorm from the formulas, with A = the last normalized_ndim dims:

        dL/dx = rstd * (g - mean(g, A) - x_hat * mean(g * x_hat, A)),   g = dL/dy * gamma
        dL/dgamma = sum(dL/dy * x_hat) over the leading dims    dL/dbeta = sum(dL/dy) alike

    x:(*, D1..Dk), weight (gamma) and bias (beta):(D1..Dk) or None, grad_out = dL/dy (x's
    shape); the attributes are LayerNorm.forward's. Returns (dL/dx, dL/dgamma, dL/dbeta), each
    in its input's shape (None for a missing weight or bias), computed in x's dtype.
    """
    axes = tuple(range(x.ndim - normalized_ndim, x.ndim))
    leading = tuple(range(x.ndim - normalized_ndim))
    x_hat, rstd = _reference_normalize(x, axes, eps)
    g = grad_out * weight if weight is not None else grad_out
    grad_x = _reference_grad_x(g, x_hat, rstd, axes)
    return (grad_x,) + _reference_affine_grads(grad_out, x_hat, weight, bias, leading,
                                               x.shape[x.ndim - normalized_ndim:])


def group_norm_reference_backward(x, weight, bias, grad_out, num_groups=1, eps=1e-5):
    """The backward of GroupNorm from the formulas, with x seen as (N, G, C/G, *) and
    A = (C/G, *), one group of one sample:

        dL/dx = rstd * (g - mean(g, A) - x_hat * mean(g * x_hat, A)),   g = dL/dy * gamma
        dL/dgamma = sum(dL/dy * x_hat, (N, *))      dL/dbeta = sum(dL/dy, (N, *))      (C,)

    x:(N, C, *), weight (gamma) and bias (beta):(C,) or None, grad_out = dL/dy (x's shape);
    the attributes are GroupNorm.forward's. Returns (dL/dx, dL/dgamma, dL/dbeta), each in its
    input's shape (None for a missing weight or bias), computed in x's dtype.
    """
    n, c = x.shape[:2]
    grouped = (n, num_groups, c // num_groups) + x.shape[2:]
    group_axes = tuple(range(2, len(grouped)))
    channel = (1, c) + (1,) * (x.ndim - 2)
    x_hat, rstd = _reference_normalize(x.reshape(grouped), group_axes, eps)
    g = grad_out * weight.reshape(channel) if weight is not None else grad_out
    grad_x = _reference_grad_x(g.reshape(grouped), x_hat, rstd, group_axes).reshape(x.shape)
    channel_axes = (0,) + tuple(range(2, x.ndim))
    return (grad_x,) + _reference_affine_grads(grad_out, x_hat.reshape(x.shape), weight, bias,
                                               channel_axes, (c,))
