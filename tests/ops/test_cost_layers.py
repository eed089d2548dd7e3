"""The declared costs of the layer ops (Linear, Conv1d/2d, the poolings, the norms, attention)
against brute-force counts (tests/flop_count.py): each op's forward and backward, written from
its docstring as NumPy on counted arrays, costs what the op declares (all FLOPs, and the GEMM
part apart), forward and backward, for the gradients the call needs; and each reference
computes what the op computes."""

import math

import numpy as np
import pytest

import retrograd as rg
from retrograd.autograd.cost import cost_of
from retrograd.ops.attention import MemoryEfficientAttention, ScaledDotProductAttention
from retrograd.ops.conv import Conv1d, Conv2d, _reference_col2im, _reference_im2col
from retrograd.ops.dropout import dropout_mask
from retrograd.ops.linalg import Linear
from retrograd.ops.norm import BatchNorm, GroupNorm, LayerNorm
from retrograd.ops.pool import (AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, _avg_divisor, _inside,
                                _reference_windows, adaptive_windows,
                                avg_pool2d_reference_backward, max_pool2d_reference_backward,
                                pool_output_size)
from tests.flop_count import counted
from tests.ops.cost_harness import check, needed, run, sum_to

RNG = np.random.default_rng(0)


def _randn(*shape):
    return RNG.standard_normal(shape)


def _run(op, inputs, needs, attrs):
    """(call, first output, gradients, dL/dy of the first output): cost_harness.run."""
    call, outs, grads, grad_outs = run(op, inputs, needs, attrs, _randn)
    return call, outs[0], grads, grad_outs[0]


def _check(op, inputs, needs, attrs, forward, backward):
    """cost_harness.check on the first output."""
    return check(op, inputs, needs, attrs, forward, backward, _randn)


NEEDS_3 = [(True, True, True), (False, True, True), (True, False, False), (False, False, True),
           (False, False, False)]


# ---------------------------------------------------------------------------- Linear
@pytest.mark.parametrize("needs", NEEDS_3)
@pytest.mark.parametrize("bias", [True, False])
def test_linear(needs, bias):
    x, w, b = _randn(2, 3, 5), _randn(4, 5), _randn(4) if bias else None
    needs = needs if bias else needs[:2] + (None,)
    x2d = x.reshape(6, 5)

    def forward(args, gemm):
        y = gemm.mm(args[0].reshape(6, 5), args[1].T)
        return (y + args[2] if bias else y).reshape(2, 3, 4)

    def backward(gy, gemm):
        g2d = gy.reshape(6, 4)
        return needed(needs, {0: lambda: gemm.mm(g2d, w).reshape(x.shape),
                               1: lambda: gemm.mm(g2d.T, x2d), 2: lambda: g2d.sum(axis=0)})

    cost = _check(Linear, (x, w, b), needs, {}, forward, backward)
    assert cost.formula == "linear x(2x3x5) w(4x5) -> 2x3x4: 2*rows*in*out + bias"


