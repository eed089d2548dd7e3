"""CIFAR-10: the pickled sample batch, the CIFAR10 data set over python and binary batches,
the shared first-200 binary file (when present), and broken or hostile files."""

import hashlib
import os
import pickle
import shutil

import numpy as np
import pytest

import retrograd as rg
from retrograd.datasets import CIFAR10, load_cifar_batch, read_cifar_binary, transforms
from retrograd.utils.data import DataLoader

SAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
SAMPLE_DIR = os.path.join(SAMPLES, "cifar-10-batches-py")
SAMPLE_BATCH = os.path.join(SAMPLE_DIR, "data_batch_1")
SHARED = os.environ.get("RETROGRAD_SHARED_DATA", os.path.join(
    os.path.dirname(os.path.dirname(SAMPLES)), "..", "shared", "data"))
SHARED_BIN = os.path.join(SHARED, "cifar-10", "train_first200.bin")
needs_shared_cifar = pytest.mark.skipif(not os.path.isfile(SHARED_BIN),
                                        reason="../shared/data/cifar-10 is not present")

# From the shared data README: the known first labels of data_batch_1, and class counts.
FIRST_LABELS = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
COUNTS_FIRST_200 = [14, 28, 22, 21, 19, 19, 18, 21, 15, 23]
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]


def raw_sample():
    """The sample batch's dict, read by plain pickle (the way the CIFAR page says to)."""
    with open(SAMPLE_BATCH, "rb") as f:
        return pickle.load(f, encoding="bytes")


def write_batch(path, rows, labels):
    """A batch in the official layout, pickled by Python 3 (str keys)."""
    with open(path, "wb") as f:
        pickle.dump({"batch_label": "test", "labels": [int(v) for v in labels],
                     "data": np.ascontiguousarray(rows), "filenames": []}, f, protocol=2)


def write_binary(path, rows, labels):
    records = np.concatenate([np.asarray(labels, np.uint8)[:, None], rows], axis=1)
    records.tofile(path)


def make_root(folder, binary=False):
    """Five training batches of 10 sample images each, plus a test batch of 5."""
    batch = raw_sample()
    rows, labels = batch[b"data"], np.array(batch[b"labels"])
    os.makedirs(folder, exist_ok=True)
    write = write_binary if binary else write_batch
    suffix = ".bin" if binary else ""
    for k in range(5):
        write(os.path.join(folder, f"data_batch_{k + 1}{suffix}"), rows[10 * k:10 * k + 10],
              labels[10 * k:10 * k + 10])
    write(os.path.join(folder, f"test_batch{suffix}"), rows[45:], labels[45:])
    return rows, labels


