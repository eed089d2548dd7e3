"""Categorical: one of K categories, by probabilities or logits."""

import math

import numpy as np

from retrograd import _checks
from retrograd.autograd.grad_mode import no_grad
from retrograd.distributions.distribution import Distribution
from retrograd.tensor import Tensor, make_tensor

__all__ = ["Categorical"]


def _multinomial(rows, draws):
    """``draws`` samples with replacement per row, by ``retrograd.multinomial`` looked up when
    called (as PyTorch's Categorical calls ``torch.multinomial``), so code that replaces the
    public sampling functions reaches ``sample`` too."""
    import retrograd

    return retrograd.multinomial(rows, draws, True)


class Categorical(Distribution):
    """A categorical distribution over {0, ..., K-1} for each entry of the batch.

    Args:
        probs: (*batch, K) non-negative weights (normalized over the last dim), or
        logits: (*batch, K) unnormalized log-probabilities (normalized with logsumexp).
        Exactly one of them.

    ``probs`` and ``logits`` are both available whichever was given (logits from probs are
    log(probs clamped to [eps, 1 - eps]), as PyTorch). ``sample`` returns int64 categories
    of shape sample_shape + batch_shape. ``log_prob(value)`` picks the normalized logit of
    each category (value broadcasts against batch_shape); ``entropy`` is -sum p log p, with
    p log p = 0 where p = 0. Gradients flow to probs or logits through both.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.distributions import Categorical
        >>> d = Categorical(logits=rg.tensor([0.0, 0.0, 0.0, 0.0]))
        >>> d.log_prob(rg.tensor(2)), d.entropy()
        (tensor(-1.3863), tensor(1.3863))
        >>> d.sample((5,)).shape
        (5,)
    """

    _parameter_names = ("probs", "logits")

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Categorical: either `probs` or `logits` must be specified, but "
                             "not both.")
        param = _param("probs" if probs is not None else "logits",
                       probs if probs is not None else logits)
        if probs is not None:
            self.__dict__["probs"] = param / param.sum(-1, keepdim=True)
        else:
            self.__dict__["logits"] = param - param.logsumexp(-1, keepdim=True)
        self._param = param
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], (), validate_args)
        if self._validate_args:
            self._validate_param(probs is not None)

    @property
    def probs(self):
        if "probs" not in self.__dict__:
            self.__dict__["probs"] = self.logits.softmax(-1)
        return self.__dict__["probs"]

    @property
    def logits(self):
        if "logits" not in self.__dict__:
            eps = float(np.finfo(self.probs._data.dtype).eps)
            self.__dict__["logits"] = self.probs.clamp(eps, 1 - eps).log()
        return self.__dict__["logits"]

    @property
    def param_shape(self):
        return tuple(self._param.shape)

    @property
    def support(self):
        return f"IntegerInterval(lower_bound=0, upper_bound={self._num_events - 1})"

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        draws = math.prod(shape[:len(shape) - len(self.batch_shape)])
        with no_grad():
            rows = self.probs.detach().reshape(-1, self._num_events)
            if rows.shape[0] == 0 or draws == 0:
                return make_tensor(np.zeros(shape, np.int64))
            samples = _multinomial(rows, draws)   # (rows, draws)
        return samples.T.reshape(shape)

    def log_prob(self, value):
        value = _checks.instance_of("Categorical.log_prob", "value", value, Tensor)
        if self._validate_args:
            self._validate_sample(value)
        index = value.long().unsqueeze(-1)
        shape = np.broadcast_shapes(tuple(index.shape[:-1]), self.batch_shape)
        logits = self.logits.expand(*shape, self._num_events)
        return logits.gather(-1, index.expand(*shape, 1)).squeeze(-1)

    def entropy(self):
        floor = float(np.finfo(self.logits._data.dtype).min)
        p_log_p = self.logits.clamp(min=floor) * self.probs
        return -p_log_p.sum(-1)

    def enumerate_support(self, expand=True):
        """The categories 0..K-1 as a (K, *batch) int64 tensor (expand=False: (K, 1, ...))."""
        values = np.arange(self._num_events, dtype=np.int64).reshape(
            (-1,) + (1,) * len(self.batch_shape))
        if expand:
            values = np.broadcast_to(values, (self._num_events,) + self.batch_shape).copy()
        return make_tensor(values)

    def _validate_param(self, is_probs):
        data = self._param._data
        if is_probs:
            bad = ~(data >= 0) | ~np.isfinite(data) | ~(data.sum(-1, keepdims=True) > 0)
            constraint = "Simplex()"
        else:
            bad = np.isnan(data)
            constraint = "IndependentConstraint(Real(), 1)"
        if bad.any():
            name = "probs" if is_probs else "logits"
            raise self._invalid(f"parameter {name}", self._param, constraint, self._param)

    def _validate_sample(self, value):
        data = value._data
        if data.dtype.kind not in "iuf" or data.dtype.kind == "f" and \
                np.any(data != np.floor(data)):
            raise ValueError(f"Categorical.log_prob: value must hold integer categories, got "
                             f"dtype {value.dtype}")
        if np.any((data < 0) | (data >= self._num_events)):
            raise ValueError(
                f"Expected value argument (Tensor of shape {tuple(value.shape)}) to be within "
                f"the support ({self.support}) of the distribution {self!r}, but found invalid "
                f"values:\n{value}")
        try:
            np.broadcast_shapes(data.shape, self.batch_shape)
        except ValueError:
            raise ValueError(f"Categorical.log_prob: value of shape {tuple(value.shape)} does "
                             f"not broadcast with batch_shape {self.batch_shape}") from None


def _param(name, value):
    t = _checks.instance_of("Categorical", name, value, Tensor)
    if t.ndim < 1:
        raise ValueError(f"Categorical: {name} must have at least one dimension (the "
                         f"categories), got shape {tuple(t.shape)}")
    return t if t.is_floating_point() else t.float()
