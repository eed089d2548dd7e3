"""Parallel wrappers with PyTorch's names: ``DataParallel`` (one CPU process here; data
parallelism across processes is the job of MPI-based distributed training)."""

from retrograd.nn.parallel.data_parallel import DataParallel

__all__ = ["DataParallel"]
