"""Activation ops that are not plain elementwise math: leaky ReLU and GELU (exact and tanh).

ReLU, tanh and sigmoid live in ``ops/elementwise.py``; softmax and log-softmax in
``ops/softmax.py``. NumPy has no erf: the exact GELU uses SciPy's ndtr when SciPy is installed,
else ``_erfc``, W. J. Cody's rational Chebyshev approximation (Math. Comp. 1969, the SPECFUN
routine CALERF), vectorized here and accurate to a few units in the last place in float64.
GELU's forward and plain backward run as chunked kernels on two threads (ops/_parallel.py),
or, for C-contiguous float32 arrays with the 'fast' extra installed, as the compiled kernels
of retrograd/_numba/activation.py (one pass each; GeluGrad's g * gelu'(x) too).
"""

import math

import numpy as np

from retrograd._fast import compiled
from retrograd.autograd.cost import Cost, call_arg
from retrograd.autograd.function import Function
from retrograd.ops._parallel import copy_contiguous, elementwise
from retrograd.ops.elementwise import elementwise_cost, operands_text

__all__ = ["LeakyRelu", "Gelu", "GeluGrad"]


class LeakyRelu(Function):
    """y = x if x > 0 else negative_slope * x, elementwise.

    dL/dx = dL/dy where x > 0, negative_slope * dL/dy elsewhere (so the kink x = 0 takes the
    slope, PyTorch's convention).
    Saves: the boolean mask [x > 0] (a constant, 1 byte per element), not x. The backward is
    linear in dL/dy with a constant mask, so it is also right under create_graph.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x, negative_slope=0.01):
        positive = x > 0
        ctx.positive, ctx.slope = positive, float(negative_slope)
        return np.where(positive, x, x * ctx.slope).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        return np.where(ctx.positive, grad_out, grad_out * ctx.slope)

    @staticmethod
    def cost(call):
        """negative_slope * x and the select: 2n; backward negative_slope * dL/dy and the
        select: 2n."""
        return elementwise_cost(call, "leaky_relu", 2, 2, "2*n")


class Gelu(Function):
    """y = x * Phi(x) with Phi(x) = 0.5 (1 + erf(x / sqrt(2))) the standard normal CDF
    (approximate='none'), or y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)
    (approximate='tanh').

    dL/dx = dL/dy * gelu'(x), where
      exact: gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi)
      tanh:  gelu'(x) = 0.5 (1 + T) + 0.5 x (1 - T^2) u',  T = tanh(u),
             u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    Saves: x (Phi and T are recomputed in backward rather than kept).
    tanh kernels: x^2 is capped at 1e4 inside u and u' (tanh(u) is +-1 exactly from |x| = 100
    on, so nothing changes) and y is formed as (0.5 (1 + T)) x: near finfo.max y = x (x > 0)
    or 0 (x < 0) and gelu'(x) = 1 or 0, never inf or NaN.
    Under create_graph the backward is the op GeluGrad, whose own backward knows gelu''(x),
    so GELU is twice differentiable.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x, approximate="none"):
        ctx.approximate = approximate
        ctx.save_for_backward(x)
        kernels = _compiled_for(x)
        if kernels is not None:
            return kernels.gelu_forward(x, approximate)
        return _run_kernel(_FORWARD_KERNELS[approximate], x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        if isinstance(grad_out, np.ndarray) and isinstance(x, np.ndarray):
            kernels = _compiled_for(x, grad_out)
            if kernels is not None:
                return kernels.gelu_backward(x, copy_contiguous(grad_out), ctx.approximate)
            return _run_kernel(_BACKWARD_KERNELS[ctx.approximate], x, grad_out)
        return GeluGrad.apply(grad_out, x, approximate=ctx.approximate)

    @staticmethod
    def cost(call):
        """Per element (erf and tanh count one each): exact x * Phi(x) 5, tanh 9; backward
        dL/dy * gelu'(x): exact 11, tanh 18 (x^2 computed once, T recomputed)."""
        approximate = call_arg(call, 1, "approximate", "none")
        forward, backward = _GELU_FLOPS[approximate][:2]
        return elementwise_cost(call, f"gelu({approximate})", forward, backward,
                                f"{forward}*n")


class GeluGrad(Function):
    """z = g * gelu'(x): the backward of Gelu as an op of its own (for create_graph).

    dL/dg = dL/dz * gelu'(x)
    dL/dx = dL/dz * g * gelu''(x), where
      exact: gelu''(x) = phi(x) (2 - x^2)
      tanh:  gelu''(x) = (1 - T^2) (u' - x T u'^2 + 0.5 x u''),  u'' = 6 sqrt(2/pi) 0.044715 x
    Saves: g and x (both inputs). Its own backward is raw-array only (third derivatives of
    GELU are not provided).
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, grad, x, approximate="none"):
        ctx.approximate = approximate
        ctx.save_for_backward(grad, x)
        kernels = _compiled_for(x, grad)
        if kernels is not None:
            return kernels.gelu_backward(x, copy_contiguous(grad), approximate)
        return (grad * _gelu_derivative(x, approximate)).astype(grad.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        grad, x = ctx.saved_tensors
        need_grad, need_x = ctx.needs_input_grad
        kernels = _compiled_for(x, grad_out) if need_grad else None
        if kernels is not None:
            d_grad = kernels.gelu_backward(x, copy_contiguous(grad_out), ctx.approximate)
        else:
            d_grad = grad_out * _gelu_derivative(x, ctx.approximate) if need_grad else None
        d_x = grad_out * grad * _gelu_second_derivative(x, ctx.approximate) if need_x else None
        return d_grad, d_x

    @staticmethod
    def cost(call):
        """Per element: g * gelu'(x) (exact 11, tanh 18, as Gelu's backward); backward
        dL/dz * gelu'(x) for dL/dg (the same) and dL/dz * g * gelu''(x) for dL/dx (exact 8,
        tanh 22), each computed on its own."""
        approximate = call_arg(call, 2, "approximate", "none")
        first, second = _GELU_FLOPS[approximate][1:]
        n = call.outputs[0].size
        return Cost(first * n, (first * call.needs(0) + second * call.needs(1)) * n,
                    f"gelu_grad({approximate}) {operands_text(call)}: {first}*n")


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_TANH_CUBIC = 0.044715
# FLOPs per element of (y, g * gelu'(x), dL/dz * g * gelu''(x)), the counts Gelu and GeluGrad
# declare: erf and tanh count one each, x^2 is computed once (docs/cost-model.md).
# exact  Phi = 0.5 (1 + erf(x / sqrt(2))) 4, y = x Phi 1; phi = exp(-0.5 x^2) / sqrt(2 pi) 4,
#        Phi + x phi 2, * g 1; phi (2 - x^2) 6, * dL/dz * g 2.
# tanh   u = c (x + a x^2 x) 5, T 1, y = 0.5 x (1 + T) 3; u' = c (1 + 3 a x^2) 3,
#        0.5 (1 + T) 2, 0.5 x (1 - T^2) u' 5, + 1, * g 1 (18 with u and T);
#        u'' = 6 c a x 1, (1 - T^2) (u' - x T u'^2 + 0.5 x u'') 10, * dL/dz * g 2 (22 with u,
#        T and u').
_GELU_FLOPS = {"none": (5, 11, 8), "tanh": (9, 18, 22)}


def _compiled_for(x, *others):
    """The compiled GELU kernels when they take these arrays (x float32 C-contiguous, the
    others float32 of x's shape in any layout: dL/dy is often a broadcast view, as from
    y.sum(), which the callers copy with copy_contiguous) and the 'fast' extra is installed,
    else None (the NumPy kernels below)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or not x.flags.c_contiguous:
        return None
    for a in others:
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or a.shape != x.shape:
            return None
    return compiled("activation")


