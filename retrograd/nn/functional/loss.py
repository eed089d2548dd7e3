"""Losses: cross_entropy, nll_loss, mse_loss, binary_cross_entropy_with_logits,
binary_cross_entropy, kl_div, smooth_l1_loss, huber_loss, l1_loss; and the tail:
margin_ranking_loss, hinge_embedding_loss, cosine_embedding_loss, triplet_margin_loss,
soft_margin_loss, multilabel_soft_margin_loss, multi_margin_loss, poisson_nll_loss,
gaussian_nll_loss."""

import math
import numbers
import warnings

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.grad_mode import STATE, no_grad
from retrograd.creation import full_like
from retrograd.nn.functional.distance import _pairwise_distance
from retrograd.ops.activation_extra import LogSigmoid
from retrograd.ops.loss import (
    BinaryCrossEntropyWithLogits, CrossEntropy, CrossEntropyProbs, NllLoss,
)
from retrograd.ops.loss_extra import BinaryCrossEntropy, HuberLoss, KlDiv, SmoothL1Loss
from retrograd.ops.loss_tail import MultiMarginLoss
from retrograd.tensor import Tensor, as_array, make_tensor

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits",
           "binary_cross_entropy", "kl_div", "smooth_l1_loss", "huber_loss", "l1_loss",
           "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
           "triplet_margin_loss", "soft_margin_loss", "multilabel_soft_margin_loss",
           "multi_margin_loss", "poisson_nll_loss", "gaussian_nll_loss"]

_REDUCTIONS = ("none", "mean", "sum")
_INDEX_DTYPES = (np.dtype(np.int64), np.dtype(np.uint8))  # PyTorch's: Long or Byte


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,  # noqa: A002
                  reduce=None, reduction="mean", label_smoothing=0.0, z_loss=0.0):
    """Cross-entropy between the logits ``input`` and ``target``, fused with log-softmax:
    one op whose backward is (softmax - smoothed one-hot) * weights / normalizer.

    With z_loss > 0 (retrograd's extension; PaLM's auxiliary z-loss, Chowdhery et al. 2022,
    there 1e-4), z_loss * z_n is added, z_n = logsumexp_c(input_n)^2 for every row n (a sample,
    or a position (n, d1, ...)): it pulls log Z, the log of the softmax normalizer, towards 0,
    which keeps the logits from drifting in low precision. The term is composed of
    differentiable ops (logsumexp, square, where), its gradient 2 z_loss log Z_n softmax(x_n)
    per counted row. Rows whose target is ignore_index are not counted: with reduction
    'none' they get 0 (the loss of row n is ce_n + z_loss z_n otherwise); 'sum' adds
    z_loss * sum of z_n over the counted rows; 'mean' adds z_loss * the unweighted mean of z_n
    over the counted rows (class weights do not apply to it; nothing is added when no row
    counts, the loss being nan then). Probability targets count every row.

    Args:
        input: logits (N, C), (N, C, d1, ...), or (C,) for one sample.
        target: class indices (int64 or uint8) of shape (N,), (N, d1, ...) or (); or class
            probabilities of the input's shape (floating; they get gradients too).
        weight: (C,) class weights, or None. No gradient flows into it for class-index
            targets (as in PyTorch).
        ignore_index: targets equal to it contribute neither loss nor gradient, nor count
            in the mean (class-index targets only).
        reduction: 'none' | 'mean' | 'sum'. 'mean' divides by the summed weight of the
            targets not ignored (nan when all are ignored), or by N * d1 * ... for
            probability targets.
        label_smoothing: eps in [0, 1]; the target becomes (1 - eps) one_hot + eps / C.
        z_loss: finite number >= 0, the coefficient of the z-loss above. Default: 0.0 (off).
        size_average, reduce: deprecated PyTorch arguments, mapped to ``reduction``.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> logits = rg.zeros(2, 4, requires_grad=True)
        >>> loss = F.cross_entropy(logits, rg.tensor([0, 3]))
        >>> round(loss.item(), 4)  # log(4)
        1.3863
        >>> loss.backward()
        >>> logits.grad[0]  # (softmax - one_hot) / N
        tensor([-0.375,  0.125,  0.125,  0.125])
    """
    reduction = _reduction(size_average, reduce, reduction, "cross_entropy")
    _check_logits(input, "cross_entropy")
    label_smoothing = _checks.probability("cross_entropy", "label_smoothing", label_smoothing)
    z_loss = _checks.number_at_least("cross_entropy", "z_loss", z_loss, 0.0)
    target = _as_target(target, "cross_entropy")
    weight = _check_weight(weight, input, "cross_entropy")
    if _dt.is_floating(target._data.dtype):
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: class-probability targets must have the input's "
                             f"shape {input.shape}, got target of shape {target.shape} "
                             f"(dtype {target.dtype})")
        if ignore_index >= 0:
            raise ValueError(f"cross_entropy: ignore_index={ignore_index} is not supported for "
                             f"class-probability (floating point) targets")
        input, target, weight = _promote(input, target, weight)
        loss = CrossEntropyProbs.apply(input, target, weight, reduction=reduction,
                                       label_smoothing=label_smoothing)
        return _plus_z_loss(loss, input, None, z_loss, reduction)
    _check_class_indices(input, target, ignore_index, "cross_entropy")
    _refuse_weight_grad(weight, "cross_entropy")
    loss = CrossEntropy.apply(input, target, _weight_array(weight, input),
                              ignore_index=ignore_index, reduction=reduction,
                              label_smoothing=label_smoothing)
    return _plus_z_loss(loss, input, target._data != ignore_index, z_loss, reduction)


