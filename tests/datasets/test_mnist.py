"""MNIST / FashionMNIST and the IDX reader: the shipped sample, the full shared MNIST (when
present), torchvision's folder layouts, and corrupted files."""

import gzip
import hashlib
import os
import shutil
import struct

import numpy as np
import pytest

import retrograd as rg
from retrograd.datasets import MNIST, FashionMNIST, read_idx, transforms
from retrograd.utils.data import DataLoader, default_collate

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
SAMPLE_MNIST = os.path.join(SAMPLES, "mnist")
SHARED = os.environ.get("RETROGRAD_SHARED_DATA", os.path.join(
    os.path.dirname(os.path.dirname(SAMPLES)), "..", "shared", "data"))
SHARED_MNIST = os.path.join(SHARED, "mnist")
needs_shared_mnist = pytest.mark.skipif(
    not os.path.isfile(os.path.join(SHARED_MNIST, "train-images-idx3-ubyte.gz")),
    reason="the full MNIST of ../shared/data is not present")

FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
# From the shared data README (the known MNIST label counts of digits 0-9).
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def decode_by_hand(path, index, raw=None):
    """Image ``index`` of an IDX image file, decoded with struct alone (no retrograd code)."""
    if raw is None:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 2051
    start = 16 + index * rows * cols
    pixels = struct.unpack(f"{rows * cols}B", raw[start:start + rows * cols])
    return np.array(pixels, dtype=np.uint8).reshape(rows, cols)


def label_by_hand(path, index):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    assert struct.unpack(">I", raw[:4])[0] == 2049
    return raw[8 + index]


def copy_sample(tmp_path, sub="", names=FILES):
    folder = tmp_path / sub if sub else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(os.path.join(SAMPLE_MNIST, name), folder / name)
    return folder


def raw_idx(name):
    with gzip.open(os.path.join(SAMPLE_MNIST, name), "rb") as f:
        return f.read()


# ---------------------------------------------------------------------- the shipped sample
def test_sample_checksums_match_the_readme():
    with open(os.path.join(SAMPLES, "SHA256SUMS")) as f:
        sums = dict(reversed(line.split()) for line in f if line.strip())
    for name in FILES:
        with open(os.path.join(SAMPLE_MNIST, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sums[f"mnist/{name}"]


@pytest.mark.parametrize("train, first_labels", [
    (True, [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]),   # the well-known first MNIST labels
    (False, [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]),
])
def test_sample_reads(train, first_labels):
    ds = MNIST(SAMPLE_MNIST, train=train)
    assert len(ds) == 100 and ds.data.shape == (100, 28, 28) and ds.data.dtype == np.uint8
    assert ds.targets.dtype == np.int64 and ds.targets[:10].tolist() == first_labels
    prefix = "train" if train else "t10k"
    for k in (0, 1, 99):
        hand = decode_by_hand(os.path.join(SAMPLE_MNIST, f"{prefix}-images-idx3-ubyte.gz"), k)
        np.testing.assert_array_equal(ds.data[k], hand)
        assert ds.targets[k] == label_by_hand(
            os.path.join(SAMPLE_MNIST, f"{prefix}-labels-idx1-ubyte.gz"), k)
    image, label = ds[0]
    assert image.shape == (1, 28, 28) and image.dtype == rg.float32 and label == first_labels[0]
    np.testing.assert_array_equal(image.numpy()[0], ds.data[0].astype(np.float32) / 255)
    assert 0 < ds.data[0].max() <= 255 and ds.data[0].min() == 0


def test_classes_and_repr():
    ds = MNIST(SAMPLE_MNIST, train=False)
    assert ds.classes[7] == "7 - seven" and ds.class_to_idx["0 - zero"] == 0
    assert "Number of datapoints: 100" in repr(ds) and "Split: Test" in repr(ds)
    assert FashionMNIST.classes[9] == "Ankle boot"


def test_loader_fast_path_matches_sample_path():
    ds = MNIST(SAMPLE_MNIST, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))]))
    fast = list(DataLoader(ds, 32, shuffle=True, seed=0))
    slow = list(DataLoader(ds, 32, shuffle=True, seed=0, collate_fn=default_collate))
    assert [x.shape for x, _ in fast] == [(32, 1, 28, 28)] * 3 + [(4, 1, 28, 28)]
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())
        assert xf.dtype == rg.float32 and yf.dtype == rg.int64


# ---------------------------------------------------------------------- the full MNIST
@pytest.mark.slow
@needs_shared_mnist
def test_full_mnist_counts_and_pixels():
    for train, counts, size in [(True, TRAIN_COUNTS, 60000), (False, TEST_COUNTS, 10000)]:
        ds = MNIST(SHARED_MNIST, train=train)
        assert ds.data.shape == (size, 28, 28)
        assert np.bincount(ds.targets, minlength=10).tolist() == counts
        prefix = "train" if train else "t10k"
        with gzip.open(os.path.join(SHARED_MNIST, f"{prefix}-images-idx3-ubyte.gz")) as f:
            raw = f.read()
        for k in (0, 1, size - 1):
            np.testing.assert_array_equal(ds.data[k], decode_by_hand(None, k, raw))
        sample = MNIST(SAMPLE_MNIST, train=train)
        np.testing.assert_array_equal(sample.data, ds.data[:100])
        np.testing.assert_array_equal(sample.targets, ds.targets[:100])


