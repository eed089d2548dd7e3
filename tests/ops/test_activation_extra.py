"""The activations of retrograd/ops/activation_extra.py (silu, mish, softplus, elu, hardtanh,
relu6, prelu, logsigmoid) through nn.functional, against PyTorch (outputs and gradients),
float64 finite differences (first and second order, through the engine and the backward
alone), their kinks, large |x| and non-finite inputs, half precisions, in-place forms, their
declared costs against brute-force counts, and argument errors."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradgradcheck
from retrograd.ops.activation_extra import (
    Elu, Hardtanh, LogSigmoid, Mish, Prelu, Silu, Softplus,
)
from tests.oracle import (
    GRADCHECK_TOLERANCES, away_from_kinks, check_backward_alone, check_op, randn,
)
from tests.ops.test_cost_elementwise import _check_op as _check_cost
from tests.ops.test_cost_elementwise import _plain
from tests.ops.test_cost_layers import _randn

SHAPES = [(7,), (3, 4), (2, 3, 4), (1,), ()]


def _x(shape, seed=0, scale=3.0, kinks=(0.0,)):
    return np.asarray(away_from_kinks(randn(*shape, seed=seed) * scale, kinks))


# one row per unary activation: (retrograd, torch, its kinks, the op)
UNARY = {
    "silu": (F.silu, TF.silu, (), Silu),
    "mish": (F.mish, TF.mish, (), Mish),
    "softplus": (F.softplus, TF.softplus, (), Softplus),
    "softplus_beta": (lambda x: F.softplus(x, beta=2.0, threshold=3.0),
                      lambda x: TF.softplus(x, beta=2.0, threshold=3.0), (1.5,), Softplus),
    "softplus_negative_beta": (lambda x: F.softplus(x, beta=-0.5, threshold=1.0),
                               lambda x: TF.softplus(x, beta=-0.5, threshold=1.0), (-2.0,),
                               Softplus),
    "elu": (F.elu, TF.elu, (0.0,), Elu),
    "elu_alpha": (lambda x: F.elu(x, alpha=0.3), lambda x: TF.elu(x, alpha=0.3), (0.0,), Elu),
    "elu_negative_alpha": (lambda x: F.elu(x, alpha=-1.5), lambda x: TF.elu(x, alpha=-1.5),
                           (0.0,), Elu),
    "hardtanh": (F.hardtanh, TF.hardtanh, (-1.0, 1.0), Hardtanh),
    "hardtanh_bounds": (lambda x: F.hardtanh(x, -0.5, 2.0), lambda x: TF.hardtanh(x, -0.5, 2.0),
                        (-0.5, 2.0), Hardtanh),
    "relu6": (F.relu6, TF.relu6, (0.0, 6.0), Hardtanh),
    "logsigmoid": (F.logsigmoid, TF.logsigmoid, (), LogSigmoid),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_activations_match_torch(name, shape):
    fn, torch_fn, kinks, _ = UNARY[name]
    scale = 4.0 if name == "relu6" else 3.0
    check_op(fn, torch_fn, _x(shape, seed=len(name), scale=scale, kinks=kinks))


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_activations_float32_match_torch(name):
    fn, torch_fn, kinks, _ = UNARY[name]
    check_op(fn, torch_fn, _x((5, 6), seed=1, scale=5.0, kinks=kinks), dtype=np.float32)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_activations_have_zero_size_and_keep_dtype(name):
    fn, torch_fn, _, _ = UNARY[name]
    check_op(fn, torch_fn, np.zeros((0, 3)), gradcheck=False)


def _attrs(name):
    return {"softplus_beta": {"beta": 2.0, "threshold": 3.0},
            "softplus_negative_beta": {"beta": -0.5, "threshold": 1.0},
            "elu_alpha": {"alpha": 0.3}, "elu_negative_alpha": {"alpha": -1.5},
            "hardtanh_bounds": {"min_val": -0.5, "max_val": 2.0},
            "relu6": {"min_val": 0.0, "max_val": 6.0}}.get(name, {})


@pytest.mark.parametrize("name", list(UNARY))
def test_backward_alone(name):
    _, _, kinks, op = UNARY[name]
    check_backward_alone(op, [_x((4, 5), seed=2, scale=3.0, kinks=kinks)], _attrs(name))


@pytest.mark.parametrize("name", list(UNARY))
def test_twice_differentiable_and_double_backward_matches_torch(name):
    fn, torch_fn, kinks, _ = UNARY[name]
    x = _x((3, 4), seed=3, scale=3.0, kinks=kinks)
    assert gradgradcheck(fn, [rg.tensor(x, requires_grad=True)], **GRADCHECK_TOLERANCES)
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cotangent = randn(3, 4, seed=4)
    (gr,) = rg.autograd.grad(fn(rx), rx, rg.tensor(cotangent), create_graph=True)
    (gt,) = torch.autograd.grad(torch_fn(tx), tx, torch.tensor(cotangent), create_graph=True)
    np.testing.assert_allclose(gr.detach().numpy(), gt.detach().numpy(), rtol=1e-12, atol=1e-14)
    (gt * gt).sum().backward()
    if not gr.requires_grad:   # piecewise linear (hardtanh): dL/dx does not depend on x
        assert not tx.grad.numpy().any()
        return
    (gr * gr).sum().backward()
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- kinks and special values
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 6.0, 20.0, -20.0, 20.000001, 40.0, -40.0, 88.0, -88.0,
                    710.0, -710.0, 1e4, -1e4, 1e30, -1e30, 1.7e308, -1.7e308])


@pytest.mark.parametrize("name", list(UNARY))
def test_kinks_and_large_values_match_torch_exactly(name):
    """Every kink (hardtanh's bounds take 0, elu's 0 takes alpha, softplus's threshold is
    strict) and |x| up to finfo.max: finite values and gradients equal to torch's."""
    fn, torch_fn, kinks, _ = UNARY[name]
    x = np.concatenate([SPECIAL, np.array(kinks)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no NumPy overflow warnings either
        out = check_op(fn, torch_fn, x, gradcheck=False, rtol=1e-13, atol=1e-300)
    assert np.isfinite(out[0].detach().numpy()).all()


@pytest.mark.parametrize("name", list(UNARY))
def test_float32_and_float16_extremes_stay_finite_like_torch(name):
    fn, torch_fn, _, _ = UNARY[name]
    for dtype, top in ((np.float32, 3.4e38), (np.float16, 65504.0)):
        x = np.array([top, -top, 1e4, -1e4, 15.0, -15.0, 0.5, -0.5], dtype=dtype)
        ours = rg.tensor(x, requires_grad=True)
        theirs = torch.tensor(x, requires_grad=True)
        fn(ours).sum().backward()
        torch_fn(theirs).sum().backward()
        for a, b in ((fn(ours).detach().numpy(), torch_fn(theirs).detach().numpy()),
                     (ours.grad.numpy(), theirs.grad.numpy())):
            assert np.isfinite(a).all() and a.dtype == dtype
            np.testing.assert_allclose(a.astype(np.float64), b.astype(np.float64),
                                       rtol=2e-3 if dtype == np.float16 else 1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["silu", "mish", "softplus", "logsigmoid", "elu"])
def test_infinities_give_torchs_values(name):
    fn, torch_fn, _, _ = UNARY[name]
    x = np.array([np.inf, -np.inf, 3.0])
    ours, theirs = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    fn(ours).sum().backward()
    torch_fn(theirs).sum().backward()
    for a, b in ((fn(ours).detach().numpy(), torch_fn(theirs).detach().numpy()),
                 (ours.grad.numpy(), theirs.grad.numpy())):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=0)


def test_nan_input_gradients_follow_torchs_vectorized_kernels():
    """NaN in: elu's gradient is NaN and hardtanh's 0 (PyTorch's vectorized loops; its scalar
    tail passes dL/dy on, so only a long tensor pins torch down)."""
    x = np.full(64, np.nan)
    for fn, torch_fn, expected in ((F.elu, TF.elu, np.nan), (F.hardtanh, TF.hardtanh, 0.0),
                                   (F.relu6, TF.relu6, 0.0), (F.silu, TF.silu, np.nan)):
        ours, theirs = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        fn(ours).sum().backward()
        torch_fn(theirs).sum().backward()
        np.testing.assert_array_equal(ours.grad.numpy()[:16], theirs.grad.numpy()[:16])
        np.testing.assert_array_equal(ours.grad.numpy(), np.full(64, expected))
        assert np.isnan(fn(ours).detach().numpy()).all()


def test_softplus_threshold_is_strict_on_beta_x():
    """y = x exactly where beta x > threshold, the softplus formula where beta x == threshold."""
    x = np.array([10.0, 10.000001, 5.0, 5.0000001])
    for beta, threshold in ((1.0, 10.0), (2.0, 10.0), (0.5, 2.5)):
        check_op(lambda t: F.softplus(t, beta, threshold),
                 lambda t: TF.softplus(t, beta, threshold), x, gradcheck=False, rtol=1e-15,
                 atol=0)
    y = F.softplus(rg.tensor([10.0, 10.5], dtype=rg.float64), 1.0, 10.0).numpy()
    assert y[0] == pytest.approx(np.log1p(np.exp(10.0)), rel=1e-15) and y[1] == 10.5


def test_elu_kink_takes_alpha_and_hardtanh_bounds_take_zero():
    for alpha in (1.0, 0.4):
        x = rg.tensor([0.0, -0.0], dtype=rg.float64, requires_grad=True)
        F.elu(x, alpha).sum().backward()
        assert x.grad.tolist() == [alpha, alpha]
    x = rg.tensor([-1.0, 1.0, 0.0, 6.0, 3.0], dtype=rg.float64, requires_grad=True)
    (F.hardtanh(x) + F.relu6(x)).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]   # hardtanh's, plus relu6's


