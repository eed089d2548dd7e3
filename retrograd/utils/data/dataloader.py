"""``DataLoader``: batches of a data set, in the main process or in worker processes, with
PyTorch's signature and argument checks (``torch.utils.data.dataloader``).

How an epoch runs. ``iter(loader)`` starts an epoch: it draws a base seed for the workers
from the loader's generator (``retrograd.default_generator`` when it has none), then starts
the batch sampler, which draws the epoch's order (``RandomSampler``) from the same generator.
Both draws happen whether or not there are workers, so ``num_workers`` changes neither the
batches nor the generator's stream in the main process. The sampler always runs in the main
process; workers only turn batches of indices into batches of data.

Workers (``num_workers > 0``). Each worker is a process with its own copy of the data set,
started with the default multiprocessing start method (fork on Linux, as PyTorch) or the
``multiprocessing_context`` given. The main process deals batches of indices to the workers
in turn, keeps ``prefetch_factor`` batches per worker in flight, and hands the results out in
the sampler's order (``in_order=False``: as they arrive). Worker ``i`` seeds Python's
``random`` and retrograd's default generator with ``base_seed + i`` (and NumPy's global
generator with a seed mixed from both), so random transforms in workers are reproducible from
the loader's generator; it runs retrograd's kernels and BLAS on one thread, calls
``worker_init_fn(i)``, and ``get_worker_info()`` tells it who it is. An exception in a
worker is re-raised in the main process, with the worker's id and traceback. Workers exit at
the end of the epoch (or live on with ``persistent_workers=True``), and when the iterator is
garbage-collected.

Resuming. ``state_dict()`` records the epoch, the batches already handed out, and the state
of the generators the epoch drew from, as they were before its draws; after
``load_state_dict``, the next ``iter(loader)`` redraws that epoch's order and continues it
with the batches that were still to come, bit for bit.
"""

import contextlib
import multiprocessing
import os
import warnings

from retrograd import _checks
from retrograd import random as _random
from retrograd.utils.data._utils.collate import default_collate, default_convert
from retrograd.utils.data._utils.fetch import FetchSpec, make_fetcher
from retrograd.utils.data._utils.worker import (
    ExceptionWrapper, IterableDatasetStopIteration, ResumeIteration, get_worker_info,
)
from retrograd.utils.data._utils.worker_pool import WorkerPool
from retrograd.utils.data.dataset import IterableDataset
from retrograd.utils.data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler,
)

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info"]

# attributes that PyTorch forbids changing once the loader is made
_FIXED = ("batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers")


