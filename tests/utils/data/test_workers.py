"""DataLoader with worker processes (num_workers > 0): the same batches as in the main process,
reproducible worker seeds, get_worker_info, worker_init_fn, IterableDataset sharding, errors
(exceptions, timeouts, dead workers), prefetching, persistent workers, start methods, and
that no worker outlives its iterator."""

import gc
import multiprocessing
import os
import pathlib
import random
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch.utils.data as tud

import retrograd as rg
from retrograd.utils.data import (
    DataLoader, Dataset, IterableDataset, RandomSampler, default_collate, get_worker_info,
)
from tests.utils.data.helpers import Squares, epoch_ids, ids_dataset

ROOT = pathlib.Path(__file__).resolve().parents[3]


class Noisy(Dataset):
    """Sample i: (i, a draw from retrograd, from NumPy's global and from Python's generator,
    and who made it)."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        info = get_worker_info()
        who = -1 if info is None else info.id
        return i, rg.rand(1).item(), float(np.random.rand()), random.random(), who


class Sharded(IterableDataset):
    """0..n-1, each worker reading every num_workers-th sample from its id on."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


class TorchSharded(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = tud.get_worker_info()
        return iter(range(info.id, self.n, info.num_workers))


class Failing(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            return explode(i)
        return i


def explode(i):
    raise KeyError(f"sample {i} is missing")


class Slow(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        time.sleep(5.0)
        return i


class Dying(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        os._exit(3)


class Counter(Dataset):
    """Counts, in each copy, the samples read (persistent workers keep their copy)."""

    def __init__(self):
        self.reads = 0

    def __len__(self):
        return 6

    def __getitem__(self, i):
        self.reads += 1
        return self.reads


def record_worker(worker_id):
    info = get_worker_info()
    info.dataset.initialized_by = (worker_id, info.num_workers)


class Initialized(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return getattr(self, "initialized_by", None)


def pairs(samples):
    """A collate_fn of the user's: (sum of indices, count)."""
    return sum(s[0] for s in samples), len(samples)


def exited(pids):
    """True when none of the processes exists any more (not even as a zombie)."""
    for pid in pids:
        status = pathlib.Path(f"/proc/{pid}/status")
        if status.exists():
            return False
    return True


def wait_exited(pids, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if exited(pids):
            return True
        time.sleep(0.05)
    return exited(pids)


# ---------------------------------------------------------------------- same batches
@pytest.mark.parametrize("collate_fn", [None, pairs])
def test_workers_yield_exactly_the_batches_of_the_main_process(collate_fn):
    ds = Squares(23)

    def epochs(num_workers):
        loader = DataLoader(ds, 4, shuffle=True, num_workers=num_workers, collate_fn=collate_fn,
                            generator=rg.Generator().manual_seed(5))
        return [[as_list(b) for b in loader] for _ in range(2)]

    single, multi = epochs(0), epochs(2)
    assert single == multi
    assert single[0] != single[1]


def as_list(batch):
    if isinstance(batch, (list, tuple)):
        return [as_list(b) for b in batch]
    return batch.tolist() if isinstance(batch, rg.Tensor) else batch


def test_workers_leave_the_main_stream_as_the_main_process_does():
    def stream_after(num_workers):
        rg.manual_seed(3)
        epoch_ids(DataLoader(ids_dataset(10), 3, shuffle=True, num_workers=num_workers))
        return rg.rand(4).tolist()

    assert stream_after(0) == stream_after(2)


def test_lambda_collate_and_fast_path_with_workers():
    loader = DataLoader(ids_dataset(9), 4, num_workers=2, collate_fn=lambda s: len(s))
    assert list(loader) == [4, 4, 1]
    x, y = next(iter(DataLoader(ids_dataset(9), 4, num_workers=2)))
    assert y.tolist() == [0, 1, 2, 3] and x.dtype == rg.float32 and x.shape == (4, 3)


def test_in_order_false_yields_every_batch():
    loader = DataLoader(ids_dataset(20), 3, num_workers=2, in_order=False)
    batches = epoch_ids(loader)
    assert sorted(i for b in batches for i in b) == list(range(20)) and len(batches) == 7


# ---------------------------------------------------------------------- seeds and workers
def test_worker_seeds_are_reproducible_and_distinct():
    def draws(seed):
        loader = DataLoader(Noisy(), 3, num_workers=2, generator=rg.Generator().manual_seed(seed))
        return [as_list(b) for b in loader]

    first, again, other = draws(1), draws(1), draws(2)
    assert first == again and first != other
    workers = [b[4] for b in first]
    assert workers == [[0] * 3, [1] * 3, [0] * 3, [1] * 3]  # batches dealt in turn
    by_worker = {w[0]: [] for w in workers}
    for batch, (w, *_) in zip(first, workers):
        by_worker[w].append(batch[1])
    assert by_worker[0] != by_worker[1]  # different streams in different workers
    # every generator got its own seed in each worker: no two columns equal
    assert first[0][1] != first[0][2] != first[0][3]


def test_worker_info_seed_is_base_seed_plus_id():
    class Seeds(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            info = get_worker_info()
            return info.seed, info.id, info.num_workers, rg.initial_seed()

    g = rg.Generator().manual_seed(11)
    base = int(rg.Generator().manual_seed(11).numpy_generator().integers(0, 1 << 63,
                                                                          dtype=np.int64))
    batches = [as_list(b) for b in DataLoader(Seeds(), 1, num_workers=2, generator=g)]
    assert batches == [[[base], [0], [2], [base]], [[base + 1], [1], [2], [base + 1]]]
    assert get_worker_info() is None


def test_worker_init_fn_runs_in_each_worker_before_loading():
    loader = DataLoader(Initialized(), 1, num_workers=2, worker_init_fn=record_worker,
                        collate_fn=lambda s: s[0])
    assert list(loader) == [(0, 2), (1, 2), (0, 2), (1, 2)]


# ---------------------------------------------------------------------- IterableDataset
def test_sharded_iterable_dataset_matches_torch():
    ours = [b.tolist() for b in DataLoader(Sharded(11), 3, num_workers=2)]
    theirs = [b.tolist() for b in tud.DataLoader(TorchSharded(11), 3, num_workers=2)]
    assert ours == theirs
    assert sorted(i for b in ours for i in b) == list(range(11))


class Whole(IterableDataset):
    def __iter__(self):
        return iter(range(5))


def test_unsharded_iterable_dataset_is_read_once_per_worker():
    batches = [b.tolist() for b in DataLoader(Whole(), 5, num_workers=2)]
    assert batches == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]


# ---------------------------------------------------------------------- errors
def test_worker_exception_is_reraised_with_its_worker_and_traceback():
    loader = DataLoader(Failing(), 2, num_workers=2)
    it = iter(loader)
    assert next(it).tolist() == [0, 1] and next(it).tolist() == [2, 3]
    with pytest.raises(KeyError) as caught:
        next(it)
    message = str(caught.value)
    assert "Caught KeyError in DataLoader worker process 0" in message
    assert "Traceback" in message and "explode" in message and "sample 5 is missing" in message
    assert next(it).tolist() == [6, 7]  # as in torch, the iterator goes on


def test_worker_init_fn_error_is_reraised():
    loader = DataLoader(ids_dataset(4), 2, num_workers=1, worker_init_fn=_bad_init)
    with pytest.raises(ValueError, match="(?s)worker process 0.*bad init"):
        next(iter(loader))


def _bad_init(worker_id):
    raise ValueError("bad init")


def test_worker_init_fn_error_answers_every_task():
    it = iter(DataLoader(ids_dataset(4), 2, num_workers=1, worker_init_fn=_bad_init))
    for _ in range(2):
        with pytest.raises(ValueError, match="bad init"):
            next(it)


def test_a_batch_that_cannot_be_pickled_is_an_error_not_a_hang():
    loader = DataLoader(ids_dataset(4), 2, num_workers=1, timeout=20,
                        collate_fn=lambda samples: lambda: samples)
    with pytest.raises(Exception, match="(?s)pickling its batch.*lambda"):
        next(iter(loader))


def test_an_exception_class_that_cannot_be_pickled_comes_back_as_runtime_error():
    class Local(Exception):
        pass

    def fail(samples):
        raise Local("local trouble")

    with pytest.raises(RuntimeError,
                       match="(?s)Caught Local in DataLoader worker.*Local: local trouble"):
        next(iter(DataLoader(ids_dataset(4), 2, num_workers=1, collate_fn=fail)))


def test_timeout_is_a_clear_error():
    loader = DataLoader(Slow(), 2, num_workers=1, timeout=0.3)
    it = iter(loader)
    pids = it._pool.pids
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 0.3 seconds"):
        next(it)
    assert time.monotonic() - started < 2.5
    assert wait_exited(pids)


def test_a_dead_worker_is_reported_not_waited_for():
    it = iter(DataLoader(Dying(), 2, num_workers=2))
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid \d+ \(exit code 3\).*"
                                           r"exited unexpectedly"):
        next(it)
    assert wait_exited(it._pool.pids)


# ---------------------------------------------------------------------- workers' lifetime
def test_deleting_a_partly_read_iterator_stops_its_workers():
    it = iter(DataLoader(ids_dataset(50), 2, num_workers=2))
    next(it)
    pids = it._pool.pids
    assert not exited(pids)
    del it
    gc.collect()
    assert wait_exited(pids)
    assert not [p for p in multiprocessing.active_children() if p.pid in pids]


def test_workers_stop_at_the_end_of_an_epoch():
    it = iter(DataLoader(ids_dataset(6), 2, num_workers=2))
    list(it)
    assert wait_exited(it._pool.pids)


def test_persistent_workers_live_between_epochs_and_keep_their_data_set():
    loader = DataLoader(Counter(), 1, num_workers=2, persistent_workers=True,
                        collate_fn=lambda s: s[0])
    first = list(loader)
    pids = loader._iterator._pool.pids
    second = list(loader)
    assert loader._iterator._pool.pids == pids and not exited(pids)
    assert first == [1, 1, 2, 2, 3, 3] and second == [4, 4, 5, 5, 6, 6]
    half = iter(loader)
    assert next(half) == 7  # an epoch left open, then a new one: the open epoch's batches
    # in flight (tasks 0, 2, 4 to worker 0, 1 and 3 to worker 1) are read and discarded
    assert list(loader) == [10, 9, 11, 10, 12, 11]
    del loader, half
    gc.collect()
    assert wait_exited(pids)


def test_prefetch_keeps_prefetch_factor_batches_per_worker_in_flight():
    class CountingBatches:
        def __init__(self):
            self.handed = 0

        def __iter__(self):
            for start in range(0, 40, 2):
                self.handed += 1
                yield [start, start + 1]

        def __len__(self):
            return 20

    batches = CountingBatches()
    it = iter(DataLoader(ids_dataset(40), batch_sampler=batches, num_workers=2,
                         prefetch_factor=3))
    assert batches.handed == 6
    next(it)
    assert batches.handed == 7
    del it


def test_resume_with_workers_continues_the_order():
    ds = Noisy()

    def make():
        return DataLoader(ds, 3, sampler=RandomSampler(ds), num_workers=2)

    rg.manual_seed(2)
    reference = [as_list(b)[0] for b in make()]
    rg.manual_seed(2)
    loader = make()
    it = iter(loader)
    head = [as_list(next(it))[0] for _ in range(2)]
    state, rng = loader.state_dict(), rg.get_rng_state()
    del it
    rg.manual_seed(50)
    resumed = make()
    resumed.load_state_dict(state)
    rg.set_rng_state(rng)
    tail = [as_list(b)[0] for b in resumed]
    assert head + tail == reference and sorted(sum(reference, [])) == list(range(12))


# ---------------------------------------------------------------------- start methods
def test_spawn_workers_load_module_level_data_sets():
    loader = DataLoader(ids_dataset(7), 3, num_workers=1, multiprocessing_context="spawn",
                        collate_fn=default_collate)
    assert epoch_ids(loader) == [[0, 1, 2], [3, 4, 5], [6]]


def test_spawn_with_an_unpicklable_collate_fn_says_what_to_do():
    loader = DataLoader(ids_dataset(4), 2, num_workers=1, multiprocessing_context="spawn",
                        collate_fn=lambda s: s)
    with pytest.raises(Exception, match="top level of a module"):
        iter(loader)


FORK_SAFETY = """
    import numba
    import retrograd as rg
    import retrograd.nn.functional as F
    from retrograd.utils.data import DataLoader, Dataset

    class Gelu(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            x = rg.randn(1 << 17)  # large enough for the parallel GELU kernel
            return float(F.gelu(x).sum() + (x[:4096].reshape(64, 64) @ rg.randn(64, 64)).sum())

    Gelu()[0]  # the parent runs BLAS and Numba's parallel (GNU OpenMP) threads
    print(numba.threading_layer())  # raises unless the parallel threads have run
    print(len(list(DataLoader(Gelu(), 2, num_workers=2))))
"""


def test_forked_workers_are_safe_after_the_parent_ran_parallel_kernels():
    """A short OpenBLAS spin lets the compiled kernels run in parallel (retrograd/_numba/
    policy.py); a forked worker that ran one would be aborted by GNU OpenMP (checked by hand:
    with the workers' one-thread setup removed, both workers die with SIGTERM)."""
    env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="4", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(FORK_SAFETY)],
                            capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "2"
