"""More elementwise math: logs and exponentials of other bases, erf and its inverse, the
trigonometric and hyperbolic functions not in ``elementwise.py``, rounding, remainders, and
the binary functions atan2, hypot, logaddexp, xlogy and lerp.

As in ``elementwise.py``: binary ops broadcast and return gradients in the output's shape (the
engine sums them back), and backward rules use operators and NumPy functions that Tensors
also implement (``_numpy_interop``), so that ``create_graph=True`` works. Values that are
piecewise constant (floor(a / b) in a remainder's gradient) are taken as constants.

NumPy has no erf: SciPy's is used when SciPy is installed, else the NumPy implementations at
the end of this file (Cody's rational approximations, shared with the exact GELU).
"""

import numpy as np

from retrograd.autograd.cost import ArrayInfo, Cost, unbroadcast_flops
from retrograd.autograd.function import Function
from retrograd.ops.activation import _erfc, erf_near_zero
from retrograd.ops.elementwise import elementwise_cost, operands_text

__all__ = [
    "Log10", "Log2", "Log1p", "Expm1", "Exp2", "Erf", "Erfinv", "Tan", "Asin", "Acos", "Atan",
    "Sinh", "Cosh", "Floor", "Ceil", "Round", "Trunc", "Sign", "Frac", "NanToNum", "Atan2",
    "Hypot", "LogAddExp", "Xlogy", "Remainder", "Fmod", "FloorDivide", "Lerp", "erf", "erfinv",
]

_LN10, _LN2 = np.log(10.0), np.log(2.0)
_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)
_SQRT_PI_OVER_TWO = np.sqrt(np.pi) / 2.0


def _constant(x):
    """The values of x as an array: a Tensor (double backward) gives its data, treated as a
    constant (used for piecewise-constant factors such as floor(a / b))."""
    return x if isinstance(x, np.ndarray) or np.isscalar(x) else x.detach().numpy()


def _binary_cost(call, name, forward, per_element, formula):
    """``forward`` FLOPs per element of y; backward ``per_element[i]`` FLOPs per element of y
    for each input i that needs a gradient, plus the adds that sum it back to i's shape."""
    y = call.outputs[0]
    backward = sum(per * y.size + unbroadcast_flops(y.shape, call.inputs[i].shape)
                   for i, per in per_element.items()
                   if call.needs(i) and isinstance(call.inputs[i], ArrayInfo))
    return Cost(forward * y.size, backward, f"{name} {operands_text(call)}: {formula}")


