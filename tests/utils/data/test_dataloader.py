"""DataLoader in the main process (num_workers=0) and default_collate / default_convert:
batches, structure and dtypes against torch.utils.data, PyTorch's argument checks, epochs,
generators, and resuming from state_dict. Worker processes: test_workers.py."""

import collections
import pickle
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import retrograd as rg
from retrograd.datasets.transforms import RandomHorizontalFlip
from retrograd.utils.data import (
    ArrayDataset, BatchSampler, DataLoader, IterableDataset, SequentialSampler, TensorDataset,
    default_collate, default_convert,
)
from retrograd.utils.data.dataloader import default_collate as dataloader_default_collate
from tests.utils.data.helpers import Squares, epoch_ids, ids_dataset

Point = collections.namedtuple("Point", "x y")


def as_plain(batch):
    """A batch with tensors turned into (dtype name, nested list): comparable across libraries."""
    if isinstance(batch, (rg.Tensor, torch.Tensor)):
        return (str(batch.dtype).split(".")[-1], batch.numpy().tolist())
    if isinstance(batch, dict):
        return (type(batch).__name__, {k: as_plain(v) for k, v in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return ("namedtuple", [as_plain(v) for v in batch])
    if isinstance(batch, (list, tuple)):
        return (type(batch).__name__, [as_plain(v) for v in batch])
    return batch


def to_torch(sample):
    """The same sample with retrograd tensors as torch tensors."""
    if isinstance(sample, rg.Tensor):
        return torch.from_numpy(sample.numpy().copy())
    if isinstance(sample, dict):
        return type(sample)((k, to_torch(v)) for k, v in sample.items())
    if isinstance(sample, tuple) and hasattr(sample, "_fields"):
        return type(sample)(*(to_torch(v) for v in sample))
    if isinstance(sample, (list, tuple)):
        return type(sample)(to_torch(v) for v in sample)
    return sample


# ---------------------------------------------------------------------- default_collate
SAMPLE_BATCHES = {
    "ints": [1, 2, 3],
    "python floats are float64": [0.5, 1.5],
    "bools": [True, False],
    "ints with a float": [1, 2.5],
    "numpy scalars keep their dtype": [np.float32(1), np.float32(2)],
    "numpy int8 scalars": [np.int8(1), np.int8(-2)],
    "numpy arrays": [np.zeros((2, 3), np.uint8), np.ones((2, 3), np.uint8)],
    "tensors": [rg.arange(3), rg.arange(3) * 2],
    "strings": ["a", "bc"],
    "bytes": [b"a", b"bc"],
    "tuples become lists": [(1, 2.0), (3, 4.0)],
    "lists": [[1, 2.0], [3, 4.0]],
    "dicts": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}],
    "ordered dicts": [collections.OrderedDict(b=1, a=2.0), collections.OrderedDict(b=3, a=4.0)],
    "namedtuples": [Point(np.float64(1), np.int8(2)), Point(np.float64(3), np.int8(4))],
    "nested": [{"x": (rg.zeros(2), [1, "s"])}, {"x": (rg.ones(2), [2, "t"])}],
}


@pytest.mark.parametrize("name", list(SAMPLE_BATCHES))
def test_default_collate_matches_torch(name):
    samples = SAMPLE_BATCHES[name]
    ours = default_collate(samples)
    theirs = tud.default_collate([to_torch(s) for s in samples])
    assert as_plain(ours) == as_plain(theirs)


@pytest.mark.parametrize("name", list(SAMPLE_BATCHES))
def test_default_convert_matches_torch(name):
    sample = SAMPLE_BATCHES[name][0]
    assert as_plain(default_convert(sample)) == as_plain(tud.default_convert(to_torch(sample)))


def test_default_collate_is_importable_from_the_dataloader_module():
    assert dataloader_default_collate is default_collate


def test_default_collate_keeps_the_graph_of_tensors_that_require_grad():
    a, b = rg.randn(3, requires_grad=True), rg.randn(3, requires_grad=True)
    default_collate([a, b]).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones(3, np.float32))


