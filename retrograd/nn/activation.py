"""Activation layers: ReLU, LeakyReLU, GELU, Tanh, Sigmoid, Softmax, LogSoftmax."""

from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["ReLU", "LeakyReLU", "GELU", "Tanh", "Sigmoid", "Softmax", "LogSoftmax"]


class ReLU(Module):
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

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


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
