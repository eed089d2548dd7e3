"""Reductions: sum, mean, var, std, vector norms, max/min (values and indices), amax/amin,
logsumexp.

``axis`` is a tuple of non-negative axes or None (all axes); callers normalize it. The
backward of every reduction first puts the reduced axes back as size-1 axes
(``_unsqueeze_reduced``) and then broadcasts to the input shape.
"""

import math
import warnings

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text
from retrograd.autograd.function import Function
from retrograd.dtypes import is_floating
from retrograd.ops.elementwise import sgn

__all__ = ["Sum", "Mean", "Var", "Std", "Norm", "MaxDim", "MinDim", "Amax", "Amin", "LogSumExp",
           "wide_sum", "wide_mean", "power_of_two_scale"]


def _accumulator(x):
    """float32 for bfloat16 arrays, else None (NumPy's own choice). NOTE: ml_dtypes sums
    bfloat16 in bfloat16, where adding 0.1 a hundred thousand times stalls at 32; PyTorch
    accumulates in float32. (float16 is fine: NumPy already accumulates it in float32.)"""
    if isinstance(x, np.ndarray) and x.dtype.kind == "V" and is_floating(x.dtype):
        return np.float32
    return None


def wide_sum(x, axis=None, keepdims=False):
    """np.sum that keeps x's dtype but accumulates bfloat16 in float32 (arrays or Tensors).

    Example:
        >>> import numpy as np
        >>> from retrograd import bfloat16
        >>> x = np.full(100000, 0.1, dtype=bfloat16.np)
        >>> float(np.sum(x)), float(wide_sum(x))
        (32.0, 9984.0)
    """
    acc = _accumulator(x)
    if acc is None:
        return np.sum(x, axis=axis, keepdims=keepdims)
    return np.asarray(np.sum(x, axis=axis, keepdims=keepdims, dtype=acc)).astype(x.dtype)


def wide_mean(x, axis=None, keepdims=False):
    """np.mean with wide_sum's accumulation rule; the mean of nothing is nan, without
    NumPy's "Mean of empty slice" warning.

    Example:
        >>> import numpy as np
        >>> from retrograd import bfloat16
        >>> float(wide_mean(np.full((2, 50000), 0.5, dtype=bfloat16.np)))
        0.5
    """
    if x.size == 0:
        return _nan_where_empty(np.sum(x, axis=axis, keepdims=keepdims), x, axis)
    acc = _accumulator(x)
    if acc is None:
        return np.mean(x, axis=axis, keepdims=keepdims)
    return np.asarray(np.mean(x, axis=axis, keepdims=keepdims, dtype=acc)).astype(x.dtype)


def _nan_where_empty(total, x, axis):
    """The mean from total, a sum over axis of the empty array x: nan when a reduced axis is
    empty (0 / 0, as PyTorch), else an empty result."""
    count = _count(x.shape, None if axis is None else np.atleast_1d(axis))
    return np.asarray(total / count if count else total * np.nan).astype(x.dtype, copy=False)


def _unsqueeze_reduced(grad_out, axis, keepdims):
    """Give dL/dy back its reduced axes as size-1 axes, so it broadcasts against x."""
    if keepdims or axis is None:
        return grad_out
    return np.expand_dims(grad_out, axis)


def _reduction_cost(call, forward, backward, formula):
    """The Cost of a reduction of x (n elements) to y (m): ``forward(n, m, r)`` and
    ``backward(n, m, r)`` FLOPs with r = n - m the adds of a sum (backward only when dL/dx is
    needed); the formula names the op and the shapes."""
    x, y = call.inputs[0], call.outputs[0]
    n, m = x.size, y.size
    r = reduction_flops(n, m)
    return Cost(forward(n, m, r), backward(n, m, r) if call.needs(0) else 0,
                f"{call.op.__name__.lower()} x({shape_text(x)}) -> {shape_text(y)}: {formula}")


