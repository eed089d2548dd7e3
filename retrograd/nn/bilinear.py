"""The bilinear layer: Bilinear."""

import math

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.creation import empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter

__all__ = ["Bilinear"]


class Bilinear(Module):
    """Applies y = x1^T A x2 + b: y[..., o] = sum over i, j of x1[..., i] A[o, i, j] x2[..., j]
    + b[o].

    Args:
        in1_features: size of each first input sample (> 0).
        in2_features: size of each second input sample.
        out_features: size of each output sample.
        bias: whether to learn an additive bias. Default: True.
        device: None or "cpu". dtype: the parameters' dtype (default float32).

    Shape:
        - Input1: (*, in1_features). Input2: (*, in2_features), the same leading dims.
        - Output: (*, out_features).

    Attributes:
        weight: (out_features, in1_features, in2_features), from U(-k, k), k =
            1 / sqrt(in1_features).
        bias: (out_features,), from the same distribution.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.Bilinear(20, 30, 40)
        >>> layer(rg.randn(128, 20), rg.randn(128, 30)).shape
        (128, 40)
    """

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None,
                 dtype=None):
        super().__init__()
        for name, size in (("in1_features", in1_features), ("in2_features", in2_features),
                           ("out_features", out_features)):
            _checks.non_negative_int("Bilinear", name, size)
        _checks.cpu_device("Bilinear", device)
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        dtype = dtype or _dt.default_float
        self.weight = Parameter(empty(out_features, in1_features, in2_features, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        if self.in1_features <= 0:
            raise ValueError(f"Bilinear: in1_features must be > 0, but got "
                             f"(in1_features={self.in1_features})")
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        return F.bilinear(input1, input2, self.weight, self.bias, owner=self)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
