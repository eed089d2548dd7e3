"""Elementwise ops (retrograd/ops/elementwise.py) against PyTorch, against finite differences
(through the engine and alone), twice differentiated, in float32, at their kinks, and under
broadcasting (explicit rows and a hypothesis property)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops import elementwise as ew
from tests.oracle import (GRADCHECK_TOLERANCES, away_from_kinks, check_backward_alone, check_op,
                          randn)


def _leaves(*arrays):
    """float64 leaves that require grad, for gradgradcheck."""
    return [rg.tensor(a, dtype=rg.float64, requires_grad=True) for a in arrays]


def _kinked(*shape, seed=0, kinks=(0.0,)):
    return away_from_kinks(randn(*shape, seed=seed), kinks=kinks)


# ---------------------------------------------------------------- unary ops
# (id, retrograd fn, torch fn, input, Function, attrs for the Function)
UNARY = [
    ("neg", lambda x: -x, lambda x: -x, randn(3, 4), ew.Neg, {}),
    ("exp", rg.exp, torch.exp, randn(3, 4), ew.Exp, {}),
    ("log", rg.log, torch.log, randn(3, 4, low=0.3), ew.Log, {}),
    ("sqrt", rg.sqrt, torch.sqrt, randn(3, 4, low=0.3), ew.Sqrt, {}),
    ("sin", rg.sin, torch.sin, randn(3, 4), ew.Sin, {}),
    ("cos", rg.cos, torch.cos, randn(3, 4), ew.Cos, {}),
    ("tanh", rg.tanh, torch.tanh, randn(3, 4), ew.Tanh, {}),
    ("sigmoid", rg.sigmoid, torch.sigmoid, 3 * randn(3, 4), ew.Sigmoid, {}),
    ("relu", rg.relu, torch.relu, _kinked(3, 4), ew.Relu, {}),
    ("abs", rg.abs, torch.abs, _kinked(3, 4), ew.Abs, {}),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5),
     _kinked(3, 4, kinks=(-0.5, 0.5)), ew.Clamp, {"lo": -0.5, "hi": 0.5}),
    ("clamp_min", lambda x: x.clamp(min=0.2), lambda x: x.clamp(min=0.2),
     _kinked(3, 4, kinks=(0.2,)), ew.Clamp, {"lo": 0.2}),
    ("clamp_max", lambda x: x.clamp(max=-0.2), lambda x: x.clamp(max=-0.2),
     _kinked(3, 4, kinks=(-0.2,)), ew.Clamp, {"hi": -0.2}),
    ("pow2", lambda x: x ** 2, lambda x: x ** 2, randn(3, 4), ew.PowScalar, {"exponent": 2}),
    ("pow3", lambda x: x ** 3, lambda x: x ** 3, randn(3, 4), ew.PowScalar, {"exponent": 3}),
    ("pow_half", lambda x: x ** 0.5, lambda x: x ** 0.5, randn(3, 4, low=0.3), ew.PowScalar,
     {"exponent": 0.5}),
    ("pow_neg", lambda x: x ** -1.5, lambda x: x ** -1.5, randn(3, 4, low=0.3), ew.PowScalar,
     {"exponent": -1.5}),
    ("pow0", lambda x: x ** 0, lambda x: x ** 0, randn(3, 4), ew.PowScalar, {"exponent": 0}),
]
UNARY_IDS = [u[0] for u in UNARY]


@pytest.mark.parametrize("name, rg_fn, torch_fn, x, op, attrs", UNARY, ids=UNARY_IDS)
def test_unary_matches_torch(name, rg_fn, torch_fn, x, op, attrs):
    check_op(rg_fn, torch_fn, x)


@pytest.mark.parametrize("name, rg_fn, torch_fn, x, op, attrs", UNARY, ids=UNARY_IDS)
def test_unary_backward_alone(name, rg_fn, torch_fn, x, op, attrs):
    check_backward_alone(op, [x], attrs)


@pytest.mark.parametrize("name, rg_fn, torch_fn, x, op, attrs", UNARY, ids=UNARY_IDS)
def test_unary_float32_matches_torch(name, rg_fn, torch_fn, x, op, attrs):
    (out,) = check_op(rg_fn, torch_fn, x, dtype=np.float32)
    assert out.dtype == rg.float32


@pytest.mark.parametrize("name, rg_fn, torch_fn, x, op, attrs", UNARY, ids=UNARY_IDS)
def test_unary_second_order(name, rg_fn, torch_fn, x, op, attrs):
    assert gradgradcheck(rg_fn, _leaves(x[:2, :3]), **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("shape", [(), (1,), (0,), (2, 0, 3), (1, 1, 5)])
@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "relu", "sqrt", "pow3"])
def test_unary_edge_shapes(name, shape):
    _, rg_fn, torch_fn, _, _, _ = UNARY[UNARY_IDS.index(name)]
    x = randn(*shape, low=0.3) if shape else np.array(0.7)
    check_op(rg_fn, torch_fn, x)


def test_rpow_scalar_base():
    # 2 ** x goes through Pow with a constant base: only the exponent gets a gradient
    check_op(lambda x: 2.0 ** x, lambda x: 2.0 ** x, randn(3, 4))
    check_op(lambda x: 0.5 ** x, lambda x: 0.5 ** x, randn(3, 4), dtype=np.float32)


def test_cast_matches_torch():
    # float64 -> float32 -> float64: the gradient comes back in each input's dtype
    for dtype_rg, dtype_torch in [(rg.float32, torch.float32), (rg.float16, torch.float16)]:
        (y,) = check_op(lambda x: x.to(dtype_rg) * 3.0, lambda x: x.to(dtype_torch) * 3.0,
                        randn(3, 4), gradcheck=False, rtol=1e-3, atol=1e-3)
        assert y.dtype == dtype_rg
    check_backward_alone(ew.Cast, [randn(3, 4)], {"dtype": np.float64})
    (x,) = _leaves(randn(2, 3))
    assert gradgradcheck(lambda t: ew.Cast.apply(t, dtype=np.float64) ** 2, [x],
                         **GRADCHECK_TOLERANCES)


def test_cast_gradient_keeps_input_dtype():
    x = rg.tensor(randn(3), dtype=rg.float32, requires_grad=True)
    x.to(rg.float64).sum().backward()
    assert x.grad.dtype == rg.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.ones(3, np.float32))


# ---------------------------------------------------------------- binary ops
def _positive(*shape, seed=0):
    return randn(*shape, seed=seed, low=0.5)


def _nonzero(*shape, seed=0):
    x = randn(*shape, seed=seed)
    return np.where(np.abs(x) < 0.3, np.sign(x) * 0.3 + x, x) + 0.0


# (id, retrograd fn, torch fn, Function, makes (a, b) for shapes)
BINARY = [
    ("add", lambda a, b: a + b, lambda a, b: a + b, ew.Add,
     lambda s, t: (randn(*s), randn(*t, seed=1))),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, ew.Sub,
     lambda s, t: (randn(*s), randn(*t, seed=1))),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, ew.Mul,
     lambda s, t: (randn(*s), randn(*t, seed=1))),
    ("div", lambda a, b: a / b, lambda a, b: a / b, ew.Div,
     lambda s, t: (randn(*s), _nonzero(*t, seed=1))),
    ("pow", lambda a, b: a ** b, lambda a, b: a ** b, ew.Pow,
     lambda s, t: (_positive(*s), randn(*t, seed=1))),
    ("maximum", rg.maximum, torch.maximum, ew.Maximum,
     lambda s, t: (randn(*s), randn(*t, seed=1))),
    ("minimum", rg.minimum, torch.minimum, ew.Minimum,
     lambda s, t: (randn(*s), randn(*t, seed=1))),
]
BINARY_IDS = [b[0] for b in BINARY]

# broadcasting both ways, scalars, size-1 and size-0 dims
SHAPE_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 1), (1, 4)),
    ((4,), (3, 4)),
    ((3, 4), (4,)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((), ()),
    ((1,), (3, 1)),
    ((2, 1, 3), (4, 1)),
    ((0, 4), (1, 4)),
    ((2, 0), (2, 1)),
]


def _pair(make, shapes):
    # NOTE: continuous random inputs never tie (maximum/minimum) within the gradcheck step
    return make(*shapes)


@pytest.mark.parametrize("shapes", SHAPE_PAIRS, ids=str)
@pytest.mark.parametrize("name, rg_fn, torch_fn, op, make", BINARY, ids=BINARY_IDS)
def test_binary_matches_torch(name, rg_fn, torch_fn, op, make, shapes):
    a, b = _pair(make, shapes)
    assert a.shape == shapes[0] and b.shape == shapes[1]
    check_op(rg_fn, torch_fn, a, b)


@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((4,), (3, 4))], ids=str)
@pytest.mark.parametrize("name, rg_fn, torch_fn, op, make", BINARY, ids=BINARY_IDS)
def test_binary_backward_alone(name, rg_fn, torch_fn, op, make, shapes):
    check_backward_alone(op, list(_pair(make, shapes)))


@pytest.mark.parametrize("name, rg_fn, torch_fn, op, make", BINARY, ids=BINARY_IDS)
def test_binary_float32_matches_torch(name, rg_fn, torch_fn, op, make):
    (out,) = check_op(rg_fn, torch_fn, *_pair(make, ((3, 1), (1, 4))), dtype=np.float32)
    assert out.dtype == rg.float32


@pytest.mark.parametrize("name, rg_fn, torch_fn, op, make", BINARY, ids=BINARY_IDS)
def test_binary_second_order(name, rg_fn, torch_fn, op, make):
    assert gradgradcheck(rg_fn, _leaves(*_pair(make, ((2, 1), (3,)))), **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("no_grad", [(0,), (1,)])
@pytest.mark.parametrize("name, rg_fn, torch_fn, op, make", BINARY, ids=BINARY_IDS)
def test_binary_with_one_input_not_requiring_grad(name, rg_fn, torch_fn, op, make, no_grad):
    check_op(rg_fn, torch_fn, *_pair(make, ((3, 1), (3, 4))), no_grad=no_grad)


@pytest.mark.parametrize("name, rg_fn, torch_fn", [
    ("radd", lambda x: 2.5 + x, lambda x: 2.5 + x),
    ("rsub", lambda x: 2.5 - x, lambda x: 2.5 - x),
    ("rmul", lambda x: 2.5 * x, lambda x: 2.5 * x),
    ("rdiv", lambda x: 2.5 / x, lambda x: 2.5 / x),
    ("add_int", lambda x: x + 3, lambda x: x + 3),
    ("div_int", lambda x: x / 3, lambda x: x / 3),
    ("sub_array", lambda x: x - rg.arange(4.0), lambda x: x - torch.arange(4.0)),
])
def test_binary_with_python_scalars(name, rg_fn, torch_fn):
    check_op(rg_fn, torch_fn, _nonzero(3, 4))
    check_op(rg_fn, torch_fn, _nonzero(3, 4), dtype=np.float32)


@settings(max_examples=20, deadline=None)
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       which=st.sampled_from(BINARY_IDS))
def test_binary_broadcasting_property(shapes, which):
    """For random broadcast-compatible shape pairs, outputs and gradients equal torch's."""
    name, rg_fn, torch_fn, op, make = BINARY[BINARY_IDS.index(which)]
    a_shape, b_shape = shapes.input_shapes
    a, b = _pair(make, (a_shape, b_shape))
    (out,) = check_op(rg_fn, torch_fn, a, b, gradcheck=False)
    assert out.shape == shapes.result_shape


