"""Losses: cross_entropy, nll_loss, mse_loss, binary_cross_entropy_with_logits."""

import warnings

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.grad_mode import STATE
from retrograd.ops.loss import (
    BinaryCrossEntropyWithLogits, CrossEntropy, CrossEntropyProbs, NllLoss,
)
from retrograd.tensor import Tensor

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits"]

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


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):  # noqa: A002
    """Mean squared error: (input - target)^2, reduced. Composed of elementary ops (so twice
    differentiable); a target of another shape is broadcast with a warning, like PyTorch.

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
    return _reduce(diff * diff, reduction)


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
        return Tensor(target)
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
