"""The declared costs of the elementwise ops (ops/elementwise.py, activation.py, softmax.py,
dropout.py) against brute-force counts (tests/flop_count.py): each op's forward and backward,
written from its docstring as NumPy on counted arrays, costs what the op declares, over
broadcasting shapes and for the gradients the call needs (none, either, both), unbroadcast
sums included; and each reference computes what the op computes. A select by a condition is
one FLOP: the references form conditions on plain arrays (``_plain``) and count the np.where.
"""

import math

import numpy as np
import pytest
from scipy.special import erf

import retrograd as rg
from retrograd.autograd.cost import cost_of
from retrograd.ops import elementwise as ew
from retrograd.ops.activation import Gelu, GeluGrad, LeakyRelu
from retrograd.ops.dropout import Dropout, dropout_mask
from retrograd.ops.softmax import LogSoftmax, Softmax
from tests.flop_count import counted
from tests.ops.cost_harness import needed, sum_to
from tests.ops.test_cost_layers import RNG, _check, _randn, _run


def _plain(a):
    """A counted array as a plain one: arithmetic on it is not counted (a condition)."""
    return np.asarray(a)


def _counted(value):
    return counted(value) if isinstance(value, np.ndarray) else value


def _check_op(op, inputs, needs, grads, forward, attrs=None):
    """_check with a reference ``forward(*inputs)`` and ``grads``: {position: function of
    (dL/dy, *inputs, y) giving the gradient in y's shape}; the reference sums each to its
    input's shape. Inputs are counted in both passes; y is the plain forward value."""
    y = forward(*inputs)

    def backward(g, gemm):
        args = [_counted(v) for v in inputs] + [counted(np.asarray(y))]
        parts = {i: (lambda i=i, grad=grad: sum_to(grad(g, *args), inputs[i].shape))
                 for i, grad in grads.items()}
        return needed(needs, parts)

    return _check(op, inputs, needs, attrs or {}, lambda args, gemm: forward(*args), backward)


NEEDS_2 = [(True, True), (True, False), (False, True), (False, False)]
SHAPES_2 = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), (2, 3)),
            ((2, 3), None)]   # None: a Python number


def _binary_inputs(shapes, needs, low=None):
    """Two operands (a number where the shape is None, needing no gradient) and their needs;
    ``low``: draw positive values."""
    values, kept = [], []
    for shape, need in zip(shapes, needs):
        if shape is None:
            values.append(1.5)
            kept.append(None)
            continue
        value = _randn(*shape)
        values.append(np.asarray(np.abs(value) + low) if low is not None else value)
        kept.append(need)
    return tuple(values), tuple(kept)


# ---------------------------------------------------------------------------- binary ops
BINARY = {  # op: (forward, {position: gradient in y's shape from (g, a, b, y)})
    ew.Add: (lambda a, b: a + b, {0: lambda g, a, b, y: g, 1: lambda g, a, b, y: g}),
    ew.Sub: (lambda a, b: a - b, {0: lambda g, a, b, y: g, 1: lambda g, a, b, y: -g}),
    ew.Mul: (lambda a, b: a * b, {0: lambda g, a, b, y: g * b, 1: lambda g, a, b, y: g * a}),
}


@pytest.mark.parametrize("needs", NEEDS_2)
@pytest.mark.parametrize("shapes", SHAPES_2)
@pytest.mark.parametrize("op", list(BINARY), ids=lambda op: op.__name__)
def test_add_sub_mul(op, shapes, needs):
    inputs, needs = _binary_inputs(shapes, needs)
    forward, grads = BINARY[op]
    _check_op(op, inputs, needs, grads, forward)


@pytest.mark.parametrize("needs", NEEDS_2)
@pytest.mark.parametrize("shapes", SHAPES_2 + [(None, (2, 3))])
def test_div(shapes, needs):
    """dL/da = dL/dy / b, dL/db = -(dL/dy / b) * y: the quotient is shared."""
    inputs, needs = _binary_inputs(shapes, needs, low=0.5)

    def backward(g, gemm):
        q, y = g / _counted(inputs[1]), counted(np.asarray(inputs[0] / inputs[1]))
        return needed(needs, {0: lambda: sum_to(q, inputs[0].shape),
                               1: lambda: sum_to(-q * y, inputs[1].shape)})

    _check(ew.Div, inputs, needs, {}, lambda args, gemm: args[0] / args[1], backward)