def _plus_z_loss(loss, input, counted, z_loss, reduction):  # noqa: A002
    """loss + z_loss * (logsumexp over the classes)^2, reduced over the rows where
    ``counted`` (a bool array of the rows' shape, or None for all rows) as cross_entropy's
    docstring says."""
    if z_loss == 0.0:
        return loss
    z = input.logsumexp(0 if input.ndim == 1 else 1) ** 2
    if counted is not None:
        z = z.where(counted, 0.0)  # where, not a product: an ignored row's inf stays out
    if reduction == "none":
        return loss + z_loss * z
    if reduction == "sum":
        return loss + z_loss * z.sum()
    count = z.numel() if counted is None else int(np.count_nonzero(counted))
    if count == 0:
        return loss
    return loss + (z_loss / count) * z.sum()


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100,  # noqa: A002
             reduce=None, reduction="mean"):
    """Negative log-likelihood: -weight[t] * input[t] per sample, for log-probabilities
    ``input`` (e.g. from log_softmax) and class-index targets. Twice differentiable.

    Args:
        input: log-probabilities (N, C), (N, C, d1, ...), or (C,) for one sample.
        target: class indices (int64 or uint8) of shape (N,), (N, d1, ...) or ().
        weight, ignore_index, reduction, size_average, reduce: as in cross_entropy.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.nll_loss(rg.tensor([[-1.0, -2.0], [-3.0, -4.0]]), rg.tensor([1, 0]))
        tensor(2.5)
    """
    reduction = _reduction(size_average, reduce, reduction, "nll_loss")
    _check_logits(input, "nll_loss")
    target = _as_target(target, "nll_loss")
    weight = _check_weight(weight, input, "nll_loss")
    if _dt.is_floating(target._data.dtype):
        raise TypeError(f"nll_loss: expected class-index targets (int64), got target of dtype "
                        f"{target.dtype} and shape {target.shape} for input of shape "
                        f"{input.shape}")
    _check_class_indices(input, target, ignore_index, "nll_loss")
    _refuse_weight_grad(weight, "nll_loss")
    return NllLoss.apply(input, target, _weight_array(weight, input), ignore_index=ignore_index,
                         reduction=reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean",  # noqa: A002
             weight=None):
    """Mean squared error: (input - target)^2, reduced. Composed of elementary ops (so twice
    differentiable); a target of another shape is broadcast with a warning, like PyTorch.
    ``weight`` (the input's shape) multiplies each element's error; 'mean' is then
    sum(w d^2) / sum(w), as PyTorch's.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.mse_loss(rg.tensor([1.0, 2.0]), rg.tensor([1.0, 4.0]))
        tensor(2.)
    """
    reduction = _reduction(size_average, reduce, reduction, "mse_loss")
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"mse_loss: {name} must be a Tensor, got {type(t).__name__}")
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"mse_loss: using a target size {target.shape} that is different from "
                      f"the input size {input.shape}; this will likely lead to incorrect "
                      f"results due to broadcasting. Please ensure they have the same size.",
                      UserWarning, stacklevel=2)
    diff = input - target
    if weight is None:
        return _reduce(diff * diff, reduction)
    weighted = diff * diff * _same_size_weight(weight, input, "mse_loss")
    return weighted.sum() / weight.sum() if reduction == "mean" else _reduce(weighted, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,  # noqa: A002
                                     reduce=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of logits and targets in [0, 1], computed without overflow for
    any |logit| (through log1p(exp(-|x|))): one fused elementwise op, then the reduction.

    Args:
        input: logits, any shape. target: the same shape.
        weight: broadcast to the input's shape, rescales each element's loss.
        pos_weight: weight of positive examples, broadcast along the last dim (e.g. (C,)).
        reduction: 'none' | 'mean' | 'sum'.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.binary_cross_entropy_with_logits(rg.tensor([0.0, 1e4]), rg.tensor([1.0, 1.0]))
        tensor(0.3466)
    """
    reduction = _reduction(size_average, reduce, reduction, "binary_cross_entropy_with_logits")
    op = "binary_cross_entropy_with_logits"
    _check_logits(input, op, min_ndim=0)
    target = _as_target(target, op)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target size {target.shape} must be the same as input size "
                         f"{input.shape}")
    if not _dt.is_floating(target._data.dtype):
        target = target.to(input.dtype)
    for name, t in (("weight", weight), ("pos_weight", pos_weight)):
        if t is None:
            continue
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(t).__name__}")
        try:
            np.broadcast_shapes(t.shape, input.shape)
        except ValueError:
            raise ValueError(f"{op}: {name} of shape {t.shape} cannot be broadcast to the input "
                             f"shape {input.shape}") from None
    input, target, weight, pos_weight = _promote(input, target, weight, pos_weight)
    loss = BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight)
    return _reduce(loss, reduction)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,  # noqa: A002
                         reduction="mean"):
    """Binary cross-entropy of probabilities: -w (t log x + (1 - t) log(1 - x)) per element,
    each log clamped at -100 as in PyTorch (so x = 0 or 1 gives a finite loss). Inputs and
    targets outside [0, 1] are an error. For logits, binary_cross_entropy_with_logits is
    the overflow-free choice.

    Args:
        input: probabilities in [0, 1], any shape. target: the same shape, in [0, 1].
        weight: broadcast to the input's shape, rescales each element's loss (no gradient).
        reduction: 'none' | 'mean' | 'sum'. size_average, reduce: deprecated.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.binary_cross_entropy(rg.tensor([0.5, 1.0]), rg.tensor([1.0, 0.0]))
        tensor(50.3466)
    """
    op = "binary_cross_entropy"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_logits(input, op, min_ndim=0)
    target = _as_target(target, op)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: using a target size {target.shape} that is different to the "
                         f"input size {input.shape} is not supported (as in PyTorch); please "
                         f"ensure they have the same size")
    if not _dt.is_floating(target._data.dtype):
        target = target.to(input.dtype)
    for name, t in (("input", input), ("target", target)):
        _check_unit_interval(t, name, op)
    weight = _check_broadcast_weight(weight, input, op)
    _refuse_weight_grad(weight, op)
    input, target, weight = _promote(input, target, weight)
    return _reduce(BinaryCrossEntropy.apply(input, target, weight), reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",  # noqa: A002
           log_target=False):
    """The Kullback-Leibler divergence terms t (log t - x) of log-probabilities ``input`` x
    from the probabilities ``target`` t (or log-probabilities, with log_target=True), reduced
    as PyTorch does: 'batchmean' is the sum divided by input.shape[0] (the true KL divergence
    per sample); 'mean' divides by the number of elements, with PyTorch's warning about it.
    A target probability of 0 contributes 0 (also where x = -inf, where PyTorch gives NaN).

    Args:
        input: log-probabilities, any shape. target: broadcastable with it.
        reduction: 'none' | 'batchmean' | 'sum' | 'mean'. size_average, reduce: deprecated.
        log_target: the target holds log-probabilities. Default: False.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> log_q = rg.tensor([[0.25, 0.75]]).log()
        >>> round(F.kl_div(log_q, rg.tensor([[0.5, 0.5]]), reduction="batchmean").item(), 4)
        0.1438
    """
    op = "kl_div"
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, reduction, op)
    else:
        _checks.one_of(op, "reduction", reduction, ("none", "batchmean", "sum", "mean"))
        if reduction == "mean":
            warnings.warn("kl_div: reduction 'mean' divides the total loss by both the batch "
                          "size and the support size. 'batchmean' divides only by the batch "
                          "size, and aligns with the KL div math definition (as PyTorch warns).",
                          UserWarning, stacklevel=2)
    input, target = _pointwise_operands(input, target, op, warn=False, integral=False)
    loss = KlDiv.apply(input, target, log_target=_checks.boolean(op, "log_target", log_target))
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean",  # noqa: A002
                   beta=1.0):
    """Smooth L1 loss: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere, d = input -
    target; beta = 0 is the L1 loss (as PyTorch). A target of another shape is broadcast with
    a warning, like PyTorch.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.smooth_l1_loss(rg.tensor([0.5, 3.0]), rg.tensor([0.0, 0.0]), reduction="none")
        tensor([0.125, 2.5  ])
    """
    op = "smooth_l1_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    input, target = _pointwise_operands(input, target, op)
    beta = _checks.number(op, "beta", beta)
    if beta < 0:
        raise ValueError(f"{op}: beta must be >= 0 (0 is the L1 loss), got {beta}")
    if beta == 0.0:
        return _reduce((input - target).abs(), reduction)
    return _reduce(SmoothL1Loss.apply(input, target, beta=beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):  # noqa: A002
    """Huber loss: 0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere, d = input -
    target (smooth_l1_loss with beta = delta, times delta). ``weight`` (the input's shape)
    multiplies each element's loss; 'mean' is then the mean of the weighted losses (as
    PyTorch). A target of another shape is broadcast with a warning.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.huber_loss(rg.tensor([0.5, 3.0]), rg.tensor([0.0, 0.0]), reduction="none")
        tensor([0.125, 2.5  ])
    """
    op = "huber_loss"
    reduction = _checks.one_of(op, "reduction", reduction, _REDUCTIONS)
    input, target = _pointwise_operands(input, target, op)
    delta = _checks.number(op, "delta", delta)
    if not delta > 0:
        raise ValueError(f"{op}: delta must be > 0, got {delta}")
    loss = HuberLoss.apply(input, target, delta=delta)
    if weight is None:
        return _reduce(loss, reduction)
    return _reduce(loss * _same_size_weight(weight, input, op), reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean",  # noqa: A002
            weight=None):
    """Mean absolute error |input - target|, reduced; composed of elementary ops (the
    gradient at input == target is 0, as PyTorch's). ``weight`` (the input's shape)
    multiplies each element's error; 'mean' is then sum(w |d|) / sum(w) (as PyTorch).
    A target of another shape is broadcast with a warning.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.l1_loss(rg.tensor([1.0, 2.0]), rg.tensor([1.0, 4.0]))
        tensor(1.)
    """
    op = "l1_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    input, target = _pointwise_operands(input, target, op)
    error = (input - target).abs()
    if weight is None:
        return _reduce(error, reduction)
    weight = _same_size_weight(weight, input, op)
    weighted = error * weight
    return weighted.sum() / weight.sum() if reduction == "mean" else _reduce(weighted, reduction)



# ---------------------------------------------------------------- margin and embedding losses
def margin_ranking_loss(input1, input2, target, margin=0, size_average=None,  # noqa: A002
                        reduce=None, reduction="mean"):
    """max(0, -target * (input1 - input2) + margin) per element, target +1 (input1 should
    rank higher) or -1, composed as PyTorch does (the gradient passes at the kink). The
    three tensors must have the same number of dims and broadcast together.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.margin_ranking_loss(rg.tensor([1.0, 0.0]), rg.tensor([0.0, 0.5]),
        ...                       rg.tensor([1.0, 1.0]), margin=0.5, reduction="none")
        tensor([0., 1.])
    """
    op = "margin_ranking_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensors(op, input1=input1, input2=input2, target=target)
    if not input1.ndim == input2.ndim == target.ndim:
        raise RuntimeError(f"{op}: all input tensors should have the same number of dims, got "
                           f"input1 of shape {input1.shape}, input2 of shape {input2.shape} and "
                           f"target of shape {target.shape}")
    _broadcast_shape(op, ("input1", input1), ("input2", input2), ("target", target))
    margin = _checks.number(op, "margin", margin)
    input1, input2, target = _floating_operands(op, input1, input2, target=target)
    return _reduce((-target * (input1 - input2) + margin).clamp(min=0.0), reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None,  # noqa: A002
                         reduce=None, reduction="mean"):
    """x where target == 1, max(0, margin - x) where target == -1, per element (an element
    with any other target contributes both terms, as PyTorch's composition). ``input`` is
    typically a distance; target is only compared, so it keeps no gradient and its dtype
    does not change the result's.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.hinge_embedding_loss(rg.tensor([0.3, 0.3, 2.0]), rg.tensor([1, -1, -1]),
        ...                        reduction="none")
        tensor([0.3, 0.7, 0. ])
    """
    op = "hinge_embedding_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensors(op, input=input, target=target)
    _check_floating_input(input, op)
    _broadcast_shape(op, ("input", input), ("target", target))
    margin = _checks.number(op, "margin", margin)
    t = target._data
    below_margin = (margin - input).clamp(min=0.0).where(t != 1, 0.0)
    return _reduce(below_margin + input.where(t != -1, 0.0), reduction)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None,  # noqa: A002
                          reduce=None, reduction="mean"):
    """1 - cos(x1, x2) where target == 1, max(0, cos(x1, x2) - margin) where target == -1
    (0 for any other target), per sample; cos = x1.x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 +
    1e-12)), composed as PyTorch does. Inputs (N, D) with target (N,), or (D,) with a 0-d
    target; target is only compared (no gradient).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x1 = rg.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> x2 = rg.tensor([[0.0, 1.0], [1.0, 1.0]])
        >>> [round(v, 4) for v in F.cosine_embedding_loss(x1, x2, rg.tensor([1, -1]),
        ...                                               reduction="none").tolist()]
        [1.0, 0.7071]
    """
    op = "cosine_embedding_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensors(op, input1=input1, input2=input2, target=target)
    if target.ndim > 1:
        raise RuntimeError(f"{op}: 0D or 1D target tensor expected, multi-target not "
                           f"supported; got target of shape {target.shape}")
    expected = target.ndim + 1
    if input1.ndim != expected or input2.ndim != expected:
        raise RuntimeError(f"{op}: {target.ndim}D target tensor expects {expected}D input "
                           f"tensors, but found inputs with sizes {input1.shape} and "
                           f"{input2.shape}")
    samples = _broadcast_shape(op, ("input1", input1), ("input2", input2))[:-1]
    _broadcast_shape(op, ("the inputs' samples", samples), ("target", target))
    input1, input2 = _floating_operands(op, input1, input2)
    axis = target.ndim
    squared_norms = [(x * x).sum(axis) + _COSINE_EPSILON for x in (input1, input2)]
    cos = (input1 * input2).sum(axis) / (squared_norms[0] * squared_norms[1]).sqrt()
    t = target._data
    loss = (1 - cos).where(t == 1, 0.0) + (cos - margin).clamp(min=0.0).where(t == -1, 0.0)
    return _reduce(loss, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """max(0, margin + d(a, p) - d(a, n)) per triplet, d the pairwise_distance (p-norm of
    x1 - x2 + eps along the last dim). swap=True uses min(d(a, n), d(p, n)) as the negative
    distance (Balntas et al. 2016). margin must be > 0.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> a, p, n = rg.zeros(1, 2), rg.tensor([[3.0, 4.0]]), rg.tensor([[6.0, 8.0]])
        >>> round(F.triplet_margin_loss(a, p, n, margin=6.0).item(), 4)
        1.0
    """
    op = "triplet_margin_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensors(op, anchor=anchor, positive=positive, negative=negative)
    margin = _checks.number(op, "margin", margin)
    if margin <= 0:
        raise ValueError(f"{op}: margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(f"{op}: the anchor, positive, and negative tensors are expected to "
                           f"have the same number of dimensions, but got: anchor {anchor.ndim}D, "
                           f"positive {positive.ndim}D, and negative {negative.ndim}D inputs")
    swap = _checks.boolean(op, "swap", swap)
    dist_pos = _pairwise_distance(anchor, positive, p, eps, False, op)
    dist_neg = _pairwise_distance(anchor, negative, p, eps, False, op)
    if swap:
        dist_neg = dist_neg.minimum(_pairwise_distance(positive, negative, p, eps, False, op))
    return _reduce((margin + dist_pos - dist_neg).clamp(min=0.0), reduction)


def soft_margin_loss(input, target, size_average=None, reduce=None,  # noqa: A002
                     reduction="mean"):
    """log(1 + exp(-target * input)) per element (the two-class logistic loss, targets +-1),
    computed as -logsigmoid(target * input): finite for every finite input (PyTorch's
    log1p(exp(.)) overflows to inf beyond |x| ~ 88 in float32). The target (broadcast to the
    input's shape) gets no gradient, as in PyTorch.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> y = F.soft_margin_loss(rg.tensor([0.0, 1000.0, -1000.0]), rg.tensor([1, 1, 1]),
        ...                        reduction="none")
        >>> [round(v, 4) for v in y.tolist()]
        [0.6931, 0.0, 1000.0]
    """
    op = "soft_margin_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensors(op, input=input, target=target)
    _check_floating_input(input, op)
    if _broadcast_shape(op, ("input", input), ("target", target)) != tuple(input.shape):
        raise RuntimeError(f"{op}: the loss has the input's shape {input.shape} (as PyTorch), "
                           f"which a target of shape {target.shape} does not broadcast to")
    if target.requires_grad and STATE.grad_enabled:
        raise RuntimeError(f"{op}: the loss is not differentiable with respect to target (as "
                           f"in PyTorch); pass target.detach()")
    log_p = LogSigmoid.apply(input * target.to(input.dtype))
    return 0.0 - _reduce(log_p, reduction)   # 0 - (.), not -(.): no -0.0 where log_p = 0


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None,  # noqa: A002
                                reduce=None, reduction="mean"):
    """The mean over the C classes (the last dim) of -w (t log sigmoid(x) + (1 - t) log
    sigmoid(-x)): one loss per sample, each class a binary problem with target 0 or 1. The
    per-class terms are binary_cross_entropy_with_logits' fused op (overflow-free;
    once-differentiable, where PyTorch's composition is twice differentiable); ``weight``
    (broadcast, e.g. (C,)) multiplies them and gets a gradient, as in PyTorch.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[0.0, 0.0], [100.0, -100.0]])
        >>> y = F.multilabel_soft_margin_loss(x, rg.tensor([[1, 0], [1, 0]]), reduction="none")
        >>> [round(v, 4) for v in y.tolist()]
        [0.6931, 0.0]
    """
    op = "multilabel_soft_margin_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    _check_tensors(op, input=input, target=target)
    if input.ndim == 0:
        raise IndexError(f"{op}: expected an input with a class dim, (C,) or (N, C), got shape "
                         f"()")
    input, target = _pointwise_operands(input, target, op, warn=False)
    shape = _broadcast_shape(op, ("input", input), ("target", target))
    loss = BinaryCrossEntropyWithLogits.apply(input.expand(*shape), target.expand(*shape),
                                              None, None)
    if weight is not None:
        _check_tensors(op, weight=weight)
        _broadcast_shape(op, ("the loss", loss), ("weight", weight))
        loss = loss * weight
    class_dim = input.ndim - 1
    return _reduce(loss.sum(class_dim) / input.shape[class_dim], reduction)


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None,  # noqa: A002
                      size_average=None, reduce=None, reduction="mean"):
    """The multi-class hinge loss w[y] / C * sum over i != y of max(0, margin - x[y] +
    x[i])^p per sample (p = 1 or 2), one fused op (ops/loss_tail.py); the weight gets no
    gradient, as in PyTorch. reduction='none' gives the target's shape.

    Args:
        input: scores (N, C), or (C,) for one sample. target: int64 class indices, (N,) (or
            () / (1,) for one sample). weight: (C,) class weights, or None.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.multi_margin_loss(rg.tensor([[0.1, 0.2, 0.4, 0.8]]), rg.tensor([3]))
        tensor(0.325)
    """
    op = "multi_margin_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    if isinstance(p, bool) or p not in (1, 2):
        raise ValueError(f"{op}: only p == 1 and p == 2 supported, got p={p!r}")
    margin = _checks.number(op, "margin", margin)
    _check_tensors(op, input=input)
    _check_floating_input(input, op)
    if input.ndim not in (1, 2) or input.shape[-1] == 0:
        raise RuntimeError(f"{op}: expected a non-empty vector or matrix with optional 0-dim "
                           f"batch size, got input of shape {input.shape}")
    target = _as_target(target, op)
    samples, classes = (1 if input.ndim == 1 else input.shape[0]), input.shape[-1]
    _check_margin_target(input, target, samples, classes, op)
    if weight is not None:
        _check_tensors(op, weight=weight)
        if weight.ndim != 1 or weight.shape[0] != classes:
            raise ValueError(f"{op}: weight must be one-dimensional with one weight per class: "
                             f"expected ({classes},), got shape {weight.shape}")
        _refuse_weight_grad(weight, op)
    loss = MultiMarginLoss.apply(input.reshape(samples, classes), target.reshape(samples),
                                 _weight_array(weight, input), p=p, margin=margin)
    return loss.reshape(target.shape) if reduction == "none" else _reduce(loss, reduction)


# ---------------------------------------------------------------- likelihood losses
def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None,  # noqa: A002
                     eps=1e-8, reduce=None, reduction="mean"):
    """The negative log-likelihood of a Poisson target: exp(x) - t x for log-rate inputs
    (log_input=True), else x - t log(x + eps); full=True adds Stirling's approximation of
    log(t!), t log t - t + log(2 pi t) / 2, where t > 1. Composed as PyTorch does (both
    inputs get gradients); a target <= 1 gets none from the Stirling term (PyTorch gives
    NaN at t = 0).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.poisson_nll_loss(rg.tensor([0.0, 1.0]), rg.tensor([1.0, 2.0]), reduction="none")
        tensor([1.    , 0.7183])
    """
    op = "poisson_nll_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    log_input = _checks.boolean(op, "log_input", log_input)
    full = _checks.boolean(op, "full", full)
    eps = _checks.number(op, "eps", eps)
    input, target = _pointwise_operands(input, target, op, warn=False)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + eps).log()
    if full:
        counted = target._data > 1
        t = target.where(counted, 2.0)    # the Stirling term is 0 elsewhere (no 0 * log 0)
        stirling = t * t.log() - t + 0.5 * (2 * math.pi * t).log()
        loss = loss + stirling.where(counted, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):  # noqa: A002
    """The negative log-likelihood of a Gaussian target: (log(v) + (x - t)^2 / v) / 2 with
    v = max(var, eps) (the clamp changes var's values only: var's gradient is that of the
    unclamped formula, as in PyTorch), plus log(2 pi) / 2 with full=True.

    var (>= 0) is a number or a tensor of the input's shape, of the input's shape without
    its last dim (one variance per sample), or of the input's number of dims with one
    mismatched dim of size 1 (PyTorch's rules).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.gaussian_nll_loss(rg.tensor([[1.0, 2.0]]), rg.tensor([[1.0, 0.0]]),
        ...                     rg.tensor([1.0]), reduction="none")
        tensor([[0., 2.]])
    """
    op = "gaussian_nll_loss"
    _check_tensors(op, input=input, target=target)
    _check_floating_input(input, op)
    var = _gaussian_variance(input, var, op)
    _checks.one_of(op, "reduction", reduction, _REDUCTIONS)
    full = _checks.boolean(op, "full", full)
    eps = _checks.number(op, "eps", eps)
    if not _dt.is_floating(target._data.dtype):
        target = target.to(input.dtype)
    var = var.clone()
    with no_grad():
        var.clamp_(min=eps)
    loss = 0.5 * (var.log() + (input - target) ** 2 / var)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------- argument checks
def _reduction(size_average, reduce, reduction, op):
    """PyTorch's mapping of the deprecated size_average / reduce flags to ``reduction``."""
    if size_average is not None or reduce is not None:
        warnings.warn(f"{op}: size_average and reduce are deprecated, use reduction instead",
                      DeprecationWarning, stacklevel=3)
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    return _checks.one_of(op, "reduction", reduction, _REDUCTIONS)


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_logits(input, op, min_ndim=1):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{op}: expected a floating-point input, got dtype {input.dtype} "
                        f"(shape {input.shape})")
    if input.ndim < min_ndim:
        raise ValueError(f"{op}: expected an input of shape (C,), (N, C) or (N, C, d1, ...), "
                         f"got shape {input.shape}")
    if min_ndim and input.shape[0 if input.ndim == 1 else 1] == 0:
        raise ValueError(f"{op}: the input of shape {input.shape} has no classes")


