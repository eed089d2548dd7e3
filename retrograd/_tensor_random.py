"""Random sampling, part of PyTorch's tail (issue 19): the in-place fills of a tensor
(bernoulli_, random_, exponential_, log_normal_, geometric_, cauchy_; normal_ and uniform_
are in tensor.py) and Tensor.bernoulli, installed on Tensor as ``_tensor_math`` explains, and
the functions bernoulli, normal, poisson and randint_like.

Every draw comes from retrograd's default generator (``manual_seed``), or from the
``retrograd.Generator`` given as ``generator=`` where PyTorch takes one. Samples have no
gradient. Floating samples are drawn in float32 (float64 for float64 tensors) and
rounded to the tensor's dtype.
"""

import numbers

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd import random as _random
from retrograd.tensor import Tensor, _overwrite, make_tensor

__all__ = ["Methods", "bernoulli", "normal", "poisson", "randint_like"]


def _draw_dtype(dtype):
    return np.float64 if dtype == np.float64 else np.float32


def _uniform(rng, shape, dtype):
    return rng.random(shape, dtype=_draw_dtype(dtype))


def _standard_normal(rng, shape, dtype):
    return rng.standard_normal(shape, dtype=_draw_dtype(dtype))


def _floating_tensor(op, t):
    if not _dt.is_floating(t._data.dtype):
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {t.dtype}")
    return t


def _probabilities(op, p):
    """p (an array) checked to lie in [0, 1]."""
    if p.size and not (np.all(p >= 0) and np.all(p <= 1)):
        raise RuntimeError(f"{op}: probabilities must be in [0, 1], got values from "
                           f"{float(np.min(p))} to {float(np.max(p))}")
    return p


def _fill(t, op, values):
    """Overwrite t with values (an array of t's shape), rounded to t's dtype."""
    return _overwrite(t, op, np.asarray(values).astype(t._data.dtype, copy=False))


def _random_bounds(dtype, low, high):
    """random_'s range [low, high): by default every integer the dtype holds exactly (up to
    2^mantissa + 1 for floats, as PyTorch)."""
    if high is None:
        if dtype == np.bool_:
            high = 2
        elif dtype.kind in "iu":
            high = int(np.iinfo(dtype).max) + 1
        else:
            mantissa = np.finfo(dtype).nmant if dtype.kind == "f" else 7   # bfloat16: 7
            high = 2 ** (mantissa + 1) + 1
    if low >= high:
        raise RuntimeError(f"random_: expects from ({low}) < to ({high})")
    return low, high


class Methods:
    """The methods this module adds to Tensor (see the module docstring)."""

    def bernoulli(self, p=None, *, generator=None):
        """Samples 0 or 1 (in self's dtype): 1 with probability self's element, or with
        probability p when p is given."""
        rng = _random.numpy_generator(generator)
        if p is None:
            probs = _probabilities("bernoulli", _floating_tensor("bernoulli", self)._data)
        else:
            probs = _probabilities("bernoulli", np.asarray(p, dtype=np.float64))
        draws = _uniform(rng, self.shape, self._data.dtype) < probs
        return make_tensor(draws.astype(self._data.dtype))

    def bernoulli_(self, p=0.5, *, generator=None):
        """Fill with 0 or 1: 1 with probability p (a number, or a tensor broadcast to self)."""
        probs = p._data if isinstance(p, Tensor) else np.asarray(p, dtype=np.float64)
        _probabilities("bernoulli_", probs)
        rng = _random.numpy_generator(generator)
        return _fill(self, "bernoulli_", _uniform(rng, self.shape, self._data.dtype) < probs)

    def random_(self, *args, generator=None, **kwargs):
        """random_(to) or random_(from=0, to=None): fill with integers drawn uniformly from
        [from, to) (by default every integer the dtype holds exactly)."""
        low, high = _random_args(args, kwargs)
        low, high = _random_bounds(self._data.dtype, low, high)
        rng = _random.numpy_generator(generator)
        return _fill(self, "random_", rng.integers(low, high, size=self.shape, dtype=np.int64)
                     if high <= 2 ** 63 else rng.integers(low, high, size=self.shape))

    def exponential_(self, lambd=1.0, *, generator=None):
        """Fill with samples of the exponential distribution of rate lambd."""
        _floating_tensor("exponential_", self)
        if lambd <= 0:
            raise RuntimeError(f"exponential_: expects lambd > 0.0, got {lambd}")
        rng = _random.numpy_generator(generator)
        return _fill(self, "exponential_", rng.exponential(1.0 / lambd, self.shape))

    def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
        """Fill with exp(N(mean, std^2)) samples."""
        _floating_tensor("log_normal_", self)
        if std <= 0:
            raise RuntimeError(f"log_normal_: expects std > 0.0, got {std}")
        rng = _random.numpy_generator(generator)
        return _fill(self, "log_normal_", np.exp(rng.standard_normal(self.shape) * std + mean))

    def geometric_(self, p, *, generator=None):
        """Fill with the number of Bernoulli(p) trials up to the first success (1, 2, ...)."""
        if not 0 < p < 1:
            raise RuntimeError(f"geometric_: expects p in (0, 1), got {p}")
        rng = _random.numpy_generator(generator)
        return _fill(self, "geometric_", rng.geometric(p, self.shape))

    def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
        """Fill with samples of the Cauchy distribution (median, scale sigma)."""
        _floating_tensor("cauchy_", self)
        if sigma <= 0:
            raise RuntimeError(f"cauchy_: expects sigma > 0.0, got {sigma}")
        rng = _random.numpy_generator(generator)
        return _fill(self, "cauchy_", median + sigma * rng.standard_cauchy(self.shape))


