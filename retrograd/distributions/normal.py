"""Normal: the Gaussian distribution N(loc, scale^2)."""

import math
import numbers

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd import random as _random
from retrograd.autograd.grad_mode import no_grad
from retrograd.distributions.distribution import Distribution
from retrograd.tensor import Tensor, make_tensor

__all__ = ["Normal"]

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


class Normal(Distribution):
    """A normal distribution with mean ``loc`` and standard deviation ``scale`` (> 0), for
    each entry of their broadcast shape (the batch_shape). Numbers become tensors of the
    other argument's dtype (the default float dtype when both are numbers).

    ``sample`` draws loc + eps * scale with eps ~ N(0, 1) from retrograd's generator, without
    gradient; ``rsample`` draws the same way but differentiably (the reparameterization:
    dx/dloc = 1, dx/dscale = eps).
    log_prob(x) = -(x - loc)^2 / (2 scale^2) - log(scale) - log(sqrt(2 pi)),
    entropy = 1/2 + log(sqrt(2 pi)) + log(scale).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.distributions import Normal
        >>> d = Normal(rg.tensor([0.0, 1.0]), 2.0)
        >>> d.batch_shape, d.rsample((3,)).shape
        ((2,), (3, 2))
        >>> d.log_prob(rg.tensor([0.0, 1.0]))
        tensor([-1.6121, -1.6121])
    """

    has_rsample = True
    _parameter_names = ("loc", "scale")

    def __init__(self, loc, scale, validate_args=None):
        loc, scale = _broadcast_all(loc, scale)
        self.loc, self.scale = loc, scale
        super().__init__(loc.shape, (), validate_args)
        if self._validate_args:
            self._validate_params()

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale ** 2

    def sample(self, sample_shape=()):
        with no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps = make_tensor(_random.normal(0.0, 1.0, shape, self.loc._data.dtype))
        return self.loc + eps * self.scale

    def log_prob(self, value):
        value = _value(value, self.loc)
        if self._validate_args and np.isnan(value._data).any():
            raise ValueError(f"Normal.log_prob: value holds nan (shape {tuple(value.shape)})")
        variance = self.scale ** 2
        return -((value - self.loc) ** 2) / (2 * variance) - self.scale.log() - _LOG_SQRT_2PI

    def entropy(self):
        return 0.5 + _LOG_SQRT_2PI + self.scale.log()

    def _validate_params(self):
        scale = self.scale._data
        if not np.all(scale > 0):
            raise self._invalid("parameter scale", self.scale, "GreaterThan(lower_bound=0.0)",
                                scale[~(scale > 0)])
        if np.isnan(self.loc._data).any():
            raise self._invalid("parameter loc", self.loc, "Real()", self.loc)


def _value(value, like):
    if isinstance(value, Tensor):
        return value
    if isinstance(value, numbers.Real):
        return make_tensor(np.asarray(value, dtype=like._data.dtype))
    raise TypeError(f"Normal.log_prob: value must be a Tensor or a number, got "
                    f"{_checks.describe(value)}")


def _broadcast_all(loc, scale):
    """loc and scale as tensors of one shape; numbers take the other's dtype."""
    for name, v in (("loc", loc), ("scale", scale)):
        if not isinstance(v, (Tensor, numbers.Real)) or isinstance(v, bool):
            raise TypeError(f"Normal: {name} must be a Tensor or a number, got "
                            f"{_checks.describe(v)}")
    tensors = [v for v in (loc, scale) if isinstance(v, Tensor)]
    dtype = tensors[0]._data.dtype if tensors else _dt.default_float.np
    loc, scale = (v if isinstance(v, Tensor) else make_tensor(np.asarray(v, dtype=dtype))
                  for v in (loc, scale))
    if not (loc.is_floating_point() and scale.is_floating_point()):
        loc, scale = loc.float(), scale.float()
    shape = np.broadcast_shapes(tuple(loc.shape), tuple(scale.shape))
    return loc.expand(*shape), scale.expand(*shape)
