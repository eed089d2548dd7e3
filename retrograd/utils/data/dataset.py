"""Data sets: map-style (``Dataset``, ``TensorDataset``, ``ArrayDataset``, ``Subset``,
``ConcatDataset``, ``StackDataset``) and iterable-style (``IterableDataset``, ``ChainDataset``), and
``random_split``, with PyTorch's names (``torch.utils.data.dataset``).

A map-style data set answers ``dataset[i]`` with one sample; the DataLoader asks for the
samples of a batch and collates them. Array-backed data sets offer a fast path:
``get_batch(indices)`` takes the whole batch with one fancy index on the arrays (and one
batched transform), and the loader uses it whenever it has no ``collate_fn`` of the user's.
``TensorDataset``, ``ArrayDataset`` (and so the image data sets in ``retrograd.datasets``) and
``Subset`` of them all have it. An iterable-style data set is a stream: the loader reads it
in order and cannot shuffle it (see ``get_worker_info`` for sharding it over workers).
"""

import bisect
import itertools
import math
import warnings

import numpy as np

from retrograd import _checks
from retrograd import random as _random
from retrograd.tensor import Tensor, as_array, make_tensor
from retrograd.utils.data._utils.collate import default_collate

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "ArrayDataset", "ConcatDataset",
           "StackDataset", "ChainDataset", "Subset", "random_split"]


class Dataset:
    """A map-style data set: ``dataset[i]`` is sample ``i`` for ``0 <= i < len(dataset)``.

    Subclasses define ``__getitem__`` and ``__len__``. A subclass whose samples live in arrays
    may also define ``get_batch(indices)`` returning a whole collated batch (see
    ``TensorDataset``); ``DataLoader`` then calls it instead of ``__getitem__`` per sample.
    ``a + b`` concatenates two data sets (a ``ConcatDataset``).

    Example:
        >>> from retrograd.utils.data import Dataset
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return i * i
        >>> [Squares()[i] for i in range(4)]
        [0, 1, 4, 9]
        >>> len(Squares() + Squares())
        8
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise LengthUndefined(f"{type(self).__name__} must define __len__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class LengthUndefined(NotImplementedError, TypeError):
    """``len()`` of a data set that does not define ``__len__``. A NotImplementedError that
    says what to define, and a TypeError, which is what ``len()`` raises in PyTorch (whose
    Dataset has no ``__len__``), so ``list(iterable_dataset)`` and code catching TypeError
    work as with PyTorch."""


class IterableDataset(Dataset):
    """An iterable-style data set: ``iter(dataset)`` yields the samples, as a stream.

    Subclasses define ``__iter__`` (and may define ``__len__``, which ``len(loader)`` uses).
    With ``num_workers > 0`` every worker iterates its own copy of the data set, so each
    sample comes once per worker unless ``__iter__`` reads only its share, found with
    ``get_worker_info()`` (see its example). ``a + b`` chains two streams (a
    ``ChainDataset``).

    Example:
        >>> from retrograd.utils.data import DataLoader, IterableDataset
        >>> class Count(IterableDataset):
        ...     def __iter__(self):
        ...         return iter(range(5))
        >>> [b.tolist() for b in DataLoader(Count(), batch_size=2)]
        [[0, 1], [2, 3], [4]]
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


def _check_index(index, length, who):
    """A Python int in [0, length), accepting negative indices as sequences do."""
    if isinstance(index, Tensor):
        index = index.item()
    index = _checks.integer(who, "index", index)
    if not -length <= index < length:
        raise IndexError(f"{who}: index {index} is out of range for a data set of "
                         f"{length} samples")
    return index % length


def _as_index_array(indices, length, who):
    """A 1-D int64 array of valid indices (negative ones wrapped), with a clear error."""
    array = np.asarray(indices._data if isinstance(indices, Tensor) else indices)
    if array.size == 0:
        return np.zeros(0, np.int64)
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise TypeError(f"{who}: indices must be a 1-D sequence of ints, got an array of "
                        f"shape {array.shape} and dtype {array.dtype}")
    bad = (array < -length) | (array >= length)
    if bad.any():
        raise IndexError(f"{who}: index {array[bad][0]} is out of range for a data set of "
                         f"{length} samples")
    return array.astype(np.int64) % max(length, 1)