def _random_args(args, kwargs):
    """random_'s overloads: (to), (from, to) and the keywords from= and to=."""
    low, high = kwargs.pop("from", None), kwargs.pop("to", None)
    if kwargs:
        raise TypeError(f"random_: unexpected keywords {sorted(kwargs)}")
    if len(args) == 1 and low is None and high is None:
        low, high = 0, args[0]
    elif len(args) == 1:
        low = args[0]
    elif len(args) == 2:
        low, high = args
    elif len(args) > 2:
        raise TypeError(f"random_: takes at most 2 positional arguments, got {len(args)}")
    low = 0 if low is None else _checks.integer("random_", "from", low)
    high = None if high is None else _checks.integer("random_", "to", high)
    return low, high


# ---------------------------------------------------------------------------- functions
def bernoulli(input, p=None, *, generator=None):  # noqa: A002 - PyTorch's name
    """0 or 1 samples: 1 with probability input's element (or p)."""
    return _checks.instance_of("bernoulli", "input", input, Tensor).bernoulli(
        p, generator=generator)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, requires_grad=False):
    """Samples of N(mean, std^2): mean and std tensors (broadcast) or numbers; with two numbers,
    ``size`` gives the shape (and ``dtype`` the dtype, default float32)."""
    rng = _random.numpy_generator(generator)
    tensors = [t for t in (mean, std) if isinstance(t, Tensor)]
    if tensors:
        if size is not None:
            raise TypeError("normal: size is only accepted when mean and std are numbers")
        for t in tensors:
            _floating_tensor("normal", t)
        means = mean._data if isinstance(mean, Tensor) else mean
        stds = std._data if isinstance(std, Tensor) else std
        target = tensors[0]._data.dtype
        try:
            shape = np.broadcast_shapes(np.shape(means), np.shape(stds))
        except ValueError:
            raise ValueError(f"normal: mean of shape {np.shape(means)} and std of shape "
                             f"{np.shape(stds)} cannot be broadcast together") from None
    else:
        if size is None:
            raise TypeError("normal: with a number mean and std, give size=")
        means, stds = mean, std
        shape = _checks.sizes("normal", (size,))
        target = _dt.as_numpy_dtype(dtype) if dtype is not None else _dt.default_float.np
    if np.any(np.asarray(stds) < 0):
        raise RuntimeError("normal: expects std >= 0.0")
    values = _standard_normal(rng, shape, target) * stds + means
    t = make_tensor(np.asarray(values).astype(target, copy=False))
    return t.requires_grad_(True) if requires_grad else t


def poisson(input, generator=None):  # noqa: A002 - PyTorch's name
    """Samples of Poisson(rate) for each non-negative rate in input, in input's dtype."""
    rates = _floating_tensor("poisson", _checks.instance_of("poisson", "input", input, Tensor))
    if np.any(rates._data < 0):
        raise RuntimeError("poisson: rates must be >= 0")
    rng = _random.numpy_generator(generator)
    return make_tensor(rng.poisson(rates._data.astype(np.float64)).astype(rates._data.dtype))


def randint_like(input, low=0, high=None, *, dtype=None, requires_grad=False,  # noqa: A002
                 generator=None):
    """Integers drawn uniformly from [low, high) (randint_like(input, high) means low = 0),
    with input's shape and, unless dtype is given, input's dtype."""
    t = _checks.instance_of("randint_like", "input", input, Tensor)
    if high is None:
        low, high = 0, low
    for name, value in (("low", low), ("high", high)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise TypeError(f"randint_like: {name} must be an int, got {value!r}")
    if low >= high:
        raise RuntimeError(f"randint_like: expects low ({low}) < high ({high})")
    target = _dt.as_numpy_dtype(dtype) if dtype is not None else t._data.dtype
    rng = _random.numpy_generator(generator)
    out = make_tensor(rng.integers(low, high, size=t.shape).astype(target))
    return out.requires_grad_(True) if requires_grad else out
