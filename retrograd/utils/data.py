"""Data sets and batching: ``Dataset``, ``TensorDataset``, ``ArrayDataset``, ``Subset``,
``random_split``, ``DataLoader`` and ``default_collate``, with PyTorch's names.

How a batch is made. A map-style data set answers ``dataset[i]`` with one sample; the loader
asks for ``batch_size`` samples and ``default_collate`` stacks them into tensors. That is one
Python call per sample, so array-backed data sets offer a fast path: ``get_batch(indices)``
takes the whole batch with one fancy index on the arrays (and one batched transform), and the
loader uses it whenever no ``collate_fn`` is given. ``TensorDataset``, ``ArrayDataset`` (and so
the image data sets in ``retrograd.datasets``) and ``Subset`` of them all have it.

Randomness. Shuffling draws from retrograd's generator (``retrograd.manual_seed`` makes it
reproducible), or from the loader's own generator when ``seed`` is given. ``DataLoader.
state_dict()`` holds the generator state at the start of the current epoch and the number of
batches already handed out, so a checkpoint taken mid-epoch resumes with exactly the batches
that were still to come.
"""

import collections.abc
import math
import numbers

import numpy as np

from retrograd import _checks
from retrograd import random as _random
from retrograd.creation import stack as _stack
from retrograd.tensor import Tensor, as_array, make_tensor

__all__ = ["Dataset", "TensorDataset", "ArrayDataset", "Subset", "random_split", "DataLoader",
           "default_collate"]


class Dataset:
    """A map-style data set: ``dataset[i]`` is sample ``i`` for ``0 <= i < len(dataset)``.

    Subclasses define ``__getitem__`` and ``__len__``. A subclass whose samples live in arrays
    may also define ``get_batch(indices)`` returning a whole collated batch (see
    ``TensorDataset``); ``DataLoader`` then calls it instead of ``__getitem__`` per sample.

    Example:
        >>> from retrograd.utils.data import Dataset
        >>> class Squares(Dataset):
        ...     def __len__(self):
        ...         return 4
        ...     def __getitem__(self, i):
        ...         return i * i
        >>> [Squares()[i] for i in range(4)]
        [0, 1, 4, 9]
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self):
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


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


def random_split(dataset, lengths, seed=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are ints summing to ``len(dataset)``, or fractions summing to 1 (each gets
    ``floor(fraction * n)`` samples and the remainder is dealt one by one from the first
    subset on, as PyTorch does). The permutation comes from retrograd's generator, or from
    a fresh generator seeded with ``seed``.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import TensorDataset, random_split
        >>> train, val = random_split(TensorDataset(rg.arange(10)), [0.8, 0.2], seed=0)
        >>> len(train), len(val)
        (8, 2)
        >>> sorted(train.indices + val.indices) == list(range(10))
        True
    """
    n = len(dataset)
    lengths = _split_lengths(lengths, n)
    generator = _random.generator() if seed is None else np.random.Generator(np.random.PCG64(seed))
    order = generator.permutation(n).tolist()
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
    return counts


