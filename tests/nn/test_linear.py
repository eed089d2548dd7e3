"""nn.Linear, Identity, Flatten, Unflatten and F.linear's checks, against torch.nn."""

import math

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import check_op, randn, to_torch


def _pair(in_features, out_features, bias=True):
    """A torch Linear in float64 and a retrograd Linear holding the same values."""
    theirs = torch.nn.Linear(in_features, out_features, bias=bias, dtype=torch.float64)
    ours = rg.nn.Linear(in_features, out_features, bias=bias, dtype=rg.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("x_shape, out_features, bias", [
    ((6, 4), 3, True), ((4,), 3, True), ((2, 5, 4), 3, True), ((6, 4), 3, False),
    ((6, 1), 3, True), ((2, 5, 1), 2, False), ((6, 4), 1, True), ((1, 4), 2, True),
])
def test_linear_matches_torch_in_float64(x_shape, out_features, bias):
    ours, theirs = _pair(x_shape[-1], out_features, bias)
    x = randn(*x_shape, seed=1)
    cotangent = randn(*x_shape[:-1], out_features, seed=2)
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    ry, ty = ours(rx), theirs(tx)
    assert ry.shape == tuple(ty.shape) and ry.dtype == rg.float64
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    ry.backward(rg.tensor(cotangent))
    ty.backward(to_torch(cotangent))
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-14)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert p.grad.shape == p.shape, name
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    assert (ours.bias is None) == (not bias)


def test_linear_float32_matches_torch():
    theirs = torch.nn.Linear(16, 8)
    ours = rg.nn.Linear(16, 8)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    # output and input gradient for a random cotangent (check_op), then the parameters'
    (ry,) = check_op(ours, theirs, randn(32, 16, seed=3), dtype=np.float32, rtol=1e-5,
                     atol=1e-5)
    assert ry.dtype == rg.float32
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert p.grad.dtype == rg.float32, name
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=name)


def test_linear_input_not_requiring_grad_still_trains_the_layer():
    ours, theirs = _pair(4, 2)
    x = randn(3, 4, seed=4)
    cotangent = randn(3, 2, seed=5)
    ours(rg.tensor(x)).backward(rg.tensor(cotangent))
    theirs(to_torch(x)).backward(to_torch(cotangent))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-12)


def test_linear_gradcheck_through_the_module():
    layer = rg.nn.Linear(3, 2, dtype=rg.float64)
    x = rg.tensor(randn(4, 3, seed=5), requires_grad=True)
    assert rg.autograd.gradcheck(layer, [x], atol=1e-7, rtol=1e-6)


def test_linear_with_zero_in_features_outputs_the_bias_like_torch():
    with pytest.warns(UserWarning, match="zero-element"):
        ours = rg.nn.Linear(0, 3)
    np.testing.assert_array_equal(ours.bias.detach().numpy(), np.zeros(3))
    y = ours(rg.ones(2, 0))
    assert y.shape == (2, 3)
    y.sum().backward()
    assert ours.weight.grad.shape == (3, 0)
    np.testing.assert_array_equal(ours.bias.grad.numpy(), [2.0, 2.0, 2.0])


# ---------------------------------------------------------------- default initialization
def _uniform_checks(values, bound):
    """Range and the first two moments of U(-bound, bound), with tolerances from the sample
    size n (5 standard errors): mean b/sqrt(3n), variance sqrt(4/45) b^2/sqrt(n)."""
    n = values.size
    assert values.min() >= -bound and values.max() <= bound
    assert values.max() > bound * (1 - 100 / n) and values.min() < -bound * (1 - 100 / n)
    assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    assert abs(values.var() - bound ** 2 / 3) < 5 * math.sqrt(4 / 45) * bound ** 2 / math.sqrt(n)
    # the same fraction in each quarter of the range (a normal would crowd the middle)
    counts, _ = np.histogram(values, bins=4, range=(-bound, bound))
    assert np.all(np.abs(counts / n - 0.25) < 5 * math.sqrt(0.25 * 0.75 / n))


@pytest.mark.parametrize("in_features, out_features", [(400, 500), (30, 4000)])
def test_linear_default_weight_init_is_uniform_with_bound_one_over_sqrt_fan_in(
        in_features, out_features):
    layer = rg.nn.Linear(in_features, out_features, dtype=rg.float64)
    _uniform_checks(layer.weight.detach().numpy(), 1 / math.sqrt(in_features))


def test_linear_default_bias_init_is_uniform_with_bound_one_over_sqrt_fan_in():
    layer = rg.nn.Linear(9, 100_000, dtype=rg.float64)
    _uniform_checks(layer.bias.detach().numpy(), 1 / 3)


def test_linear_init_is_reproducible_under_manual_seed():
    rg.manual_seed(123)
    a = rg.nn.Linear(5, 4)
    rg.manual_seed(123)
    b = rg.nn.Linear(5, 4)
    c = rg.nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    np.testing.assert_array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())
    assert not np.array_equal(b.weight.detach().numpy(), c.weight.detach().numpy())


def test_reset_parameters_redraws_in_place():
    layer = rg.nn.Linear(5, 4)
    weight, before = layer.weight, layer.weight.detach().numpy().copy()
    layer.reset_parameters()
    assert layer.weight is weight and not np.array_equal(before, weight.detach().numpy())
    assert weight.is_leaf and weight.grad_fn is None


