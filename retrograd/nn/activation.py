"""Activation layers: ReLU, LeakyReLU, GELU, Tanh, Sigmoid, Softmax, LogSoftmax, SiLU, Mish,
Softplus, ELU, Hardtanh, ReLU6, PReLU, LogSigmoid; and the tail: GLU, Hardswish, Hardsigmoid,
SELU, CELU, Softmin, Softsign, Tanhshrink, Softshrink, Hardshrink, Threshold."""

import warnings

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.creation import empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter

__all__ = ["ReLU", "LeakyReLU", "GELU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax", "SiLU",
           "Mish", "Softplus", "ELU", "Hardtanh", "ReLU6", "PReLU", "LogSigmoid", "GLU",
           "Hardswish", "Hardsigmoid", "SELU", "CELU", "Softmin", "Softsign", "Tanhshrink",
           "Softshrink", "Hardshrink", "Threshold"]


class _InplaceActivation(Module):
    """An elementwise activation with PyTorch's ``inplace`` switch. A subclass names its
    function of nn.functional in ``_function``; it is looked up at each call, as PyTorch's
    layers call ``F.relu`` and the like."""

    _function = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return getattr(F, self._function)(input, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceActivation):
    """Applies ReLU(x) = max(0, x) elementwise.

    Args:
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ReLU()(rg.tensor([-1.0, 2.0]))
        tensor([0., 2.])
    """

    _function = "relu"


