"""Activation functions: relu, leaky_relu, gelu, tanh, sigmoid, softmax, log_softmax."""

import warnings

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.ops.activation import Gelu, LeakyRelu
from retrograd.tensor import Tensor

__all__ = ["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "softmax", "log_softmax"]


def relu(input, inplace=False):  # noqa: A002 - PyTorch's argument name
    """y = max(x, 0) elementwise; the gradient at x = 0 is 0 (PyTorch's convention).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.relu(rg.tensor([-1.0, 0.0, 2.0]))
        tensor([0., 0., 2.])
    """
    _check_tensor(input, "relu")
    return _maybe_inplace(input, input.relu(), inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):  # noqa: A002
    """y = x if x > 0 else negative_slope * x; the gradient at x = 0 is negative_slope.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.leaky_relu(rg.tensor([-2.0, 3.0]), 0.5)
        tensor([-1.,  3.])
    """
    _check_floating(input, "leaky_relu")
    return _maybe_inplace(input, LeakyRelu.apply(input, negative_slope=negative_slope), inplace)


def gelu(input, approximate="none"):  # noqa: A002
    """y = x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Twice differentiable.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.gelu(rg.tensor([0.0, 1.0])).tolist()]
        [0.0, 0.8413]
    """
    _check_floating(input, "gelu")
    _checks.one_of("gelu", "approximate", approximate, ("none", "tanh"))
    return Gelu.apply(input, approximate=approximate)


def tanh(input):  # noqa: A002
    """y = tanh(x) elementwise.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.tanh(rg.zeros(2))
        tensor([0., 0.])
    """
    _check_tensor(input, "tanh")
    return input.tanh()


def sigmoid(input):  # noqa: A002
    """y = 1 / (1 + exp(-x)) elementwise (no overflow for large |x|).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.sigmoid(rg.zeros(2))
        tensor([0.5, 0.5])
    """
    _check_tensor(input, "sigmoid")
    return input.sigmoid()


def softmax(input, dim=None, dtype=None):  # noqa: A002
    """y = exp(x) / sum(exp(x), dim), computed without overflow.

    ``dim=None`` picks PyTorch's legacy implicit dim (0 for 0-, 1- and 3-D inputs, else 1)
    with a warning; ``dtype`` casts the input first.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.softmax(rg.zeros(2, 4), dim=1)
        tensor([[0.25, 0.25, 0.25, 0.25],
                [0.25, 0.25, 0.25, 0.25]])
    """
    x = _prepare_softmax_input(input, dim, dtype, "softmax")
    return x.softmax(_softmax_dim(x, dim, "softmax"))


def log_softmax(input, dim=None, dtype=None):  # noqa: A002
    """y = x - log(sum(exp(x), dim)), computed without overflow (see softmax for dim=None).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.log_softmax(rg.zeros(1, 2), dim=-1)
        tensor([[-0.6931, -0.6931]])
    """
    x = _prepare_softmax_input(input, dim, dtype, "log_softmax")
    return x.log_softmax(_softmax_dim(x, dim, "log_softmax"))


def _prepare_softmax_input(input, dim, dtype, op):  # noqa: A002
    _check_tensor(input, op)
    return input.to(dtype) if dtype is not None else input


def _softmax_dim(x, dim, op):
    if dim is not None:
        return dim
    dim = 0 if x.ndim in (0, 1, 3) else 1
    warnings.warn(f"{op}: implicit dimension choice has been deprecated (as in PyTorch); "
                  f"using dim={dim} for an input of shape {x.shape}. Pass dim explicitly.",
                  UserWarning, stacklevel=3)
    return dim


def _maybe_inplace(input, out, inplace):  # noqa: A002
    """inplace=True writes the result into input (a recorded in-place copy, so gradients
    still flow through the activation) and returns input, as PyTorch does."""
    return input.copy_(out) if inplace else out


def _check_tensor(input, op):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")


def _check_floating(input, op):  # noqa: A002
    _check_tensor(input, op)
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{op}: expected a floating-point input, got dtype {input.dtype} "
                        f"(shape {input.shape})")
