"""Elementwise ops: arithmetic, exp/log/sqrt, activations, clamp, where, masked_fill, casts.

Binary ops follow NumPy broadcasting. Their backward returns the gradient in the broadcast
output shape; the engine sums it back to each input's shape in one shared place
(``autograd.engine``), so no op undoes broadcasting by hand.

Backward rules use only operators and NumPy functions that ``Tensor`` also implements, so the
same code runs on raw arrays (plain backward) and on Tensors (``create_graph=True``).
"""

import numpy as np

from retrograd._fast import compiled_for
from retrograd.autograd.cost import ArrayInfo, Cost, call_arg, shape_text, unbroadcast_flops
from retrograd.autograd.function import Function
from retrograd.dtypes import convert

__all__ = [
    "Add", "Sub", "Mul", "Div", "Neg", "PowScalar", "Pow", "Exp", "Log", "Sqrt", "Sin", "Cos",
    "Tanh", "Sigmoid", "Relu", "Abs", "Clamp", "Maximum", "Minimum", "Where", "MaskedFill",
    "Cast", "relu_backward",
]


# ---------------------------------------------------------------- costs (autograd/cost.py)
# One FLOP per elementary operation on one element (docs/cost-model.md); a select by a
# condition (np.where, a mask) is one FLOP, the comparison that forms its condition included.
def operands_text(call):
    """``2x3, 3`` for a call on arrays of shapes (2, 3) and (3,); numbers are ``scalar``."""
    return ", ".join(shape_text(i) if isinstance(i, ArrayInfo) else "scalar"
                     for i in call.inputs if i is not None)


def elementwise_cost(call, name, forward, backward, formula):
    """The Cost of a one-input elementwise op: ``forward`` FLOPs per element of y, and
    ``backward`` per element for dL/dx when it is needed."""
    n = call.outputs[0].size
    return Cost(forward * n, backward * n * call.needs(0),
                f"{name} {operands_text(call)}: {formula}")


def _gradient_flops(call, per_element):
    """Backward FLOPs of a broadcasting op: for each needed input, ``per_element[position]``
    FLOPs per element of y plus the adds that sum dL/dy's shape back to the input's."""
    y = call.outputs[0]
    return sum(per * y.size + unbroadcast_flops(y.shape, call.inputs[i].shape)
               for i, per in per_element.items() if call.needs(i))


def _binary_cost(call, name, per_element, formula="n"):
    """One FLOP per element of y forward; backward as _gradient_flops."""
    return Cost(call.outputs[0].size, _gradient_flops(call, per_element),
                f"{name} {operands_text(call)}: {formula}")


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

    @staticmethod
    def cost(call):
        """n adds; backward none (dL/dy passes), only the adds that sum dL/dy to a
        broadcast input's shape."""
        return _binary_cost(call, "add", {0: 0, 1: 0})


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

    @staticmethod
    def cost(call):
        """n subtracts; backward n negations for dL/db, plus the unbroadcast sums."""
        return _binary_cost(call, "sub", {0: 0, 1: 1})


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

    @staticmethod
    def cost(call):
        """n multiplies; backward n for each of dL/da, dL/db needed, plus the unbroadcast
        sums."""
        return _binary_cost(call, "mul", {0: 1, 1: 1})


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

    @staticmethod
    def cost(call):
        """n divides; backward dL/dy / b (n, shared by both gradients), then -(.) * y (2n)
        for dL/db, plus the unbroadcast sums."""
        n = call.outputs[0].size
        shared = n * (call.needs(0) or call.needs(1))
        return Cost(n, shared + _gradient_flops(call, {0: 0, 1: 2}),
                    f"div {operands_text(call)}: n")