def _as_target(target, op):
    if isinstance(target, Tensor):
        return target
    if isinstance(target, np.ndarray):
        return make_tensor(as_array(target))
    raise TypeError(f"{op}: target must be a Tensor, got {type(target).__name__}")


def _check_class_indices(input, target, ignore_index, op):  # noqa: A002
    class_axis = 0 if input.ndim == 1 else 1
    expected = tuple(input.shape[:class_axis]) + tuple(input.shape[class_axis + 1:])
    if target._data.dtype not in _INDEX_DTYPES:
        raise TypeError(f"{op}: expected class-index targets of dtype int64 (or uint8) and "
                        f"shape {expected}, or floating class probabilities of shape "
                        f"{input.shape}, for input of shape {input.shape}; got target of dtype "
                        f"{target.dtype} and shape {target.shape}")
    if tuple(target.shape) != expected:
        raise ValueError(f"{op}: expected target of shape {expected} (class indices) for input "
                         f"of shape {input.shape}, got target of shape {target.shape}")
    t = target._data
    n_classes = input.shape[class_axis]
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise IndexError(f"{op}: target class index {t[bad].flat[0]} is out of range for "
                         f"{n_classes} classes (input of shape {input.shape}; expected "
                         f"0 <= index < {n_classes} or ignore_index={ignore_index})")


