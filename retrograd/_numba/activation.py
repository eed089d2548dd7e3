"""GELU forward and backward, exact and tanh (the NumPy references: retrograd/ops/activation.py,
``_exact_gelu_kernel``, ``_exact_gelu_backward_kernel``, ``_tanh_gelu_kernel``,
``_tanh_gelu_backward_kernel``; GeluGrad's g * gelu'(x) is the backward kernel too), on C-contiguous
float32 arrays seen flat. One pass per call, branch-free (every special case a select), so
that LLVM vectorizes the loops: erf, exp and tanh are fastmath.py's float32 versions.

exact: Phi(x) = 0.5 erfc(-x / sqrt(2)): 0.5 erfc32(|x| / sqrt(2)) for x < 0 (the left tail
keeps its relative accuracy), 1 - 0.5 erfc32(x / sqrt(2)) for x >= 0; phi(x) =
exp(-x^2 / 2) / sqrt(2 pi). Relative error against SciPy's ndtr (float64 inside) grows with
x^2 in the left tail (x^2 rounded to float32 in the exponent): ~1e-6 at x = -4, ~2e-5 at
x = -12; results that are float32 subnormals (x < -13) keep only their absolute accuracy.
tanh: as the NumPy kernels, x^2 capped at 1e4 inside u and u', y = (0.5 (1 + T)) x, so
that y never overflows and gelu'(x) is never 0 * inf.

The kernels allow "contract" (a * b + c as one fused multiply-add: the polynomials of erfc,
exp and tanh take half the instructions; the kernels got 1.4x to 1.6x faster).

Each kernel is compiled serial and parallel; retrograd/_numba/policy.py picks.
"""

import math

import numba
import numpy as np

from retrograd._numba.fastmath import erfc32, exp32, tanh32
from retrograd._numba.policy import twins

__all__ = ["gelu_forward", "gelu_backward", "relu_forward", "relu_backward"]

_F = np.float32
_INV_SQRT_2 = _F(1.0 / math.sqrt(2.0))
_INV_SQRT_2PI = _F(1.0 / math.sqrt(2.0 * math.pi))
_SQRT_2_OVER_PI = _F(math.sqrt(2.0 / math.pi))
_TANH_CUBIC = _F(0.044715)
_TANH_CUBIC_3 = _F(3.0 * 0.044715)
_TANH_X2_CAP = _F(1e4)


@numba.njit(inline="always")
def _cdf(x):
    half_tail = _F(0.5) * erfc32(np.abs(x) * _INV_SQRT_2)
    return half_tail if x < _F(0.0) else _F(1.0) - half_tail


@numba.njit(inline="always")
def _exact_y(x):
    return x * _cdf(x)


@numba.njit(inline="always")
def _exact_d(x):
    pdf = exp32(x * x * _F(-0.5)) * _INV_SQRT_2PI
    return _cdf(x) + pdf * x


@numba.njit(inline="always")
def _tanh_u(x, x2):
    return (x2 * _TANH_CUBIC + _F(1.0)) * x * _SQRT_2_OVER_PI


@numba.njit(inline="always")
def _tanh_y(x):
    x2 = min(x * x, _TANH_X2_CAP)
    t = tanh32(_tanh_u(x, x2))
    return (t + _F(1.0)) * _F(0.5) * x


@numba.njit(inline="always")
def _tanh_d(x):
    x2 = min(x * x, _TANH_X2_CAP)
    du = (x2 * _TANH_CUBIC_3 + _F(1.0)) * _SQRT_2_OVER_PI
    t = tanh32(_tanh_u(x, x2))
    return (_F(1.0) - t * t) * du * x * _F(0.5) + (t + _F(1.0)) * _F(0.5)


# One kernel per formula, each compiled serial and parallel (policy.twins): each loop body is
# a single inlined formula.

_OPTIONS = dict(error_model="numpy", fastmath={"contract"})


@twins(**_OPTIONS)
def _exact_forward(x, y):
    for i in numba.prange(x.size):
        y[i] = _exact_y(x[i])


@twins(**_OPTIONS)
def _tanh_forward(x, y):
    for i in numba.prange(x.size):
        y[i] = _tanh_y(x[i])


@twins(**_OPTIONS)
def _exact_backward(x, g, out):
    for i in numba.prange(x.size):
        out[i] = _exact_d(x[i]) * g[i]


@twins(**_OPTIONS)
def _tanh_backward(x, g, out):
    for i in numba.prange(x.size):
        out[i] = _tanh_d(x[i]) * g[i]


_FORWARD = {"none": _exact_forward, "tanh": _tanh_forward}
_BACKWARD = {"none": _exact_backward, "tanh": _tanh_backward}


def gelu_forward(x, approximate):
    """GELU of a C-contiguous float32 array (approximate 'none' or 'tanh'), a new array."""
    out = np.empty(x.shape, np.float32)
    _FORWARD[approximate].pick(x.size)(x.reshape(-1), out.reshape(-1))
    return out


def gelu_backward(x, grad, approximate):
    """grad * gelu'(x) for C-contiguous float32 arrays of one shape, a new array."""
    out = np.empty(x.shape, np.float32)
    _BACKWARD[approximate].pick(x.size)(x.reshape(-1), grad.reshape(-1), out.reshape(-1))
    return out


@twins()
def _relu_forward(x, out):
    for i in numba.prange(x.size):
        value = x[i]
        out[i] = value if (value > 0) | (value != value) else x.dtype.type(0)


def relu_forward(x):
    """max(x, 0) in one pass, as np.maximum(x, 0) gives it (NaN kept, -0 made 0), a new
    array; x C-contiguous float32 or float64 (the NumPy reference: Relu.forward's
    np.maximum)."""
    out = np.empty(x.shape, x.dtype)
    _relu_forward.pick(x.size)(x.reshape(-1), out.reshape(-1))
    return out


@twins()
def _relu_backward(y, g, out):
    for i in numba.prange(y.size):
        out[i] = g[i] * (y.dtype.type(0) if y[i] <= 0 else y.dtype.type(1))


def relu_backward(y, grad):
    """Relu.backward in one pass: dL/dy * (not y <= 0), NaN and inf gradients kept as the
    product keeps them (inf * 0 is NaN). y and grad: C-contiguous, of one float dtype and
    shape."""
    out = np.empty(y.shape, y.dtype)
    _relu_backward.pick(y.size)(y.reshape(-1), grad.reshape(-1), out.reshape(-1))
    return out
