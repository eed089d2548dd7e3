"""MatMul (retrograd/ops/linalg.py) through ``@``: every combination of 1-D, 2-D and batched
operands (PyTorch's rules), batch broadcasting, the folded linear-layer path, size-0 dims;
against PyTorch, by finite differences through the engine and alone, twice differentiated, in
float32, and its error messages. (The fused Linear op is tested in test_linear_op.py.)"""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops.linalg import MatMul
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),          # vector @ matrix
    ((3, 4), (4,)),          # matrix @ vector
    ((4,), (4,)),            # dot product: a 0-d result
    ((2, 3, 4), (4, 5)),     # batch @ matrix: the folded path
    ((2, 3, 4), (2, 4, 5)),  # batched
    ((2, 1, 3, 4), (5, 4, 2)),  # batch broadcasting both ways
    ((3, 4), (2, 4, 5)),     # matrix @ batch
    ((4,), (2, 4, 5)),       # vector @ batch
    ((2, 3, 4), (4,)),       # batch @ vector
    ((1, 4), (4, 1)),
    ((3, 1), (1, 2)),        # outer product through an inner dim of 1
    ((2, 3, 0), (0, 5)),     # empty inner dim: zeros
    ((0, 4), (4, 5)),
    ((2, 0, 4), (4, 5)),     # empty batch rows on the folded path
]


@pytest.mark.parametrize("a_shape, b_shape", SHAPES, ids=str)
def test_matmul_matches_torch(a_shape, b_shape):
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, randn(*a_shape), randn(*b_shape, seed=1))


@pytest.mark.parametrize("a_shape, b_shape", [s for s in SHAPES if len(s[0]) > 1 and len(s[1]) > 1],
                         ids=str)
def test_matmul_backward_alone(a_shape, b_shape):
    check_backward_alone(MatMul, [randn(*a_shape), randn(*b_shape, seed=1)])


@pytest.mark.parametrize("a_shape, b_shape", SHAPES[:10], ids=str)
def test_matmul_float32_matches_torch(a_shape, b_shape):
    (y,) = check_op(lambda a, b: a @ b, lambda a, b: a @ b, randn(*a_shape),
                    randn(*b_shape, seed=1),
                    dtype=np.float32)
    assert y.dtype == rg.float32


@pytest.mark.parametrize("a_shape, b_shape", [((2, 3), (3, 2)), ((3,), (3, 2)), ((2, 2, 3), (3, 2)),
                                              ((2, 1, 3), (2, 3, 2))], ids=str)
def test_matmul_second_order(a_shape, b_shape):
    assert gradgradcheck(lambda a, b: (a @ b) ** 2,
                         _leaves(randn(*a_shape), randn(*b_shape, seed=1)), **GRADCHECK_TOLERANCES)
    assert gradgradcheck(lambda a, b: a @ b, _leaves(randn(*a_shape), randn(*b_shape, seed=1)),
                         **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("no_grad", [(0,), (1,)])
@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)),
                                              ((2, 1, 3, 4), (5, 4, 2))], ids=str)
def test_matmul_with_one_input_not_requiring_grad(a_shape, b_shape, no_grad):
    check_op(lambda a, b: a @ b, lambda a, b: a @ b, randn(*a_shape), randn(*b_shape, seed=1),
             no_grad=no_grad)


def test_matmul_function_forms_and_numpy_operands():
    a, b = randn(3, 4), randn(4, 2, seed=1)
    check_op(rg.matmul, torch.matmul, a, b)
    check_op(lambda x: x.matmul(rg.tensor(b)), lambda x: x.matmul(torch.tensor(b)), a)
    y = rg.tensor(a) @ b  # a NumPy array on the right
    np.testing.assert_allclose(y.numpy(), a @ b)
    z = a @ rg.tensor(b)  # and on the left: NumPy hands the call to the Tensor
    assert isinstance(z, rg.Tensor)
    np.testing.assert_allclose(z.numpy(), a @ b)


def test_matmul_mixed_dtypes_promote_and_integers_stay_integers():
    y = rg.ones(2, 3) @ rg.ones(3, dtype=rg.float64)
    assert y.dtype == rg.float64
    i = rg.tensor([[1, 2], [3, 4]]) @ rg.tensor([[1], [1]])
    assert i.dtype == rg.int64
    np.testing.assert_array_equal(i.numpy(), [[3], [7]])


def test_folded_and_batched_paths_agree():
    a, b = randn(2, 3, 4), randn(4, 5, seed=1)
    folded = rg.tensor(a) @ rg.tensor(b)
    batched = rg.tensor(a) @ rg.tensor(np.broadcast_to(b, (2, 4, 5)).copy())
    np.testing.assert_allclose(folded.numpy(), batched.numpy(), rtol=1e-12)


def test_matmul_errors_name_shapes_and_dtypes():
    with pytest.raises(ValueError, match=r"matmul: cannot multiply \(3, 4\) @ \(5, 6\): inner "
                                         r"dims 4 != 5 \(dtypes retrograd.float32, "
                                         r"retrograd.float32\)"):
        rg.ones(3, 4) @ rg.ones(5, 6)
    with pytest.raises(ValueError,
                       match=r"matmul: cannot multiply \(3,\) @ \(4,\): inner dims 3 != 4"):
        rg.ones(3) @ rg.ones(4)
    with pytest.raises(ValueError, match=r"matmul: both operands need at least 1 dim, got shapes "
                                         r"\(\) @ \(3,\)"):
        rg.tensor(2.0) @ rg.ones(3)
    with pytest.raises(ValueError, match=r"matmul: batch dims of \(2, 3, 4\) @ \(3, 4, 5\) cannot "
                                         r"be broadcast"):
        rg.ones(2, 3, 4) @ rg.ones(3, 4, 5)
