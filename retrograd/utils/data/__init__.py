"""Data loading with PyTorch's names (``torch.utils.data``): data sets, samplers, the
DataLoader and its collate functions.

- ``dataset``: ``Dataset``, ``IterableDataset``, ``TensorDataset``, ``ArrayDataset``,
  ``ConcatDataset``, ``StackDataset``, ``ChainDataset``, ``Subset``, ``random_split``;
- ``sampler``: ``Sampler``, ``SequentialSampler``, ``RandomSampler``,
  ``SubsetRandomSampler``, ``WeightedRandomSampler``, ``BatchSampler``;
- ``distributed``: ``DistributedSampler`` (one shard of the data set per process of a
  data-parallel job);
- ``dataloader``: ``DataLoader`` (worker processes with ``num_workers > 0``),
  ``default_collate``, ``default_convert``, ``get_worker_info``.

Randomness comes from ``retrograd.Generator`` objects (``generator=``) or from
``retrograd.default_generator``; see docs/pytorch-compatibility.md, "Data loading and random
generators".
"""

from retrograd.utils.data._utils.collate import default_collate, default_convert
from retrograd.utils.data._utils.worker import get_worker_info
from retrograd.utils.data.dataloader import DataLoader
from retrograd.utils.data.dataset import (
    ArrayDataset, ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset,
    TensorDataset, random_split,
)
from retrograd.utils.data.distributed import DistributedSampler
from retrograd.utils.data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "ArrayDataset", "ConcatDataset",
    "StackDataset", "ChainDataset", "Subset", "random_split", "Sampler", "SequentialSampler",
    "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
    "DistributedSampler",
    "DataLoader", "default_collate", "default_convert", "get_worker_info",
]
