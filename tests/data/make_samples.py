"""Cut the small real-data samples in tests/data/ from the shared data (see README.md here).

Run from the repository root:  python tests/data/make_samples.py [path/to/shared/data]

- mnist/: the first 100 training and the first 100 test images and labels of MNIST, written
  as IDX files with headers saying 100, gzip'd with an empty file name and mtime 0 (so the
  output is byte-reproducible).
- cifar-10-batches-py/data_batch_1: the first 50 CIFAR-10 training images (records 1..50 of
  train_first200.bin, i.e. the first 50 images of the official data_batch_1) as a pickled
  batch in the official layout, written the way the official Python 2 files were: protocol 2,
  strings as Python 2 ``str`` (so they load as bytes with ``encoding="bytes"``), the array
  reconstructed through ``numpy.core.multiarray._reconstruct``.
- cifar-10-batches-py/batches.meta: the official meta dict (label_names in CIFAR-10 order).
"""

import gzip
import io
import os
import pickle
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


def idx_bytes(array):
    """An IDX file holding a uint8 array: magic 0x0000 08 <ndim>, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def gzip_bytes(payload):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as f:
        f.write(payload)
    return out.getvalue()


class Py2StylePickler(pickle._Pickler):
    """Protocol-2 pickles as Python 2's cPickle wrote them: str and bytes as (SHORT_)BINSTRING,
    NumPy's _reconstruct under its NumPy 1.x name."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", None) == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj):
    out = io.BytesIO()
    Py2StylePickler(out, protocol=2).dump(obj)
    return out.getvalue()


def write(path, payload):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(payload)


def read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def make_mnist(shared, count=100):
    for split in ("train", "t10k"):
        for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
            name = f"{split}-{kind}.gz"
            array = read_idx_gz(os.path.join(shared, "mnist", name))[:count]
            write(os.path.join(HERE, "mnist", name), gzip_bytes(idx_bytes(array)))


def make_cifar(shared, count=50):
    raw = np.fromfile(os.path.join(shared, "cifar-10", "train_first200.bin"), np.uint8)
    records = raw.reshape(-1, 3073)[:count]
    batch = {
        "batch_label": "training batch 1 of 5",
        "labels": [int(v) for v in records[:, 0]],
        "data": np.ascontiguousarray(records[:, 1:]),
        # The official file names are not in the shared data; these are the Kaggle PNG names.
        "filenames": [f"{k}.png" for k in range(1, count + 1)],
    }
    meta = {"num_cases_per_batch": count, "label_names": LABEL_NAMES, "num_vis": 3072}
    folder = os.path.join(HERE, "cifar-10-batches-py")
    write(os.path.join(folder, "data_batch_1"), py2_pickle(batch))
    write(os.path.join(folder, "batches.meta"), py2_pickle(meta))


def make_shakespeare(shared, lines=600):
    with open(os.path.join(shared, "tinyshakespeare", "input.txt"), "rb") as f:
        text = b"".join(f.readlines()[:lines])
    write(os.path.join(HERE, "tinyshakespeare_sample.txt"), text)


if __name__ == "__main__":
    shared_data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HERE, "..", "..", "..", "shared", "data")
    make_mnist(shared_data)
    make_cifar(shared_data)
    make_shakespeare(shared_data)
