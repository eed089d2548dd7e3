"""More activations: SiLU, Mish, Softplus, ELU, Hardtanh (ReLU6 is Hardtanh(0, 6)), PReLU and
LogSigmoid (leaky ReLU and GELU are in ops/activation.py; ReLU, tanh, sigmoid in
ops/elementwise.py).

Every backward here serves two purposes: in a plain backward it receives arrays and uses the
overflow-free NumPy forms below; under ``create_graph=True`` it receives Tensors and the same
expression records the ops it uses (NumPy hands np.exp, np.tanh, np.where, ... to the Tensor
ops; sigmoid and softplus are the recorded ops Sigmoid and Softplus), so each op here is
twice differentiable. Masks taken in forward are constants. float16 and bfloat16 arrays are
computed in float32 and rounded once at the end, as PyTorch's CPU kernels do.

Large |x|: every finite x gives a finite y and dL/dx. sigmoid(x) is 1 / (1 + e) or e / (1 + e)
with e = exp(-|x|), and log(1 + exp(z)) is max(z, 0) + log1p(exp(-|z|)), so no exponent
overflows; at x = +-inf the ops give PyTorch's values (NaN included, e.g. silu(-inf) =
-inf * 0).
"""

import math

import numpy as np

from retrograd.autograd.cost import Cost, unbroadcast_flops
from retrograd.autograd.function import Function
from retrograd.ops.elementwise import Sigmoid, elementwise_cost, operands_text

__all__ = ["Silu", "Mish", "Softplus", "Elu", "Hardtanh", "Prelu", "LogSigmoid"]


def _is_array(x):
    """True for NumPy arrays and scalars, False for the Tensors a create_graph backward gets."""
    return isinstance(x, (np.ndarray, np.generic))


def _lifted(x):
    """float16 and bfloat16 arrays as float32 (computed there, rounded once); anything else
    (wider arrays, Tensors) unchanged."""
    if _is_array(x) and x.dtype.itemsize < 4 and x.dtype.kind in "fV":
        return x.astype(np.float32)
    return x


def _sigmoid(x):
    """sigmoid(x) without overflow on an array; the recorded op Sigmoid on a Tensor."""
    if not _is_array(x):
        return Sigmoid.apply(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _softplus(x):
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)) on an array (finite for every finite
    x); the recorded op Softplus (no linear regime) on a Tensor."""
    if not _is_array(x):
        return Softplus.apply(x, beta=1.0, threshold=math.inf)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def _rounded(y, x):
    """The result y in x's dtype (half precisions were computed in float32)."""
    return y.astype(x.dtype, copy=False)