@pytest.mark.parametrize("batch, error, match", [
    ([np.zeros(2), np.zeros(3)], RuntimeError, r"different shapes \[\(2,\), \(3,\)\]"),
    ([rg.zeros(2), rg.zeros(3)], RuntimeError, "different shapes"),
    ([(1, 2), (3,)], RuntimeError, "equal size.*different numbers of fields"),
    ([object(), object()], TypeError, "batch must contain tensors.*found <class 'object'>"),
    ([np.array(["a"]), np.array(["b"])], TypeError, "batch must contain tensors.*<U1"),
    ([rg.zeros(2), 1], TypeError, "mixes tensors"),
    ([], ValueError, "non-empty list"),
])
def test_default_collate_errors(batch, error, match):
    with pytest.raises(error, match=match):
        default_collate(batch)
    if batch:  # torch raises the same type (an empty batch is its IndexError)
        with pytest.raises(error):
            tud.default_collate([to_torch(s) for s in batch])


# ---------------------------------------------------------------------- batches vs torch
def torch_ids_dataset(n):
    x = torch.arange(n * 3, dtype=torch.float32).reshape(n, 3)
    return tud.TensorDataset(x, torch.arange(n))


@pytest.mark.parametrize("n, batch_size, drop_last", [
    (10, 3, False), (10, 3, True), (9, 3, False), (5, 8, False), (5, 8, True), (1, 1, False),
])
def test_sequential_batches_match_torch(n, batch_size, drop_last):
    ours = DataLoader(ids_dataset(n), batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(torch_ids_dataset(n), batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert [as_plain(b) for b in ours] == [as_plain(b) for b in theirs]


def test_sample_by_sample_batches_match_torch():
    samples = SAMPLE_BATCHES["nested"] * 3
    ours = DataLoader(samples, batch_size=4)
    theirs = tud.DataLoader([to_torch(s) for s in samples], batch_size=4)
    assert [as_plain(b) for b in ours] == [as_plain(b) for b in theirs]


def test_no_batching_matches_torch():
    ours = list(DataLoader(ids_dataset(3), batch_size=None))
    theirs = list(tud.DataLoader(torch_ids_dataset(3), batch_size=None))
    assert [as_plain(b) for b in ours] == [as_plain(b) for b in theirs]
    assert len(DataLoader(ids_dataset(3), batch_size=None)) == 3


def test_batch_sampler_and_sampler_arguments_match_torch():
    order = [4, 0, 3, 1, 2]
    ours = DataLoader(ids_dataset(5), batch_size=2, sampler=order)
    theirs = tud.DataLoader(torch_ids_dataset(5), batch_size=2, sampler=order)
    assert [as_plain(b) for b in ours] == [as_plain(b) for b in theirs] and len(ours) == 3
    batches = [[4, 0], [3], [1, 2]]
    ours = DataLoader(ids_dataset(5), batch_sampler=batches)
    theirs = tud.DataLoader(torch_ids_dataset(5), batch_sampler=batches)
    assert [as_plain(b) for b in ours] == [as_plain(b) for b in theirs] and len(ours) == 3


class Stream(IterableDataset):
    def __init__(self, n, with_len=True):
        self.n, self.with_len = n, with_len

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        if not self.with_len:
            raise TypeError("no len")
        return self.n


class TorchStream(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("batch_size, drop_last", [(3, False), (3, True), (5, False), (None, False),
                                                   (1, False)])
def test_iterable_dataset_batches_and_len_match_torch(batch_size, drop_last):
    ours = DataLoader(Stream(10), batch_size=batch_size, drop_last=drop_last)
    theirs = tud.DataLoader(TorchStream(10), batch_size=batch_size, drop_last=drop_last)
    assert [as_plain(b) for b in ours] == [as_plain(b) for b in theirs]
    assert len(ours) == len(theirs)


def test_iterable_dataset_without_len():
    loader = DataLoader(Stream(4, with_len=False), batch_size=3)
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3]]
    with pytest.raises(TypeError):
        len(loader)


# ---------------------------------------------------------------------- argument checks
def check_both_refuse(kwargs, error, match, dataset=None, torch_dataset=None):
    with pytest.raises(error):
        tud.DataLoader(torch_dataset if torch_dataset is not None else torch_ids_dataset(6),
                       **to_torch_kwargs(kwargs))
    with pytest.raises(error, match=match):
        DataLoader(dataset if dataset is not None else ids_dataset(6), **kwargs)


def to_torch_kwargs(kwargs):
    converted = dict(kwargs)
    for key in ("sampler", "batch_sampler"):
        if isinstance(converted.get(key), (SequentialSampler, BatchSampler)):
            converted[key] = list(converted[key])
    return converted


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(shuffle=True, sampler=[0, 1]), ValueError, "sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], batch_size=2), ValueError, "batch_sampler option is mutually"),
    (dict(batch_sampler=[[0]], shuffle=True), ValueError, "batch_sampler option is mutually"),
    (dict(batch_sampler=[[0]], drop_last=True), ValueError, "batch_sampler option is mutually"),
    (dict(batch_sampler=[[0]], sampler=[0]), ValueError, "batch_sampler option is mutually"),
    (dict(batch_size=None, drop_last=True), ValueError, "disables auto-batching"),
    (dict(num_workers=-1), ValueError, "num_workers option should be non-negative"),
    (dict(timeout=-1), ValueError, "timeout option should be non-negative"),
    (dict(prefetch_factor=2), ValueError, "prefetch_factor option could only be specified"),
    (dict(persistent_workers=True), ValueError, "persistent_workers option needs num_workers"),
    (dict(multiprocessing_context="fork"), ValueError, "can only be used with multi-process"),
    (dict(num_workers=1, multiprocessing_context="bogus"), ValueError, "valid start method"),
    (dict(num_workers=1, multiprocessing_context=3), TypeError, "valid context object"),
    (dict(num_workers=1, prefetch_factor=-1), ValueError, "prefetch_factor"),
    (dict(batch_size=0), ValueError, "batch_size must be a positive int or None, got 0"),
    (dict(batch_size=-2), ValueError, "batch_size must be a positive int"),
])
def test_argument_checks_match_torch(kwargs, error, match):
    check_both_refuse(kwargs, error, match)