@pytest.mark.parametrize("needs", NEEDS_2)
@pytest.mark.parametrize("shapes", SHAPES_2 + [(None, (2, 3))])
def test_pow(shapes, needs):
    """dL/da = where(b == 0, 0, dL/dy * b * a^(b - 1)), dL/db = where(a == 0 and b >= 0, 0,
    dL/dy * y * log(a)); some b are 0."""
    inputs, needs = _binary_inputs(shapes, needs, low=0.5)
    if isinstance(inputs[1], np.ndarray) and inputs[1].ndim:
        inputs[1].flat[0] = 0.0
    grads = {0: lambda g, a, b, y: np.where(_plain(b) == 0, 0.0, g * b * a ** (b - 1)),
             1: lambda g, a, b, y: np.where(_plain(a) == 0, 0.0, g * y * np.log(a))}
    _check_op(ew.Pow, inputs, needs, grads, lambda a, b: a ** b)


@pytest.mark.parametrize("needs", NEEDS_2)
@pytest.mark.parametrize("shapes", SHAPES_2)
@pytest.mark.parametrize("op, pick", [(ew.Maximum, np.maximum), (ew.Minimum, np.minimum)],
                         ids=["Maximum", "Minimum"])
def test_maximum_minimum(op, pick, shapes, needs):
    """The winner takes dL/dy, a tie halves it: dL/da = dL/dy * share, share a select of
    1, 0.5 or 0. Small integers make ties."""
    inputs, needs = _binary_inputs(shapes, needs)
    inputs = tuple(np.asarray(np.round(v * 2)) if isinstance(v, np.ndarray) else v
                   for v in inputs)

    def share(a, b, y):
        wins, tie = _plain(a) == _plain(y), _plain(a) == _plain(b)
        return np.where(counted(wins & ~tie), 1.0, 0.5 * tie)

    grads = {0: lambda g, a, b, y: g * share(a, b, y), 1: lambda g, a, b, y: g * share(b, a, y)}
    _check_op(op, inputs, needs, grads, pick)


NEEDS_WHERE = [(None, True, True), (None, True, False), (None, False, True),
               (None, False, False)]


@pytest.mark.parametrize("needs", NEEDS_WHERE)
@pytest.mark.parametrize("shapes", [((2, 3), (2, 3), (2, 3)), ((2, 1, 3), (4, 3), ()),
                                    ((3,), (2, 3), None), ((2, 3), None, (2, 1))])
def test_where(shapes, needs):
    """y = where(cond, a, b): a select per element; dL/da = where(cond, dL/dy, 0),
    dL/db = where(cond, 0, dL/dy)."""
    (a, b), (need_a, need_b) = _binary_inputs(shapes[1:], needs[1:])
    cond = RNG.random(shapes[0]) < 0.5
    grads = {1: lambda g, c, a, b, y: np.where(_plain(c), g, 0.0),
             2: lambda g, c, a, b, y: np.where(_plain(c), 0.0, g)}
    _check_op(ew.Where, (cond, a, b), (None, need_a, need_b), grads, np.where)


# ---------------------------------------------------------------------------- unary ops
def _positive(*shape):
    return np.asarray(np.abs(_randn(*shape)) + 0.5)