def _centered_flops(n, m, r):
    """x - mean(x) per group: mean r + m, subtract n."""
    return r + m + n


def _count(shape, axis):
    """Number of elements folded into each output element."""
    if axis is None:
        return math.prod(shape)
    return math.prod(shape[a] for a in axis)


class Sum(Function):
    """y = sum(x, axis).

    dL/dx = broadcast(dL/dy) to x's shape: every input element contributes with weight 1.
    Saves: only x's shape.
    """

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return wide_sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return np.broadcast_to(grad, ctx.shape)

    @staticmethod
    def cost(call):
        """n - m adds; backward a broadcast: 0."""
        return _reduction_cost(call, lambda n, m, r: r, lambda n, m, r: 0, "n - m")


class Mean(Function):
    """y = sum(x, axis) / n, n = number of elements reduced.

    dL/dx = broadcast(dL/dy) / n.
    Saves: only x's shape.
    """

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.shape, ctx.axis, ctx.keepdims = x.shape, axis, keepdims
        return wide_mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, grad_out):
        n = _count(ctx.shape, ctx.axis)
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return np.broadcast_to(grad / max(n, 1), ctx.shape)

    @staticmethod
    def cost(call):
        """n - m adds and m divides: n; backward dL/dy / n (m divides), then a broadcast."""
        return _reduction_cost(call, lambda n, m, r: r + m, lambda n, m, r: m, "n")


class Var(Function):
    """y = sum((x - mean(x))^2, axis) / (n - correction).

    dL/dx = dL/dy * 2 (x - mean(x)) / (n - correction)
    (the mean's own dependence on x drops out because sum(x - mean) = 0). When
    n == correction the output is nan or inf and so is the gradient, as PyTorch.
    float16: the gradient is computed in float32 and rounded at the end (as PyTorch's half
    kernels): x - mean(x) of values near 65504 and its product with 2 dL/dy overflow float16.
    Saves: x (the centered values are recomputed, so that double backward sees x).
    """

    @staticmethod
    def forward(ctx, x, axis=None, correction=1, keepdims=False):
        ctx.axis, ctx.correction, ctx.keepdims = axis, correction, keepdims
        ctx.save_for_backward(x)
        return _var_values(x, axis, correction, keepdims, "var")

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        n = _count(x.shape, ctx.axis)
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        half = isinstance(x, np.ndarray) and x.dtype == np.float16
        if half:   # x - mean(x) of 65504s and its product overflow float16
            x, grad = x.astype(np.float32), np.asarray(grad, np.float32)
        centered = x - wide_mean(x, axis=ctx.axis, keepdims=True)
        dof = n - ctx.correction
        # NOTE: a Python float division by 0 raises; IEEE's inf gives torch's nan/inf instead
        dx = grad * centered * (2.0 / dof if dof != 0 else float("inf"))
        return dx.astype(np.float16) if half else dx

    @staticmethod
    def cost(call):
        """mean(x) (n), x - mean n, square n, sum n - m, / (n - correction) m: 4n; backward
        x - mean(x) recomputed (2n), dL/dy * 2 / (n - correction) (m), times it (n): 3n + m."""
        return _reduction_cost(call, lambda n, m, r: _centered_flops(n, m, r) + n + r + m,
                               lambda n, m, r: _centered_flops(n, m, r) + m + n, "4*n")


