"""Elementwise losses: binary cross-entropy of probabilities, Kullback-Leibler divergence,
smooth L1 and Huber. (Cross-entropy, NLL and binary cross-entropy on logits are in
ops/loss.py.)

Each op returns the loss of every element, in the broadcast shape of its inputs;
nn.functional reduces it ('mean', 'sum', 'batchmean') with the differentiable reductions, and
the engine sums each gradient back to its input's shape. Every backward is written so that
it also runs on Tensors (create_graph=True): each op here is twice differentiable. Masks
taken in forward are constants. float16 and bfloat16 arrays are computed in float32 and
rounded once at the end.
"""

import numpy as np

from retrograd.autograd.cost import Cost, unbroadcast_flops
from retrograd.autograd.function import Function
from retrograd.ops.elementwise import operands_text

__all__ = ["BinaryCrossEntropy", "KlDiv", "SmoothL1Loss", "HuberLoss"]

# PyTorch's clamps: each log of binary_cross_entropy is at least -100, and the denominator
# x (1 - x) of its gradient at least 1e-12 (so x = 0 or 1 gives a finite loss and gradient).
# NOTE: PyTorch's 1e-12 is a float32 constant (9.99999996e-13), also for float64 inputs.
_LOG_FLOOR = -100.0
_BCE_EPSILON = float(np.float32(1e-12))


def _lifted(x):
    """float16 and bfloat16 arrays as float32; anything else (Tensors too) unchanged."""
    if isinstance(x, (np.ndarray, np.generic)) and x.dtype.itemsize < 4:
        return x.astype(np.float32)
    return x


def _gradient_cost(call, per_element):
    """Backward FLOPs: ``per_element[i]`` per element of y for each needed input i, plus the
    adds that sum its gradient back to the input's shape."""
    y = call.outputs[0]
    return sum(per * y.size + unbroadcast_flops(y.shape, call.inputs[i].shape)
               for i, per in per_element.items() if call.needs(i))


class BinaryCrossEntropy(Function):
    """Elementwise binary cross-entropy of probabilities x in [0, 1] with targets t and
    weights w (None means 1), all broadcast to x's shape:
        l = -w (t max(log x, -100) + (1 - t) max(log(1 - x), -100))
    (PyTorch's clamp of each log at -100: x = 0 or 1 gives a finite loss, at most 100 w).
    dl/dx = -w (t / x - (1 - t) / (1 - x)) = w (x - t) / (x (1 - x)), so
        dL/dx = dL/dy * w * (x - t) / max(x (1 - x), 1e-12)
        dL/dt = dL/dy * w * (log(1 - x) - log x)          (= -dL/dy * w * logit(x))
    PyTorch's rules: the denominator is clamped, so dL/dx stays finite at x = 0 and 1; dL/dt
    is the derivative of the unclamped loss (+-inf at x = 0 or 1). w gets no gradient (PyTorch
    refuses weight.requires_grad; nn.functional checks it).
    Saves: x, t and w (inputs).
    Shapes: x, t (*) (the same shape), w broadcastable to x, y and dL/dy (*).
    """

    @staticmethod
    def forward(ctx, x, target, weight=None):
        ctx.save_for_backward(x, target, weight)
        p, t = _lifted(x), _lifted(target)
        log_p = np.maximum(np.log(p), _LOG_FLOOR)
        log_q = np.maximum(np.log1p(-p), _LOG_FLOOR)
        loss = -(t * log_p + (1.0 - t) * log_q)
        loss = loss * _lifted(weight) if weight is not None else loss
        return loss.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        x, t, w = ctx.saved_tensors
        need_x, need_t = ctx.needs_input_grad[:2]
        x, t = _lifted(x), _lifted(t)
        g = grad_out * _lifted(w) if w is not None else grad_out
        grad_x = g * (x - t) / np.maximum(x * (1.0 - x), _BCE_EPSILON) if need_x else None
        grad_t = g * (np.log(1.0 - x) - np.log(x)) if need_t else None
        return grad_x, grad_t, None

    @staticmethod
    def cost(call):
        """Per element of y: log x, the clamp, 1 - x, log, the clamp, 1 - t, two products, the
        sum and the negation: 10n, and * w (n) with weights. Backward dL/dy * w (n, with
        weights, once); dL/dx 1 - x, x * (.), the clamp, x - t, the quotient, * g: 6n;
        dL/dt 1 - x, two logs, the difference, * g: 5n; plus the sums back to each input's
        shape."""
        weighted = len(call.inputs) > 2 and call.inputs[2] is not None
        n = call.outputs[0].size
        backward = _gradient_cost(call, {0: 6, 1: 5})
        backward += n * weighted * (call.needs(0) or call.needs(1))
        return Cost((10 + weighted) * n, backward,
                    f"binary_cross_entropy {operands_text(call)}: 10*n (+ n with weight)")


