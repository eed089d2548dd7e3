"""The DataLoader's machinery, as ``torch.utils.data._utils``: collate (batches from
samples), fetch (a batch from a data set), worker (the loop inside a worker process) and
worker_pool (the workers seen from the main process)."""

from retrograd.utils.data._utils import collate, fetch, worker, worker_pool  # noqa: F401