class _InfiniteConstantSampler(Sampler):
    """The sampler of an IterableDataset: None forever (the data set decides when to stop)."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Batches of a data set, optionally shuffled, loaded in the main process or in worker
    processes; PyTorch's ``torch.utils.data.DataLoader``.

    Each ``iter(loader)`` (each ``for batch in loader``) is one epoch: every sample once, in
    order, in a new random order (``shuffle=True``), or in the order of ``sampler`` /
    ``batch_sampler``. With a batch size, samples are collated into batches by
    ``collate_fn`` (``default_collate``); ``batch_size=None`` yields the samples one by one
    (through ``default_convert``). An ``IterableDataset`` is read as a stream, without a
    sampler.

    Batches of array-backed data sets (TensorDataset, ArrayDataset, the image data sets,
    Subsets of them) are taken in one fancy index by their ``get_batch`` when no
    ``collate_fn`` is given; other data sets are read sample by sample (or through their
    ``__getitems__``) and collated.

    Args:
        dataset: a map-style data set (``__getitem__`` and ``__len__``) or an IterableDataset.
        batch_size: samples per batch (a positive int), or None for no batching.
        shuffle: draw a new order every epoch (map-style data sets only).
        sampler: the order of the samples (an iterable of indices with ``__len__``); not
            with ``shuffle``.
        batch_sampler: yields whole lists of indices; not with ``batch_size``, ``shuffle``,
            ``sampler`` or ``drop_last``.
        num_workers: worker processes (0: load in the main process).
        collate_fn: turns a list of samples into a batch.
        pin_memory: accepted for PyTorch's sake; retrograd has no accelerator to pin memory
            for, so it only warns.
        drop_last: leave out the last batch when it is smaller than ``batch_size``.
        timeout: seconds to wait for a batch from the workers before a RuntimeError (0:
            forever); for ``num_workers > 0`` only.
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker, after its
            seeding and before it loads data.
        multiprocessing_context: the start method ("fork", "spawn", "forkserver") or a
            multiprocessing context (default: the platform's default method).
        generator: the ``retrograd.Generator`` of the shuffling and of the workers' base seed.
        prefetch_factor: batches in flight per worker (default 2 with workers).
        persistent_workers: keep the workers (and their data set copies) between epochs.
        pin_memory_device: accepted and ignored (deprecated in PyTorch).
        in_order: hand out batches in the sampler's order (False: as workers finish them).
        seed: retrograd's shorthand for ``generator=retrograd.Generator().manual_seed(seed)``.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.data import DataLoader, TensorDataset
        >>> ds = TensorDataset(rg.arange(10).reshape(5, 2), rg.tensor([0, 1, 0, 1, 1]))
        >>> loader = DataLoader(ds, batch_size=2)
        >>> len(loader)
        3
        >>> [y.tolist() for x, y in loader]
        [[0, 1], [0, 1], [1]]
        >>> shuffled = DataLoader(ds, batch_size=2, shuffle=True,
        ...                       generator=rg.Generator().manual_seed(0))
        >>> sorted(v for _, y in shuffled for v in y.tolist())
        [0, 0, 1, 1, 1]
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True, seed=None):
        self._initialized = False
        self._iterable = isinstance(dataset, IterableDataset)
        _check_dataset(dataset, self._iterable, sampler is None and batch_sampler is None)
        num_workers, prefetch_factor = _check_workers(num_workers, prefetch_factor,
                                                      persistent_workers, timeout)
        _check_callables(collate_fn, worker_init_fn)
        generator = _resolve_generator(generator, seed)
        shuffle = _check_order(self._iterable, shuffle, sampler, batch_sampler)
        batch_size, drop_last = _check_batching(batch_size, shuffle, sampler, batch_sampler,
                                                drop_last)
        if sampler is None:
            sampler = self._default_sampler(dataset, shuffle, generator)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = bool(pin_memory)
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = bool(in_order)
        self.batch_size = batch_size
        self.drop_last = bool(drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self.seed = seed
        self._user_collate = collate_fn
        self.collate_fn = collate_fn or (default_collate if self._auto_collation
                                         else default_convert)
        self.persistent_workers = bool(persistent_workers)
        self._iterator = None          # the persistent workers' iterator
        self._epoch = 0                # epochs started so far
        self._position = None          # batches handed out in the open epoch (None: none open)
        self._epoch_states = None      # generator states before the open epoch's draws
        self._resume = False           # the next iter() continues the open epoch
        self._warn_about_workers()
        self._initialized = True

    def _default_sampler(self, dataset, shuffle, generator):
        if self._iterable:
            return _InfiniteConstantSampler()
        if shuffle:
            return RandomSampler(dataset, generator=generator)
        return SequentialSampler(dataset)

    def __setattr__(self, name, value):
        if name in _FIXED and getattr(self, "_initialized", False):
            raise ValueError(f"{name} attribute should not be set after "
                             f"{type(self).__name__} is initialized")
        super().__setattr__(name, value)

    @property
    def multiprocessing_context(self):
        return self._multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, context):
        self._multiprocessing_context = _check_context(context, self.num_workers)

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self):
        if self._iterable:
            length = len(self.dataset)
            if self.batch_size is None:
                return length
            return length // self.batch_size if self.drop_last else -(-length // self.batch_size)
        return len(self._index_sampler)

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessDataLoaderIter(self)
        if not self.persistent_workers:
            return _MultiProcessingDataLoaderIter(self)
        if self._iterator is None or not self._iterator.running:
            self._iterator = _MultiProcessingDataLoaderIter(self)
        else:
            self._iterator.reset()
        return self._iterator

    def _fetch_spec(self):
        return FetchSpec(iterable=self._iterable, auto_collation=self._auto_collation,
                         collate_fn=self.collate_fn, drop_last=self.drop_last,
                         get_batch=self._user_collate is None,
                         worker_init_fn=self.worker_init_fn)

    def _context(self):
        return self.multiprocessing_context or multiprocessing.get_context()

    def _warn_about_workers(self):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count()
        if cores and self.num_workers > cores:
            warnings.warn(f"This DataLoader will create {self.num_workers} worker processes "
                          f"in total. Our suggested max number of worker in current system is "
                          f"{cores}, which is smaller than what this DataLoader is going to "
                          f"create. Please be aware that excessive worker creation might get "
                          f"DataLoader running slow or even freeze, lower the worker number "
                          f"to avoid potential slowness/freeze if necessary.", stacklevel=3)

    # ------------------------------------------------------------------ epochs
    def _begin_epoch(self):
        """(epoch, base seed, iterator of index batches, batches to discard) for a new
        iterator: a new epoch, or the saved one continued after load_state_dict."""
        if not self._resume:
            self._epoch += 1
            self._position = 0
            self._epoch_states = [g.numpy_generator().bit_generator.state
                                  for g in self._epoch_generators()]
            base_seed, indices = self._draw_epoch()
            return self._epoch, base_seed, indices, 0
        self._resume = False
        with _replaying(self._epoch_generators(), self._epoch_states):
            base_seed, indices = self._draw_epoch()
            if self._iterable:  # the batches to discard are the data set's own
                return self._epoch, base_seed, indices, self._position
            for _ in range(self._position):  # a sampler drawing lazily redraws here too
                next(indices, None)
        return self._epoch, base_seed, indices, 0

    def _draw_epoch(self):
        base_seed = int(_random.integers(0, 1 << 63, (), self.generator))
        return base_seed, iter(self._index_sampler)

    def _epoch_generators(self):
        """The generators an epoch may draw from: the loader's, its samplers', the default
        one (each once, in a fixed order)."""
        candidates = [self.generator, getattr(self.sampler, "generator", None),
                      getattr(self.batch_sampler, "generator", None),
                      getattr(getattr(self.batch_sampler, "sampler", None), "generator", None),
                      _random.default_generator]
        found = []
        for g in candidates:
            if isinstance(g, _random.Generator) and all(g is not f for f in found):
                found.append(g)
        return found

    def _handed_out(self, epoch):
        if epoch == self._epoch and self._position is not None:
            self._position += 1

    def _finished(self, epoch):
        if epoch == self._epoch:
            self._position = None

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self):
        """What a checkpoint needs to continue the current epoch bit for bit: the epoch count,
        the batches already handed out (None between epochs), the states of the generators
        the epoch drew from as they were before its draws, and the loader's own generator's
        state (None without a generator)."""
        return {
            "epoch": self._epoch,
            "batches_done": self._position,
            "epoch_rng_state": self._epoch_states,
            "rng_state": None if self.generator is None
            else self.generator.numpy_generator().bit_generator.state,
            "num_samples": None if self._iterable else len(self.dataset),
            "batch_size": self.batch_size,
            "shuffle": isinstance(self.sampler, RandomSampler),
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state):
        """Restore ``state_dict()``; the next ``iter(loader)`` continues the saved epoch (or
        starts the next one when the state was saved between epochs). With the default
        generator, also restore ``retrograd.get_rng_state()`` saved beside it: that generator
        drives later epochs too. Workers' random streams are restored exactly only without
        ``persistent_workers``."""
        saved = (state.get("num_samples"), state.get("batch_size"), state.get("shuffle"),
                 state.get("drop_last"))
        here = (None if self._iterable else len(self.dataset), self.batch_size,
                isinstance(self.sampler, RandomSampler), self.drop_last)
        if saved != here:
            raise ValueError(
                f"DataLoader.load_state_dict: the state was saved for (num_samples, batch_size, "
                f"shuffle, drop_last) = {saved}, but this loader has {here}")
        if (state["rng_state"] is None) != (self.generator is None):
            raise ValueError("DataLoader.load_state_dict: the state was saved by a loader "
                             f"{'without' if state['rng_state'] is None else 'with'} a "
                             f"generator (or seed), this one has generator={self.generator!r}")
        states = state["epoch_rng_state"]
        if states is not None and len(states) != len(self._epoch_generators()):
            raise ValueError(f"DataLoader.load_state_dict: the state holds {len(states)} "
                             f"generator states, this loader draws from "
                             f"{len(self._epoch_generators())} generators")
        if self.generator is not None:
            self.generator.set_state(state["rng_state"])
        self._epoch = state["epoch"]
        self._position = state["batches_done"]
        self._epoch_states = states
        self._resume = self._position is not None


@contextlib.contextmanager
def _replaying(generators, states):
    """Run the block with ``generators`` set to ``states``, then put back their states of
    now (an epoch's draws are redone from the saved states on the side)."""
    now = [g.numpy_generator().bit_generator.state for g in generators]
    try:
        for g, state in zip(generators, states):
            g.set_state(state)
        yield
    finally:
        for g, state in zip(generators, now):
            g.set_state(state)


# ---------------------------------------------------------------------- argument checks
def _check_dataset(dataset, iterable, needs_len):
    if iterable:
        return
    if not hasattr(dataset, "__getitem__") or (needs_len and not hasattr(dataset, "__len__")):
        raise TypeError(f"DataLoader: expected a map-style data set (with __getitem__ and "
                        f"__len__) or an IterableDataset, got {type(dataset).__name__}")


def _check_workers(num_workers, prefetch_factor, persistent_workers, timeout):
    if not _checks.is_int(num_workers) or num_workers < 0:
        raise ValueError(f"DataLoader: num_workers option should be non-negative; use "
                         f"num_workers=0 to disable multiprocessing (got {num_workers!r})")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        raise ValueError(f"DataLoader: timeout option should be non-negative, got {timeout!r}")
    if num_workers == 0:
        if prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified in "
                             "multiprocessing. Let num_workers > 0 to enable multiprocessing, "
                             "otherwise set prefetch_factor to None.")
        if persistent_workers:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        if timeout > 0:
            raise ValueError(f"DataLoader: timeout={timeout} needs num_workers > 0 (it bounds "
                             f"the wait for a worker's batch)")
        return 0, None
    if prefetch_factor is None:
        return int(num_workers), 2
    prefetch_factor = _checks.positive_int("DataLoader", "prefetch_factor", prefetch_factor)
    return int(num_workers), prefetch_factor