class TensorDataset(Dataset):
    """Samples are slices along the first dim of equally long tensors.

    ``dataset[i]`` is ``(t[i] for t in tensors)`` as a tuple. ``get_batch(indices)`` takes a
    whole batch with one fancy index per tensor (the DataLoader fast path).

    Args:
        *tensors: tensors (or NumPy arrays) with the same size in dim 0.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import TensorDataset
        >>> ds = TensorDataset(rg.arange(6).reshape(3, 2), rg.tensor([0, 1, 0]))
        >>> len(ds)
        3
        >>> ds[1]
        (tensor([2, 3]), tensor(1))
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else make_tensor(as_array(t)) for t in tensors)
        for t in tensors:
            if t.ndim == 0:
                raise ValueError("TensorDataset: tensors need at least one dim (the sample "
                                 "dim), got a 0-d tensor")
        if len({t.shape[0] for t in tensors}) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            raise ValueError(f"TensorDataset: all tensors need the same size in dim 0 (one "
                             f"row per sample), got shapes {shapes}")
        self.tensors = tensors

    def __len__(self):
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        i = _check_index(index, len(self), "TensorDataset")
        return tuple(_take(t, i) for t in self.tensors)

    def get_batch(self, indices):
        """The batch ``indices`` as a tuple of tensors, one fancy index per tensor."""
        idx = _as_index_array(indices, len(self), "TensorDataset")
        return tuple(_take(t, idx) for t in self.tensors)


def _take(t, index):
    """Row(s) ``index`` of a tensor: a differentiable index when it requires grad, else a raw
    array index (no graph node, no per-sample op overhead)."""
    if t.requires_grad:
        return t[index]
    # NOTE: a[i, ...] is a 0-d array for 1-D a (a[i] would be a NumPy scalar), and a copy
    # keeps a sample from aliasing the data set's storage.
    return make_tensor(np.array(t._data[index, ...]))


class ArrayDataset(Dataset):
    """Samples ``(transform(data[i]), target_transform(targets[i]))`` from two NumPy arrays.

    The base of the image data sets (``retrograd.datasets``): ``data`` holds the raw samples
    (e.g. uint8 images (N, H, W) or (N, H, W, C)), ``targets`` the labels. The transform gets
    one raw sample (an array) and returns a tensor or an array (wrapped into a tensor). An
    integer scalar target comes back as a Python int, like torchvision's labels; collating
    makes an int64 tensor of them.

    ``get_batch(indices)`` is the fast path: one fancy index on ``data`` and ``targets``, then
    ``transform.apply_batch`` on the whole (N, ...) array when the transform has one (every
    transform in ``retrograd.datasets.transforms`` does); otherwise it falls back to one
    transform call per sample.

    Args:
        data: array (N, ...) of samples.
        targets: array (N, ...) of targets (labels).
        transform: callable on one sample; None keeps the sample as a tensor.
        target_transform: callable on one target; None keeps it.

    Example:
        >>> import numpy as np
        >>> from retrograd.utils.data import ArrayDataset
        >>> ds = ArrayDataset(np.arange(6, dtype=np.float32).reshape(3, 2), np.array([2, 0, 1]))
        >>> ds[0]
        (tensor([0., 1.]), 2)
        >>> ds.get_batch([2, 0])
        (tensor([[4., 5.],
                [0., 1.]]), tensor([1, 2]))
    """

    def __init__(self, data, targets, transform=None, target_transform=None):
        data, targets = np.asarray(data), np.asarray(targets)
        if data.ndim == 0 or targets.ndim == 0 or len(data) != len(targets):
            raise ValueError(f"{type(self).__name__}: data and targets need the same number "
                             f"of samples in dim 0, got shapes {data.shape} and {targets.shape}")
        self.data = data
        self.targets = targets
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        i = _check_index(index, len(self), type(self).__name__)
        sample = np.array(self.data[i])  # a copy: a transform may work in place
        if self.transform is not None:
            sample = self.transform(sample)
        return _to_tensor(sample), self._target(self.targets[i])

    def _target(self, target):
        if target.ndim == 0 and target.dtype.kind in "iu":
            target = int(target)
        if self.target_transform is not None:
            return self.target_transform(target)
        return target if isinstance(target, int) else make_tensor(np.array(target))

    def get_batch(self, indices):
        """The batch ``indices`` as ``(samples, targets)`` tensors, taken in one go."""
        idx = _as_index_array(indices, len(self), type(self).__name__)
        if self.transform is not None and not hasattr(self.transform, "apply_batch"):
            return default_collate([self[int(i)] for i in idx])
        samples = self.data[idx]
        if self.transform is not None:
            samples = self.transform.apply_batch(samples)
        return _to_tensor(samples), self._batch_targets(idx)

    def _batch_targets(self, idx):
        targets = self.targets[idx]
        if self.target_transform is None:
            return make_tensor(targets.astype(np.int64) if targets.dtype.kind in "iu"
                               else targets)
        if hasattr(self.target_transform, "apply_batch"):
            return _to_tensor(self.target_transform.apply_batch(targets))
        return default_collate([self._target(t) for t in targets])

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}"]
        lines += [f"    {line}" for line in self._extra_repr_lines()]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)

    def _extra_repr_lines(self):
        return []


def _to_tensor(x):
    if isinstance(x, Tensor):
        return x
    return make_tensor(as_array(x))


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import Subset, TensorDataset
        >>> sub = Subset(TensorDataset(rg.arange(10)), [7, 2])
        >>> len(sub), sub[0]
        (2, (tensor(7),))
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices
        self._index_array = _as_index_array(indices, len(dataset), "Subset")

    def __len__(self):
        return len(self._index_array)

    def __getitem__(self, index):
        i = _check_index(index, len(self), "Subset")
        return self.dataset[int(self._index_array[i])]

    def get_batch(self, indices):
        """The batch ``indices`` of the subset, through the parent's fast path if it has one."""
        idx = self._index_array[_as_index_array(indices, len(self), "Subset")]
        if hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(idx)
        return default_collate([self.dataset[int(i)] for i in idx])

    def __getitems__(self, indices):
        """The samples at ``indices`` as a list (PyTorch's batched read), through the
        parent's ``__getitems__`` when it has one."""
        idx = [int(i) for i in self._index_array[_as_index_array(indices, len(self), "Subset")]]
        if getattr(self.dataset, "__getitems__", None):
            return self.dataset.__getitems__(idx)
        return [self.dataset[i] for i in idx]