UNARY = {  # id: (op, attrs, draw, forward(x), dL/dx from (g, x, y))
    "neg": (ew.Neg, {}, _randn, lambda x: -x, lambda g, x, y: -g),
    "pow_scalar_3": (ew.PowScalar, {"exponent": 3}, _randn, lambda x: x ** 3,
                     lambda g, x, y: g * 3 * x ** (3 - 1)),
    "pow_scalar_half": (ew.PowScalar, {"exponent": 0.5}, _positive, lambda x: x ** 0.5,
                        lambda g, x, y: g * 0.5 * x ** (0.5 - 1)),
    "pow_scalar_0": (ew.PowScalar, {"exponent": 0}, _randn, lambda x: x ** 0,
                     lambda g, x, y: g * 0.0),
    "exp": (ew.Exp, {}, _randn, np.exp, lambda g, x, y: g * y),
    "log": (ew.Log, {}, _positive, np.log, lambda g, x, y: g / x),
    "sqrt": (ew.Sqrt, {}, _positive, np.sqrt, lambda g, x, y: g / (2.0 * y)),
    "sin": (ew.Sin, {}, _randn, np.sin, lambda g, x, y: g * np.cos(x)),
    "cos": (ew.Cos, {}, _randn, np.cos, lambda g, x, y: -g * np.sin(x)),
    "tanh": (ew.Tanh, {}, _randn, np.tanh, lambda g, x, y: g * (1.0 - y * y)),
    "sigmoid": (ew.Sigmoid, {}, _randn, lambda x: 1.0 / (1.0 + np.exp(-x)),
                lambda g, x, y: g * y * (1.0 - y)),
    "relu": (ew.Relu, {}, _randn, lambda x: np.maximum(x, 0),
             lambda g, x, y: np.where(_plain(y) > 0, g, 0.0)),
    "abs": (ew.Abs, {}, _randn, np.abs, lambda g, x, y: g * np.sign(x)),
    "clamp": (ew.Clamp, {"lo": -0.5, "hi": 0.7}, _randn,
              lambda x: np.minimum(np.maximum(x, -0.5), 0.7),
              lambda g, x, y: np.where((_plain(x) >= -0.5) & (_plain(x) <= 0.7), g, 0.0)),
    "clamp_lo": (ew.Clamp, {"lo": -0.5}, _randn, lambda x: np.maximum(x, -0.5),
                 lambda g, x, y: np.where(_plain(x) >= -0.5, g, 0.0)),
    "clamp_hi": (ew.Clamp, {"hi": 0.7}, _randn, lambda x: np.minimum(x, 0.7),
                 lambda g, x, y: np.where(_plain(x) <= 0.7, g, 0.0)),
    "cast": (ew.Cast, {"dtype": np.dtype(np.float32)}, _randn, lambda x: x.astype(np.float32),
             lambda g, x, y: g.astype(np.float32)),   # the engine casts dL/dy to y's dtype
    "leaky_relu": (LeakyRelu, {"negative_slope": 0.1}, _randn,
                   lambda x: np.where(_plain(x) > 0, x, 0.1 * x),
                   lambda g, x, y: np.where(_plain(x) > 0, g, 0.1 * g)),
}


@pytest.mark.parametrize("need", [True, False])
@pytest.mark.parametrize("shape", [(2, 3, 4), (5,)])   # 0-d results are NumPy scalars:
# the counter (tests/flop_count.py) cannot follow them
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(name, shape, need):
    op, attrs, draw, forward, grad = UNARY[name]
    _check_op(op, (draw(*shape),), (need,), {0: grad}, forward, attrs)


@pytest.mark.parametrize("need", [True, False])
@pytest.mark.parametrize("x_shape, mask_shape", [((2, 3), (2, 3)), ((4, 2, 3), (2, 1))])
def test_masked_fill(x_shape, mask_shape, need):
    """y = where(mask, value, x); dL/dx = where(mask, 0, dL/dy)."""
    mask = RNG.random(mask_shape) < 0.5
    grads = {0: lambda g, x, m, y: np.where(_plain(m), 0.0, g)}
    _check_op(ew.MaskedFill, (_randn(*x_shape), mask), (need, None), grads,
              lambda x, m: np.where(m, -2.0, x), {"value": -2.0})


@pytest.mark.parametrize("need", [True, False])
def test_dropout(need):
    """y = x * m, dL/dx = dL/dy * m, with the mask the op draws."""
    x = _randn(3, 4, 5)
    rg.manual_seed(7)
    mask = dropout_mask(x.shape, x.dtype, 0.3)
    rg.manual_seed(7)   # the op draws the same mask
    _check_op(Dropout, (x,), (need,), {0: lambda g, x, y: g * counted(mask)},
              lambda x: x * mask, {"p": 0.3})


# ---------------------------------------------------------------------------- GELU
C, A = math.sqrt(2.0 / math.pi), 0.044715


class _TanhGelu:
    """GELU's tanh form from Gelu's and GeluGrad's docstrings, x^2 computed once."""

    @staticmethod
    def forward(x):
        t = np.tanh(C * (x + A * (x * x * x)))
        return 0.5 * x * (1.0 + t)

    @staticmethod
    def parts(x):
        x2 = x * x
        t = np.tanh(C * (x + A * (x2 * x)))
        return x2, t, C * (1.0 + 3 * A * x2)

    @classmethod
    def first(cls, x):
        _, t, du = cls.parts(x)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du

    @classmethod
    def second(cls, x):
        _, t, du = cls.parts(x)
        ddu = 6 * C * A * x
        return (1.0 - t * t) * (du - x * t * (du * du) + 0.5 * x * ddu)


