"""Data loading with PyTorch's names (``torch.utils.data``): data sets, samplers, the
DataLoader and its collate functions.

- ``dataset``: ``Dataset``, ``IterableDataset``, ``TensorDataset``, ``ArrayDataset``,
  ``ConcatDataset``, ``StackDataset``, ``ChainDataset``, ``Subset``, ``random_split``;
- ``sampler``: ``Sampler``, ``SequentialSampler``, ``RandomSampler``,
  ``SubsetRandomSampler``, ``WeightedRandomSampler``, ``BatchSampler``;
- ``dataloader``: ``DataLoader`` (worker processes with ``num_workers > 0``),
  ``default_collate``, ``default_convert``, ``get_worker_info``.

A ``DistributedSampler`` (one shard of the data set per process) belongs to this package
too, beside the other samplers, when ``retrograd.distributed`` grows one.

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
from retrograd.utils.data.sampler import (
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "Dataset", "IterableDataset", "TensorDataset", "ArrayDataset", "ConcatDataset",
    "StackDataset", "ChainDataset", "Subset", "random_split", "Sampler", "SequentialSampler",
    "RandomSampler", "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler",
    "DataLoader", "default_collate", "default_convert", "get_worker_info",
]
