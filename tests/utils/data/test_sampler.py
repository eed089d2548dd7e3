"""Samplers: orders and lengths against torch.utils.data where they are deterministic, the
random ones by their properties and their generators."""

import collections

import numpy as np
import pytest
import torch.utils.data as tud

import retrograd as rg
from retrograd.utils.data import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)


def seeded(seed):
    return rg.Generator().manual_seed(seed)


# ---------------------------------------------------------------------- deterministic ones
@pytest.mark.parametrize("n", [0, 1, 7])
def test_sequential_sampler_matches_torch(n):
    ours, theirs = SequentialSampler(range(n)), tud.SequentialSampler(range(n))
    assert list(ours) == list(theirs) and len(ours) == len(theirs) == n


@pytest.mark.parametrize("n, batch_size", [(0, 3), (1, 1), (9, 3), (10, 3), (5, 8), (12, 5)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_batch_sampler_matches_torch(n, batch_size, drop_last):
    ours = BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


def test_batch_sampler_keeps_what_the_sampler_yields():
    keys = ["a", "b", "c"]
    assert list(BatchSampler(keys, 2, False)) == list(tud.BatchSampler(keys, 2, False)) \
        == [["a", "b"], ["c"]]


@pytest.mark.parametrize("args", [(0, False), (2.0, False), (True, False), (-1, False),
                                  (2, 1)])
def test_batch_sampler_rejects_what_torch_rejects(args):
    with pytest.raises(ValueError) as theirs:
        tud.BatchSampler(range(3), *args)
    with pytest.raises(ValueError, match="BatchSampler: (batch_size|drop_last)"):
        BatchSampler(range(3), *args)
    assert theirs.type is ValueError


def test_custom_sampler_subclass():
    class EvenFirst(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter([*range(0, self.n, 2), *range(1, self.n, 2)])

        def __len__(self):
            return self.n

    assert list(BatchSampler(EvenFirst(5), 2, False)) == [[0, 2], [4, 1], [3]]
    with pytest.raises(NotImplementedError, match="must define __iter__"):
        iter(Sampler())


# ---------------------------------------------------------------------- RandomSampler
def test_random_sampler_draws_a_permutation_from_its_generator():
    order = list(RandomSampler(range(50), generator=seeded(4)))
    assert sorted(order) == list(range(50)) and order != list(range(50))
    assert order == list(RandomSampler(range(50), generator=seeded(4)))
    assert order != list(RandomSampler(range(50), generator=seeded(5)))
    assert all(type(i) is int for i in order)


def test_random_sampler_new_order_every_epoch_and_default_generator():
    sampler = RandomSampler(range(30))
    rg.manual_seed(2)
    first, second = list(sampler), list(sampler)
    assert first != second
    rg.manual_seed(2)
    assert list(sampler) == first


def test_random_sampler_draws_when_iteration_starts():
    g = seeded(0)
    sampler = RandomSampler(range(20), generator=g)
    expected = list(RandomSampler(range(20), generator=seeded(0)))
    indices = iter(sampler)
    g.manual_seed(99)  # what happens to the generator after iter() does not matter
    assert list(indices) == expected


@pytest.mark.parametrize("n, num_samples", [(3, 7), (5, 2), (4, 8), (6, 6)])
def test_random_sampler_num_samples_without_replacement_counts_like_torch(n, num_samples):
    ours = RandomSampler(range(n), num_samples=num_samples, generator=seeded(1))
    theirs = tud.RandomSampler(range(n), num_samples=num_samples)
    assert len(ours) == len(theirs) == num_samples
    # whole permutations, then part of one more: each index comes floor or ceil times
    counts = collections.Counter(ours)
    assert set(counts.values()) <= {num_samples // n, -(-num_samples // n)}
    assert sorted(counts.values()) == sorted(collections.Counter(theirs).values())


def test_random_sampler_with_replacement():
    draws = list(RandomSampler(range(4), replacement=True, num_samples=400, generator=seeded(0)))
    assert len(draws) == 400 and set(draws) == {0, 1, 2, 3}
    assert max(collections.Counter(draws).values()) < 140  # about 100 each
    assert len(RandomSampler(range(4), replacement=True)) == 4


@pytest.mark.parametrize("kwargs, error", [
    (dict(replacement=1), TypeError), (dict(num_samples=0), ValueError),
    (dict(num_samples=-1), ValueError), (dict(num_samples=2.0), ValueError),
])
def test_random_sampler_rejects_what_torch_rejects(kwargs, error):
    with pytest.raises(error):
        tud.RandomSampler(range(3), **kwargs)
    with pytest.raises(error, match="RandomSampler: (replacement|num_samples)"):
        RandomSampler(range(3), **kwargs)


def test_random_sampler_refuses_a_non_generator():
    with pytest.raises(TypeError, match="retrograd.Generator"):
        RandomSampler(range(3), generator=np.random.default_rng(0))


def test_random_sampler_of_an_empty_data_set_is_empty():
    # NOTE: torch raises (num_samples=0); retrograd lets an empty data set give no batches
    assert list(RandomSampler(range(0))) == [] and len(RandomSampler(range(0))) == 0


# ---------------------------------------------------------------------- SubsetRandomSampler
def test_subset_random_sampler():
    indices = [10, 3, 7, 42]
    sampler = SubsetRandomSampler(indices, generator=seeded(0))
    first = list(sampler)
    assert sorted(first) == sorted(indices) and len(sampler) == 4
    epochs = [list(sampler) for _ in range(5)]
    assert any(e != first for e in epochs)
    assert first == list(SubsetRandomSampler(indices, generator=seeded(0)))
    assert len(SubsetRandomSampler([])) == len(tud.SubsetRandomSampler([])) == 0


# ---------------------------------------------------------------------- WeightedRandomSampler
def test_weighted_sampler_follows_the_weights():
    weights = [0.0, 1.0, 3.0, 0.0]
    draws = list(WeightedRandomSampler(weights, 4000, generator=seeded(0)))
    counts = collections.Counter(draws)
    assert set(counts) == {1, 2}
    assert abs(counts[2] / 4000 - 0.75) < 0.03
    assert draws == list(WeightedRandomSampler(rg.tensor(weights), 4000, generator=seeded(0)))
    assert len(WeightedRandomSampler(weights, 7)) == 7


def test_weighted_sampler_without_replacement_draws_each_index_once():
    draws = list(WeightedRandomSampler([1.0, 5.0, 1.0, 2.0], 4, replacement=False,
                                       generator=seeded(3)))
    assert sorted(draws) == [0, 1, 2, 3]


@pytest.mark.parametrize("args, error", [
    (([1.0, 2.0], 0), ValueError),
    (([[1.0, 2.0]], 2), ValueError),
    (([1.0, 2.0], 2, 1), ValueError),
    (([1.0, 2.0], 3, False), RuntimeError),
    (([1.0, -2.0], 2), RuntimeError),
    (([0.0, 0.0], 2), RuntimeError),
])
def test_weighted_sampler_rejects_what_torch_rejects(args, error):
    with pytest.raises(error):
        list(tud.WeightedRandomSampler(*args))  # torch checks some at the first draw
    with pytest.raises(error, match="WeightedRandomSampler"):
        WeightedRandomSampler(*args)
