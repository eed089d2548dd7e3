"""CIFAR-10 from the official "python version" (pickled batches) or the binary version.

Python version (``cifar-10-python.tar.gz``, unpacked to ``cifar-10-batches-py/``): files
``data_batch_1`` .. ``data_batch_5`` and ``test_batch``, each a pickled dict with ``data``, a
uint8 array (N, 3072) whose rows are 1024 red, 1024 green, 1024 blue bytes (32x32 row-major),
and ``labels``, a list of N ints in 0..9; ``batches.meta`` holds ``label_names``. The batches
were pickled by Python 2, so they are read with ``encoding="bytes"`` and keys may be bytes.

Binary version (``cifar-10-binary.tar.gz``, ``cifar-10-batches-bin/``): ``data_batch_1.bin``
.. ``data_batch_5.bin`` and ``test_batch.bin``, records of 3073 bytes (1 label byte, then
the 3072 pixel bytes in the same order); ``batches.meta.txt`` lists the class names.

Unpickling runs code named in the file, so batches are read by an unpickler that only lets
through what a CIFAR batch holds (NumPy arrays and dtypes): a tampered file fails cleanly.
"""

import codecs
import os
import pickle

import numpy as np

from retrograd.datasets.transforms import ToTensor
from retrograd.utils.data import ArrayDataset

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy < 2
    from numpy.core.multiarray import _reconstruct

__all__ = ["CIFAR10", "load_cifar_batch", "read_cifar_binary"]

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
_PIXELS = 3 * 32 * 32
_RECORD = 1 + _PIXELS

# NumPy 1.x pickles name numpy.core, NumPy 2.x numpy._core; both are the same functions.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes at protocol 2
}


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _RefusedGlobal(f"refusing to load {module}.{name}: a CIFAR-10 batch holds "
                                 f"only NumPy arrays, lists, numbers and strings") from None


