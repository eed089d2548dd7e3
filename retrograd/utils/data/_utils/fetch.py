"""Fetching one batch (or one sample) from a data set, the same in the main process and in a
worker: ``make_fetcher(spec, dataset).fetch(indices)``.

For a map-style data set with automatic batching, the batch is read in the fastest way the
data set offers: ``dataset.get_batch(indices)`` (retrograd's fast path: one fancy index on
the arrays, used when the loader has no ``collate_fn`` of the user's), else
``dataset.__getitems__(indices)`` (PyTorch's: a list of samples), else one ``dataset[i]``
per index; the samples then go through the collate function.
"""

import dataclasses

__all__ = ["FetchSpec", "make_fetcher"]


@dataclasses.dataclass(frozen=True)
class FetchSpec:
    """What a fetcher needs to know of its DataLoader (sent to every worker).

    Attributes:
        iterable: the data set is an IterableDataset.
        auto_collation: indices come in batches (a batch_size or a batch_sampler was given).
        collate_fn: turns a list of samples (or one sample, without auto_collation) into
            what the loader yields.
        drop_last: an IterableDataset's last incomplete batch is left out.
        get_batch: the data set's ``get_batch`` may make whole batches (no collate_fn of
            the user's).
        worker_init_fn: called with the worker id in each worker.
    """

    iterable: bool
    auto_collation: bool
    collate_fn: object
    drop_last: bool
    get_batch: bool
    worker_init_fn: object = None


def make_fetcher(spec, dataset):
    if spec.iterable:
        return _IterableFetcher(spec, dataset)
    return _MapFetcher(spec, dataset)


class _MapFetcher:
    def __init__(self, spec, dataset):
        self.spec, self.dataset = spec, dataset
        self.fast = spec.auto_collation and spec.get_batch and hasattr(dataset, "get_batch")

    def fetch(self, indices):
        if not self.spec.auto_collation:
            return self.spec.collate_fn(self.dataset[indices])
        if self.fast:
            return _as_collated(self.dataset.get_batch(indices))
        if getattr(self.dataset, "__getitems__", None):
            samples = self.dataset.__getitems__(indices)
        else:
            samples = [self.dataset[i] for i in indices]
        return self.spec.collate_fn(samples)


def _as_collated(batch):
    """A ``get_batch`` result in the structure ``default_collate`` gives: its tuple of fields
    becomes a list (PyTorch's default_collate turns tuple samples into a list of fields)."""
    if type(batch) is tuple:
        return list(batch)
    return batch


class _IterableFetcher:
    def __init__(self, spec, dataset):
        self.spec = spec
        self.iterator = iter(dataset)
        self.ended = False

    def fetch(self, indices):
        """A batch of the next ``len(indices)`` samples (the indices are placeholders), or the
        next sample without auto_collation; StopIteration when the data set is exhausted."""
        if self.ended:
            raise StopIteration
        if not self.spec.auto_collation:
            return self.spec.collate_fn(next(self.iterator))
        samples = []
        for _ in indices:
            try:
                samples.append(next(self.iterator))
            except StopIteration:
                self.ended = True
                break
        if not samples or (self.spec.drop_last and len(samples) < len(indices)):
            raise StopIteration
        return self.spec.collate_fn(samples)