def power_of_two_scale(x, axis, keepdims=True):
    """Per reduced group, the power of two nearest above max |x| (1 where that is 0 or not
    finite): x / scale lies in (-1, 1], exactly (dividing by a power of two only moves the
    exponent), so squares and sums of it cannot overflow, nor underflow while |x| is normal.
    Where that power of two is not representable (max |x| >= finfo.max / 2, the scale would
    be inf) it is the largest one, 2^(maxexp - 1), and |x / scale| < 2.

    Example:
        >>> import numpy as np
        >>> power_of_two_scale(np.array([[3e20, -1.0], [0.0, 0.0]], np.float32), (1,))
        array([[5.902958e+20],
               [1.000000e+00]], dtype=float32)
        >>> power_of_two_scale(np.array([np.finfo(np.float32).max]), (0,))
        array([1.7014118e+38], dtype=float32)
    """
    peak = np.max(np.abs(x), axis=axis, keepdims=keepdims, initial=0)
    _, exponent = np.frexp(peak)
    if peak.dtype.kind == "f":
        exponent = np.minimum(exponent, np.finfo(peak.dtype).maxexp - 1)
    scale = np.ldexp(np.ones_like(peak), exponent)
    return np.where((peak > 0) & np.isfinite(peak), scale, 1).astype(x.dtype, copy=False)


def _imprecise(stat, x):
    """Per group, True where a sum of squares (or of powers) ``stat`` computed in x's dtype
    cannot be trusted: it is inf or nan (a square overflowed: inputs beyond ~1e19 in
    float32; a row holding inf or nan is redone too and gives the same inf or nan), or it is
    below finfo.tiny (some squares were subnormal and lost digits, or flushed to 0; a
    subnormal square's error is at most finfo.tiny * eps / 2, so above finfo.tiny the sum is
    accurate; a constant row, 0, is redone and stays 0). Such groups are recomputed on x / s
    with s = power_of_two_scale(x). A check on one value per group: ordinary inputs pay
    nothing."""
    if x.dtype.kind != "f":
        return np.zeros(np.shape(stat), dtype=bool)
    return ~(np.asarray(stat) >= np.finfo(x.dtype).tiny) | np.isinf(stat)


def _var_values(x, axis, correction, keepdims, op):
    """np.var with wide_sum's accumulation rule. Without degrees of freedom (n <= correction)
    it is the sum of squares divided by 0 (inf, or nan for a sum of 0 or no elements), with a
    warning that names the op, as PyTorch's (not NumPy's "Degrees of freedom <= 0")."""
    acc = _accumulator(x)
    n = _count(x.shape, axis)
    dof = n - correction
    if dof > 0:
        y = np.var(x, axis=axis, ddof=correction, keepdims=keepdims, dtype=acc)
    else:
        warnings.warn(f"{op}: degrees of freedom <= 0 (a reduction over {n} elements of shape "
                      f"{x.shape} with correction {correction}); the result is inf or nan",
                      UserWarning, stacklevel=2)
        centered = x - wide_mean(x, axis=axis, keepdims=True)
        total = wide_sum(centered * centered, axis=axis, keepdims=keepdims)
        y = total / np.float64(0.0) if n else total * np.nan   # PyTorch's dof = max(0, dof)
    return np.asarray(y).astype(x.dtype, copy=False)