# ---------------------------------------------------------------- where, masked_fill
WHERE_SHAPES = [
    ((3, 4), (3, 4), (3, 4)),
    ((3, 1), (1, 4), (4,)),
    ((3, 4), (), (3, 4)),
    ((4,), (3, 1), ()),
    ((0, 4), (1, 4), (4,)),
]


def _mask(*shape, seed=5):
    return np.asarray(np.random.default_rng(seed).random(shape) < 0.5)


@pytest.mark.parametrize("shapes", WHERE_SHAPES, ids=str)
def test_where_matches_torch(shapes):
    c, a, b = shapes
    check_op(rg.where, torch.where, _mask(*c), randn(*a), randn(*b, seed=1))


def test_where_backward_alone_float32_and_second_order():
    cond, a, b = _mask(3, 4), randn(3, 1), randn(4, seed=1)
    check_backward_alone(ew.Where, [cond, a, b])
    check_op(rg.where, torch.where, cond, a, b, dtype=np.float32)
    c = rg.tensor(cond)
    assert gradgradcheck(lambda x, y: rg.where(c, x, y) * x, _leaves(a, b), **GRADCHECK_TOLERANCES)


def test_where_with_python_scalars():
    cond = _mask(3, 4)
    check_op(lambda c, x: rg.where(c, x, 0.0), lambda c, x: torch.where(c, x, 0.0), cond,
             randn(3, 4))
    check_op(lambda c, x: rg.where(c, 1.5, x), lambda c, x: torch.where(c, 1.5, x), cond,
             randn(3, 4), dtype=np.float32)


