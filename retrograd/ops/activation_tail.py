"""The tail of PyTorch's activations: Hardswish, Hardsigmoid, ScaledElu (SELU and CELU are
ELU with a scale and an input scale, as PyTorch computes them), Softshrink, Hardshrink and
Threshold. (glu, softmin, softsign and tanhshrink are compositions in nn.functional: PyTorch
composes the last three too, and glu is a * sigmoid(b) on the split halves; ELU and the others
are in ops/activation_extra.py.)

As in activation_extra.py, every backward also runs on Tensors under ``create_graph=True``
(the masks taken in forward are constants), so each op here is twice differentiable; float16
and bfloat16 arrays are computed in float32 and rounded once at the end, as PyTorch's CPU
kernels do. The kinks follow PyTorch's vectorized CPU kernels (its scalar loop, which runs on
the last few elements of a tensor, differs from them at NaN inputs).
"""

import numpy as np

from retrograd.autograd.function import Function
from retrograd.ops.activation_extra import _lifted, _rounded
from retrograd.ops.elementwise import elementwise_cost

__all__ = ["Hardswish", "Hardsigmoid", "ScaledElu", "Softshrink", "Hardshrink", "Threshold"]


class Hardswish(Function):
    """y = x * min(max(x + 3, 0), 6) / 6, elementwise (0 for x <= -3, x for x >= 3).

    dL/dx = 0                         where x <= -3
            dL/dy * (x / 3 + 1/2)     where -3 < x < 3
            dL/dy                     where x >= 3
    (PyTorch's kinks: x = -3 takes 0 and x = 3 takes 1; a NaN x gets a NaN gradient.)
    y is formed as x * (min(max(x + 3, 0), 6) / 6), so every finite x gives a finite y
    (PyTorch's x * min(.) / 6 overflows to inf near finfo.max).
    Saves: x and the masks [x <= -3], [x >= 3] (constants, 1 byte per element each).
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        w = _lifted(x)
        ctx.low, ctx.high = w <= -3.0, w >= 3.0
        # x * (r / 6), not (x * r) / 6 (PyTorch's): finite up to finfo.max
        return _rounded(w * (np.minimum(np.maximum(w + 3.0, 0.0), 6.0) / 6.0), x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        slope = np.where(ctx.high, 1.0, _lifted(x) / 3.0 + 0.5)
        return np.where(ctx.low, 0.0, grad_out * slope)

    @staticmethod
    def cost(call):
        """x + 3, max, min, x * (.), / 6: 5n; backward x / 3, + 1/2, the two selects and
        dL/dy * (.): 5n."""
        return elementwise_cost(call, "hardswish", 5, 5, "5*n")


class Hardsigmoid(Function):
    """y = min(max(x + 3, 0), 6) / 6, elementwise.

    dL/dx = dL/dy / 6 where -3 < x < 3, 0 elsewhere (the bounds and NaN take 0, as PyTorch).
    Saves: the mask of the open interval (a constant, 1 byte per element), not x.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x):
        w = _lifted(x)
        if ctx.needs_input_grad[0]:
            ctx.inside = (w > -3.0) & (w < 3.0)
        return _rounded(np.minimum(np.maximum(w + 3.0, 0.0), 6.0) / 6.0, x)

    @staticmethod
    def backward(ctx, grad_out):
        return np.where(ctx.inside, grad_out / 6.0, 0.0)

    @staticmethod
    def cost(call):
        """x + 3, max, min, / 6: 4n; backward dL/dy / 6 and the select: 2n."""
        return elementwise_cost(call, "hardsigmoid", 4, 2, "4*n")


