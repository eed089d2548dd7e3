"""Numba kernels for the normalization ops of retrograd/ops/norm.py (BatchNorm, LayerNorm,
GroupNorm) on C-contiguous float32 arrays; the NumPy code there stays the reference.

Every kernel sees x in one 3-D layout (N, C, S) where "channel" c is one group, normalized
over the n and s of that c:
- batch norm: x itself, (N, C, prod(*)), one group per channel, gamma per channel;
- layer norm: rows (R, M) seen as (1, R, M), gamma per column m;
- group norm: (N, G, M) seen as (1, N * G, M), gamma per column of the row's group
  (row r is group r % G; its column m is channel (r % G) * C/G + m // S).

Forward, per group (one pass over x for the statistics, accumulated in float64, then one
pass writing x_hat and y while the group is still in cache):

    shift = x_0        d = x - shift        mu = shift + sum(d) / M
    var = sum(d^2) / M - (sum(d) / M)^2      (biased; exact enough: |mu - shift|^2 <= M var)
    rstd = 1 / sqrt(var + eps)               x_hat = (x - mu) * rstd      y = x_hat * gamma + beta

(x_hat and y in float32 as the NumPy path computes them). The caller checks var as
``_accurate`` does and runs the NumPy ``_normalize_scaled`` instead when it fails (inf or NaN
in a group, values whose variance overflows or underflows float32), so NaN, inf, 1e20 and
1e-20 inputs take the reference path whole.

Backward, with g = dL/dy * gamma and per group (float64 sums):

    dL/dx = rstd * (g - sum(g) / M - x_hat * sum(g * x_hat) / M)
    dL/dgamma = sum(dL/dy * x_hat), dL/dbeta = sum(dL/dy) over the axes gamma is broadcast
    along (batch norm: the group's own sums; layer and group norm: sums over rows, in
    float64).

The kernels run on one thread, like those of casts.py. Measured on the 2-core machine with
other work on it: LayerNorm (4096, 1024) fwd+bwd ~5 ms on one thread (NumPy path ~30 ms),
the same or slower over two (the loops are bound by memory: writing the fresh x_hat, y and
dL/dx arrays is half the time), and Numba's OpenMP layer made them up to 10x slower
whenever the other core was busy (a barrier per call waits for a descheduled thread).
"""

import numba
import numpy as np

__all__ = ["layer_norm_forward", "group_norm_forward", "batch_norm_forward",
           "layer_norm_backward", "group_norm_backward", "batch_norm_backward"]

_F32 = np.float32
# reassociation lets the float64 sums vectorize; no flag that assumes finite values. Only the
# sums take it (helpers compiled apart, then inlined by LLVM with their flags): in the
# elementwise loops a fused or reordered g - mean(g) would no longer be exactly 0 where the
# NumPy path gives 0 (M = 1, constant groups)
_SUMS = {"contract", "reassoc"}


# ---------------------------------------------------------------- forward
@numba.njit(fastmath=_SUMS, error_model="numpy")
def _group_moments(x, c):
    """(mu, biased var) in float64 of group c of x:(N, C, S), over n and s, from sums of
    x - x[0, c, 0] (module docstring). NaN or inf in the group gives a NaN or inf var."""
    n_size, _, size = x.shape
    shift = np.float64(x[0, c, 0])
    total = 0.0
    squares = 0.0
    for n in range(n_size):
        for s in range(size):
            d = np.float64(x[n, c, s]) - shift
            total += d
            squares += d * d
    count = n_size * size
    offset = total / count
    var = squares / count - offset * offset
    if var < 0.0:       # rounding; NaN stays NaN
        var = 0.0
    return shift + offset, var


