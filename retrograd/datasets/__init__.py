"""Data sets for the case studies: scikit-learn's digits (always available offline), MNIST and
Fashion-MNIST (IDX files), CIFAR-10 (python or binary batches), image ``transforms``, character
``text`` for language models (with a ``shakespeare`` corpus shipped in the package, public
domain, see data/README.md), and algorithmic ``sequence_tasks`` for seq2seq models.

Each data set is an ``ArrayDataset``: ``.data`` (raw uint8 or float images), ``.targets``
(int64 labels), ``.classes``, and ``dataset[i] == (transform(data[i]), label)``. Batches go
through ``retrograd.utils.data.DataLoader`` in one fancy index per batch.
"""

from retrograd.datasets import sequence_tasks, shakespeare, text, transforms
from retrograd.datasets.cifar10 import CIFAR10, load_cifar_batch, read_cifar_binary
from retrograd.datasets.digits import Digits
from retrograd.datasets.mnist import MNIST, FashionMNIST, read_idx
from retrograd.datasets.shakespeare import load_shakespeare, shakespeare_path

__all__ = ["Digits", "MNIST", "FashionMNIST", "CIFAR10", "transforms", "read_idx",
           "load_cifar_batch", "read_cifar_binary", "text", "sequence_tasks", "shakespeare",
           "shakespeare_path", "load_shakespeare"]
