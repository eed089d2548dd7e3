"""Function forms of the Tensor methods, as in ``torch.exp(x)`` or ``torch.sum(x, dim)``."""

from retrograd._operands import where
from retrograd.tensor import Tensor

__all__ = [
    "add", "sub", "mul", "div", "matmul", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh",
    "sigmoid", "relu", "abs", "clamp", "clip", "pow", "maximum", "minimum", "sum", "mean",
    "var", "std", "norm", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "softmax",
    "log_softmax", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute",
    "masked_fill", "where", "is_tensor", "numel", "allclose", "gather", "split", "chunk",
]


def _method(name):
    def function(input, *args, **kwargs):  # noqa: A002 - PyTorch's argument name
        return getattr(input, name)(*args, **kwargs)

    function.__name__ = name
    function.__doc__ = f"Same as ``input.{name}(...)``; see ``Tensor.{name}``."
    return function


add, sub, mul, div, matmul = (_method(n) for n in ("add", "sub", "mul", "div", "matmul"))
exp, log, sqrt, rsqrt, sin, cos = (
    _method(n) for n in ("exp", "log", "sqrt", "rsqrt", "sin", "cos"))
tanh, sigmoid, relu, abs, clamp, clip = (  # noqa: A001
    _method(n) for n in ("tanh", "sigmoid", "relu", "abs", "clamp", "clip"))
pow, maximum, minimum = (_method(n) for n in ("pow", "maximum", "minimum"))  # noqa: A001
sum, mean, var, std, norm, max, min = (  # noqa: A001
    _method(n) for n in ("sum", "mean", "var", "std", "norm", "max", "min"))
amax, amin, argmax, argmin, logsumexp = (
    _method(n) for n in ("amax", "amin", "argmax", "argmin", "logsumexp"))
softmax, log_softmax, reshape, flatten = (
    _method(n) for n in ("softmax", "log_softmax", "reshape", "flatten"))
squeeze, unsqueeze, transpose, permute, masked_fill = (
    _method(n) for n in ("squeeze", "unsqueeze", "transpose", "permute", "masked_fill"))
gather, split, chunk, numel, allclose = (
    _method(n) for n in ("gather", "split", "chunk", "numel", "allclose"))


def is_tensor(obj):
    return isinstance(obj, Tensor)
