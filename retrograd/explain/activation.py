"""Worked examples of the elementwise activations (retrograd/ops/activation.py, the ReLU,
sigmoid and tanh of ops/elementwise.py, the SiLU of ops/activation_extra.py): y = f(x) entry
by entry, the local derivative f'(x) as a quantity of its own, and dL/dx = dL/dy * f'(x).

Every y_i depends on x_i alone, so the Jacobian dy/dx is diagonal and the backward pass is an
elementwise product: nothing is summed. ReLU and leaky ReLU have a kink at x = 0, where the
example states which one-sided derivative retrograd (like PyTorch) takes.
"""

import math

import numpy as np

from retrograd.explain import Option, explains

__all__ = []

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_TANH_CUBIC = 0.044715


def _input(ex, smooth):
    """x: small integers for the piecewise-linear activations (so that the kink x = 0 shows
    up), two-decimal values in [-3, 3) for the smooth ones."""
    kind = {"integer": False, "low": -3, "high": 3} if smooth else {}
    return ex.input("x", (2, 3), primary=True, max_ndim=4, doc="input (any shape)", **kind)


def _backward(ex, shape, name, derivative, formula):
    """dL/dx = dL/dy * f'(x), elementwise, with f'(x) shown first (already computed)."""
    g = ex.upstream(shape, "dL/dy", aliases=("dY",))
    ex.say("Each y_i depends only on x_i, so dy/dx is diagonal: the chain rule is an "
           "elementwise product, nothing is summed.")
    ex.show(name, derivative, formula)
    ex.gradient("x", g * derivative, f"dL/dy * {name}  (elementwise)")


def _say_kink(ex, x, what, left, right, taken):
    """The sentence on the kink at x = 0 (and how many inputs sit on it)."""
    ex.say(f"{what} has a kink at x = 0 (slope {left:g} on the left, {right:g} on the right) "
           f"where it has no derivative; retrograd, like PyTorch, takes {taken:g}, the "
           "left-hand slope.")
    zeros = int(np.sum(x == 0))
    if zeros:
        ex.say(f"x has {zeros} entr{'y' if zeros == 1 else 'ies'} at 0: where dL/dy is not 0 "
               "there, the finite-difference check below counts it as a kink.")


@explains("relu", family="activation",
          summary="ReLU y = max(0, x), elementwise; dL/dx = dL/dy * ReLU'(x)")
def relu(ex):
    from retrograd.nn import functional as F

    x = _input(ex, smooth=False)
    (shape,) = ex.reference(F.relu, "x")
    ex.section("Forward")
    ex.output("y", np.maximum(x, 0.0), "max(0, x)")
    ex.section("Backward")
    _say_kink(ex, x, "ReLU", 0.0, 1.0, 0.0)
    _backward(ex, shape, "ReLU'(x)", _relu_derivative(x), "1 where x > 0, else 0")


def _relu_derivative(x):
    return (x > 0).astype(np.float64)


@explains("leaky_relu", family="activation", aliases=("leakyrelu",),
          summary="leaky ReLU y = x if x > 0 else a x, elementwise",
          options=(Option("negative_slope", float, 0.1,
                          "slope a for x <= 0 (F.leaky_relu's default is 0.01)"),))
def leaky_relu(ex, negative_slope):
    from retrograd.nn import functional as F

    a = negative_slope
    x = _input(ex, smooth=False)
    (shape,) = ex.reference(lambda x: F.leaky_relu(x, negative_slope=a), "x")
    ex.section("Forward")
    ex.output("y", np.where(x > 0, x, a * x), f"x where x > 0, else {a:g} x")
    ex.section("Backward")
    _say_kink(ex, x, "Leaky ReLU", a, 1.0, a)
    _backward(ex, shape, "LeakyReLU'(x)", _leaky_relu_derivative(x, a),
              f"1 where x > 0, else a = {a:g}")


def _leaky_relu_derivative(x, slope):
    return np.where(x > 0, 1.0, slope)