def _run_kernel(kernel, x, *others):
    """kernel over x (and arrays of x's shape), chunk by chunk on two threads (see
    ops/_parallel.py); float16 and bfloat16 are computed in float32 and cast back (NumPy's
    in-place ufuncs cannot write bfloat16 results of float32 arithmetic)."""
    dtype = x.dtype
    work = np.float32 if dtype.itemsize < 4 else dtype
    arrays = [np.ascontiguousarray(a, dtype=work) for a in (x, *others)]
    out = np.empty(x.shape, dtype=work)
    elementwise(kernel, arrays, [out])
    return out.astype(dtype, copy=False)


# x^2 is capped at this in the tanh-GELU kernels: from |x| = 100 on, tanh(u) is +-1 exactly
# (u > 3.5e4) in float32 and float64 alike, so the cap changes nothing there, and u' and
# x^2 stay finite (x^2 overflows beyond 1.8e19 in float32, and (1 - T^2) u' would be 0 * inf)
_TANH_X2_CAP = 1e4


def _tanh_gelu_kernel(x, y):
    """y = 0.5 (1 + tanh(u)) x on one chunk, in place where possible: 0.5 (1 + T) <= 1 is
    formed before the product with x, so y never exceeds |x| (0.5 x (1 + T) would overflow
    at 2x for x near finfo.max)."""
    t = x * x
    np.minimum(t, _TANH_X2_CAP, out=t)
    t *= _TANH_CUBIC
    t += 1.0
    t *= x
    t *= _SQRT_2_OVER_PI
    np.tanh(t, out=t)
    np.add(t, 1.0, out=y)
    y *= 0.5
    y *= x


