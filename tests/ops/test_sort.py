"""sort, argsort and topk (retrograd/ops/sort.py, retrograd/_ordering.py): values, indices and
gradients against PyTorch, with ties (against PyTorch's stable=True order), NaN, inf and
signed zeros, k = 0, empty dims, 0-d inputs, integer/bool/half inputs; finite differences alone
and twice through the engine; the return types and the errors.

PyTorch's topk picks among tied values in an order that changes with k (on the CPU, for
[1, 3, 3, 2, 3, 1] it returns indices [2, 4] for k = 2 and [1, 2, 4, 3, 0] for k = 5):
retrograd returns the lowest indices first ([1, 2] and [1, 2, 4, 3, 0]). Ties are therefore
checked on values (exactly equal to PyTorch's) and on consistency: values == x[indices], and
the gradient reaches exactly the returned indices.
"""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops.sort import Sort, TopK
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

NAN, INF = float("nan"), float("inf")
CASES = [((7,), 0), ((3, 5), -1), ((3, 5), 0), ((2, 3, 4), 1), ((2, 1, 4), 1), ((0, 3), 1),
         ((3, 0), 1), ((4, 1), 1)]


def _ties(*shape, seed=0):
    """Values from {-1, 0, 1, 2}: many ties."""
    return np.random.default_rng(seed).integers(-1, 3, shape).astype(np.float64)


# ---------------------------------------------------------------------------- sort
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("shape, dim", CASES, ids=str)
def test_sort_matches_torch(shape, dim, descending):
    check_op(lambda x: rg.sort(x, dim, descending), lambda x: torch.sort(x, dim, descending),
             randn(*shape))


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("shape, dim", [((40,), 0), ((6, 30), 1), ((30, 6), 0)], ids=str)
def test_sort_ties_follow_torchs_stable_order(shape, dim, descending):
    x = _ties(*shape)
    # (no finite differences: at a tie the sort is not differentiable)
    check_op(lambda t: rg.sort(t, dim, descending),
             lambda t: torch.sort(t, dim=dim, descending=descending, stable=True), x,
             gradcheck=False)
    check_op(lambda t: rg.sort(t, dim, descending, stable=True),
             lambda t: torch.sort(t, dim=dim, descending=descending, stable=True), x,
             gradcheck=False)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_places_nan_as_largest_and_keeps_signed_zeros_in_order(descending):
    x = np.array([1.0, NAN, -INF, INF, -0.0, 0.0, NAN, -0.0, 2.0])
    got = rg.sort(rg.tensor(x), descending=descending)
    want = torch.sort(torch.tensor(x), descending=descending, stable=True)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    np.testing.assert_array_equal(np.signbit(got.values.numpy()), np.signbit(want.values.numpy()))
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())   # nan == nan here


def test_sort_gradient_with_nan_and_ties_goes_back_to_the_sources():
    x = np.array([[2.0, NAN, 1.0, 2.0, -1.0], [0.0, 0.0, 3.0, NAN, 0.0]])
    check_op(lambda t: rg.sort(t, 1, True)[0],
             lambda t: torch.sort(t, dim=1, descending=True, stable=True)[0], x, gradcheck=False)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_backward_alone(descending):
    check_backward_alone(Sort, [randn(3, 4, 5)], {"axis": 1, "descending": descending})


def test_sort_twice_differentiable():
    x = rg.tensor(randn(3, 5), requires_grad=True)
    assert gradgradcheck(lambda t: rg.sort(t * t, 1, True).values * t, [x],
                         **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.float16, np.float32])
def test_sort_other_dtypes_match_torch(dtype):
    x = (_ties(4, 9) * 3).astype(dtype)
    got = rg.sort(rg.tensor(x), 1, True)
    want = torch.sort(torch.from_numpy(x), dim=1, descending=True, stable=True)
    assert got.values.dtype == getattr(rg, str(want.values.dtype).split(".")[-1])
    assert got.indices.dtype == rg.int64
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


def test_sort_bfloat16_keeps_dtype():
    x = rg.tensor(_ties(3, 8), dtype=rg.bfloat16)
    got = rg.sort(x, descending=True)
    want = torch.sort(torch.tensor(_ties(3, 8), dtype=torch.bfloat16), descending=True,
                      stable=True)
    assert got.values.dtype == rg.bfloat16
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())


def test_sort_of_a_0d_tensor_is_itself_and_index_0():
    x = rg.tensor(2.5, requires_grad=True)
    values, indices = rg.sort(x)
    assert values.shape == () and indices.shape == () and indices.item() == 0
    values.backward()
    assert x.grad.item() == 1.0


def test_sort_result_is_a_named_pair():
    result = rg.tensor([3.0, 1.0]).sort()
    values, indices = result
    assert isinstance(result, tuple) and result.values is values and result.indices is indices
    assert result[0] is values and repr(result).startswith("sort(values=tensor(")


# ---------------------------------------------------------------------------- argsort
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("shape, dim", CASES, ids=str)
def test_argsort_matches_torchs_stable_order(shape, dim, descending):
    x = _ties(*shape)
    got = rg.argsort(rg.tensor(x), dim, descending)
    want = torch.argsort(torch.tensor(x), dim=dim, descending=descending, stable=True)
    assert got.dtype == rg.int64 and not got.requires_grad
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(rg.tensor(x).argsort(dim, descending=descending).numpy(),
                                  want.numpy())


