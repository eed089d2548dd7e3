"""Scatter and ScatterAdd (retrograd/ops/scatter.py) and the index writes composed from
indexing ops (index_add, index_fill, index_copy, masked_scatter, fill_diagonal_), out of place
and in place, against PyTorch: values and gradients of both the tensor and the source,
repeated indices, a source larger than the index, finite differences and double backward."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops import scatter as sc
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

# index along dim 1 of a (2, 3, 4) tensor: no repeats within a column (scatter's written
# value is then defined). (torch 2.13's backward fails for a src larger than the index, so
# the larger src of test_src_larger_than_the_index is checked by finite differences.)
INDEX = np.array([[[0, 1, 2, 0], [1, 2, 0, 1]], [[2, 0, 1, 1], [0, 1, 2, 2]]])
REPEATED = np.array([[[0, 0, 2, 0], [0, 2, 2, 1]], [[1, 1, 1, 1], [2, 2, 2, 2]]])
X, SRC = randn(2, 3, 4, seed=1), randn(2, 2, 4, seed=2)
MASK = np.zeros((3, 4), dtype=bool)     # broadcast over dim 0: 6 of X's 24 positions
MASK[[0, 1, 2], [1, 3, 0]] = True


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


def _idx(lib, index):
    return lib.tensor(index)


# (id, fn(lib, x, src), x, src)
CASES = [
    ("scatter", lambda L, x, s: x.scatter(1, _idx(L, INDEX), s), X, SRC),
    ("scatter_fn_neg_dim", lambda L, x, s: L.scatter(x, -2, _idx(L, INDEX), s), X, SRC),
    ("scatter_add", lambda L, x, s: x.scatter_add(1, _idx(L, INDEX), s), X, SRC),
    ("scatter_add_repeats", lambda L, x, s: L.scatter_add(x, 1, _idx(L, REPEATED), s), X, SRC),
    ("scatter_add_dim0", lambda L, x, s: x.scatter_add(0, _idx(L, REPEATED % 2), s), X, SRC),
    ("index_add", lambda L, x, s: x.index_add(1, L.tensor([2, 0]), s, alpha=0.5), X, SRC),
    ("index_copy", lambda L, x, s: L.index_copy(x, 1, L.tensor([2, 0]), s), X, SRC),
    ("masked_scatter", lambda L, x, s: x.masked_scatter(L.tensor(MASK), s), X, SRC),
]


@pytest.mark.parametrize("name, fn, x, src", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, fn, x, src):
    check_op(lambda a, b: fn(rg, a, b), lambda a, b: fn(torch, a, b), x, src)


@pytest.mark.parametrize("name, fn, x, src", CASES, ids=[c[0] for c in CASES])
def test_second_order(name, fn, x, src):
    assert gradgradcheck(lambda a, b: fn(rg, a, b), _leaves(x, src), **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("method", ["scatter", "scatter_add"])
def test_src_larger_than_the_index(method):
    """Only src's leading corner of the index's shape is used; the rest gets gradient 0."""
    src = randn(3, 2, 5, seed=4)
    x = rg.tensor(X, requires_grad=True)
    s = rg.tensor(src, requires_grad=True)
    y = getattr(x, method)(1, rg.tensor(INDEX), s)
    want = getattr(torch.tensor(X), method)(1, torch.tensor(INDEX), torch.tensor(src))
    np.testing.assert_array_equal(y.detach().numpy(), want.numpy())
    y.backward(rg.tensor(randn(2, 3, 4, seed=5)))
    assert not s.grad.numpy()[2:].any() and not s.grad.numpy()[:, :, 4:].any()
    assert gradgradcheck(lambda a, b: getattr(a, method)(1, rg.tensor(INDEX), b),
                         _leaves(X, src), **GRADCHECK_TOLERANCES)
    check_backward_alone(sc.Scatter if method == "scatter" else sc.ScatterAdd, [X, src],
                         {"index": INDEX, "axis": 1})


def test_scatter_gradient_with_repeated_index_follows_torch():
    """A position written twice keeps one value, but every src element used gets the
    gradient of its position (torch's rule)."""
    index = np.array([[0, 0], [1, 1]])
    check_op(lambda a, b: a.scatter(1, rg.tensor(index), b),
             lambda a, b: a.scatter(1, torch.tensor(index), b), randn(2, 3), np.ones((2, 2)),
             gradcheck=False)


@pytest.mark.parametrize("op", [sc.Scatter, sc.ScatterAdd])
def test_backward_alone(op):
    check_backward_alone(op, [X, SRC], {"index": INDEX, "axis": 1})


def test_scatter_value_form_and_index_fill_match_torch():
    check_op(lambda a: a.scatter(1, rg.tensor(INDEX), 2.5),
             lambda a: a.scatter(1, torch.tensor(INDEX), 2.5), X)
    check_op(lambda a: rg.scatter(a, 1, rg.tensor(INDEX), value=-1.0),
             lambda a: torch.scatter(a, 1, torch.tensor(INDEX), value=-1.0), X)
    check_op(lambda a: a.index_fill(2, rg.tensor([0, 3, 0]), -1.0),
             lambda a: a.index_fill(2, torch.tensor([0, 3, 0]), -1.0), X)
    check_op(lambda a, v: a.index_fill(-1, rg.tensor([1]), v),
             lambda a, v: a.index_fill(-1, torch.tensor([1]), v), X, np.array(0.25))
    got = rg.zeros(3, dtype=rg.int64).scatter(0, rg.tensor([2, 0]), rg.tensor([7, 8]))
    assert got.tolist() == [8, 0, 7]


IN_PLACE = [
    ("scatter_", lambda L, y, s: y.scatter_(1, _idx(L, INDEX), s)),
    ("scatter_value_", lambda L, y, s: y.scatter_(1, _idx(L, INDEX), 0.5)),
    ("scatter_add_", lambda L, y, s: y.scatter_add_(1, _idx(L, REPEATED), s)),
    ("index_add_", lambda L, y, s: y.index_add_(1, L.tensor([1, 1]), s)),
    ("index_fill_", lambda L, y, s: y.index_fill_(1, L.tensor([0, 2]), 3.0)),
    ("index_copy_", lambda L, y, s: y.index_copy_(1, L.tensor([2, 0]), s * 1.0)),
    ("masked_scatter_", lambda L, y, s: y.masked_scatter_(L.tensor(MASK), s)),
    ("fill_diagonal_", lambda L, y, s: y.reshape(6, 4).fill_diagonal_(-2.0, wrap=True)),
]


@pytest.mark.parametrize("name, fn", IN_PLACE, ids=[c[0] for c in IN_PLACE])
def test_in_place_forms_match_torch_through_a_graph(name, fn):
    def run(L, x, s):
        y = x * 1.5
        if name == "fill_diagonal_":
            y = y.reshape(6, 4) * 1.0   # (retrograd records no in-place op on a view)
            return y.fill_diagonal_(-2.0, wrap=True)
        out = fn(L, y, s)
        assert out is y
        return y

    check_op(lambda a, b: run(rg, a, b), lambda a, b: run(torch, a, b), X, SRC)


def test_in_place_on_a_saved_tensor_is_detected():
    x = rg.tensor(X, requires_grad=True)
    y = x * 1.0
    z = y * y                           # saves y
    y.scatter_(1, rg.tensor(INDEX), rg.tensor(SRC))
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


def test_fill_diagonal_wrap_and_shapes_match_torch():
    for shape, wrap in (((7, 3), False), ((7, 3), True), ((3, 5), True), ((3, 3, 3), False)):
        a, b = rg.zeros(*shape), torch.zeros(*shape)
        a.fill_diagonal_(1.0, wrap)
        b.fill_diagonal_(1.0, wrap)
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(RuntimeError, match="fill_diagonal_: dims must all be equal"):
        rg.zeros(2, 3, 3).fill_diagonal_(1.0)


def test_errors_name_the_op_and_the_shapes():
    x = rg.zeros(2, 3)
    with pytest.raises(IndexError, match=r"scatter: index values must be in \[0, 3\)"):
        x.scatter(1, rg.tensor([[3]]), rg.ones(1, 1))
    with pytest.raises(IndexError, match="scatter: index values must be in"):
        x.scatter(1, rg.tensor([[-1]]), rg.ones(1, 1))
    with pytest.raises(RuntimeError, match="scatter_add: index must have as many dims"):
        x.scatter_add(1, rg.tensor([0]), rg.ones(1, 1))
    with pytest.raises(RuntimeError, match="scatter: index shape .* is larger than src shape"):
        x.scatter(1, rg.tensor([[0, 1]]), rg.ones(1, 1))
    with pytest.raises(RuntimeError, match="scatter: expected source and the tensor to have the "
                                           "same dtype"):
        x.scatter(1, rg.tensor([[0]]), rg.ones(1, 1, dtype=rg.float64))
    with pytest.raises(NotImplementedError, match="scatter: reduce='multiply' is not supported"):
        x.scatter(1, rg.tensor([[0]]), rg.ones(1, 1), reduce="multiply")
    with pytest.raises(RuntimeError, match=r"index_add: source must have shape \(2, 2\)"):
        x.index_add(1, rg.tensor([0, 1]), rg.ones(2, 3))
    with pytest.raises(IndexError, match="index_copy: index out of range"):
        x.index_copy(0, rg.tensor([2]), rg.ones(1, 3))
    with pytest.raises(RuntimeError, match="masked_scatter: the mask has 6 True entries"):
        x.masked_scatter(rg.ones(2, 3, dtype=rg.bool), rg.ones(5))
    with pytest.raises(TypeError, match="index_fill: index must be an integer tensor"):
        x.index_fill(0, rg.tensor([0.0]), 1.0)
