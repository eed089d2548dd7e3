"""``DistributedSampler``: each process of a data-parallel job visits its own shard of the
data set, with PyTorch's name and semantics (``torch.utils.data.distributed``).

With ``R = num_replicas`` processes and ``N = len(dataset)`` samples, one epoch's index list
(``0 .. N-1``, or a permutation of it when ``shuffle``) is cut to ``total_size`` indices and
process ``rank`` takes every R-th one, starting at its rank::

    without drop_last:  num_samples = ceil(N / R), the list padded by repeating its start
    with drop_last:     num_samples = ceil((N - R) / R) when N % R != 0 (= N // R), the tail
                        dropped; num_samples = N / R when R divides N
    total_size = num_samples * R,   shard(rank) = indices[rank : total_size : R]

so the shards are disjoint (up to the padding) and together cover the data set, and every
process takes the same number of steps per epoch. The permutation is drawn from a
``retrograd.Generator`` seeded with ``seed + epoch``: it is the same on every process (they
must pass the same ``seed``) and changes when ``set_epoch`` is called before each epoch.
"""

from retrograd import _checks
from retrograd.random import Generator
from retrograd.utils.data.sampler import Sampler, _randperm

__all__ = ["DistributedSampler"]

_NAME = "DistributedSampler"
_NO_PROCESS_GROUP = (
    "DistributedSampler: num_replicas/rank not given and the default process group is not "
    "initialized (call retrograd.distributed.init_process_group() or pass num_replicas= and "
    "rank=)")


class DistributedSampler(Sampler):
    """The shard of ``dataset`` that process ``rank`` of ``num_replicas`` visits each epoch.

    Args:
        dataset: a map-style data set (its ``len`` is used).
        num_replicas: the number of processes (default: the default process group's world
            size, ``retrograd.distributed.get_world_size()``).
        rank: this process's rank, in ``[0, num_replicas)`` (default:
            ``retrograd.distributed.get_rank()``).
        shuffle: visit the data set in a new random order every epoch (the same on every rank).
        seed: the random seed; it must be the same on every process.
        drop_last: drop the tail that does not divide evenly among the processes, instead of
            padding with repeated samples.

    Attributes:
        num_samples: indices per process per epoch (``len(sampler)``).
        total_size: ``num_samples * num_replicas``, the indices of all processes together.
        epoch: the epoch ``set_epoch`` last set (0 at first).

    Call ``set_epoch(epoch)`` before each epoch (before ``iter(loader)``), or every epoch
    repeats the order of the first one.

    Example:
        >>> from retrograd.utils.data import DistributedSampler
        >>> data = range(10)
        >>> [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False))
        ...  for r in range(3)]
        [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]
        >>> [list(DistributedSampler(data, 3, r, shuffle=False, drop_last=True))
        ...  for r in range(3)]
        [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
        >>> ranks = [DistributedSampler(data, num_replicas=2, rank=r, seed=7) for r in range(2)]
        >>> for sampler in ranks:  # every process, before every epoch
        ...     sampler.set_epoch(1)
        >>> [len(sampler) for sampler in ranks], sorted(list(ranks[0]) + list(ranks[1]))
        ([5, 5], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        num_replicas, rank = _world(num_replicas, rank)
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.shuffle = _checks.boolean(_NAME, "shuffle", shuffle)
        self.seed = _checks.integer(_NAME, "seed", seed)
        self.drop_last = _checks.boolean(_NAME, "drop_last", drop_last)
        self._dataset_size = _size_of(dataset, num_replicas)
        self.num_samples = _samples_per_replica(self._dataset_size, num_replicas, drop_last)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        indices = self._epoch_order()
        if self.drop_last:
            indices = indices[:self.total_size]
        else:
            indices = _padded(indices, self.total_size)
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def _epoch_order(self):
        """All N indices in this epoch's order: a permutation seeded with seed + epoch (the
        same on every rank), or 0 .. N-1."""
        size = len(self.dataset)
        if size != self._dataset_size:
            raise RuntimeError(f"{_NAME}: the data set had {self._dataset_size} samples when "
                               f"the sampler was made and has {size} now; make a new sampler")
        if not self.shuffle:
            return list(range(size))
        generator = Generator().manual_seed(self.seed + self.epoch)
        return _randperm(size, generator).tolist()

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Set the epoch: with ``shuffle``, each epoch has its own order (seeded with
        ``seed + epoch``), the same on every rank; without it the order never changes."""
        self.epoch = _checks.integer(_NAME, "epoch", epoch)


def _world(num_replicas, rank):
    """(num_replicas, rank), checked; the ones not given come from the default process
    group."""
    if num_replicas is None or rank is None:
        distributed = _initialized_distributed()
        num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
        rank = distributed.get_rank() if rank is None else rank
    num_replicas = _checks.integer(_NAME, "num_replicas", num_replicas)
    rank = _checks.integer(_NAME, "rank", rank)
    if num_replicas < 1:
        raise ValueError(f"{_NAME}: num_replicas must be at least 1, got {num_replicas}")
    if not 0 <= rank < num_replicas:
        raise ValueError(f"{_NAME}: invalid rank {rank}, rank should be in the interval "
                         f"[0, {num_replicas - 1}] (num_replicas={num_replicas})")
    return num_replicas, rank


def _initialized_distributed():
    """``retrograd.distributed``, whose default process group must be initialized."""
    from retrograd import distributed  # here: only a sampler without num_replicas/rank needs it

    if not distributed.is_initialized():
        raise ValueError(_NO_PROCESS_GROUP)  # torch's DistributedSampler raises ValueError
    return distributed


def _size_of(dataset, num_replicas):
    """len(dataset), which must be at least num_replicas: a process without a sample of its
    own would train on repeated samples only (or on none, with drop_last)."""
    try:
        size = len(dataset)
    except TypeError:  # also a retrograd Dataset without __len__ (LengthUndefined)
        raise TypeError(f"{_NAME}: the data set must have a length (a map-style data set "
                        f"with __len__), got {type(dataset).__name__}") from None
    if size < num_replicas:
        raise ValueError(f"{_NAME}: the data set has {size} samples, fewer than the "
                         f"num_replicas={num_replicas} processes: every process needs at "
                         f"least one sample")
    return size


def _samples_per_replica(size, num_replicas, drop_last):
    """ceil(N / R); with drop_last, PyTorch's ceil((N - R) / R) when R does not divide N,
    which is N // R for N >= R (in integers here, exact for any N)."""
    if drop_last:
        return size // num_replicas
    return -(-size // num_replicas)


def _padded(indices, total_size):
    """``indices`` followed by a copy of its start, up to ``total_size``. The padding is
    shorter than num_replicas <= N (checked when the sampler is made), so one copy suffices."""
    return indices + indices[:total_size - len(indices)]