@numba.njit(cache=True, error_model="numpy")
def _rows_forward(x, gamma, beta, eps, x_hat, y, mean, var, rstd, keep_x_hat, affine):
    """LayerNorm/GroupNorm's ``_normalize`` then ``_affine`` (retrograd/ops/norm.py) for rows
    x:(1, R, M): per row mu, var, rstd (float64 mean, var; float32 rstd) and
    x_hat = (x - mu) * rstd, y = x_hat * gamma[r % P] + beta[r % P] with gamma, beta:(P, M).
    Writes x_hat when keep_x_hat, y when affine."""
    rows, size = x.shape[1], x.shape[2]
    period = gamma.shape[0]
    for r in range(rows):
        mu, v = _group_moments(x, r)
        mean[r], var[r] = mu, v
        inv = _F32(1.0 / np.sqrt(v + eps))
        rstd[r] = inv
        mu32 = _F32(mu)
        scale, shift = gamma[r % period], beta[r % period]
        for m in range(size):
            value = (x[0, r, m] - mu32) * inv
            if keep_x_hat:
                x_hat[0, r, m] = value
            if affine:
                y[0, r, m] = value * scale[m] + shift[m]


@numba.njit(cache=True, error_model="numpy")
def _channels_forward(x, gamma, beta, eps, x_hat, y, mean, var, rstd, training, keep_x_hat,
                      affine, relu):
    """BatchNorm.forward's ``_normalize`` (training) or eval normalization, then ``_affine``
    (retrograd/ops/norm.py) for x:(N, C, S): per channel c (training) mu, var over n and s and
    rstd = 1 / sqrt(var + eps), else the given mean[c] and rstd[c]; then
    x_hat = (x - mu) * rstd and y = x_hat * gamma[c] + beta[c], or with relu (BatchNormRelu)
    max(y, 0) as np.maximum(y, 0) gives it (NaN kept, -0 made 0) in the same pass."""
    n_size, channels, size = x.shape
    for c in range(channels):
        if training:
            mu, v = _group_moments(x, c)
            mean[c], var[c] = mu, v
            rstd[c] = _F32(1.0 / np.sqrt(v + eps))
        mu32, inv = _F32(mean[c]), rstd[c]
        scale, shift = gamma[c], beta[c]
        for n in range(n_size):
            for s in range(size):
                value = (x[n, c, s] - mu32) * inv
                if keep_x_hat:
                    x_hat[n, c, s] = value
                if affine:
                    out = value * scale + shift
                    if relu:
                        out = out if (out > _F32(0.0)) | (out != out) else _F32(0.0)
                    y[n, c, s] = out


def _outputs(shape, keep_x_hat, affine):
    """(x_hat, y) float32 arrays of ``shape``: y is x_hat itself without the affine map (the
    output is then the saved x_hat, as in the NumPy path), and x_hat is None when not kept."""
    x_hat = np.empty(shape, _F32) if keep_x_hat or not affine else None
    y = np.empty(shape, _F32) if affine else x_hat
    return x_hat, y


def _kernel_view(array, shape):
    """``array`` viewed in the kernel's 3-D ``shape`` (a 1-element dummy for None)."""
    return np.empty((1, 1, 1), _F32) if array is None else array.reshape(shape)


def _affine_rows(weight, bias, period, size):
    """gamma, beta as float32 (period, size) rows (ones, zeros for a missing one)."""
    gamma = np.ones((period, size), _F32) if weight is None else weight
    beta = np.zeros((period, size), _F32) if bias is None else bias
    return (np.ascontiguousarray(gamma, _F32).reshape(period, size),
            np.ascontiguousarray(beta, _F32).reshape(period, size))


def _rows(x3d, gamma, beta, eps, keep_x_hat, affine, shape):
    """Run _rows_forward on x3d:(1, R, M); (x_hat, y, var, rstd) as in layer_norm_forward."""
    rows = x3d.shape[1]
    x_hat, y = _outputs(shape, keep_x_hat, affine)
    mean, var = np.empty(rows), np.empty(rows)
    rstd = np.empty(rows, _F32)
    _rows_forward(x3d, gamma, beta, float(eps), _kernel_view(x_hat, x3d.shape),
                  _kernel_view(y, x3d.shape), mean, var, rstd, x_hat is not None, affine)
    return x_hat, y, var.astype(_F32), rstd