def _unpickle(path, who):
    try:
        with open(path, "rb") as f:
            obj = _BatchUnpickler(f, encoding="bytes").load()
    except _RefusedGlobal as e:
        raise ValueError(f"{who}: {path}: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError) as e:
        raise ValueError(f"{who}: {path} is not a readable CIFAR-10 python batch "
                         f"(truncated or not a pickle: {e})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{who}: {path} holds a {type(obj).__name__}, expected the dict of a "
                         f"CIFAR-10 batch")
    return {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def load_cifar_batch(path, who="load_cifar_batch"):
    """One pickled CIFAR-10 batch as ``(images, labels)``: uint8 (N, 32, 32, 3) and int64 (N,).

    Example:
        >>> import os, retrograd
        >>> from retrograd.datasets.cifar10 import load_cifar_batch
        >>> path = os.path.join(os.path.dirname(retrograd.__file__), "..", "tests", "data",
        ...                     "cifar-10-batches-py", "data_batch_1")  # a 50-image sample
        >>> images, labels = load_cifar_batch(path)
        >>> images.shape, labels[:4].tolist()
        ((50, 32, 32, 3), [6, 9, 9, 4])
    """
    path = os.fspath(path)
    batch = _unpickle(path, who)
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{who}: {path} has keys {sorted(batch)}, expected 'data' and 'labels'")
    data, labels = batch["data"], np.asarray(batch["labels"])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
            or data.shape[1] != _PIXELS:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{who}: {path} has 'data' of shape {shape} and type "
                         f"{getattr(data, 'dtype', type(data).__name__)}, expected uint8 "
                         f"(N, {_PIXELS})")
    if labels.shape != (len(data),):
        raise ValueError(f"{who}: {path} has {len(data)} images but {labels.size} labels")
    return _to_images(data), _check_labels(labels, path, who)


def read_cifar_binary(path, who="read_cifar_binary"):
    """A binary CIFAR-10 file (records of 1 label byte + 3072 pixel bytes) as ``(images,
    labels)``: uint8 (N, 32, 32, 3) and int64 (N,).

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from retrograd.datasets.cifar10 import read_cifar_binary
        >>> path = os.path.join(tempfile.mkdtemp(), "one.bin")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(bytes([3]) + bytes(3072))
        >>> images, labels = read_cifar_binary(path)
        >>> images.shape, labels.tolist()
        ((1, 32, 32, 3), [3])
    """
    path = os.fspath(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % _RECORD:
        raise ValueError(f"{who}: {path} has {raw.size} bytes, not a whole number of "
                         f"{_RECORD}-byte records ({raw.size // _RECORD} records and "
                         f"{raw.size % _RECORD} bytes left over: truncated?)")
    records = raw.reshape(-1, _RECORD)
    return _to_images(records[:, 1:]), _check_labels(records[:, 0], path, who)


def _to_images(rows):
    """(N, 3072) rows of planar RGB -> (N, 32, 32, 3), contiguous (fast batch indexing)."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _check_labels(labels, path, who):
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{who}: {path} has labels in {labels.min()}..{labels.max()}, "
                         f"expected 0..9")
    return labels


class CIFAR10(ArrayDataset):
    """CIFAR-10: 32x32 colour images in 10 classes, 50,000 for training and 10,000 for test.

    ``dataset[i]`` is ``(image, label)``: the image is ``transform(data[i])`` (default
    ``ToTensor()``: float32 (3, 32, 32) in [0, 1]), the label an int in 0..9. ``data`` holds the
    uint8 images (N, 32, 32, 3), ``targets`` the int64 labels (N,), ``classes`` the names
    (from the meta file when present).

    Files are looked up in ``root``, ``root/cifar-10-batches-py`` and
    ``root/cifar-10-batches-bin``: the pickled batches ``data_batch_1`` .. ``data_batch_5``
    (train) or ``test_batch`` (test), or else the binary ``.bin`` files of the same names.
    Every batch of the split must be present.

    Args:
        root: the directory holding the batches.
        train: the five training batches (True) or the test batch (False).
        transform: callable on one uint8 image (32, 32, 3); default ``ToTensor()``.
        target_transform: callable on one int label.
        download: accepted for torchvision compatibility; retrograd never downloads.

    Example:
        >>> import os, tempfile, shutil, retrograd
        >>> from retrograd.datasets import CIFAR10
        >>> sample = os.path.join(os.path.dirname(retrograd.__file__), "..", "tests", "data",
        ...                       "cifar-10-batches-py")
        >>> root = tempfile.mkdtemp()
        >>> for k in range(1, 6):  # five copies of the 50-image sample make a "training set"
        ...     _ = shutil.copy(os.path.join(sample, "data_batch_1"),
        ...                     os.path.join(root, f"data_batch_{k}"))
        >>> ds = CIFAR10(root)
        >>> len(ds), ds.data.shape, ds.classes[ds[0][1]]
        (250, (250, 32, 32, 3), 'frog')
    """

    _train_files = [f"data_batch_{k}" for k in range(1, 6)]
    _test_files = ["test_batch"]

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = os.path.expanduser(os.fspath(root))
        self.train = bool(train)
        folder, binary = self._find(download)
        files = self._train_files if self.train else self._test_files
        read = read_cifar_binary if binary else load_cifar_batch
        parts = [read(os.path.join(folder, f + (".bin" if binary else "")), "CIFAR10")
                 for f in files]
        self.classes = self._read_classes(folder, binary)
        super().__init__(np.concatenate([p[0] for p in parts]),
                         np.concatenate([p[1] for p in parts]),
                         transform if transform is not None else ToTensor(), target_transform)

    def _find(self, download):
        files = self._train_files if self.train else self._test_files
        folders = [self.root, os.path.join(self.root, "cifar-10-batches-py"),
                   os.path.join(self.root, "cifar-10-batches-bin")]
        for folder in folders:
            for binary in (False, True):
                suffix = ".bin" if binary else ""
                if all(os.path.isfile(os.path.join(folder, f + suffix)) for f in files):
                    return folder, binary
        note = " (retrograd does not download data sets)" if download else ""
        raise FileNotFoundError(
            f"CIFAR10: cannot find the {'training' if self.train else 'test'} batches "
            f"{files} (python version) or the same names with .bin (binary version) in any of "
            f"{folders}{note}. Unpack cifar-10-python.tar.gz or cifar-10-binary.tar.gz there.")

    @staticmethod
    def _read_classes(folder, binary):
        if binary:
            path = os.path.join(folder, "batches.meta.txt")
            if os.path.isfile(path):
                with open(path, encoding="ascii") as f:
                    names = [line.strip() for line in f if line.strip()]
                if len(names) == 10:
                    return names
            return list(CLASSES)
        path = os.path.join(folder, "batches.meta")
        if not os.path.isfile(path):
            return list(CLASSES)
        names = _unpickle(path, "CIFAR10").get("label_names")
        if not isinstance(names, list) or len(names) != 10:
            raise ValueError(f"CIFAR10: {path} has label_names {names!r}, expected 10 names")
        return [n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in names]

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def _extra_repr_lines(self):
        return [f"Root location: {self.root}", f"Split: {'Train' if self.train else 'Test'}"]