@pytest.mark.parametrize("x_shape, mask_shape", [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 4), (3, 1)),
                                                 ((2, 3, 4), (1, 4)), ((), ()), ((0, 4), (4,))],
                         ids=str)
def test_masked_fill_matches_torch(x_shape, mask_shape):
    check_op(lambda x, m: x.masked_fill(m, -2.5), lambda x, m: x.masked_fill(m, -2.5),
             randn(*x_shape), _mask(*mask_shape))


def test_masked_fill_backward_alone_float32_and_second_order():
    x, m = randn(3, 4), _mask(4)
    check_backward_alone(ew.MaskedFill, [x, m], {"value": 1.5})
    (out,) = check_op(lambda x, m: x.masked_fill(m, float("-inf")),
                      lambda x, m: x.masked_fill(m, float("-inf")), x, m, dtype=np.float32)
    assert out.dtype == rg.float32
    mask = rg.tensor(m)
    assert gradgradcheck(lambda t: t.masked_fill(mask, 0.5) ** 2, _leaves(x),
                         **GRADCHECK_TOLERANCES)


def test_masked_fill_with_a_value_that_requires_grad():
    check_op(lambda x, m, v: x.masked_fill(m, v), lambda x, m, v: x.masked_fill(m, v),
             randn(3, 4), _mask(3, 4), np.array(0.7))


