"""Recurrent cell steps (RNN, LSTM, GRU), one fused op per time step, and Unbind.

A recurrent layer runs the same cell at every step t. Everything that does not depend on the
previous state is taken out of the loop: the input projection of all steps is one Linear op,
one GEMM, before the loop,

    gx = x W_ih^T + b_ih         x: (T, B, I)  W_ih: (G H, I)  gx: (T, B, G H)

(G = 1 for RNN, 4 for LSTM, 3 for GRU; H the hidden size). Its gradients come from that
Linear op: dL/dx = dL/dgx @ W_ih, dL/dW_ih = sum over t of dL/dgx_t^T x_t, dL/db_ih = the
sum of dL/dgx over steps and batch. The step ops below take gx_t (B, G H), the previous state
h (B, H) (and c for the LSTM), W_hh (G H, H) and b_hh (G H,) and compute

    gh = h W_hh^T + b_hh         (B, G H)

and the cell. Their backward ends the same way for every cell: from dL/da, the gradient of
the pre-activations that see h (the part of the gates that comes from gh),

    dL/dh    = dL/da @ W_hh          (B, H)      (+ any direct path from h to h')
    dL/dW_hh = dL/da^T @ h           (G H, H)
    dL/db_hh = sum over B of dL/da   (G H,)

Backpropagation through time is then just the engine running these ops in reverse order:
dL/dh of step t is added to the gradient arriving at h_t from the layer's output, and W_hh's
per-step gradients accumulate into one.

``h`` (and ``c``) may be None: a zero initial state, which skips the h W_hh^T product.
The ops keep the dtype of gx.
"""

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.ops._matmul import matmul
from retrograd.ops.shape import Unbind  # noqa: F401  (re-exported: the time steps of a sequence)

__all__ = ["Unbind", "RNNStep", "LSTMStep", "GRUStep"]


def _sigmoid_(x):
    """x <- 1 / (1 + exp(-x)), in place (x may be a view), and returned. Where exp(-x)
    overflows (x < -88 in float32, -709 in float64) the result is 1 / inf = 0, which is the
    true value rounded (it is below 1e-38); ops run with floating-point warnings off
    (retrograd/_quiet.py), so the overflow is not reported."""
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    return np.reciprocal(x, out=x)


def _hidden_preactivation(gx, h, w_hh, b_hh):
    """gh = h W_hh^T + b_hh (B, G H), in gx's dtype; zeros (or b_hh) when h is None."""
    if h is None:
        gh = np.zeros(gx.shape, dtype=gx.dtype)
    else:
        gh = matmul(h, w_hh.T).astype(gx.dtype, copy=False)  # bfloat16 products are float32
    if b_hh is not None:
        gh += b_hh
    return gh


def _hidden_grads(ctx, da, h, w_hh, need_h, need_w, need_b):
    """(dL/dh, dL/dW_hh, dL/db_hh) from da = dL/d(gh) (B, G H), each None when not needed.
    W_hh's gradient is zeros when h is None (a zero state still takes part in the product,
    as in PyTorch)."""
    grad_h = matmul(da, w_hh) if need_h else None
    grad_w = None
    if need_w:
        grad_w = matmul(np.swapaxes(da, 0, 1), h) if h is not None else \
            np.zeros(ctx.w_shape, dtype=da.dtype)
    grad_b = np.sum(da, axis=0) if need_b else None
    return grad_h, grad_w, grad_b


def _given(call, position, name):
    """True when the step's argument at ``position`` (or keyword ``name``) is not None."""
    return call_arg(call, position, name) is not None


def _step_cost(call, w_pos, name, forward, backward, formula):
    """The Cost of a cell step (gx, h, ..., W_hh at w_pos, b_hh after it): the product
    h W_hh^T (2 B GH H, none for a zero state h = None) and, when needed, dL/dh = dL/da @ W_hh
    and dL/dW_hh = dL/da^T @ h (2 B GH H each; a zero state's dL/dW_hh is zeros) and dL/db_hh
    (B GH - GH adds); plus the cell's ``forward`` and ``backward`` FLOPs."""
    gx, w = call.inputs[0], call.inputs[w_pos]
    gemm = 2 * gx.size * w.shape[1] * _given(call, 1, "h")
    backward_gemm = gemm * (call.needs(1) + call.needs(w_pos))
    bias = reduction_flops(gx.size, gx.shape[1]) * call.needs(w_pos + 1)
    return Cost(gemm + forward, backward_gemm + bias + backward,
                f"{name} gx({shape_text(gx)}) w_hh({shape_text(w)}): 2*B*GH*H + {formula}",
                gemm_flops=gemm, backward_gemm_flops=backward_gemm)