class KlDiv(Function):
    """Elementwise Kullback-Leibler divergence terms of log-probabilities x from targets t
    (broadcast together), as PyTorch's kl_div:
        log_target=False:  l = t (log t - x)          (0 where t = 0)
        log_target=True:   l = exp(t) (t - x)         (0 where exp(t) = 0)
    dL/dx = -dL/dy * t                      dL/dt = dL/dy * (log t + 1 - x)
    dL/dx = -dL/dy * exp(t)                 dL/dt = dL/dy * exp(t) (t - x + 1)   (log_target)
    A target probability of 0 contributes 0 whatever x is (0 log 0 = 0, and 0 * x = 0 also for
    x = -inf, where PyTorch's 0 * -inf gives NaN); with log_target, its dL/dt is 0 too (the
    limit of exp(t) (t - x + 1)); without, dL/dt at t = 0 is the one-sided limit -inf * dL/dy.
    Saves: x and t (inputs) and the mask of zero target probabilities (a constant).
    Shapes: x, t broadcast to y:(*); dL/dx, dL/dt in y's shape (the engine sums them back).
    """

    @staticmethod
    def forward(ctx, x, target, log_target=False):
        ctx.save_for_backward(x, target)
        p, t = _lifted(x), _lifted(target)
        ctx.log_target = log_target
        if log_target:
            prob = np.exp(t)
            ctx.zero = prob == 0
            loss = prob * (t - p)
        else:
            ctx.zero = t == 0
            loss = t * np.log(t) - t * p
        dtype = np.result_type(x.dtype, target.dtype)
        return np.where(ctx.zero, 0.0, loss).astype(dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        x, t = ctx.saved_tensors
        need_x, need_t = ctx.needs_input_grad
        x, t = _lifted(x), _lifted(t)
        if not ctx.log_target:
            grad_x = -(grad_out * t) if need_x else None
            grad_t = grad_out * (np.log(t) + 1.0 - x) if need_t else None
            return grad_x, grad_t
        scaled = grad_out * np.exp(t)
        grad_x = -scaled if need_x else None
        grad_t = np.where(ctx.zero, 0.0, scaled * (t - x + 1.0)) if need_t else None
        return grad_x, grad_t

    @staticmethod
    def cost(call):
        """Per element of t (n_t) and of y (n): log t and t * (.) (2 n_t), t * x, the
        difference and the select (3n); log_target: exp t (n_t), t - x, the product and the
        select (3n). Backward dL/dx dL/dy * t and the negation: 2n; dL/dt log t, + 1 (2 n_t),
        - x, * dL/dy (2n). log_target: dL/dy * exp(t) once (n_t + n), then the negation for
        dL/dx (n) and t - x, + 1, * and the select for dL/dt (4n); plus the sums back to each
        input's shape."""
        log_target = bool(call.attrs.get("log_target", False))
        n, n_t = call.outputs[0].size, call.inputs[1].size
        if log_target:
            forward = n_t + 3 * n
            backward = _gradient_cost(call, {0: 1, 1: 4})
            backward += (n_t + n) * (call.needs(0) or call.needs(1))
        else:
            forward = 2 * n_t + 3 * n
            backward = _gradient_cost(call, {0: 2, 1: 2}) + 2 * n_t * call.needs(1)
        return Cost(forward, backward, f"kl_div {operands_text(call)}: "
                    f"{'n_t + 3*n' if log_target else '2*n_t + 3*n'}")


class SmoothL1Loss(Function):
    """Elementwise smooth L1 loss of x and t (broadcast), with d = x - t and beta > 0:
        l = 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere
    dl/dd = d / beta inside and sign(d) outside: both are clip(d, -beta, beta) / beta, so
        dL/dx = dL/dy * clip(d, -beta, beta) / beta,      dL/dt = -dL/dx
    (the two pieces meet with equal values and slopes at |d| = beta; d = +-inf gives
    dL/dx = +-dL/dy, as PyTorch).
    Saves: x and t (inputs; d is recomputed, one subtraction).
    Shapes: x, t broadcast to y:(*).
    """

    @staticmethod
    def forward(ctx, x, target, beta=1.0):
        ctx.save_for_backward(x, target)
        ctx.beta = beta
        d = _lifted(x) - _lifted(target)
        size = np.abs(d)
        loss = np.where(size < beta, (0.5 * d * d) / beta, size - 0.5 * beta)
        return loss.astype(np.result_type(x.dtype, target.dtype), copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        x, t = ctx.saved_tensors
        need_x, need_t = ctx.needs_input_grad
        d = _lifted(x) - _lifted(t)
        grad = grad_out * (np.clip(d, -ctx.beta, ctx.beta) / ctx.beta)
        return (grad if need_x else None), (-grad if need_t else None)

    @staticmethod
    def cost(call):
        """Per element of y: d = x - t, |d|, d * d, * 0.5, / beta, |d| - 0.5 beta and the
        select: 7n. Backward d, the clip (max and min), / beta, * dL/dy: 5n once, and the
        negation (n) for dL/dt; plus the sums back to each input's shape."""
        n = call.outputs[0].size
        backward = _gradient_cost(call, {0: 0, 1: 1}) + 5 * n * (call.needs(0) or call.needs(1))
        return Cost(7 * n, backward, f"smooth_l1_loss {operands_text(call)}: 7*n")


class HuberLoss(Function):
    """Elementwise Huber loss of x and t (broadcast), with d = x - t and delta > 0:
        l = 0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere
    dl/dd = d inside and delta sign(d) outside: both are clip(d, -delta, delta), so
        dL/dx = dL/dy * clip(d, -delta, delta),      dL/dt = -dL/dx
    (smooth_l1 with beta = delta, times delta).
    Saves: x and t (inputs; d is recomputed, one subtraction).
    Shapes: x, t broadcast to y:(*).
    """

    @staticmethod
    def forward(ctx, x, target, delta=1.0):
        ctx.save_for_backward(x, target)
        ctx.delta = delta
        d = _lifted(x) - _lifted(target)
        size = np.abs(d)
        loss = np.where(size < delta, 0.5 * d * d, delta * (size - 0.5 * delta))
        return loss.astype(np.result_type(x.dtype, target.dtype), copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        x, t = ctx.saved_tensors
        need_x, need_t = ctx.needs_input_grad
        d = _lifted(x) - _lifted(t)
        grad = grad_out * np.clip(d, -ctx.delta, ctx.delta)
        return (grad if need_x else None), (-grad if need_t else None)

    @staticmethod
    def cost(call):
        """Per element of y: d = x - t, |d|, d * d, * 0.5, |d| - 0.5 delta, delta * (.) and
        the select: 7n. Backward d, the clip (max and min), * dL/dy: 4n once, and the
        negation (n) for dL/dt; plus the sums back to each input's shape."""
        n = call.outputs[0].size
        backward = _gradient_cost(call, {0: 0, 1: 1}) + 4 * n * (call.needs(0) or call.needs(1))
        return Cost(7 * n, backward, f"huber_loss {operands_text(call)}: 7*n")