class LeakyReLU(Module):
    """Applies LeakyReLU(x) = x if x > 0 else negative_slope * x elementwise.

    Args:
        negative_slope: the slope for negative inputs. Default: 0.01.
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.LeakyReLU(0.1)(rg.tensor([-1.0, 2.0]))
        tensor([-0.1,  2. ])
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):  # noqa: A002
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        inplace = ", inplace=True" if self.inplace else ""
        return f"negative_slope={self.negative_slope}{inplace}"


class GELU(Module):
    """Applies GELU(x) = x * Phi(x), Phi the standard normal CDF, elementwise; with
    approximate='tanh', 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    Args:
        approximate: 'none' or 'tanh'. Default: 'none'.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> [round(v, 4) for v in rg.nn.GELU()(rg.tensor([0.0, 3.0])).tolist()]
        [0.0, 2.996]
    """

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = approximate

    def forward(self, input):  # noqa: A002
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Tanh(Module):
    """Applies tanh(x) elementwise.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Tanh()(rg.zeros(2))
        tensor([0., 0.])
    """

    def forward(self, input):  # noqa: A002
        return F.tanh(input)


class Sigmoid(Module):
    """Applies sigmoid(x) = 1 / (1 + exp(-x)) elementwise.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Sigmoid()(rg.zeros(2))
        tensor([0.5, 0.5])
    """

    def forward(self, input):  # noqa: A002
        return F.sigmoid(input)


class Softmax(Module):
    """Applies softmax(x)_i = exp(x_i) / sum_j exp(x_j) along ``dim``.

    Args:
        dim: the dim along which the outputs sum to 1. None picks PyTorch's legacy implicit
            dim, with a warning.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Softmax(dim=-1)(rg.zeros(1, 2))
        tensor([[0.5, 0.5]])
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return F.softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Applies log(softmax(x)) along ``dim``, computed without overflow.

    Args:
        dim: the dim of the softmax. None picks PyTorch's legacy implicit dim, with a warning.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.LogSoftmax(dim=1)(rg.zeros(1, 2))
        tensor([[-0.6931, -0.6931]])
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return F.log_softmax(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class SiLU(_InplaceActivation):
    """Applies SiLU(x) = x * sigmoid(x) (swish) elementwise.

    Args:
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> [round(v, 4) for v in rg.nn.SiLU()(rg.tensor([-1.0, 2.0])).tolist()]
        [-0.2689, 1.7616]
    """

    _function = "silu"


class Mish(_InplaceActivation):
    """Applies Mish(x) = x * tanh(softplus(x)) elementwise.

    Args:
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> [round(v, 4) for v in rg.nn.Mish()(rg.tensor([-1.0, 2.0])).tolist()]
        [-0.3034, 1.944]
    """

    _function = "mish"


class Softplus(Module):
    """Applies Softplus(x) = log(1 + exp(beta * x)) / beta elementwise, reverting to the
    identity where beta * x > threshold.

    Args:
        beta: the sharpness. Default: 1.0.
        threshold: above it (on beta * x) the layer is linear. Default: 20.0.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> [round(v, 4) for v in rg.nn.Softplus(beta=2.0)(rg.tensor([0.0, 1.0])).tolist()]
        [0.3466, 1.0635]
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):  # noqa: A002
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class ELU(Module):
    """Applies ELU(x) = x if x > 0 else alpha * (exp(x) - 1) elementwise.

    Args:
        alpha: the value approached for x -> -inf is -alpha. Default: 1.0.
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> [round(v, 4) for v in rg.nn.ELU()(rg.tensor([-1.0, 2.0])).tolist()]
        [-0.6321, 2.0]
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):  # noqa: A002
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Hardtanh(Module):
    """Applies HardTanh(x) = min(max(x, min_val), max_val) elementwise.

    Args:
        min_val: the lower bound. Default: -1.0.
        max_val: the upper bound, greater than min_val. Default: 1.0.
        inplace: write the result into the input. Default: False.
        min_value, max_value: deprecated names of min_val and max_val (a FutureWarning).

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Hardtanh(-2.0, 2.0)(rg.tensor([-3.0, 1.0, 5.0]))
        tensor([-2.,  1.,  2.])
    """

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
                 max_value=None):
        super().__init__()
        for old, new, value in (("min_value", "min_val", min_value),
                                ("max_value", "max_val", max_value)):
            if value is not None:
                warnings.warn(f"Hardtanh: keyword argument `{old}` is deprecated and renamed "
                              f"to `{new}`", FutureWarning, stacklevel=2)
        min_val = min_val if min_value is None else min_value
        max_val = max_val if max_value is None else max_value
        if not max_val > min_val:
            raise ValueError(f"{type(self).__name__}: max_val ({max_val}) must be greater than "
                             f"min_val ({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):  # noqa: A002
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        inplace = ", inplace=True" if self.inplace else ""
        return f"min_val={self.min_val}, max_val={self.max_val}{inplace}"


class ReLU6(Hardtanh):
    """Applies ReLU6(x) = min(max(0, x), 6) elementwise (Hardtanh(0, 6)).

    Args:
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ReLU6()(rg.tensor([-1.0, 3.0, 7.0]))
        tensor([0., 3., 6.])
    """

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def forward(self, input):  # noqa: A002
        return F.relu6(input, self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class PReLU(Module):
    """Applies PReLU(x) = x if x > 0 else a * x elementwise, with learnable slopes a: one
    shared by all channels, or one per channel (dim 1 of the input).

    Args:
        num_parameters: 1, or the number of channels C. Default: 1.
        init: the initial slope. Default: 0.25.
        device: None or "cpu". dtype: the weight's dtype.

    Shape:
        - Input: (*), any shape; (N, C, *) when num_parameters = C.
        - Output: (*), the input's shape.

    Attributes:
        weight: (num_parameters,), filled with ``init``.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.PReLU(2)
        >>> layer(rg.tensor([[-4.0, 2.0]])).tolist()
        [[-1.0, 2.0]]
        >>> layer.weight.shape
        (2,)
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        _checks.positive_int(type(self).__name__, "num_parameters", num_parameters)
        _checks.cpu_device(type(self).__name__, device)
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(empty(num_parameters, dtype=dtype or _dt.default_float))
        self.reset_parameters()

    def reset_parameters(self):
        init.constant_(self.weight, self.init)

    def forward(self, input):  # noqa: A002
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class LogSigmoid(Module):
    """Applies LogSigmoid(x) = log(1 / (1 + exp(-x))) elementwise, without overflow.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> [round(v, 4) for v in rg.nn.LogSigmoid()(rg.tensor([0.0, -50.0])).tolist()]
        [-0.6931, -50.0]
    """

    def forward(self, input):  # noqa: A002
        return F.logsigmoid(input)


class GLU(Module):
    """Applies the gated linear unit GLU(a, b) = a * sigmoid(b), where a and b are the two
    halves of the input along ``dim``.

    Args:
        dim: the dim split in half (its size must be even). Default: -1.

    Shape:
        - Input: (*1, N, *2), N even.
        - Output: (*1, N / 2, *2).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.GLU()(rg.randn(4, 2)).shape
        (4, 1)
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Hardswish(_InplaceActivation):
    """Applies Hardswish(x) = x * min(max(x + 3, 0), 6) / 6 elementwise (MobileNetV3).

    Args:
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Hardswish()(rg.tensor([-4.0, 1.5, 4.0])).tolist()
        [-0.0, 1.125, 4.0]
    """

    _function = "hardswish"

    def extra_repr(self):
        return ""   # PyTorch's repr shows no inplace flag here


class Hardsigmoid(_InplaceActivation):
    """Applies Hardsigmoid(x) = min(max(x + 3, 0), 6) / 6 elementwise.

    Args:
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Hardsigmoid()(rg.tensor([-4.0, 1.5, 4.0])).tolist()
        [0.0, 0.75, 1.0]
    """

    _function = "hardsigmoid"

    def extra_repr(self):
        return ""   # PyTorch's repr shows no inplace flag here


class SELU(_InplaceActivation):
    """Applies SELU(x) = scale * (max(0, x) + min(0, alpha * (exp(x) - 1))) elementwise, with
    alpha = 1.6732632423543772 and scale = 1.0507009873554805 (self-normalizing networks).

    Args:
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> [round(v, 4) for v in rg.nn.SELU()(rg.tensor([-1.0, 2.0])).tolist()]
        [-1.1113, 2.1014]
    """

    _function = "selu"


class CELU(Module):
    """Applies CELU(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) elementwise.

    Args:
        alpha: the value approached for x -> -inf is -alpha (not 0). Default: 1.0.
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> [round(v, 4) for v in rg.nn.CELU(0.5)(rg.tensor([-1.0, 2.0])).tolist()]
        [-0.4323, 2.0]
    """

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input):  # noqa: A002
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Softmin(Module):
    """Applies softmin(x) = softmax(-x) along ``dim``: the smallest entry gets the largest
    probability.

    Args:
        dim: the dim along which the outputs sum to 1. None picks PyTorch's legacy implicit
            dim, with a warning.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Softmin(dim=1)(rg.tensor([[1.0, 1.0]])).tolist()
        [[0.5, 0.5]]
    """

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):  # noqa: A002
        return F.softmin(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


class Softsign(Module):
    """Applies Softsign(x) = x / (1 + |x|) elementwise.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Softsign()(rg.tensor([-3.0, 1.0])).tolist()
        [-0.75, 0.5]
    """

    def forward(self, input):  # noqa: A002
        return F.softsign(input)


class Tanhshrink(Module):
    """Applies Tanhshrink(x) = x - tanh(x) elementwise.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Tanhshrink()(rg.tensor([0.0])).tolist()
        [0.0]
    """

    def forward(self, input):  # noqa: A002
        return F.tanhshrink(input)


class Softshrink(Module):
    """Applies the soft shrinkage x - lambd (x > lambd), x + lambd (x < -lambd), 0 (else)
    elementwise.

    Args:
        lambd: the half-width of the interval sent to 0, >= 0. Default: 0.5.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Softshrink(1.0)(rg.tensor([-3.0, 0.5, 2.0])).tolist()
        [-2.0, 0.0, 1.0]
    """

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):  # noqa: A002
        return F.softshrink(input, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class Hardshrink(Module):
    """Applies the hard shrinkage x (|x| > lambd), 0 (else) elementwise.

    Args:
        lambd: the half-width of the interval sent to 0. Default: 0.5.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Hardshrink(1.0)(rg.tensor([-3.0, 0.5, 2.0])).tolist()
        [-3.0, 0.0, 2.0]
    """

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):  # noqa: A002
        return F.hardshrink(input, self.lambd)

    def extra_repr(self):
        return str(self.lambd)


class Threshold(Module):
    """Replaces each element x <= threshold by ``value``: y = x if x > threshold else value.

    Args:
        threshold: the value to threshold at.
        value: the value to replace with.
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Threshold(0.1, 20.0)(rg.tensor([0.0, 0.5])).tolist()
        [20.0, 0.5]
    """

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):  # noqa: A002
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        inplace = ", inplace=True" if self.inplace else ""
        return f"threshold={self.threshold}, value={self.value}{inplace}"