def _needs_hidden_da(call, w_pos):
    """True when a hidden gradient that is formed from dL/da is needed: dL/dh, dL/db_hh, or
    dL/dW_hh when h is given (a zero state's dL/dW_hh is zeros)."""
    return bool(call.needs(1) or call.needs(w_pos + 1)
                or (call.needs(w_pos) and _given(call, 1, "h")))


def _needs_da(call, w_pos):
    """True when dL/da is needed: for dL/dgx or a hidden gradient."""
    return call.needs(0) or _needs_hidden_da(call, w_pos)


def _preactivation_adds(call, w_pos):
    """The adds of a = gx + h W_hh^T + b_hh (B, GH), over the terms given."""
    return call.inputs[0].size * (_given(call, 1, "h") + _given(call, w_pos + 1, "b_hh"))


class RNNStep(Function):
    """Elman RNN step: h' = act(a), a = gx + h W_hh^T + b_hh, act = tanh or relu.
    gx:(B, H) h:(B, H) or None, W_hh:(H, H), b_hh:(H,) or None, h':(B, H).

    dL/da  = dL/dh' * (1 - h'^2)    (tanh)
           = dL/dh' * [h' > 0]      (relu; 0 at the kink a = 0, as PyTorch)
    dL/dgx = dL/da                  (B, H)
    dL/dh, dL/dW_hh, dL/db_hh from dL/da as in the module docstring.
    Saves: h' (the derivative of both activations is cheapest from the output), h (for
    dL/dW_hh), W_hh (for dL/dh); the relu mask on ctx. The backward uses Tensor-compatible
    operations, so double backward works.
    """

    @staticmethod
    def forward(ctx, gx, h, w_hh, b_hh=None, nonlinearity="tanh"):
        a = _hidden_preactivation(gx, h, w_hh, b_hh)
        a += gx
        if nonlinearity == "tanh":
            y = np.tanh(a, out=a)
            ctx.mask = None
        else:
            y = np.maximum(a, 0, out=a)
            ctx.mask = (y > 0).astype(y.dtype)
        ctx.w_shape = w_hh.shape
        need_h, need_w = ctx.needs_input_grad[1:3]
        ctx.save_for_backward(y, h if need_w else None, w_hh if need_h else None)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        y, h, w_hh = ctx.saved_tensors
        da = grad_out * ctx.mask if ctx.mask is not None else grad_out * (1.0 - y * y)
        need_gx, need_h, need_w, need_b = ctx.needs_input_grad
        grad_h, grad_w, grad_b = _hidden_grads(ctx, da, h, w_hh, need_h, need_w, need_b)
        return (da if need_gx else None), grad_h, grad_w, grad_b

    @staticmethod
    def cost(call):
        """n = B H: the product, the adds of a (n per term after gx), the activation (n);
        backward dL/da (tanh 3n: y * y, 1 - (.), the product; relu n: a select) when it is
        needed (_needs_da), and the hidden gradients (_step_cost)."""
        n = call.inputs[0].size
        da = (3 if call_arg(call, 4, "nonlinearity", "tanh") == "tanh" else 1) * n
        return _step_cost(call, 2, "rnn_step", _preactivation_adds(call, 2) + n,
                          da * _needs_da(call, 2), "n per added term + n")