class Silu(Function):
    """y = x * sigmoid(x) (SiLU, also called swish), elementwise.

    With s = sigmoid(x) and ds/dx = s (1 - s):
        dL/dx = dL/dy * (s + x s (1 - s)) = dL/dy * s * (1 + x (1 - s))
    Saves: x (s is recomputed in backward rather than kept as a second array).
    At x = -inf, y = -inf * 0 = NaN, and dL/dx is NaN at x = +-inf, as in PyTorch.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        w = _lifted(x)
        return _rounded(w * _sigmoid(w), x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        x = _lifted(x)
        s = _sigmoid(x)
        return grad_out * (s * (1.0 + x * (1.0 - s)))

    @staticmethod
    def cost(call):
        """sigmoid (negate, exp, add, divide: 4) and the product: 5n; backward sigmoid
        recomputed (4), 1 - s, x * (.), 1 + (.), s * (.), dL/dy * (.): 9n."""
        return elementwise_cost(call, "silu", 5, 9, "5*n")


class Mish(Function):
    """y = x * tanh(softplus(x)), softplus(x) = log(1 + exp(x)), elementwise.

    With t = tanh(softplus(x)): dt/dx = (1 - t^2) * softplus'(x) = (1 - t^2) * sigmoid(x), so
        dL/dx = dL/dy * (t + x * sigmoid(x) * (1 - t^2))
    Saves: x (t and sigmoid(x) are recomputed in backward).
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        w = _lifted(x)
        return _rounded(w * np.tanh(_softplus(w)), x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        x = _lifted(x)
        t = np.tanh(_softplus(x))
        return grad_out * (t + x * _sigmoid(x) * (1.0 - t * t))

    @staticmethod
    def cost(call):
        """softplus as log(1 + exp(x)) (3), tanh, the product: 5n; backward softplus and tanh
        recomputed (4), sigmoid (4), t * t, 1 - (.), x * s, * (.), t + (.), dL/dy * (.): 14n."""
        return elementwise_cost(call, "mish", 5, 14, "5*n")


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta where beta x <= threshold, and y = x where
    beta x > threshold (PyTorch's linear regime), elementwise.

    d/dx log(1 + exp(beta x)) / beta = exp(beta x) / (1 + exp(beta x)) = sigmoid(beta x), so
        dL/dx = dL/dy * sigmoid(beta x) where beta x <= threshold, dL/dy elsewhere
    Saves: x and the boolean mask [beta x > threshold] (a constant, 1 byte per element).
    log(1 + exp(z)) is max(z, 0) + log1p(exp(-|z|)): finite for every finite z (also with an
    infinite threshold) and accurate where exp(z) is tiny.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x, beta=1.0, threshold=20.0):
        ctx.save_for_backward(x)
        w = _lifted(x)
        z = w * beta
        ctx.beta, ctx.linear = beta, z > threshold
        return _rounded(np.where(ctx.linear, w, _softplus(z) / beta), x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        s = _sigmoid(_lifted(x) * ctx.beta)
        return np.where(ctx.linear, grad_out, grad_out * s)

    @staticmethod
    def cost(call):
        """beta x, exp, 1 + (.), log, / beta and the select: 6n; backward beta x, sigmoid (4),
        dL/dy * s and the select: 7n."""
        return elementwise_cost(call, "softplus", 6, 7, "6*n")


class Elu(Function):
    """y = x where x > 0, alpha (exp(x) - 1) elsewhere, elementwise.

    dL/dx = dL/dy where x > 0, dL/dy * alpha exp(x) elsewhere (the kink x = 0 takes
    alpha exp(0) = alpha, PyTorch's convention). A NaN x gets a NaN gradient, as from
    PyTorch's vectorized kernel (its scalar loop, which runs on the last few elements of a
    tensor, passes dL/dy on instead: PyTorch itself is not consistent there).
    Saves: x and the mask [x > 0] (a constant). alpha exp(x) is recomputed from x, not taken
    as y + alpha, which would lose every digit where exp(x) is below y's rounding error.
    exp(x) - 1 is expm1 (accurate near 0); both exponentials see min(x, 0), so none
    overflows.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x, alpha=1.0):
        ctx.save_for_backward(x)
        w = _lifted(x)
        ctx.alpha, ctx.positive = alpha, w > 0
        return _rounded(np.where(ctx.positive, w, alpha * np.expm1(np.minimum(w, 0.0))), x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        slope = ctx.alpha * np.exp(np.minimum(_lifted(x), 0.0))
        return np.where(ctx.positive, grad_out, grad_out * slope)

    @staticmethod
    def cost(call):
        """min(x, 0), expm1 (exp and subtract), alpha * (.) and the select: 5n; backward
        min(x, 0), exp, alpha * (.), dL/dy * (.) and the select: 5n."""
        return elementwise_cost(call, "elu", 5, 5, "5*n")


class Hardtanh(Function):
    """y = min(max(x, min_val), max_val), elementwise (ReLU6 is min_val=0, max_val=6).

    dL/dx = dL/dy where min_val < x < max_val, 0 elsewhere: unlike clamp, the bounds
    themselves get 0 (PyTorch's hardtanh_backward). A NaN x gets 0, as from PyTorch's
    vectorized kernel (its scalar loop, on the last few elements of a tensor, passes dL/dy
    on: PyTorch itself is not consistent there).
    Saves: the boolean mask of the open interval (a constant, 1 byte per element), not x.
    The backward is a select by a constant mask, so it is also right under create_graph.
    Shapes: x, y, dL/dy, dL/dx are all (*). Integer inputs are clipped too (no gradient).
    """

    @staticmethod
    def forward(ctx, x, min_val=-1.0, max_val=1.0):
        if ctx.needs_input_grad[0]:
            ctx.inside = (x > min_val) & (x < max_val)
        return _rounded(np.clip(x, min_val, max_val), x)

    @staticmethod
    def backward(ctx, grad_out):
        return np.where(ctx.inside, grad_out, 0.0)

    @staticmethod
    def cost(call):
        """max with min_val and min with max_val: 2n; backward one select: n."""
        return elementwise_cost(call, "hardtanh", 2, 1, "2*n")


class Prelu(Function):
    """y = x where x > 0, w * x elsewhere, elementwise, with learnable slopes w broadcast
    to x (nn.functional.prelu shapes w as (C, 1, ..., 1) for the channel dim 1, or () for
    one shared slope).

    dL/dx = dL/dy where x > 0, w * dL/dy elsewhere (the kink x = 0 takes the slope)
    dL/dw = x * dL/dy where x <= 0, 0 elsewhere, in y's shape; the engine sums it over the
            broadcast dims back to w's shape: dL/dw_c = sum over x's elements of channel c.
    Saves: x and w (inputs) and the mask [x > 0] (a constant).
    Shapes: x (*), w broadcastable to x, y and dL/dy (*), dL/dw w's shape.
    """

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        ctx.positive = x > 0
        return _rounded(np.where(ctx.positive, x, weight * x), x)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        need_x, need_w = ctx.needs_input_grad
        grad_x = np.where(ctx.positive, grad_out, weight * grad_out) if need_x else None
        grad_w = np.where(ctx.positive, 0.0, x * grad_out) if need_w else None
        return grad_x, grad_w

    @staticmethod
    def cost(call):
        """w * x and the select: 2n; backward, each gradient needed: a product and a select
        (2n), plus the sums of dL/dw over the dims w is broadcast along."""
        n = call.outputs[0].size
        backward = 2 * n * call.needs(0)
        if call.needs(1):
            backward += 2 * n + unbroadcast_flops(call.outputs[0].shape, call.inputs[1].shape)
        return Cost(2 * n, backward, f"prelu {operands_text(call)}: 2*n")


class LogSigmoid(Function):
    """y = log(sigmoid(x)) = -log(1 + exp(-x)) = min(x, 0) - log1p(exp(-|x|)), elementwise.

    dL/dx = dL/dy * (1 - sigmoid(x)) = dL/dy * sigmoid(-x)
    Saves: x. The log1p form never overflows: y = x for x -> -inf, y -> 0 for x -> +inf.
    Shapes: x, y, dL/dy, dL/dx are all (*).
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        w = _lifted(x)
        return _rounded(np.minimum(w, 0.0) - np.log1p(np.exp(-np.abs(w))), x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * _sigmoid(-_lifted(x))

    @staticmethod
    def cost(call):
        """-log(1 + exp(-x)): negate, exp, add, log, negate: 5n; backward sigmoid(-x) =
        1 / (1 + exp(x)) (exp, add, divide: 3) and dL/dy * (.): 4n."""
        return elementwise_cost(call, "logsigmoid", 5, 4, "5*n")
