"""Reductions (retrograd/ops/reduce.py): sum, mean, var, max/min along a dim (values and
indices), amax/amin, logsumexp. Each against PyTorch, by finite differences through the engine
and alone, twice differentiated, in float32, and with the edge rows: negative dims, keepdim,
several dims, size-1, size-0 and 0-d inputs, ties."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops import reduce as red
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _leaves(*arrays):
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


# (dim, keepdim) rows shared by sum, mean, var, amax, amin, logsumexp
DIMS = [(None, False), (0, False), (-1, False), (1, True), ((0, 2), False), ((0, -1), True),
        ((-3, 1, 2), False)]


def _dims_kw(dim, keepdim):
    return {} if dim is None else {"dim": dim, "keepdim": keepdim}


def _axis(dim, ndim):
    if dim is None:
        return None
    dims = dim if isinstance(dim, tuple) else (dim,)
    return tuple(sorted(d % ndim for d in dims))


# (id, method name, torch fn, Function, extra keyword arguments, input maker)
REDUCTIONS = [
    ("sum", "sum", torch.sum, red.Sum, {}, lambda: randn(2, 3, 4)),
    ("mean", "mean", torch.mean, red.Mean, {}, lambda: randn(2, 3, 4)),
    ("var", "var", torch.var, red.Var, {}, lambda: randn(2, 3, 4)),
    ("amax", "amax", torch.amax, red.Amax, {}, lambda: randn(2, 3, 4)),
    ("amin", "amin", torch.amin, red.Amin, {}, lambda: randn(2, 3, 4)),
    ("logsumexp", "logsumexp", torch.logsumexp, red.LogSumExp, {}, lambda: randn(2, 3, 4)),
]
RED_IDS = [r[0] for r in REDUCTIONS]


def _rg_call(method, dim, keepdim):
    return lambda x: getattr(x, method)(**_dims_kw(dim, keepdim))


def _torch_call(fn, dim, keepdim):
    if dim is None:
        return lambda x: fn(x, dim=tuple(range(x.ndim))) if fn is torch.logsumexp else fn(x)
    return lambda x: fn(x, dim=dim, keepdim=keepdim)


@pytest.mark.parametrize("dim, keepdim", DIMS, ids=str)
@pytest.mark.parametrize("name, method, torch_fn, op, kw, make", REDUCTIONS, ids=RED_IDS)
def test_reduction_matches_torch(name, method, torch_fn, op, kw, make, dim, keepdim):
    if name == "logsumexp" and dim is None:
        dim = (0, 1, 2)  # logsumexp needs dims, as in torch
    check_op(_rg_call(method, dim, keepdim), _torch_call(torch_fn, dim, keepdim), make())


@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, False), ((0, 2), True)], ids=str)
@pytest.mark.parametrize("name, method, torch_fn, op, kw, make", REDUCTIONS, ids=RED_IDS)
def test_reduction_backward_alone(name, method, torch_fn, op, kw, make, dim, keepdim):
    check_backward_alone(op, [make()], {"axis": _axis(dim, 3), "keepdims": keepdim})


@pytest.mark.parametrize("name, method, torch_fn, op, kw, make", REDUCTIONS, ids=RED_IDS)
def test_reduction_float32_matches_torch(name, method, torch_fn, op, kw, make):
    (out,) = check_op(_rg_call(method, (0, 2), False), _torch_call(torch_fn, (0, 2), False),
                      make(), dtype=np.float32)
    assert out.dtype == rg.float32


@pytest.mark.parametrize("dim", [None, 1], ids=str)
@pytest.mark.parametrize("name, method, torch_fn, op, kw, make", REDUCTIONS, ids=RED_IDS)
def test_reduction_second_order(name, method, torch_fn, op, kw, make, dim):
    if name == "logsumexp" and dim is None:
        dim = (0, 1)
    assert gradgradcheck(_rg_call(method, dim, False), _leaves(make()[0]), **GRADCHECK_TOLERANCES)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the mean of nothing is nan, quietly
@pytest.mark.parametrize("shape, dim", [((), None), ((), 0), ((), -1), ((1,), 0), ((4, 1), 1),
                                        ((1, 1), (0, 1)), ((0, 3), 1), ((0, 3), None)], ids=str)
@pytest.mark.parametrize("method, torch_fn", [("sum", torch.sum), ("mean", torch.mean)])
def test_sum_mean_edge_shapes(method, torch_fn, shape, dim):
    x = randn(*shape) if shape else np.array(0.3)
    check_op(_rg_call(method, dim, False), _torch_call(torch_fn, dim, False), x)


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (1, True), ((0, 2), False)], ids=str)
def test_var_corrections(correction, dim, keepdim):
    x = randn(3, 4, 5)
    check_op(lambda t: t.var(dim, keepdim=keepdim, correction=correction),
             lambda t: torch.var(t, dim, keepdim=keepdim, correction=correction), x)
    check_backward_alone(red.Var, [x], {"axis": _axis(dim, 3), "correction": correction,
                                        "keepdims": keepdim})


def test_var_unbiased_flag_and_std():
    x = randn(4, 5)
    check_op(lambda t: t.var(1, unbiased=False), lambda t: t.var(1, unbiased=False), x)
    check_op(lambda t: t.std(0), lambda t: t.std(0), x)
    check_op(lambda t: rg.std(t), lambda t: torch.std(t), x, dtype=np.float32)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom:UserWarning",  # ours and torch's
                            "error::RuntimeWarning")
@pytest.mark.parametrize("correction, shape", [(1, (1,)), (2, (2,)), (1, (3, 1))], ids=str)
def test_var_with_no_degrees_of_freedom_is_nan_or_inf_as_torch(correction, shape):
    data = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    x, tx = rg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    y, ty = x.var(-1, correction=correction), tx.var(-1, correction=correction)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


# ---------------------------------------------------------------- max/min along a dim
@pytest.mark.parametrize("shape, dim, keepdim", [((3, 4), 1, False), ((3, 4), -2, True),
                                                 ((2, 3, 4), 1, False), ((5,), 0, True),
                                                 ((1, 4), 0, False), ((3, 0), 0, False)],
                         ids=str)
@pytest.mark.parametrize("method", ["max", "min"])
def test_max_min_dim_matches_torch(method, shape, dim, keepdim):
    rg_out = check_op(lambda t: getattr(t, method)(dim, keepdim=keepdim),
                      lambda t: tuple(getattr(t, method)(dim, keepdim=keepdim)), randn(*shape))
    assert rg_out[1].dtype == rg.int64 and not rg_out[1].requires_grad


@pytest.mark.parametrize("op", [red.MaxDim, red.MinDim])
def test_max_min_dim_backward_alone_float32_and_second_order(op):
    x = randn(3, 4)
    check_backward_alone(op, [x], {"axis": 1})
    check_backward_alone(op, [x], {"axis": 0, "keepdims": True})
    method = "max" if op is red.MaxDim else "min"
    check_op(lambda t: getattr(t, method)(1)[0], lambda t: getattr(t, method)(1)[0], x,
             dtype=np.float32)
    assert gradgradcheck(lambda t: getattr(t, method)(0).values * t.sum(), _leaves(x),
                         **GRADCHECK_TOLERANCES)


def test_max_min_return_named_values_and_indices():
    x = rg.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = x.max(1)
    assert x.max(1).values is not None and x.max(1).indices is not None
    np.testing.assert_array_equal(values.numpy(), [5.0, 7.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    np.testing.assert_array_equal(x.min(0).indices.numpy(), [0, 1, 0])
    np.testing.assert_array_equal(rg.argmax(x, 1).numpy(), [1, 0])
    np.testing.assert_array_equal(rg.argmin(x).numpy(), 4)
    np.testing.assert_array_equal(x.argmax(0, keepdim=True).numpy(), [[1, 0, 1]])


def test_max_of_a_0d_tensor_along_dim_0():
    x = rg.tensor(2.5, requires_grad=True)
    values, indices = x.max(0)
    tvalues, tindices = torch.tensor(2.5).max(0)
    assert values.shape == tuple(tvalues.shape) and indices.item() == tindices.item() == 0
    values.backward()
    assert x.grad.item() == 1.0


def test_max_with_a_tensor_is_elementwise_maximum():
    check_op(lambda a, b: a.max(b), lambda a, b: a.max(b), randn(3, 1), randn(4, seed=1))
    check_op(lambda a, b: rg.min(a, b), lambda a, b: torch.min(a, b), randn(3, 1), randn(4, seed=1))


# ---------------------------------------------------------------- ties (kinks)
TIES = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [-1.0, 0.0, -1.0]])


def _exact_vs_torch(rg_fn, torch_fn, data):
    x, tx = rg.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    outs, touts = rg_fn(x), torch_fn(tx)
    outs = outs if isinstance(outs, tuple) else (outs,)
    touts = touts if isinstance(touts, tuple) else (touts,)
    for a, b in zip(outs, touts):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    cot = np.arange(1.0, outs[0].numel() + 1).reshape(outs[0].shape)
    outs[0].backward(rg.tensor(cot))
    touts[0].backward(torch.tensor(cot))
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
    return x.grad.numpy()


@pytest.mark.parametrize("name, rg_fn, torch_fn", [
    ("max_full", lambda t: t.max(), lambda t: t.max()),
    ("min_full", lambda t: t.min(), lambda t: t.min()),
    ("amax_dim", lambda t: t.amax(1), lambda t: t.amax(1)),
    ("amin_dims", lambda t: t.amin((0, 1)), lambda t: t.amin((0, 1))),
    ("amax_keepdim", lambda t: t.amax(0, keepdim=True), lambda t: t.amax(0, keepdim=True)),
    ("max_dim", lambda t: t.max(1), lambda t: tuple(t.max(1))),
    ("min_dim", lambda t: t.min(0), lambda t: tuple(t.min(0))),
])
def test_ties_follow_torch(name, rg_fn, torch_fn):
    _exact_vs_torch(rg_fn, torch_fn, TIES)


def test_full_max_splits_the_gradient_between_ties():
    grad = _exact_vs_torch(lambda t: t.max(), lambda t: t.max(), np.array([1.0, 4.0, 4.0, 0.0]))
    np.testing.assert_array_equal(grad, [0.0, 0.5, 0.5, 0.0])


# ---------------------------------------------------------------- logsumexp stability
@pytest.mark.parametrize("data", [
    [[1e4, 1e4 - 1.0, 0.0], [-1e4, -1e4, -1e4 + 2.0]],
    [[0.5, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]],
], ids=["huge", "minus_inf"])
def test_logsumexp_is_stable(data):
    data = np.array(data)
    with np.errstate(over="raise"):
        check_op(lambda t: t.logsumexp(1), lambda t: t.logsumexp(1), data, gradcheck=False)
        check_op(lambda t: t.logsumexp(1, keepdim=True), lambda t: t.logsumexp(1, keepdim=True),
                 data, dtype=np.float32, gradcheck=False)


@pytest.mark.parametrize("shape, dim", [((0,), 0), ((0, 3), 0), ((2, 0), 1), ((2, 0), 0)], ids=str)
def test_logsumexp_over_an_empty_dim_is_minus_inf_as_torch(shape, dim):
    check_op(lambda t: t.logsumexp(dim), lambda t: t.logsumexp(dim), randn(*shape))


def test_logsumexp_of_an_all_minus_inf_row_is_minus_inf():
    y = rg.tensor([[-np.inf, -np.inf], [0.0, 0.0]]).logsumexp(1)
    np.testing.assert_array_equal(y.numpy(), torch.tensor([[-np.inf, -np.inf], [0.0, 0.0]])
                                  .logsumexp(1).numpy())


# ---------------------------------------------------------------- dtypes
@pytest.mark.parametrize("data, method", [
    (np.array([True, False, True]), "sum"),
    (np.array([1, 2, 3], dtype=np.int32), "sum"),
    (np.array([1, 2, 3], dtype=np.int64), "sum"),
    (np.array([1, 2, 3], dtype=np.int64), "amax"),
    (np.array([1, 2, 3], dtype=np.int64), "max"),
    (np.array([1.0, 2.0], dtype=np.float16), "sum"),
    (np.array([1.0, 2.0], dtype=np.float16), "mean"),
], ids=str)
def test_reduction_dtypes_follow_torch(data, method):
    y, ty = getattr(rg.tensor(data), method)(), getattr(torch.tensor(data), method)()
    assert str(y.dtype).split(".")[-1] == str(ty.dtype).split(".")[-1]
    assert y.item() == ty.item()


def test_sum_and_mean_with_dtype_argument():
    x = rg.tensor([1, 2, 4])
    assert x.sum(dtype=rg.float64).dtype == rg.float64
    assert x.mean(dtype=rg.float32).item() == pytest.approx(7 / 3)
    assert rg.ones(3).sum(dtype=rg.float64).dtype == rg.float64


def test_numpy_spellings_axis_and_keepdims():
    x = randn(2, 3)
    np.testing.assert_allclose(rg.tensor(x).sum(axis=1, keepdims=True).numpy(),
                               x.astype(np.float64).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(rg.tensor(x).mean(axis=0).numpy(), x.mean(axis=0))


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("method", ["sum", "mean", "var", "amax", "amin", "logsumexp", "max",
                                    "min", "argmax"])
def test_dim_out_of_range_names_op(method):
    with pytest.raises(IndexError, match=rf"{method}: dim 2 is out of range for a tensor with 2 "
                                         rf"dims \(expected -2 <= dim < 2\)"):
        getattr(rg.ones(3, 4), method)(2)


def test_repeated_dims_error():
    with pytest.raises(ValueError, match=r"sum: dim \(1, -1\) repeats a dimension"):
        rg.ones(3, 4).sum((1, -1))


@pytest.mark.parametrize("method", ["mean", "var", "std"])
def test_mean_and_var_of_an_integer_tensor_error_as_torch(method):
    with pytest.raises(TypeError, match=rf"{method}: expected a "
                                        rf"floating-point tensor, got dtype retrograd.int64"):
        getattr(rg.tensor([1, 2, 3]), method)()
    with pytest.raises(RuntimeError):
        getattr(torch.tensor([1, 2, 3]), method)()


@pytest.mark.parametrize("method", ["max", "min", "amax", "amin", "argmax"])
def test_extrema_of_an_empty_tensor_error(method):
    with pytest.raises(ValueError, match=rf"{method}: cannot reduce an empty"):
        getattr(rg.zeros(0, 3), method)()
    with pytest.raises(ValueError, match=rf"{method}: cannot reduce over dim 0, which has size 0 "
                                         rf"\(tensor of shape \(0, 3\)\)"):
        getattr(rg.zeros(0, 3), method)(0)
    # reducing a non-empty dim of an empty tensor is fine (as torch): the result is empty
    out = getattr(rg.zeros(0, 3), method)(1)
    assert (out[0] if isinstance(out, tuple) else out).shape == (0,)


@pytest.mark.parametrize("op", [red.MaxDim, red.Amax])
def test_functions_refuse_an_empty_reduced_axis(op):
    with pytest.raises(ValueError, match=rf"{op.__name__}: cannot reduce an empty axis"):
        op.apply(rg.zeros(2, 0), axis=1 if op is red.MaxDim else (1,))