def _check_weight(weight, input, op):  # noqa: A002
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor or None, got {type(weight).__name__}")
    n_classes = input.shape[0 if input.ndim == 1 else 1]
    if tuple(weight.shape) != (n_classes,):
        raise ValueError(f"{op}: weight of shape {weight.shape} does not match the "
                         f"{n_classes} classes of the input of shape {input.shape}: expected "
                         f"({n_classes},)")
    return weight


def _refuse_weight_grad(weight, op):
    if weight is not None and weight.requires_grad and STATE.grad_enabled:
        raise RuntimeError(f"{op}: the loss is not differentiable with respect to weight (as "
                           f"in PyTorch); pass weight.detach()")


def _weight_array(weight, input):  # noqa: A002
    """Class weights as a constant array in the input's dtype."""
    if weight is None:
        return None
    return weight._data.astype(input._data.dtype, copy=False)


def _promote(*tensors):
    """Cast every floating tensor to their common float dtype (PyTorch's promotion)."""
    present = [t for t in tensors if t is not None]
    dtype = present[0]._data.dtype
    for t in present[1:]:
        if _dt.is_floating(t._data.dtype):
            dtype = np.promote_types(dtype, t._data.dtype)
    return tuple(t.to(dtype) if t is not None and t._data.dtype != dtype else t
                 for t in tensors)


