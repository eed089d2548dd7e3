"""prod and median (retrograd/ops/reduce_extra.py) and the composed reductions (nanmean,
var_mean, std_mean, diff, trace, dist) against PyTorch and finite differences: prod with one
and with two zeros in a group, median with ties and NaN, negative dims, empty tensors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops import reduce_extra as rx
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


# ---------------------------------------------------------------- prod
PROD_CASES = [
    ("all", lambda t: t.prod(), lambda t: t.prod()),
    ("dim1", lambda t: t.prod(1), lambda t: t.prod(1)),
    ("dim0_keepdim", lambda t: t.prod(0, keepdim=True), lambda t: t.prod(0, keepdim=True)),
    ("neg_dim", lambda t: rg.prod(t, -1), lambda t: torch.prod(t, -1)),
]


def _with_zeros(count):
    """(3, 4) values; row 0 holds ``count`` zeros, row 1 one zero, row 2 none."""
    x = randn(3, 4, seed=3) + 0.0
    x[0, :count] = 0.0
    x[1, 2] = 0.0
    return x


@pytest.mark.parametrize("name, rg_fn, torch_fn", PROD_CASES, ids=[c[0] for c in PROD_CASES])
@pytest.mark.parametrize("zeros", [0, 1, 2])
def test_prod_matches_torch_with_zeros(name, rg_fn, torch_fn, zeros):
    x = _with_zeros(zeros) if zeros else randn(3, 4)
    check_op(rg_fn, torch_fn, x)


@pytest.mark.parametrize("zeros", [0, 1, 2])
def test_prod_backward_alone_and_second_order(zeros):
    x = _with_zeros(zeros) if zeros else randn(3, 4)
    check_backward_alone(rx.Prod, [x], {"axis": 1})
    check_backward_alone(rx.Prod, [x], {"axis": None})
    for rg_fn in (lambda t: t.prod(1), lambda t: t.prod(), lambda t: t.prod(0, keepdim=True)):
        assert gradgradcheck(rg_fn, _leaves(x), **GRADCHECK_TOLERANCES)


def test_prod_gradient_with_zeros_is_exact():
    """One zero: its entry gets the product of the others and the rest 0; two zeros: 0."""
    x = rg.tensor([[2.0, 0.0, 3.0, 4.0], [0.0, 5.0, 0.0, 2.0]], requires_grad=True)
    x.prod(1).sum().backward()
    assert x.grad.tolist() == [[0.0, 24.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]


def test_prod_dtypes_and_shapes():
    assert rg.tensor([2, 3, 4]).prod().dtype == rg.int64
    assert rg.tensor([2, 3, 4], dtype=rg.int32).prod().item() == 24
    assert rg.tensor([True, True]).prod().dtype == rg.int64
    y = rg.tensor([1.5, 2.0]).prod(dtype=rg.float64)
    assert y.dtype == rg.float64 and y.item() == 3.0
    check_op(lambda t: t.prod(1), lambda t: t.prod(1), randn(2, 0))
    check_op(lambda t: t.prod(0), lambda t: t.prod(0), randn(0, 3))
    check_op(lambda t: t.prod(), lambda t: t.prod(), np.array(1.5))
    check_op(lambda t: t.prod(0), lambda t: t.prod(0), np.array(1.5))
    check_op(lambda t: t.prod(2), lambda t: t.prod(2), randn(2, 3, 1))
    check_op(lambda t: t.prod(1), lambda t: t.prod(1), randn(3, 4), dtype=np.float32)


# ---------------------------------------------------------------- median
TIES = np.array([[1.0, 2.0, 2.0, 3.0, 2.0], [5.0, 5.0, 1.0, 1.0, 3.0], [0.5, 0.5, 0.5, 0.5, 0.5]])


@pytest.mark.parametrize("x", [randn(3, 5), randn(4, 6), TIES], ids=["odd", "even", "ties"])
def test_median_matches_torch(x):
    check_op(lambda t: t.median(), lambda t: t.median(), x, gradcheck=x is not TIES)
    for dim in (0, 1, -1):
        for keepdim in (False, True):
            got = check_op(lambda t: t.median(dim, keepdim), lambda t: t.median(dim, keepdim), x,
                           gradcheck=x is not TIES)
            want = torch.tensor(x).median(dim, keepdim)
            assert got[1].tolist() == want.indices.tolist()
            assert got[1].dtype == rg.int64


def test_median_with_ties_splits_the_gradient_as_torch():
    check_op(lambda t: rg.median(t), lambda t: torch.median(t), TIES, gradcheck=False)
    check_op(lambda t: rg.median(t, 1).values, lambda t: torch.median(t, 1).values, TIES,
             gradcheck=False)


def test_median_with_nan_matches_torch():
    x = np.array([[1.0, np.nan, 2.0, 3.0], [np.nan, 1.0, np.nan, 0.0], [4.0, 1.0, 2.0, 3.0]])
    check_op(lambda t: t.median(), lambda t: t.median(), x, gradcheck=False)
    got = check_op(lambda t: t.median(1), lambda t: t.median(1), x, gradcheck=False)
    assert got[1].tolist() == torch.tensor(x).median(1).indices.tolist()


def test_median_backward_alone_and_second_order():
    x = randn(3, 5)
    check_backward_alone(rx.MedianDim, [x], {"axis": 1})
    check_backward_alone(rx.Median, [x])
    assert gradgradcheck(lambda t: t.median(0).values, _leaves(x), **GRADCHECK_TOLERANCES)
    assert gradgradcheck(lambda t: t.median(), _leaves(x), **GRADCHECK_TOLERANCES)


def test_median_edges():
    assert rg.tensor([3, 1, 2]).median().item() == 2
    assert isinstance(rg.tensor([3.0, 1.0]).median(0), rg.return_types.median)
    assert rg.tensor(np.array(2.5)).median(0).values.item() == 2.5
    with pytest.raises(ValueError, match="median: cannot reduce an empty tensor"):
        rg.zeros(0).median()
    with pytest.raises(ValueError, match="median: cannot reduce over dim 1"):
        rg.zeros(2, 0).median(1)
    y = rg.zeros(0, 3).median(1)
    assert y.values.shape == (0,) and y.indices.shape == (0,)


# ---------------------------------------------------------------- composed reductions
def test_nanmean_matches_torch():
    x = randn(3, 4)
    x[0, 1] = x[1, 3] = np.nan
    check_op(lambda t: t.nanmean(), lambda t: t.nanmean(), x, gradcheck=False)
    for dim in (0, 1, (0, 1), -1):
        check_op(lambda t: rg.nanmean(t, dim, keepdim=True),
                 lambda t: torch.nanmean(t, dim, keepdim=True), x, gradcheck=False)
    check_op(lambda t: t.nanmean(1), lambda t: t.nanmean(1), randn(3, 4))
    assert rg.tensor([1, 2]).float().nanmean().item() == 1.5
    with pytest.raises(TypeError, match="nanmean: expected a floating-point tensor"):
        rg.tensor([1, 2]).nanmean()


def test_nanmean_of_all_nan_is_nan_with_zero_gradient():
    """A group of only NaN: mean NaN (as torch); its entries get gradient 0 (torch: NaN,
    docs/pytorch-compatibility.md)."""
    x = rg.tensor([[np.nan, np.nan], [1.0, 3.0]], requires_grad=True)
    y = x.nanmean(1)
    assert np.isnan(y[0].item()) and y[1].item() == 2.0
    y.sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0], [0.5, 0.5]]


def test_var_mean_and_std_mean_match_torch():
    x = randn(3, 4)
    check_op(rg.var_mean, torch.var_mean, x)
    check_op(lambda t: rg.std_mean(t, 1, keepdim=True),
             lambda t: torch.std_mean(t, 1, keepdim=True), x)
    check_op(lambda t: rg.var_mean(t, (0, 1), correction=0),
             lambda t: torch.var_mean(t, (0, 1), correction=0), x)
    check_op(lambda t: rg.std_mean(t, 0, False, True), lambda t: torch.std_mean(t, 0, False, True),
             x)


def test_diff_matches_torch():
    x = randn(3, 5)
    check_op(rg.diff, torch.diff, x)
    check_op(lambda t: t.diff(2, 0), lambda t: t.diff(2, 0), x)
    check_op(lambda t, p, a: rg.diff(t, 1, -1, p, a), lambda t, p, a: torch.diff(t, 1, -1, p, a),
             x, randn(3, 2, seed=4), randn(3, 1, seed=5))
    check_op(lambda t: t.diff(n=7), lambda t: t.diff(n=7), x)
    check_op(lambda t: t.diff(n=0), lambda t: t.diff(n=0), x)
    b = np.array([True, False, False, True])
    assert rg.tensor(b).diff().tolist() == torch.tensor(b).diff().tolist()
    assert rg.tensor([1, 4, 9]).diff().tolist() == [3, 5]
    with pytest.raises(RuntimeError, match="diff: expects input to be at least one-dimensional"):
        rg.tensor(1.0).diff()


def test_trace_and_dist_match_torch():
    check_op(rg.trace, torch.trace, randn(3, 4))
    assert rg.trace(rg.tensor([[1, 2], [3, 4]])).item() == 5
    with pytest.raises(RuntimeError, match="trace: input must be a matrix"):
        rg.trace(rg.ones(3))
    a, b = randn(3, 4, seed=1), randn(3, 4, seed=2)
    for p in (2, 1, 3, float("inf")):
        check_op(lambda s, t: rg.dist(s, t, p), lambda s, t: torch.dist(s, t, p), a, b)
    b[0, 0] = a[0, 0]
    assert rg.dist(rg.tensor(a), rg.tensor(b), 0).item() == torch.dist(torch.tensor(a),
                                                                       torch.tensor(b), 0).item()
    check_op(lambda s, t: rg.dist(s, t), lambda s, t: torch.dist(s, t), a, b[:1])
    # equal inputs: distance 0 and gradient 0, as torch
    check_op(lambda s, t: rg.dist(s, t), lambda s, t: torch.dist(s, t), a, a.copy(),
             gradcheck=False)
