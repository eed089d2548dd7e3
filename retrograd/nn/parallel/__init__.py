"""Parallel wrappers with PyTorch's names: ``DataParallel`` (one CPU process here) and
``DistributedDataParallel`` (data parallelism across processes, on MPI)."""

from retrograd.nn.parallel.data_parallel import DataParallel
from retrograd.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
