"""The worker processes of a DataLoader, seen from the main process: starting them, sending
them work, receiving their results (with a timeout, and noticing a worker that died), and
shutting them down, exactly once, when the epoch ends, the iterator is garbage-collected or
the interpreter exits. What to send and in which order is the iterator's business
(retrograd/utils/data/dataloader.py); what a worker does is in worker.py.
"""

import os
import pickle
import queue
import time
import weakref

from retrograd.utils.data._utils.worker import worker_loop

__all__ = ["WorkerPool"]

# seconds between checks that the workers are alive while waiting for a result
_LIVENESS_INTERVAL = 0.5
# seconds a worker gets to exit after it is told to, before it is terminated
_EXIT_GRACE = 2.0


class WorkerPool:
    """``num_workers`` processes running ``worker_loop``, each with its own index queue and
    all with one result queue.

    Args:
        context: the multiprocessing context that starts them (fork, spawn, forkserver).
        spec: the loader's FetchSpec.
        dataset: the data set (each worker gets a copy: inherited with fork, pickled else).
        base_seed: worker ``i`` seeds its generators with ``base_seed + i``.
        num_workers: how many processes.
        timeout: seconds ``receive`` waits for a result before it fails (0: forever).
    """

    def __init__(self, context, spec, dataset, base_seed, num_workers, timeout):
        self.timeout = timeout
        self.result_queue = context.Queue()
        self.done_event = context.Event()
        self.index_queues, self.workers = [], []
        self.active = [True] * num_workers
        self._grace = [_EXIT_GRACE]   # seconds workers get to exit; 0 once one has failed
        self._finalizer = weakref.finalize(self, _shutdown, os.getpid(), self.workers,
                                           self.index_queues, self.result_queue,
                                           self.done_event, self._grace)
        for worker_id in range(num_workers):
            self._start(context, spec, dataset, base_seed, worker_id, num_workers)

    def _start(self, context, spec, dataset, base_seed, worker_id, num_workers):
        index_queue = context.Queue()
        index_queue.cancel_join_thread()  # a dead worker must not block our exit
        process = context.Process(
            target=worker_loop, daemon=True,
            args=(spec, dataset, index_queue, self.result_queue, self.done_event, base_seed,
                  worker_id, num_workers))
        try:
            process.start()
        except (TypeError, AttributeError, pickle.PicklingError) as error:
            self.shutdown()
            raise _start_error(error, context, worker_id) from error
        self.index_queues.append(index_queue)
        self.workers.append(process)

    @property
    def pids(self):
        return [w.pid for w in self.workers]

    def send(self, worker_id, message):
        self.index_queues[worker_id].put(message)

    def retire(self, worker_id):
        """Tell a worker to exit (its IterableDataset is exhausted)."""
        self.active[worker_id] = False
        self.index_queues[worker_id].put(None)

    def receive(self):
        """The next ``(task, data)`` from any worker; a RuntimeError when ``timeout`` passes
        or an active worker has died (the pool is then shut down)."""
        deadline = time.monotonic() + self.timeout if self.timeout > 0 else None
        while True:
            wait = _LIVENESS_INTERVAL
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                return pickle.loads(self.result_queue.get(timeout=wait))
            except queue.Empty:
                pass
            self._check_alive()
            if deadline is not None and time.monotonic() >= deadline:
                self.shutdown(failed=True)
                raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds "
                                   f"waiting for a batch from its workers (timeout=)")

    def _check_alive(self):
        dead = [w for w, active in zip(self.workers, self.active)
                if active and not w.is_alive()]
        if dead:
            described = ", ".join(f"pid {w.pid} (exit code {w.exitcode})" for w in dead)
            self.shutdown(failed=True)
            raise RuntimeError(f"DataLoader worker ({described}) exited unexpectedly; a "
                               f"negative exit code is the signal that ended it (e.g. -9: "
                               f"killed, often for lack of memory)")

    def shutdown(self, failed=False):
        """Stop every worker and release the queues (once; later calls do nothing). After a
        failure (a timeout, a dead worker) the others are terminated without waiting: they
        may be stuck in the data set."""
        if failed:
            self._grace[0] = 0.0
        self._finalizer()

    @property
    def alive(self):
        return self._finalizer.alive


def _start_error(error, context, worker_id):
    method = context.get_start_method()
    message = (f"DataLoader: could not start worker process {worker_id} with the "
               f"{method!r} start method: {error}. With 'spawn' or 'forkserver' the data "
               f"set, collate_fn and worker_init_fn are pickled, so they must be defined at "
               f"the top level of a module (not lambdas or local classes)")
    try:
        return type(error)(message)
    except Exception:
        return RuntimeError(message)


def _shutdown(owner_pid, workers, index_queues, result_queue, done_event, grace):
    """Tell every worker to exit, wait for it (so that no zombie is left), terminate the ones
    that do not, and close the queues. Only the process that started the workers does this:
    a forked worker that inherits a pool must not stop its parent's workers."""
    if os.getpid() != owner_pid:
        return
    done_event.set()
    for index_queue in index_queues:
        try:
            index_queue.put(None)
        except (ValueError, OSError):  # already closed
            pass
    deadline = time.monotonic() + grace[0]
    for process in workers:
        process.join(timeout=max(0.0, deadline - time.monotonic()))
    for process in workers:
        if process.is_alive():
            process.terminate()
            process.join(timeout=_EXIT_GRACE)
    for q in (*index_queues, result_queue):
        q.cancel_join_thread()
        q.close()