@pytest.mark.parametrize("kwargs, match", [
    (dict(shuffle=True), "expected unspecified shuffle option"),
    (dict(sampler=[0, 1]), "expected unspecified sampler option"),
    (dict(batch_sampler=[[0]]), "expected unspecified batch_sampler option"),
])
def test_iterable_dataset_argument_checks_match_torch(kwargs, match):
    check_both_refuse(kwargs, ValueError, match, Stream(3), TorchStream(3))


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(batch_size=2.0), ValueError, "batch_size must be a positive int"),
    (dict(collate_fn=3), TypeError, "collate_fn must be callable"),
    (dict(num_workers=1, worker_init_fn=3), TypeError, "worker_init_fn must be callable"),
    (dict(timeout=5), ValueError, "timeout=5 needs num_workers > 0"),
    (dict(generator=np.random.default_rng(0)), TypeError, "must be a retrograd.Generator"),
    (dict(generator=rg.Generator(), seed=1), ValueError, "a generator or a seed, not both"),
])
def test_retrograd_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        DataLoader(ids_dataset(3), **kwargs)


def test_dataloader_refuses_non_datasets():
    with pytest.raises(TypeError, match="map-style data set"):
        DataLoader(iter(range(3)))


def test_fixed_attributes_cannot_change_as_in_torch():
    loader = DataLoader(ids_dataset(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute should not be set after"):
        loader.batch_size = 3
    loader.num_workers = 0  # others can, as in torch
    assert loader.collate_fn is default_collate
    assert DataLoader(ids_dataset(4), batch_size=None).collate_fn is default_convert


def test_pin_memory_warns_that_there_is_nothing_to_pin():
    with pytest.warns(UserWarning, match="pin_memory"):
        list(DataLoader(ids_dataset(2), pin_memory=True))


def test_too_many_workers_warns():
    with pytest.warns(UserWarning, match="suggested max number of worker"):
        DataLoader(ids_dataset(2), num_workers=1000)


# ---------------------------------------------------------------------- epochs
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


def test_generator_argument_equals_the_seed_shorthand_and_spares_the_default():
    ds = ids_dataset(40)
    by_seed = DataLoader(ds, 8, shuffle=True, seed=9)
    by_generator = DataLoader(ds, 8, shuffle=True, generator=rg.Generator().manual_seed(9))
    assert epoch_ids(by_seed) == epoch_ids(by_generator)
    rg.manual_seed(0)
    before = rg.get_rng_state()
    epoch_ids(by_generator)
    assert rg.get_rng_state() == before


def test_shuffle_without_seed_follows_manual_seed():
    loader = DataLoader(ids_dataset(30), 4, shuffle=True)
    rg.manual_seed(11)
    a = epoch_ids(loader)
    rg.manual_seed(11)
    assert epoch_ids(loader) == a
    rg.manual_seed(12)
    assert epoch_ids(loader) != a


def test_an_epoch_draws_the_base_seed_then_the_order_from_the_generator():
    g = rg.Generator().manual_seed(4)
    loader = DataLoader(ids_dataset(12), 5, shuffle=True, generator=g)
    got = epoch_ids(loader)
    replay = rg.Generator().manual_seed(4)
    replay.numpy_generator().integers(0, 1 << 63, dtype=np.int64)  # the workers' base seed
    order = replay.numpy_generator().permutation(12).tolist()
    assert got == [order[:5], order[5:10], order[10:]]
    replay.numpy_generator().permutation(12)  # the unused one PyTorch's sampler draws at the end
    assert g.get_state().tolist() == replay.get_state().tolist()


def test_fast_path_is_used_and_matches_the_sample_path():
    ds = ids_dataset(11)
    fast = list(DataLoader(ds, 4, shuffle=True, seed=1))
    slow = list(DataLoader(ds, 4, shuffle=True, seed=1, collate_fn=default_collate))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        assert xf.dtype == xs.dtype and yf.dtype == ys.dtype
    assert type(fast[0]) is type(slow[0]) is list  # torch's default_collate makes lists

    class Counting(TensorDataset):
        def __getitem__(self, index):
            raise AssertionError("the fast path must not read sample by sample")

    assert len(list(DataLoader(Counting(rg.zeros(7)), 3))) == 3


def test_getitems_is_used_for_batches_as_in_torch():
    class Batched(Squares):
        def __getitems__(self, indices):
            self.batched = getattr(self, "batched", 0) + 1
            return [self[i] for i in indices]

    ds = Batched(5)
    batches = list(DataLoader(ds, 2))
    assert ds.batched == 3 and batches[2][1].tolist() == [16]


def test_plain_dataset_is_read_sample_by_sample():
    ds = Squares(7)
    batches = list(DataLoader(ds, 3))
    assert ds.calls == 7
    assert batches[2][1].tolist() == [36] and batches[0][0].dtype == rg.float32


def test_collate_fn_receives_the_list_of_samples():
    got = list(DataLoader(Squares(5), 2, collate_fn=lambda samples: samples))
    assert got[0] == [(np.float32(0), 0), (np.float32(1), 1)] and len(got[-1]) == 1


def test_iterator_has_a_length_and_cannot_be_pickled():
    it = iter(DataLoader(ids_dataset(7), 3))
    assert len(it) == 3 and iter(it) is it
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(it)


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


def test_resume_with_a_sampler_that_has_its_own_generator():
    ds = ids_dataset(13)

    def make():
        sampler = tud_like_sampler(ds)
        return DataLoader(ds, 3, sampler=sampler, generator=rg.Generator().manual_seed(1))

    reference = make()
    full = [epoch_ids(reference) for _ in range(2)]
    loader = make()
    epoch_ids(loader)
    head = run(loader, 2)
    resumed = make()
    resumed.load_state_dict(loader.state_dict())
    assert head + epoch_ids(resumed) == full[1]


def tud_like_sampler(ds):
    from retrograd.utils.data import RandomSampler
    return RandomSampler(ds, generator=rg.Generator().manual_seed(8))


def test_resume_an_iterable_dataset_skips_what_was_handed_out():
    loader = DataLoader(Stream(10), 3)
    assert run_plain(loader, 2) == [[0, 1, 2], [3, 4, 5]]
    resumed = DataLoader(Stream(10), 3)
    resumed.load_state_dict(loader.state_dict())
    assert [b.tolist() for b in resumed] == [[6, 7, 8], [9]]


def run_plain(loader, n_batches):
    it = iter(loader)
    return [next(it).tolist() for _ in range(n_batches)]


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


def test_an_older_iterator_does_not_move_the_saved_position():
    loader = DataLoader(ids_dataset(8), 2)
    old = iter(loader)
    new = iter(loader)
    next(new)
    next(old), next(old)
    assert loader.state_dict()["batches_done"] == 1


@pytest.mark.parametrize("other, match", [
    (dict(dataset=ids_dataset(8)), r"saved for \(num_samples, batch_size, shuffle, drop_last\) "
                                   r"= \(7, 2, True, False\), but this loader has \(8, 2"),
    (dict(batch_size=3), "this loader has"),
    (dict(seed=None), "saved by a loader with a generator"),
])
def test_load_state_dict_mismatch(other, match):
    loader = DataLoader(ids_dataset(7), 2, shuffle=True, seed=0)
    run(loader, 1)
    kwargs = dict(dataset=ids_dataset(7), batch_size=2, shuffle=True, seed=0)
    kwargs.update(other)
    with pytest.raises(ValueError, match=match):
        DataLoader(**kwargs).load_state_dict(loader.state_dict())


def test_no_warnings_on_a_plain_epoch():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        epoch_ids(DataLoader(ids_dataset(5), 2, shuffle=True))
