"""retrograd/training/data_parallel.py and what the jobs add for data parallelism, checked in
one process (a world of one, or a World given by hand); the launched runs are in
tests/cli/test_train_distributed.py."""

import itertools

import numpy as np
import pytest

import retrograd as rg
import retrograd.distributed as dist
from retrograd.training import image
from retrograd.training.common import interruptible
from retrograd.training.data_parallel import (World, broadcast_buffers, current_world,
                                              mean_over_ranks, parallel_model, rank_batches,
                                              shard, start_line, sum_over_ranks,
                                              sync_batchnorm)
from retrograd.utils.data import DataLoader, DistributedSampler


def test_a_world_of_one_is_the_default():
    assert not dist.is_initialized()
    assert current_world() == World(0, 1)
    assert (World().parallel, World().writer) == (False, True)
    assert (World(2, 3).parallel, World(2, 3).writer) == (True, False)


@pytest.mark.parametrize("count, size", [(0, 1), (7, 1), (7, 3), (2, 3), (359, 3), (600, 4)])
def test_shards_are_disjoint_contiguous_and_cover_every_item_once(count, size):
    shards = [shard(count, World(rank, size)) for rank in range(size)]
    assert [i for s in shards for i in s] == list(range(count))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.parametrize("size", [1, 2, 3])
def test_rank_batches_deal_each_global_batch_out_in_rank_order(size):
    batches = list(range(4 * size - 1))     # the last, incomplete global batch is not dealt
    parts = [list(rank_batches(iter(batches), World(rank, size))) for rank in range(size)]
    assert [b for step in zip(*parts) for b in step] == batches[:3 * size]


def test_rank_batches_of_the_same_loader_make_the_single_process_global_batches():
    """Every rank iterates its own loader, seeded alike: the parts of a step, concatenated,
    are the batch of a loader with the global batch size (within an epoch)."""
    data = rg.utils.data.TensorDataset(rg.arange(24))

    def parts(rank):
        rg.manual_seed(5)
        loader = DataLoader(data, batch_size=2, shuffle=True)
        return [b[0].tolist() for b in rank_batches(iter(loader), World(rank, 3))]

    rg.manual_seed(5)
    single = [b[0].tolist() for b in DataLoader(data, batch_size=6, shuffle=True)]
    ranks = [parts(rank) for rank in range(3)]
    assert [sum(step, []) for step in zip(*ranks)] == single
    assert sorted(itertools.chain(*single)) == list(range(24))


def test_sums_and_means_over_a_world_of_one_are_the_values():
    assert sum_over_ranks([1, 2.5, np.int64(3)], World()) == [1.0, 2.5, 3.0]
    assert mean_over_ranks(0.25, World()) == 0.25


def test_alone_the_model_is_neither_wrapped_nor_converted():
    model = rg.nn.Sequential(rg.nn.Conv2d(1, 2, 3), rg.nn.BatchNorm2d(2))
    assert parallel_model(model, World()) is model
    assert sync_batchnorm(model, World(), enabled=True) is model
    assert type(model[1]) is rg.nn.BatchNorm2d
    model[1].running_mean.numpy()[...] = 3.0
    broadcast_buffers(model, World())
    assert model[1].running_mean.tolist() == [3.0, 3.0]


def test_start_line():
    assert start_line(World(0, 2), 64) == ("data-parallel on 2 processes (MPI), batch 64 per "
                                           "process, global batch 128")


# ----------------------------------------------------------------------------- image resume
def _loader_after_an_epoch(sampler=None):
    data = rg.utils.data.TensorDataset(rg.arange(10))
    loader = DataLoader(data, batch_size=4, sampler=sampler, shuffle=sampler is None)
    for _ in loader:
        pass
    return loader


def test_an_image_checkpoint_of_either_kind_resumes_into_the_other():
    """Written between epochs, a loader state keeps only its epoch count across kinds."""
    data = rg.utils.data.TensorDataset(rg.arange(10))
    sharded = _loader_after_an_epoch(DistributedSampler(data, num_replicas=2, rank=0))
    alone = DataLoader(data, batch_size=4, shuffle=True)
    alone.load_state_dict(image._loader_state(sharded.state_dict(), alone))
    assert alone.state_dict()["epoch"] == 1
    back = DataLoader(data, batch_size=4, sampler=DistributedSampler(data, 2, 1))
    back.load_state_dict(image._loader_state(_loader_after_an_epoch().state_dict(), back))
    assert back.state_dict()["epoch"] == 1


def test_a_loader_state_of_the_same_kind_or_within_an_epoch_is_kept_as_it_was():
    loader = _loader_after_an_epoch()
    state = loader.state_dict()
    assert image._loader_state(state, loader) is state
    within = {**state, "batches_done": 1, "shuffle": False}
    assert image._loader_state(within, loader) is within   # and load_state_dict refuses it
    with pytest.raises(ValueError, match="shuffle"):
        loader.load_state_dict(within)


# ----------------------------------------------------------------------------- faults
class _Run:
    def __init__(self, checkpoint):
        self.config = image.TrainConfig(out="runs/a")
        self.checkpoint = checkpoint


def test_a_distributed_error_names_the_checkpoint_to_resume_from():
    with pytest.raises(dist.DistributedTimeoutError) as caught:
        with interruptible(_Run("runs/a/checkpoint.safetensors"), "runs/a"):
            raise dist.DistributedTimeoutError("all_reduce did not complete within 4 s on "
                                               "rank 0 of 2: rank(s) 1 did not answer")
    assert str(caught.value) == ("all_reduce did not complete within 4 s on rank 0 of 2: "
                                 "rank(s) 1 did not answer; resume from the last checkpoint "
                                 "with: retrograd train --resume runs/a/checkpoint.safetensors")


def test_a_distributed_error_before_any_checkpoint_is_raised_as_it_was():
    error = dist.DistributedError("rank 1 differs")
    with pytest.raises(dist.DistributedError) as caught:
        with interruptible(_Run(None), "runs/a"):
            raise error
    assert caught.value is error
