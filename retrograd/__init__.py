"""retrograd: backpropagation through CNNs and Transformers, visible, verifiable and fast.

A PyTorch-style deep-learning framework on NumPy. ``retrograd.tensor`` makes tensors,
``retrograd.autograd`` differentiates them, ``retrograd.nn`` builds models.
"""

from retrograd._allocator import keep_freed_memory
from retrograd.tensor import Tensor  # first: the ops and the engine import it
from retrograd._operands import where

from retrograd import autograd, dtypes, random  # noqa: E402
from retrograd.api import (
    abs, add, allclose, amax, amin, argmax, argmin, chunk, clamp, clip, cos, div, exp, flatten,
    gather, is_tensor, log, log_softmax, logsumexp, masked_fill, matmul, max, maximum, mean, min,
    minimum, mul, numel, permute, pow, relu, reshape, rsqrt, sigmoid, sin, softmax, split, sqrt,
    squeeze, std, sub, sum, tanh, transpose, unsqueeze, var, norm,
)
from retrograd.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from retrograd.creation import (
    arange, as_tensor, cat, concat, empty, empty_like, eye, from_numpy, full, full_like,
    linspace, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm, stack,
    tensor, zeros, zeros_like,
)
from retrograd.dtypes import (
    bfloat16, bool, dtype, float16, float32, float64, int8, int16, int32, int64, uint8,
)
from retrograd.random import get_rng_state, manual_seed, seed, set_rng_state
from retrograd.threads import get_num_threads, set_num_threads
from retrograd import datasets, nn, optim, utils  # noqa: E402
from retrograd import models  # noqa: E402  (after nn: the case studies are built from it)
from retrograd.utils.serialization import load, save  # noqa: E402

keep_freed_memory()

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "as_tensor", "from_numpy", "zeros", "ones", "full", "empty", "arange",
    "linspace", "eye", "randn", "rand", "randint", "randperm", "zeros_like", "ones_like",
    "full_like", "empty_like", "randn_like", "rand_like", "cat", "concat", "stack", "where",
    "manual_seed", "seed", "get_rng_state", "set_rng_state", "no_grad", "enable_grad",
    "set_grad_enabled", "is_grad_enabled", "autograd", "nn", "optim", "utils", "models",
    "datasets", "dtypes", "random", "dtype", "float16",
    "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
    "add", "sub", "mul", "div", "matmul", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh",
    "sigmoid", "relu", "abs", "clamp", "clip", "pow", "maximum", "minimum", "sum", "mean",
    "var", "std", "norm", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "softmax",
    "log_softmax", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute",
    "masked_fill", "is_tensor", "numel", "allclose", "gather", "split", "chunk", "save", "load",
    "profiler", "amp", "autocast", "get_num_threads", "set_num_threads",
]


def __getattr__(name):
    """``retrograd.profiler`` (torch.profiler's name for inspect/'s profiler),
    ``retrograd.inspect``, ``retrograd.amp`` and ``retrograd.autocast`` load on first use: the
    tools are not start-up work for every program that imports retrograd."""
    import importlib

    if name in ("profiler", "inspect", "amp"):
        return importlib.import_module(f"retrograd.{name}")
    if name == "autocast":
        return importlib.import_module("retrograd.amp").autocast
    raise AttributeError(f"module 'retrograd' has no attribute {name!r}")