class Std(Function):
    """y = sqrt(var(x, axis, correction)), the standard deviation.

    dL/dx = dL/dy * (x - mean(x)) / ((n - correction) * y), taken as 0 where y == 0 (every
    element of the group equal: the limit along x = c + t*d is |d|-dependent, and 0 is
    PyTorch's choice, so that a constant row, a padded row, does not give nan).
    Forward: for the groups whose var overflows (float32 inputs beyond ~1e19) or underflows
    (below finfo.tiny: inputs near finfo.tiny, whose squares are subnormal or 0), see
    _imprecise, y is computed again as s * sqrt(var(x / s)) with s = power_of_two_scale(x):
    the standard deviation is representable although its square is not. Other groups keep
    the one-pass value (a check of one value per group).
    Saves: x and y.
    """

    @staticmethod
    def forward(ctx, x, axis=None, correction=1, keepdims=False):
        ctx.axis, ctx.correction, ctx.keepdims = axis, correction, keepdims
        var = _var_values(x, axis, correction, keepdims, "std")
        y = np.sqrt(var)
        if _count(x.shape, axis) > correction and x.size:
            redo = _imprecise(var, x)
            if redo.any():
                scale = power_of_two_scale(x, axis, keepdims)
                scaled = np.sqrt(_var_values(x / power_of_two_scale(x, axis), axis,
                                             correction, keepdims, "std")) * scale
                y = np.where(redo, scaled, y).astype(x.dtype, copy=False)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        dof = _count(x.shape, ctx.axis) - ctx.correction
        centered = x - wide_mean(x, axis=ctx.axis, keepdims=True)
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        y = _unsqueeze_reduced(y, ctx.axis, ctx.keepdims)
        per_unit = np.where(y == 0, 0.0, grad / (y * dof if dof != 0 else y * 0.0))
        return per_unit * centered

    @staticmethod
    def cost(call):
        """var (4n) and m square roots: 4n + m (the rescaled pass after an overflow guards the
        numerics: not counted); backward x - mean(x) recomputed (2n), (n - correction) * y,
        dL/dy / (.) and the select where y == 0 (3m), times x - mean (n): 3n + 3m."""
        return _reduction_cost(call, lambda n, m, r: _centered_flops(n, m, r) + n + r + 2 * m,
                               lambda n, m, r: _centered_flops(n, m, r) + 3 * m + n,
                               "4*n + m")


class Norm(Function):
    """y = (sum |x|^p over axis)^(1/p), the vector p-norm; p = 2, 1, inf, -inf, 0 (the
    count of non-zeros) or any other positive number.

        p = 2:       dL/dx = dL/dy * x / y
        p = 1:       dL/dx = dL/dy * sign(x)
        p = +-inf:   dL/dx = dL/dy * sign(x) * [|x| == y] / (number of ties)
        p = 0:       dL/dx = 0 (a count is piecewise constant)
        other p:     dL/dx = dL/dy * sign(x) |x|^(p-1) / y^(p-1)   (0 at x = 0, also for p < 1)
    each taken as 0 where y == 0 (all of the group zero: PyTorch's subgradient, so that the
    norm of a zero vector does not give nan).
    p = 1: sign(x) is PyTorch's sgn, 0 at a NaN entry; p = +-inf: a group holding NaN has no
    peak (|x| == y nowhere) and gets 0, as PyTorch.
    Forward: the sum of |x|^p is computed in x's dtype; for the groups where it overflowed or
    underflowed (_imprecise: inf, nan or below finfo.tiny) p-norms are computed again on
    x / s with s = power_of_two_scale(x), then multiplied by s, so that |x|^p neither
    overflows nor underflows when the norm itself is representable (np.linalg.norm, like
    PyTorch, gives inf for a float32 vector of 1e20s). Other groups keep the one-pass value.
    Saves: x and y.
    """

    @staticmethod
    def forward(ctx, x, ord=2.0, axis=None, keepdims=False):  # noqa: A002 - NumPy's name
        ctx.ord, ctx.axis, ctx.keepdims = ord, axis, keepdims
        if ord == 0:
            y = np.sum(x != 0, axis=axis, keepdims=keepdims).astype(x.dtype)
        elif ord in (np.inf, -np.inf):
            pick = np.max if ord > 0 else np.min
            y = pick(np.abs(x), axis=axis, keepdims=keepdims)
        else:
            total = _power_sum(x, ord, axis)
            y = total ** (1.0 / ord)
            redo = _imprecise(total, x)
            if redo.any():
                scale = power_of_two_scale(x, axis)
                y = np.where(redo, _power_sum(x / scale, ord, axis) ** (1.0 / ord) * scale, y)
            y = np.asarray(y if keepdims else np.squeeze(y, axis=axis)).astype(x.dtype,
                                                                               copy=False)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        p = ctx.ord
        if p == 0:
            return np.zeros(x.shape)  # the engine casts it to x's dtype
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        y = _unsqueeze_reduced(y, ctx.axis, ctx.keepdims)
        if p in (np.inf, -np.inf):
            is_peak = np.abs(x) == y
            ties = np.sum(is_peak, axis=ctx.axis, keepdims=True)
            return grad * sgn(x) * is_peak / np.maximum(ties, 1)   # no peak (NaN): 0
        if p == 1:
            return grad * sgn(x)
        per_unit = np.where(y == 0, 0.0, grad / y ** (p - 1))
        if p == 2:
            return per_unit * x
        return per_unit * np.where(x == 0, 0.0, np.sign(x) * np.abs(x) ** (p - 1))

    @staticmethod
    def cost(call):
        """The formula of the docstring for the order p (the power-of-two scaling guards the
        numerics: not counted), r = n - m the adds of a sum:
            p = 0:    x != 0, their count: n + r; backward 0
            p = inf:  |x|, max: n + r; backward |x|, the ties (r), dL/dy / ties (m), sign(x),
                      the product and the select where |x| == y: 4n + r + m
            p = 1:    |x|, sum: n + r; backward sign(x) and the product: 2n
            p = 2:    x * x, sum, sqrt: n + r + m; backward dL/dy / y and the select where
                      y == 0 (2m), times x: n + 2m
            other p:  |x|, ^p, sum, ^(1/p): 2n + r + m; backward y^(p-1), dL/dy / (.), the
                      select where y == 0 (3m), then |x|, ^(p-1), sign, product and the
                      select where x == 0 (5n), times the group factor (n): 6n + 3m"""
        p = call_arg(call, 1, "ord", 2.0)
        if p == 0:
            return _reduction_cost(call, lambda n, m, r: n + r, lambda n, m, r: 0, "p=0: 2*n - m")
        if p in (np.inf, -np.inf):
            return _reduction_cost(call, lambda n, m, r: n + r,
                                   lambda n, m, r: 4 * n + r + m, f"p={p:g}: 2*n - m")
        if p == 1:
            return _reduction_cost(call, lambda n, m, r: n + r, lambda n, m, r: 2 * n,
                                   "p=1: 2*n - m")
        if p == 2:
            return _reduction_cost(call, lambda n, m, r: n + r + m,
                                   lambda n, m, r: n + 2 * m, "p=2: 2*n")
        return _reduction_cost(call, lambda n, m, r: 2 * n + r + m,
                               lambda n, m, r: 6 * n + 3 * m, f"p={p:g}: 3*n")


