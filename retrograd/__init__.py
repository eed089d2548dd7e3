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
from retrograd.random import (
    Generator, default_generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state,
)
from retrograd.threads import get_num_threads, set_num_threads
# devices, dtypes and PyTorch's switches (docs/pytorch-compatibility.md, "Devices and dtypes")
from retrograd import accelerator, backends, cuda  # noqa: E402
from retrograd._compile import compile  # noqa: A004 - torch.compile
from retrograd._printing import set_printoptions
from retrograd._size import Size
from retrograd._tensor_types import (
    BFloat16Tensor, BoolTensor, ByteTensor, CharTensor, DoubleTensor, FloatTensor, HalfTensor,
    IntTensor, LongTensor, ShortTensor, set_default_tensor_type,
)
from retrograd.autograd.grad_mode import inference_mode, is_inference_mode_enabled
from retrograd.backends import (
    are_deterministic_algorithms_enabled, get_float32_matmul_precision,
    set_float32_matmul_precision, use_deterministic_algorithms,
)
from retrograd.device import device, get_default_device, set_default_device  # the class
from retrograd.dtypes import finfo, get_default_dtype, iinfo, set_default_dtype
# NOTE: PyTorch's dtype aliases shadow the builtins float and int in this module (only here)
from retrograd.dtypes import (  # noqa: A004
    float16 as half, float32 as float, float64 as double, int16 as short, int32 as int,
    int64 as long,
)
# ordering, scans, triangles, einsum, matrix products, sampling; linalg and distributions
from retrograd.api import (  # noqa: E402
    addmm, argsort, baddbmm, bmm, cumprod, cumsum, einsum, mm, multinomial, outer, sort, topk,
    tril, triu,
)
from retrograd import distributions, linalg, return_types  # noqa: E402
# the tail of PyTorch's functions (retrograd/api_extra.py), names not defined above
from retrograd import api_extra as _api_extra  # noqa: E402
from retrograd.nn.functional.dropout import torch_dropout as dropout  # noqa: E402
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
    "Generator", "default_generator", "initial_seed",
    "set_grad_enabled", "is_grad_enabled", "autograd", "nn", "optim", "utils", "models",
    "datasets", "dtypes", "random", "dtype", "float16",
    "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool",
    "add", "sub", "mul", "div", "matmul", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh",
    "sigmoid", "relu", "abs", "clamp", "clip", "pow", "maximum", "minimum", "sum", "mean",
    "var", "std", "norm", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "softmax",
    "log_softmax", "reshape", "flatten", "squeeze", "unsqueeze", "transpose", "permute",
    "masked_fill", "is_tensor", "numel", "allclose", "gather", "split", "chunk", "save", "load",
    "profiler", "amp", "autocast", "get_num_threads", "set_num_threads",
    "device", "get_default_device", "set_default_device", "cuda", "accelerator", "backends",
    "Size", "half", "float", "double", "short", "int", "long", "finfo", "iinfo",
    "get_default_dtype", "set_default_dtype", "set_default_tensor_type", "FloatTensor",
    "DoubleTensor", "HalfTensor", "BFloat16Tensor", "LongTensor", "IntTensor", "ShortTensor",
    "CharTensor", "ByteTensor", "BoolTensor", "inference_mode", "is_inference_mode_enabled",
    "set_printoptions", "compile", "set_float32_matmul_precision",
    "get_float32_matmul_precision", "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled",
    "sort", "argsort", "topk", "cumsum", "cumprod", "tril", "triu", "einsum", "mm", "bmm",
    "addmm", "baddbmm", "outer", "multinomial", "linalg", "distributions", "return_types",
]
_TAIL = [name for name in _api_extra.__all__ if name not in globals()]
globals().update({name: getattr(_api_extra, name) for name in _TAIL})
__all__ += _TAIL + ["dropout"]

# PyTorch's top-level spellings of nn.functional ops (torch.conv2d, torch.layer_norm,
# torch.cosine_similarity, ...), for those whose arguments come in the same order as the
# functional form's; the others (torch.embedding, torch.batch_norm, torch.instance_norm, ...)
# order them differently and are left out rather than given the wrong meaning.
_FUNCTIONAL_SPELLINGS = (
    "selu", "celu", "threshold", "hardshrink", "prelu", "pairwise_distance",
    "cosine_similarity", "bilinear", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d",
    "avg_pool1d", "adaptive_avg_pool1d", "adaptive_max_pool1d", "layer_norm", "group_norm",
    "rms_norm",
)
globals().update({name: getattr(nn.functional, name) for name in _FUNCTIONAL_SPELLINGS})
__all__ += list(_FUNCTIONAL_SPELLINGS)


def __getattr__(name):
    """``retrograd.profiler`` (torch.profiler's name for inspect/'s profiler),
    ``retrograd.inspect``, ``retrograd.amp``, ``retrograd.autocast`` and ``retrograd.explain``
    (the worked examples, callable: ``retrograd.explain("conv2d")``) load on first use: the
    tools are not start-up work for every program that imports retrograd."""
    import importlib

    if name in ("profiler", "inspect", "amp", "explain"):
        return importlib.import_module(f"retrograd.{name}")
    if name == "autocast":
        return importlib.import_module("retrograd.amp").autocast
    raise AttributeError(f"module 'retrograd' has no attribute {name!r}")