def test_hardtanh_keeps_integer_inputs_like_torch():
    x = np.array([-3, 0, 2, 9])
    assert F.hardtanh(rg.tensor(x), -2.0, 3.0).tolist() == \
        TF.hardtanh(torch.tensor(x), -2.0, 3.0).tolist()
    y = F.relu6(rg.tensor(x))
    assert y.dtype == rg.int64 and y.tolist() == [0, 0, 2, 6]


# ---------------------------------------------------------------- prelu
PRELU_CASES = [((2, 3), (3,)), ((2, 3, 4), (3,)), ((2, 3, 4, 5), (3,)), ((2, 3, 4), (1,)),
               ((5,), (1,)), ((), (1,)), ((2, 3), ()), ((4, 1, 3), (1,)), ((2, 0), (1,))]


@pytest.mark.parametrize("x_shape, w_shape", PRELU_CASES)
def test_prelu_matches_torch_input_and_weight_gradients(x_shape, w_shape):
    x = _x(x_shape, seed=5)
    w = randn(*w_shape, seed=6) * 0.5 if w_shape else np.array(0.3)
    check_op(F.prelu, TF.prelu, x, w, gradcheck=0 not in x_shape)


def test_prelu_float32_kink_backward_alone_and_twice_differentiable():
    x, w = _x((3, 2, 4), seed=7), np.array([0.2, -0.7])
    check_op(F.prelu, TF.prelu, x, w, dtype=np.float32)
    check_op(F.prelu, TF.prelu, np.array([[0.0, -0.0], [1.0, -1.0]]), np.array([0.25, 0.5]),
             gradcheck=False)
    check_backward_alone(Prelu, [x, w.reshape(2, 1)])
    inputs = [rg.tensor(x, requires_grad=True), rg.tensor(w, requires_grad=True)]
    assert gradgradcheck(F.prelu, inputs, **GRADCHECK_TOLERANCES)


