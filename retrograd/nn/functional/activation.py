"""Activation functions: relu, leaky_relu, gelu, tanh, sigmoid, softmax, log_softmax, silu,
mish, softplus, elu, hardtanh, relu6, prelu, logsigmoid; and the tail: glu, hardswish,
hardsigmoid, selu, celu, softmin, softsign, tanhshrink, softshrink, hardshrink, threshold,
gumbel_softmax."""

import warnings

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.ops.activation import Gelu, LeakyRelu
from retrograd.creation import empty_like, zeros_like
from retrograd.ops.activation_extra import Elu, Hardtanh, LogSigmoid, Mish, Prelu, Silu, Softplus
from retrograd.ops.activation_tail import (
    Hardshrink, Hardsigmoid, Hardswish, ScaledElu, Softshrink, Threshold,
)
from retrograd.tensor import Tensor

__all__ = ["relu", "leaky_relu", "gelu", "tanh", "sigmoid", "softmax", "log_softmax", "silu",
           "mish", "softplus", "elu", "hardtanh", "relu6", "prelu", "logsigmoid", "glu",
           "hardswish", "hardsigmoid", "selu", "celu", "softmin", "softsign", "tanhshrink",
           "softshrink", "hardshrink", "threshold", "gumbel_softmax"]

# PyTorch's SELU constants (Klambauer et al. 2017)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


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


def silu(input, inplace=False):  # noqa: A002
    """y = x * sigmoid(x) (SiLU, swish) elementwise; finite for every finite x.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.silu(rg.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-0.2689, 0.0, 1.7616]
    """
    _check_floating(input, "silu")
    return _maybe_inplace(input, Silu.apply(_saved_copy(input, inplace)), inplace)


def mish(input, inplace=False):  # noqa: A002
    """y = x * tanh(softplus(x)) elementwise; finite for every finite x.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.mish(rg.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-0.3034, 0.0, 1.944]
    """
    _check_floating(input, "mish")
    return _maybe_inplace(input, Mish.apply(_saved_copy(input, inplace)), inplace)


def softplus(input, beta=1.0, threshold=20.0):  # noqa: A002
    """y = log(1 + exp(beta x)) / beta, and y = x where beta x > threshold (PyTorch's linear
    regime, exactly: the comparison is strict and made on beta x).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.softplus(rg.tensor([-30.0, 0.0, 30.0])).tolist()]
        [0.0, 0.6931, 30.0]
    """
    _check_floating(input, "softplus")
    beta = _checks.number("softplus", "beta", beta)
    threshold = _checks.number("softplus", "threshold", threshold)
    return Softplus.apply(input, beta=beta, threshold=threshold)


def elu(input, alpha=1.0, inplace=False):  # noqa: A002
    """y = x where x > 0, alpha * (exp(x) - 1) elsewhere; the gradient at x = 0 is alpha.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.elu(rg.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-0.6321, 0.0, 2.0]
    """
    _check_floating(input, "elu")
    alpha = _checks.number("elu", "alpha", alpha)
    return _maybe_inplace(input, Elu.apply(_saved_copy(input, inplace), alpha=alpha), inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):  # noqa: A002
    """y = min(max(x, min_val), max_val); the gradient is 0 at the bounds themselves (unlike
    clamp, as PyTorch).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.hardtanh(rg.tensor([-2.0, 0.5, 3.0]))
        tensor([-1. ,  0.5,  1. ])
    """
    return _hardtanh(input, min_val, max_val, inplace, "hardtanh")


def relu6(input, inplace=False):  # noqa: A002
    """y = min(max(x, 0), 6): hardtanh(x, 0, 6) (the gradient is 0 at 0 and at 6).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.relu6(rg.tensor([-1.0, 3.0, 8.0]))
        tensor([0., 3., 6.])
    """
    return _hardtanh(input, 0.0, 6.0, inplace, "relu6")


