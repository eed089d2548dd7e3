"""Loss ops: cross-entropy fused with log-softmax (class-index and class-probability targets),
negative log-likelihood, and binary cross-entropy on logits.

Layout: the class axis of x is axis 1 ((N, C) or (N, C, d1, ...)), or axis 0 for one
unbatched sample (C,). Ops move it last and see x as rows x_2d:(M, C), one row per sample
(M = N * d1 * ...); gradients are moved back to x's layout at the end of backward.

Costs (docs/cost-model.md): what does not depend on the logits is a constant of the call and
is not counted: for class-index targets the target distribution q, its row sums, w_t, the
normalizer and the handling of ignored samples (integer bookkeeping on the targets and the
constant class weights). dL/dloss is a scalar for 'mean' and 'sum' (free, as any scalar).

Reductions: 'none' gives one loss per sample (the target's shape), 'sum' their sum, 'mean'
their sum divided by a normalizer: the summed weight w[target] of the samples not ignored for
class-index targets (PyTorch's weighted mean; 0/0 = nan when every target is ignored), the
number of samples M for probability targets and for the elementwise binary loss.

CrossEntropy (class-index targets) on float32 C-contiguous rows runs its dense row work (max,
exp, sums, p, and the backward's p * coef - q) as the compiled kernels of
retrograd/_numba/softmax.py when the 'fast' extra is installed (every option: class weights,
ignore_index, label smoothing, all reductions); the per-sample bookkeeping stays in NumPy.
"""

import numpy as np

from retrograd._fast import compiled
from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text, unbroadcast_flops
from retrograd.autograd.function import Function

__all__ = ["CrossEntropy", "CrossEntropyProbs", "NllLoss", "BinaryCrossEntropyWithLogits"]


def _class_axis(x):
    return 0 if x.ndim == 1 else 1


def _to_rows(x):
    """x with its class axis moved last, as (M, C) rows (a copy only when needed)."""
    moved = np.moveaxis(x, _class_axis(x), -1)
    return moved.reshape(-1, x.shape[_class_axis(x)]), moved.shape


def _from_rows(d2, moved_shape, class_axis):
    """Inverse of _to_rows, written with reshape and np.transpose so that it also runs on
    Tensors (NllLoss under create_graph)."""
    ndim = len(moved_shape)
    perm = list(range(ndim - 1))
    perm.insert(class_axis, ndim - 1)
    return np.transpose(d2.reshape(moved_shape), perm)


def _reduce(loss, reduction, normalizer, sample_shape):
    """Per-sample losses (M,) -> the requested reduction; 0/0 is nan, like PyTorch. 'mean'
    is sum(loss / normalizer) when sum(loss) alone overflows though every loss is finite
    (losses near finfo.max), so the mean is finite where its true value is."""
    if reduction == "none":
        return loss.reshape(sample_shape)
    total = np.sum(loss)
    if reduction == "sum":
        return np.asarray(total)
    if np.isinf(total) and normalizer > 0 and np.isfinite(loss).all():
        return np.asarray(np.sum(loss / normalizer), dtype=loss.dtype)
    return np.asarray(total / normalizer, dtype=loss.dtype)


def _row_scale(grad_out, reduction, normalizer, m):
    """d(reduced loss)/d(loss of each sample) times dL/d(reduced loss), as an (M,) array."""
    if reduction == "none":
        return grad_out.reshape(m)
    if reduction == "mean":
        grad_out = grad_out / normalizer
    return np.broadcast_to(grad_out, (m,))


