"""Elementwise ops: arithmetic, exp/log/sqrt, activations, clamp, where, masked_fill, casts.

Binary ops follow NumPy broadcasting. Their backward returns the gradient in the broadcast
output shape; the engine sums it back to each input's shape in one shared place
(``autograd.engine``), so no op undoes broadcasting by hand.

Backward rules use only operators and NumPy functions that ``Tensor`` also implements, so the
same code runs on raw arrays (plain backward) and on Tensors (``create_graph=True``).
"""

import numpy as np

from retrograd.autograd.function import Function

__all__ = [
    "Add", "Sub", "Mul", "Div", "Neg", "PowScalar", "Pow", "Exp", "Log", "Sqrt", "Sin", "Cos",
    "Tanh", "Sigmoid", "Relu", "Abs", "Clamp", "Maximum", "Minimum", "Where", "MaskedFill",
    "Cast",
]


class Add(Function):
    """y = a + b (broadcast).

    dL/da = dL/dy, dL/db = dL/dy (each summed over its broadcast axes by the engine).
    Saves: nothing. Shapes: a, b broadcast to y:(*).
    """

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out, grad_out


class Sub(Function):
    """y = a - b (broadcast).

    dL/da = dL/dy, dL/db = -dL/dy.
    Saves: nothing.
    """

    @staticmethod
    def forward(ctx, a, b):
        return a - b

    @staticmethod
    def backward(ctx, grad_out):
        need_a, need_b = ctx.needs_input_grad
        return grad_out, (-grad_out if need_b else None)


class Mul(Function):
    """y = a * b (broadcast).

    dL/da = dL/dy * b, dL/db = dL/dy * a.
    Saves: b if dL/da is needed, a if dL/db is needed.
    """

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        return a * b

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        return (grad_out * b if b is not None else None,
                grad_out * a if a is not None else None)


class Div(Function):
    """y = a / b (broadcast).

    dL/da = dL/dy / b
    dL/db = -dL/dy * a / b^2 = -(dL/dy / b) * y
    Saves: b, and y when dL/db is needed (y is cheaper to reuse than a / b).
    """

    @staticmethod
    def forward(ctx, a, b):
        y = a / b
        ctx.save_for_backward(b, y if ctx.needs_input_grad[1] else None)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        b, y = ctx.saved_tensors
        grad_a = grad_out / b
        grad_b = -grad_a * y if y is not None else None
        return grad_a, grad_b


class Neg(Function):
    """y = -x.  dL/dx = -dL/dy.  Saves: nothing."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad_out):
        return -grad_out


class PowScalar(Function):
    """y = x ** p for a Python number p.

    dL/dx = dL/dy * p * x^(p - 1)
    Saves: x.  Attributes: exponent p.
    """

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.exponent = exponent
        ctx.save_for_backward(x)
        return (x ** exponent).astype(x.dtype, copy=False)  # bfloat16 ** 0.5 would be float32

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        p = ctx.exponent
        if p == 0:
            return grad_out * 0.0
        return grad_out * p * x ** (p - 1)


class Pow(Function):
    """y = a ** b, both broadcast arrays.

    dL/da = dL/dy * b * a^(b - 1), taken as 0 where b == 0 (y = 1 does not depend on a;
            PyTorch's convention, which also avoids 0 * 0^-1 = nan at a = 0)
    dL/db = dL/dy * y * log(a), taken as 0 where a == 0 and b >= 0 (PyTorch's convention:
            the limit of a^b * log(a) as a -> 0+ is 0 for b > 0).
    Saves: a, b and y.
    """

    @staticmethod
    def forward(ctx, a, b):
        y = a ** b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        a, b, y = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = None
        if need_a:
            grad_a = np.where(b == 0, 0.0, grad_out * b * a ** (b - 1))
        grad_b = None
        if need_b:
            zero_base = (a == 0) & (b >= 0)
            safe_a = np.where(zero_base, 1.0, a)
            grad_b = np.where(zero_base, 0.0, grad_out * y * np.log(safe_a))
        return grad_a, grad_b


class Exp(Function):
    """y = exp(x).  dL/dx = dL/dy * y.  Saves: y (not x)."""

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * y


class Log(Function):
    """y = log(x).  dL/dx = dL/dy / x.  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out / x


class Sqrt(Function):
    """y = sqrt(x).  dL/dx = dL/dy / (2 y).  Saves: y."""

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out / (2.0 * y)


class Sin(Function):
    """y = sin(x).  dL/dx = dL/dy * cos(x).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * np.cos(x)


class Cos(Function):
    """y = cos(x).  dL/dx = -dL/dy * sin(x).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return -grad_out * np.sin(x)


class Tanh(Function):
    """y = tanh(x).  dL/dx = dL/dy * (1 - y^2).  Saves: y."""

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (1.0 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)).  dL/dx = dL/dy * y * (1 - y).  Saves: y.

    Forward uses e = exp(-|x|) so that no exponent overflows: y = 1/(1+e) for x >= 0 and
    e/(1+e) for x < 0.
    """

    @staticmethod
    def forward(ctx, x):
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1.0, e) / (1.0 + e)
        y = y.astype(x.dtype, copy=False)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * y * (1.0 - y)


class Relu(Function):
    """y = max(x, 0).  dL/dx = dL/dy * [y > 0] (0 at the kink x = 0, as PyTorch).  Saves: y."""

    @staticmethod
    def forward(ctx, x):
        y = np.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return grad_out * (y > 0)


class Abs(Function):
    """y = |x|.  dL/dx = dL/dy * sign(x) (0 at x = 0, as PyTorch).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * np.sign(x)