def _power_sum(x, p, axis):
    """sum |x|^p over axis (kept as size-1 axes), in x's dtype."""
    power = x * x if p == 2 else np.abs(x) ** p
    return wide_sum(power, axis=axis, keepdims=True)


class MaxDim(Function):
    """(values, indices) = max(x, axis) along one axis.

    dL/dx = dL/dvalues placed at the argmax position of each slice, 0 elsewhere.
    Saves: a boolean one-hot mask of x's shape marking the winners (a constant).
    Outputs: values (differentiable), indices (int64, not differentiable).
    """

    pick = staticmethod(np.argmax)

    @classmethod
    def forward(cls, ctx, x, axis, keepdims=False):
        if x.shape[axis] == 0:
            raise ValueError(f"{cls.__name__}: cannot reduce an empty axis {axis} of shape "
                             f"{x.shape}")
        indices = np.expand_dims(cls.pick(x, axis=axis), axis)
        values = np.take_along_axis(x, indices, axis)
        if ctx.needs_input_grad[0]:
            along_axis = [-1 if a == axis else 1 for a in range(x.ndim)]
            positions = np.arange(x.shape[axis]).reshape(along_axis)
            ctx.winner = positions == indices
        ctx.axis, ctx.keepdims = axis, keepdims
        if not keepdims:
            values, indices = values.squeeze(axis), indices.squeeze(axis)
        return values, indices.astype(np.int64)

    @staticmethod
    def backward(ctx, grad_values, grad_indices):
        grad = _unsqueeze_reduced(grad_values, (ctx.axis,), ctx.keepdims)
        return grad * ctx.winner

    @staticmethod
    def cost(call):
        """n - m compares; backward dL/dvalues placed at the winners, as max pooling's scatter
        to the argmax: m."""
        return _reduction_cost(call, lambda n, m, r: r, lambda n, m, r: m, "n - m")