class _ExactGelu:
    """GELU as x Phi(x), Phi(x) = 0.5 (1 + erf(x / sqrt(2))), phi(x) = exp(-x^2/2) /
    sqrt(2 pi)."""

    @staticmethod
    def forward(x):
        return x * (0.5 * (1.0 + erf(x * (1 / math.sqrt(2)))))

    @staticmethod
    def pdf(x2):
        return np.exp(-0.5 * x2) * (1 / math.sqrt(2 * math.pi))

    @classmethod
    def first(cls, x):
        return 0.5 * (1.0 + erf(x * (1 / math.sqrt(2)))) + x * cls.pdf(x * x)

    @classmethod
    def second(cls, x):
        x2 = x * x
        return cls.pdf(x2) * (2.0 - x2)


GELUS = {"tanh": _TanhGelu, "none": _ExactGelu}


@pytest.mark.parametrize("need", [True, False])
@pytest.mark.parametrize("approximate", list(GELUS))
def test_gelu(approximate, need):
    ref = GELUS[approximate]
    _check_op(Gelu, (_randn(3, 7),), (need,), {0: lambda g, x, y: g * ref.first(x)},
              ref.forward, {"approximate": approximate})


@pytest.mark.parametrize("needs", NEEDS_2)
@pytest.mark.parametrize("approximate", list(GELUS))
def test_gelu_grad(approximate, needs):
    """z = g * gelu'(x); dL/dg = dL/dz * gelu'(x), dL/dx = dL/dz * g * gelu''(x)."""
    ref = GELUS[approximate]
    grads = {0: lambda dz, g, x, z: dz * ref.first(x),
             1: lambda dz, g, x, z: dz * g * ref.second(x)}
    _check_op(GeluGrad, (_randn(3, 7), _randn(3, 7)), needs, grads,
              lambda g, x: g * ref.first(x), {"approximate": approximate})


def test_gelu_counts_match_the_cost_model_table():
    """docs/cost-model.md: tanh GELU 9 FLOPs per element forward, 18 backward."""
    call, *_ = _run(Gelu, (_randn(4, 5),), (True,), {"approximate": "tanh"})
    cost = cost_of(call)
    assert (cost.flops, cost.backward_flops) == (9 * 20, 18 * 20)


# ---------------------------------------------------------------------------- softmax
def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


SOFTMAX = {  # op: (forward(x, axis), dL/dx from (g, y, axis))
    Softmax: (_softmax, lambda g, y, axis: y * (g - (g * y).sum(axis=axis, keepdims=True))),
    LogSoftmax: (_log_softmax,
                 lambda g, y, axis: g - np.exp(y) * g.sum(axis=axis, keepdims=True)),
}


@pytest.mark.parametrize("need", [True, False])
@pytest.mark.parametrize("shape, axis", [((3, 5), -1), ((2, 3, 4), 1), ((6,), 0)])
@pytest.mark.parametrize("op", list(SOFTMAX), ids=lambda op: op.__name__)
def test_softmax(op, shape, axis, need):
    forward, grad = SOFTMAX[op]
    _check_op(op, (_randn(*shape),), (need,), {0: lambda g, x, y: grad(g, y, axis)},
              lambda x: forward(x, axis), {"axis": axis})


def test_softmax_matches_the_cost_model_table():
    """docs/cost-model.md: softmax over R rows of C is 5RC - 2R."""
    call, *_ = _run(Softmax, (_randn(6, 10),), (False,), {"axis": -1})
    assert cost_of(call).flops == 5 * 60 - 2 * 6


# ---------------------------------------------------------------------------- formulas
def test_formula_names_the_shapes():
    call, *_ = _run(ew.Mul, (_randn(2, 3), _randn(3)), (True, False), {})
    assert cost_of(call).formula == "mul 2x3, 3: n"
    call, *_ = _run(Softmax, (_randn(4, 10),), (True,), {"axis": 1})
    assert cost_of(call).formula == "softmax 4x10 axis 1: 5*n - 2*rows"
    call, *_ = _run(Gelu, (_randn(8, 16),), (True,), {"approximate": "tanh"})
    assert cost_of(call).formula == "gelu(tanh) 8x16: 9*n"


def test_cast_moves_data():
    call, *_ = _run(ew.Cast, (_randn(2, 3),), (True,), {"dtype": np.dtype(np.float32)})
    cost = cost_of(call)
    assert (cost.flops, cost.backward_flops) == (0, 0)
    assert ew.Cast.moves_data
    assert cost.formula == "cast 2x3 -> float32: 0"
