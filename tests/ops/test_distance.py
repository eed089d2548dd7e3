"""cdist (retrograd/ops/distance.py) and the vector and matrix products composed in
_tensor_math (dot, inner, mv, tensordot, kron, cross) against PyTorch and finite differences:
every p, both compute modes, broadcast batches, a zero distance (gradient 0, as torch)."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops import distance
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, float("inf")])
def test_cdist_matches_torch(p):
    x1, x2 = randn(4, 3, seed=1), randn(5, 3, seed=2)
    check_op(lambda a, b: rg.cdist(a, b, p), lambda a, b: torch.cdist(a, b, p), x1, x2)
    check_op(lambda a, b: rg.cdist(a, b, p), lambda a, b: torch.cdist(a, b, p),
             randn(2, 4, 3, seed=3), randn(5, 3, seed=4))        # batch broadcast


def test_cdist_by_matmul_matches_torch():
    """More than 25 rows: one matrix product, as torch's default compute_mode."""
    x1, x2 = randn(30, 4, seed=1), randn(7, 4, seed=2)
    check_op(rg.cdist, torch.cdist, x1, x2, fast_gradcheck=True)
    check_op(lambda a, b: rg.cdist(a, b, compute_mode="use_mm_for_euclid_dist"),
             lambda a, b: torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist"),
             randn(3, 4, seed=3), randn(2, 4, seed=4))
    check_op(lambda a, b: rg.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist"),
             lambda a, b: torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist"),
             x1, x2, fast_gradcheck=True)


def test_cdist_zero_distance_has_zero_gradient_as_torch():
    x1 = randn(3, 2, seed=1)
    x2 = np.concatenate([x1[:2], randn(2, 2, seed=2)])
    for p in (2.0, 1.0, 3.0, 0.5, float("inf")):
        check_op(lambda a, b: rg.cdist(a, b, p), lambda a, b: torch.cdist(a, b, p), x1, x2,
                 gradcheck=False)


def test_cdist_p0_counts_and_has_zero_gradient():
    x1 = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    x2 = np.array([[1.0, 0.0, 3.0]])
    got = rg.cdist(rg.tensor(x1, requires_grad=True), rg.tensor(x2), 0.0)
    np.testing.assert_array_equal(got.detach().numpy(),
                                  torch.cdist(torch.tensor(x1), torch.tensor(x2), 0.0).numpy())


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0])
def test_cdist_backward_alone_and_second_order(p):
    x1, x2 = randn(3, 2, seed=1), randn(4, 2, seed=2)
    check_backward_alone(distance.Cdist, [x1, x2], {"p": p})
    assert gradgradcheck(lambda a, b: rg.cdist(a, b, p), _leaves(x1, x2), **GRADCHECK_TOLERANCES)


def test_cdist_float32_and_errors():
    check_op(rg.cdist, torch.cdist, randn(3, 2), randn(4, 2, seed=1), dtype=np.float32)
    with pytest.raises(RuntimeError, match="cdist: x1 and x2 must have the same number of col"):
        rg.cdist(rg.ones(2, 3), rg.ones(2, 4))
    with pytest.raises(RuntimeError, match="cdist: x1 must have at least 2 dims"):
        rg.cdist(rg.ones(3), rg.ones(2, 3))
    with pytest.raises(RuntimeError, match="cdist: only supports non-negative p"):
        rg.cdist(rg.ones(2, 3), rg.ones(2, 3), -1)


# ---------------------------------------------------------------- products
def test_dot_inner_mv_match_torch():
    check_op(rg.dot, torch.dot, randn(5, seed=1), randn(5, seed=2))
    check_op(rg.vdot, torch.vdot, randn(5, seed=1), randn(5, seed=2))
    check_op(rg.mv, torch.mv, randn(3, 5, seed=1), randn(5, seed=2))
    check_op(rg.inner, torch.inner, randn(5, seed=1), randn(5, seed=2))
    check_op(rg.inner, torch.inner, randn(2, 3, 5, seed=1), randn(4, 5, seed=2))
    check_op(rg.inner, torch.inner, np.array(1.5), randn(4, 5, seed=2))
    assert rg.dot(rg.tensor([1, 2]), rg.tensor([3, 4])).item() == 11
    with pytest.raises(RuntimeError, match="dot: expected both vectors to have the same size"):
        rg.dot(rg.ones(3), rg.ones(4))
    with pytest.raises(RuntimeError, match="dot: input must be a vector"):
        rg.dot(rg.ones(3, 1), rg.ones(3))
    with pytest.raises(RuntimeError, match="dot: expected both tensors to have the same dtype"):
        rg.dot(rg.ones(3), rg.ones(3, dtype=rg.float64))
    with pytest.raises(RuntimeError, match="mv: cannot multiply a matrix of shape"):
        rg.mv(rg.ones(3, 4), rg.ones(3))


TENSORDOT = [  # (a's shape, b's shape, dims)
    ((3, 4, 2), (4, 2, 5), 2), ((3, 4, 2), (2, 5), 1), ((3, 4), (2, 5), 0),
    ((3, 4, 2), (4, 3, 5), ([1, 0], [0, 1])), ((3, 4, 2), (2, 5), ([2], [0])),
    ((3, 4), (4, 3), ([0, 1], [1, 0])), ((2, 3), (3, 2), ([-1], [0])),
]


@pytest.mark.parametrize("a_shape, b_shape, dims", TENSORDOT)
def test_tensordot_matches_torch(a_shape, b_shape, dims):
    check_op(lambda s, t: rg.tensordot(s, t, dims), lambda s, t: torch.tensordot(s, t, dims),
             randn(*a_shape, seed=1), randn(*b_shape, seed=2))


def test_kron_and_cross_match_torch():
    check_op(rg.kron, torch.kron, randn(2, 3, seed=1), randn(4, 2, seed=2))
    check_op(rg.kron, torch.kron, randn(3, seed=1), randn(2, 2, seed=2))
    a, b = randn(4, 3, seed=1), randn(4, 3, seed=2)
    check_op(lambda s, t: rg.cross(s, t, dim=1), lambda s, t: torch.cross(s, t, dim=1), a, b)
    check_op(lambda s, t: rg.cross(s, t, dim=-1), lambda s, t: torch.cross(s, t, dim=-1), a,
             b[:1])
    check_op(lambda s, t: rg.cross(s, t), lambda s, t: torch.linalg.cross(s, t, dim=0),
             randn(3, 3, seed=3), randn(3, 3, seed=4))    # dim=None: the first dim of size 3
    check_op(lambda s, t: rg.cross(s, t, 0), lambda s, t: torch.cross(s, t, 0),
             randn(3, 2, seed=3), randn(3, 2, seed=4))
    with pytest.raises(RuntimeError, match="cross: dim 1 must have size 3"):
        rg.cross(rg.ones(3, 2), rg.ones(3, 2), 1)
