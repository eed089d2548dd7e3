"""mm, bmm, addmm, baddbmm and outer (retrograd/_products.py): values and gradients against
PyTorch, alpha/beta (beta = 0 ignores nan in input, as PyTorch), broadcasting of input,
empty matrices, the Tensor methods, and the rank and size errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import check_op, randn


def test_mm_matches_torch():
    check_op(rg.mm, torch.mm, randn(3, 4), randn(4, 2, seed=1))
    check_op(lambda a, b: a.mm(b), lambda a, b: a.mm(b), randn(0, 4), randn(4, 2, seed=1))


@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 4, 5)), ((1, 3, 4), (1, 4, 1)),
                                    ((3, 0, 4), (3, 4, 2)), ((2, 3, 0), (2, 0, 5))], ids=str)
def test_bmm_matches_torch(shapes):
    a, b = shapes
    check_op(rg.bmm, torch.bmm, randn(*a), randn(*b, seed=1))
    check_op(lambda x, y: x.bmm(y), lambda x, y: x.bmm(y), randn(*a), randn(*b, seed=1),
             dtype=np.float32)


@pytest.mark.parametrize("beta, alpha", [(1, 1), (0.5, -2.0), (0, 3.0), (2, 0)], ids=str)
@pytest.mark.parametrize("input_shape", [(2, 3, 5), (1, 3, 5), (5,), (3, 1)], ids=str)
def test_baddbmm_matches_torch(input_shape, beta, alpha):
    check_op(lambda c, a, b: rg.baddbmm(c, a, b, beta=beta, alpha=alpha),
             lambda c, a, b: torch.baddbmm(c, a, b, beta=beta, alpha=alpha),
             randn(*input_shape, seed=2), randn(2, 3, 4), randn(2, 4, 5, seed=1))


@pytest.mark.parametrize("beta, alpha", [(1, 1), (0.5, -2.0), (0, 3.0)], ids=str)
@pytest.mark.parametrize("input_shape", [(3, 5), (5,), (1, 1)], ids=str)
def test_addmm_matches_torch(input_shape, beta, alpha):
    check_op(lambda c, a, b: rg.addmm(c, a, b, beta=beta, alpha=alpha),
             lambda c, a, b: torch.addmm(c, a, b, beta=beta, alpha=alpha),
             randn(*input_shape, seed=2), randn(3, 4), randn(4, 5, seed=1))
    check_op(lambda c, a, b: c.addmm(a, b, beta=beta, alpha=alpha),
             lambda c, a, b: c.addmm(a, b, beta=beta, alpha=alpha),
             randn(*input_shape, seed=2), randn(3, 4), randn(4, 5, seed=1), gradcheck=False)


@pytest.mark.parametrize("name", ["addmm", "baddbmm"])
def test_beta_zero_ignores_nan_and_inf_in_input(name):
    batch = (2,) if name == "baddbmm" else ()
    c = np.full(batch + (3, 2), np.nan)
    c[..., 0, 0] = np.inf
    a, b = randn(*batch, 3, 4), randn(*batch, 4, 2, seed=1)
    check_op(lambda x, y, z: getattr(rg, name)(x, y, z, beta=0),
             lambda x, y, z: getattr(torch, name)(x, y, z, beta=0), c, a, b, gradcheck=False)
    assert np.isfinite(getattr(rg, name)(rg.tensor(c), rg.tensor(a), rg.tensor(b),
                                         beta=0).numpy()).all()


def test_outer_matches_torch():
    check_op(rg.outer, torch.outer, randn(3), randn(4, seed=1))
    check_op(lambda a, b: a.outer(b), lambda a, b: a.outer(b), randn(0), randn(4, seed=1))


def test_errors_name_the_op_and_the_shapes():
    with pytest.raises(RuntimeError, match=r"bmm: input must be a 3-D tensor.*got shape \(3, 4\)"):
        rg.bmm(rg.ones(3, 4), rg.ones(4, 2))
    with pytest.raises(RuntimeError, match=r"bmm: mat2 must be a 3-D tensor"):
        rg.bmm(rg.ones(2, 3, 4), rg.ones(4, 2))
    with pytest.raises(RuntimeError, match=r"bmm: batch sizes differ: input \(2, 3, 4\) and mat2 "
                                           r"\(3, 4, 2\)"):
        rg.bmm(rg.ones(2, 3, 4), rg.ones(3, 4, 2))
    with pytest.raises(RuntimeError, match=r"bmm: cannot multiply \(2, 3, 4\) by \(2, 5, 2\): "
                                           r"inner dims 4 != 5"):
        rg.bmm(rg.ones(2, 3, 4), rg.ones(2, 5, 2))
    with pytest.raises(RuntimeError, match=r"mm: input must be a matrix"):
        rg.mm(rg.ones(2, 3, 4), rg.ones(4, 2))
    with pytest.raises(RuntimeError, match=r"mm: cannot multiply \(2, 3\) by \(4, 2\)"):
        rg.mm(rg.ones(2, 3), rg.ones(4, 2))
    with pytest.raises(RuntimeError, match=r"outer: vec2 must be a vector"):
        rg.outer(rg.ones(2), rg.ones(2, 2))
    with pytest.raises(RuntimeError, match=r"baddbmm: input of shape \(4, 5\) does not broadcast "
                                           r"to the product's shape \(2, 3, 5\)"):
        rg.baddbmm(rg.ones(4, 5), rg.ones(2, 3, 4), rg.ones(2, 4, 5))
    with pytest.raises(TypeError, match="mm: input must be a Tensor"):
        rg.mm([[1.0]], rg.ones(1, 1))
