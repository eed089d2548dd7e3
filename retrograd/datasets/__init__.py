"""Data sets for the case studies: scikit-learn's digits (always available offline), MNIST and
Fashion-MNIST (IDX files), CIFAR-10 (python or binary batches), image ``transforms``, character
``text`` for language models, and algorithmic ``sequence_tasks`` for seq2seq models.

Each data set is an ``ArrayDataset``: ``.data`` (raw uint8 or float images), ``.targets``
(int64 labels), ``.classes``, and ``dataset[i] == (transform(data[i]), label)``. Batches go
through ``retrograd.utils.data.DataLoader`` in one fancy index per batch.
"""

from retrograd.datasets import sequence_tasks, text, transforms
from retrograd.datasets.cifar10 import CIFAR10, load_cifar_batch, read_cifar_binary
from retrograd.datasets.digits import Digits
from retrograd.datasets.mnist import MNIST, FashionMNIST, read_idx

__all__ = ["Digits", "MNIST", "FashionMNIST", "CIFAR10", "transforms", "read_idx",
           "load_cifar_batch", "read_cifar_binary", "text", "sequence_tasks"]