# ---------------------------------------------------------------------- layouts and formats
def test_torchvision_layout_and_raw_files(tmp_path):
    folder = tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True)
    for name in FILES:  # decompressed, under the '.idx' spelling of the original gzip headers
        (folder / name[:-3].replace("-idx", ".idx")).write_bytes(raw_idx(name))
    ds = MNIST(tmp_path, train=False)
    np.testing.assert_array_equal(ds.data, MNIST(SAMPLE_MNIST, train=False).data)
    copy_sample(tmp_path, "FashionMNIST/raw")
    assert len(FashionMNIST(tmp_path)) == 100


def test_read_idx_other_types(tmp_path):
    values = np.array([[1, -2, 3], [70000, 5, -6]], dtype=">i4")
    path = tmp_path / "ints.idx"
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + struct.pack(">II", 2, 3) + values.tobytes())
    got = read_idx(path)
    assert got.dtype == np.int32 and got.dtype.isnative
    np.testing.assert_array_equal(got, values)


# ---------------------------------------------------------------------- errors
def test_missing_files_list_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        MNIST(tmp_path, download=True)
    message = str(info.value)
    assert "MNIST: cannot find train-images-idx3-ubyte or train-images-idx3-ubyte.gz" in message
    assert str(tmp_path) in message and os.path.join("MNIST", "raw") in message
    assert "t10k-labels-idx1-ubyte.gz" in message and "does not download" in message
    copy_sample(tmp_path, names=FILES[:3])
    MNIST(tmp_path)  # the training files are all there
    with pytest.raises(FileNotFoundError, match="cannot find t10k-labels-idx1-ubyte"):
        MNIST(tmp_path, train=False)


def write_images(tmp_path, payload, gz=True):
    folder = copy_sample(tmp_path)
    (folder / FILES[0]).unlink()
    name = FILES[0] if gz else FILES[0][:-3]
    (folder / name).write_bytes(gzip.compress(payload) if gz else payload)
    return os.path.join(folder, name)


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_images(tmp_path, gz):
    path = write_images(tmp_path, raw_idx(FILES[0])[:-100], gz)
    what = "the decompressed file" if gz else "the file"
    with pytest.raises(ValueError, match=(
            rf"MNIST: {path} is truncated: its header announces shape \(100, 28, 28\), 78400 "
            rf"bytes of data after the 16-byte header, but {what} holds only 78300")):
        MNIST(tmp_path)


def test_truncated_header(tmp_path):
    write_images(tmp_path, raw_idx(FILES[0])[:10])
    with pytest.raises(ValueError, match=r"truncated inside its header \(3 dims announced, 1"):
        MNIST(tmp_path)
    write_images(tmp_path, b"\0\0")
    with pytest.raises(ValueError, match="fewer than the 4 of an IDX magic number"):
        MNIST(tmp_path)


def test_truncated_gzip_stream(tmp_path):
    folder = copy_sample(tmp_path)
    data = (folder / FILES[0]).read_bytes()
    (folder / FILES[0]).write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="is not a valid gzip file or is truncated"):
        MNIST(tmp_path)


def test_wrong_magic(tmp_path):
    folder = copy_sample(tmp_path)
    shutil.copy(folder / FILES[1], folder / FILES[0])  # labels where the images should be
    with pytest.raises(ValueError, match=r"has magic number 2049 \(0x00000801\), expected 2051 "
                                         r"\(0x00000803\)"):
        MNIST(tmp_path)
    write_images(tmp_path, b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="magic number"):
        MNIST(tmp_path)


def test_trailing_bytes(tmp_path):
    write_images(tmp_path, raw_idx(FILES[0]) + bytes(5))
    with pytest.raises(ValueError, match="has 5 bytes after the data its header announces"):
        MNIST(tmp_path)


def test_count_mismatch(tmp_path):
    folder = copy_sample(tmp_path)
    labels = raw_idx(FILES[1])
    (folder / FILES[1]).write_bytes(gzip.compress(
        labels[:4] + struct.pack(">I", 99) + labels[8:-1]))
    with pytest.raises(ValueError, match=r"holds 100 images but .*train-labels-idx1-ubyte.gz "
                                         r"holds 99 labels"):
        MNIST(tmp_path)


def test_label_out_of_range(tmp_path):
    folder = copy_sample(tmp_path)
    labels = bytearray(raw_idx(FILES[1]))
    labels[8 + 5] = 10
    (folder / FILES[1]).write_bytes(gzip.compress(bytes(labels)))
    with pytest.raises(ValueError, match=r"has label 10, expected labels 0..9"):
        MNIST(tmp_path)
