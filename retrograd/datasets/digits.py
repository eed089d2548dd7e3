"""scikit-learn's handwritten digits (8x8, 1797 images): the data set that always works offline.

The images ship inside scikit-learn (``sklearn.datasets.load_digits``, a copy of the UCI
"Optical Recognition of Handwritten Digits" test set), so no download or file is needed.
scikit-learn is an optional dependency, looked up only when a ``Digits`` is built (its CSV is
read directly when found, which avoids the seconds that importing sklearn.datasets takes).

The split. The 1797 images have no official train/test split, so retrograd fixes one: for each
class c, the images of class c are ordered by a key drawn from ``numpy.random.PCG64(seed)
.random_raw(1797)`` (the raw PCG64 bit stream, the same in every NumPy version), and the first
``floor(test_fraction * n_c + 0.5)`` of them go to the test set. So the split is stratified
(each class keeps its share), the same on every machine, and with the defaults
(``test_fraction=0.2``, ``seed=0``) holds 1438 training and 359 test images.
"""

import importlib.util
import math
import os

import numpy as np

from retrograd.datasets.transforms import ToTensor
from retrograd.utils.data import ArrayDataset

__all__ = ["Digits", "stratified_split"]

_COUNT = 1797
_PIXEL_MAX = 16.0  # the digits' pixels are counts 0..16 (4x4 blocks of a 32x32 bitmap)


def stratified_split(targets, test_fraction, seed=0):
    """``(train_indices, test_indices)``: sorted int64 arrays splitting ``range(len(targets))``
    so that each class sends ``floor(test_fraction * n_c + 0.5)`` of its samples to the test
    set, chosen by the raw PCG64 stream of ``seed`` (reproducible across NumPy versions).

    Example:
        >>> import numpy as np
        >>> from retrograd.datasets.digits import stratified_split
        >>> train, test = stratified_split(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.25)
        >>> len(train), len(test)
        (6, 2)
    """
    targets = np.asarray(targets)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"stratified_split: test_fraction must be in (0, 1), got "
                         f"{test_fraction}")
    keys = np.random.PCG64(seed).random_raw(len(targets))
    is_test = np.zeros(len(targets), dtype=bool)
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        ranked = members[np.argsort(keys[members], kind="stable")]
        is_test[ranked[:math.floor(test_fraction * len(members) + 0.5)]] = True
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)


def _load_sklearn_digits():
    """(images float64 (1797, 8, 8), labels int (1797,)) from scikit-learn's copy.

    NOTE: importing sklearn.datasets takes seconds (it pulls in SciPy), so the CSV that
    load_digits() reads is read directly when it is where scikit-learn keeps it; any other
    layout falls back to load_digits()."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("Digits: needs scikit-learn, which ships the 8x8 digits data set "
                          "(pip install scikit-learn)")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data",
                        "digits.csv.gz")
    if os.path.isfile(path):
        table = np.loadtxt(path, delimiter=",")
        if table.shape == (_COUNT, 65):
            return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)
    from sklearn.datasets import load_digits
    bunch = load_digits()
    return bunch.images, bunch.target


class Digits(ArrayDataset):
    """The 8x8 handwritten digits of scikit-learn, with a fixed stratified train/test split.

    ``dataset[i]`` is ``(image, label)``: the image is ``transform(data[i])`` (default
    ``ToTensor()``: float32 (1, 8, 8) in [0, 1]), the label an int in 0..9. ``data`` holds the
    images as float32 (N, 8, 8) in [0, 1] (scikit-learn's 0..16 pixel counts divided by 16),
    ``targets`` the int64 labels (N,), ``indices`` the rows of ``load_digits()`` in this split,
    ``classes`` the names "0".."9". See the module docstring for how the split is made.

    Args:
        train: the training split (True) or the test split (False).
        test_fraction: share of every class held out for the test split, in (0, 1).
        transform: callable on one float32 image (8, 8); default ``ToTensor()``.
        target_transform: callable on one int label.
        seed: seed of the split (keep 0 to compare results with others).

    Example:
        >>> from retrograd.datasets import Digits
        >>> train, test = Digits(train=True), Digits(train=False)
        >>> len(train), len(test)
        (1438, 359)
        >>> image, label = train[0]
        >>> image.shape, image.dtype, label
        ((1, 8, 8), retrograd.float32, 0)
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, train=True, test_fraction=0.2, transform=None, target_transform=None,
                 seed=0):
        images, labels = _load_sklearn_digits()
        train_idx, test_idx = stratified_split(labels, test_fraction, seed)
        self.train = bool(train)
        self.test_fraction = test_fraction
        self.indices = train_idx if self.train else test_idx
        data = (images[self.indices] / _PIXEL_MAX).astype(np.float32)
        super().__init__(data, labels[self.indices].astype(np.int64),
                         transform if transform is not None else ToTensor(), target_transform)

    @property
    def class_to_idx(self):
        return {c: i for i, c in enumerate(self.classes)}

    def _extra_repr_lines(self):
        return [f"Split: {'Train' if self.train else 'Test'} (test_fraction="
                f"{self.test_fraction})"]
