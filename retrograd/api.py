"""Function forms of the Tensor methods, as in ``torch.exp(x)`` or ``torch.sum(x, dim)``."""

from retrograd._operands import where
from retrograd.tensor import Tensor
# ordering, scans, triangles, einsum, matrix products, sampling (their own modules)
from retrograd._einsum import einsum
from retrograd._ordering import argsort, sort, topk
from retrograd._products import addmm, baddbmm, bmm, mm, outer
from retrograd._sampling import multinomial
from retrograd._scan import cumprod, cumsum
from retrograd._triangular import tril, triu

__all__ = [
    "add", "sub", "mul", "div", "matmul", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh",
    "sigmoid", "relu", "abs", "clamp", "clip", "pow", "maximum", "minimum", "sum", "mean",
    "var", "std", "norm", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "softmax",
    "log_softmax", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute",
    "masked_fill", "where", "is_tensor", "numel", "allclose", "gather", "split", "chunk",
    "sort", "argsort", "topk", "cumsum", "cumprod", "tril", "triu", "einsum", "mm", "bmm",
    "addmm", "baddbmm", "outer", "multinomial",
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