# ---------------------------------------------------------------- logs and exponentials
class Log10(Function):
    """y = log10(x).  dL/dx = dL/dy / (x ln 10).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log10(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (x * _LN10)

    @staticmethod
    def cost(call):
        """n logs; backward x * ln 10 and the divide: 2n."""
        return elementwise_cost(call, "log10", 1, 2, "n")


class Log2(Function):
    """y = log2(x).  dL/dx = dL/dy / (x ln 2).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log2(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (x * _LN2)

    @staticmethod
    def cost(call):
        """n logs; backward x * ln 2 and the divide: 2n."""
        return elementwise_cost(call, "log2", 1, 2, "n")


class Log1p(Function):
    """y = log(1 + x), accurate for small x.  dL/dx = dL/dy / (1 + x).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log1p(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (x + 1.0)

    @staticmethod
    def cost(call):
        """n log1p; backward 1 + x and the divide: 2n."""
        return elementwise_cost(call, "log1p", 1, 2, "n")


class Expm1(Function):
    """y = exp(x) - 1, accurate for small x.  dL/dx = dL/dy * exp(x) = dL/dy * (y + 1).
    Saves: y."""

    @staticmethod
    def forward(ctx, x):
        y = np.expm1(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (y + 1.0)

    @staticmethod
    def cost(call):
        """n expm1; backward y + 1 and the multiply: 2n."""
        return elementwise_cost(call, "expm1", 1, 2, "n")


class Exp2(Function):
    """y = 2^x.  dL/dx = dL/dy * y ln 2.  Saves: y."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp2(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (y * _LN2)

    @staticmethod
    def cost(call):
        """n exp2; backward y * ln 2 and the multiply: 2n."""
        return elementwise_cost(call, "exp2", 1, 2, "n")


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt.

    dL/dx = dL/dy * 2/sqrt(pi) * exp(-x^2).
    Saves: x.
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return erf(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * (np.exp(-(x * x)) * _TWO_OVER_SQRT_PI)

    @staticmethod
    def cost(call):
        """n erfs (one FLOP each, as exp); backward x * x, negate, exp, two multiplies: 5n."""
        return elementwise_cost(call, "erf", 1, 5, "n")


class Erfinv(Function):
    """y = erfinv(x), the inverse of erf on (-1, 1) (+-inf at +-1, nan outside).

    dL/dx = dL/dy / erf'(y) = dL/dy * sqrt(pi)/2 * exp(y^2).
    Saves: y.
    """

    @staticmethod
    def forward(ctx, x):
        y = erfinv(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (np.exp(y * y) * _SQRT_PI_OVER_TWO)

    @staticmethod
    def cost(call):
        """n erfinvs (one FLOP each); backward y * y, exp, two multiplies: 4n."""
        return elementwise_cost(call, "erfinv", 1, 4, "n")


# ---------------------------------------------------------------- trigonometric, hyperbolic
class Tan(Function):
    """y = tan(x).  dL/dx = dL/dy * (1 + y^2) (= dL/dy / cos(x)^2).  Saves: y."""

    @staticmethod
    def forward(ctx, x):
        y = np.tan(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (y * y + 1.0)

    @staticmethod
    def cost(call):
        """n tangents; backward y * y, + 1 and the multiply: 3n."""
        return elementwise_cost(call, "tan", 1, 3, "n")


class Asin(Function):
    """y = asin(x) on [-1, 1].  dL/dx = dL/dy / sqrt(1 - x^2) (inf at +-1, nan outside).
    Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.arcsin(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / np.sqrt(1.0 - x * x)

    @staticmethod
    def cost(call):
        """n arcsines; backward x * x, 1 - (.), sqrt and the divide: 4n."""
        return elementwise_cost(call, "asin", 1, 4, "n")


class Acos(Function):
    """y = acos(x) on [-1, 1].  dL/dx = -dL/dy / sqrt(1 - x^2).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.arccos(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return -grad_out / np.sqrt(1.0 - x * x)

    @staticmethod
    def cost(call):
        """n arccosines; backward x * x, 1 - (.), sqrt, negate and the divide: 5n."""
        return elementwise_cost(call, "acos", 1, 5, "n")


class Atan(Function):
    """y = atan(x).  dL/dx = dL/dy / (1 + x^2).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.arctan(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / (x * x + 1.0)

    @staticmethod
    def cost(call):
        """n arctangents; backward x * x, + 1 and the divide: 3n."""
        return elementwise_cost(call, "atan", 1, 3, "n")


class Sinh(Function):
    """y = sinh(x).  dL/dx = dL/dy * cosh(x).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sinh(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * np.cosh(x)

    @staticmethod
    def cost(call):
        """n sinh; backward cosh(x) and the multiply: 2n."""
        return elementwise_cost(call, "sinh", 1, 2, "n")


class Cosh(Function):
    """y = cosh(x).  dL/dx = dL/dy * sinh(x).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cosh(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * np.sinh(x)

    @staticmethod
    def cost(call):
        """n cosh; backward sinh(x) and the multiply: 2n."""
        return elementwise_cost(call, "cosh", 1, 2, "n")


# ---------------------------------------------------------------- piecewise constant
class _PiecewiseConstant(Function):
    """y = f(x) for a step function f (floor, ceil, round, trunc, sign).

    dL/dx = 0 everywhere (the derivative is 0 between the steps; PyTorch's convention at
    them, and for a NaN dL/dy too).
    Saves: only x's shape and dtype.
    """

    @staticmethod
    def step(x, **attrs):
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx, x, **attrs):
        ctx.shape, ctx.dtype = x.shape, x.dtype
        return np.asarray(cls.step(x, **attrs)).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        return np.zeros(ctx.shape, ctx.dtype)

    @staticmethod
    def cost(call):
        """n steps; backward zeros: 0."""
        return elementwise_cost(call, call.op.__name__.lower(), 1, 0, "n")


class Floor(_PiecewiseConstant):
    """y = floor(x); dL/dx = 0 (see _PiecewiseConstant)."""

    step = staticmethod(np.floor)


class Ceil(_PiecewiseConstant):
    """y = ceil(x); dL/dx = 0 (see _PiecewiseConstant)."""

    step = staticmethod(np.ceil)


class Trunc(_PiecewiseConstant):
    """y = trunc(x), rounded toward zero; dL/dx = 0 (see _PiecewiseConstant)."""

    step = staticmethod(np.trunc)


class Round(_PiecewiseConstant):
    """y = x rounded half to even to ``decimals`` decimal places (x * 10^d rounded, then
    divided by 10^d, as PyTorch; d < 0 rounds to tens, hundreds; float16 and bfloat16 in
    float32, as PyTorch, where x * 10^d would overflow); dL/dx = 0."""

    @staticmethod
    def step(x, decimals=0):
        if decimals and x.dtype.itemsize < 4:   # x * 10^d overflows float16 near 65504
            return np.round(x.astype(np.float32), decimals)
        return np.round(x, decimals)


class Sign(_PiecewiseConstant):
    """y = sign(x): -1, 0 or 1, and 0 at NaN (PyTorch's sign; NumPy's is NaN); dL/dx = 0."""

    @staticmethod
    def step(x):
        s = np.sign(x)
        if s.dtype.kind == "f":
            np.copyto(s, 0, where=np.isnan(s))
        return s


class Frac(Function):
    """y = x - trunc(x), the fractional part (with x's sign).  dL/dx = dL/dy.  Saves: nothing."""

    @staticmethod
    def forward(ctx, x):
        return x - np.trunc(x)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out

    @staticmethod
    def cost(call):
        """trunc and subtract: 2n; backward dL/dy passes: 0."""
        return elementwise_cost(call, "frac", 2, 0, "2*n")


class NanToNum(Function):
    """y = x with NaN replaced by ``nan``, +inf by ``posinf`` and -inf by ``neginf`` (the
    largest and lowest finite values of x's dtype when None).

    dL/dx = dL/dy * [x is finite] (PyTorch's rule: replaced entries get no gradient).
    Saves: the boolean mask isfinite(x) (a constant).
    """

    @staticmethod
    def forward(ctx, x, nan=0.0, posinf=None, neginf=None):
        ctx.finite = np.isfinite(x)
        return np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * ctx.finite

    @staticmethod
    def cost(call):
        """n selects; backward one select (dL/dy where x is finite) per element: n."""
        return elementwise_cost(call, "nan_to_num", 1, 1, "n")


# ---------------------------------------------------------------- binary
class Atan2(Function):
    """y = atan2(a, b), the angle of the point (b, a) in (-pi, pi] (broadcast).

    dL/da = dL/dy * b / (a^2 + b^2),  dL/db = -dL/dy * a / (a^2 + b^2), both taken as 0
    where a^2 + b^2 is 0 (at the origin, or where it underflows), as PyTorch.
    Saves: a and b.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.arctan2(a, b)

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        squared = a * a + b * b
        zero = _constant(squared) == 0
        scaled = np.where(zero, 0.0, grad_out / np.where(zero, 1.0, squared))
        need_a, need_b = ctx.needs_input_grad
        return (scaled * b if need_a else None), (-scaled * a if need_b else None)

    @staticmethod
    def cost(call):
        """n atan2; backward a^2 + b^2, dL/dy / (.) and the select at 0 (5n, shared), times b
        (n) for dL/da,
        times -a (2n) for dL/db, plus the unbroadcast sums."""
        shared = 5 * call.outputs[0].size * call.any_grad
        cost = _binary_cost(call, "atan2", 1, {0: 1, 1: 2}, "n")
        return Cost(cost.flops, cost.backward_flops + shared, cost.formula)


class Hypot(Function):
    """y = sqrt(a^2 + b^2) without overflow (broadcast).

    dL/da = dL/dy * a / y,  dL/db = dL/dy * b / y  (nan at a = b = 0, as PyTorch).
    Saves: a, b and y.
    """

    @staticmethod
    def forward(ctx, a, b):
        y = np.hypot(a, b)
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        a, b, y = ctx.saved_tensors
        per_unit = grad_out / y
        need_a, need_b = ctx.needs_input_grad
        return (per_unit * a if need_a else None), (per_unit * b if need_b else None)

    @staticmethod
    def cost(call):
        """n hypot; backward dL/dy / y (n, shared) and one multiply per gradient, plus the
        unbroadcast sums."""
        cost = _binary_cost(call, "hypot", 1, {0: 1, 1: 1}, "n")
        return Cost(cost.flops, cost.backward_flops + call.outputs[0].size * call.any_grad,
                    cost.formula)


class LogAddExp(Function):
    """y = log(exp(a) + exp(b)), computed as max(a, b) + log1p(exp(-|a - b|)) (broadcast).

    dL/da = dL/dy / (1 + exp(b - a)),  dL/db = dL/dy / (1 + exp(a - b))
    (softmax weights of the pair; an overflowing exp gives 0, not inf / inf).
    Saves: a and b.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.logaddexp(a, b)

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return ((grad_out / (np.exp(b - a) + 1.0)) if need_a else None,
                (grad_out / (np.exp(a - b) + 1.0)) if need_b else None)

    @staticmethod
    def cost(call):
        """max, |a - b| (2), exp, log1p and the add: 6n; backward per gradient a difference,
        exp, + 1 and the divide: 4n, plus the unbroadcast sums."""
        return _binary_cost(call, "logaddexp", 6, {0: 4, 1: 4}, "6*n")


class Xlogy(Function):
    """y = a * log(b), taken as 0 where a == 0 (unless b is NaN), as PyTorch (broadcast).

    dL/da = dL/dy * log(b), taken as 0 where a == 0 and b <= 0 (PyTorch's rule);
    dL/db = dL/dy * a / b.
    Saves: a and b.
    """

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        zero = (a == 0) & ~np.isnan(b)
        y = np.where(zero, 0.0, a * np.log(b))
        return y.astype(np.result_type(a, b), copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad_b = None
        if need_a:
            dead = (_constant(a) == 0) & (_constant(b) <= 0)
            safe_b = np.where(dead, 1.0, b)    # log(b) stays differentiable elsewhere
            grad_a = np.where(dead, 0.0, grad_out * np.log(safe_b))
        if need_b:
            grad_b = grad_out * a / b
        return grad_a, grad_b

    @staticmethod
    def cost(call):
        """log(b), the product and the select where a == 0: 3n; backward dL/da: log(b), the
        product and the select (3n); dL/db: two products/divides (2n); plus the unbroadcast
        sums."""
        return _binary_cost(call, "xlogy", 3, {0: 3, 1: 2}, "3*n")


class Remainder(Function):
    """y = a - floor(a / b) * b, the remainder with the sign of b (Python's %, torch.remainder)
    (broadcast).

    dL/da = dL/dy,  dL/db = -dL/dy * floor(a / b) (piecewise constant: taken as a constant).
    Saves: a and b when dL/db is needed.
    """

    @staticmethod
    def forward(ctx, a, b):
        if ctx.needs_input_grad[1]:
            ctx.save_for_backward(a, b)
        return np.remainder(a, b)

    @staticmethod
    def backward(ctx, grad_out):
        need_a, need_b = ctx.needs_input_grad
        grad_b = None
        if need_b:
            a, b = ctx.saved_tensors
            grad_b = -grad_out * np.floor_divide(_constant(a), _constant(b))
        return (grad_out if need_a else None), grad_b

    @staticmethod
    def cost(call):
        """a divide, floor, multiply and subtract: 4n; backward dL/db floor(a / b) (2n), the
        product and the negation (2n); plus the unbroadcast sums."""
        return _binary_cost(call, "remainder", 4, {0: 0, 1: 4}, "4*n")


class Fmod(Function):
    """y = a - trunc(a / b) * b, the remainder with the sign of a (C's fmod, torch.fmod)
    (broadcast).

    dL/da = dL/dy,  dL/db = -dL/dy * trunc(a / b) (piecewise constant: taken as a constant).
    Saves: a and b when dL/db is needed.
    """

    @staticmethod
    def forward(ctx, a, b):
        if ctx.needs_input_grad[1]:
            ctx.save_for_backward(a, b)
        return np.fmod(a, b)

    @staticmethod
    def backward(ctx, grad_out):
        need_a, need_b = ctx.needs_input_grad
        grad_b = None
        if need_b:
            a, b = ctx.saved_tensors
            grad_b = -grad_out * np.trunc(_constant(a) / _constant(b))
        return (grad_out if need_a else None), grad_b

    @staticmethod
    def cost(call):
        """a divide, trunc, multiply and subtract: 4n; backward dL/db trunc(a / b) (2n), the
        product and the negation (2n); plus the unbroadcast sums."""
        return _binary_cost(call, "fmod", 4, {0: 0, 1: 4}, "4*n")


class FloorDivide(Function):
    """y = floor(a / b) (Python's //, torch.floor_divide) (broadcast).

    No backward rule, as PyTorch ("the derivative for floor_divide is not implemented"):
    backpropagating through it raises an error that names the op.
    """

    @staticmethod
    def forward(ctx, a, b):
        return np.floor_divide(a, b)

    @staticmethod
    def cost(call):
        """The floor division: n (PyTorch's algorithm: an fmod, a subtract, a divide and a
        floor, counted as one); no backward."""
        return _binary_cost(call, "floor_divide", 1, {}, "n")


class Lerp(Function):
    """y = start + weight * (end - start), linear interpolation (broadcast; weight may be a
    number). Computed as PyTorch: end - (end - start) * (1 - weight) where |weight| >= 0.5,
    which is exact at weight = 1.

    dL/dstart = dL/dy * (1 - weight),  dL/dend = dL/dy * weight,
    dL/dweight = dL/dy * (end - start).
    Saves: weight, and start and end when dL/dweight is needed.
    """

    @staticmethod
    def forward(ctx, start, end, weight):
        ctx.save_for_backward(start if ctx.needs_input_grad[2] else None,
                              end if ctx.needs_input_grad[2] else None, weight)
        diff = end - start
        low = start + weight * diff
        high = end - diff * (1.0 - weight)
        y = np.where(np.abs(weight) < 0.5, low, high)
        return y.astype(np.result_type(start, end), copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        start, end, weight = ctx.saved_tensors
        need_start, need_end, need_weight = ctx.needs_input_grad
        return (grad_out * (1.0 - weight) if need_start else None,
                grad_out * weight if need_end else None,
                grad_out * (end - start) if need_weight else None)

    @staticmethod
    def cost(call):
        """end - start, the two interpolations (4) and the select on |weight| (2): 7n;
        backward dL/dstart 2n, dL/dend n, dL/dweight 2n, plus the unbroadcast sums."""
        return _binary_cost(call, "lerp", 7, {0: 2, 1: 1, 2: 2}, "7*n")


# ---------------------------------------------------------------- erf and erfinv on arrays
try:  # SciPy is optional: "scipy where a kernel needs it" (DESIGN.md)
    from scipy.special import erf as _scipy_erf
    from scipy.special import erfinv as _scipy_erfinv
except ImportError:  # pragma: no cover - exercised only where SciPy is missing
    _scipy_erf = _scipy_erfinv = None


def erf(x):
    """erf of an array, in x's dtype: SciPy's when installed, else erf_numpy."""
    if _scipy_erf is not None:
        return np.asarray(_scipy_erf(x)).astype(x.dtype, copy=False)
    return erf_numpy(x)


def erfinv(x):
    """erfinv of an array, in x's dtype: SciPy's when installed, else erfinv_numpy."""
    if _scipy_erfinv is not None:
        return np.asarray(_scipy_erfinv(x)).astype(x.dtype, copy=False)
    return erfinv_numpy(x)


def erf_numpy(x):
    """erf with NumPy only (Cody's CALERF, as the exact GELU), in float64: x R(x^2) for
    |x| <= 0.46875, where 1 - erfc(x) would lose the relative accuracy of small x, else
    1 - erfc(x).

    Example:
        >>> import numpy as np
        >>> erf_numpy(np.array([0.0, 1e-10, 0.5, -2.0, np.inf]))
        array([ 0.00000000e+00,  1.12837917e-10,  5.20499878e-01, -9.95322265e-01,
                1.00000000e+00])
    """
    if x.dtype != np.float64:   # evaluated in float64, then rounded once to x's dtype
        return erf_numpy(x.astype(np.float64)).astype(x.dtype)
    out = 1.0 - _erfc(x)
    small = np.abs(x) <= 0.46875
    if small.any():
        out[small] = erf_near_zero(x[small])
    return out.astype(x.dtype, copy=False)


# M. Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011), single precision:
# a polynomial in w = -log(1 - x^2), one for w < 5 and one in sqrt(w) - 3 beyond.
_GILES_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                  0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_NEWTON_STEPS = 5
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
               0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def erfinv_numpy(x):
    """erfinv with NumPy only: Giles' single-precision approximation, then two Newton steps
    on erf(y) = |x| (on log erfc(y) = log(1 - |x|) for |x| >= 0.5), computed in float64.
    Two steps suffice for |x| < 1 - 1e-7, where Giles' start has float32's digits (each step
    doubles them); closer to 1 the start is poorer and the later steps finish the job.

    Example:
        >>> import numpy as np
        >>> erfinv_numpy(np.array([0.0, 0.5, -0.999, 1.0, 2.0]))
        array([ 0.        ,  0.47693628, -2.32675377,         inf,         nan])
    """
    with np.errstate(all="ignore"):     # |x| >= 1 and the branch not taken: inf or nan
        return _erfinv_float64(np.asarray(x, dtype=np.float64)).astype(
            x.dtype if isinstance(x, np.ndarray) else np.float64, copy=False)


def _erfinv_float64(t):
    w = -np.log1p(-t * t)
    central = w < 5.0
    u = np.where(central, w - 2.5, np.sqrt(np.where(central, 5.0, w)) - 3.0)
    coefficients = np.where(central[..., None], _GILES_CENTRAL, _GILES_TAIL)
    p = coefficients[..., 0]
    for k in range(1, 9):
        p = coefficients[..., k] + p * u
    y = np.abs(p * t)
    size = np.abs(t)
    inside = size < 1
    central = size < 0.5
    for _ in range(_NEWTON_STEPS):
        slope = _TWO_OVER_SQRT_PI * np.exp(-y * y)
        # near 0, on erf(y) = |t|; near 1, on log erfc(y) = log(1 - |t|) (1 - |t| is exact
        # there, erf has no digits left to resolve y, and the log is nearly quadratic in y,
        # so Newton converges fast even from a poor start)
        tail = _erfc(y)
        step = np.where(central, (erf_numpy(y) - size) / slope,
                        (np.log1p(-size) - np.log(tail)) * tail / slope)
        y = np.where(inside, y - step, y)
    y = np.copysign(y, t)
    y = np.where(np.abs(t) == 1, np.copysign(np.inf, t), y)
    return np.where((np.abs(t) > 1) | np.isnan(t), np.nan, y)