class MinDim(MaxDim):
    """(values, indices) = min(x, axis); backward as MaxDim with the argmin positions."""

    pick = staticmethod(np.argmin)


class Amax(Function):
    """y = max(x, axis) over one or more axes (or all), without indices.

    dL/dx = dL/dy * [x == y] / (number of ties), i.e. tied maxima share the gradient
    evenly (PyTorch's convention for amax and full max()).
    Saves: the tie-share weights of x's shape (a constant).
    """

    reduce = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx, x, axis=None, keepdims=False):
        if x.size == 0 and (axis is None or any(x.shape[a] == 0 for a in axis)):
            raise ValueError(f"{cls.__name__}: cannot reduce an empty axis of shape {x.shape}")
        y = cls.reduce(x, axis=axis, keepdims=True)
        if ctx.needs_input_grad[0]:
            is_max = x == y
            ctx.share = is_max / np.sum(is_max, axis=axis, keepdims=True).astype(x.dtype)
        ctx.axis, ctx.keepdims = axis, keepdims
        return y if keepdims else np.squeeze(y, axis=axis)

    @staticmethod
    def backward(ctx, grad_out):
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return grad * ctx.share

    @staticmethod
    def cost(call):
        """n - m compares; backward (the tie shares, which the forward computes when dL/dx is
        needed, included) the ties per group (n - m), dL/dy / ties (m) and the select where
        x == y (n): 2n."""
        return _reduction_cost(call, lambda n, m, r: r, lambda n, m, r: n + r + m, "n - m")


class Amin(Amax):
    """y = min(x, axis); ties share the gradient evenly, as Amax."""

    reduce = staticmethod(np.min)


class LogSumExp(Function):
    """y = log(sum(exp(x), axis)), computed as m + log(sum(exp(x - m))) with m = max(x).

    dL/dx = dL/dy * exp(x - y) = dL/dy * softmax(x, axis). A row of all -inf has y = -inf
    and a zero gradient (y is taken as 0 in exp(x - y), so exp(-inf) = 0, never -inf + inf).
    Saves: x and y.
    """

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)  # -inf (then 0) when empty
        m = np.where(np.isfinite(m), m, 0.0).astype(x.dtype, copy=False)
        y = np.log(wide_sum(np.exp(x - m), axis=axis, keepdims=True)) + m  # -inf: a -inf row
        if not keepdims:
            y = np.squeeze(y, axis=axis)
        ctx.axis, ctx.keepdims = axis, keepdims
        ctx.save_for_backward(x, y)
        # only when there is an all -inf row: y with its -inf replaced by 0, so that its
        # exp(x - y) is 0, not NaN (a constant: the second derivative then treats y as fixed)
        dead = y == -np.inf
        ctx.safe_y = np.where(dead, 0.0, y).astype(y.dtype, copy=False) if dead.any() else None
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        y = y if ctx.safe_y is None else ctx.safe_y
        grad = _unsqueeze_reduced(grad_out, ctx.axis, ctx.keepdims)
        return grad * np.exp(x - _unsqueeze_reduced(y, ctx.axis, ctx.keepdims))

    @staticmethod
    def cost(call):
        """max (n - m), x - max (n), exp (n), sum (n - m), log and + max (2m): 4n (the select
        of a finite max guards the numerics: not counted); backward x - y, exp and the
        product: 3n."""
        return _reduction_cost(call, lambda n, m, r: 2 * n + 2 * r + 2 * m,
                               lambda n, m, r: 3 * n, "4*n")