class DataLoader:
    """Batches of a map-style data set, optionally shuffled each epoch.

    Each ``iter(loader)`` (each ``for batch in loader``) is one epoch: every sample exactly
    once, in order or in a new random order when ``shuffle=True``. The last batch is smaller
    when ``batch_size`` does not divide ``len(dataset)``, or left out when ``drop_last=True``.

    Batches: without ``collate_fn``, a data set with ``get_batch(indices)`` (TensorDataset,
    ArrayDataset, the image data sets, Subsets of them) makes each batch in one fancy index;
    other data sets are read sample by sample and stacked by ``default_collate``. With
    ``collate_fn``, the list of samples is always handed to it.

    Randomness and resuming: the order of an epoch is one permutation drawn at the start of
    the epoch, from retrograd's generator (``seed=None``) or from the loader's own generator
    seeded with ``seed``. ``state_dict()`` records that generator's state as it was before the
    draw and how many batches were handed out; after ``load_state_dict(state)``, the next
    ``iter(loader)`` continues that epoch with the remaining batches, bit for bit. With
    ``seed=None``, save and restore ``retrograd.get_rng_state()`` in the same checkpoint: the
    global generator also drives later epochs, random transforms and dropout.

    Args:
        dataset: a map-style data set (``__getitem__`` and ``__len__``).
        batch_size: samples per batch (a positive int).
        shuffle: draw a new order every epoch.
        drop_last: leave out the last batch when it is smaller than ``batch_size``.
        seed: seed of the loader's own generator; None uses retrograd's generator.
        collate_fn: turns a list of samples into a batch (default: ``default_collate``).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(rg.arange(10).reshape(5, 2), rg.tensor([0, 1, 0, 1, 1]))
        >>> loader = DataLoader(ds, batch_size=2)
        >>> len(loader)
        3
        >>> [y.tolist() for x, y in loader]
        [[0, 1], [0, 1], [1]]
        >>> shuffled = DataLoader(ds, batch_size=2, shuffle=True, seed=0)
        >>> sorted(v for _, y in shuffled for v in y.tolist())
        [0, 0, 1, 1, 1]
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 collate_fn=None):
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: expected a map-style data set (with __getitem__ and "
                            f"__len__), got {type(dataset).__name__}")
        batch_size = _checks.positive_int("DataLoader", "batch_size", batch_size)
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {collate_fn!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = seed
        self.collate_fn = collate_fn
        self._generator = None if seed is None else np.random.Generator(np.random.PCG64(seed))
        self._epoch = 0                # epochs started so far
        self._position = None          # batches handed out in the current epoch (None: none open)
        self._epoch_rng_state = None   # generator state before this epoch's permutation
        self._resume = False           # the next iter() continues the open epoch

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        if self._resume:
            self._resume = False
            order = self._epoch_order(self._epoch_rng_state)
        else:
            order = self._start_epoch()
        return self._batches(order, self._position)

    def _start_epoch(self):
        self._epoch += 1
        self._position = 0
        if not self.shuffle:
            self._epoch_rng_state = None
            return None
        generator = self._generator if self._generator is not None else _random.generator()
        self._epoch_rng_state = generator.bit_generator.state
        return generator.permutation(len(self.dataset))

    def _epoch_order(self, rng_state):
        """Redraw an epoch's permutation from a saved state, on a scratch generator (the
        live generator has already moved past this draw)."""
        if rng_state is None:
            return None
        bit_generator = getattr(np.random, rng_state["bit_generator"])()
        bit_generator.state = rng_state
        return np.random.Generator(bit_generator).permutation(len(self.dataset))

    def _batches(self, order, start):
        n, size = len(self.dataset), self.batch_size
        for k in range(start, len(self)):
            begin, end = k * size, min((k + 1) * size, n)
            indices = order[begin:end] if order is not None else np.arange(begin, end)
            batch = self._fetch(indices)
            self._position = k + 1
            yield batch
        self._position = None

    def _fetch(self, indices):
        if self.collate_fn is None and hasattr(self.dataset, "get_batch"):
            return self.dataset.get_batch(indices)
        samples = [self.dataset[int(i)] for i in indices]
        return (self.collate_fn or default_collate)(samples)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self):
        """What a checkpoint needs to continue the current epoch bit for bit: the epoch count,
        the batches already handed out (None between epochs), the generator state before the
        epoch's permutation, and the loader's own generator state (None with seed=None)."""
        return {
            "epoch": self._epoch,
            "batches_done": self._position,
            "epoch_rng_state": self._epoch_rng_state,
            "rng_state": None if self._generator is None else self._generator.bit_generator.state,
            "num_samples": len(self.dataset),
            "batch_size": self.batch_size,
            "shuffle": self.shuffle,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state):
        """Restore ``state_dict()``; the next ``iter(loader)`` continues the saved epoch (or
        starts the next one when the state was saved between epochs)."""
        saved = (state.get("num_samples"), state.get("batch_size"), state.get("shuffle"),
                 state.get("drop_last"))
        here = (len(self.dataset), self.batch_size, self.shuffle, self.drop_last)
        if saved != here:
            raise ValueError(
                f"DataLoader.load_state_dict: the state was saved for (num_samples, batch_size, "
                f"shuffle, drop_last) = {saved}, but this loader has {here}")
        if (state["rng_state"] is None) != (self._generator is None):
            raise ValueError("DataLoader.load_state_dict: the state was saved by a loader "
                             f"{'without' if state['rng_state'] is None else 'with'} a seed, "
                             f"this one has seed={self.seed!r}")
        if self._generator is not None:
            self._generator.bit_generator.state = state["rng_state"]
        self._epoch = state["epoch"]
        self._position = state["batches_done"]
        self._epoch_rng_state = state["epoch_rng_state"]
        self._resume = self._position is not None


def default_collate(batch):
    """Stack a list of samples into a batch, field by field.

    Tensors and NumPy arrays are stacked along a new dim 0 (a tensor that requires grad is
    stacked differentiably); Python ints become an int64 tensor, floats a float32 tensor,
    bools a bool tensor, NumPy scalars keep their dtype; tuples, lists, namedtuples and dicts
    are collated per field and keep their type; strings are returned as a list.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import default_collate
        >>> x, y = default_collate([(rg.zeros(2), 1), (rg.ones(2), 0)])
        >>> x.shape, y
        ((2, 2), tensor([1, 0]))
    """
    if not isinstance(batch, collections.abc.Sequence) or not batch:
        raise ValueError(f"default_collate: expected a non-empty list of samples, got {batch!r}")
    first = batch[0]
    if isinstance(first, Tensor):
        return _collate_tensors(batch)
    if isinstance(first, np.ndarray):
        return make_tensor(as_array(_stack_arrays(batch)))
    if isinstance(first, (str, bytes)):
        return list(batch)
    if isinstance(first, (bool, np.bool_)):
        return make_tensor(np.array(batch, dtype=np.bool_))
    if isinstance(first, np.generic):
        return make_tensor(as_array(np.array(batch)))
    if isinstance(first, numbers.Integral):
        return make_tensor(np.array(batch, dtype=np.int64))
    if isinstance(first, numbers.Real):
        return make_tensor(np.array(batch, dtype=np.float32))
    if isinstance(first, collections.abc.Mapping):
        return type(first)({key: default_collate([s[key] for s in batch]) for key in first})
    if isinstance(first, tuple) and hasattr(first, "_fields"):
        return type(first)(*(default_collate(list(f)) for f in _transpose(batch)))
    if isinstance(first, (tuple, list)):
        return type(first)(default_collate(list(f)) for f in _transpose(batch))
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}; "
                    f"pass a collate_fn to the DataLoader")


def _transpose(batch):
    sizes = {len(sample) for sample in batch}
    if len(sizes) != 1:
        raise ValueError(f"default_collate: samples have different numbers of fields "
                         f"({sorted(sizes)})")
    return zip(*batch)


def _stack_arrays(arrays):
    shapes = {np.shape(a) for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"default_collate: cannot stack samples of different shapes "
                         f"{sorted(shapes)}")
    return np.stack(arrays)


def _collate_tensors(batch):
    if not all(isinstance(t, Tensor) for t in batch):
        raise TypeError("default_collate: a field mixes tensors and other types")
    if any(t.requires_grad for t in batch):
        return _stack(batch)
    return make_tensor(_stack_arrays([t._data for t in batch]))
