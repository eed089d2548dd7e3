"""Dataset, TensorDataset, ArrayDataset, Subset, random_split, default_collate, DataLoader."""

import collections
import pickle

import numpy as np
import pytest

import retrograd as rg
from retrograd.datasets.transforms import RandomHorizontalFlip
from retrograd.utils.data import (
    ArrayDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
)


class Squares(Dataset):
    """A plain map-style data set (no fast path) that counts its __getitem__ calls."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.calls += 1
        return np.float32(i), i * i


def ids_dataset(n):
    """Sample i is (features, i): the label column identifies the sample."""
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(rg.tensor(x), rg.arange(n))


def epoch_ids(loader):
    return [y.tolist() for _, y in loader]


# ---------------------------------------------------------------------- Dataset
def test_dataset_base_methods_say_what_to_define():
    with pytest.raises(NotImplementedError, match="must define __getitem__"):
        Dataset()[0]
    with pytest.raises(NotImplementedError, match="must define __len__"):
        len(Dataset())


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


# ---------------------------------------------------------------------- Subset, random_split
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


@pytest.mark.parametrize("n, fractions, expected", [
    (10, [0.5, 0.5], [5, 5]),
    (10, [0.33, 0.33, 0.34], [4, 3, 3]),  # floors 3, 3, 3; the remainder goes to the first
    (7, [0.1, 0.9], [1, 6]),
])
def test_random_split_fractions(n, fractions, expected):
    assert [len(p) for p in random_split(ids_dataset(n), fractions, seed=0)] == expected


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


# ---------------------------------------------------------------------- default_collate
def test_default_collate_numbers_and_containers():
    Point = collections.namedtuple("Point", "x y")
    batch = default_collate([
        {"a": 1, "b": 2.5, "c": True, "d": "s0", "p": Point(np.float64(1), np.int8(2))},
        {"a": 3, "b": 4.0, "c": False, "d": "s1", "p": Point(np.float64(3), np.int8(4))},
    ])
    assert batch["a"].dtype == rg.int64 and batch["a"].tolist() == [1, 3]
    assert batch["b"].dtype == rg.float32 and batch["b"].tolist() == [2.5, 4.0]
    assert batch["c"].dtype == rg.bool and batch["c"].tolist() == [True, False]
    assert batch["d"] == ["s0", "s1"]
    assert isinstance(batch["p"], Point)
    assert batch["p"].x.dtype == rg.float64 and batch["p"].y.dtype == rg.int8


def test_default_collate_stacks_arrays_and_tensors():
    x, y = default_collate([(np.zeros((2, 3), np.uint8), rg.ones(4)),
                            (np.ones((2, 3), np.uint8), rg.zeros(4))])
    assert x.shape == (2, 2, 3) and x.dtype == rg.uint8 and y.shape == (2, 4)
    lists = default_collate([[1, 2.0], [3, 4.0]])
    assert isinstance(lists, list) and lists[0].tolist() == [1, 3]


def test_default_collate_keeps_the_graph_of_tensors_that_require_grad():
    a, b = rg.randn(3, requires_grad=True), rg.randn(3, requires_grad=True)
    default_collate([a, b]).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones(3, np.float32))


@pytest.mark.parametrize("batch, error, match", [
    ([np.zeros(2), np.zeros(3)], ValueError, r"different shapes \[\(2,\), \(3,\)\]"),
    ([rg.zeros(2), rg.zeros(3)], ValueError, "different shapes"),
    ([(1, 2), (3,)], ValueError, "different numbers of fields"),
    ([object(), object()], TypeError, "cannot batch samples of type object"),
    ([rg.zeros(2), 1], TypeError, "mixes tensors"),
    ([], ValueError, "non-empty list"),
])
def test_default_collate_errors(batch, error, match):
    with pytest.raises(error, match=match):
        default_collate(batch)


# ---------------------------------------------------------------------- DataLoader: epochs
@pytest.mark.parametrize("n, batch_size, drop_last", [
    (10, 3, False), (10, 3, True), (9, 3, False), (9, 3, True), (5, 8, False), (5, 8, True),
    (1, 1, False), (0, 4, False),
])
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_sample_once_per_epoch(n, batch_size, drop_last, shuffle):
    loader = DataLoader(ids_dataset(n), batch_size, shuffle=shuffle, drop_last=drop_last, seed=0)
    expected_batches = n // batch_size if drop_last else -(-n // batch_size)
    assert len(loader) == expected_batches
    for _ in range(2):
        batches = epoch_ids(loader)
        assert len(batches) == expected_batches
        assert all(len(b) == batch_size for b in batches[:-1] if b)
        seen = [i for b in batches for i in b]
        assert len(seen) == len(set(seen))
        if drop_last:
            assert len(seen) == expected_batches * batch_size
        else:
            assert sorted(seen) == list(range(n))
            if n % batch_size:
                assert len(batches[-1]) == n % batch_size
        if not shuffle:
            assert seen == list(range(len(seen)))


def test_shuffle_is_reproducible_with_a_seed_and_changes_between_epochs():
    ds = ids_dataset(50)
    a, b = DataLoader(ds, 8, shuffle=True, seed=3), DataLoader(ds, 8, shuffle=True, seed=3)
    first, second = epoch_ids(a), epoch_ids(a)
    assert first == epoch_ids(b) and second == epoch_ids(b)
    assert first != second
    assert sum(first, []) != list(range(50))
    assert first != epoch_ids(DataLoader(ds, 8, shuffle=True, seed=4))


def test_shuffle_without_seed_follows_manual_seed():
    loader = DataLoader(ids_dataset(30), 4, shuffle=True)
    rg.manual_seed(11)
    a = epoch_ids(loader)
    rg.manual_seed(11)
    assert epoch_ids(loader) == a
    rg.manual_seed(12)
    assert epoch_ids(loader) != a


def test_fast_path_is_used_and_matches_the_sample_path():
    ds = ids_dataset(11)
    fast = list(DataLoader(ds, 4, shuffle=True, seed=1))
    slow = list(DataLoader(ds, 4, shuffle=True, seed=1, collate_fn=default_collate))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        assert xf.dtype == xs.dtype and yf.dtype == ys.dtype

    class Counting(TensorDataset):
        def __getitem__(self, index):
            raise AssertionError("the fast path must not read sample by sample")

    assert len(list(DataLoader(Counting(rg.zeros(7)), 3))) == 3


def test_plain_dataset_is_read_sample_by_sample():
    ds = Squares(7)
    batches = list(DataLoader(ds, 3))
    assert ds.calls == 7
    assert batches[2][1].tolist() == [36] and batches[0][0].dtype == rg.float32


def test_collate_fn_receives_the_list_of_samples():
    got = list(DataLoader(Squares(5), 2, collate_fn=lambda samples: samples))
    assert got[0] == [(np.float32(0), 0), (np.float32(1), 1)] and len(got[-1]) == 1


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(batch_size=0), ValueError, "batch_size must be a positive int, got 0"),
    (dict(batch_size=2.0), ValueError, "batch_size must be a positive int"),
    (dict(collate_fn=3), TypeError, "collate_fn must be callable"),
])
def test_dataloader_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DataLoader(ids_dataset(3), **kwargs)


def test_dataloader_refuses_non_datasets():
    with pytest.raises(TypeError, match="map-style data set"):
        DataLoader(iter(range(3)))


# ---------------------------------------------------------------------- DataLoader: resume
def run(loader, n_batches):
    """The first n_batches batches of the next epoch (as label lists), leaving it open."""
    it = iter(loader)
    return [next(it)[1].tolist() for _ in range(n_batches)]


@pytest.mark.parametrize("seed", [7, None])
@pytest.mark.parametrize("stop", [0, 1, 3, 4])  # 4 batches per epoch: stop=4 is "just done"
def test_resume_mid_epoch_gives_the_remaining_batches(seed, stop):
    ds = ids_dataset(14)
    rg.manual_seed(5)
    reference = DataLoader(ds, 4, shuffle=True, seed=seed)
    full = [epoch_ids(reference) for _ in range(3)]

    rg.manual_seed(5)
    loader = DataLoader(ds, 4, shuffle=True, seed=seed)
    assert epoch_ids(loader) == full[0]
    assert run(loader, stop) == full[1][:stop]
    checkpoint = pickle.dumps((loader.state_dict(), rg.get_rng_state()))

    rg.manual_seed(999)  # a new process: other RNG state, a fresh loader
    resumed = DataLoader(ds, 4, shuffle=True, seed=seed)
    state, rng_state = pickle.loads(checkpoint)
    resumed.load_state_dict(state)
    rg.set_rng_state(rng_state)
    assert epoch_ids(resumed) == full[1][stop:]
    assert epoch_ids(resumed) == full[2]


def test_resume_is_bit_identical_with_random_transforms():
    """Shuffling, then per-batch random flips, all from the global generator."""
    data = rg.rand(10, 1, 2, 3).numpy()
    ds = ArrayDataset(data, np.arange(10), transform=RandomHorizontalFlip(0.5))

    def images(loader, count=None):
        out = []
        for k, (x, _) in enumerate(loader):
            out.append(x.numpy().copy())
            if count is not None and k + 1 == count:
                break
        return out

    rg.manual_seed(0)
    loader = DataLoader(ds, 3, shuffle=True)
    reference = images(loader) + images(loader)

    rg.manual_seed(0)
    loader = DataLoader(ds, 3, shuffle=True)
    head = images(loader, 2)
    state, rng_state = loader.state_dict(), rg.get_rng_state()
    rg.manual_seed(123)
    resumed = DataLoader(ds, 3, shuffle=True)
    resumed.load_state_dict(state)
    rg.set_rng_state(rng_state)
    tail = images(resumed) + images(resumed)
    assert len(head + tail) == len(reference) == 8
    for got, want in zip(head + tail, reference):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, data[[0, 1, 2]]) for a in reference)


def test_state_between_epochs_starts_the_next_epoch():
    ds = ids_dataset(9)
    reference = DataLoader(ds, 4, shuffle=True, seed=2)
    full = [epoch_ids(reference) for _ in range(2)]
    loader = DataLoader(ds, 4, shuffle=True, seed=2)
    epoch_ids(loader)
    state = loader.state_dict()
    assert state["batches_done"] is None and state["epoch"] == 1
    resumed = DataLoader(ds, 4, shuffle=True, seed=2)
    resumed.load_state_dict(state)
    assert epoch_ids(resumed) == full[1]


def test_resume_without_shuffle():
    loader = DataLoader(ids_dataset(7), 2)
    run(loader, 2)
    resumed = DataLoader(ids_dataset(7), 2)
    resumed.load_state_dict(loader.state_dict())
    assert epoch_ids(resumed) == [[4, 5], [6]]


@pytest.mark.parametrize("other, match", [
    (dict(dataset=ids_dataset(8)), r"saved for \(num_samples, batch_size, shuffle, drop_last\) "
                                   r"= \(7, 2, True, False\), but this loader has \(8, 2"),
    (dict(batch_size=3), "this loader has"),
    (dict(seed=None), "saved by a loader with a seed"),
])
def test_load_state_dict_mismatch(other, match):
    loader = DataLoader(ids_dataset(7), 2, shuffle=True, seed=0)
    run(loader, 1)
    kwargs = dict(dataset=ids_dataset(7), batch_size=2, shuffle=True, seed=0)
    kwargs.update(other)
    with pytest.raises(ValueError, match=match):
        DataLoader(**kwargs).load_state_dict(loader.state_dict())
