"""Samplers: the order in which a DataLoader visits a map-style data set, with PyTorch's
names (``torch.utils.data.sampler``).

A sampler is an iterable of indices (``SequentialSampler``, ``RandomSampler``,
``SubsetRandomSampler``, ``WeightedRandomSampler``); a ``BatchSampler`` groups another
sampler's indices into lists, one per batch. Samplers run in the main process, so the batches
a loader yields do not depend on its number of workers.

A random sampler draws from its ``generator`` (a ``retrograd.Generator``), or from
``retrograd.default_generator`` when it has none. It draws its whole epoch when iteration
starts (``iter(sampler)``), not index by index, so what else draws from the same generator
while the epoch runs does not change its order. ``RandomSampler`` draws with
``retrograd.randperm`` and, like PyTorch's, draws one more (unused) permutation once an epoch of
whole permutations is exhausted, so each epoch advances its generator by the same draws as
PyTorch's sampler does.
"""

import numpy as np

from retrograd import _checks
from retrograd import random as _random
from retrograd.tensor import Tensor

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]


def _randperm(n, generator):
    """A permutation of range(n) drawn by ``retrograd.randperm``, looked up when called.
    PyTorch's samplers call ``torch.randperm`` the same way, so code that replaces the public
    sampling functions (a test pinning its random numbers) reaches the samplers too."""
    import retrograd

    return retrograd.randperm(n, generator=generator).numpy()