def _sigmoid(x):
    """1 / (1 + exp(-x)) through e = exp(-|x|), as ops/elementwise.py's Sigmoid: no exponent
    overflows (1 / (1 + e) for x >= 0, e / (1 + e) for x < 0)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


@explains("sigmoid", family="activation", aliases=("logistic",),
          summary="sigmoid y = 1 / (1 + exp(-x)); its derivative is y (1 - y)")
def sigmoid(ex):
    from retrograd.nn import functional as F

    x = _input(ex, smooth=True)
    (shape,) = ex.reference(F.sigmoid, "x")
    ex.section("Forward")
    y = ex.output("y", _sigmoid(x), "1 / (1 + exp(-x))")
    ex.section("Backward")
    _backward(ex, shape, "sigmoid'(x)", y * (1.0 - y),
              "y (1 - y)  (from the output: nothing else is saved)")


@explains("tanh", family="activation", summary="tanh y = tanh(x); its derivative is 1 - y^2")
def tanh(ex):
    from retrograd.nn import functional as F

    x = _input(ex, smooth=True)
    (shape,) = ex.reference(F.tanh, "x")
    ex.section("Forward")
    y = ex.output("y", np.tanh(x), "tanh(x) = (e^x - e^-x) / (e^x + e^-x)")
    ex.section("Backward")
    _backward(ex, shape, "tanh'(x)", 1.0 - y * y, "1 - y^2  (from the output)")


def _normal_cdf(x):
    """Phi(x) = 0.5 (1 + erf(x / sqrt(2))), with the standard library's erf."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def _normal_pdf(x):
    """phi(x) = exp(-x^2 / 2) / sqrt(2 pi)."""
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@explains("gelu", family="activation",
          summary="GELU y = x Phi(x) (exact) or its tanh approximation",
          options=(Option("approximate", str, "none", "exact (erf) or the tanh formula",
                          ("none", "tanh")),))
def gelu(ex, approximate):
    from retrograd.nn import functional as F

    x = _input(ex, smooth=True)
    (shape,) = ex.reference(lambda x: F.gelu(x, approximate=approximate), "x")
    if approximate == "tanh":
        _tanh_gelu(ex, x, shape)
    else:
        _exact_gelu(ex, x, shape)


def _exact_gelu(ex, x, shape):
    ex.say("Exact GELU: x weighted by Phi(x), the probability that a standard normal variable "
           "is below x.")
    ex.section("Forward")
    cdf = ex.show("Phi(x)", _normal_cdf(x), "0.5 (1 + erf(x / sqrt(2)))")
    ex.output("y", x * cdf, "x Phi(x)")
    ex.section("Backward (product rule: d/dx [x Phi(x)] = Phi(x) + x phi(x))")
    pdf = ex.show("phi(x)", _normal_pdf(x), "exp(-x^2 / 2) / sqrt(2 pi)  (Phi's derivative)")
    second = ex.show("x phi(x)", x * pdf)
    _backward(ex, shape, "gelu'(x)", cdf + second, "Phi(x) + x phi(x)")


def _tanh_gelu(ex, x, shape):
    ex.say(f"tanh GELU: Phi(x) replaced by 0.5 (1 + tanh(u)) with u = sqrt(2/pi) "
           f"(x + {_TANH_CUBIC} x^3).")
    ex.section("Forward")
    u = ex.show("u", _SQRT_2_OVER_PI * (x + _TANH_CUBIC * x ** 3),
                f"sqrt(2/pi) (x + {_TANH_CUBIC} x^3)")
    t = ex.show("T", np.tanh(u), "tanh(u)")
    ex.output("y", 0.5 * x * (1.0 + t), "0.5 x (1 + T)")
    ex.section("Backward (product rule, and dT/dx = (1 - T^2) u')")
    du = ex.show("u'", _SQRT_2_OVER_PI * (1.0 + 3.0 * _TANH_CUBIC * x * x),
                 f"sqrt(2/pi) (1 + 3 * {_TANH_CUBIC} x^2)")
    first = ex.show("0.5 (1 + T)", 0.5 * (1.0 + t), "d(0.5 x)/dx * (1 + T)")
    second = ex.show("0.5 x (1 - T^2) u'", 0.5 * x * (1.0 - t * t) * du, "0.5 x * dT/dx")
    _backward(ex, shape, "gelu'(x)", first + second, "0.5 (1 + T) + 0.5 x (1 - T^2) u'")


@explains("silu", family="activation", aliases=("swish",),
          summary="SiLU (swish) y = x sigmoid(x), elementwise")
def silu(ex):
    from retrograd.nn import functional as F

    x = _input(ex, smooth=True)
    (shape,) = ex.reference(F.silu, "x")
    ex.section("Forward")
    s = ex.show("s", _sigmoid(x), "sigmoid(x) = 1 / (1 + exp(-x))")
    ex.output("y", x * s, "x s")
    ex.section("Backward (product rule: d/dx [x s] = s + x ds/dx)")
    ds = ex.show("ds/dx", s * (1.0 - s), "s (1 - s)")
    _backward(ex, shape, "silu'(x)", s + x * ds, "s + x s (1 - s) = s (1 + x (1 - s))")
