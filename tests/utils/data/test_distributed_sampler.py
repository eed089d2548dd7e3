"""DistributedSampler: shards index for index against torch.utils.data.DistributedSampler (with
shuffle too, by drawing torch's permutation through retrograd.randperm), shards that partition
the data set, set_epoch, the DataLoader with it, bad input, and the default process group."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.utils.data as tud

import retrograd as rg
from retrograd.utils.data import DataLoader, DistributedSampler, IterableDataset
from tests.utils.data.helpers import epoch_ids, ids_dataset

REPLICAS = [1, 2, 3, 4, 7]
SIZES = [7, 8, 10, 12, 23, 28]


def shards(n, replicas, **kwargs):
    """The samplers of every rank of a world of ``replicas`` processes."""
    return [DistributedSampler(range(n), replicas, rank, **kwargs) for rank in range(replicas)]


def interleaved(samplers):
    """The epoch's index list the ranks cut their shards from: shard r holds its entries
    r, r + R, r + 2R, ..."""
    lists = [list(s) for s in samplers]
    return [lists[r][i] for i in range(len(lists[0])) for r in range(len(lists))]


def retrograd_permutation(n, seed):
    return rg.randperm(n, generator=rg.Generator().manual_seed(seed)).tolist()


@pytest.fixture
def torch_permutations(monkeypatch):
    """retrograd.randperm drawing torch.randperm's permutation for the generator's seed.
    The sampler draws through retrograd.randperm looked up when called (as PyTorch's samplers
    call torch.randperm), so its shuffled order then is torch's, index for index."""
    def randperm(n, generator=None):
        seeded = torch.Generator().manual_seed(generator.initial_seed())
        return rg.tensor(torch.randperm(n, generator=seeded).numpy())

    monkeypatch.setattr(rg, "randperm", randperm)


# ---------------------------------------------------------------------- against torch
def assert_same_as_torch(n, replicas, rank, epoch, **kwargs):
    ours = DistributedSampler(range(n), replicas, rank, **kwargs)
    theirs = tud.DistributedSampler(range(n), replicas, rank, **kwargs)
    ours.set_epoch(epoch)
    theirs.set_epoch(epoch)
    assert list(ours) == list(theirs)
    assert (len(ours), ours.num_samples, ours.total_size) == \
        (len(theirs), theirs.num_samples, theirs.total_size)
    for name in ("num_replicas", "rank", "epoch", "shuffle", "seed", "drop_last"):
        assert getattr(ours, name) == getattr(theirs, name), name


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("replicas", REPLICAS)
@pytest.mark.parametrize("drop_last", [False, True])
def test_without_shuffle_every_rank_matches_torch(n, replicas, drop_last):
    for rank in range(replicas):
        assert_same_as_torch(n, replicas, rank, epoch=3, shuffle=False, drop_last=drop_last)


@pytest.mark.parametrize("n, replicas", [(10, 3), (23, 4), (28, 7), (12, 2), (5, 1)])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("seed, epoch", [(0, 0), (0, 1), (42, 5), (-3, 2)])
def test_with_shuffle_every_rank_matches_torch_given_its_permutation(
        torch_permutations, n, replicas, drop_last, seed, epoch):
    for rank in range(replicas):
        assert_same_as_torch(n, replicas, rank, epoch, shuffle=True, seed=seed,
                             drop_last=drop_last)


def test_the_torch_permutation_fixture_really_changes_the_order(torch_permutations):
    torch_order = tud.DistributedSampler(range(20), 1, 0, seed=9)
    assert list(DistributedSampler(range(20), 1, 0, seed=9)) == list(torch_order)


def test_without_the_fixture_the_permutation_is_retrograds():
    # the generators differ (PCG64 here, a Mersenne Twister in torch), so the orders do too
    ours = list(DistributedSampler(range(20), 1, 0, seed=9))
    assert ours == retrograd_permutation(20, 9)
    assert ours != list(tud.DistributedSampler(range(20), 1, 0, seed=9))


