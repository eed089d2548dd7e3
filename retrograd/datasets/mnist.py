"""MNIST and Fashion-MNIST from their IDX files, and the IDX reader itself.

The IDX format (LeCun's): a 4-byte big-endian magic number ``0x00 0x00 <type> <ndim>`` (type
0x08 is uint8, so 2051 = 0x00000803 is uint8 with 3 dims: images, and 2049 = 0x00000801 is
uint8 with 1 dim: labels), then ``ndim`` big-endian uint32 sizes, then the data, row-major.
Files may be raw or gzip'd (told apart by the gzip signature, not by the name).

retrograd does not download data: put the four files of a split in ``root`` (or in
``root/MNIST/raw``, torchvision's layout) and load them from there.
"""

import gzip
import os
import zlib

import numpy as np

from retrograd.datasets.transforms import ToTensor
from retrograd.utils.data import ArrayDataset

__all__ = ["MNIST", "FashionMNIST", "read_idx"]

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_SIGNATURE = b"\x1f\x8b"


def read_idx(path, expected_magic=None, who="read_idx"):
    """The array stored in an IDX file (raw or gzip'd), in native byte order.

    Checks the magic number (against ``expected_magic`` when given), that the file holds
    exactly the bytes its header announces (no fewer: truncated; no more: trailing bytes),
    and raises a ``ValueError`` naming the file otherwise.

    Example:
        >>> import gzip, os, tempfile
        >>> import numpy as np
        >>> from retrograd.datasets.mnist import read_idx
        >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
        >>> with gzip.open(path, "wb") as f:
        ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
        >>> read_idx(path, expected_magic=2049)
        array([7, 2, 1], dtype=uint8)
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as raw:
            compressed = raw.read(2) == _GZIP_SIGNATURE
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
            return _read_idx_stream(f, path, expected_magic, who, compressed)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise ValueError(f"{who}: {path} is not a valid gzip file or is truncated ({e})") \
            from None


def _read_idx_stream(f, path, expected_magic, who, compressed):
    what = "the decompressed file" if compressed else "the file"
    header = _read_exactly(f, 4)
    if len(header) < 4:
        raise ValueError(f"{who}: {path} is truncated: {what} has {len(header)} bytes, fewer "
                         f"than the 4 of an IDX magic number")
    magic = int.from_bytes(header, "big")
    ndim, type_code = header[3], header[2]
    if header[:2] != b"\0\0" or type_code not in _IDX_TYPES or ndim == 0 or \
            (expected_magic is not None and magic != expected_magic):
        expected = f"{expected_magic} (0x{expected_magic:08X})" if expected_magic else \
            "0x0000TTDD (TT a type code, DD the number of dims)"
        raise ValueError(f"{who}: {path} has magic number {magic} (0x{magic:08X}), expected "
                         f"{expected}; it is not the IDX file expected here")
    dims_bytes = _read_exactly(f, 4 * ndim)
    if len(dims_bytes) < 4 * ndim:
        raise ValueError(f"{who}: {path} is truncated inside its header ({ndim} dims announced, "
                         f"{len(dims_bytes) // 4} present)")
    shape = tuple(int(d) for d in np.frombuffer(dims_bytes, dtype=">u4"))
    dtype = _IDX_TYPES[type_code]
    expected_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    data = np.empty(expected_bytes, dtype=np.uint8)
    got = f.readinto(memoryview(data)) if expected_bytes else 0
    while got < expected_bytes:
        more = f.readinto(memoryview(data)[got:])
        if not more:
            break
        got += more
    header_size = 4 + 4 * ndim
    if got < expected_bytes:
        raise ValueError(f"{who}: {path} is truncated: its header announces shape {shape}, "
                         f"{expected_bytes} bytes of data after the {header_size}-byte header, "
                         f"but {what} holds only {got}")
    extra = len(f.read())
    if extra:
        raise ValueError(f"{who}: {path} has {extra} bytes after the data its header announces "
                         f"(shape {shape}, {expected_bytes} bytes); is it the right file?")
    array = data.view(dtype).reshape(shape)
    return array if dtype.itemsize == 1 else array.astype(dtype.newbyteorder("="))


def _read_exactly(f, count):
    chunks, remaining = [], count
    while remaining:
        chunk = f.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class MNIST(ArrayDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grayscale.

    ``dataset[i]`` is ``(image, label)``: the image is ``transform(data[i])`` (default
    ``ToTensor()``: float32 (1, 28, 28) in [0, 1]), the label an int in 0..9. ``data`` holds
    the uint8 images (N, 28, 28), ``targets`` the int64 labels (N,), ``classes`` the class
    names. Batches through ``DataLoader`` are taken in one go (``ArrayDataset.get_batch``).

    Files (raw or ``.gz``), looked up in ``root``, then ``root/<Name>/raw``, ``root/<Name>``:
    ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte`` (train=True) and
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte`` (train=False).

    Args:
        root: the directory holding the files.
        train: the training split (True) or the test split (False).
        transform: callable on one uint8 image (28, 28); default ``ToTensor()``.
        target_transform: callable on one int label.
        download: accepted for torchvision compatibility; retrograd never downloads, so True
            only changes the error message when files are missing.

    Example:
        >>> import os, retrograd
        >>> from retrograd.datasets import MNIST
        >>> root = os.path.join(os.path.dirname(retrograd.__file__), "..", "tests", "data",
        ...                     "mnist")  # the 100-image sample shipped with the tests
        >>> ds = MNIST(root, train=False)
        >>> len(ds), ds.data.shape, ds.targets[:5].tolist()
        (100, (100, 28, 28), [7, 2, 1, 0, 4])
        >>> image, label = ds[0]
        >>> image.shape, image.dtype, label
        ((1, 28, 28), retrograd.float32, 7)
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    _files = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = os.path.expanduser(os.fspath(root))
        self.train = bool(train)
        images_path, labels_path = (self._find(name, download) for name in self._files[self.train])
        name = type(self).__name__
        images = read_idx(images_path, IMAGES_MAGIC, name)
        labels = read_idx(labels_path, LABELS_MAGIC, name)
        if len(images) != len(labels):
            raise ValueError(f"{name}: {images_path} holds {len(images)} images but "
                             f"{labels_path} holds {len(labels)} labels; the files do not "
                             f"belong together")
        if labels.size and labels.max() >= len(self.classes):
            raise ValueError(f"{name}: {labels_path} has label {labels.max()}, expected labels "
                             f"0..{len(self.classes) - 1}")
        super().__init__(images, labels.astype(np.int64),
                         transform if transform is not None else ToTensor(), target_transform)

    def _find(self, base, download):
        """The first existing spelling of ``base`` (raw, .gz, or with '.idx' as in the
        original gzip headers) in the directories torchvision users keep it in."""
        name = type(self).__name__
        folders = [self.root, os.path.join(self.root, name, "raw"), os.path.join(self.root, name)]
        spellings = [base, base + ".gz", base.replace("-idx", ".idx"),
                     base.replace("-idx", ".idx") + ".gz"]
        for folder in folders:
            for spelling in spellings:
                path = os.path.join(folder, spelling)
                if os.path.isfile(path):
                    return path
        all_files = ", ".join(f + ".gz" for f in self._files[True] + self._files[False])
        note = " (retrograd does not download data sets)" if download else ""
        raise FileNotFoundError(
            f"{name}: cannot find {base} or {base}.gz in any of {folders}{note}. "
            f"Put the IDX files of the split there ({all_files}, raw or gzip'd).")

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def _extra_repr_lines(self):
        return [f"Root location: {self.root}", f"Split: {'Train' if self.train else 'Test'}"]


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): 28x28 grayscale clothing images in 10 classes, same files
    and layout as ``MNIST`` (looked up in ``root`` or ``root/FashionMNIST/raw``).

    Example:
        >>> from retrograd.datasets import FashionMNIST
        >>> FashionMNIST.classes[:3]
        ['T-shirt/top', 'Trouser', 'Pullover']
    """

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
