"""F.one_hot (retrograd/nn/functional/encoding.py): against PyTorch for inferred and given
num_classes, any shape, empty inputs; PyTorch's errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F


@pytest.mark.parametrize("ids, num_classes", [
    ([0, 2, 1], -1), ([0, 2, 1], 5), ([[0], [3]], 4), ([[1, 1], [0, 2]], -1), (2, 3),
    ([], 3), (np.zeros((2, 0), np.int64), 2), ([0, 1], 2)], ids=str)
def test_matches_torch(ids, num_classes):
    ids = np.asarray(ids, dtype=np.int64)
    got = F.one_hot(rg.tensor(ids), num_classes)
    want = torch.nn.functional.one_hot(torch.tensor(ids), num_classes)
    assert got.dtype == rg.int64 and got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("ids, kwargs, error, message", [
    ([0, -1], {}, RuntimeError, "one_hot: class values must be non-negative, got -1"),
    ([0, 3], {"num_classes": 3}, RuntimeError, r"class values must be smaller than num_classes "
                                               r"\(3\), got 3"),
    ([0, 1], {"num_classes": 0}, RuntimeError, "smaller than num_classes"),
    ([], {}, RuntimeError, "can not infer the total number of classes from an empty tensor"),
    ([0.0, 1.0], {}, RuntimeError, "only applicable to index tensors of dtype int64, got "
                                   "retrograd.float32"),
    ([0, 1], {"num_classes": -2}, RuntimeError, "num_classes must be -1"),
    ([0, 1], {"num_classes": 2.0}, TypeError, "one_hot: num_classes must be an int"),
])
def test_errors(ids, kwargs, error, message):
    t = rg.tensor(np.array(ids, dtype=np.int64) if not ids or isinstance(ids[0], int) else ids)
    with pytest.raises(error, match=message):
        F.one_hot(t, **kwargs)


def test_int32_ids_are_refused_as_torch_does():
    with pytest.raises(RuntimeError, match="dtype int64, got retrograd.int32"):
        F.one_hot(rg.tensor([0, 1], dtype=rg.int32))
