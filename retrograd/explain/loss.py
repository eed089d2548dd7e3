"""Worked examples of two losses (retrograd/ops/loss.py, nn.functional.cross_entropy and
mse_loss): cross-entropy fused with log-softmax, whose gradient is the famous
(softmax - onehot(target)) / N, with label smoothing and ignored targets; and the mean squared
error, whose target is differentiable too. A loss is a scalar: dL/dL = 1 starts the backward."""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []

_REDUCTIONS = ("mean", "sum")


def _shape_text(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def _class_targets(ex, x):
    """The targets t:(N,), class indices in [0, C); out of range names the class count."""
    n, c = x.shape
    try:
        return ex.index_input("t", (n,), c, aliases=("target", "targets"),
                              doc="target classes (N,)")
    except ExplainError as error:
        if "must be in" not in str(error):
            raise
        raise ExplainError(f"{error}: x (shape {_shape_text(x.shape)}) has {c} classes, so "
                           f"a target is a class index 0..{c - 1}") from None


def _target_distribution(t, classes, eps, counted):
    """q:(N, C) = (1 - eps) onehot(t) + eps / C for each counted sample, a zero row for an
    ignored one (the docstring's q, without class weights)."""
    onehot = np.eye(classes)[t]
    return np.where(counted[:, None], (1 - eps) * onehot + eps / classes, 0.0)


def _sample_losses(ex, log_p, t, eps, counted):
    """Show and return loss_n = (1 - eps) (-log p[n, t_n]) + eps mean_c(-log p[n, c]), 0 for an
    ignored sample."""
    ex.say("Each sample's loss picks the log-probability of its target class t_n:")
    picked = ex.show("log p[n, t_n]", log_p[np.arange(len(t)), t])
    ignored = "  (0 where t_n is ignored)" if not counted.all() else ""
    if eps == 0:
        return ex.show("loss_n", np.where(counted, -picked, 0.0), "-log p[n, t_n]" + ignored)
    ex.say(f"With label smoothing the target is the distribution q = (1 - eps) onehot(t) + "
           f"eps / C, eps = {eps:g}, and loss_n = -sum_c q_c log p[n, c]:")
    spread = ex.show("mean_c(-log p)", -log_p.mean(axis=1), "the loss against uniform targets")
    return ex.show("loss_n", np.where(counted, (1 - eps) * -picked + eps * spread, 0.0),
                   f"(1 - {eps:g}) (-log p[n, t_n]) + {eps:g} mean_c(-log p)" + ignored)


@explains("cross_entropy", family="loss", aliases=("ce", "cross_entropy_loss"),
          summary="cross-entropy of logits and class targets, fused with log-softmax: "
                  "dL/dx = (softmax(x) - onehot(t)) / N",
          options=(Option("label_smoothing", float, 0.0,
                          "eps in [0, 1]: the target becomes (1 - eps) onehot(t) + eps / C"),
                   Option("reduction", str, "mean", "mean or sum over the samples",
                          _REDUCTIONS),
                   Option("ignore_index", int, -100,
                          "a target class that adds no loss and no gradient (-100: none)")))
def cross_entropy(ex, label_smoothing, reduction, ignore_index):
    from retrograd.nn import functional as F

    eps = label_smoothing
    if not 0.0 <= eps <= 1.0:
        raise ExplainError(f"explain cross_entropy: label_smoothing must be in [0, 1], got {eps}")
    x = ex.input("x", (2, 3), primary=True, integer=False, low=-2, high=2,
                 aliases=("logits", "input"), doc="logits (N, C)")
    t = _class_targets(ex, x)
    counted = t != ignore_index
    if reduction == "mean" and not counted.any():
        raise ExplainError(f"explain cross_entropy: every target is ignore_index "
                           f"{ignore_index} ({t.tolist()}), so the mean is 0/0")
    ex.reference(lambda x, t: F.cross_entropy(x, t, reduction=reduction, label_smoothing=eps,
                                              ignore_index=ignore_index), "x", "t")
    n, c = x.shape
    ex.section("Forward")
    ex.say(f"Log-softmax of each of the {n} rows (C = {c} classes), shifted by the row max "
           f"m for stability:")
    m = ex.show("m", x.max(axis=1), "max(x) per row")[:, None]
    log_s = np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    ex.show("logsumexp(x)", (m + log_s)[:, 0], "m + log(sum(exp(x - m)))")
    log_p = ex.show("log p", (x - m) - log_s, "x - logsumexp(x), as (x - m) - log(sum(...))")
    losses = _sample_losses(ex, log_p, t, eps, counted)
    count = int(counted.sum())
    if reduction == "mean":
        what = "samples not ignored" if not counted.all() else "samples"
        ex.output("L", losses.sum() / count, f"sum(loss_n) / N, N = {count} {what}")
    else:
        ex.output("L", losses.sum(), "sum(loss_n)")

    ex.section("Backward")
    ex.upstream((), "dL/dL", value=1.0)
    p = ex.show("p", np.exp(log_p), "softmax(x) = exp(log p)")
    ignored = ", a zero row where ignored" if not counted.all() else ""
    q = _target_distribution(t, c, eps, counted)
    if eps == 0:
        ex.show("onehot(t)", q, "1 at the target class" + ignored)
    else:
        ex.show("onehot(t)", np.eye(c)[t] * counted[:, None], "1 at the target class" + ignored)
        ex.show("q", q, f"(1 - {eps:g}) onehot(t) + {eps:g} / {c}" + ignored)
    target = "onehot(t)" if eps == 0 else "q"
    ex.say(f"d loss_n / dx_n = p_n - {target}_n: the softmax and the log cancel (p and "
           f"{target}_n each sum to 1), no Jacobian needed.")
    scale, divided = (1.0 / count, f" / {count}") if reduction == "mean" else (1.0, "")
    ex.gradient("x", (p * q.sum(axis=1, keepdims=True) - q) * scale,
                (f"(p - {target}){divided}" if divided else f"p - {target}")
                + ("  (0 on ignored rows)" if ignored else ""))


def _squared_error_slope(difference, n):
    """d(sum of d^2 / n)/d(pred) = 2 d / n (n = 1 for the sum)."""
    return 2.0 * difference / n


@explains("mse_loss", family="loss", aliases=("mse",),
          summary="mean squared error L = mean((pred - target)^2); "
                  "dL/dpred = 2 (pred - target) / n = -dL/dtarget",
          options=(Option("reduction", str, "mean", "mean or sum over the elements",
                          _REDUCTIONS),))
def mse_loss(ex, reduction):
    from retrograd.nn import functional as F

    pred = ex.input("pred", (3,), primary=True, max_ndim=2, integer=False, low=-2, high=2,
                    aliases=("input", "prediction"), doc="prediction")
    target = ex.input("target", pred.shape, max_ndim=2, integer=False, low=-2, high=2,
                      aliases=("y", "t"), doc="target, differentiable as in PyTorch")
    if target.shape != pred.shape:
        raise ExplainError(f"explain mse_loss: pred has shape {_shape_text(pred.shape)} but "
                           f"target has shape {_shape_text(target.shape)}; they are compared "
                           f"element by element, so the shapes must be equal")
    ex.reference(lambda pred, target: F.mse_loss(pred, target, reduction=reduction),
                 "pred", "target")
    n = pred.size if reduction == "mean" else 1
    ex.section("Forward")
    d = ex.show("d", pred - target, "pred - target")
    squared = ex.show("d^2", d ** 2)
    if reduction == "mean":
        ex.output("L", squared.sum() / n, f"sum(d^2) / n, n = {n} elements")
    else:
        ex.output("L", squared.sum(), "sum(d^2)")

    ex.section("Backward")
    ex.upstream((), "dL/dL", value=1.0)
    over_n = f" / {n}" if reduction == "mean" else ""
    slope = _squared_error_slope(d, n)
    ex.gradient("pred", slope, f"2 d{over_n}")
    ex.say("The target enters d as -target, so its gradient is dL/dpred with the sign "
           "flipped (it matters when the target is itself computed, e.g. by another network).")
    ex.gradient("target", -slope, f"-2 d{over_n} = -dL/dpred")
