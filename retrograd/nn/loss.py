"""Loss layers: CrossEntropyLoss, NLLLoss, MSELoss, BCEWithLogitsLoss, BCELoss, KLDivLoss,
SmoothL1Loss, HuberLoss, L1Loss; and the tail: MarginRankingLoss, HingeEmbeddingLoss,
CosineEmbeddingLoss, TripletMarginLoss, SoftMarginLoss, MultiLabelSoftMarginLoss,
MultiMarginLoss, PoissonNLLLoss, GaussianNLLLoss."""

from retrograd import _checks
from retrograd.nn import functional as F
from retrograd.nn.functional.loss import _reduction
from retrograd.nn.module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss", "BCELoss",
           "KLDivLoss", "SmoothL1Loss", "HuberLoss", "L1Loss", "MarginRankingLoss",
           "HingeEmbeddingLoss", "CosineEmbeddingLoss", "TripletMarginLoss", "SoftMarginLoss",
           "MultiLabelSoftMarginLoss", "MultiMarginLoss", "PoissonNLLLoss", "GaussianNLLLoss"]


class _Loss(Module):
    """Holds ``reduction`` (PyTorch's deprecated size_average / reduce flags map onto it)."""

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = _reduction(size_average, reduce, reduction, type(self).__name__)


class _WeightedLoss(_Loss):
    """A loss with an optional ``weight`` buffer (saved in the state dict, as PyTorch)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy between logits and class-index or class-probability targets, fused with
    log-softmax: loss_n = -sum_c w_c q_nc log softmax(x_n)_c, q the (smoothed) target
    distribution (see ``retrograd.nn.functional.cross_entropy``).

    Args:
        weight: (C,) class weights, or None.
        ignore_index: targets equal to it are skipped (class-index targets). Default: -100.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        label_smoothing: in [0, 1]. Default: 0.0.
        z_loss: retrograd's extension (PyTorch has none): PaLM's auxiliary z-loss, adds
            z_loss * logsumexp(x_n)^2 per row not ignored, reduced as the loss (see
            F.cross_entropy). Default: 0.0 (off).
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (C,), (N, C) or (N, C, d1, ..., dK).
        - Target: class indices (), (N,) or (N, d1, ..., dK) (int64); or probabilities of the
          input's shape.
        - Output: a scalar; or the target's shape (per sample) for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> loss_fn = rg.nn.CrossEntropyLoss(label_smoothing=0.1)
        >>> logits = rg.randn(3, 5, requires_grad=True)
        >>> loss = loss_fn(logits, rg.tensor([1, 0, 4]))
        >>> loss.backward()
        >>> loss.shape, logits.grad.shape
        ((), (3, 5))
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0, z_loss=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.z_loss = z_loss

    def forward(self, input, target):  # noqa: A002 - PyTorch's argument name
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing,
                               z_loss=self.z_loss)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities: loss_n = -w_{t_n} x_{n, t_n}.

    Args:
        weight: (C,) class weights, or None.
        ignore_index: targets equal to it are skipped. Default: -100.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean' (weighted mean).
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (C,), (N, C) or (N, C, d1, ..., dK), log-probabilities.
        - Target: (), (N,) or (N, d1, ..., dK), int64 class indices.
        - Output: a scalar; or the target's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> loss_fn = rg.nn.NLLLoss()
        >>> loss_fn(rg.tensor([[-0.5, -1.0]]), rg.tensor([1]))
        tensor(1.)
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):  # noqa: A002
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error: (x - y)^2 per element, reduced.

    Args:
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), any shape. Target: the input's shape.
        - Output: a scalar; or the input's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.MSELoss(reduction="sum")(rg.tensor([0.0, 1.0]), rg.tensor([2.0, 1.0]))
        tensor(4.)
    """

    def forward(self, input, target):  # noqa: A002
        return F.mse_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, stable for any |x|:
    loss = -w [pw y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] per element.

    Args:
        weight: rescaling weight broadcast to the input, or None.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        pos_weight: weight of positive examples, broadcast along the last dim (e.g. (C,)).
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), any shape. Target: the input's shape.
        - Output: a scalar; or the input's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> loss_fn = rg.nn.BCEWithLogitsLoss(pos_weight=rg.tensor([2.0]))
        >>> loss_fn(rg.tensor([0.0]), rg.tensor([1.0]))
        tensor(1.3863)
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities: loss = -w [y log x + (1 - y) log(1 - x)] per
    element, each log clamped at -100 (as PyTorch). For logits, BCEWithLogitsLoss is the
    overflow-free choice.

    Args:
        weight: rescaling weight broadcast to the input, or None (no gradient flows into it).
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), probabilities in [0, 1]. Target: the input's shape, in [0, 1].
        - Output: a scalar; or the input's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.BCELoss()(rg.tensor([0.5, 0.5]), rg.tensor([1.0, 0.0]))
        tensor(0.6931)
    """

    def forward(self, input, target):  # noqa: A002
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class KLDivLoss(Module):
    """Kullback-Leibler divergence of log-probabilities x from targets y: loss = y (log y - x)
    per element (exp(y) (y - x) with log_target), 0 where the target probability is 0.

    Args:
        reduction: 'none' | 'batchmean' | 'sum' | 'mean'. Default: 'mean' (the mean over all
            elements, with PyTorch's warning; 'batchmean', the sum over the batch size, is
            the KL divergence).
        log_target: the target holds log-probabilities. Default: False.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), log-probabilities. Target: broadcastable with the input.
        - Output: a scalar; or the broadcast shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> loss_fn = rg.nn.KLDivLoss(reduction="batchmean")
        >>> round(loss_fn(rg.tensor([[0.5, 0.5]]).log(), rg.tensor([[0.5, 0.5]])).item(), 6)
        0.0
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__()
        name = type(self).__name__
        if size_average is not None or reduce is not None:
            reduction = _reduction(size_average, reduce, reduction, name)
        self.reduction = _checks.one_of(name, "reduction", reduction,
                                        ("none", "batchmean", "sum", "mean"))
        self.log_target = log_target

    def forward(self, input, target):  # noqa: A002
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss: 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere, d = x - y
    (beta = 0: the L1 loss).

    Args:
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        beta: where the loss turns from quadratic to linear, >= 0. Default: 1.0.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), any shape. Target: the input's shape.
        - Output: a scalar; or the input's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.SmoothL1Loss()(rg.tensor([0.5, 3.0]), rg.tensor([0.0, 0.0]))
        tensor(1.3125)
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):  # noqa: A002
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Huber loss: 0.5 d^2 where |d| < delta, delta (|d| - 0.5 delta) elsewhere, d = x - y.

    Args:
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        delta: where the loss turns from quadratic to linear, > 0. Default: 1.0.

    Shape:
        - Input: (*), any shape. Target: the input's shape.
        - Output: a scalar; or the input's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.HuberLoss(delta=2.0)(rg.tensor([0.5, 3.0]), rg.tensor([0.0, 0.0]))
        tensor(2.0625)
    """

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):  # noqa: A002
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class L1Loss(_Loss):
    """Mean absolute error: |x - y| per element, reduced.

    Args:
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), any shape. Target: the input's shape.
        - Output: a scalar; or the input's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.L1Loss()(rg.tensor([1.0, 2.0]), rg.tensor([0.0, 4.0]))
        tensor(1.5)
    """

    def forward(self, input, target):  # noqa: A002
        return F.l1_loss(input, target, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    """Margin ranking loss: max(0, -y (x1 - x2) + margin) per element, y = 1 when x1 should
    rank higher than x2 and -1 when lower.

    Args:
        margin: Default: 0.0.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input1, Input2, Target: (N,) or (), broadcastable with the same number of dims.
        - Output: a scalar; or the broadcast shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> loss_fn = rg.nn.MarginRankingLoss(margin=0.5)
        >>> loss_fn(rg.tensor([1.0, 0.0]), rg.tensor([0.0, 0.5]), rg.tensor([1.0, 1.0]))
        tensor(0.5)
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin,
                                     reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """Hinge embedding loss: x where y == 1, max(0, margin - x) where y == -1, per element
    (x is typically a distance between two embeddings).

    Args:
        margin: Default: 1.0.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), any shape. Target: broadcastable with it, values 1 or -1.
        - Output: a scalar; or the broadcast shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.HingeEmbeddingLoss()(rg.tensor([0.3, 0.3]), rg.tensor([1, -1]))
        tensor(0.5)
    """

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):  # noqa: A002
        return F.hinge_embedding_loss(input, target, margin=self.margin,
                                      reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """Cosine embedding loss: 1 - cos(x1, x2) where y == 1, max(0, cos(x1, x2) - margin)
    where y == -1, per sample.

    Args:
        margin: in [-1, 1]; 0 to 0.5 is suggested. Default: 0.0.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input1, Input2: (N, D) or (D,). Target: (N,) or (), values 1 or -1.
        - Output: a scalar; or (N,) / () for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([[1.0, 0.0]])
        >>> rg.nn.CosineEmbeddingLoss()(x, x, rg.tensor([1])).item()
        0.0
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                       reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """Triplet margin loss: max(0, margin + d(a, p) - d(a, n)) per triplet, d(x1, x2) =
    ||x1 - x2 + eps||_p along the last dim.

    Args:
        margin: > 0. Default: 1.0.
        p: the norm degree. Default: 2.0.
        eps: added to the differences. Default: 1e-6.
        swap: use min(d(a, n), d(p, n)) as the negative distance. Default: False.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Anchor, Positive, Negative: (N, D) or (D,), broadcastable, the same number of dims.
        - Output: a scalar; or (N,) / () for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> a, p, n = rg.zeros(1, 2), rg.tensor([[3.0, 4.0]]), rg.tensor([[6.0, 8.0]])
        >>> round(rg.nn.TripletMarginLoss(margin=6.0)(a, p, n).item(), 4)
        1.0
    """

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None,
                 reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if not margin > 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got "
                             f"{margin} instead")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                     eps=self.eps, swap=self.swap, reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """Soft margin loss: log(1 + exp(-y x)) per element (two-class logistic loss, y = +-1),
    finite for every finite x.

    Args:
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), any shape. Target: broadcastable to the input's shape.
        - Output: a scalar; or the input's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> round(rg.nn.SoftMarginLoss()(rg.tensor([0.0]), rg.tensor([1.0])).item(), 4)
        0.6931
    """

    def forward(self, input, target):  # noqa: A002
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Multi-label soft margin loss: the mean over the C classes of -w (y log sigmoid(x) +
    (1 - y) log sigmoid(-x)), per sample (each class a binary problem, y in {0, 1}).

    Args:
        weight: per-class weights broadcast to the input (e.g. (C,)), or None.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (N, C) or (C,). Target: the input's shape, 0 or 1.
        - Output: a scalar; or (N,) / () for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> loss_fn = rg.nn.MultiLabelSoftMarginLoss()
        >>> round(loss_fn(rg.zeros(2, 3), rg.tensor([[1, 0, 1], [0, 0, 1]])).item(), 4)
        0.6931
    """

    def forward(self, input, target):  # noqa: A002
        return F.multilabel_soft_margin_loss(input, target, weight=self.weight,
                                             reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class margin (hinge) loss: w[y] / C * sum over i != y of max(0, margin - x[y] +
    x[i])^p per sample.

    Args:
        p: 1 or 2. Default: 1.
        margin: Default: 1.0.
        weight: (C,) class weights, or None (no gradient flows into it).
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (N, C) or (C,). Target: (N,) or () (int64 class indices).
        - Output: a scalar; or the target's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.MultiMarginLoss()(rg.tensor([[0.1, 0.2, 0.4, 0.8]]), rg.tensor([3]))
        tensor(0.325)
    """

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        if isinstance(p, bool) or p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 supported, got p={p!r}")
        if weight is not None and weight.ndim != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got "
                             f"{weight.ndim}D instead")
        self.p, self.margin = p, margin

    def forward(self, input, target):  # noqa: A002
        return F.multi_margin_loss(input, target, p=self.p, margin=self.margin,
                                   weight=self.weight, reduction=self.reduction)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood: exp(x) - y x for log-rates (log_input=True), else
    x - y log(x + eps); full=True adds Stirling's term y log y - y + log(2 pi y) / 2 (y > 1).

    Args:
        log_input: the input is the log of the rate. Default: True.
        full: add the Stirling approximation term. Default: False.
        eps: keeps log(x + eps) finite at x = 0 (log_input=False). Default: 1e-8.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.
        size_average, reduce: deprecated, mapped to reduction.

    Shape:
        - Input: (*), any shape. Target: broadcastable with it.
        - Output: a scalar; or the broadcast shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.PoissonNLLLoss()(rg.tensor([0.0]), rg.tensor([1.0]))
        tensor(1.)
    """

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full,
                                  eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood: (log(max(var, eps)) + (x - y)^2 / max(var, eps)) / 2
    per element, plus log(2 pi) / 2 with full=True.

    Args:
        full: add the constant term. Default: False.
        eps: the smallest variance used (a clamp that does not stop var's gradient).
            Default: 1e-6.
        reduction: 'none' | 'mean' | 'sum'. Default: 'mean'.

    Shape:
        - Input: (N, *) or (*). Target: the input's shape (or broadcastable).
        - Var: the input's shape, the input's shape without its last dim, the input's shape
          with one dim of size 1, or a number.
        - Output: a scalar; or the input's shape for reduction='none'.

    Example:
        >>> import retrograd as rg
        >>> loss_fn = rg.nn.GaussianNLLLoss()
        >>> loss_fn(rg.tensor([[1.0, 2.0]]), rg.tensor([[1.0, 0.0]]), rg.tensor([1.0]))
        tensor(1.)
    """

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input, target, var):  # noqa: A002
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                   reduction=self.reduction)