# ---------------------------------------------------------------------------- convolution
class _ConvReference:
    """Conv2d from its docstring: Y = W_2d @ X_col + b per group, dL/db = sums of dL/dY,
    dL/dW_2d = dL/dY @ X_col^T, dL/dx = col2im(W_2d^T @ dL/dY) (one add per entry)."""

    def __init__(self, x, w, stride, padding, dilation, groups):
        self.w, self.stride, self.dilation, self.groups = w, stride, dilation, groups
        self.x_shape, self.padding = x.shape, padding
        self.x_pad = np.pad(x, ((0, 0), (0, 0)) + tuple(padding))
        self.out = tuple((self.x_pad.shape[2 + a] - dilation[a] * (w.shape[2 + a] - 1) - 1)
                         // stride[a] + 1 for a in range(2))
        cols = _reference_im2col(self.x_pad, w.shape[2:], self.out, stride, dilation)
        self.x_col = cols.reshape(groups, -1, x.shape[0] * math.prod(self.out))
        self.w_2d = w.reshape(groups, w.shape[0] // groups, -1)

    def forward(self, b, gemm):
        y = gemm.mm(self.w_2d, counted(self.x_col))
        y = y.reshape((self.w.shape[0], self.x_shape[0]) + self.out).transpose(1, 0, 2, 3)
        return y + b.reshape(1, -1, 1, 1) if b is not None else y

    def backward(self, gy, needs, gemm):
        grad_y = gy.transpose(1, 0, 2, 3).reshape(self.w_2d.shape[:2] + (-1,))
        return needed(needs, {0: lambda: self._grad_x(grad_y, gemm),
                               1: lambda: gemm.mm(grad_y, self.x_col.transpose(0, 2, 1))
                               .reshape(self.w.shape),
                               2: lambda: grad_y.sum(axis=2).reshape(-1)})

    def _grad_x(self, grad_y, gemm):
        grad_cols = gemm.mm(self.w_2d.transpose(0, 2, 1), grad_y)
        c, (kh, kw) = self.x_shape[1], self.w.shape[2:]
        grad_pad = _reference_col2im(grad_cols.reshape((c, kh, kw, self.x_shape[0]) + self.out),
                                     self.x_pad.shape, self.stride, self.dilation)
        (top, _), (left, _) = self.padding
        return grad_pad[:, :, top:top + self.x_shape[2], left:left + self.x_shape[3]]


CONV2D_CASES = [  # x shape, w shape, stride, padding, dilation, groups
    ((2, 3, 6, 6), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), ((1, 0), (2, 1)), (1, 1), 2),
    ((1, 2, 9, 8), (3, 2, 3, 3), (2, 2), ((1, 1), (0, 0)), (2, 1), 1),
    ((2, 3, 5, 5), (3, 1, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 2), 3),
]


@pytest.mark.parametrize("needs", NEEDS_3)
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", CONV2D_CASES)
def test_conv2d(x_shape, w_shape, stride, padding, dilation, groups, needs):
    x, w, b = _randn(*x_shape), _randn(*w_shape), _randn(w_shape[0])
    ref = _ConvReference(x, w, stride, padding, dilation, groups)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    _check(Conv2d, (x, w, b), needs, attrs, lambda args, gemm: ref.forward(args[2], gemm),
           lambda gy, gemm: ref.backward(gy, needs, gemm))


@pytest.mark.parametrize("needs", [(True, True, None), (False, True, None), (True, False, True)])
def test_conv1d_and_formula(needs):
    x, w = _randn(2, 4, 9), _randn(6, 2, 3)
    b = _randn(6) if needs[2] is not None else None
    ref = _ConvReference(x[:, :, None], w[:, :, None], (1, 2), ((0, 0), (2, 1)), (1, 2), 2)
    attrs = dict(stride=(2,), padding=((2, 1),), dilation=(2,), groups=2)

    def backward(gy, gemm):
        grads = ref.backward(gy[:, :, None], needs, gemm)
        return {i: g[:, :, 0] if i < 2 else g for i, g in grads.items()}

    cost = _check(Conv1d, (x, w, b), needs, attrs,
                  lambda args, gemm: ref.forward(args[2], gemm)[:, :, 0], backward)
    assert cost.formula.startswith("conv1d x(2x4x9) w(6x2x3) -> 2x6x4: 2*N*Cout*Lout*")


def test_conv2d_formula_names_the_shapes():
    call, *_ = _run(Conv2d, (_randn(8, 3, 32, 32), _randn(16, 3, 3, 3), None),
                    (False, True, None), dict(padding=((1, 1), (1, 1))))
    cost = cost_of(call)
    assert cost.formula == ("conv2d x(8x3x32x32) w(16x3x3x3) -> 8x16x32x32: "
                            "2*N*Cout*Hout*Wout*(Cin/groups)*kh*kw + bias")
    # the first conv of a CNN: its image needs no gradient, so no dL/dx product
    assert cost.backward_gemm_flops == cost.gemm_flops == 2 * 8 * 16 * 32 * 32 * 27


# ---------------------------------------------------------------------------- pooling
def _window_cells(x, kernel, stride, padding, dilation, ceil_mode):
    """(ho, wo, the window's cells inside x as an (N, C, cells) array) for each window."""
    n, c, h, w = x.shape
    for ho, wo, rows, cols in _reference_windows(x.shape, kernel, stride, padding, dilation,
                                                 ceil_mode):
        rows, cols = _inside(rows, 0, h), _inside(cols, 0, w)
        yield ho, wo, x[:, :, rows[:, None], cols[None, :]].reshape(n, c, -1)


def _pooled(x, kernel, stride, padding, dilation, ceil_mode, reduce):
    """The windows reduced by ``reduce(cells, ho, wo)``; -inf for a window with no cell in x."""
    out = [pool_output_size(x.shape[2 + a], kernel[a], stride[a], padding[a], dilation[a],
                            ceil_mode) for a in range(2)]
    y = np.full(x.shape[:2] + tuple(out), -np.inf)
    for ho, wo, cells in _window_cells(x, kernel, stride, padding, dilation, ceil_mode):
        if cells.shape[-1]:
            y[:, :, ho, wo] = reduce(cells, ho, wo)
    return y


MAX_POOL_CASES = [  # x shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((1, 2, 7, 6), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((2, 2, 9, 7), (3, 2), (2, 1), (1, 1), (3, 2), False),   # windows of padding only
]


@pytest.mark.parametrize("needs", [(True,), (False,)])
@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil_mode", MAX_POOL_CASES)
def test_max_pool2d(shape, kernel, stride, padding, dilation, ceil_mode, needs):
    x = _randn(*shape)
    attrs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                 ceil_mode=ceil_mode)

    def forward(args, gemm):
        return _pooled(args[0], kernel, stride, padding, dilation, ceil_mode,
                       lambda cells, ho, wo: cells.max(axis=-1))

    def backward(gy, gemm):
        return {0: max_pool2d_reference_backward(x, gy, kernel, stride, padding, dilation,
                                                 ceil_mode)}

    _check(MaxPool2d, (x,), needs, attrs, forward, backward)