def test_masked_fill_fully_masked_rows():
    x, m = randn(2, 3), np.array([[True, True, True], [False, True, False]])
    check_op(lambda x, m: x.masked_fill(m, 0.0), lambda x, m: x.masked_fill(m, 0.0), x, m)


# ---------------------------------------------------------------- kinks, exact values
def _grads_vs_torch(rg_fn, torch_fn, *values, dtype=np.float64):
    """Forward values and gradients (for a cotangent of ones) at exact points vs torch."""
    rg_in = [rg.tensor(np.asarray(v, dtype=dtype), requires_grad=True) for v in values]
    t_in = [torch.tensor(np.asarray(v, dtype=dtype), requires_grad=True) for v in values]
    y, ty = rg_fn(*rg_in), torch_fn(*t_in)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    y.sum().backward()
    ty.sum().backward()
    for a, b in zip(rg_in, t_in):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())
    return [a.grad.numpy() for a in rg_in]


KINKS = [
    ("relu_at_0", rg.relu, torch.relu, ([-1.0, 0.0, 2.0],)),
    ("abs_at_0", rg.abs, torch.abs, ([-1.0, 0.0, 2.0],)),
    ("clamp_at_bounds", lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(-0.5, 0.5),
     ([-1.0, -0.5, 0.0, 0.5, 1.0],)),
    ("clamp_min_at_bound", lambda x: x.clamp(min=0.0), lambda x: x.clamp(min=0.0),
     ([-1.0, 0.0, 1.0],)),
    ("clamp_lo_above_hi", lambda x: x.clamp(1.0, -1.0), lambda x: x.clamp(1.0, -1.0),
     ([-2.0, 0.0, 2.0],)),
    ("maximum_ties", rg.maximum, torch.maximum, ([1.0, 2.0, 3.0], [1.0, 5.0, 3.0])),
    ("minimum_ties", rg.minimum, torch.minimum, ([1.0, 2.0, 3.0], [1.0, 5.0, 3.0])),
    ("sqrt_at_0", rg.sqrt, torch.sqrt, ([0.0, 4.0],)),
    ("pow_zero_base", lambda a, b: a ** b, lambda a, b: a ** b,
     ([0.0, 0.0, 0.0, 2.0], [0.0, 1.0, 2.0, 0.0])),
    ("pow_scalar_zero_base", lambda x: x ** 2, lambda x: x ** 2, ([0.0, 1.0],)),
    ("sigmoid_extremes", rg.sigmoid, torch.sigmoid, ([-1000.0, 0.0, 1000.0],)),
    ("tanh_extremes", rg.tanh, torch.tanh, ([-1000.0, 0.0, 1000.0],)),
]


