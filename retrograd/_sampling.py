"""multinomial, as torch.multinomial: draw category indices from rows of non-negative
weights, with or without replacement, from retrograd's generator (``manual_seed`` makes the
draws reproducible). Sampling has no gradient: the result is an int64 tensor.

With replacement, each draw inverts the row's cumulative distribution at a uniform number.
Without replacement, the exponential race: each category gets the key E / w (E ~ Exp(1)),
and the num_samples smallest keys win, in order. That is the same distribution as drawing one
category at a time and removing it (the first key is the minimum of independent exponentials
with rates w, which is category i with probability w_i / sum w, and the race then continues
among the rest), done in one vectorized step. Categories of weight 0 come only after every
positive one, in index order (PyTorch also returns them then, in its own order).
"""

import numpy as np

from retrograd import _checks
from retrograd import random as _random
from retrograd.dtypes import is_floating
from retrograd.tensor import Tensor, make_tensor

__all__ = ["multinomial"]


def multinomial(input, num_samples, replacement=False, *, generator=None):  # noqa: A002
    """Indices drawn from the categories of each row of ``input`` (weights, not necessarily
    summing to 1): shape (num_samples,) for a 1-D input, (rows, num_samples) for 2-D.

    Example:
        >>> import retrograd as rg
        >>> _ = rg.manual_seed(0)
        >>> draws = rg.multinomial(rg.tensor([0.0, 1.0, 3.0]), 4, replacement=True)
        >>> draws.dtype, bool((draws > 0).all())
        (retrograd.int64, True)
    """
    weights = _checked_weights(input)
    num_samples = _checks.integer("multinomial", "num_samples", num_samples)
    if num_samples <= 0:
        raise RuntimeError(f"multinomial: cannot sample num_samples <= 0 samples, got "
                           f"{num_samples}")
    categories = weights.shape[-1]
    if not replacement and num_samples > categories:
        raise RuntimeError(f"multinomial: cannot sample num_samples = {num_samples} > "
                           f"{categories} categories (input of shape {tuple(input.shape)}) "
                           f"without replacement")
    rows = weights.reshape(-1, categories)
    _check_rows(rows, input)
    rng = _numpy_generator(generator)
    draw = _with_replacement if replacement else _without_replacement
    indices = draw(rows, num_samples, rng) if rows.shape[0] else \
        np.zeros((0, num_samples), np.int64)
    return make_tensor(indices.astype(np.int64, copy=False).reshape(weights.shape[:-1]
                                                                    + (num_samples,)))


def _numpy_generator(generator):
    """The NumPy Generator behind ``generator`` (retrograd's default one when None)."""
    try:
        return _random.numpy_generator(generator)
    except TypeError:
        raise TypeError(f"multinomial: generator must be a retrograd.Generator or None, got "
                        f"{_checks.describe(generator)}") from None


def _checked_weights(input):  # noqa: A002
    t = _checks.instance_of("multinomial", "input", input, Tensor)
    if not is_floating(t._data.dtype):
        raise RuntimeError(f"multinomial: only supports floating-point dtypes for input, got "
                           f"{t.dtype} (shape {tuple(t.shape)})")
    if t.ndim not in (1, 2):
        raise RuntimeError(f"multinomial: prob_dist must be 1 or 2 dim, got shape "
                           f"{tuple(t.shape)}")
    return t._data.astype(np.float64)


def _check_rows(rows, input):  # noqa: A002
    bad = ~np.isfinite(rows) | (rows < 0)
    if bad.any():
        value = rows[bad][0]
        raise RuntimeError(f"multinomial: probability tensor contains either inf, nan or "
                           f"element < 0 (found {value} in input of shape "
                           f"{tuple(input.shape)})")
    empty = rows.sum(axis=1) <= 0
    if empty.any():
        where = f"row {int(np.argmax(empty))} of " if input.ndim == 2 else ""
        raise RuntimeError(f"multinomial: invalid multinomial distribution (sum of "
                           f"probabilities <= 0) in {where}input of shape {tuple(input.shape)}")


def _with_replacement(rows, num_samples, rng):
    """Inverse CDF: the first category whose cumulative weight exceeds u ~ U[0, 1). The CDF
    ends at exactly 1 (a number divided by itself), so every u < 1 finds a category, and one
    of weight 0 (a flat step) is never the first to exceed u."""
    cdf = np.cumsum(rows, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((rows.shape[0], num_samples))
    return np.stack([np.searchsorted(c, draws, side="right") for c, draws in zip(cdf, u)])


def _without_replacement(rows, num_samples, rng):
    """The exponential race of the module docstring (keys E / w; inf for weight 0)."""
    with np.errstate(divide="ignore"):
        keys = rng.standard_exponential(rows.shape) / rows
    return np.argsort(keys, axis=1, kind="stable")[:, :num_samples]