AVG_POOL_CASES = [  # x shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor
    ((2, 3, 6, 6), (2, 2), (2, 2), (0, 0), False, True, None),
    ((1, 2, 7, 6), (3, 3), (2, 2), (1, 1), True, False, None),
    ((2, 2, 5, 7), (3, 2), (1, 2), (1, 1), False, True, 5),
]


@pytest.mark.parametrize("needs", [(True,), (False,)])
@pytest.mark.parametrize("shape, kernel, stride, padding, ceil_mode, include_pad, divisor",
                         AVG_POOL_CASES)
def test_avg_pool2d(shape, kernel, stride, padding, ceil_mode, include_pad, divisor, needs):
    x = _randn(*shape)
    attrs = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode,
                 count_include_pad=include_pad, divisor_override=divisor)
    out = [pool_output_size(shape[2 + a], kernel[a], stride[a], padding[a], 1, ceil_mode)
           for a in range(2)]
    divisors = _avg_divisor(shape[2:], out, kernel, stride, padding, include_pad, divisor)

    def forward(args, gemm):
        return _pooled(args[0], kernel, stride, padding, (1, 1), ceil_mode,
                       lambda cells, ho, wo: cells.sum(axis=-1) / divisors[ho, wo])

    def backward(gy, gemm):
        return {0: avg_pool2d_reference_backward(x, gy, kernel, stride, padding, ceil_mode,
                                                 include_pad, divisor)}

    _check(AvgPool2d, (x,), needs, attrs, forward, backward)


@pytest.mark.parametrize("needs", [(True,), (False,)])
@pytest.mark.parametrize("shape, size", [((2, 3, 8, 8), (1, 1)), ((1, 2, 7, 5), (3, 2))])
def test_adaptive_avg_pool2d(shape, size, needs):
    x = _randn(*shape)
    windows = [list(zip(*adaptive_windows(shape[2 + a], size[a]))) for a in range(2)]

    def forward(args, gemm):
        y = np.empty(shape[:2] + size)
        for a, (h0, h1) in enumerate(windows[0]):
            for b, (w0, w1) in enumerate(windows[1]):
                y[:, :, a, b] = args[0][:, :, h0:h1, w0:w1].sum(axis=(2, 3)) \
                    / ((h1 - h0) * (w1 - w0))
        return y

    def backward(gy, gemm):
        grad = np.zeros(shape)
        for a, (h0, h1) in enumerate(windows[0]):
            for b, (w0, w1) in enumerate(windows[1]):
                grad[:, :, h0:h1, w0:w1] += (gy[:, :, a, b] / ((h1 - h0) * (w1 - w0)))[
                    :, :, None, None]
        return {0: grad}

    _check(AdaptiveAvgPool2d, (x,), needs, dict(output_size=size), forward, backward)