class ConcatDataset(Dataset):
    """The samples of several map-style data sets, one after the other.

    Attributes:
        datasets: the data sets, as a list.
        cumulative_sizes: ``cumulative_sizes[k]`` is the number of samples in datasets 0..k.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import ConcatDataset, TensorDataset
        >>> both = ConcatDataset([TensorDataset(rg.arange(3)), TensorDataset(rg.arange(10, 12))])
        >>> len(both), both[3], both.cumulative_sizes
        (5, (tensor(10),), [3, 5])
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for dataset in self.datasets:
            if isinstance(dataset, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset (use "
                                "ChainDataset to chain streams)")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        i = _check_index(index, len(self), "ConcatDataset")
        which = bisect.bisect_right(self.cumulative_sizes, i)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][i - start]


class StackDataset(Dataset):
    """Samples made of the samples of several equally long data sets: a tuple of them
    (``StackDataset(a, b)``) or a dict (``StackDataset(image=a, label=b)``).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import StackDataset, TensorDataset
        >>> pairs = StackDataset(TensorDataset(rg.arange(3)), ["a", "b", "c"])
        >>> len(pairs), pairs[1]
        (3, ((tensor(1),), 'b'))
        >>> StackDataset(x=TensorDataset(rg.arange(3)), name=["a", "b", "c"])[2]
        {'x': (tensor(2),), 'name': 'c'}
    """

    def __init__(self, *args, **kwargs):
        if args and kwargs:
            raise ValueError("StackDataset: give data sets as positional arguments (samples "
                             "are tuples) or as keyword arguments (dicts), not both")
        if not args and not kwargs:
            raise ValueError("StackDataset: at least one dataset should be passed")
        self.datasets = args or kwargs
        lengths = [len(d) for d in (args or kwargs.values())]
        if len(set(lengths)) != 1:
            raise ValueError(f"StackDataset: size mismatch between datasets, got lengths "
                             f"{lengths}")
        self._length = lengths[0]

    def __len__(self):
        return self._length

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {key: d[index] for key, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)


class ChainDataset(IterableDataset):
    """Several iterable-style data sets read one after the other (each lazily, when the
    previous one is exhausted).

    Example:
        >>> from retrograd.utils.data import ChainDataset, IterableDataset
        >>> class Count(IterableDataset):
        ...     def __init__(self, n):
        ...         self.n = n
        ...     def __iter__(self):
        ...         return iter(range(self.n))
        ...     def __len__(self):
        ...         return self.n
        >>> chained = ChainDataset([Count(2), Count(3)])
        >>> list(chained), len(chained)
        ([0, 1, 0, 1, 2], 5)
    """

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for dataset in self.datasets:
            if not isinstance(dataset, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got "
                                f"{type(dataset).__name__}")
            yield from dataset

    def __len__(self):
        total = 0
        for dataset in self.datasets:
            if not isinstance(dataset, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got "
                                f"{type(dataset).__name__}")
            total += len(dataset)
        return total


def random_split(dataset, lengths, generator=None, *, seed=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are ints summing to ``len(dataset)``, or fractions summing to 1 (each gets
    ``floor(fraction * n)`` samples and the remainder is dealt one by one from the first
    subset on, as PyTorch does; an empty subset is warned about). The permutation is drawn
    from ``generator`` (``retrograd.default_generator`` when None), or from a new generator
    seeded with ``seed`` (retrograd's shorthand for ``generator=Generator().manual_seed(seed)``).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import TensorDataset, random_split
        >>> g = rg.Generator().manual_seed(0)
        >>> train, val = random_split(TensorDataset(rg.arange(10)), [0.8, 0.2], generator=g)
        >>> len(train), len(val)
        (8, 2)
        >>> sorted(train.indices + val.indices) == list(range(10))
        True
    """
    if seed is not None:
        if generator is not None:
            raise ValueError("random_split: give a generator or a seed, not both")
        generator = _random.Generator().manual_seed(seed)
    n = len(dataset)
    lengths = _split_lengths(lengths, n)
    order = _random.permutation(n, generator=generator).tolist()
    subsets, start = [], 0
    for length in lengths:
        subsets.append(Subset(dataset, order[start:start + length]))
        start += length
    return subsets


def _split_lengths(lengths, n):
    """Sample counts from ``lengths``: ints summing to n, or fractions in [0, 1] summing to 1."""
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths is empty; give ints summing to the data set's "
                         "size or fractions summing to 1")
    if all(_checks.is_int(x) for x in lengths):
        lengths = [_checks.non_negative_int("random_split", f"lengths[{i}]", x)
                   for i, x in enumerate(lengths)]
        if sum(lengths) != n:
            raise ValueError(f"random_split: lengths {lengths} sum to {sum(lengths)}, but the "
                             f"data set has {n} samples")
        return lengths
    lengths = [_checks.probability("random_split", f"lengths[{i}]", x)
               for i, x in enumerate(lengths)]
    if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6):
        raise ValueError(f"random_split: fractions {lengths} must sum to 1, they sum to "
                         f"{sum(lengths)}")
    counts = [int(math.floor(n * x)) for x in lengths]
    for k in range(n - sum(counts)):
        counts[k % len(counts)] += 1
    for i, count in enumerate(counts):
        if count == 0:
            warnings.warn(f"random_split: length of split at index {i} is 0; this might "
                          f"result in an empty dataset", stacklevel=3)
    return counts
