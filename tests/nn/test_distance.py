"""F.cosine_similarity (retrograd/nn/functional/distance.py) and nn.CosineSimilarity
(retrograd/nn/distance.py) against PyTorch: values and both gradients over shapes, dims and
broadcasting, float64 finite differences, zero vectors (the eps clamp changes the norm's value
only, as PyTorch), float32, and errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import check_op, randn


@pytest.mark.parametrize("shapes, dim", [
    (((4, 5), (4, 5)), 1), (((4, 5), (4, 5)), 0), (((2, 3, 4), (2, 3, 4)), -1),
    (((2, 3, 4), (3, 4)), 1), (((2, 1, 3), (4, 3)), 2), (((5,), (5,)), 0), (((), ()), 0),
])
def test_cosine_similarity_matches_torch(shapes, dim):
    x1, x2 = randn(*shapes[0], seed=1), randn(*shapes[1], seed=2)
    check_op(lambda a, b: F.cosine_similarity(a, b, dim), lambda a, b: TF.cosine_similarity(
        a, b, dim), np.asarray(x1), np.asarray(x2))


def test_cosine_similarity_float32_eps_and_zero_vectors_match_torch():
    check_op(lambda a, b: F.cosine_similarity(a, b, eps=1e-3),
             lambda a, b: TF.cosine_similarity(a, b, eps=1e-3), randn(6, 4, seed=3),
             randn(6, 4, seed=4), dtype=np.float32)
    x1 = randn(3, 4, seed=5)
    x1[1] = 0.0                 # a zero vector: its norm is clamped at eps in value only
    x2 = randn(3, 4, seed=6)
    check_op(lambda a, b: F.cosine_similarity(a, b), lambda a, b: TF.cosine_similarity(a, b),
             x1, x2, gradcheck=False, rtol=1e-12, atol=1e-6)


def test_cosine_similarity_layer_and_errors():
    layer, theirs = rg.nn.CosineSimilarity(dim=0, eps=1e-6), torch.nn.CosineSimilarity(0, 1e-6)
    assert repr(layer) == repr(theirs) == "CosineSimilarity()"
    a, b = randn(3, 2, seed=7), randn(3, 2, seed=8)
    np.testing.assert_allclose(layer(rg.tensor(a), rg.tensor(b)).numpy(),
                               theirs(torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-12)
    assert layer(rg.tensor(a), rg.tensor(b)).shape == (2,)
    with pytest.raises(ValueError, match=r"cosine_similarity: x1 of shape \(2, 3\) and x2 of "
                                         r"shape \(4,\) cannot be broadcast together"):
        F.cosine_similarity(rg.randn(2, 3), rg.randn(4))
    with pytest.raises(TypeError, match="cosine_similarity: expected floating-point inputs, got "
                                        "x1 of dtype retrograd.int64"):
        F.cosine_similarity(rg.tensor([[1, 2]]), rg.randn(1, 2))
    with pytest.raises(IndexError):
        F.cosine_similarity(rg.randn(3), rg.randn(3), dim=1)
    mixed = F.cosine_similarity(rg.randn(2, 3), rg.randn(2, 3, dtype=rg.float64))
    assert mixed.dtype == rg.float64
