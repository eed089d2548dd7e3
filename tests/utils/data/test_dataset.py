"""Dataset, IterableDataset, TensorDataset, ArrayDataset, Subset, ConcatDataset, ChainDataset,
random_split; against torch.utils.data where the result is deterministic."""

import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import retrograd as rg
from retrograd.utils.data import (
    ArrayDataset, ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset,
    TensorDataset, default_collate, random_split,
)
from tests.utils.data.helpers import Squares, ids_dataset


class Count(IterableDataset):
    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


class TorchCount(tud.IterableDataset):
    def __init__(self, start, stop):
        self.start, self.stop = start, stop

    def __iter__(self):
        return iter(range(self.start, self.stop))

    def __len__(self):
        return self.stop - self.start


# ---------------------------------------------------------------------- Dataset
def test_dataset_base_methods_say_what_to_define():
    with pytest.raises(NotImplementedError, match="must define __getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="must define __len__"):
        len(Dataset())
    with pytest.raises(NotImplementedError, match="must define __iter__"):
        iter(IterableDataset())


def test_len_of_a_dataset_without_len_is_a_type_error_as_in_torch():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(TypeError):
        len(Stream())
    assert list(Stream()) == [0, 1, 2]  # list() asks for a length hint first


def test_adding_datasets_concatenates_or_chains():
    both = ids_dataset(3) + ids_dataset(2)
    assert isinstance(both, ConcatDataset) and len(both) == 5 and both[3][1].item() == 0
    chained = Count(0, 2) + Count(5, 7)
    assert isinstance(chained, ChainDataset) and list(chained) == [0, 1, 5, 6]


# ---------------------------------------------------------------------- TensorDataset
def test_tensor_dataset_items_and_batches():
    x, y = rg.randn(5, 2), rg.tensor([3, 1, 4, 1, 5])
    ds = TensorDataset(x, y)
    assert len(ds) == 5
    xi, yi = ds[2]
    np.testing.assert_array_equal(xi.numpy(), x.numpy()[2])
    assert yi.shape == () and yi.item() == 4 and yi.dtype == rg.int64
    np.testing.assert_array_equal(ds[-1][0].numpy(), x.numpy()[4])
    xb, yb = ds.get_batch([4, 0, 4])
    np.testing.assert_array_equal(xb.numpy(), x.numpy()[[4, 0, 4]])
    assert yb.tolist() == [5, 3, 5]


def test_tensor_dataset_matches_torch():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    ours = TensorDataset(rg.tensor(x), rg.arange(4))
    theirs = tud.TensorDataset(torch.tensor(x), torch.arange(4))
    assert len(ours) == len(theirs)
    for i in (0, 3, -1, -4):
        for a, b in zip(ours[i], theirs[i]):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
            assert a.shape == tuple(b.shape)


def test_tensor_dataset_samples_do_not_alias_storage():
    x = rg.zeros(3, 2)
    ds = TensorDataset(x)
    ds[0][0].numpy()[:] = 7.0
    ds.get_batch([1])[0].numpy()[:] = 7.0
    assert float(x.sum()) == 0.0


def test_tensor_dataset_accepts_arrays_and_keeps_graph_of_grad_tensors():
    ds = TensorDataset(np.arange(4.0, dtype=np.float32), np.array([0, 1, 0, 1]))
    assert ds[3][0].item() == 3.0 and ds[3][1].dtype == rg.int64
    w = rg.randn(4, requires_grad=True)
    (wi,) = TensorDataset(w)[1]
    wi.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [0.0, 1.0, 0.0, 0.0])


@pytest.mark.parametrize("tensors, match", [
    ((rg.zeros(3, 2), rg.zeros(4)), r"same size in dim 0.*\(3, 2\), \(4,\)"),
    ((rg.tensor(1.0),), "0-d tensor"),
    ((), "at least one tensor"),
])
def test_tensor_dataset_errors(tensors, match):
    with pytest.raises(ValueError, match=match):
        TensorDataset(*tensors)


@pytest.mark.parametrize("index, error, match", [
    (3, IndexError, "index 3 is out of range for a data set of 3 samples"),
    (-4, IndexError, "index -4 is out of range"),
    (1.0, TypeError, "index must be an int"),
])
def test_tensor_dataset_bad_index(index, error, match):
    with pytest.raises(error, match=match):
        TensorDataset(rg.zeros(3))[index]


def test_get_batch_bad_indices():
    ds = TensorDataset(rg.zeros(3))
    with pytest.raises(IndexError, match="index 3 is out of range"):
        ds.get_batch([0, 3])
    with pytest.raises(TypeError, match="1-D sequence of ints"):
        ds.get_batch([[0, 1]])


