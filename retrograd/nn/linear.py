"""Linear layers and shape helpers: Linear, Identity, Flatten, Unflatten."""

import math

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.creation import empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter

__all__ = ["Linear", "Identity", "Flatten", "Unflatten"]


class Linear(Module):
    """Applies y = x W^T + b.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: whether to learn an additive bias. Default: True.
        device: None or "cpu" (accepted for PyTorch compatibility).
        dtype: the parameters' dtype. Default: the default float dtype (float32).

    Shape:
        - Input: (*, in_features).
        - Output: (*, out_features).

    Attributes:
        weight: (out_features, in_features), from U(-1/sqrt(in_features), 1/sqrt(in_features)).
        bias: (out_features,), from the same distribution.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.Linear(20, 30)
        >>> layer(rg.randn(128, 20)).shape
        (128, 30)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        for name, size in (("in_features", in_features), ("out_features", out_features)):
            _checks.non_negative_int("Linear", name, size)
        _checks.cpu_device("Linear", device)
        self.in_features, self.out_features = in_features, out_features
        dtype = dtype or _dt.default_float
        self.weight = Parameter(empty(out_features, in_features, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias, owner=self)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Identity(Module):
    """Returns its input unchanged (a placeholder that keeps state-dict names stable);
    arguments are accepted and ignored.

    Example:
        >>> import retrograd as rg
        >>> x = rg.ones(2)
        >>> rg.nn.Identity(54, unused=True)(x) is x
        True
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Flattens dims start_dim..end_dim into one (default: all but the batch dim).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Flatten()(rg.zeros(2, 3, 4, 5)).shape
        (2, 60)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Splits dim into the given sizes (one may be -1).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Unflatten(1, (2, 5))(rg.zeros(3, 10)).shape
        (3, 2, 5)
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x):
        return x.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