def _check_unit_interval(t, name, op):
    """PyTorch's check of binary_cross_entropy's input and target: every value in [0, 1]
    (NaN fails it)."""
    values = t._data
    outside = ~((values >= 0) & (values <= 1))
    if outside.any():
        where = tuple(int(i) for i in np.argwhere(outside)[0])
        raise RuntimeError(f"{op}: all elements of {name} should be between 0 and 1, got "
                           f"{values[outside].flat[0]} at index {where} (shape {t.shape})")


def _check_broadcast_weight(weight, input, op):  # noqa: A002
    """A per-element weight: a Tensor (or None) that broadcasts to the input's shape."""
    if weight is None:
        return None
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor or None, got {type(weight).__name__}")
    try:
        fits = np.broadcast_shapes(weight.shape, input.shape) == tuple(input.shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{op}: weight of shape {weight.shape} cannot be broadcast to the input "
                         f"shape {input.shape}")
    return weight


def _same_size_weight(weight, input, op):  # noqa: A002
    """The weight of huber_loss, l1_loss and mse_loss: a Tensor of the input's shape, as
    PyTorch."""
    if not isinstance(weight, Tensor):
        raise TypeError(f"{op}: weight must be a Tensor or None, got {type(weight).__name__}")
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(f"{op}: weights and input must have the same size, got weight of shape "
                         f"{weight.shape} and input of shape {input.shape}")
    return weight