# ---------------------------------------------------------------------------- norms
EPS = 1e-5


def _normalize(x, axes):
    """(x_hat, rstd, mu, var) over ``axes`` as the module docstring: mu, x - mu once, var,
    rstd."""
    mu = x.mean(axis=axes, keepdims=True)
    centered = x - mu
    var = (centered * centered).mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt(var + EPS)
    return centered * rstd, rstd, mu, var


def _affine(x_hat, weight, bias, shape):
    y = x_hat * weight.reshape(shape) if weight is not None else x_hat
    return y + bias.reshape(shape) if bias is not None else y


def _grad_x(g, x_hat, rstd, axes):
    """rstd * (g - mean(g) - x_hat * mean(g * x_hat)), the means over ``axes``."""
    mean_g = g.mean(axis=axes, keepdims=True)
    return rstd * (g - mean_g - x_hat * (g * x_hat).mean(axis=axes, keepdims=True))


def _affine_grads(gy, x_hat, axes, shape):
    return {1: lambda: (gy * x_hat).sum(axis=axes).reshape(shape),
            2: lambda: gy.sum(axis=axes).reshape(shape)}


NORM_NEEDS = [(True, True, True), (True, False, False), (False, True, False),
              (False, False, True), (True, None, None)]


def _norm_inputs(shape, params, needs):
    return (_randn(*shape), _randn(*params) if needs[1] is not None else None,
            _randn(*params) if needs[2] is not None else None)


@pytest.mark.parametrize("needs", NORM_NEEDS)
@pytest.mark.parametrize("ndim", [1, 2])
def test_layer_norm(needs, ndim):
    shape = (2, 3, 4, 5)
    x, w, b = _norm_inputs(shape, shape[4 - ndim:], needs)
    axes, leading = tuple(range(4 - ndim, 4)), tuple(range(4 - ndim))
    x_hat, rstd = _normalize(x, axes)[:2]

    def backward(gy, gemm):
        def grad_x():
            return _grad_x(gy * w if w is not None else gy, x_hat, rstd, axes)

        return needed(needs, {0: grad_x,
                               **_affine_grads(gy, x_hat, leading, w.shape if w is not None
                                               else None)})

    _check(LayerNorm, (x, w, b), needs, dict(normalized_ndim=ndim, eps=EPS),
           lambda args, gemm: _affine(_normalize(args[0], axes)[0], args[1], args[2],
                                      shape[4 - ndim:]), backward)


@pytest.mark.parametrize("needs", NORM_NEEDS)
def test_group_norm(needs):
    shape, groups = (2, 6, 3, 4), 3
    x, w, b = _norm_inputs(shape, (6,), needs)
    grouped, channel = (2, groups, 2, 3, 4), (1, 6, 1, 1)
    x_hat, rstd = _normalize(x.reshape(grouped), (2, 3, 4))[:2]

    def forward(args, gemm):
        return _affine(_normalize(args[0].reshape(grouped), (2, 3, 4))[0].reshape(shape),
                       args[1], args[2], channel)

    def backward(gy, gemm):
        def grad_x():
            g = (gy * w.reshape(channel) if w is not None else gy).reshape(grouped)
            return _grad_x(g, x_hat, rstd, (2, 3, 4)).reshape(shape)

        return needed(needs, {0: grad_x,
                               **_affine_grads(gy, x_hat.reshape(shape), (0, 2, 3), (6,))})

    _check(GroupNorm, (x, w, b), needs, dict(num_groups=groups, eps=EPS), forward, backward)