class Clamp(Function):
    """y = min(max(x, lo), hi); lo or hi may be None.

    dL/dx = dL/dy * [lo <= x <= hi] (the gradient passes at the bounds, as PyTorch).
    Saves: the boolean mask (a constant of x's shape), not x.
    """

    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        y = np.clip(x, lo, hi)
        if ctx.needs_input_grad[0]:
            inside = np.ones(x.shape, dtype=bool) if lo is None else x >= lo
            if hi is not None:
                inside &= x <= hi
            ctx.inside = inside
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out * ctx.inside


class _Extremum(Function):
    """Shared backward of Maximum and Minimum: the winner gets the gradient, ties split it
    in halves (PyTorch's convention)."""

    @staticmethod
    def backward(ctx, grad_out):
        a_wins, tie = ctx.a_wins, ctx.tie
        share_a = a_wins + 0.5 * tie
        share_b = (~a_wins & ~tie) + 0.5 * tie
        return grad_out * share_a.astype(ctx.dtype), grad_out * share_b.astype(ctx.dtype)


class Maximum(_Extremum):
    """y = max(a, b) elementwise (broadcast).

    dL/da = dL/dy * ([a > b] + 0.5 [a == b]);  dL/db = dL/dy * ([b > a] + 0.5 [a == b]).
    Saves: two boolean masks of y's shape.
    """

    @staticmethod
    def forward(ctx, a, b):
        y = np.maximum(a, b)
        ctx.a_wins, ctx.tie, ctx.dtype = a > b, a == b, y.dtype
        return y


class Minimum(_Extremum):
    """y = min(a, b) elementwise (broadcast); gradient rule as Maximum with < for >."""

    @staticmethod
    def forward(ctx, a, b):
        y = np.minimum(a, b)
        ctx.a_wins, ctx.tie, ctx.dtype = a < b, a == b, y.dtype
        return y


class Where(Function):
    """y = a where cond else b (cond boolean, all three broadcast).

    dL/da = dL/dy * [cond], dL/db = dL/dy * [not cond].
    Saves: cond (a constant).
    """

    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = cond
        y = np.where(cond, a, b)
        arrays = [v for v in (a, b) if isinstance(v, np.ndarray)]
        # NOTE: np.where does not treat a Python float as weak: where(c, bfloat16, 0.0) would be
        # float64. The result keeps the dtype of the array operands (already promoted by Tensor).
        return y.astype(arrays[0].dtype, copy=False) if arrays else y

    @staticmethod
    def backward(ctx, grad_out):
        _, need_a, need_b = ctx.needs_input_grad
        cond = ctx.cond
        return (None,
                np.where(cond, grad_out, 0.0) if need_a else None,
                np.where(cond, 0.0, grad_out) if need_b else None)


class MaskedFill(Function):
    """y = x with value written where mask is True (mask broadcasts to x).

    dL/dx = dL/dy * [not mask].
    Saves: mask (a constant).
    """

    @staticmethod
    def forward(ctx, x, mask, value):
        ctx.mask = mask
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    @staticmethod
    def backward(ctx, grad_out):
        return np.where(ctx.mask, 0.0, grad_out), None


class Cast(Function):
    """y = x converted to another floating dtype.

    dL/dx = dL/dy converted back to x's dtype (the engine casts every gradient to its input's
    dtype, so backward passes it on).
    """

    @staticmethod
    def forward(ctx, x, dtype):
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out