def _pointwise_operands(input, target, op, warn=True, integral=True):  # noqa: A002
    """input and target of an elementwise loss, checked and promoted to one float dtype:
    Tensors of broadcastable shapes (a different shape warns as PyTorch, when ``warn``); a
    non-floating target takes the input's dtype (``integral``), or is refused."""
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if not _dt.is_floating(t._data.dtype) and (name == "input" or not integral):
            raise TypeError(f"{op}: expected a floating-point {name}, got dtype {t.dtype} "
                            f"(input of shape {input.shape}, target of shape {target.shape})")
    try:
        np.broadcast_shapes(input.shape, target.shape)
    except ValueError:
        raise ValueError(f"{op}: the input of shape {input.shape} and the target of shape "
                         f"{target.shape} cannot be broadcast together") from None
    if warn and tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"{op}: using a target size {target.shape} that is different to the input "
                      f"size {input.shape}; this will likely lead to incorrect results due to "
                      f"broadcasting. Please ensure they have the same size.", UserWarning,
                      stacklevel=3)
    if not _dt.is_floating(target._data.dtype):
        target = target.to(input.dtype)
    return _promote(input, target)


# ---------------------------------------------------------------- checks of the tail's losses
_COSINE_EPSILON = 1e-12   # PyTorch's cosine_embedding_loss adds it to each squared norm