class LSTMStep(Function):
    """LSTM step, PyTorch's gate order i, f, g, o:
        a = gx + h W_hh^T + b_hh                  (B, 4H), split into a_i, a_f, a_g, a_o
        i = sigmoid(a_i)  f = sigmoid(a_f)  g = tanh(a_g)  o = sigmoid(a_o)
        c' = f * c + i * g                        (B, H)
        h' = o * tanh(c')                         (B, H)
    Outputs (h', c'). gx:(B, 4H) h, c:(B, H) or None, W_hh:(4H, H), b_hh:(4H,) or None.

    Backward, given dL/dh' and dL/dc' (B, H each), with tc = tanh(c'):
        dL/do  = dL/dh' * tc
        dc     = dL/dc' + dL/dh' * o * (1 - tc^2)   (all paths into c': direct and via h')
        dL/di  = dc * g     dL/dg = dc * i     dL/df = dc * c     dL/dc = dc * f
        dL/da_i = dL/di * i (1 - i)    dL/da_f = dL/df * f (1 - f)
        dL/da_g = dL/dg * (1 - g^2)    dL/da_o = dL/do * o (1 - o)
        dL/da = [dL/da_i, dL/da_f, dL/da_g, dL/da_o]    (B, 4H)
        dL/dgx = dL/da; dL/dh, dL/dW_hh, dL/db_hh from dL/da (module docstring).
    Saves: the activations [i, f, g, o] (B, 4H) and tc (B, H), intermediates of the fused
    kernel, plus c, h and W_hh (inputs). The backward is raw-array: once-differentiable.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, gx, h, c, w_hh, b_hh=None):
        size = gx.shape[1] // 4
        acts = _hidden_preactivation(gx, h, w_hh, b_hh)
        acts += gx
        g_slice = slice(2 * size, 3 * size)
        # NOTE: one in-place sigmoid over the whole contiguous array is ~3x faster than over
        # the strided i|f and o views; g's tanh is taken from the pre-activation first.
        gate_g = np.tanh(acts[:, g_slice])
        _sigmoid_(acts)
        acts[:, g_slice] = gate_g
        i, f, g, o = (acts[:, k * size:(k + 1) * size] for k in range(4))
        c_new = i * g
        if c is not None:
            c_new += f * c
        tc = np.tanh(c_new)
        h_new = o * tc
        ctx.w_shape = w_hh.shape
        ctx.save_for_backward(acts, tc, c, h, w_hh)
        return h_new, c_new

    @staticmethod
    def backward(ctx, grad_h_new, grad_c_new):
        acts, tc, c, h, w_hh = ctx.saved_tensors
        size = tc.shape[1]
        i, f, g, o = (acts[:, k * size:(k + 1) * size] for k in range(4))
        dc = grad_h_new * o * (1.0 - tc * tc)
        dc += grad_c_new
        da = np.empty_like(acts)
        da[:, :size] = dc * g * i * (1.0 - i)
        da[:, size:2 * size] = dc * c * f * (1.0 - f) if c is not None else 0.0
        da[:, 2 * size:3 * size] = dc * i * (1.0 - g * g)
        da[:, 3 * size:] = grad_h_new * tc * o * (1.0 - o)
        need_gx, need_h, need_c, need_w, need_b = ctx.needs_input_grad
        grad_c = dc * f if need_c else None
        grad_h, grad_w, grad_b = _hidden_grads(ctx, da, h, w_hh, need_h, need_w, need_b)
        return (da if need_gx else None), grad_h, grad_c, grad_w, grad_b

    @staticmethod
    def cost(call):
        """n = B H: the product, the adds of a (4n per term after gx), three sigmoids (4
        each: negate, exp, add, divide) and a tanh (13n), i * g (n), f * c + (.) (2n, with
        c), tanh(c') and o * tanh(c') (2n): 16n + 2n with c. Backward dc (5n), then dL/da_i,
        dL/da_g, dL/da_o (4n each: the gate's factor, its derivative (2n) and the products)
        and dL/da_f (4n, with c) when dL/da is needed (_needs_da: 17n + 4n with c; dc alone
        when only dL/dc is), dL/dc = dc * f (n), and the hidden gradients (_step_cost)."""
        n = call.inputs[0].size // 4
        has_c = _given(call, 2, "c")
        backward = ((17 + 4 * has_c) * n if _needs_da(call, 3) else 5 * n * call.needs(2)) \
            + n * call.needs(2)
        return _step_cost(call, 3, "lstm_step", _preactivation_adds(call, 3) + (16 + 2 * has_c) * n,
                          backward, "4n per added term + 16n (+ 2n with c)")


class GRUStep(Function):
    """GRU step, PyTorch's formula (gate order r, z, n; r multiplies W_hn h + b_hn):
        gh = h W_hh^T + b_hh                           (B, 3H), split gh_r, gh_z, gh_n
        r = sigmoid(gx_r + gh_r)    z = sigmoid(gx_z + gh_z)
        n = tanh(gx_n + r * gh_n)
        h' = (1 - z) * n + z * h                       (B, H)
    gx:(B, 3H) h:(B, H) or None, W_hh:(3H, H), b_hh:(3H,) or None.

    Backward, given dL/dh' (B, H):
        dL/dn = dL/dh' * (1 - z)        dL/dz = dL/dh' * (h - n)
        dL/da_n = dL/dn * (1 - n^2)     (a_n = gx_n + r * gh_n)
        dL/dr = dL/da_n * gh_n
        dL/da_r = dL/dr * r (1 - r)     dL/da_z = dL/dz * z (1 - z)
        dL/dgx = [dL/da_r, dL/da_z, dL/da_n]           (B, 3H)
        dL/dgh = [dL/da_r, dL/da_z, dL/da_n * r]       (B, 3H)
        dL/dh = dL/dh' * z + dL/dgh @ W_hh; dL/dW_hh, dL/db_hh from dL/dgh (module docstring).
    Saves: r, z, n and gh_n (intermediates, (B, H) each, kept as one (B, 4H) array), h and
    W_hh (inputs). The backward is raw-array: once-differentiable.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, gx, h, w_hh, b_hh=None):
        size = gx.shape[1] // 3
        gh = _hidden_preactivation(gx, h, w_hh, b_hh)
        rz = _sigmoid_(gx[:, :2 * size] + gh[:, :2 * size])
        r, z = rz[:, :size], rz[:, size:]
        gh_n = gh[:, 2 * size:]
        n = np.tanh(gx[:, 2 * size:] + r * gh_n)
        h_new = n - z * n
        if h is not None:
            h_new += z * h
        kept = np.concatenate([rz, n, gh_n], axis=1)   # [r, z, n, gh_n]
        ctx.w_shape = w_hh.shape
        ctx.save_for_backward(kept, h, w_hh)
        return h_new

    @staticmethod
    def backward(ctx, grad_out):
        kept, h, w_hh = ctx.saved_tensors
        size = kept.shape[1] // 4
        r, z, n, gh_n = (kept[:, k * size:(k + 1) * size] for k in range(4))
        da_n = grad_out * (1.0 - z) * (1.0 - n * n)
        dz = grad_out * (h - n) if h is not None else grad_out * -n
        grad_gx = np.empty((grad_out.shape[0], 3 * size), dtype=grad_out.dtype)
        grad_gx[:, :size] = da_n * gh_n * r * (1.0 - r)
        grad_gx[:, size:2 * size] = dz * z * (1.0 - z)
        grad_gx[:, 2 * size:] = da_n
        da = grad_gx.copy()
        da[:, 2 * size:] *= r
        need_gx, need_h, need_w, need_b = ctx.needs_input_grad
        grad_h, grad_w, grad_b = _hidden_grads(ctx, da, h, w_hh, need_h, need_w, need_b)
        if grad_h is not None:
            grad_h += grad_out * z
        return (grad_gx if need_gx else None), grad_h, grad_w, grad_b

    @staticmethod
    def cost(call):
        """n = B H: the product, + b_hh (3n, when both h and b_hh are given: else gh is
        b_hh, or 0), gx + gh for r and z (2n), two sigmoids (8n), r * gh_n, + gx_n, tanh
        (3n), (1 - z) * n (2n) and + z * h (2n, with h): 15n (+ 3n, + 2n). Backward dL/da_r,
        dL/da_z, dL/da_n (14n) when needed (_needs_da), dL/da_n * r (n) for dL/dgh when
        needed (_needs_hidden_da), dL/dh' * z + (.) (2n) for dL/dh, and the hidden gradients
        (_step_cost)."""
        n = call.inputs[0].size // 3
        has_h = _given(call, 1, "h")
        gh_adds = 3 * n * (has_h and _given(call, 3, "b_hh"))
        backward = (14 * n * _needs_da(call, 2) + n * _needs_hidden_da(call, 2)
                    + 2 * n * call.needs(1))
        return _step_cost(call, 2, "gru_step", gh_adds + (15 + 2 * has_h) * n, backward,
                          "15n (+ 3n with h and b_hh, + 2n with h)")