class _BatchNormReference:
    """BatchNorm from its docstring (x:(N, C, H, W), A = (N, H, W)); ``running``: copies of
    (running_mean, running_var) or (None, None)."""

    axes, channel, momentum = (0, 2, 3), (1, -1, 1, 1), 0.1

    def __init__(self, x, weight, running, training):
        self.weight, self.running, self.training = weight, running, training
        self.m = x.size // x.shape[1]
        self.x_hat, self.rstd = self.normalize(x)[:2]
        self.updated = None

    def normalize(self, x):
        if self.training:
            return _normalize(x, self.axes)
        mean, var = (counted(r).reshape(self.channel) for r in self.running)
        rstd = 1.0 / np.sqrt(var + EPS)
        return (x - mean) * rstd, rstd

    def forward(self, args, gemm):
        x, weight, bias = args[:3]
        x_hat, _, *stats = self.normalize(x)
        if stats and self.running[0] is not None:
            # new = (1 - momentum) old + momentum * batch value (var unbiased: momentum * M /
            # (M - 1) is one constant): 3C each
            mean, var = (s.reshape(-1) for s in stats)
            factors = (self.momentum, self.momentum * self.m / (self.m - 1))
            self.updated = [counted(old) * (1.0 - self.momentum) + new * factor
                            for old, new, factor in zip(self.running, (mean, var), factors)]
        return _affine(x_hat, weight, bias, self.channel)

    def backward(self, gy, needs, gemm):
        sums = _affine_grads(gy, self.x_hat, self.axes, (-1,))
        if needs[0] and self.training:
            grad_b, grad_w = sums[2](), sums[1]()
            grad_x = self.scale() * (gy - (grad_b / self.m).reshape(self.channel)
                                     - self.x_hat * (grad_w / self.m).reshape(self.channel))
            return needed(needs, {0: lambda: grad_x, 1: lambda: grad_w, 2: lambda: grad_b})
        return needed(needs, {0: lambda: gy * self.scale(), **sums})

    def scale(self):
        """gamma * rstd (C products), or rstd without gamma."""
        rstd = counted(self.rstd)
        return rstd if self.weight is None else counted(self.weight).reshape(self.channel) * rstd


@pytest.mark.parametrize("needs", NORM_NEEDS)
@pytest.mark.parametrize("training, running", [(True, True), (True, False), (False, True)])
def test_batch_norm(needs, training, running):
    shape = (4, 3, 2, 5)
    x, w, b = _norm_inputs(shape, (3,), needs)
    stats = (_randn(3), np.abs(_randn(3)) + 0.5) if running else (None, None)
    ref = _BatchNormReference(x, w, [s.copy() if running else None for s in stats], training)
    attrs = dict(training=training, momentum=ref.momentum, eps=EPS)
    _check(BatchNorm, (x, w, b) + stats, needs, attrs, ref.forward,
           lambda gy, gemm: ref.backward(gy, needs, gemm))
    if training and running:   # the op updated its running statistics in place, as ours
        for ours, theirs in zip(ref.updated, stats):
            np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-12)


# ---------------------------------------------------------------------------- attention
def _swap(a):
    return np.swapaxes(a, -1, -2)