class Sampler:
    """Base class of samplers: subclasses define ``__iter__`` (the indices of one epoch) and
    usually ``__len__``.

    Example:
        >>> from retrograd.utils.data import Sampler
        >>> class Backwards(Sampler):
        ...     def __init__(self, n):
        ...         self.n = n
        ...     def __iter__(self):
        ...         return iter(range(self.n - 1, -1, -1))
        ...     def __len__(self):
        ...         return self.n
        >>> list(Backwards(3))
        [2, 1, 0]
    """

    def __init__(self, data_source=None):
        pass  # PyTorch deprecated the argument; it is accepted and ignored, as there

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class SequentialSampler(Sampler):
    """The indices ``0, 1, ..., len(data_source) - 1`` in order.

    Example:
        >>> from retrograd.utils.data import SequentialSampler
        >>> list(SequentialSampler(range(4)))
        [0, 1, 2, 3]
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """Random indices of ``data_source``: a new permutation every epoch, or ``num_samples``
    independent draws when ``replacement=True``.

    Without replacement, ``num_samples`` larger than the data set takes whole permutations
    one after the other and then the start of one more (as PyTorch).

    Args:
        data_source: the data set (only its length is used).
        replacement: draw with replacement.
        num_samples: indices per epoch (default: ``len(data_source)``).
        generator: the ``retrograd.Generator`` to draw from (default: the default generator).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import RandomSampler
        >>> order = list(RandomSampler(range(5), generator=rg.Generator().manual_seed(0)))
        >>> sorted(order)
        [0, 1, 2, 3, 4]
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement should be a boolean value, but got "
                            f"replacement={replacement!r}")
        if num_samples is not None:
            _checks.positive_int("RandomSampler", "num_samples", num_samples)
        _random.numpy_generator(generator)  # a clear error now for a wrong generator
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self):
        n, count = len(self.data_source), self.num_samples
        draw = _random.numpy_generator(self.generator)
        if n == 0:
            return iter([])
        if self.replacement:
            return iter(draw.integers(0, n, size=count, dtype=np.int64).tolist())
        rounds = [_randperm(n, self.generator) for _ in range(count // n)]
        if count % n:
            rounds.append(_randperm(n, self.generator)[:count % n])
            return iter(np.concatenate(rounds).tolist())
        return self._then_one_more_draw(np.concatenate(rounds).tolist(), n)

    def _then_one_more_draw(self, order, n):
        """``order``, then one more permutation drawn and discarded once it is exhausted:
        PyTorch's RandomSampler draws the permutation of the last count % n samples even when
        that count is 0, so an epoch advances the generator by the same draws here."""
        yield from order
        _randperm(n, self.generator)

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a new random order every epoch.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import SubsetRandomSampler
        >>> sampler = SubsetRandomSampler([10, 20, 30], generator=rg.Generator().manual_seed(1))
        >>> sorted(sampler)
        [10, 20, 30]
    """

    def __init__(self, indices, generator=None):
        _random.numpy_generator(generator)
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        order = _randperm(len(self.indices), self.generator)
        return iter([self.indices[i] for i in order.tolist()])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices in ``[0, len(weights))``, index ``i`` drawn with probability
    ``weights[i] / sum(weights)`` (the weights need not sum to 1); without replacement an
    index comes at most once.

    Args:
        weights: a 1-D sequence (or tensor) of non-negative weights, one per sample.
        num_samples: indices per epoch.
        replacement: draw with replacement.
        generator: the ``retrograd.Generator`` to draw from.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import WeightedRandomSampler
        >>> g = rg.Generator().manual_seed(0)
        >>> list(WeightedRandomSampler([0.0, 1.0, 0.0], 4, generator=g))
        [1, 1, 1, 1]
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        _checks.positive_int("WeightedRandomSampler", "num_samples", num_samples)
        if not isinstance(replacement, bool):
            raise ValueError(f"WeightedRandomSampler: replacement should be a boolean value, "
                            f"but got replacement={replacement!r}")
        _random.numpy_generator(generator)
        self.weights = _probabilities(weights)
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator
        positive = int(np.count_nonzero(self.weights))
        if not replacement and self.num_samples > positive:
            raise RuntimeError(f"WeightedRandomSampler: cannot draw {self.num_samples} samples "
                               f"without replacement from {positive} indices of non-zero "
                               f"weight")

    def __iter__(self):
        draw = _random.numpy_generator(self.generator)
        p = self.weights / self.weights.sum()
        picked = draw.choice(len(p), size=self.num_samples, replace=self.replacement, p=p)
        return iter(picked.astype(np.int64).tolist())

    def __len__(self):
        return self.num_samples


def _probabilities(weights):
    array = np.asarray(weights._data if isinstance(weights, Tensor) else weights)
    if array.ndim != 1:
        raise ValueError(f"WeightedRandomSampler: weights should be a 1d sequence but given "
                         f"weights have shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise TypeError(f"WeightedRandomSampler: weights must be numbers, got dtype "
                        f"{array.dtype}")
    array = array.astype(np.float64)
    if array.size == 0 or not np.isfinite(array).all() or (array < 0).any() \
            or array.sum() <= 0:
        raise RuntimeError("WeightedRandomSampler: weights must be finite, non-negative and "
                           f"not all zero, got {array.tolist()[:8]}"
                           f"{' ...' if array.size > 8 else ''}")
    return array


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size`` (the last one shorter,
    or left out when ``drop_last``).

    Example:
        >>> from retrograd.utils.data import BatchSampler, SequentialSampler
        >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
        [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
        >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=True))
        [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    """

    def __init__(self, sampler, batch_size, drop_last):
        self.batch_size = _checks.positive_int("BatchSampler", "batch_size", batch_size)
        if not isinstance(drop_last, bool):
            raise ValueError(f"BatchSampler: drop_last should be a boolean value, but got "
                             f"drop_last={drop_last!r}")
        self.sampler = sampler
        self.drop_last = drop_last

    def __iter__(self):
        # iter(sampler) now, not at the first batch: a random sampler draws its epoch here
        return self._batches(iter(self.sampler))

    def _batches(self, indices):
        while True:
            batch = _take(indices, self.batch_size)
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return -(-len(self.sampler) // self.batch_size)


def _take(iterator, count):
    batch = []
    for index in iterator:
        batch.append(index)
        if len(batch) == count:
            break
    return batch