def _rows_of(x):
    """(M, C): the rows and classes of x (an ArrayInfo) as the ops see them."""
    c = x.shape[0 if len(x.shape) == 1 else 1]
    return (x.size // c if c else 0), c


def _reduce_flops(reduction, m):
    """The FLOPs of _reduce on M losses: 'none' 0, 'sum' M - 1 adds, 'mean' those and one
    divide by the (constant) normalizer."""
    return 0 if reduction == "none" else reduction_flops(m, 1) + (reduction == "mean")


def _log_softmax_flops(m, c):
    """z = x - max(x) and log(sum(exp(z))) per row: max MC - M, subtract MC, exp MC, sum
    MC - M, log M: 4MC - M."""
    return 2 * reduction_flops(m * c, m) + 2 * m * c + m


def _loss_text(name, call, reduction, formula):
    """``cross_entropy x(8x10) -> scalar (mean): ...``: the op, the shapes, the reduction."""
    x, y = call.inputs[0], call.outputs[0]
    return f"{name} x({shape_text(x)}) -> {shape_text(y)} ({reduction}): {formula}"


def _log_softmax_parts(x2d):
    """z = x - max(x) per row (overflow-free) and log(sum(exp(z))) per row, as (M, 1)."""
    z = x2d - np.max(x2d, axis=1, keepdims=True)
    return z, np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def _compiled_cross_entropy(x2d, weight):
    """The compiled cross-entropy kernels (retrograd/_numba/softmax.py) when they take these
    rows (float32, C-contiguous, not empty) and class weights (None or float32 C-contiguous)
    and the 'fast' extra is installed, else None (the NumPy code, the reference)."""
    if x2d.dtype != np.float32 or not x2d.size or not x2d.flags.c_contiguous:
        return None
    if weight is not None and (not isinstance(weight, np.ndarray) or weight.dtype != np.float32
                               or not weight.flags.c_contiguous):
        return None
    return compiled("softmax")


def _row_mean(x2d):
    """mean(x) per row: sum / C, or sum(x / C) for the rows where the sum overflows (a check
    of one value per row)."""
    c = x2d.shape[1]
    total = np.sum(x2d, axis=1)
    overflow = np.isinf(total) & np.isfinite(x2d).all(axis=1) if not np.isfinite(
        total).all() else None
    mean = total / c
    if overflow is not None and overflow.any():
        mean = np.where(overflow, np.sum(x2d / c, axis=1), mean)
    return mean.astype(x2d.dtype, copy=False)


class CrossEntropy(Function):
    """Cross-entropy of logits x:(M, C) (as rows, see the module docstring) with class-index
    targets t:(M,), class weights w:(C,) (1 when None), label smoothing eps, fused with the
    log-softmax. With p = softmax(x) and log p = x - logsumexp(x) per row, each sample not
    ignored has the smoothed, weighted target distribution
        q_c = w_c ((1 - eps) [c == t] + eps / C)          (all zeros for an ignored sample)
    and loss = -sum_c q_c log p_c = (1 - eps) w_t (-log p_t) + (eps / C) sum_c w_c (-log p_c).
    Since sum_c p_c = 1, d(-log p_c') / dx_c = p_c - [c == c'], so per sample
        dloss/dx = p * sum_c(q_c) - q        ("softmax - onehot_smoothed", weighted)
    and dL/dx = dL/dloss * (p * sum(q) - q), where dL/dloss is the sample's own dL/dy for
    'none', the scalar dL/dy for 'sum', and dL/dy / sum(w_t over samples not ignored) for
    'mean'. Shapes: x (M, C), t (M,), y (M,) or (), dL/dx (M, C).
    Saves: p (M, C) and, on ctx, the per-sample targets, weights and validity mask; the class
    weights are constants (no gradient, as in PyTorch). The one-hot matrix is never built.
    Without class weights the smoothing term is computed as
        (eps / C) sum_c -log p_c = eps (logsumexp(x) - mean(x))
    with logsumexp(x) = log-sum + max(x) and every product with eps taken before the sums:
    near finfo.max neither sum_c z_c (z_c = x_c - max(x) is itself -2 finfo.max for a row
    holding +-finfo.max) nor sum_c x_c is formed (mean(x) is sum(x / C) when sum(x)
    overflows), so the loss is finite where its true value is.
    A row of all -inf logits (p undefined: sum(exp) = 0) has loss +inf (-log of a zero
    probability; 0 when the sample is ignored or weighted 0) and a zero gradient, never NaN.
    Once-differentiable (raw-array backward); the composition log_softmax + nll_loss is the
    twice-differentiable alternative.
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index=-100, reduction="mean",
                label_smoothing=0.0):
        x2d, moved_shape = _to_rows(x)
        m, c = x2d.shape
        t = target.reshape(-1)
        valid = t != ignore_index
        safe_t = np.where(valid, t, 0)
        rows = np.arange(m)
        w_t = weight[safe_t] * valid if weight is not None else valid.astype(x.dtype)
        eps = float(label_smoothing)
        kernels = _compiled_cross_entropy(x2d, weight)
        if kernels is not None:   # the dense row work compiled; the rest as below
            probs, shift, sum_exp, x_sum, z_w = kernels.cross_entropy_forward(
                x2d, weight if eps > 0 else None, want_sum=eps > 0 and weight is None)
            z_t = x2d[rows, safe_t] - shift
            shift, sum_exp = shift[:, None], sum_exp[:, None]
            z_w = z_w.astype(x2d.dtype) if z_w is not None else None
            mean_x = (x_sum / c).astype(x2d.dtype) if x_sum is not None else None
            dead = sum_exp[:, 0] == 0                  # rows of all -inf logits
        else:
            top = np.max(x2d, axis=1, keepdims=True)
            shift = np.where(np.isfinite(top), top, 0.0).astype(x2d.dtype, copy=False)
            z = x2d - shift
            z_t = z[rows, safe_t]
            z_w = z @ weight if eps > 0 and weight is not None else None
            mean_x = _row_mean(x2d) if eps > 0 and weight is None else None
            probs = np.exp(z, out=z)  # z is not needed any more: reuse its memory
            sum_exp = np.sum(probs, axis=1, keepdims=True)
            dead = sum_exp[:, 0] == 0                      # rows of all -inf logits
            probs /= np.where(dead[:, None], 1.0, sum_exp).astype(probs.dtype, copy=False)
        log_sum = np.log(sum_exp[:, 0])
        loss = w_t * (log_sum - z_t)
        if eps > 0 and weight is not None:
            smooth = (np.sum(weight) * log_sum - z_w) * valid
            loss = loss * (1.0 - eps) + smooth * (eps / c)
        elif eps > 0:   # (eps / C) sum_c -log p_c = eps (log-sum + shift - mean(x)), no z sum
            smooth = (eps * log_sum + eps * shift[:, 0] - eps * mean_x) * valid
            loss = loss * (1.0 - eps) + smooth
        dead = dead if dead.any() else None            # kept for backward only if any
        if dead is not None:
            loss = np.where(dead, np.where(w_t != 0, np.inf, 0.0), loss)
        normalizer = np.sum(w_t)
        ctx.save_for_backward(probs)
        ctx.t, ctx.valid, ctx.w_t, ctx.weight, ctx.dead = safe_t, valid, w_t, weight, dead
        ctx.eps, ctx.reduction, ctx.normalizer = eps, reduction, normalizer
        ctx.moved_shape, ctx.class_axis = moved_shape, _class_axis(x)
        return _reduce(loss.astype(x.dtype, copy=False), reduction, normalizer, target.shape)

    @staticmethod
    def backward(ctx, grad_out):
        (probs,) = ctx.saved_tensors
        m, c = probs.shape
        eps, valid, weight = ctx.eps, ctx.valid, ctx.weight
        scale = _row_scale(grad_out, ctx.reduction, ctx.normalizer, m)
        w_sum = np.sum(weight) if weight is not None else float(c)
        total_q = ctx.w_t * (1.0 - eps) + (valid * (eps / c)) * w_sum
        # NOTE: ignored samples get exactly 0, even when 'mean' divides by a zero normalizer
        coef = np.where(valid, total_q * scale, 0.0).astype(probs.dtype, copy=False)
        picked = np.where(valid, ctx.w_t * scale, 0.0) * (1.0 - eps)
        smooth = np.where(valid, scale, 0.0)[:, None] * (eps / c) if eps > 0 else None
        kernels = _compiled_cross_entropy(probs, weight)
        if kernels is not None:   # the same operations, row by row, in this order
            f32 = np.float32
            dx = kernels.cross_entropy_backward(
                probs, np.ascontiguousarray(coef, f32),
                np.ascontiguousarray(ctx.t, np.int64) % c,
                np.ascontiguousarray(picked, f32),
                np.ascontiguousarray(smooth[:, 0], f32) if smooth is not None else None,
                weight)
        else:
            dx = probs * coef[:, None]
            dx[np.arange(m), ctx.t] -= picked
            if eps > 0:
                dx -= smooth * weight if weight is not None else smooth
        if ctx.dead is not None:
            dx[ctx.dead] = 0.0
        return _from_rows(dx, ctx.moved_shape, ctx.class_axis), None, None

    @staticmethod
    def cost(call):
        """M rows of C classes, q and its row sums constants (module docstring). Forward the
        log-softmax parts (4MC - M), p = exp(z) / sum (MC: kept for backward), -log p_t =
        log-sum - z_t (M), times (1 - eps) w_t (M, with weights or smoothing); with smoothing
        sum_c w_c z_c (MC - M adds, + MC products with weights), W log-sum, - (.), * eps / C
        and + (4M); the reduction ('sum' M - 1, 'mean' M): 5MC + M for the plain mean.
        Backward dL/dloss * (p * sum(q) - q) taken densely: p * sum(q) (MC, with weights:
        sum(q) = 1 without), - q (MC), * dL/dloss (MC): 2MC (3MC with weights)."""
        m, c = _rows_of(call.inputs[0])
        weighted = call_arg(call, 2, "weight") is not None
        eps = float(call_arg(call, 5, "label_smoothing", 0.0))
        mc = m * c
        forward = _log_softmax_flops(m, c) + mc + m + m * (weighted or eps > 0)
        if eps > 0:
            forward += reduction_flops(mc, m) + weighted * mc + 4 * m
        reduction = call_arg(call, 4, "reduction", "mean")
        forward += _reduce_flops(reduction, m)
        return Cost(forward, (2 + weighted) * mc * call.needs(0),
                    _loss_text("cross_entropy", call, reduction,
                               "5*M*C + M (mean); backward 2*M*C"))


class CrossEntropyProbs(Function):
    """Cross-entropy of logits x:(M, C) with class-probability targets P:(M, C), class
    weights w:(C,) (1 when None) and label smoothing eps, fused with the log-softmax:
        q = w * ((1 - eps) P + eps / C)          loss = -sum_c q_c log p_c  per sample
    dL/dx = dL/dloss * (p * sum(q) - q)                                          (M, C)
    dL/dP = -dL/dloss * (1 - eps) * w * log p                                    (M, C)
    dL/dw = -sum over samples of dL/dloss * ((1 - eps) P + eps / C) * log p      (C,)
    ('mean' divides by M, the number of samples.)
    Saves: p (M, C); log p (M, C) only when dL/dP or dL/dw is needed; P and w (inputs).
    Once-differentiable (raw-array backward).
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, target, weight, reduction="mean", label_smoothing=0.0):
        x2d, moved_shape = _to_rows(x)
        p2d, _ = _to_rows(target)
        m, c = x2d.shape
        eps = float(label_smoothing)
        z, log_sum = _log_softmax_parts(x2d)
        log_p = z - log_sum
        q = p2d * (1.0 - eps) + eps / c if eps > 0 else p2d
        q_w = q * weight if weight is not None else q
        loss = -np.sum(q_w * log_p, axis=1)
        _, need_p, need_w = ctx.needs_input_grad
        ctx.save_for_backward(np.exp(log_p), log_p if need_p or need_w else None, target,
                              weight)
        ctx.eps, ctx.reduction, ctx.normalizer = eps, reduction, float(m)
        ctx.moved_shape, ctx.class_axis = moved_shape, _class_axis(x)
        sample_shape = x.shape[:ctx.class_axis] + x.shape[ctx.class_axis + 1:]
        return _reduce(loss.astype(x.dtype, copy=False), reduction, float(m), sample_shape)

    @staticmethod
    def backward(ctx, grad_out):
        probs, log_p, target, weight = ctx.saved_tensors
        need_x, need_p, need_w = ctx.needs_input_grad
        m, c = probs.shape
        eps = ctx.eps
        scale = _row_scale(grad_out, ctx.reduction, ctx.normalizer, m)[:, None]
        p2d, _ = _to_rows(target)
        q = p2d * (1.0 - eps) + eps / c if eps > 0 else p2d
        grad_x = grad_p = grad_w = None
        if need_x:
            q_w = q * weight if weight is not None else q
            grad_x = (probs * np.sum(q_w, axis=1, keepdims=True) - q_w) * scale
            grad_x = _from_rows(grad_x, ctx.moved_shape, ctx.class_axis)
        if need_p:
            grad_p = log_p * (scale * -(1.0 - eps))
            grad_p = _from_rows(grad_p * weight if weight is not None else grad_p,
                                ctx.moved_shape, ctx.class_axis)
        if need_w:
            grad_w = -np.sum(q * log_p * scale, axis=0)
        return grad_x, grad_p, grad_w

    @staticmethod
    def cost(call):
        """M rows of C classes. Forward the log-softmax parts (4MC - M), log p = z - log-sum
        (MC), q = (1 - eps) P + eps / C (2MC, with smoothing), q * w (MC, with weights),
        -sum_c q_c log p_c (2MC), p = exp(log p) (MC: kept for backward), the reduction ('sum'
        M - 1, 'mean' M): 7MC - M + the reduction without options. Backward: q again (2MC,
        with smoothing) for dL/dx or dL/dw; dL/dx q * w (MC, with weights), sum(q) (MC - M),
        p * sum(q) - q, * dL/dloss (3MC); dL/dP -dL/dloss (1 - eps) (M, for 'none'), * log p
        (MC), * w (MC, with weights); dL/dw q * log p, * dL/dloss, the sum over rows and the
        negation (3MC)."""
        m, c = _rows_of(call.inputs[0])
        weighted = call_arg(call, 2, "weight") is not None
        smoothed = float(call_arg(call, 4, "label_smoothing", 0.0)) > 0
        reduction = call_arg(call, 3, "reduction", "mean")
        mc = m * c
        q = 2 * mc * smoothed
        forward = (_log_softmax_flops(m, c) + mc + q + weighted * mc
                   + mc + reduction_flops(mc, m) + m + mc + _reduce_flops(reduction, m))
        backward = q * (call.needs(0) or call.needs(2))
        backward += call.needs(0) * (weighted * mc + reduction_flops(mc, m) + 3 * mc)
        backward += call.needs(1) * (mc + (reduction == "none") * m + weighted * mc)
        backward += call.needs(2) * (2 * mc + reduction_flops(mc, c) + c)
        return Cost(forward, backward,
                    _loss_text("cross_entropy_probs", call, reduction, "7*M*C - M + reduction"))