# ---------------------------------------------------------------------- the sample batch
def test_sample_checksum_matches_the_readme():
    with open(os.path.join(SAMPLES, "SHA256SUMS")) as f:
        sums = dict(reversed(line.split()) for line in f if line.strip())
    with open(SAMPLE_BATCH, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == sums["cifar-10-batches-py/data_batch_1"]


def test_sample_batch_is_in_the_official_layout():
    batch = raw_sample()
    assert set(batch) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape == (50, 3072)
    with open(SAMPLE_BATCH, "rb") as f:
        assert b"cnumpy.core.multiarray\n_reconstruct\n" in f.read(400)  # as NumPy 1.x wrote


def test_load_cifar_batch_on_the_sample():
    images, labels = load_cifar_batch(SAMPLE_BATCH)
    assert images.shape == (50, 32, 32, 3) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels[:10].tolist() == FIRST_LABELS
    assert np.bincount(labels, minlength=10).tolist() == [4, 6, 8, 8, 5, 2, 5, 5, 1, 6]
    rows = raw_sample()[b"data"]
    for k in (0, 49):  # by hand: 1024 red, then 1024 green, then 1024 blue bytes, row-major
        for channel in range(3):
            plane = rows[k, 1024 * channel:1024 * (channel + 1)].reshape(32, 32)
            np.testing.assert_array_equal(images[k, :, :, channel], plane)
    assert images.flags.c_contiguous


@pytest.mark.slow
@needs_shared_cifar
def test_shared_binary_file_and_sample_agree():
    images, labels = read_cifar_binary(SHARED_BIN)
    assert images.shape == (200, 32, 32, 3)
    assert labels[:10].tolist() == FIRST_LABELS
    assert np.bincount(labels, minlength=10).tolist() == COUNTS_FIRST_200
    sample_images, sample_labels = load_cifar_batch(SAMPLE_BATCH)
    np.testing.assert_array_equal(images[:50], sample_images)
    np.testing.assert_array_equal(labels[:50], sample_labels)


# ---------------------------------------------------------------------- the data set
@pytest.mark.parametrize("sub", ["", "cifar-10-batches-py"])
def test_cifar10_python_batches(tmp_path, sub):
    rows, labels = make_root(os.path.join(tmp_path, sub))
    shutil.copy(os.path.join(SAMPLE_DIR, "batches.meta"), os.path.join(tmp_path, sub))
    train, test = CIFAR10(tmp_path), CIFAR10(tmp_path, train=False)
    assert len(train) == 50 and len(test) == 5
    np.testing.assert_array_equal(train.targets, labels)
    np.testing.assert_array_equal(test.targets, labels[45:])
    np.testing.assert_array_equal(train.data, load_cifar_batch(SAMPLE_BATCH)[0])
    assert train.classes == CLASSES and train.class_to_idx["truck"] == 9
    image, label = train[3]
    assert image.shape == (3, 32, 32) and image.dtype == rg.float32 and label == 4
    np.testing.assert_array_equal(image.numpy()[2].ravel(), rows[3, 2048:] / np.float32(255))


def test_cifar10_binary_batches(tmp_path):
    make_root(os.path.join(tmp_path, "cifar-10-batches-bin"), binary=True)
    (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").write_text(
        "\n".join(name.upper() for name in CLASSES) + "\n\n")
    ds = CIFAR10(tmp_path)
    np.testing.assert_array_equal(ds.data, load_cifar_batch(SAMPLE_BATCH)[0])
    assert ds.targets[:10].tolist() == FIRST_LABELS and ds.classes[0] == "AIRPLANE"


def test_cifar10_training_pipeline(tmp_path):
    make_root(tmp_path)
    ds = CIFAR10(tmp_path, transform=transforms.Compose([
        transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
        transforms.ToTensor(), transforms.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))]))
    batches = list(DataLoader(ds, 16, shuffle=True, seed=0))
    assert [x.shape for x, _ in batches] == [(16, 3, 32, 32)] * 3 + [(2, 3, 32, 32)]
    assert ds.classes == CLASSES  # no meta file: the standard names
    assert ds[0][0].shape == (3, 32, 32)


# ---------------------------------------------------------------------- errors
def test_missing_batches(tmp_path):
    shutil.copy(SAMPLE_BATCH, tmp_path / "data_batch_1")
    with pytest.raises(FileNotFoundError) as info:
        CIFAR10(tmp_path, download=True)
    message = str(info.value)
    assert "cannot find the training batches" in message and "data_batch_5" in message
    assert "cifar-10-batches-py" in message and "does not download" in message
    with pytest.raises(FileNotFoundError, match=r"test batches \['test_batch'\]"):
        CIFAR10(tmp_path, train=False)


def test_hostile_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo owned",))

    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(ValueError, match=r"refusing to load (posix|nt)\.system"):
        CIFAR10(tmp_path, train=False)


@pytest.mark.parametrize("content, match", [
    (lambda rows, labels: pickle.dumps({"data": rows, "labels": labels[:-1]}),
     "has 50 images but 49 labels"),
    (lambda rows, labels: pickle.dumps({"data": rows[:, :100], "labels": labels}),
     r"'data' of shape \(50, 100\) and type uint8, expected uint8 \(N, 3072\)"),
    (lambda rows, labels: pickle.dumps({"pixels": rows}), "expected 'data' and 'labels'"),
    (lambda rows, labels: pickle.dumps([rows]), "holds a list, expected the dict"),
    (lambda rows, labels: pickle.dumps({"data": rows, "labels": labels})[:5000],
     "truncated or not a pickle"),
    (lambda rows, labels: pickle.dumps({"data": rows, "labels": [12] * 50}),
     r"labels in 12..12, expected 0..9"),
])
def test_broken_python_batch(tmp_path, content, match):
    batch = raw_sample()
    (tmp_path / "test_batch").write_bytes(content(batch[b"data"], list(batch[b"labels"])))
    with pytest.raises(ValueError, match="CIFAR10: .*test_batch .*" + match):
        CIFAR10(tmp_path, train=False)


def test_truncated_binary(tmp_path):
    path = tmp_path / "one.bin"
    path.write_bytes(bytes(3073 * 2 - 7))
    with pytest.raises(ValueError, match=r"6139 bytes, not a whole number of 3073-byte records "
                                         r"\(1 records and 3066 bytes left over"):
        read_cifar_binary(path)