def _check_callables(collate_fn, worker_init_fn):
    if collate_fn is not None and not callable(collate_fn):
        raise TypeError(f"DataLoader: collate_fn must be callable, got {collate_fn!r}")
    if worker_init_fn is not None and not callable(worker_init_fn):
        raise TypeError(f"DataLoader: worker_init_fn must be callable, got {worker_init_fn!r}")


def _resolve_generator(generator, seed):
    if seed is not None:
        if generator is not None:
            raise ValueError("DataLoader: give a generator or a seed, not both")
        return _random.Generator().manual_seed(seed)
    if generator is not None and not isinstance(generator, _random.Generator):
        raise TypeError(f"DataLoader: generator must be a retrograd.Generator, got "
                        f"{type(generator).__name__}")
    return generator


def _check_order(iterable, shuffle, sampler, batch_sampler):
    """shuffle as a bool, after PyTorch's checks of what goes with what."""
    if iterable:
        if shuffle not in (False, None):
            raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle "
                             f"option, but got shuffle={shuffle}")
        if sampler is not None:
            raise ValueError(f"DataLoader with IterableDataset: expected unspecified sampler "
                             f"option, but got sampler={sampler}")
        if batch_sampler is not None:
            raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                             f"batch_sampler option, but got batch_sampler={batch_sampler}")
        return False
    shuffle = bool(shuffle)
    if sampler is not None and shuffle:
        raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
    return shuffle