# ---------------------------------------------------------------------- shards
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("replicas", REPLICAS)
@pytest.mark.parametrize("shuffle", [False, True])
def test_padded_shards_cover_the_data_set_each_index_at_most_twice(n, replicas, shuffle):
    samplers = shards(n, replicas, shuffle=shuffle, seed=5)
    num_samples = -(-n // replicas)
    assert [len(s) for s in samplers] == [len(list(s)) for s in samplers] \
        == [num_samples] * replicas
    order = interleaved(samplers)
    base = retrograd_permutation(n, 5) if shuffle else list(range(n))
    assert order == base + base[:num_samples * replicas - n]  # padded with the list's start
    assert sorted(set(order)) == list(range(n))


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("replicas", REPLICAS)
@pytest.mark.parametrize("shuffle", [False, True])
def test_shards_without_padding_are_disjoint_and_drop_the_tail(n, replicas, shuffle):
    samplers = shards(n, replicas, shuffle=shuffle, seed=5, drop_last=True)
    assert [len(s) for s in samplers] == [n // replicas] * replicas
    assert all(s.total_size == n // replicas * replicas for s in samplers)
    order = interleaved(samplers)
    base = retrograd_permutation(n, 5) if shuffle else list(range(n))
    assert order == base[:n // replicas * replicas]
    assert len(set(order)) == len(order)  # no index on two ranks, none twice on one


def test_shards_hold_python_ints():
    assert all(type(i) is int for s in shards(11, 3) for i in s)


def test_one_replica_without_shuffle_is_the_sequential_order():
    assert list(DistributedSampler(range(6), num_replicas=1, rank=0, shuffle=False)) \
        == list(range(6))


# ---------------------------------------------------------------------- set_epoch
def test_set_epoch_changes_the_order_the_same_way_on_every_rank():
    samplers = shards(30, 3, seed=11)
    first = interleaved(samplers)
    assert first == interleaved(samplers)  # no set_epoch: the same order again
    for epoch in (1, 2):
        for sampler in samplers:
            sampler.set_epoch(epoch)
        order = interleaved(samplers)
        assert order == retrograd_permutation(30, 11 + epoch) != first
        assert sorted(order) == list(range(30))
        assert all(s.epoch == epoch for s in samplers)


def test_the_order_depends_on_seed_plus_epoch_only():
    late = DistributedSampler(range(25), 2, 1, seed=3)
    late.set_epoch(4)
    assert list(late) == list(DistributedSampler(range(25), 2, 1, seed=7))
    assert list(late) != list(DistributedSampler(range(25), 2, 1, seed=3))


def test_set_epoch_leaves_an_unshuffled_order_alone():
    sampler = DistributedSampler(range(9), 2, 0, shuffle=False)
    before = list(sampler)
    sampler.set_epoch(8)
    assert list(sampler) == before == [0, 2, 4, 6, 8]


def test_shuffling_does_not_draw_from_the_default_generator():
    rg.manual_seed(1)
    state = rg.get_rng_state()
    list(DistributedSampler(range(40), 4, 2))
    assert rg.get_rng_state() == state
    rg.randperm(40)
    assert rg.get_rng_state() != state  # the comparison sees a draw


# ---------------------------------------------------------------------- with a DataLoader
@pytest.mark.parametrize("n, replicas, batch_size", [(23, 3, 4), (24, 4, 3), (10, 7, 2)])
@pytest.mark.parametrize("sampler_drop_last", [False, True])
@pytest.mark.parametrize("loader_drop_last", [False, True])
def test_dataloader_visits_the_shard_in_batches_as_torchs(
        torch_permutations, n, replicas, batch_size, sampler_drop_last, loader_drop_last):
    for rank in range(replicas):
        sampler = DistributedSampler(ids_dataset(n), replicas, rank, seed=2,
                                     drop_last=sampler_drop_last)
        torch_sampler = tud.DistributedSampler(range(n), replicas, rank, seed=2,
                                               drop_last=sampler_drop_last)
        sampler.set_epoch(1)
        torch_sampler.set_epoch(1)
        loader = DataLoader(ids_dataset(n), batch_size, sampler=sampler,
                            drop_last=loader_drop_last)
        theirs = tud.DataLoader(range(n), batch_size, sampler=torch_sampler,
                                drop_last=loader_drop_last)
        batches = epoch_ids(loader)
        assert batches == [b.tolist() for b in theirs]
        assert len(loader) == len(batches) == len(theirs)
        flat = [i for b in batches for i in b]
        shard = list(sampler)
        assert flat == shard[:len(flat)]
        assert len(shard) - len(flat) == (len(shard) % batch_size if loader_drop_last else 0)


# ---------------------------------------------------------------------- bad input
class NoLength(IterableDataset):
    def __iter__(self):
        return iter(range(3))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(num_replicas=3, rank=3), ValueError,
     r"DistributedSampler: invalid rank 3, rank should be in the interval \[0, 2\] "
     r"\(num_replicas=3\)"),
    (dict(num_replicas=3, rank=-1), ValueError, r"invalid rank -1, .*\[0, 2\]"),
    (dict(num_replicas=0, rank=0), ValueError,
     "DistributedSampler: num_replicas must be at least 1, got 0"),
    (dict(num_replicas=-2, rank=0), ValueError, "num_replicas must be at least 1, got -2"),
    (dict(num_replicas=2.0, rank=0), TypeError,
     "DistributedSampler: num_replicas must be an int, got float"),
    (dict(num_replicas=True, rank=0), TypeError, "num_replicas must be an int, got bool"),
    (dict(num_replicas=2, rank="1"), TypeError, "DistributedSampler: rank must be an int, "
     "got str"),
    (dict(num_replicas=2, rank=0, seed=1.5), TypeError, "DistributedSampler: seed must be an "
     "int, got float"),
    (dict(num_replicas=2, rank=0, shuffle=1), ValueError, "DistributedSampler: shuffle must be "
     "a bool, got int"),
    (dict(num_replicas=2, rank=0, drop_last="yes"), ValueError, "DistributedSampler: drop_last "
     "must be a bool, got str"),
])
def test_bad_arguments_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        DistributedSampler(range(10), **kwargs)


def test_a_bad_rank_is_a_value_error_in_torch_too():
    with pytest.raises(ValueError, match="Invalid rank 3"):
        tud.DistributedSampler(range(10), num_replicas=3, rank=3)


@pytest.mark.parametrize("dataset, name", [(NoLength(), "NoLength"), (object(), "object"),
                                           (iter(range(5)), "range_iterator")])
def test_a_data_set_without_a_length_is_refused(dataset, name):
    with pytest.raises(TypeError, match=f"DistributedSampler: the data set must have a length "
                                        f".*, got {name}"):
        DistributedSampler(dataset, num_replicas=2, rank=0)


@pytest.mark.parametrize("n, replicas", [(0, 1), (2, 3), (6, 7)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_fewer_samples_than_processes_is_refused(n, replicas, drop_last):
    with pytest.raises(ValueError, match=rf"DistributedSampler: the data set has {n} samples, "
                                         rf"fewer than the num_replicas={replicas} processes: "
                                         rf"every process needs at least one sample"):
        DistributedSampler(range(n), replicas, 0, drop_last=drop_last)


def test_as_many_samples_as_processes_is_enough():
    samplers = shards(7, 7, shuffle=False, drop_last=True)
    assert [list(s) for s in samplers] == [[i] for i in range(7)]


def test_set_epoch_takes_an_int():
    sampler = DistributedSampler(range(4), 2, 0)
    with pytest.raises(TypeError, match="DistributedSampler: epoch must be an int, got str"):
        sampler.set_epoch("1")


def test_a_data_set_that_changed_length_is_reported():
    data = list(range(8))
    sampler = DistributedSampler(data, 2, 0)
    data.append(8)
    with pytest.raises(RuntimeError, match="DistributedSampler: the data set had 8 samples "
                                           "when the sampler was made and has 9 now"):
        iter(sampler)


# ---------------------------------------------------------------------- the process group
def distributed_package():
    """retrograd.distributed with init_process_group, or a skip."""
    if importlib.util.find_spec("retrograd.distributed") is None:
        pytest.skip("retrograd.distributed does not exist yet")
    from retrograd import distributed

    if not hasattr(distributed, "init_process_group"):
        pytest.skip("retrograd.distributed has no init_process_group yet")
    return distributed


NOT_INITIALIZED = ("DistributedSampler: num_replicas/rank not given and the default process "
                   "group is not initialized (call retrograd.distributed.init_process_group() "
                   "or pass num_replicas= and rank=)")


@pytest.mark.parametrize("kwargs", [{}, dict(num_replicas=2), dict(rank=0)])
def test_defaults_need_an_initialized_process_group(kwargs):
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        tud.DistributedSampler(range(10), **kwargs)
    with pytest.raises(ValueError) as error:
        DistributedSampler(range(10), **kwargs)
    assert str(error.value) == NOT_INITIALIZED


def test_defaults_come_from_a_world_of_one_process():
    distributed = distributed_package()
    distributed.init_process_group(backend="mpi")
    try:
        sampler = DistributedSampler(range(5), shuffle=False)
        assert (sampler.num_replicas, sampler.rank) == (1, 0)
        assert list(sampler) == [0, 1, 2, 3, 4]
        with pytest.raises(ValueError, match="num_replicas must be at least 1, got 0"):
            DistributedSampler(range(5), num_replicas=0)  # the rank (0) from the group
    finally:
        distributed.destroy_process_group()
    with pytest.raises(ValueError, match="process group is not initialized"):
        DistributedSampler(range(5))


TWO_RANKS = textwrap.dedent("""
    import json
    import pathlib
    import sys

    from retrograd import distributed
    from retrograd.utils.data import DistributedSampler

    distributed.init_process_group(backend="mpi")
    sampler = DistributedSampler(range(11), seed=4)
    sampler.set_epoch(2)
    shard = [sampler.rank, sampler.num_replicas, list(sampler)]
    # one file per rank: the launcher may interleave the ranks' printed lines
    pathlib.Path(sys.argv[1], f"rank{sampler.rank}.json").write_text(json.dumps(shard))
    distributed.destroy_process_group()
""")


def find_mpiexec():
    """mpiexec beside this Python (the MPICH wheel installs it into the environment), else on
    PATH."""
    search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return shutil.which("mpiexec", path=search)


def test_defaults_come_from_the_process_group_of_two_ranks(tmp_path):
    distributed_package()
    pytest.importorskip("mpi4py", reason="mpi4py is not installed (extra 'distributed')")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        pytest.skip("mpiexec is not installed")
    run = subprocess.run([mpiexec, "-n", "2", sys.executable, "-c", TWO_RANKS, str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    found = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    samplers = shards(11, 2, seed=4)
    for sampler in samplers:
        sampler.set_epoch(2)
    assert found == [[rank, 2, list(s)] for rank, s in enumerate(samplers)]