class Neg(Function):
    """y = -x.  dL/dx = -dL/dy.  Saves: nothing."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad_out):
        return -grad_out

    @staticmethod
    def cost(call):
        """n negations; backward n."""
        return elementwise_cost(call, "neg", 1, 1, "n")


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

    @staticmethod
    def cost(call):
        """n powers; backward x^(p - 1), * p, * dL/dy: 3n (p - 1 is a scalar constant).
        For p = 0 the gradient is dL/dy * 0: n."""
        p = call_arg(call, 1, "exponent")
        return elementwise_cost(call, "pow_scalar", 1, 1 if p == 0 else 3, f"n (p = {p})")


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

    @staticmethod
    def cost(call):
        """n powers; backward dL/da: b - 1 (b's size), a^(.), dL/dy * b, the product and
        the select where b == 0 (4n); dL/db: log(a) (a's size), dL/dy * y, the product and the
        select where a is 0 (3n; the guard that keeps log(0) out is not counted); plus the
        unbroadcast sums. A number's b - 1 or log(a) is a scalar constant: free."""
        a, b = (i.size if isinstance(i, ArrayInfo) else 0 for i in call.inputs[:2])
        own = call.needs(0) * b + call.needs(1) * a
        return Cost(call.outputs[0].size, own + _gradient_flops(call, {0: 4, 1: 3}),
                    f"pow {operands_text(call)}: n")


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

    @staticmethod
    def cost(call):
        """n exps; backward dL/dy * y: n."""
        return elementwise_cost(call, "exp", 1, 1, "n")


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

    @staticmethod
    def cost(call):
        """n logs; backward dL/dy / x: n."""
        return elementwise_cost(call, "log", 1, 1, "n")


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

    @staticmethod
    def cost(call):
        """n square roots; backward 2 y and the divide: 2n."""
        return elementwise_cost(call, "sqrt", 1, 2, "n")


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

    @staticmethod
    def cost(call):
        """n sines; backward cos(x) and the multiply: 2n."""
        return elementwise_cost(call, "sin", 1, 2, "n")


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

    @staticmethod
    def cost(call):
        """n cosines; backward -dL/dy, sin(x) and the multiply: 3n."""
        return elementwise_cost(call, "cos", 1, 3, "n")


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

    @staticmethod
    def cost(call):
        """n tanhs; backward y * y, 1 - (.), dL/dy * (.): 3n."""
        return elementwise_cost(call, "tanh", 1, 3, "n")


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

    @staticmethod
    def cost(call):
        """1 / (1 + exp(-x)): negate, exp, add, divide, 4n (the formula, not the overflow-safe
        kernel); backward 1 - y, y * (.), dL/dy * (.): 3n."""
        return elementwise_cost(call, "sigmoid", 4, 3, "4*n")


def relu_backward(y, grad):
    """dL/dx of Relu from its output y: grad where not y <= 0, else 0 (a NaN y passes the
    gradient on), as a product (np.where is ~7x slower), or the compiled one-pass kernel."""
    kernels = compiled_for("activation", y, grad)
    if kernels is not None and y.shape == grad.shape:
        return kernels.relu_backward(y, grad)     # one pass, no mask array
    return grad * ~(y <= 0)


class Relu(Function):
    """y = max(x, 0).  dL/dx = dL/dy where not y <= 0, else 0 (0 at the kink x = 0; at a
    NaN input, y = NaN, the gradient passes on: PyTorch's threshold_backward rule).  Saves: y.
    """

    @staticmethod
    def forward(ctx, x):
        kernels = compiled_for("activation", x)
        # the compiled kernel is one pass on all threads for large arrays (Relu of the
        # Transformer's (32, 64, 512) FFN activations: 510 us a call through np.maximum)
        y = kernels.relu_forward(x) if kernels is not None else np.maximum(x, 0)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        (y,) = ctx.saved_tensors
        return relu_backward(y, grad_out)

    @staticmethod
    def cost(call):
        """n maxes; backward one select (dL/dy where not y <= 0) per element: n."""
        return elementwise_cost(call, "relu", 1, 1, "n")


def sgn(x):
    """np.sign with PyTorch's sgn(NaN) = 0 (NumPy's is NaN): -1, 0 or 1 in x's dtype, an
    array (of a Tensor its values: sgn is piecewise constant, its derivative 0).

    Example:
        >>> import numpy as np
        >>> sgn(np.array([-2.0, 0.0, np.nan, np.inf]))
        array([-1.,  0.,  0.,  1.])
    """
    if not isinstance(x, np.ndarray):    # a Tensor (double backward): sgn is a constant
        x = x.detach().numpy()
    s = np.asarray(np.sign(x))    # (np.sign of a 0-d array is a NumPy scalar)
    np.copyto(s, 0, where=np.isnan(s))
    return s


class Abs(Function):
    """y = |x|.  dL/dx = dL/dy * sgn(x), with sgn(0) = 0 and sgn(NaN) = 0 (PyTorch's sgn:
    the gradient at a NaN input is 0, not NaN).  Saves: x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * sgn(x)

    @staticmethod
    def cost(call):
        """n absolute values; backward sign(x) and the multiply: 2n."""
        return elementwise_cost(call, "abs", 1, 2, "n")


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

    @staticmethod
    def cost(call):
        """One max (lo) and one min (hi) per element for each bound given; backward one
        select (dL/dy where lo <= x <= hi, the saved mask) per element: n."""
        bounds = [name for i, name in ((1, "lo"), (2, "hi"))
                  if call_arg(call, i, name) is not None]
        return elementwise_cost(call, "clamp", len(bounds), 1,
                                f"n per bound ({' and '.join(bounds) or 'none'})")


class _Extremum(Function):
    """Shared backward of Maximum and Minimum (PyTorch's rule): an input gets the gradient
    unless it loses the comparison, ties split it in halves; where a or b is NaN neither
    loses nor ties, and both get the whole gradient."""

    @staticmethod
    def backward(ctx, grad_out):
        half_tie = 0.5 * ctx.tie
        share_a = (~ctx.a_loses).astype(ctx.dtype) - half_tie
        share_b = (~ctx.b_loses).astype(ctx.dtype) - half_tie
        return grad_out * share_a.astype(ctx.dtype), grad_out * share_b.astype(ctx.dtype)

    @staticmethod
    def cost(call):
        """n compares (max or min); backward, for each of dL/da, dL/db needed, the share
        ([not loser] - 0.5 [tie], one select) and its product with dL/dy: 2n, plus the
        unbroadcast sums."""
        return _binary_cost(call, call.op.__name__.lower(), {0: 2, 1: 2})


class Maximum(_Extremum):
    """y = max(a, b) elementwise (broadcast); NaN if a or b is NaN.

    dL/da = dL/dy * ([not a < b] - 0.5 [a == b]);  dL/db = dL/dy * ([not a > b] - 0.5 [a == b])
    (a NaN in a or b: both get dL/dy, as PyTorch).
    Saves: three boolean masks of y's shape (a < b, a > b, a == b).
    """

    @staticmethod
    def forward(ctx, a, b):
        y = np.maximum(a, b)
        ctx.a_loses, ctx.b_loses, ctx.tie, ctx.dtype = a < b, a > b, a == b, y.dtype
        return y


class Minimum(_Extremum):
    """y = min(a, b) elementwise (broadcast); gradient rule as Maximum with > for <."""

    @staticmethod
    def forward(ctx, a, b):
        y = np.minimum(a, b)
        ctx.a_loses, ctx.b_loses, ctx.tie, ctx.dtype = a > b, a < b, a == b, y.dtype
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

    @staticmethod
    def cost(call):
        """n selects; backward one select per element for each of dL/da, dL/db needed,
        plus the unbroadcast sums (cond has no gradient)."""
        return _binary_cost(call, "where", {1: 1, 2: 1})


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

    @staticmethod
    def cost(call):
        """n selects; backward one select (dL/dy where not mask) per element: n."""
        return elementwise_cost(call, "masked_fill", 1, 1, "n")


class Cast(Function):
    """y = x converted to another floating dtype.

    dL/dx = dL/dy converted back to x's dtype (the engine casts every gradient to its input's
    dtype, so backward passes it on).
    """

    moves_data = "converts the dtype: no arithmetic"

    @staticmethod
    def forward(ctx, x, dtype):
        return convert(x, dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out

    @staticmethod
    def cost(call):
        """No arithmetic: a dtype conversion, forward and backward."""
        return Cost(0, 0, f"cast {operands_text(call)} -> {call.outputs[0].dtype}: 0")