class NllLoss(Function):
    """Negative log-likelihood of log-probabilities x:(M, C) (as rows) with class-index
    targets t:(M,) and class weights w:(C,): loss = -w_t x[t] per sample (0 when ignored).

    dL/dx[i, c] = -dL/dloss_i * w_t_i * [c == t_i]: one nonzero per row.
    Saves: nothing but the per-sample targets and weights (constants on ctx). The backward
    multiplies dL/dloss by a constant (-w_t one-hot) built from them, so it also runs on
    Tensors: nll_loss is twice differentiable.
    """

    @staticmethod
    def forward(ctx, x, target, weight, ignore_index=-100, reduction="mean"):
        x2d, moved_shape = _to_rows(x)
        m = x2d.shape[0]
        t = target.reshape(-1)
        valid = t != ignore_index
        safe_t = np.where(valid, t, 0)
        w_t = weight[safe_t] * valid if weight is not None else valid.astype(x.dtype)
        # an ignored (w_t = 0) row contributes 0 even when its x_t is -inf (0 * -inf is NaN)
        loss = np.where(w_t != 0, -w_t * x2d[np.arange(m), safe_t], 0.0).astype(x.dtype,
                                                                               copy=False)
        normalizer = np.sum(w_t)
        ctx.t, ctx.w_t, ctx.valid, ctx.c = safe_t, w_t, valid, x2d.shape[1]
        ctx.reduction, ctx.normalizer = reduction, normalizer
        ctx.moved_shape, ctx.class_axis = moved_shape, _class_axis(x)
        return _reduce(loss, reduction, normalizer, target.shape)

    @staticmethod
    def backward(ctx, grad_out):
        m = ctx.t.shape[0]
        scale = _row_scale(grad_out, ctx.reduction, ctx.normalizer, m)
        picked = np.zeros((m, ctx.c), dtype=ctx.w_t.dtype)
        picked[np.arange(m), ctx.t] = -ctx.w_t
        grad = scale.reshape(m, 1) * picked
        if ctx.reduction == "mean" and not ctx.normalizer:
            # ignored samples get exactly 0 even when 'mean' divides by a zero normalizer
            grad = np.where(np.expand_dims(ctx.valid, 1), grad, 0.0)
        return _from_rows(grad, ctx.moved_shape, ctx.class_axis), None, None

    @staticmethod
    def cost(call):
        """M rows of C classes: -w_t x_t (M products by the constant -w_t), the reduction
        ('sum' M - 1, 'mean' M); backward dL/dloss times the constant (-w_t one-hot), taken
        densely as the backward does: MC."""
        m, c = _rows_of(call.inputs[0])
        reduction = call_arg(call, 4, "reduction", "mean")
        return Cost(m + _reduce_flops(reduction, m), m * c * call.needs(0),
                    _loss_text("nll_loss", call, reduction, "M + reduction; backward M*C"))