def test_prelu_errors_name_the_shapes_and_dtypes():
    x = rg.randn(2, 3)
    with pytest.raises(ValueError, match=r"prelu: weight of shape \(4,\) has 4 slopes but the "
                                         r"input of shape \(2, 3\) has 3 channel"):
        F.prelu(x, rg.ones(4))
    with pytest.raises(ValueError, match="prelu: expected weight to be a scalar or 1-D"):
        F.prelu(x, rg.ones(3, 1))
    with pytest.raises(ValueError, match=r"has 1 channel\(s\)"):
        F.prelu(rg.randn(3), rg.ones(3))
    with pytest.raises(TypeError, match=r"prelu: expected a floating-point weight, got dtype "
                                        r"retrograd.int64 \(shape \(3,\)\)"):
        F.prelu(x, rg.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="prelu: weight must be a Tensor, got float"):
        F.prelu(x, 0.25)


def test_prelu_casts_its_weight_to_the_input_dtype_as_under_torch_autocast():
    layer = rg.nn.PReLU(3)
    x = rg.randn(2, 3).to(rg.bfloat16).requires_grad_()
    y = layer(x)
    y.float().sum().backward()
    assert y.dtype == rg.bfloat16 and layer.weight.grad.dtype == rg.float32
    model = rg.nn.Sequential(rg.nn.Linear(4, 3), rg.nn.PReLU())
    with rg.autocast(dtype=rg.bfloat16):
        assert model(rg.randn(2, 4)).dtype == rg.bfloat16


