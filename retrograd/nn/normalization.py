"""Normalization layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm, GroupNorm,
RMSNorm, LocalResponseNorm."""

import warnings

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.grad_mode import STATE, no_grad
from retrograd.creation import empty, ones, tensor, zeros
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter
from retrograd.nn.scope import ModuleScope

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LayerNorm", "GroupNorm", "RMSNorm", "LocalResponseNorm"]


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


class _NormBase(Module):
    """Shared by the batch and instance norm layers (PyTorch's _NormBase): the affine
    parameters, the running-statistics buffers, their reset and the repr."""

    _expected_ndim = ()   # the input ranks the layer takes

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

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")

    def _check_ndim(self, input):  # noqa: A002
        if input.ndim not in self._expected_ndim:
            dims = " or ".join(f"{d}D" for d in self._expected_ndim)
            raise ValueError(f"{type(self).__name__}: expected {dims} input (got {input.ndim}D "
                             f"input of shape {input.shape})")


class _BatchNorm(_NormBase):
    """Shared by BatchNorm1d, BatchNorm2d and BatchNorm3d: the forward rule."""

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
        self._check_ndim(input)  # the one check F.batch_norm cannot make: any (N, C, *)
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


class BatchNorm3d(_BatchNorm):
    """Batch normalization over a 5D input (N, C, D, H, W), per channel, with statistics over
    (N, D, H, W); see BatchNorm1d for the rule, the running estimates and the arguments.

    Shape:
        - Input: (N, C, D, H, W).
        - Output: (N, C, D, H, W).

    Attributes:
        weight: (C,), initialized to 1. bias: (C,), initialized to 0.
        running_mean: (C,) buffer, starts at 0. running_var: (C,) buffer, starts at 1.
        num_batches_tracked: int64 buffer.

    Example:
        >>> import retrograd as rg
        >>> bn = rg.nn.BatchNorm3d(2)
        >>> bn(rg.randn(2, 2, 3, 4, 4)).shape
        (2, 2, 3, 4, 4)
    """

    _expected_ndim = (5,)


class _InstanceNorm(_NormBase):
    """Shared by InstanceNorm1d, InstanceNorm2d and InstanceNorm3d: PyTorch's defaults (no
    affine map, no running statistics) and the forward rule; the first of _expected_ndim is
    the rank of an unbatched input (C, *)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def forward(self, input):  # noqa: A002
        self._check_ndim(input)
        unbatched = input.ndim == self._expected_ndim[0]
        self._check_features(input.shape[0 if unbatched else 1], 0 if unbatched else 1)
        if unbatched:
            return self._instance_norm(input.unsqueeze(0)).squeeze(0)
        return self._instance_norm(input)

    def _check_features(self, size, dim):
        """As PyTorch: a channel count other than num_features is an error with an affine
        map, else a warning (num_features is then not used, unless by running statistics)."""
        if size == self.num_features:
            return
        if self.affine:
            raise ValueError(f"{self!r}: expected input's size at dim={dim} to match "
                             f"num_features ({self.num_features}), but got: {size}.")
        warnings.warn(f"{type(self).__name__}: input's size at dim={dim} ({size}) does not "
                      f"match num_features ({self.num_features}). You can silence this warning "
                      f"by not passing in num_features, which is not used because "
                      f"affine=False", stacklevel=3)

    def _instance_norm(self, input):  # noqa: A002
        """The running statistics normalize in eval mode when they are tracked; momentum
        None is 0 here (PyTorch's instance norm has no cumulative average)."""
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight,
                               self.bias, self.training or not self.track_running_stats,
                               0.0 if self.momentum is None else self.momentum, self.eps,
                               owner=self)