def _tanh_gelu_backward_kernel(x, g, out):
    """out = g * (0.5 (1 + T) + 0.5 x (1 - T^2) u') on one chunk (x^2 capped as in the
    forward: where T = +-1 the second term is 0, not 0 * inf)."""
    t = x * x
    np.minimum(t, _TANH_X2_CAP, out=t)
    du = t * (3.0 * _TANH_CUBIC)
    du += 1.0
    du *= _SQRT_2_OVER_PI
    t *= _TANH_CUBIC
    t += 1.0
    t *= x
    t *= _SQRT_2_OVER_PI
    np.tanh(t, out=t)
    np.multiply(t, t, out=out)
    np.subtract(1.0, out, out=out)
    out *= du
    out *= x
    out *= 0.5
    t += 1.0
    t *= 0.5
    out += t
    out *= g


def _exact_gelu_kernel(x, y):
    """y = x Phi(x) on one chunk."""
    _normal_cdf_into(x, y)
    y *= x


def _exact_gelu_backward_kernel(x, g, out):
    """out = g * (Phi(x) + x phi(x)) on one chunk."""
    pdf = x * x
    pdf *= -0.5
    np.exp(pdf, out=pdf)
    pdf *= _INV_SQRT_2PI
    pdf *= x
    _normal_cdf_into(x, out)
    out += pdf
    out *= g


def _normal_cdf_into(x, out):
    """out = Phi(x): SciPy's ndtr when SciPy is installed (a compiled ufunc, ~3x faster),
    otherwise the NumPy implementation below (Cody's erfc)."""
    if _ndtr is not None:
        _ndtr(x, out=out)
    else:
        np.copyto(out, _normal_cdf(x))


try:  # SciPy is optional: "scipy where a kernel needs it" (DESIGN.md)
    from scipy.special import ndtr as _ndtr
except ImportError:  # pragma: no cover - exercised only where SciPy is missing
    _ndtr = None

_FORWARD_KERNELS = {"tanh": _tanh_gelu_kernel, "none": _exact_gelu_kernel}
_BACKWARD_KERNELS = {"tanh": _tanh_gelu_backward_kernel, "none": _exact_gelu_backward_kernel}


def _tanh_argument(x):
    return (x + _TANH_CUBIC * (x * x * x)) * _SQRT_2_OVER_PI


def _normal_pdf(x):
    return np.exp(-0.5 * (x * x)) * _INV_SQRT_2PI