def _check_tensors(op, **tensors):
    for name, t in tensors.items():
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")


def _check_floating_input(input, op):  # noqa: A002
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{op}: expected a floating-point input, got dtype {input.dtype} "
                        f"(shape {input.shape})")


def _broadcast_shape(op, *named):
    """The broadcast shape of (name, tensor or shape) pairs; the error names each of them."""
    shapes = [tuple(t.shape) if isinstance(t, Tensor) else tuple(t) for _, t in named]
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = ", ".join(f"{name} of shape {shape}" for (name, _), shape in zip(named, shapes))
        raise ValueError(f"{op}: {listed} cannot be broadcast together") from None


def _floating_operands(op, *inputs, target=None):
    """Floating inputs and a target (an integer one takes the first input's dtype), promoted
    to one dtype (PyTorch's promotion)."""
    for t in inputs:
        if not _dt.is_floating(t._data.dtype):
            dtypes = ", ".join(str(t.dtype) for t in inputs)
            raise TypeError(f"{op}: expected floating-point inputs, got dtypes {dtypes}")
    if target is None:
        return _promote(*inputs)
    if not _dt.is_floating(target._data.dtype):
        target = target.to(inputs[0].dtype)
    return _promote(*inputs, target)


def _check_margin_target(input, target, samples, classes, op):  # noqa: A002
    """multi_margin_loss's targets: int64 class indices, one per sample, in [0, classes)."""
    if target._data.dtype != np.int64:
        raise TypeError(f"{op}: expected class-index targets of dtype int64, got dtype "
                        f"{target.dtype} (target of shape {target.shape}, input of shape "
                        f"{input.shape})")
    if target.ndim > 1 or target.numel() != samples:
        raise RuntimeError(f"{op}: target tensor should be 1-D with size equal to the number "
                           f"of input samples: expected target of shape ({samples},), got "
                           f"{target.shape} (input of shape {input.shape})")
    t = target._data
    outside = (t < 0) | (t >= classes)
    if outside.any():
        raise RuntimeError(f"{op}: target out of range: class index {t[outside].flat[0]} for "
                           f"{classes} classes (input of shape {input.shape}; expected 0 <= "
                           f"index < {classes})")


