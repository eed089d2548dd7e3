"""tril and triu (retrograd/ops/triangular.py): against PyTorch over diagonals (negative,
beyond the matrix, positive), batched, non-square and empty matrices, integer and bool
inputs; by finite differences alone and twice through the engine; errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops.triangular import Tril, Triu
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

SHAPES = [(4, 4), (3, 5), (5, 2), (2, 3, 4), (2, 1, 3, 3), (0, 3), (2, 0, 4)]
DIAGONALS = [0, 1, -1, 2, -3, 7, -7]


@pytest.mark.parametrize("diagonal", DIAGONALS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", ["tril", "triu"])
def test_matches_torch(name, shape, diagonal):
    check_op(lambda x: getattr(rg, name)(x, diagonal), lambda x: getattr(torch, name)(x, diagonal),
             randn(*shape))


@pytest.mark.parametrize("name", ["tril", "triu"])
def test_method_and_keyword_match_torch_in_float32(name):
    check_op(lambda x: getattr(x, name)(diagonal=-1), lambda x: getattr(x, name)(diagonal=-1),
             randn(3, 4), dtype=np.float32)


@pytest.mark.parametrize("op", [Tril, Triu], ids=lambda o: o.__name__)
@pytest.mark.parametrize("diagonal", [0, 2, -1])
def test_backward_alone(op, diagonal):
    check_backward_alone(op, [randn(2, 4, 3)], {"diagonal": diagonal})


@pytest.mark.parametrize("name", ["tril", "triu"])
def test_twice_differentiable(name):
    x = rg.tensor(randn(3, 4), requires_grad=True)
    assert gradgradcheck(lambda t: getattr(rg, name)(t * t, 1) * t, [x], **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.float16])
@pytest.mark.parametrize("name", ["tril", "triu"])
def test_other_dtypes_match_torch(name, dtype):
    x = (randn(3, 4) * 3).astype(dtype)
    got = getattr(rg, name)(rg.tensor(x), -1)
    want = getattr(torch, name)(torch.from_numpy(x), -1)
    assert got.dtype == getattr(rg, str(want.dtype).split(".")[-1])
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("name", ["tril", "triu"])
def test_errors_name_the_op(name):
    with pytest.raises(RuntimeError, match=rf"{name}: input tensor must have at least 2 "
                                           rf"dim.*\(3,\)"):
        getattr(rg, name)(rg.ones(3))
    with pytest.raises(TypeError, match=rf"{name}: diagonal must be an int"):
        getattr(rg, name)(rg.ones(3, 3), 1.5)
    with pytest.raises(TypeError, match=rf"{name}: input must be a Tensor"):
        getattr(rg, name)(np.ones((3, 3)))