_INSTANCE_NORM_DOC = """Instance normalization over a {rank} input {shape}: each channel of
    each sample is normalized over its own {spatial} dims,
    y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias (biased variance; weight and bias per
    channel, when affine), in training and in eval mode unless track_running_stats.

    With track_running_stats, training moves the running estimates towards the batch average
    of the instances' statistics (running = (1 - momentum) running + momentum stat, with the
    unbiased variance; num_batches_tracked stays 0, as PyTorch's), and eval mode normalizes
    with them.

    Args:
        num_features: C. (Without affine or running statistics it is not used, and another
            channel count only warns.)
        eps: added to the variance. Default: 1e-5.
        momentum: the running-average factor (None: 0). Default: 0.1.
        affine: learn weight and bias. Default: False.
        track_running_stats: keep running estimates. Default: False.
        device: None or "cpu". dtype: the parameters' and statistics' dtype.
        bias: (keyword only) learn a bias when affine. Default: True.

    Shape:
        - Input: {shape} or {unbatched} (unbatched).
        - Output: the input's shape.

    Attributes:
        weight: (C,), initialized to 1. bias: (C,), initialized to 0 (when affine).
        running_mean, running_var, num_batches_tracked: as BatchNorm's (when tracked).

    Example:
        >>> import retrograd as rg
        >>> norm = rg.nn.{name}(3, affine=True)
        >>> norm(rg.randn{example}).shape
        {example}
    """


class InstanceNorm1d(_InstanceNorm):
    __doc__ = _INSTANCE_NORM_DOC.format(rank="3D", shape="(N, C, L)", spatial="L",
                                        unbatched="(C, L)", name="InstanceNorm1d",
                                        example="(2, 3, 5)")
    _expected_ndim = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    __doc__ = _INSTANCE_NORM_DOC.format(rank="4D", shape="(N, C, H, W)", spatial="(H, W)",
                                        unbatched="(C, H, W)", name="InstanceNorm2d",
                                        example="(2, 3, 4, 4)")
    _expected_ndim = (3, 4)


class InstanceNorm3d(_InstanceNorm):
    __doc__ = _INSTANCE_NORM_DOC.format(rank="5D", shape="(N, C, D, H, W)",
                                        spatial="(D, H, W)", unbatched="(C, D, H, W)",
                                        name="InstanceNorm3d", example="(2, 3, 2, 3, 3)")
    _expected_ndim = (4, 5)


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


class RMSNorm(Module):
    """Root mean square normalization over the trailing dims given by normalized_shape:
    y = x / sqrt(mean(x^2) + eps) * weight, with the mean square of each sample (and
    position); no mean is subtracted and there is no bias. The same in training and eval.

    Args:
        normalized_shape: an int or a tuple, the trailing dims of the input.
        eps: added to the mean square; None takes finfo(dtype).eps (of float32 for float16
            and bfloat16 inputs, as PyTorch). Default: None.
        elementwise_affine: learn weight. Default: True.
        device: None or "cpu". dtype: the weight's dtype.

    Shape:
        - Input: (*, normalized_shape).
        - Output: the input's shape.

    Attributes:
        weight: normalized_shape, initialized to 1.

    Example:
        >>> import retrograd as rg
        >>> norm = rg.nn.RMSNorm(8)
        >>> norm(rg.randn(2, 5, 8)).shape
        (2, 5, 8)
        >>> norm
        RMSNorm((8,), eps=None, elementwise_affine=True)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        _checks.cpu_device("RMSNorm", device)
        self.normalized_shape = _checks.positive_int_tuple("RMSNorm", "normalized_shape",
                                                           normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        dtype = dtype or _dt.default_float
        self.register_parameter("weight", Parameter(empty(*self.normalized_shape, dtype=dtype))
                                if elementwise_affine else None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, input):  # noqa: A002
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps, owner=self)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(Module):
    """Local response normalization across channels (AlexNet's): each element is divided by
    (k + alpha / size * the sum of the squares of ``size`` neighbouring channels) ** beta,
    channels beyond the edges counting as 0; see F.local_response_norm.

    Args:
        size: the number of channels in the window.
        alpha, beta, k: the formula's constants. Defaults: 1e-4, 0.75, 1.0.

    Shape:
        - Input: (N, C, *), at least 3 dims.
        - Output: the input's shape.

    Example:
        >>> import retrograd as rg
        >>> lrn = rg.nn.LocalResponseNorm(2)
        >>> lrn(rg.randn(2, 4, 3, 3)).shape
        (2, 4, 3, 3)
        >>> lrn
        LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):  # noqa: A002
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k,
                                     owner=self)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