def prelu(input, weight):  # noqa: A002
    """y = x where x > 0, weight * x elsewhere, with weight (C,) one slope per channel
    (dim 1 of input) or (1,)/() one shared slope. Inputs of fewer than 2 dims have one channel.
    The result has the input's dtype (a weight of another float dtype is cast to it).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.prelu(rg.tensor([[-1.0, -1.0], [2.0, -4.0]]), rg.tensor([0.5, 0.25]))
        tensor([[-0.5 , -0.25],
                [ 2.  , -1.  ]])
    """
    _check_floating(input, "prelu")
    return Prelu.apply(input, _prelu_weight(input, weight))


def logsigmoid(input):  # noqa: A002
    """y = log(sigmoid(x)) = -softplus(-x), computed without overflow for any |x|.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.logsigmoid(rg.tensor([-100.0, 0.0, 100.0])).tolist()]
        [-100.0, -0.6931, -0.0]
    """
    _check_floating(input, "logsigmoid")
    return LogSigmoid.apply(input)


def glu(input, dim=-1):  # noqa: A002
    """The gated linear unit: a * sigmoid(b), where a and b are the two halves of ``input``
    along ``dim`` (whose size must be even). Composed of differentiable ops (a split, sigmoid
    and a product), with PyTorch's values and gradients: twice differentiable.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.glu(rg.tensor([[2.0, 4.0, 0.0, 100.0]]))
        tensor([[1., 4.]])
    """
    _check_floating(input, "glu")
    if input.ndim == 0:
        raise RuntimeError("glu: glu does not support scalars because halving size must be even "
                           "(as PyTorch)")
    axis = _checks.dim("glu", dim, input.ndim)
    if input.shape[axis] % 2:
        raise RuntimeError(f"glu: halving dimension must be even, but dimension {axis} is size "
                           f"{input.shape[axis]} (input of shape {input.shape})")
    a, b = input.chunk(2, axis)
    return a * b.sigmoid()


def hardswish(input, inplace=False):  # noqa: A002
    """y = x * min(max(x + 3, 0), 6) / 6 (MobileNetV3); the gradient is 0 at x = -3 and 1 at
    x = 3, PyTorch's convention.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.hardswish(rg.tensor([-4.0, 0.0, 1.5, 4.0]))
        tensor([-0.   ,  0.   ,  1.125,  4.   ])
    """
    _check_floating(input, "hardswish")
    return _maybe_inplace(input, Hardswish.apply(_saved_copy(input, inplace)), inplace)


def hardsigmoid(input, inplace=False):  # noqa: A002
    """y = min(max(x + 3, 0), 6) / 6; the gradient is 1/6 strictly inside (-3, 3), else 0.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.hardsigmoid(rg.tensor([-4.0, 0.0, 1.5, 4.0]))
        tensor([0.  , 0.5 , 0.75, 1.  ])
    """
    _check_floating(input, "hardsigmoid")
    return _maybe_inplace(input, Hardsigmoid.apply(input), inplace)


def selu(input, inplace=False):  # noqa: A002
    """y = scale * (x if x > 0 else alpha * (exp(x) - 1)), with PyTorch's alpha =
    1.6732632423543772 and scale = 1.0507009873554805; the gradient at x = 0 is scale * alpha.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.selu(rg.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-1.1113, 0.0, 2.1014]
    """
    _check_floating(input, "selu")
    out = ScaledElu.apply(_saved_copy(input, inplace), alpha=_SELU_ALPHA, scale=_SELU_SCALE,
                          input_scale=1.0)
    return _maybe_inplace(input, out, inplace)


def celu(input, alpha=1.0, inplace=False):  # noqa: A002
    """y = max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) (alpha != 0); the gradient at
    x = 0 is 1.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.celu(rg.tensor([-1.0, 0.0, 2.0]), alpha=0.5).tolist()]
        [-0.4323, 0.0, 2.0]
    """
    _check_floating(input, "celu")
    alpha = _checks.number("celu", "alpha", alpha)
    if alpha == 0:
        raise RuntimeError("celu: alpha cannot be 0 (it divides the input), as in PyTorch")
    out = ScaledElu.apply(_saved_copy(input, inplace), alpha=alpha, scale=1.0,
                          input_scale=1.0 / alpha)
    return _maybe_inplace(input, out, inplace)