def _check_batching(batch_size, shuffle, sampler, batch_sampler, drop_last):
    """(batch_size, drop_last) after PyTorch's checks: a batch_sampler decides the batches
    alone (batch_size None), batch_size=None turns batching off."""
    if batch_sampler is not None:
        if batch_size != 1 or shuffle or sampler is not None or drop_last:
            raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                             "batch_size, shuffle, sampler, and drop_last")
        return None, False
    batch_size = _checks.positive_int("DataLoader", "batch_size", batch_size, allow_none=True)
    if batch_size is None and drop_last:
        raise ValueError("DataLoader: batch_size=None option disables auto-batching and is "
                         "mutually exclusive with drop_last")
    return batch_size, bool(drop_last)


def _check_context(context, num_workers):
    if context is None:
        return None
    if num_workers == 0:
        raise ValueError(f"multiprocessing_context can only be used with multi-process "
                         f"loading (num_workers > 0), but got num_workers={num_workers}")
    if isinstance(context, str):
        methods = multiprocessing.get_all_start_methods()
        if context not in methods:
            raise ValueError(f"multiprocessing_context option should specify a valid start "
                             f"method in {methods!r}, but got "
                             f"multiprocessing_context={context!r}")
        return multiprocessing.get_context(context)
    if not isinstance(context, multiprocessing.context.BaseContext):
        raise TypeError(f"multiprocessing_context option should be a valid context object or "
                        f"a string specifying the start method, but got "
                        f"multiprocessing_context={context}")
    return context


# ---------------------------------------------------------------------- iterators
class _BaseDataLoaderIter:
    """One epoch of a loader: ``__next__`` hands out its batches in turn."""

    def __init__(self, loader):
        self._loader = loader
        self._spec = loader._fetch_spec()
        self._dataset = loader.dataset
        if loader.pin_memory:
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, "
                          "then device pinned memory won't be used (retrograd runs on the CPU)",
                          stacklevel=3)
        self._start_epoch()

    def _start_epoch(self):
        self._epoch, self._base_seed, self._indices, self._discard = \
            self._loader._begin_epoch()

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def __next__(self):
        try:
            while self._discard:  # a resumed IterableDataset: skip what was handed out
                self._next_data()
                self._discard -= 1
            batch = self._next_data()
        except StopIteration:
            self._loader._finished(self._epoch)
            raise
        self._loader._handed_out(self._epoch)
        return batch

    def _next_data(self):
        raise NotImplementedError

    def __getstate__(self):
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class _SingleProcessDataLoaderIter(_BaseDataLoaderIter):
    def __init__(self, loader):
        super().__init__(loader)
        self._fetcher = make_fetcher(self._spec, self._dataset)

    def _next_data(self):
        indices = next(self._indices)
        return self._fetcher.fetch(indices)


