"""Digits: scikit-learn's 8x8 digits with retrograd's fixed stratified split."""

import importlib.util
import math

import numpy as np
import pytest

import retrograd as rg
from retrograd.datasets import Digits
from retrograd.datasets.digits import stratified_split
from retrograd.utils.data import DataLoader

CLASS_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # load_digits() per class


@pytest.fixture(scope="module")
def splits():
    return Digits(train=True), Digits(train=False)


def test_split_sizes_cover_everything_once(splits):
    train, test = splits
    assert (len(train), len(test)) == (1438, 359)
    assert np.intersect1d(train.indices, test.indices).size == 0
    np.testing.assert_array_equal(np.union1d(train.indices, test.indices), np.arange(1797))


def test_split_is_stratified(splits):
    train, test = splits
    expected = [math.floor(0.2 * n + 0.5) for n in CLASS_COUNTS]
    assert np.bincount(test.targets, minlength=10).tolist() == expected
    assert (np.bincount(train.targets, minlength=10) + expected).tolist() == CLASS_COUNTS


def test_split_is_fixed(splits):
    """Pinned: the documented split must not change with NumPy versions or machines."""
    _, test = splits
    assert test.indices[:10].tolist() == [2, 3, 11, 13, 15, 20, 21, 32, 48, 53]
    assert int(test.indices.sum()) == 333354
    again = Digits(train=False)
    np.testing.assert_array_equal(again.indices, test.indices)
    np.testing.assert_array_equal(again.data, test.data)
    other = Digits(train=False, seed=1)
    assert len(other) == 359 and not np.array_equal(other.indices, test.indices)


@pytest.mark.parametrize("fraction, test_size", [(0.1, 179), (0.5, 901), (0.01, 20)])
def test_other_fractions(splits, fraction, test_size):
    train, test = splits
    labels = np.empty(1797, np.int64)
    labels[train.indices], labels[test.indices] = train.targets, test.targets
    train_idx, test_idx = stratified_split(labels, fraction)
    assert len(test_idx) == test_size == sum(math.floor(fraction * n + 0.5) for n in CLASS_COUNTS)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, test_idx])),
                                  np.arange(1797))
    assert len(Digits(train=False, test_fraction=fraction)) == test_size


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match=r"test_fraction must be in \(0, 1\)"):
        Digits(test_fraction=fraction)


def test_data_matches_scikit_learn(splits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    train, _ = splits
    np.testing.assert_array_equal(train.data, (bunch.images[train.indices] / 16).astype(np.float32))
    np.testing.assert_array_equal(train.targets, bunch.target[train.indices])
    assert train.data.dtype == np.float32 and train.targets.dtype == np.int64
    assert train.data.min() == 0.0 and train.data.max() == 1.0


def test_samples_and_batches(splits):
    train, _ = splits
    image, label = train[5]
    assert image.shape == (1, 8, 8) and image.dtype == rg.float32 and isinstance(label, int)
    np.testing.assert_array_equal(image.numpy()[0], train.data[5])
    x, y = next(iter(DataLoader(train, 64, shuffle=True, seed=0)))
    assert x.shape == (64, 1, 8, 8) and y.dtype == rg.int64
    assert train.classes[label] == str(label) and "Split: Train" in repr(train)


def test_missing_scikit_learn_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sklearn" else real(name, *a))
    with pytest.raises(ImportError, match="Digits: needs scikit-learn.*pip install scikit-learn"):
        Digits()
