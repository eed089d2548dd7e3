"""retrograd.linalg (norm, vector_norm, matrix_norm, svdvals) and torch.norm's signature on
Tensor.norm: values and gradients against PyTorch for every supported order, dims and
keepdim; the gradient at x = 0 (0, not nan, as PyTorch); ties of the max-norms; the orders
that are refused, with messages."""

import math

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import away_from_kinks, check_op, randn

INF = math.inf
VECTOR_ORDS = [2, 1, 3, 0.5, INF, -INF, 0]


def _x(*shape, seed=0):
    return away_from_kinks(randn(*shape, seed=seed))


@pytest.mark.parametrize("dim, keepdim", [(None, False), (None, True), (1, False), (-1, True),
                                          ((0, 2), False), ((0, 1), True)], ids=str)
@pytest.mark.parametrize("ord", VECTOR_ORDS, ids=str)
def test_vector_norm_matches_torch(ord, dim, keepdim):
    check_op(lambda x: rg.linalg.vector_norm(x, ord, dim, keepdim),
             lambda x: torch.linalg.vector_norm(x, ord, dim, keepdim), _x(2, 3, 4),
             gradcheck=ord != 0)


MATRIX_ORDS = ["fro", "nuc", 2, -2, INF, -INF, 1, -1]


@pytest.mark.parametrize("dim, keepdim", [((-2, -1), False), ((0, 2), True), ((2, 0), False)],
                         ids=str)
@pytest.mark.parametrize("ord", MATRIX_ORDS, ids=str)
def test_matrix_norm_matches_torch(ord, dim, keepdim):
    check_op(lambda x: rg.linalg.matrix_norm(x, ord, dim, keepdim),
             lambda x: torch.linalg.matrix_norm(x, ord, dim, keepdim), _x(3, 2, 4))


@pytest.mark.parametrize("ord", MATRIX_ORDS + [None], ids=str)
def test_norm_of_a_matrix_matches_torch(ord):
    check_op(lambda x: rg.linalg.norm(x, ord), lambda x: torch.linalg.norm(x, ord), _x(3, 4))


@pytest.mark.parametrize("ord, dim", [(None, None), (None, 1), (3, (1,)), (INF, -1),
                                      (None, (0, 2)), ("nuc", (1, 2)), (1, (0, 1))], ids=str)
def test_norm_picks_vector_or_matrix_as_torch(ord, dim):
    check_op(lambda x: rg.linalg.norm(x, ord, dim), lambda x: torch.linalg.norm(x, ord, dim),
             _x(2, 3, 4))
    check_op(lambda x: rg.linalg.norm(x, ord, dim, True),
             lambda x: torch.linalg.norm(x, ord, dim, True), _x(2, 3, 4), gradcheck=False)


@pytest.mark.parametrize("ord", [2, 1, 3, INF], ids=str)
def test_norm_of_a_vector_matches_torch(ord):
    check_op(lambda x: rg.linalg.norm(x, ord), lambda x: torch.linalg.norm(x, ord), _x(5))


def test_dtype_argument_casts_first():
    check_op(lambda x: rg.linalg.vector_norm(x, dtype=rg.float64),
             lambda x: torch.linalg.vector_norm(x, dtype=torch.float64), _x(3, 4),
             dtype=np.float32)


@pytest.mark.parametrize("fn", [
    lambda L, x: L.linalg.vector_norm(x), lambda L, x: L.linalg.norm(x),
    lambda L, x: L.linalg.matrix_norm(x), lambda L, x: L.norm(x),
    lambda L, x: L.linalg.vector_norm(x, 3), lambda L, x: L.linalg.vector_norm(x, dim=1)])
def test_gradient_at_zero_is_zero_as_torch(fn):
    ours = rg.zeros(3, 2, dtype=rg.float64, requires_grad=True)
    theirs = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    fn(rg, ours).sum().backward()
    fn(torch, theirs).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
    assert not np.isnan(ours.grad.numpy()).any()


@pytest.mark.parametrize("ord", [INF, -INF, 1, -1], ids=str)
def test_tied_row_and_column_sums_share_the_gradient_as_torch(ord):
    x = np.array([[1.0, -2.0], [2.0, 1.0], [-3.0, 0.5]])   # row sums 3, 3, 3.5; columns 6, 3.5
    x[2] = [-1.5, 1.5]                                        # row sums 3, 3, 3
    check_op(lambda t: rg.linalg.matrix_norm(t, ord), lambda t: torch.linalg.matrix_norm(t, ord),
             x, gradcheck=False)


def test_svdvals_matches_torch():
    check_op(rg.linalg.svdvals, torch.linalg.svdvals, _x(2, 3, 5))
    check_op(rg.linalg.svdvals, torch.linalg.svdvals, _x(4, 3), dtype=np.float32)


@pytest.mark.parametrize("p, dim", [("fro", None), (None, None), ("fro", (0, 1)), (2, 1),
                                    (1, None), (INF, 0), ("nuc", None), ("nuc", (1, 2)),
                                    (3, (0, 2))], ids=str)
def test_tensor_norm_follows_torch_norm(p, dim):
    x = _x(3, 4) if p == "nuc" and dim is None else _x(2, 3, 4)
    check_op(lambda t: rg.norm(t, p, dim), lambda t: torch.norm(t, p, dim), x)
    check_op(lambda t: t.norm(p=p, dim=dim, keepdim=True),
             lambda t: t.norm(p=p, dim=dim, keepdim=True), x, gradcheck=False)


def test_unsupported_orders_and_bad_arguments_are_clear_errors():
    x = rg.ones(3, 4)
    with pytest.raises(ValueError, match="linalg.vector_norm: ord must be a number >= 0, inf or "
                                         "-inf .* got -1 .negative orders"):
        rg.linalg.vector_norm(x, -1)
    with pytest.raises(ValueError, match="linalg.vector_norm: ord must be .* got 'fro'"):
        rg.linalg.vector_norm(x, "fro")
    with pytest.raises(ValueError, match="linalg.matrix_norm: ord must be one of 'fro', 'nuc', 2, "
                                         "-2, inf, -inf, 1, -1, got 3"):
        rg.linalg.matrix_norm(x, 3)
    with pytest.raises(ValueError, match=r"linalg.matrix_norm: dim must be a 2-tuple of dims, got "
                                         r"\(0, 1, 2\)"):
        rg.linalg.matrix_norm(rg.ones(2, 3, 4), dim=(0, 1, 2))
    with pytest.raises(ValueError, match="linalg.matrix_norm: the input must have at least 2 dims"):
        rg.linalg.matrix_norm(rg.ones(3))
    with pytest.raises(ValueError, match="names the same dimension twice"):
        rg.linalg.matrix_norm(x, dim=(1, -1))
    with pytest.raises(ValueError, match=r"linalg.norm: when dim is not given but ord is, the "
                                         r"input must be 1-D or 2-D, got shape \(2, 3, 4\)"):
        rg.linalg.norm(rg.ones(2, 3, 4), 2)
    with pytest.raises(TypeError, match="linalg.vector_norm: expected a floating-point tensor"):
        rg.linalg.vector_norm(rg.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="linalg.svdvals: the SVD failed to converge .* nan"):
        rg.linalg.svdvals(rg.tensor([[float("nan"), 1.0], [1.0, 1.0]]))