# ---------------------------------------------------------------- dtypes, in place, errors
@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
@pytest.mark.parametrize("name", list(UNARY))
def test_low_precision_dtypes_are_kept_and_close_to_float64(name, dtype):
    fn = UNARY[name][0]
    x64 = _x((3, 4), seed=8)
    x = rg.tensor(x64).to(dtype).requires_grad_()
    y = fn(x)
    y.float().sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    ref = rg.tensor(x.detach().float().numpy().astype(np.float64), requires_grad=True)
    fn(ref).sum().backward()
    np.testing.assert_allclose(y.float().detach().numpy(), fn(ref).detach().numpy(), rtol=2e-2,
                               atol=2e-2)
    np.testing.assert_allclose(x.grad.float().numpy(), ref.grad.numpy(), rtol=2e-2, atol=2e-2)


INPLACE = [
    (lambda x: F.silu(x, inplace=True), lambda x: TF.silu(x, inplace=True)),
    (lambda x: F.mish(x, inplace=True), lambda x: TF.mish(x, inplace=True)),
    (lambda x: F.elu(x, 0.5, inplace=True), lambda x: TF.elu(x, 0.5, inplace=True)),
    (lambda x: F.hardtanh(x, -1.0, 2.0, inplace=True),
     lambda x: TF.hardtanh(x, -1.0, 2.0, inplace=True)),
    (lambda x: F.relu6(x, inplace=True), lambda x: TF.relu6(x, inplace=True)),
]


@pytest.mark.parametrize("fn, torch_fn", INPLACE)
def test_inplace_forms_write_into_the_input_and_still_backpropagate(fn, torch_fn):
    def run(framework_fn, h):
        out = framework_fn(h)
        assert out is h
        return out

    check_op(lambda x: run(fn, x * 2.0), lambda x: run(torch_fn, x * 2.0),
             _x((3, 4), seed=9, kinks=(0.0, 0.5, -0.5, 1.0, 3.0)))