def layer_norm_forward(x2d, weight, bias, eps, keep_x_hat, shape):
    """LayerNorm.forward's normalization and affine map for rows x2d:(R, M) float32
    C-contiguous, weight and bias (normalized_shape, M values) or None.
    Returns (x_hat or None unless keep_x_hat, y: x_hat itself without weight and bias), both
    float32 in x's ``shape``, var:(R,) float32, rstd:(R,) float32)."""
    affine = weight is not None or bias is not None
    gamma, beta = _affine_rows(weight, bias, 1, x2d.shape[1])
    return _rows(x2d.reshape(1, *x2d.shape), gamma, beta, eps, keep_x_hat, affine, shape)


def _per_group_columns(param, groups, size):
    """A per-channel (C,) parameter as (G, M) rows: column m of group g is channel
    g * C/G + m // S (S = M / (C/G) spatial values per channel)."""
    if param is None:
        return None
    per_group = np.ascontiguousarray(param, _F32).reshape(groups, -1)
    return np.repeat(per_group, size // per_group.shape[1], axis=1)


def group_norm_forward(x3d, weight, bias, eps, keep_x_hat, shape):
    """GroupNorm.forward's normalization and affine map for x3d:(N, G, M) float32
    C-contiguous, weight and bias (C,) or None. Returns (x_hat or None, y, var, rstd) as
    layer_norm_forward (x_hat and y in x's ``shape``, var and rstd (N, G))."""
    n_size, groups, size = x3d.shape
    affine = weight is not None or bias is not None
    gamma, beta = _affine_rows(_per_group_columns(weight, groups, size),
                               _per_group_columns(bias, groups, size), groups, size)
    x_hat, y, var, rstd = _rows(x3d.reshape(1, n_size * groups, size), gamma, beta, eps,
                                keep_x_hat, affine, shape)
    return x_hat, y, var.reshape(n_size, groups), rstd.reshape(n_size, groups)


def batch_norm_forward(x3d, weight, bias, eps, keep_x_hat, shape, running=None, relu=False):
    """BatchNorm.forward's normalization and affine map for x3d:(N, C, S) float32
    C-contiguous, weight and bias (C,) or None. Training (running None): the batch
    statistics; eval: running = (mean, rstd), C values each. Returns (x_hat or None, y) as
    layer_norm_forward (in x's ``shape``), and mean, var, rstd:(C,) float32 (the batch
    statistics; in eval the given mean and rstd, var undefined). With relu and an affine
    map, y is max(y, 0) (BatchNormRelu; without weight and bias y is x_hat, kept as it is)."""
    channels = x3d.shape[1]
    affine = weight is not None or bias is not None
    gamma = np.ones(channels, _F32) if weight is None else np.ascontiguousarray(weight, _F32)
    beta = np.zeros(channels, _F32) if bias is None else np.ascontiguousarray(bias, _F32)
    x_hat, y = _outputs(shape, keep_x_hat, affine)
    training = running is None
    mean = np.empty(channels) if training else np.asarray(running[0], np.float64).reshape(-1)
    rstd = (np.empty(channels, _F32) if training
            else np.ascontiguousarray(running[1], _F32).reshape(-1))
    var = np.empty(channels)
    _channels_forward(x3d, gamma, beta, float(eps), _kernel_view(x_hat, x3d.shape),
                      _kernel_view(y, x3d.shape), mean, var, rstd, training, x_hat is not None,
                      affine, relu and affine)
    return x_hat, y, mean.astype(_F32), var.astype(_F32), rstd


# ---------------------------------------------------------------- backward
@numba.njit(fastmath=_SUMS, error_model="numpy")
def _row_sums(grad_out, x_hat, scale, sum_w, sum_b):
    """(sum(g), sum(g * x_hat)) in float64 over one row, g = grad_out * scale, and
    sum_w += grad_out * x_hat, sum_b += grad_out (float64 rows)."""
    total = 0.0
    projected = 0.0
    for m in range(grad_out.size):
        dy, xh = grad_out[m], x_hat[m]
        g = dy * scale[m]
        total += g
        projected += g * xh
        sum_w[m] += dy * xh
        sum_b[m] += dy
    return total, projected


@numba.njit(cache=True, error_model="numpy")
def _rows_backward(grad_out, x_hat, gamma, rstd, grad_x, grad_w, grad_b, need_x):
    """LayerNorm/GroupNorm.backward (``_normalized_grad`` and the einsum sums of
    retrograd/ops/norm.py) for rows grad_out, x_hat:(R, M), gamma:(P, M), rstd:(R,):
    with g = dL/dy * gamma[r % P], dL/dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))
    per row (when need_x), and the sums over rows grad_w[r % P] += dL/dy * x_hat,
    grad_b[r % P] += dL/dy (float64 (P, M), zeroed by the caller)."""
    rows, size = grad_out.shape
    period = gamma.shape[0]
    for r in range(rows):
        scale = gamma[r % period]
        total, projected = _row_sums(grad_out[r], x_hat[r], scale, grad_w[r % period],
                                     grad_b[r % period])
        if need_x:
            mean_g, mean_gx, inv = _F32(total / size), _F32(projected / size), rstd[r]
            for m in range(size):
                g = grad_out[r, m] * scale[m]
                grad_x[r, m] = inv * (g - mean_g - x_hat[r, m] * mean_gx)


def _rows_grads(grad_out, x_hat, gamma, rstd, need_x):
    """Run _rows_backward on (R, M) arrays; (dL/dx or None (float32), dL/dgamma:(P, M),
    dL/dbeta:(P, M) (float64))."""
    grad_w, grad_b = np.zeros(gamma.shape), np.zeros(gamma.shape)
    grad_x = np.empty(grad_out.shape, _F32) if need_x else np.empty((1, 1), _F32)
    _rows_backward(grad_out, x_hat, gamma, np.ascontiguousarray(rstd, _F32).reshape(-1),
                   grad_x, grad_w, grad_b, need_x)
    return (grad_x if need_x else None), grad_w, grad_b


def layer_norm_backward(g2d, x_hat, weight, rstd, need_x):
    """LayerNorm.backward for rows g2d = dL/dy, x_hat:(R, M) float32 C-contiguous, weight
    (M values) or None, rstd (R values). Returns (dL/dx:(R, M) or None unless need_x,
    dL/dgamma:(M,), dL/dbeta:(M,)), float32."""
    gamma, _ = _affine_rows(weight, None, 1, g2d.shape[1])
    grad_x, grad_w, grad_b = _rows_grads(g2d, x_hat, gamma, rstd, need_x)
    return grad_x, grad_w[0].astype(_F32), grad_b[0].astype(_F32)


def group_norm_backward(g3d, x_hat, weight, rstd, channels, need_x):
    """GroupNorm.backward for g3d = dL/dy, x_hat:(N, G, M) float32 C-contiguous, weight (C,)
    or None, rstd (N * G values), C channels. Returns (dL/dx:(N, G, M) or None unless
    need_x, dL/dgamma:(C,), dL/dbeta:(C,)), float32."""
    n_size, groups, size = g3d.shape
    gamma, _ = _affine_rows(_per_group_columns(weight, groups, size), None, groups, size)
    rows = (n_size * groups, size)
    grad_x, grad_w, grad_b = _rows_grads(g3d.reshape(rows), x_hat.reshape(rows), gamma, rstd,
                                         need_x)
    per_channel = (channels, -1)    # (G, M) columns back to channels: sum over S
    return ((None if grad_x is None else grad_x.reshape(g3d.shape)),
            grad_w.reshape(per_channel).sum(1).astype(_F32),
            grad_b.reshape(per_channel).sum(1).astype(_F32))


@numba.njit(inline="always")
def _through_relu(grad_out, relu_out, masked, n, c, s):
    """dL/dy at (n, c, s): grad_out, or with ``masked`` grad_out passed back through a ReLU
    whose output was relu_out (grad * 0 where relu_out <= 0, else grad * 1: Relu's product,
    NaN and inf kept as it keeps them)."""
    dy = grad_out[n, c, s]
    if masked:
        dy = dy * (_F32(0.0) if relu_out[n, c, s] <= 0 else _F32(1.0))
    return dy


@numba.njit(fastmath=_SUMS, error_model="numpy")
def _channel_sums(grad_out, x_hat, relu_out, masked, c):
    """(sum(dL/dy), sum(dL/dy * x_hat)) in float64 over channel c of (N, C, S) arrays (dL/dy
    through the ReLU when ``masked``)."""
    total = 0.0
    projected = 0.0
    for n in range(grad_out.shape[0]):
        for s in range(grad_out.shape[2]):
            dy = _through_relu(grad_out, relu_out, masked, n, c, s)
            total += dy
            projected += dy * x_hat[n, c, s]
    return total, projected


@numba.njit(cache=True, error_model="numpy")
def _channels_backward(grad_out, x_hat, relu_out, masked, gamma, rstd, grad_x, grad_w, grad_b,
                       training, need_x):
    """BatchNorm.backward (retrograd/ops/norm.py) for grad_out, x_hat:(N, C, S), per channel
    c: dL/dbeta = sum(dL/dy), dL/dgamma = sum(dL/dy * x_hat) over n and s (float64), and
    (when need_x) with k = gamma[c] * rstd[c] and M = N * S
        training: dL/dx = k * (dL/dy - dL/dbeta / M - x_hat * dL/dgamma / M)
        eval:     dL/dx = k * dL/dy.
    With ``masked`` (BatchNormRelu), dL/dy is grad_out passed back through the ReLU whose
    output was relu_out, on the fly: no array of it is made."""
    n_size, channels, size = grad_out.shape
    count = n_size * size
    for c in range(channels):
        total, projected = _channel_sums(grad_out, x_hat, relu_out, masked, c)
        grad_b[c], grad_w[c] = total, projected
        if need_x:
            k = gamma[c] * rstd[c]
            mean_b, mean_w = _F32(total / count), _F32(projected / count)
            for n in range(n_size):
                for s in range(size):
                    dy = _through_relu(grad_out, relu_out, masked, n, c, s)
                    if training:
                        grad_x[n, c, s] = k * (dy - mean_b - x_hat[n, c, s] * mean_w)
                    else:
                        grad_x[n, c, s] = k * dy


def batch_norm_backward(g3d, x_hat, weight, rstd, training, need_x, relu_out=None):
    """BatchNorm.backward for g3d = dL/dy, x_hat:(N, C, S) float32 C-contiguous, weight (C,)
    or None, rstd (C values); with relu_out (the ReLU's output, x_hat's layout) g3d is the
    gradient of BatchNormRelu's output, passed back through the ReLU inside the loops.
    Returns (dL/dx:(N, C, S) or None unless need_x, dL/dgamma:(C,), dL/dbeta:(C,)),
    float32."""
    channels = g3d.shape[1]
    gamma = np.ones(channels, _F32) if weight is None else np.ascontiguousarray(weight, _F32)
    grad_x = np.empty(g3d.shape, _F32) if need_x else np.empty((1, 1, 1), _F32)
    grad_w, grad_b = np.empty(channels), np.empty(channels)
    masked = relu_out is not None
    _channels_backward(g3d, x_hat, relu_out if masked else x_hat, masked, gamma,
                       np.ascontiguousarray(rstd, _F32).reshape(-1), grad_x, grad_w, grad_b,
                       training, need_x)
    return (grad_x if need_x else None), grad_w.astype(_F32), grad_b.astype(_F32)
