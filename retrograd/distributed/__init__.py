"""Data-parallel training across processes on MPI, with PyTorch's names
(``torch.distributed``): the default process group (``init_process_group``, ``get_rank``,
``get_world_size``, ...), and collectives on tensors (``all_reduce``, ``broadcast``,
``all_gather``, ``barrier``, and object forms). ``DistributedDataParallel`` and
``SyncBatchNorm`` are layers (retrograd.nn), ``DistributedSampler`` is in
retrograd.utils.data. docs/distributed.md tells how to launch with mpiexec and Slurm.

This package sits below nn/: it sees tensors and arrays, never modules.
"""

from retrograd.distributed.collectives import (ReduceOp, Work, all_gather, all_gather_object,
                                               all_reduce, barrier, broadcast,
                                               broadcast_object_list)
from retrograd.distributed.process_group import (DistributedError, DistributedTimeoutError,
                                                 destroy_process_group, get_backend, get_rank,
                                                 get_world_size, init_process_group,
                                                 is_available, is_initialized,
                                                 is_mpi_available)

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "is_mpi_available", "get_rank", "get_world_size", "get_backend", "ReduceOp", "Work",
           "all_reduce", "broadcast", "all_gather", "barrier", "all_gather_object",
           "broadcast_object_list", "DistributedError", "DistributedTimeoutError"]