def test_argsort_of_a_0d_tensor():
    assert rg.argsort(rg.tensor(3.0)).item() == 0


# ---------------------------------------------------------------------------- topk
TOPK = [((9,), 3, 0), ((9,), 9, -1), ((9,), 0, 0), ((3, 7), 2, 1), ((3, 7), 3, 0),
        ((2, 5, 4), 1, 1), ((2, 5, 4), 4, -1), ((3, 0), 0, 1), ((0, 4), 2, 1)]


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("shape, k, dim", TOPK, ids=str)
def test_topk_matches_torch(shape, k, dim, largest):
    check_op(lambda x: rg.topk(x, k, dim, largest), lambda x: torch.topk(x, k, dim, largest),
             randn(*shape))


def test_topk_float32_and_method_and_keywords_match_torch():
    check_op(lambda x: x.topk(3, dim=0, largest=False, sorted=True),
             lambda x: x.topk(3, dim=0, largest=False, sorted=True), randn(6, 4),
             dtype=np.float32)


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("k", [1, 2, 4, 6])
def test_topk_ties_have_torchs_values_lowest_indices_and_gradient_at_the_indices(k, largest):
    x = _ties(5, 8, seed=k)
    t = rg.tensor(x, requires_grad=True)
    values, indices = rg.topk(t, k, 1, largest)
    want = torch.topk(torch.tensor(x), k, 1, largest)
    np.testing.assert_array_equal(values.detach().numpy(), want.values.numpy())
    idx = indices.numpy()
    np.testing.assert_array_equal(np.take_along_axis(x, idx, 1), values.detach().numpy())
    assert all(len(set(row)) == k for row in idx)
    # the lowest indices first among ties: the stable order of (descending) values
    order = np.argsort(-x if largest else x, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(idx, order)
    cotangent = np.random.default_rng(k).standard_normal(values.shape)
    (values * rg.tensor(cotangent)).sum().backward()
    expected = np.zeros_like(x)
    np.put_along_axis(expected, idx, cotangent, 1)
    np.testing.assert_array_equal(t.grad.numpy(), expected)


def test_topk_counts_nan_as_largest():
    x = np.array([1.0, NAN, 0.0, NAN, 5.0])
    for largest in (True, False):
        got = rg.topk(rg.tensor(x), 3, largest=largest)
        want = torch.topk(torch.tensor(x), 3, largest=largest)
        np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())
    assert rg.topk(rg.tensor(x), 3).indices.tolist() == [1, 3, 4]


@pytest.mark.parametrize("largest", [True, False])
def test_topk_backward_alone(largest):
    check_backward_alone(TopK, [randn(3, 6, 2)], {"k": 4, "axis": 1, "largest": largest})


def test_topk_twice_differentiable():
    x = rg.tensor(randn(4, 6), requires_grad=True)
    assert gradgradcheck(lambda t: rg.topk(t * t, 3).values * t[:, :3], [x],
                         **GRADCHECK_TOLERANCES)


def test_topk_integers_match_torch():
    x = np.array([[3, 1, 2, 9], [0, -4, 8, 8]])
    got, want = rg.topk(rg.tensor(x), 2), torch.topk(torch.tensor(x), 2)
    assert got.values.dtype == rg.int64
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_topk_of_a_0d_tensor_is_itself():
    values, indices = rg.topk(rg.tensor(4.0), 1)
    assert values.item() == 4.0 and indices.item() == 0 and values.shape == ()


def test_topk_result_is_a_named_pair():
    result = rg.topk(rg.tensor([1.0, 3.0, 2.0]), 2)
    assert result.values.tolist() == [3.0, 2.0] and result.indices.tolist() == [1, 2]
    assert repr(result).startswith("topk(values=")


def test_topk_errors_name_the_op_k_and_the_size():
    x = rg.ones(3, 4)
    with pytest.raises(RuntimeError, match=r"topk: selected index k out of range: k = 5 but "
                                           r"dim -1 has size 4 \(input of shape \(3, 4\)\)"):
        rg.topk(x, 5)
    with pytest.raises(RuntimeError, match="topk: selected index k out of range: k = 1 but dim 1 "
                                           "has size 0"):
        rg.topk(rg.ones(3, 0), 1, dim=1)
    with pytest.raises(ValueError, match="topk: k must be a non-negative int, got -1"):
        rg.topk(x, -1)
    with pytest.raises(IndexError, match="topk: dim 2 is out of range"):
        rg.topk(x, 1, dim=2)
    with pytest.raises(TypeError, match="topk: input must be a Tensor"):
        rg.topk([1.0, 2.0], 1)
    with pytest.raises(IndexError, match="sort: dim -3 is out of range"):
        rg.sort(x, -3)


def test_results_pickle_as_torch_return_types_do():
    import pickle
    result = rg.sort(rg.tensor([2.0, 1.0]))
    again = pickle.loads(pickle.dumps(result))
    assert isinstance(again, rg.return_types.sort) and again.indices.tolist() == [1, 0]
    assert isinstance(rg.topk(rg.tensor([2.0, 1.0]), 1), rg.return_types.topk)