@pytest.mark.parametrize("name, rg_fn, torch_fn, values", KINKS, ids=[k[0] for k in KINKS])
def test_kinks_follow_torch(name, rg_fn, torch_fn, values):
    with np.errstate(all="ignore"):
        _grads_vs_torch(rg_fn, torch_fn, *values)


def test_maximum_of_a_tensor_with_itself():
    # every element is a tie: each side gets half, so the total gradient is 1 (as torch)
    (grad,) = _grads_vs_torch(lambda a: rg.maximum(a, a), lambda a: torch.maximum(a, a),
                              [1.0, -2.0])
    np.testing.assert_array_equal(grad, [1.0, 1.0])
    (grad,) = _grads_vs_torch(lambda a: rg.minimum(a, a), lambda a: torch.minimum(a, a),
                              [1.0, -2.0])
    np.testing.assert_array_equal(grad, [1.0, 1.0])


def test_sigmoid_never_overflows():
    with np.errstate(over="raise"):
        y = rg.tensor([-1e4, 1e4], dtype=rg.float32).sigmoid()
    np.testing.assert_array_equal(y.numpy(), [0.0, 1.0])


# ---------------------------------------------------------------- dtype of results
@pytest.mark.parametrize("rg_fn, torch_fn", [
    (lambda x: x.exp(), lambda x: x.exp()),
    (lambda x: x.sqrt(), lambda x: x.sqrt()),
    (lambda x: x.sigmoid(), lambda x: x.sigmoid()),
    (lambda x: x.abs(), lambda x: x.abs()),
    (lambda x: x.relu(), lambda x: x.relu()),
    (lambda x: -x, lambda x: -x),
    (lambda x: x ** 2, lambda x: x ** 2),
    (lambda x: x ** 0.5, lambda x: x ** 0.5),
    (lambda x: 2 ** x, lambda x: 2 ** x),
    (lambda x: x.clamp(1, 2), lambda x: x.clamp(1, 2)),
    (lambda x: x.clamp(min=1.5), lambda x: x.clamp(min=1.5)),
    (lambda x: x.clamp(max=2.5), lambda x: x.clamp(max=2.5)),
    (lambda x: x.maximum(x * 0), lambda x: x.maximum(x * 0)),
], ids=lambda f: "")
def test_integer_inputs_give_torch_dtypes(rg_fn, torch_fn):
    data = np.array([1, 2, 3], dtype=np.int64)
    y, ty = rg_fn(rg.tensor(data)), torch_fn(torch.tensor(data))
    assert str(y.dtype).split(".")[-1] == str(ty.dtype).split(".")[-1]
    np.testing.assert_allclose(y.numpy().astype(np.float64), ty.numpy().astype(np.float64),
                               rtol=1e-6)