def softmin(input, dim=None, _stacklevel=3, dtype=None):  # noqa: A002
    """y = softmax(-x) along ``dim`` (see softmax for dim=None and dtype).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.softmin(rg.tensor([[0.0, 0.0, 200.0]]), dim=1).tolist()
        [[0.5, 0.5, 0.0]]
    """
    x = _prepare_softmax_input(input, dim, dtype, "softmin")
    if dtype is None and not _dt.is_floating(x._data.dtype):
        raise TypeError(f"softmin: expected a floating-point input (or dtype=), got dtype "
                        f"{x.dtype} (shape {x.shape})")
    return (-x).softmax(_softmax_dim(x, dim, "softmin"))


def softsign(input):  # noqa: A002
    """y = x / (1 + |x|), composed as PyTorch does (the gradient 1 / (1 + |x|)^2).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.softsign(rg.tensor([-3.0, 0.0, 1.0]))
        tensor([-0.75,  0.  ,  0.5 ])
    """
    _check_tensor(input, "softsign")
    return input / (input.abs() + 1)


def tanhshrink(input):  # noqa: A002
    """y = x - tanh(x), composed as PyTorch does.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> [round(v, 4) for v in F.tanhshrink(rg.tensor([-1.0, 0.0, 2.0])).tolist()]
        [-0.2384, 0.0, 1.036]
    """
    _check_tensor(input, "tanhshrink")
    return input - input.tanh()


def softshrink(input, lambd=0.5):  # noqa: A002
    """y = x - lambd where x > lambd, x + lambd where x < -lambd, 0 elsewhere (lambd >= 0);
    the gradient is 1 where |x| > lambd, 0 elsewhere (also at |x| = lambd).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.softshrink(rg.tensor([-2.0, 0.25, 1.0]))
        tensor([-1.5,  0. ,  0.5])
    """
    _check_floating(input, "softshrink")
    lambd = _checks.number("softshrink", "lambd", lambd)
    if not lambd >= 0:
        raise RuntimeError(f"softshrink: lambda must be greater or equal to 0, but found to be "
                           f"{lambd}")
    return Softshrink.apply(input, lambd=lambd)


def hardshrink(input, lambd=0.5):  # noqa: A002
    """y = x where |x| > lambd, 0 elsewhere; the gradient is 1 where |x| > lambd, else 0.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.hardshrink(rg.tensor([-2.0, 0.25, 1.0]))
        tensor([-2.,  0.,  1.])
    """
    _check_floating(input, "hardshrink")
    return Hardshrink.apply(input, lambd=_checks.number("hardshrink", "lambd", lambd))


def threshold(input, threshold, value, inplace=False):  # noqa: A002
    """y = value where x <= threshold, x elsewhere; the gradient is 0 where x <= threshold.
    Integer inputs keep their dtype (value is converted to it), as in PyTorch.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.threshold(rg.tensor([-1.0, 0.5, 2.0]), 0.5, -9.0)
        tensor([-9., -9.,  2.])
    """
    _check_tensor(input, "threshold")
    if input.dtype == _dt.bool:
        raise TypeError(f"threshold: expected a numeric input, got dtype {input.dtype} "
                        f"(shape {input.shape})")
    out = Threshold.apply(input, threshold=_checks.number("threshold", "threshold", threshold),
                          value=_checks.number("threshold", "value", value))
    return _maybe_inplace(input, out, inplace)