class ScaledElu(Function):
    """y = scale * x where x > 0, scale * alpha * (exp(input_scale * x) - 1) elsewhere,
    elementwise: PyTorch's elu with its scale and input_scale. SELU is alpha =
    1.6732632423543772, scale = 1.0507009873554805, input_scale = 1; CELU(alpha) is scale = 1,
    input_scale = 1 / alpha.

    dL/dx = dL/dy * scale                                              where x > 0
            dL/dy * scale * alpha * input_scale * exp(input_scale * x)  elsewhere
    (the kink x = 0 takes the second form, PyTorch's convention: SELU's slope there is
    scale * alpha, CELU's 1). A NaN x gets a NaN gradient.
    Saves: x and the mask [x > 0] (a constant). exp(input_scale x) - 1 is expm1 of
    input_scale * min(x, 0), so positive x never reach the exponential.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x, alpha=1.0, scale=1.0, input_scale=1.0):
        ctx.save_for_backward(x)
        w = _lifted(x)
        ctx.alpha, ctx.scale, ctx.input_scale = alpha, scale, input_scale
        ctx.positive = w > 0
        with np.errstate(over="ignore"):   # a negative input_scale (CELU, alpha < 0) may give inf
            negative = (scale * alpha) * np.expm1(np.minimum(w, 0.0) * input_scale)
        return _rounded(np.where(ctx.positive, w * scale, negative), x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        coefficient = ctx.scale * ctx.alpha * ctx.input_scale
        with np.errstate(over="ignore"):
            slope = coefficient * np.exp(np.minimum(_lifted(x), 0.0) * ctx.input_scale)
        return np.where(ctx.positive, grad_out * ctx.scale, grad_out * slope)

    @staticmethod
    def cost(call):
        """min(x, 0), * input_scale, expm1 (exp and subtract), * scale alpha, scale * x and the
        select: 7n; backward min(x, 0), * input_scale, exp, * the coefficient, the two
        products with dL/dy and the select: 7n."""
        return elementwise_cost(call, "scaled_elu", 7, 7, "7*n")


class Softshrink(Function):
    """y = x - lambd where x > lambd, x + lambd where x < -lambd, 0 elsewhere (lambd >= 0).

    dL/dx = dL/dy where |x| > lambd, 0 elsewhere (the bounds and NaN take 0, as PyTorch).
    Saves: the mask [|x| > lambd] (a constant), not x.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x, lambd=0.5):
        w = _lifted(x)
        ctx.outside = (w > lambd) | (w < -lambd)
        # 0 * w keeps a NaN input NaN
        return _rounded(np.where(ctx.outside, w - np.copysign(lambd, w), 0.0 * w), x)

    @staticmethod
    def backward(ctx, grad_out):
        return np.where(ctx.outside, grad_out, 0.0)

    @staticmethod
    def cost(call):
        """the two comparisons' select, copysign, x - (.), 0 * x: 4n; backward one select."""
        return elementwise_cost(call, "softshrink", 4, 1, "4*n")


class Hardshrink(Function):
    """y = x where |x| > lambd, 0 elsewhere.

    dL/dx = dL/dy where |x| > lambd, 0 elsewhere (the bounds and NaN take 0, as PyTorch).
    Saves: the mask [|x| > lambd] (a constant), not x.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x, lambd=0.5):
        w = _lifted(x)
        ctx.outside = (w > lambd) | (w < -lambd)
        return _rounded(np.where(ctx.outside, w, 0.0 * w), x)   # 0 * w: NaN stays NaN

    @staticmethod
    def backward(ctx, grad_out):
        return np.where(ctx.outside, grad_out, 0.0)

    @staticmethod
    def cost(call):
        """0 * x and the select: 2n; backward one select: n."""
        return elementwise_cost(call, "hardshrink", 2, 1, "2*n")


class Threshold(Function):
    """y = value where x <= threshold, x elsewhere (a NaN x stays NaN).

    dL/dx = 0 where x <= threshold, dL/dy elsewhere (a NaN x passes dL/dy on, as PyTorch).
    Saves: the mask [x <= threshold] (a constant), not x.
    Shapes: x, y, dL/dy, dL/dx are all (*). Integer inputs keep their dtype (value is
    converted to it, as PyTorch); they get no gradient.
    """

    @staticmethod
    def forward(ctx, x, threshold=0.0, value=0.0):
        below = x <= threshold
        if ctx.needs_input_grad[0]:
            ctx.below = below
        return np.where(below, np.asarray(value).astype(x.dtype), x)

    @staticmethod
    def backward(ctx, grad_out):
        return np.where(ctx.below, 0.0, grad_out)

    @staticmethod
    def cost(call):
        """one select per element: n; backward one select: n."""
        return elementwise_cost(call, "threshold", 1, 1, "n")
