"""Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm."""

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.grad_mode import STATE, no_grad
from retrograd.creation import empty, ones, tensor, zeros
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter
from retrograd.nn.scope import ModuleScope

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]


def _register_affine(module, shape, affine, bias, dtype):
    """module.weight and module.bias of ``shape`` (bias only when ``bias``), or None
    registered in their place; their values are set by _reset_affine."""
    weight = Parameter(empty(*shape, dtype=dtype)) if affine else None
    module.register_parameter("weight", weight)
    module.register_parameter("bias", Parameter(empty(*shape, dtype=dtype)) if affine and bias
                              else None)


def _reset_affine(module):
    """PyTorch's initialization of a norm layer's affine map: weight 1, bias 0."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d: parameters, buffers and the forward rule."""

    _expected_ndim = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        name = type(self).__name__
        num_features = _checks.positive_int(name, "num_features", num_features)
        _checks.cpu_device(name, device)
        dtype = dtype or _dt.default_float
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        _register_affine(self, (self.num_features,), affine, bias, dtype)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=_dt.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return self._normalize(input, F.batch_norm)

    def call_with_relu(self, input):  # noqa: A002
        """This layer and then ReLU, as one fused op (F.batch_norm_relu), inside the layer's
        ModuleScope as __call__ runs forward. nn.Sequential calls it for a BatchNorm layer
        followed by a ReLU layer when neither has hooks (see Sequential)."""
        parent = STATE.module_scope
        STATE.module_scope = ModuleScope(self, parent)
        try:
            return self._normalize(input, F.batch_norm_relu)
        finally:
            STATE.module_scope = parent

    def _normalize(self, input, function):  # noqa: A002
        """forward with ``function`` (F.batch_norm or F.batch_norm_relu)."""
        # the one check F.batch_norm cannot make: it takes any (N, C, *) input
        if input.ndim not in self._expected_ndim:
            dims = " or ".join(f"{d}D" for d in self._expected_ndim)
            raise ValueError(f"{type(self).__name__}: expected {dims} input (got {input.ndim}D "
                             f"input of shape {input.shape})")
        factor = 0.0 if self.momentum is None else self.momentum
        counting = self.training and self.track_running_stats and not STATE.recomputing
        if counting and self.num_batches_tracked is not None:  # not again in a checkpoint
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average, as PyTorch
                factor = 1.0 / float(self.num_batches_tracked.item())
        # eval mode without running statistics normalizes with the batch statistics
        use_batch_stats = self.training or self.running_mean is None
        keep_stats = not self.training or self.track_running_stats
        return function(input, self.running_mean if keep_stats else None,
                        self.running_var if keep_stats else None, self.weight, self.bias,
                        use_batch_stats, factor, self.eps, owner=self)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization over a 2D (N, C) or 3D (N, C, L) input:
    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, per channel.

    In training, E[x] and Var[x] (biased) are the statistics of the batch (over N and L), and
    the running estimates move towards them: running = (1 - momentum) running + momentum
    stat, with the unbiased variance; momentum=None uses the cumulative average
    (1 / num_batches_tracked). In eval mode the running estimates are used, unless
    track_running_stats=False.

    Args:
        num_features: C.
        eps: added to the variance. Default: 1e-5.
        momentum: the running-average factor, or None for a cumulative average. Default: 0.1.
        affine: learn weight and bias. Default: True.
        track_running_stats: keep running estimates. Default: True.
        device: None or "cpu". dtype: the parameters' and statistics' dtype.
        bias: (keyword only) learn a bias when affine. Default: True.

    Shape:
        - Input: (N, C) or (N, C, L).
        - Output: the input's shape.

    Attributes:
        weight: (C,), initialized to 1. bias: (C,), initialized to 0.
        running_mean: (C,) buffer, starts at 0. running_var: (C,) buffer, starts at 1.
        num_batches_tracked: int64 buffer, the number of training batches seen.

    Example:
        >>> import retrograd as rg
        >>> bn = rg.nn.BatchNorm1d(3)
        >>> y = bn(rg.randn(8, 3))
        >>> y.shape, int(bn.num_batches_tracked)
        ((8, 3), 1)
    """

    _expected_ndim = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization over a 4D input (N, C, H, W), per channel, with statistics over
    (N, H, W); see BatchNorm1d for the rule, the running estimates and the arguments.

    Shape:
        - Input: (N, C, H, W).
        - Output: (N, C, H, W).

    Attributes:
        weight: (C,), initialized to 1. bias: (C,), initialized to 0.
        running_mean: (C,) buffer, starts at 0. running_var: (C,) buffer, starts at 1.
        num_batches_tracked: int64 buffer.

    Example:
        >>> import retrograd as rg
        >>> bn = rg.nn.BatchNorm2d(4, momentum=None)
        >>> bn(rg.randn(2, 4, 5, 5)).shape
        (2, 4, 5, 5)
        >>> [name for name, _ in bn.state_dict().items()]
        ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    """

    _expected_ndim = (4,)


class LayerNorm(Module):
    """Layer normalization over the trailing dims given by normalized_shape:
    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias, with the statistics (biased
    variance) of each sample (and position), the same in training and eval mode.

    Args:
        normalized_shape: an int or a tuple, the trailing dims of the input.
        eps: added to the variance. Default: 1e-5.
        elementwise_affine: learn weight (and bias). Default: True.
        bias: learn a bias (when elementwise_affine). Default: True.
        device: None or "cpu". dtype: the parameters' dtype.

    Shape:
        - Input: (*, normalized_shape).
        - Output: the input's shape.

    Attributes:
        weight: normalized_shape, initialized to 1. bias: normalized_shape, initialized to 0.

    Example:
        >>> import retrograd as rg
        >>> ln = rg.nn.LayerNorm(8)
        >>> ln(rg.randn(2, 5, 8)).shape
        (2, 5, 8)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        _checks.cpu_device("LayerNorm", device)
        self.normalized_shape = _checks.positive_int_tuple("LayerNorm", "normalized_shape",
                                                           normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dtype = dtype or _dt.default_float
        _register_affine(self, self.normalized_shape, elementwise_affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):  # noqa: A002
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps,
                            owner=self)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalization: the C channels are split into num_groups groups, and each group
    of each sample is normalized, y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias
    (weight and bias per channel); the same in training and eval mode.

    Args:
        num_groups: the number of groups; must divide num_channels.
        num_channels: C.
        eps: added to the variance. Default: 1e-5.
        affine: learn weight and bias. Default: True.
        device: None or "cpu". dtype: the parameters' dtype.
        bias: (keyword only) learn a bias when affine. Default: True.

    Shape:
        - Input: (N, C, *).
        - Output: the input's shape.

    Attributes:
        weight: (C,), initialized to 1. bias: (C,), initialized to 0.

    Example:
        >>> import retrograd as rg
        >>> gn = rg.nn.GroupNorm(2, 6)
        >>> gn(rg.randn(3, 6, 4, 4)).shape
        (3, 6, 4, 4)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        _checks.cpu_device("GroupNorm", device)
        num_groups = _checks.positive_int("GroupNorm", "num_groups", num_groups)
        num_channels = _checks.positive_int("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        dtype = dtype or _dt.default_float
        _register_affine(self, (num_channels,), affine, bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):  # noqa: A002
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps,
                            owner=self)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