class BinaryCrossEntropyWithLogits(Function):
    """Elementwise binary cross-entropy of logits x with targets t (all broadcast to x's
    shape), sample weights w and positive-class weights pw (None means 1):
        sp = softplus(-x) = log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|))  (no overflow)
        l = pw t sp + (1 - t)(x + sp)  =  (1 - t) x + (1 + (pw - 1) t) sp,     y = w l
    Using d sp / dx = -sigmoid(-x):
        dL/dx  = dL/dy * w * ((1 - t) - (1 + (pw - 1) t) sigmoid(-x))   (= sigmoid(x) - t
                 when pw = 1)
        dL/dt  = dL/dy * w * ((pw - 1) sp - x)
        dL/dw  = dL/dy * l
        dL/dpw = dL/dy * w * t * sp
    (gradients in the broadcast shape; the engine sums them back to each input's shape).
    The closed form is also right at x = 0, where a composition through |x| would see the
    kink of abs. Saves: x, t, w, pw (all inputs); sp and sigmoid are recomputed.
    Once-differentiable (raw-array backward).
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, x, target, weight=None, pos_weight=None):
        ctx.save_for_backward(x, target, weight, pos_weight)
        loss = _unweighted_bce(x, target, pos_weight, _softplus_neg(x))
        loss = loss * weight if weight is not None else loss
        return loss.astype(x.dtype, copy=False)  # bfloat16 promotes with Python floats

    @staticmethod
    def backward(ctx, grad_out):
        x, t, w, pw = ctx.saved_tensors
        need_x, need_t, need_w, need_pw = ctx.needs_input_grad
        sp = _softplus_neg(x)
        g = grad_out * w if w is not None else grad_out
        log_weight = 1.0 + (pw - 1.0) * t if pw is not None else 1.0
        grad_x = g * ((1.0 - t) - log_weight * _sigmoid(-x)) if need_x else None
        grad_t = None
        if need_t:
            grad_t = g * ((pw - 1.0) * sp - x) if pw is not None else g * -x
        grad_w = grad_out * _unweighted_bce(x, t, pw, sp) if need_w else None
        grad_pw = g * t * sp if need_pw else None
        return grad_x, grad_t, grad_w, grad_pw

    @staticmethod
    def cost(call):
        """The formulas of the docstring, per element of y (n), x (n_x), t (n_t) and pw
        (n_pw): sp = log(1 + exp(-x)) (4 n_x, the formula, not the overflow-safe kernel),
        l (_bce_flops), y = w l (n, with w): 4 n_x + n_t + 2n without options. Backward, each
        gradient computed on its own but sp and g = dL/dy * w (n) once: dL/dx (1 - t),
        sigmoid(-x) = 1 / (1 + exp(x)) (3 n_x), lw * (.) (with pw), the difference and * g;
        dL/dt g * ((pw - 1) sp - x) (g * -x without pw); dL/dw dL/dy * l; dL/dpw g * t * sp;
        plus the sums of each gradient back to its input's shape."""
        x, t = call.inputs[:2]
        w, pw = call_arg(call, 2, "weight"), call_arg(call, 3, "pos_weight")
        y = call.outputs[0]
        n, n_pw = y.size, pw.size if pw is not None else 0
        need_x, need_t, need_w, need_pw = (call.needs(i) for i in range(4))
        sp = 4 * x.size
        lw = (n_pw + 2 * n) if pw is not None else 0     # 1 + (pw - 1) t
        loss = _bce_flops(n, t.size, lw)
        forward = sp + loss + n * (w is not None)
        backward = sp * ((need_t and pw is not None) or need_w or need_pw)
        backward += n * (w is not None and (need_x or need_t or need_pw))
        backward += need_x * (t.size + 3 * x.size + lw + n * (pw is not None) + 2 * n)
        backward += need_t * ((n_pw + 3 * n) if pw is not None else x.size + n)
        backward += need_w * (loss + n) + need_pw * 2 * n
        backward += sum(unbroadcast_flops(y.shape, info.shape)
                        for i, info in enumerate(call.inputs[:4]) if call.needs(i))
        return Cost(forward, backward,
                    f"binary_cross_entropy_with_logits x({shape_text(x)}) -> {shape_text(y)}: "
                    f"4*n_x + n_t + 2*n (+ pos_weight, weight)")


def _bce_flops(n, n_t, lw):
    """l = (1 - t) x + lw sp: 1 - t (n_t), * x, + (2n), and lw * sp (n) when lw (its own
    ``lw`` FLOPs) is not 1."""
    return n_t + 2 * n + (lw + n if lw else 0)


def _softplus_neg(x):
    """log(1 + exp(-x)) without overflow: max(-x, 0) + log1p(exp(-|x|))."""
    return np.maximum(-x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _unweighted_bce(x, t, pos_weight, sp):
    if pos_weight is None:
        return (1.0 - t) * x + sp
    return (1.0 - t) * x + (1.0 + (pos_weight - 1.0) * t) * sp
