"""What runs inside a DataLoader worker process: the loop that turns batches of indices into
batches of data, the worker's seeding, ``get_worker_info`` and the wrapper that carries an
exception back to the main process.

The protocol with the main process (retrograd/utils/data/dataloader.py):

- the worker reads ``(task, indices)`` from its own index queue and puts ``(task, batch)``,
  pickled by the worker itself, on the result queue that all workers share (a tensor pickles
  as its NumPy array);
- ``ResumeIteration`` on the index queue starts a new epoch (persistent workers): the worker
  makes a new fetcher (a new iterator over an IterableDataset) and echoes it back;
- ``None`` on the index queue, or the main process gone, ends the loop;
- an exception while fetching is sent back as an ``ExceptionWrapper`` (its type, the worker
  id and the traceback as text), re-raised in the main process; an IterableDataset that runs
  out sends ``IterableDatasetStopIteration`` instead.
"""

import dataclasses
import os
import pickle
import queue
import random
import sys
import traceback

import numpy as np

__all__ = ["WorkerInfo", "get_worker_info", "ExceptionWrapper", "worker_loop",
           "worker_numpy_seed"]

# seconds between checks that the main process is still alive while waiting for work
STATUS_CHECK_INTERVAL = 1.0

_worker_info = None


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """Who the current DataLoader worker is, as ``torch.utils.data.get_worker_info()`` gives it.

    Attributes:
        id: the worker's id, in ``[0, num_workers)``.
        num_workers: how many workers the loader runs.
        seed: the seed of this worker's retrograd and Python generators
            (``base_seed + id``, ``base_seed`` drawn in the main process from the loader's
            generator each time workers start).
        dataset: this worker's copy of the data set.
    """

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """The current worker's ``WorkerInfo`` inside a DataLoader worker process, None in the
    main process. An ``IterableDataset`` uses it to read only its share of the data:

    Example:
        >>> from retrograd.utils.data import IterableDataset, get_worker_info
        >>> class Range(IterableDataset):
        ...     def __init__(self, n):
        ...         self.n = n
        ...     def __iter__(self):
        ...         info = get_worker_info()
        ...         if info is None:          # the main process reads everything
        ...             return iter(range(self.n))
        ...         return iter(range(info.id, self.n, info.num_workers))
        >>> list(Range(4))
        [0, 1, 2, 3]
    """
    return _worker_info


@dataclasses.dataclass(frozen=True)
class IterableDatasetStopIteration:
    """A worker's IterableDataset is exhausted."""

    worker_id: int


@dataclasses.dataclass(frozen=True)
class ResumeIteration:
    """Start a new epoch on a persistent worker."""


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process as its type and the
    formatted traceback (an exception object may not pickle; its text always does)."""

    def __init__(self, where):
        exc_type, exc, _ = sys.exc_info()
        self.exc_type = exc_type if _picklable(exc_type) else RuntimeError
        self.type_name = exc_type.__name__
        self.where = where
        self.text = "".join(traceback.format_exception(exc_type, exc, exc.__traceback__))

    def reraise(self):
        """Raise an exception of the worker's type whose message holds the worker's id and
        the original traceback, as PyTorch does."""
        message = f"Caught {self.type_name} {self.where}.\nOriginal {self.text}"
        if self.exc_type is KeyError:
            # KeyError quotes its message as a key: wrap it so the traceback stays readable
            message = _KeyErrorMessage(message)
        try:
            error = self.exc_type(message)
        except Exception:  # a type whose constructor wants other arguments
            raise RuntimeError(message) from None
        raise error

    def __reduce__(self):
        return (_rebuild_exception_wrapper,
                (self.exc_type, self.type_name, self.where, self.text))


def _picklable(exc_type):
    """Whether the exception's class can travel by pickle (a class defined inside a function
    cannot; the error then comes back as a RuntimeError, its traceback naming the class)."""
    try:
        pickle.dumps(exc_type)
    except Exception:
        return False
    return True


class _KeyErrorMessage(str):
    def __repr__(self):
        return str(self)


def _rebuild_exception_wrapper(exc_type, type_name, where, text):
    wrapper = ExceptionWrapper.__new__(ExceptionWrapper)
    wrapper.exc_type, wrapper.type_name = exc_type, type_name
    wrapper.where, wrapper.text = where, text
    return wrapper


def worker_numpy_seed(base_seed, worker_id):
    """The seed of NumPy's global generator (``np.random``) in a worker: four 32-bit words
    mixed from the base seed and the worker id by NumPy's SeedSequence, so that it differs from
    the seed of Python's and retrograd's generators (``base_seed + worker_id``) and from the
    other workers' (PyTorch seeds it the same way, with its own copy of SeedSequence)."""
    mixed = np.random.SeedSequence([worker_id, base_seed & 0xFFFFFFFF, base_seed >> 32, 0])
    return mixed.generate_state(4)