def _normal_cdf(x):
    """Phi(x) = erfc(-x / sqrt(2)) / 2: through erfc, so the left tail keeps its relative
    accuracy (1 + erf(x / sqrt(2)) would cancel to 0 for x below about -8)."""
    return 0.5 * _erfc(x * -_INV_SQRT_2)


def _gelu_derivative(x, approximate):
    """gelu'(x) on an array (see Gelu)."""
    if approximate == "tanh":
        t = np.tanh(_tanh_argument(x))
        du = (1.0 + (3.0 * _TANH_CUBIC) * (x * x)) * _SQRT_2_OVER_PI
        return 0.5 * (1.0 + t) + (0.5 * x) * (1.0 - t * t) * du
    return _normal_cdf(x) + x * _normal_pdf(x)


def _gelu_second_derivative(x, approximate):
    """gelu''(x) on an array (see GeluGrad)."""
    if approximate == "tanh":
        t = np.tanh(_tanh_argument(x))
        du = (1.0 + (3.0 * _TANH_CUBIC) * (x * x)) * _SQRT_2_OVER_PI
        ddu = (6.0 * _TANH_CUBIC * _SQRT_2_OVER_PI) * x
        return (1.0 - t * t) * (du - x * t * (du * du) + 0.5 * x * ddu)
    return _normal_pdf(x) * (2.0 - x * x)


# Cody's coefficients: erf on |x| <= 0.46875 (A/B), erfc on 0.46875 < |x| <= 4 (C/D) and
# erfc on |x| > 4 (P/Q, in powers of 1/x^2).
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_INV_SQRT_PI = 5.6418958354775628695e-1


def erf_near_zero(x):
    """erf(x) for |x| <= 0.46875 by Cody's rational approximation x P(x^2) / Q(x^2)."""
    z = x * x
    num, den = _A[4] * z, z
    for i in range(3):
        num, den = (num + _A[i]) * z, (den + _B[i]) * z
    return x * (num + _A[3]) / (den + _B[3])


def _erfc(x):
    """The complementary error function of an array, in x's dtype (Cody's CALERF).

    Each of the three ranges of |x| is evaluated only on its own elements. For |x| > 0.46875
    erfc(|x|) = exp(-x^2) R(|x|); exp(-x^2) is split as exp(-s^2) exp(-(|x| - s)(|x| + s))
    with s = |x| rounded down to 1/16, which keeps the product accurate for large |x|.
    Negative x use erfc(x) = 2 - erfc(-x). float16 and bfloat16 are evaluated in float32
    (the rational functions' intermediate values overflow float16).
    """
    if x.dtype.itemsize < 4:
        return _erfc(x.astype(np.float32)).astype(x.dtype)
    y = np.abs(x)
    out = np.empty_like(y)
    small = y <= 0.46875
    if small.any():
        out[small] = 1.0 - erf_near_zero(x[small])
    middle = (y > 0.46875) & (y <= 4.0)
    if middle.any():
        ym = y[middle]
        num, den = _C[8] * ym, ym
        for i in range(7):
            num, den = (num + _C[i]) * ym, (den + _D[i]) * ym
        out[middle] = _scaled_by_gaussian((num + _C[7]) / (den + _D[7]), ym)
    large = (y > 4.0) & (y < np.inf)
    if large.any():
        yl = y[large]
        z = 1.0 / (yl * yl)
        num, den = _P[5] * z, z
        for i in range(4):
            num, den = (num + _P[i]) * z, (den + _Q[i]) * z
        r = (_INV_SQRT_PI - z * (num + _P[4]) / (den + _Q[4])) / yl
        out[large] = _scaled_by_gaussian(r, yl)
    out[np.isinf(y)] = 0.0
    negative = (x < 0) & ~small
    out[negative] = 2.0 - out[negative]
    out[np.isnan(x)] = np.nan
    return out


def _scaled_by_gaussian(r, y):
    """r * exp(-y^2), with exp(-y^2) split for accuracy (see _erfc)."""
    s = np.floor(y * 16.0) / 16.0
    return r * np.exp(-s * s) * np.exp(-(y - s) * (y + s))