class _AttentionReference:
    """Both attention ops from their docstrings, S = Q K^T * scale + M over the full L x S
    scores (the causal mask is a select): ScaledDotProductAttention with a row softmax and P
    kept, MemoryEfficientAttention with the online softmax over blocks of keys and P
    recomputed in backward. q, k, v, mask: plain arrays (mask None, bool or float)."""

    def __init__(self, q, k, v, mask, scale, causal, needs):
        self.q, self.k, self.v, self.mask = q, k, v, mask
        self.scale, self.causal, self.needs = scale, causal, needs

    def scores(self, q, k, gemm, start=0):
        s = gemm.mm(q, _swap(k)) * self.scale
        mask = self.mask[..., start:start + k.shape[-2]] if self.mask is not None else None
        if mask is not None:
            s = np.where(mask, s, -np.inf) if mask.dtype == np.bool_ else s + mask
        if self.causal:
            keys = np.arange(start, start + k.shape[-2])
            s = np.where(keys > np.arange(q.shape[-2])[:, None], -np.inf, s)
        return s

    def sdpa(self, args, gemm, dropout=None):
        s = self.scores(args[0], args[1], gemm)
        e = np.exp(s - s.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        self.p, self.dropout = np.asarray(p), dropout
        out = gemm.mm(p * dropout if dropout is not None else p, args[2])
        self.out = np.asarray(out)
        return out

    def sdpa_backward(self, grad_out, gemm):
        kept = self.p if self.dropout is None else self.p * self.dropout  # formed in forward
        grads = {2: lambda: gemm.mm(_swap(kept), grad_out)}
        if self.needs_scores():
            grad_p = gemm.mm(grad_out, _swap(self.v))
            if self.dropout is not None:
                grad_p = grad_p * self.dropout
            row = (grad_out * self.out).sum(axis=-1, keepdims=True)
            grads.update(self.score_grads(self.p * (grad_p - row), gemm))
        return self.unbroadcast(needed(self.needs, grads))

    def needs_scores(self):
        return self.needs[0] or self.needs[1] or bool(self.needs[3])

    def score_grads(self, grad_s, gemm):
        return {0: lambda: gemm.mm(grad_s, self.k) * self.scale,
                1: lambda: gemm.mm(_swap(grad_s), self.q) * self.scale, 3: lambda: grad_s}

    def unbroadcast(self, grads):
        inputs = (self.q, self.k, self.v, self.mask)
        return {i: sum_to(g, inputs[i].shape) for i, g in grads.items()}

    def blocks(self, block_size):
        n_keys = self.k.shape[-2]
        return [(i, min(i + block_size, n_keys)) for i in range(0, n_keys, block_size)]

    def online(self, args, gemm, block_size):
        """m' = max(m, rowmax(S_b)), alpha = exp(m - m'), P_b = exp(S_b - m'),
        l = l * alpha + rowsum(P_b), A = A * alpha + P_b V_b; O = A / l, lse = m + log(l)."""
        q, k, v = args[:3]
        rows = np.broadcast_shapes(q.shape[:-2], k.shape[:-2]) + (q.shape[-2],)
        m, total, acc = np.full(rows, -np.inf), np.zeros(rows), np.zeros(rows + v.shape[-1:])
        for start, stop in self.blocks(block_size):
            s = self.scores(q, k[..., start:stop, :], gemm, start)
            new_max = np.maximum(m, s.max(axis=-1))
            alpha = np.exp(m - new_max)
            p = np.exp(s - new_max[..., None])
            total = total * alpha + p.sum(axis=-1)
            acc = acc * alpha[..., None] + gemm.mm(p, v[..., start:stop, :])
            m = new_max
        out, lse = acc / total[..., None], m + np.log(total)
        self.out, self.lse = np.asarray(out), np.asarray(lse)
        return out

    def online_backward(self, grad_out, gemm, block_size):
        """D = rowsum(dO * O); per block P_b = exp(S_b - lse), dL/dV_b = P_b^T dO,
        dL/dS_b = P_b * (dO V_b^T - D), dL/dQ += dL/dS_b K_b, dL/dK_b = dL/dS_b^T Q * scale."""
        d = (grad_out * self.out).sum(axis=-1)[..., None] if self.needs_scores() else None
        grad_q, parts = np.zeros(self.out.shape[:-1] + self.q.shape[-1:]), {1: [], 2: [], 3: []}
        for start, stop in self.blocks(block_size):
            k_b, v_b = self.k[..., start:stop, :], self.v[..., start:stop, :]
            p = np.exp(self.scores(counted(self.q), k_b, gemm, start) - self.lse[..., None])
            grad_s = p * (gemm.mm(grad_out, _swap(v_b)) - d) if self.needs_scores() else None
            if self.needs[0]:
                grad_q = grad_q + gemm.mm(grad_s, k_b)
            blocks = {1: lambda: gemm.mm(_swap(grad_s), self.q) * self.scale,
                      2: lambda: gemm.mm(_swap(p), grad_out), 3: lambda: grad_s}
            for i, block in needed(self.needs, blocks).items():
                parts[i].append(block)
        grads = {i: (lambda i=i: np.concatenate(parts[i], axis=-1 if i == 3 else -2))
                 for i in parts}
        return self.unbroadcast(needed(self.needs, {0: lambda: grad_q * self.scale, **grads}))


ATTENTION_NEEDS = [(True, True, True), (False, True, False), (True, False, False),
                   (False, False, True), (False, False, False)]
ATTENTION_CASES = [  # q, k, v shapes, mask ("bool", "float" or None), causal
    ((2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 3), None, False),
    ((2, 6, 4), (2, 6, 4), (2, 6, 4), None, True),
    ((2, 2, 5, 4), (1, 6, 4), (1, 6, 3), "bool", False),       # k, v broadcast
    ((2, 5, 4), (2, 6, 4), (2, 6, 2), "float", False),
]


def _attention_inputs(q_shape, k_shape, v_shape, mask_kind, needs):
    q, k, v = _randn(*q_shape), _randn(*k_shape), _randn(*v_shape)
    mask, mask_need = None, None
    if mask_kind == "bool":
        mask = RNG.random((q_shape[-2], k_shape[-2])) < 0.6
        mask[:, 0] = True
        mask_need = False
    elif mask_kind == "float":
        mask, mask_need = _randn(1, q_shape[-2], k_shape[-2]), needs[0]
    return (q, k, v, mask), needs + (mask_need,)


@pytest.mark.parametrize("needs", ATTENTION_NEEDS)
@pytest.mark.parametrize("q_shape, k_shape, v_shape, mask_kind, causal", ATTENTION_CASES)
def test_scaled_dot_product_attention(q_shape, k_shape, v_shape, mask_kind, causal, needs):
    inputs, needs = _attention_inputs(q_shape, k_shape, v_shape, mask_kind, needs)
    ref = _AttentionReference(*inputs, 0.4, causal, needs)
    _check(ScaledDotProductAttention, inputs, needs, dict(scale=0.4, causal=causal), ref.sdpa,
           ref.sdpa_backward)


def test_scaled_dot_product_attention_with_dropout():
    inputs, needs = _attention_inputs((2, 5, 4), (2, 6, 4), (2, 6, 3), None, (True, True, True))
    ref = _AttentionReference(*inputs, 0.5, False, needs)
    rg.manual_seed(3)
    dropout = dropout_mask((2, 5, 6), np.dtype(np.float64), 0.2)
    rg.manual_seed(3)   # the op draws the same mask
    _check(ScaledDotProductAttention, inputs, needs, dict(scale=0.5, dropout_p=0.2),
           lambda args, gemm: ref.sdpa(args, gemm, dropout), ref.sdpa_backward)


@pytest.mark.parametrize("needs", ATTENTION_NEEDS)
@pytest.mark.parametrize("block_size", [2, 4, 16])
@pytest.mark.parametrize("q_shape, k_shape, v_shape, mask_kind, causal", ATTENTION_CASES)
def test_memory_efficient_attention(q_shape, k_shape, v_shape, mask_kind, causal, block_size,
                                    needs):
    inputs, needs = _attention_inputs(q_shape, k_shape, v_shape, mask_kind, needs)
    ref = _AttentionReference(*inputs, 0.4, causal, needs)
    cost = _check(MemoryEfficientAttention, inputs, needs,
                  dict(scale=0.4, causal=causal, block_size=block_size),
                  lambda args, gemm: ref.online(args, gemm, block_size),
                  lambda grad_out, gemm: ref.online_backward(grad_out, gemm, block_size))
    # the full L x S score matrix, also under the causal mask, and recomputed in backward
    rows = math.prod(ref.out.shape[:-1])
    assert cost.gemm_flops == 2 * rows * k_shape[-2] * (q_shape[-1] + v_shape[-1])
    if all(needs[:3]):   # Q K^T recomputed, dL/dQ, dL/dK; dL/dV, dP
        assert cost.backward_gemm_flops == 2 * rows * k_shape[-2] * (3 * q_shape[-1]
                                                                     + 2 * v_shape[-1])
