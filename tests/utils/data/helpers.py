"""Data sets shared by the data-loading tests, at module level so that worker processes
started with 'spawn' can unpickle them."""

import numpy as np

import retrograd as rg
from retrograd.utils.data import Dataset, TensorDataset


class Squares(Dataset):
    """A plain map-style data set (no fast path) that counts its __getitem__ calls."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.calls += 1
        return np.float32(i), i * i


def ids_dataset(n):
    """Sample i is (features, i): the label column identifies the sample."""
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    return TensorDataset(rg.tensor(x), rg.arange(n))


def epoch_ids(loader):
    return [y.tolist() for _, y in loader]