def gumbel_softmax(logits, tau=1, hard=False, eps=1e-10, dim=-1):
    """A sample of the Gumbel-softmax distribution: softmax((logits + g) / tau) along ``dim``,
    g ~ Gumbel(0, 1) drawn from retrograd's default generator (as -log of Exp(1) draws, as
    PyTorch). With hard=True the result is the one-hot vector of the sample's argmax, whose
    gradient is the soft sample's (straight-through: y_hard - y_soft.detach() + y_soft).
    ``eps`` is deprecated and has no effect (a warning, as PyTorch).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> y = F.gumbel_softmax(rg.zeros(2, 5), tau=0.5, hard=True)
        >>> y.sum(dim=-1).tolist()
        [1.0, 1.0]
    """
    _check_floating(logits, "gumbel_softmax")
    tau = _checks.number("gumbel_softmax", "tau", tau)
    if eps != 1e-10:
        warnings.warn("gumbel_softmax: `eps` parameter is deprecated and has no effect.",
                      UserWarning, stacklevel=2)
    axis = _checks.dim("gumbel_softmax", dim, logits.ndim)
    gumbels = -empty_like(logits).exponential_().log()
    y_soft = ((logits + gumbels) / tau).softmax(axis)
    if not hard:
        return y_soft
    index = y_soft.detach().argmax(dim=axis, keepdim=True)
    y_hard = zeros_like(logits).scatter(axis, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def _hardtanh(input, min_val, max_val, inplace, op):  # noqa: A002
    _check_tensor(input, op)
    if input.dtype == _dt.bool:
        raise TypeError(f"{op}: expected a numeric input, got dtype {input.dtype} "
                        f"(shape {input.shape})")
    min_val = _checks.number(op, "min_val", min_val)
    max_val = _checks.number(op, "max_val", max_val)
    if min_val > max_val:
        raise ValueError(f"{op}: min_val cannot be greater than max_val, got min_val={min_val} "
                         f"and max_val={max_val}")
    out = Hardtanh.apply(input, min_val=min_val, max_val=max_val)
    return _maybe_inplace(input, out, inplace)


def _prelu_weight(input, weight):  # noqa: A002
    """weight shaped to broadcast along input's channel dim: () for one slope, else
    (C, 1, ..., 1) (C = input.shape[1]; inputs of fewer than 2 dims have one channel)."""
    if not isinstance(weight, Tensor):
        raise TypeError(f"prelu: weight must be a Tensor, got {type(weight).__name__}")
    if weight.ndim > 1:
        raise ValueError(f"prelu: expected weight to be a scalar or 1-D tensor, got shape "
                         f"{weight.shape}")
    if not _dt.is_floating(weight._data.dtype):
        raise TypeError(f"prelu: expected a floating-point weight, got dtype {weight.dtype} "
                        f"(shape {weight.shape})")
    if weight.dtype != input.dtype:
        # NOTE: PyTorch refuses mixed dtypes, except under autocast, where a float32 PReLU
        # weight meets a bfloat16 activation and the result is bfloat16: cast the weight
        # (differentiably) to the input's dtype, which gives that result in both cases.
        weight = weight.to(input.dtype)
    channels = input.shape[1] if input.ndim >= 2 else 1
    if weight.numel() == 1:
        return weight.reshape(())
    if weight.numel() != channels:
        raise ValueError(f"prelu: weight of shape {weight.shape} has {weight.numel()} slopes but "
                         f"the input of shape {input.shape} has {channels} channel(s) (dim 1): "
                         f"expected 1 or {channels}")
    return weight.reshape((channels,) + (1,) * (input.ndim - 2))


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


def _saved_copy(input, inplace):  # noqa: A002
    """What an op that saves its input for backward should see when its result is then
    written into that input: a copy (as PyTorch keeps the original of an in-place op), since
    the saved input itself is overwritten."""
    return input.clone() if inplace and input.requires_grad else input


def _check_tensor(input, op):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")


def _check_floating(input, op):  # noqa: A002
    _check_tensor(input, op)
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{op}: expected a floating-point input, got dtype {input.dtype} "
                        f"(shape {input.shape})")