def _seed_worker(base_seed, worker_id):
    from retrograd import random as _random

    seed = base_seed + worker_id
    random.seed(seed)
    _random.manual_seed(seed)
    np.random.seed(worker_numpy_seed(base_seed, worker_id))
    return seed


def _one_thread():
    """Run retrograd's own threads, its compiled kernels and BLAS on one thread in a worker,
    as PyTorch's workers do (torch.set_num_threads(1)): the workers already use the cores.

    It also makes a forked worker safe. The parent's copy threads do not exist in the child
    (a task handed to their pool would wait forever), and a compiled parallel kernel would
    use GNU OpenMP, which aborts the child when the parent ran it before the fork.

    NOTE: not retrograd.set_num_threads(1): that also imports Numba and starts its thread
    pool when the parent had not (0.5-0.7 s per worker, measured). Numba's threads are kept
    unused instead: the kernels' policy is set to serial when Numba is loaded already, else
    Numba, if this worker loads it, starts with one thread (NUMBA_NUM_THREADS is read at
    import) and retrograd/_fast.py sets the policy from that."""
    from retrograd.ops import _parallel

    _parallel.set_threads(1)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        threadpool_limits(limits=1, user_api="blas")
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = "1"
        return
    from retrograd._fast import enabled

    if enabled():
        from retrograd._numba import policy

        policy.use_threads(1)


def worker_loop(spec, dataset, index_queue, result_queue, done_event, base_seed, worker_id,
                num_workers):
    """The body of worker ``worker_id``. ``spec`` is the loader's ``FetchSpec`` (data set
    kind, collate function, worker_init_fn)."""
    global _worker_info
    try:
        _one_thread()
        seed = _seed_worker(base_seed, worker_id)
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed,
                                  dataset=dataset)
        fetcher = _new_fetcher(spec, dataset, worker_id, spec.worker_init_fn)
        _serve(spec, dataset, index_queue, result_queue, done_event, worker_id, fetcher)
    except KeyboardInterrupt:
        pass  # the main process sees it too and shuts the workers down
    if done_event.is_set():
        result_queue.cancel_join_thread()
        result_queue.close()


def _new_fetcher(spec, dataset, worker_id, init_fn=None):
    """A fetcher (after ``init_fn(worker_id)``), or the ExceptionWrapper of their failure,
    which then answers every task: a worker that could not start has nothing else to say."""
    from retrograd.utils.data._utils.fetch import make_fetcher

    try:
        if init_fn is not None:
            init_fn(worker_id)
        return make_fetcher(spec, dataset)
    except Exception:
        return ExceptionWrapper(f"in DataLoader worker process {worker_id}")


def _serve(spec, dataset, index_queue, result_queue, done_event, worker_id, fetcher):
    """Answer tasks until told to stop or orphaned (the main process gone)."""
    exhausted = False
    parent = os.getppid()
    while os.getppid() == parent:
        try:
            request = index_queue.get(timeout=STATUS_CHECK_INTERVAL)
        except queue.Empty:
            continue
        if request is None:
            break
        if isinstance(request, ResumeIteration):
            exhausted = False
            if not isinstance(fetcher, ExceptionWrapper):
                fetcher = _new_fetcher(spec, dataset, worker_id)
            _send(result_queue, request, None, worker_id)
            continue
        if done_event.is_set() or exhausted:
            continue
        task, indices = request
        if isinstance(fetcher, ExceptionWrapper):
            data = fetcher
        else:
            data, exhausted = _fetch(fetcher, indices, spec, worker_id)
        _send(result_queue, task, data, worker_id)
        del data, request, indices


def _send(result_queue, task, data, worker_id):
    """Put ``(task, data)`` on the result queue, pickled here: the queue would pickle it in a
    background thread, where a batch that cannot be pickled is dropped with a printed error
    and the main process waits for it forever."""
    try:
        payload = pickle.dumps((task, data), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        error = ExceptionWrapper(f"in DataLoader worker process {worker_id}, pickling its "
                                 f"batch for the main process")
        payload = pickle.dumps((task, error), protocol=pickle.HIGHEST_PROTOCOL)
    result_queue.put(payload)


def _fetch(fetcher, indices, spec, worker_id):
    """(batch, exhausted): the batch, or the marker of an exhausted IterableDataset, or the
    wrapped exception."""
    try:
        return fetcher.fetch(indices), False
    except StopIteration:
        if spec.iterable:
            return IterableDatasetStopIteration(worker_id), True
        return ExceptionWrapper(f"in DataLoader worker process {worker_id}"), False
    except Exception:
        return ExceptionWrapper(f"in DataLoader worker process {worker_id}"), False