def test_activation_errors():
    ints = rg.tensor([1, 2])
    for fn in (F.silu, F.mish, F.softplus, F.elu, F.logsigmoid):
        with pytest.raises(TypeError, match=f"{fn.__name__}: expected a floating-point input, "
                                            r"got dtype retrograd.int64 \(shape \(2,\)\)"):
            fn(ints)
    with pytest.raises(TypeError, match="silu: input must be a Tensor, got list"):
        F.silu([1.0])
    with pytest.raises(ValueError, match="hardtanh: min_val cannot be greater than max_val, got "
                                         "min_val=1.0 and max_val=-1.0"):
        F.hardtanh(rg.randn(3), 1.0, -1.0)
    with pytest.raises(TypeError, match="relu6: expected a numeric input, got dtype "
                                        "retrograd.bool"):
        F.relu6(rg.tensor([True]))
    with pytest.raises(TypeError, match="softplus: beta must be a number, got '2'"):
        F.softplus(rg.randn(3), beta="2")
    with pytest.raises(TypeError, match="elu: alpha must be a number, got None"):
        F.elu(rg.randn(3), alpha=None)
    assert F.hardtanh(rg.tensor([3.0, -3.0]), 0.5, 0.5).tolist() == [0.5, 0.5]


# ---------------------------------------------------------------- declared costs
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


COSTS = {  # name: (op, attrs, forward(x), dL/dx from (g, x, y)), written from the docstrings
    "silu": (Silu, {}, lambda x: x * _sigmoid(x), lambda g, x, y: _silu_grad(g, x)),
    "mish": (Mish, {}, lambda x: x * np.tanh(np.log(1.0 + np.exp(x))),
             lambda g, x, y: _mish_grad(g, x)),
    "softplus": (Softplus, {"beta": 2.0, "threshold": 1.0},
                 lambda x: np.where(_plain(x) * 2.0 > 1.0, x, np.log(1.0 + np.exp(x * 2.0)) / 2.0),
                 lambda g, x, y: np.where(_plain(x) * 2.0 > 1.0, g, g * _sigmoid(x * 2.0))),
    "elu": (Elu, {"alpha": 0.5}, lambda x: np.where(
        _plain(x) > 0, x, 0.5 * (np.exp(np.minimum(x, 0.0)) - 1.0)),
        lambda g, x, y: np.where(_plain(x) > 0, g, g * (0.5 * np.exp(np.minimum(x, 0.0))))),
    "hardtanh": (Hardtanh, {"min_val": -0.5, "max_val": 0.7},
                 lambda x: np.minimum(np.maximum(x, -0.5), 0.7),
                 lambda g, x, y: np.where((_plain(x) > -0.5) & (_plain(x) < 0.7), g, 0.0)),
    "logsigmoid": (LogSigmoid, {}, lambda x: -np.log(1.0 + np.exp(-x)),
                   lambda g, x, y: g * (1.0 / (1.0 + np.exp(x)))),
}


def _silu_grad(g, x):
    s = _sigmoid(x)
    return g * (s * (1.0 + x * (1.0 - s)))


def _mish_grad(g, x):
    t = np.tanh(np.log(1.0 + np.exp(x)))
    return g * (t + x * _sigmoid(x) * (1.0 - t * t))


@pytest.mark.parametrize("need", [True, False])
@pytest.mark.parametrize("name", list(COSTS))
def test_declared_costs_equal_brute_force_counts(name, need):
    op, attrs, forward, grad = COSTS[name]
    _check_cost(op, (_randn(3, 5),), (need,), {0: grad}, forward, attrs)


@pytest.mark.parametrize("needs", [(True, True), (True, False), (False, True), (False, False)])
@pytest.mark.parametrize("w_shape", [(1, 3, 1), (), (2, 3, 4)])
def test_prelu_cost_equals_brute_force_counts(needs, w_shape):
    x, w = _randn(2, 3, 4), np.asarray(_randn(*w_shape))
    grads = {0: lambda g, x, w, y: np.where(_plain(x) > 0, g, w * g),
             1: lambda g, x, w, y: np.where(_plain(x) > 0, 0.0, x * g)}
    _check_cost(Prelu, (x, w), needs, grads, lambda x, w: np.where(_plain(x) > 0, x, w * x))