# ---------------------------------------------------------------------- ArrayDataset
class Double:
    """A transform with a batched variant that records which one ran."""

    def __init__(self):
        self.single = self.batched = 0

    def __call__(self, x):
        self.single += 1
        return x * 2

    def apply_batch(self, x):
        self.batched += 1
        return x * 2


def test_array_dataset_fast_path_equals_sample_path():
    data = np.arange(24, dtype=np.float32).reshape(6, 4)
    ds = ArrayDataset(data, np.array([5, 4, 3, 2, 1, 0], dtype=np.uint8), transform=Double())
    x, y = ds.get_batch([5, 1, 2])
    x_ref, y_ref = default_collate([ds[5], ds[1], ds[2]])
    np.testing.assert_array_equal(x.numpy(), x_ref.numpy())
    np.testing.assert_array_equal(x.numpy(), data[[5, 1, 2]] * 2)
    assert y.dtype == rg.int64 and y_ref.dtype == rg.int64 and y.tolist() == [0, 4, 3]
    assert ds.transform.batched == 1 and ds.transform.single == 3
    assert ds[0][1] == 5 and isinstance(ds[0][1], int)


def test_array_dataset_transform_without_batch_variant_falls_back():
    ds = ArrayDataset(np.ones((4, 2), np.float32), np.arange(4),
                      transform=lambda a: rg.tensor(a) * 3, target_transform=lambda t: t + 10)
    x, y = ds.get_batch(np.array([3, 0]))
    np.testing.assert_array_equal(x.numpy(), np.full((2, 2), 3.0, np.float32))
    assert y.tolist() == [13, 10]
    assert ds[1][1] == 11


def test_array_dataset_non_integer_targets_stay_tensors():
    ds = ArrayDataset(np.zeros((3, 2), np.float32), np.array([[0.5, 1.0]] * 3, np.float32))
    assert ds[0][1].shape == (2,)
    assert ds.get_batch([0, 1])[1].shape == (2, 2)


def test_array_dataset_length_mismatch():
    with pytest.raises(ValueError, match=r"same number of samples.*\(3, 2\) and \(4,\)"):
        ArrayDataset(np.zeros((3, 2)), np.zeros(4))


# ---------------------------------------------------------------------- Subset
def test_subset_indexing_and_fast_path():
    ds = ids_dataset(10)
    sub = Subset(ds, [7, 2, 9])
    assert len(sub) == 3 and sub[1][1].item() == 2 and sub[-1][1].item() == 9
    assert sub.get_batch([2, 0])[1].tolist() == [9, 7]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        sub[3]
    with pytest.raises(IndexError, match="Subset: index 10 is out of range"):
        Subset(ds, [10])


def test_subset_of_plain_dataset_collates_samples():
    sub = Subset(Squares(5), [4, 1])
    x, y = sub.get_batch([0, 1])
    assert x.dtype == rg.float32 and x.tolist() == [4.0, 1.0] and y.tolist() == [16, 1]


def test_subset_getitems_reads_through_the_parent_like_torch():
    ours = Subset(Squares(6), [5, 0, 3]).__getitems__([2, 0])
    theirs = tud.Subset([(np.float32(i), i * i) for i in range(6)], [5, 0, 3]).__getitems__(
        [2, 0])
    assert ours == theirs == [(3.0, 9), (5.0, 25)]


# ---------------------------------------------------------------------- ConcatDataset
def test_concat_dataset_indexes_like_torch():
    sizes = [3, 0, 4, 1]
    ours = ConcatDataset([ids_dataset(n) for n in sizes])
    theirs = tud.ConcatDataset([tud.TensorDataset(torch.arange(n)) for n in sizes])
    assert len(ours) == len(theirs) == 8
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    for i in range(-8, 8):
        assert ours[i][1].item() == theirs[i][0].item()


@pytest.mark.parametrize("datasets, error, match", [
    ([], ValueError, "should not be an empty iterable"),
    ([Count(0, 2)], TypeError, "does not support IterableDataset"),
])
def test_concat_dataset_errors(datasets, error, match):
    with pytest.raises(error, match=match):
        ConcatDataset(datasets)


def test_concat_dataset_index_out_of_range():
    with pytest.raises(IndexError, match="index 5 is out of range for a data set of 5"):
        ConcatDataset([ids_dataset(2), ids_dataset(3)])[5]