class _MultiProcessingDataLoaderIter(_BaseDataLoaderIter):
    """Batches from worker processes, handed out in the sampler's order (or as they come,
    without ``in_order``). Task ``k`` is the k-th batch of indices of the epoch; ``_pending``
    maps each task sent and not yet handed out to ``(worker,)`` or ``(worker, data)``."""

    def __init__(self, loader):
        super().__init__(loader)
        self._in_order = loader.in_order
        self._persistent = loader.persistent_workers
        self._max_in_flight = loader.prefetch_factor * loader.num_workers
        self._pool = WorkerPool(loader._context(), self._spec, self._dataset, self._base_seed,
                                loader.num_workers, loader.timeout)
        self._reset_tasks()

    @property
    def running(self):
        return self._pool.alive

    def reset(self):
        """Start the next epoch on the same (persistent) workers."""
        self._start_epoch()
        for worker_id in range(len(self._pool.workers)):
            self._pool.active[worker_id] = True
            self._pool.send(worker_id, ResumeIteration())
        for _ in range(len(self._pool.workers)):
            self._receive_resume()
        self._reset_tasks()

    def _receive_resume(self):
        while True:
            task, _ = self._pool.receive()
            if isinstance(task, ResumeIteration):
                return

    def _reset_tasks(self):
        self._sent = 0             # tasks sent so far
        self._next_task = 0        # the task to hand out next
        self._pending = {}
        self._tasks_of = [0] * len(self._pool.workers)
        self._turn = 0
        for _ in range(self._max_in_flight):
            self._send_next()

    def _send_next(self):
        """Send the next batch of indices to the next active worker (if there is both; the
        worker is found first, so that no batch of indices is drawn and then lost)."""
        worker_id = self._pick_worker()
        if worker_id is None:
            return
        try:
            indices = next(self._indices)
        except StopIteration:
            return
        self._pool.send(worker_id, (self._sent, indices))
        self._pending[self._sent] = (worker_id,)
        self._tasks_of[worker_id] += 1
        self._sent += 1

    def _pick_worker(self):
        workers = len(self._pool.workers)
        share = self._max_in_flight // max(1, sum(self._pool.active))
        for _ in range(workers):
            worker_id, self._turn = self._turn, (self._turn + 1) % workers
            if self._pool.active[worker_id] and (self._in_order
                                                 or self._tasks_of[worker_id] < share):
                return worker_id
        return None

    def _next_data(self):
        while True:
            self._skip_lost_tasks()
            if self._next_task >= self._sent:
                self._end_of_epoch()
                raise StopIteration
            entry = self._pending[self._next_task]
            if len(entry) == 2:
                del self._pending[self._next_task]
                self._next_task += 1
                return self._hand_out(*entry)
            task, data = self._pool.receive()
            if isinstance(data, IterableDatasetStopIteration):
                self._worker_exhausted(data.worker_id)
                continue
            if task == self._next_task or not self._in_order:
                worker_id = self._pending.pop(task)[0]
                if task == self._next_task:
                    self._next_task += 1
                return self._hand_out(worker_id, data)
            self._pending[task] += (data,)

    def _skip_lost_tasks(self):
        """Pass over tasks sent to a worker that has since run out of data (they never
        come back)."""
        while self._next_task < self._sent:
            entry = self._pending.get(self._next_task)
            if entry is not None and (len(entry) == 2 or self._pool.active[entry[0]]):
                return
            self._pending.pop(self._next_task, None)
            self._next_task += 1

    def _worker_exhausted(self, worker_id):
        """The worker's IterableDataset ran out: it gets no more tasks (the ones it still
        has never come back, and _skip_lost_tasks passes over them)."""
        self._tasks_of[worker_id] = 0
        if self._persistent:
            self._pool.active[worker_id] = False
        else:
            self._pool.retire(worker_id)
        self._send_next()

    def _hand_out(self, worker_id, data):
        self._tasks_of[worker_id] -= 1
        self._send_next()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    def _end_of_epoch(self):
        if not self._persistent:
            self._pool.shutdown()

    def _shutdown_workers(self):
        self._pool.shutdown()