def _gaussian_variance(input, var, op):  # noqa: A002
    """gaussian_nll_loss's var as a tensor that broadcasts to the input (PyTorch's rules: the
    input's shape; its shape without the last dim, unsqueezed; or the input's number of dims
    with one mismatched dim of size 1). A number becomes a tensor of the input's shape."""
    if isinstance(var, numbers.Real) and not isinstance(var, bool):
        if var < 0:
            raise ValueError(f"{op}: var has negative entry/entries, got var={var}")
        return full_like(input, var)
    if not isinstance(var, Tensor):
        raise TypeError(f"{op}: var must be a Tensor or a number, got {type(var).__name__}")
    if not _dt.is_floating(var._data.dtype):
        var = var.to(input.dtype)
    if (var._data < 0).any():
        raise ValueError(f"{op}: var has negative entry/entries (var of shape {var.shape})")
    if tuple(var.shape) == tuple(input.shape):
        return var
    if tuple(input.shape[:-1]) == tuple(var.shape):
        return var.unsqueeze(-1)
    if input.ndim == var.ndim and \
            sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1:
        return var
    raise ValueError(f"{op}: var is of incorrect size: got var of shape {var.shape} for input "
                     f"of shape {input.shape}; expected the input's shape, the input's shape "
                     f"without its last dim, or the input's shape with one dim of size 1")
