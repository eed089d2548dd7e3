"""Data-parallel training jobs: ``mpiexec -n N retrograd train ...``.

``retrograd train`` joins the N processes into the default process group
(retrograd.distributed.init_process_group) when a launcher started it, and a job trains
data-parallel whenever that group has several processes. Every process (rank) builds the same
model from the same seed; DistributedDataParallel averages the gradients over the ranks in
every backward pass, so every rank takes the same optimizer step and the copies stay equal.
``batch_size`` is per process: a step trains on a global batch of N x batch_size samples
(PyTorch's and Horovod's convention).

- Image jobs shard each epoch of the training set with DistributedSampler (shuffled with the
  run's seed, ``set_epoch`` every epoch): each rank trains on its 1/N of the epoch.
- Step-based jobs (gpt, seq2seq) keep their data loader of batch_size samples per batch on
  every rank, drawing from the same generator: a step takes N consecutive batches (the global
  batch) and rank r trains on the r-th (``rank_batches``). Until the end of the first epoch
  these are the global batches of a single-process run with batch N x batch_size, so the two
  runs compute the same steps. The loader's position is counted in batches of batch_size, so
  a checkpoint resumes under any number of processes.
- Metrics are sums over the ranks (``sum_over_ranks``). Evaluation splits the evaluation set
  into disjoint contiguous shards (``shard``), one per rank, and adds up their sums, so the
  numbers are a single-process evaluation's (up to the order of the float additions).
- Rank 0 alone prints and writes (run folder, checkpoints, metrics, report): ``World.writer``.

Alone, World() is a world of one and these helpers do nothing (no communication).
"""

import dataclasses

import numpy as np

import retrograd as rg
from retrograd import distributed as dist
from retrograd.distributed.collectives import broadcast_coalesced

__all__ = ["World", "current_world", "world_of", "parallel_model", "sync_batchnorm", "shard",
           "sum_over_ranks", "mean_over_ranks", "rank_batches", "broadcast_buffers",
           "start_line"]


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place in a run: its ``rank`` among ``size`` processes."""

    rank: int = 0
    size: int = 1

    @property
    def parallel(self):
        """Whether the run is data-parallel (several processes)."""
        return self.size > 1

    @property
    def writer(self):
        """Whether this process prints and writes the run's files (rank 0)."""
        return self.rank == 0


def current_world():
    """The World of the default process group; World() (a world of one) when the group is
    not initialized.

    Example:
        >>> current_world()
        World(rank=0, size=1)
    """
    if not dist.is_initialized():
        return World()
    return World(dist.get_rank(), dist.get_world_size())


def world_of(run):
    """The run's World: the one its job set, else a world of one."""
    return getattr(run, "world", None) or World()


def parallel_model(model, world):
    """The model that training steps call: DistributedDataParallel(model) in a data-parallel
    run (collective: every rank must call it), ``model`` itself otherwise. The checkpoint
    keeps ``model``'s own state (no ``module.`` prefix), which loads under any world size."""
    if not world.parallel:
        return model
    from retrograd.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def sync_batchnorm(model, world, enabled):
    """``--sync-bn``: ``model`` with its BatchNorm layers turned into SyncBatchNorm, whose
    training statistics are those of the global batch, in a data-parallel run. Alone the
    model is returned as it is (a world of one has one batch: BatchNorm is SyncBatchNorm)."""
    if not (enabled and world.parallel):
        return model
    return rg.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def shard(count, world):
    """The indices ``range(begin, end)`` of this rank's contiguous share of ``count`` items:
    rank r of N gets [r * count // N, (r + 1) * count // N). The shards are disjoint, cover
    every item once, and differ in size by at most one (no padding duplicates).

    Example:
        >>> [list(shard(7, World(rank, 3))) for rank in range(3)]
        [[0, 1], [2, 3], [4, 5, 6]]
    """
    return range(world.rank * count // world.size, (world.rank + 1) * count // world.size)


def sum_over_ranks(values, world):
    """The sums over the ranks of ``values`` (numbers), as floats, reduced in float64 (every
    rank gets the same sums); ``values`` themselves in a world of one.

    Example:
        >>> sum_over_ranks([1.5, 3], World())
        [1.5, 3.0]
    """
    if not world.parallel:
        return [float(v) for v in values]
    total = rg.tensor(np.asarray(values, dtype=np.float64))
    dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return [float(v) for v in total.numpy()]


def mean_over_ranks(value, world):
    """The mean over the ranks of the number ``value`` (the same on every rank)."""
    (total,) = sum_over_ranks([value], world)
    return total / world.size


def rank_batches(batches, world):
    """This rank's part of each global batch: of every ``world.size`` consecutive items of
    the iterator ``batches``, the ``world.rank``-th. Every rank must iterate the same
    ``batches`` (the same loader, drawing from the same generator).

    Example:
        >>> list(rank_batches(iter(range(6)), World(rank=1, size=3)))
        [1, 4]
    """
    while True:
        group = []
        for _ in range(world.size):
            try:
                group.append(next(batches))
            except StopIteration:
                return
        yield group[world.rank]


def broadcast_buffers(model, world):
    """Copy rank 0's buffers (BatchNorm's running statistics) into every rank's, in place.
    Each rank's last training forward updated its own copy (DistributedDataParallel copies
    rank 0's only at the start of the next one), so a job calls this before evaluating: every
    rank then evaluates the model rank 0 checkpoints."""
    if not world.parallel:
        return
    with rg.no_grad():
        broadcast_coalesced(list(model.buffers()), src=0)


def start_line(world, batch_size):
    """The line rank 0 prints at the start of a data-parallel run.

    Example:
        >>> start_line(World(0, 4), 32)
        'data-parallel on 4 processes (MPI), batch 32 per process, global batch 128'
    """
    return (f"data-parallel on {world.size} processes (MPI), batch {batch_size} per process, "
            f"global batch {world.size * batch_size}")