# ---------------------------------------------------------------------- StackDataset
def test_stack_dataset_matches_torch():
    names = ["a", "b", "c"]
    ours = StackDataset(Squares(3), names)
    theirs = tud.StackDataset([(np.float32(i), i * i) for i in range(3)], names)
    assert len(ours) == len(theirs) == 3
    assert [ours[i] for i in range(3)] == [theirs[i] for i in range(3)]
    ours, theirs = StackDataset(n=names, s=Squares(3)), tud.StackDataset(n=names, s=names)
    assert ours[1] == {"n": "b", "s": (1.0, 1)} and list(ours[1]) == list(theirs[1])


@pytest.mark.parametrize("args, kwargs, match", [
    ((["a"],), dict(b=["b"]), "not both"),
    ((), {}, "at least one dataset"),
    ((["a"], ["b", "c"]), {}, r"size mismatch.*\[1, 2\]"),
])
def test_stack_dataset_errors_as_torch(args, kwargs, match):
    with pytest.raises(ValueError):
        tud.StackDataset(*args, **kwargs)
    with pytest.raises(ValueError, match=match):
        StackDataset(*args, **kwargs)


# ---------------------------------------------------------------------- ChainDataset
def test_chain_dataset_matches_torch():
    ours = ChainDataset([Count(0, 3), Count(10, 12)])
    theirs = tud.ChainDataset([TorchCount(0, 3), TorchCount(10, 12)])
    assert list(ours) == list(theirs) == [0, 1, 2, 10, 11]
    assert len(ours) == len(theirs) == 5


def test_chain_dataset_refuses_map_style_members():
    chained = ChainDataset([Count(0, 1), ids_dataset(2)])
    with pytest.raises(TypeError, match="only supports IterableDataset"):
        list(chained)
    with pytest.raises(TypeError, match="only supports IterableDataset"):
        len(chained)


# ---------------------------------------------------------------------- random_split
def test_random_split_lengths_cover_and_reproduce():
    ds = ids_dataset(10)
    parts = random_split(ds, [3, 7], seed=5)
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(parts[0].indices + parts[1].indices) == list(range(10))
    assert parts[0].indices == random_split(ds, [3, 7], seed=5)[0].indices
    assert parts[0].indices != random_split(ds, [3, 7], seed=6)[0].indices
    rg.manual_seed(1)
    a = random_split(ds, [5, 5])[0].indices
    rg.manual_seed(1)
    assert random_split(ds, [5, 5])[0].indices == a


def test_random_split_generator_is_the_seed_shorthand():
    ds = ids_dataset(20)
    by_seed = random_split(ds, [0.5, 0.5], seed=3)
    by_generator = random_split(ds, [0.5, 0.5], generator=rg.Generator().manual_seed(3))
    assert [p.indices for p in by_seed] == [p.indices for p in by_generator]
    rg.manual_seed(0)
    before = rg.get_rng_state()
    random_split(ds, [10, 10], generator=rg.Generator().manual_seed(3))
    assert rg.get_rng_state() == before  # a generator of its own leaves the default alone
    with pytest.raises(ValueError, match="a generator or a seed, not both"):
        random_split(ds, [10, 10], generator=rg.Generator(), seed=1)
    with pytest.raises(TypeError, match="retrograd.Generator"):
        random_split(ds, [10, 10], generator=3)


@pytest.mark.parametrize("n, fractions", [
    (10, [0.5, 0.5]), (10, [0.33, 0.33, 0.34]), (7, [0.1, 0.9]), (11, [0.25, 0.25, 0.5]),
    (3, [0.2, 0.2, 0.2, 0.2, 0.2]), (100, [0.7, 0.2, 0.1]), (1, [0.5, 0.5]),
])
def test_random_split_fraction_lengths_match_torch(n, fractions):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theirs = [len(p) for p in tud.random_split(range(n), fractions)]
        ours = [len(p) for p in random_split(ids_dataset(n), fractions, seed=0)]
    assert ours == theirs
    empty = [w for w in caught if str(w.message).startswith("random_split: length of split")]
    assert len(empty) == theirs.count(0)


@pytest.mark.parametrize("lengths, match", [
    ([3, 3], "sum to 6, but the data set has 10"),
    ([0.5, 0.6], "must sum to 1"),
    ([-1, 11], r"random_split: lengths\[0\] must be a non-negative int, got -1"),
    ([0.5, -0.5], r"random_split: lengths\[1\] has to be between 0 and 1, but got -0.5"),
    ([], r"random_split: lengths is empty"),
])
def test_random_split_errors(lengths, match):
    with pytest.raises(ValueError, match=match):
        random_split(ids_dataset(10), lengths)