# ---------------------------------------------------------------- construction and errors
def test_linear_attributes_and_dtype():
    layer = rg.nn.Linear(3, 5, dtype=rg.float64, device="cpu")
    assert (layer.in_features, layer.out_features) == (3, 5)
    assert layer.weight.shape == (5, 3) and layer.bias.shape == (5,)
    assert layer.weight.dtype == layer.bias.dtype == rg.float64
    assert rg.nn.Linear(3, 5).weight.dtype == rg.float32
    assert [n for n, _ in rg.nn.Linear(3, 5, bias=False).named_parameters()] == ["weight"]


@pytest.mark.parametrize("args", [(-1, 2), (2, -3), (2.0, 3), (2, None)])
def test_linear_rejects_bad_sizes(args):
    with pytest.raises(ValueError, match="Linear: (in|out)_features must be a non-negative int"):
        rg.nn.Linear(*args)


def test_linear_rejects_other_devices():
    with pytest.raises(RuntimeError, match="CPU only, got device 'cuda'"):
        rg.nn.Linear(2, 2, device="cuda")


@pytest.mark.parametrize("shape", [(4, 5), (5,), (2, 3, 2), ()])
def test_linear_wrong_input_size_names_the_layer_and_shape(shape):
    with pytest.raises(ValueError, match=r"Linear\(in_features=3, out_features=2, bias=True\): "
                                         r"expected input with last dim 3, got input of shape "
                                         + re_shape(shape)):
        rg.nn.Linear(3, 2)(rg.zeros(*shape))


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_linear_wrong_input_dtype_is_an_error():
    with pytest.raises(TypeError, match="input dtype retrograd.float64, weight dtype "
                                        "retrograd.float32"):
        rg.nn.Linear(3, 2)(rg.zeros(1, 3, dtype=rg.float64))


# ---------------------------------------------------------------- Identity, Flatten, Unflatten
def test_identity_returns_its_input_and_ignores_arguments():
    x = rg.ones(2, requires_grad=True)
    layer = rg.nn.Identity(54, unused="argument")
    assert layer(x) is x and list(layer.parameters()) == []


@pytest.mark.parametrize("start_dim, end_dim", [(1, -1), (0, -1), (1, 2), (-2, -1), (2, 2)])
def test_flatten_matches_torch(start_dim, end_dim):
    check_op(lambda x: rg.nn.Flatten(start_dim, end_dim)(x),
             lambda x: torch.nn.Flatten(start_dim, end_dim)(x), randn(2, 3, 4, 5, seed=6))


@pytest.mark.parametrize("dim, sizes", [(1, (2, 6)), (-1, (3, 2, 2)), (0, (1, 2)), (1, (-1, 3))])
def test_unflatten_matches_torch(dim, sizes):
    check_op(lambda x: rg.nn.Unflatten(dim, sizes)(x),
             lambda x: torch.nn.Unflatten(dim, sizes)(x), randn(2, 12, seed=7))


def test_flatten_then_unflatten_round_trip():
    x = rg.randn(2, 3, 4)
    y = rg.nn.Unflatten(1, (3, 4))(rg.nn.Flatten()(x))
    np.testing.assert_array_equal(y.numpy(), x.numpy())


def test_shape_layer_reprs_match_torch():
    assert repr(rg.nn.Flatten()) == repr(torch.nn.Flatten())
    assert repr(rg.nn.Unflatten(1, [2, 3])) == repr(torch.nn.Unflatten(1, (2, 3)))
    assert repr(rg.nn.Identity()) == repr(torch.nn.Identity())


# ---------------------------------------------------------------- errors of F.linear
@pytest.mark.parametrize("x_shape, w_shape, b_shape, match", [
    ((2, 3), (4, 2), (4,), r"^linear: expected input with last dim 2, got input of shape "
                           r"\(2, 3\) \(weight shape \(4, 2\)\)$"),
    ((3,), (4, 2), None, r"expected input with last dim 2, got input of shape \(3,\) \(weight "
                         r"shape \(4, 2\)\)"),
    ((), (4, 2), None, r"got input of shape \(\) \(weight shape"),
    ((2, 3), (4, 3), (3,), r"bias of shape \(3,\) does not match weight of shape \(4, 3\)"),
    ((2, 3), (4, 3), (1, 4), r"bias of shape \(1, 4\) does not match"),
    ((2, 3), (3,), None, r"weight must be 2-D .* got shape \(3,\)"),
    ((2, 3), (1, 4, 3), None, r"weight must be 2-D"),
])
def test_linear_shape_errors(x_shape, w_shape, b_shape, match):
    b = rg.zeros(*b_shape) if b_shape is not None else None
    with pytest.raises(ValueError, match=match):
        F.linear(rg.zeros(*x_shape), rg.zeros(*w_shape), b)


@pytest.mark.parametrize("dtypes", [("float32", "float64", "float64"),
                                    ("float64", "float32", None),
                                    ("float32", "float32", "float64"),
                                    ("int64", "float32", None)])
def test_linear_dtype_mismatch_errors(dtypes):
    x_dtype, w_dtype, b_dtype = (getattr(rg, d) if d else None for d in dtypes)
    b = rg.zeros(4, dtype=b_dtype) if b_dtype is not None else None
    with pytest.raises(TypeError, match=f"linear: .*input dtype retrograd.{dtypes[0]}, "
                                        f"weight dtype retrograd.{dtypes[1]}"):
        F.linear(rg.zeros(2, 3, dtype=x_dtype), rg.zeros(4, 3, dtype=w_dtype), b)


def test_linear_rejects_arrays():
    with pytest.raises(TypeError, match="linear: input, weight .* must be Tensors"):
        F.linear(np.zeros((2, 3)), rg.zeros(4, 3))
    with pytest.raises(TypeError, match="must be Tensors"):
        F.linear(rg.zeros(2, 3), rg.zeros(4, 3), np.zeros(4))