def test_ops_have_no_graph_without_grad():
    x = rg.tensor(randn(3), requires_grad=True)
    with rg.no_grad():
        y = (x * 2).exp()
    assert y.grad_fn is None and not y.requires_grad
    z = rg.tensor(randn(3)).exp()
    assert z.grad_fn is None and not z.requires_grad


# ---------------------------------------------------------------- errors
def test_broadcast_error_names_op_shapes_and_dtypes():
    a, b = rg.ones(3, 4), rg.ones(5, 6, dtype=rg.float64)
    for op, fn in [("add", lambda: a + b), ("sub", lambda: a - b), ("mul", lambda: a * b),
                   ("div", lambda: a / b), ("maximum", lambda: a.maximum(b)),
                   ("pow", lambda: a ** b)]:
        with pytest.raises(ValueError, match=rf"{op}: shapes \(3, 4\) and \(5, 6\) cannot be "
                                             rf"broadcast.*float32.*float64"):
            fn()


def test_where_errors():
    with pytest.raises(TypeError, match="where: condition must have dtype bool"):
        rg.where(rg.tensor([1, 0]), rg.ones(2), rg.zeros(2))
    with pytest.raises(ValueError, match=r"where: shapes \(2,\), \(3,\) and \(2,\)"):
        rg.where(rg.tensor([True, False]), rg.ones(3), rg.zeros(2))


def test_masked_fill_errors():
    x = rg.ones(3)
    with pytest.raises(TypeError, match=r"masked_fill: mask must have dtype bool, got int64"):
        x.masked_fill(rg.tensor([1, 0, 1]), 0.0)
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(2,\) does not broadcast "
                                         r"to the tensor's shape \(3,\)"):
        x.masked_fill(rg.tensor([True, False]), 0.0)
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(2, 3\) does not broadcast"):
        x.masked_fill(rg.ones(2, 3) > 0, 0.0)  # broadcasts, but would grow the tensor
    with pytest.raises(ValueError, match="masked_fill: value must be a number or a one-element"):
        x.masked_fill(rg.tensor([True, False, True]), rg.ones(2))


def test_integer_to_a_negative_power_errors_as_torch():
    with pytest.raises(ValueError,
                       match=r"pow: integers to negative integer powers are not allowed "
                                         r"\(tensor of dtype retrograd.int64, exponent -1\)"):
        rg.tensor([1, 2]) ** -1
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        torch.tensor([1, 2]) ** -1
    assert (rg.tensor([1, 2]) ** -1.0).tolist() == [1.0, 0.5]


def test_clamp_needs_a_bound():
    with pytest.raises(ValueError, match="clamp: at least one of min and max"):
        rg.ones(2).clamp()


def test_unsupported_operand_names_op():
    with pytest.raises(TypeError, match="add: unsupported operand of type str"):
        rg.ones(2) + "a"


def test_exact_comparison_helper_can_fail():
    with pytest.raises(AssertionError):
        _grads_vs_torch(lambda x: x * 2, lambda x: x * 3, [1.0])
    with pytest.raises(AssertionError):  # same values, different gradients
        _grads_vs_torch(lambda x: x.relu(), lambda x: x.clamp(min=0) + 0 * x, [0.0])
