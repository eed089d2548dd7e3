"""Scans along one axis: the running sum (cumsum) and the running product (cumprod).

``axis`` is a non-negative int; callers normalize it. Lanes accumulate in a wider dtype and
the result is rounded back to the input's: float16 and bfloat16 in float32 (a float16 running
sum of 0.1s stalls at 256), float32 in float64. That is PyTorch's CPU accumulate type, and it
decides values: with float32 accumulation a running sum of [max, 0.75 max, -max] overflows to
inf and stays there, PyTorch's (and retrograd's) comes back to 0.75 max. The float64 copy
makes a float32 scan read and write twice the bytes: scans are not in the hot path of
training (docs/pytorch-compatibility.md).
"""

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, shape_text
from retrograd.autograd.function import Function
from retrograd.dtypes import LOW_PRECISION

__all__ = ["Cumsum", "Cumprod", "cumulative_sum"]


def _accumulator(x):
    if x.dtype in LOW_PRECISION:
        return np.float32
    return np.float64 if x.dtype == np.float32 else None


def cumulative_sum(x, axis, reverse=False):
    """y_i = sum over j <= i of x_j along axis (j >= i when reverse), in x's dtype."""
    lane = np.flip(x, axis) if reverse else x
    y = np.cumsum(lane, axis=axis, dtype=_accumulator(x)).astype(x.dtype, copy=False)
    return np.flip(y, axis) if reverse else y


def _cumsum(v, axis, reverse):
    """cumulative_sum for arrays; the recorded op for Tensors (create_graph)."""
    if isinstance(v, np.ndarray):
        return cumulative_sum(v, axis, reverse)
    return Cumsum.apply(v, axis=axis, reverse=reverse)


def _cumprod(v, axis):
    if isinstance(v, np.ndarray):
        return np.cumprod(v, axis=axis, dtype=_accumulator(v)).astype(v.dtype, copy=False)
    return Cumprod.apply(v, axis=axis)


def _scan_cost(call, name, forward_per, backward_per, formula):
    """A scan of x (n elements in lanes of m along axis): ``forward_per`` and ``backward_per``
    give the FLOPs from (n, lanes)."""
    x = call.inputs[0]
    axis = call_arg(call, 1, "axis")
    m = x.shape[axis] if x.shape else 1
    lanes = x.size // m if m else 0
    backward = backward_per(x.size, lanes) if call.needs(0) else 0
    return Cost(forward_per(x.size, lanes), backward,
                f"{name} x({shape_text(x)}) along axis {axis}: {formula}")


class Cumsum(Function):
    """y_i = x_0 + x_1 + ... + x_i along axis (reverse: y_i = x_i + ... + x_(m-1)); x, y:
    (*). Each x_j appears in every y_i with i >= j, with weight 1, so

    dL/dx_j = sum over i >= j of dL/dy_i   (a reverse running sum of dL/dy)
    and for reverse=True the forward running sum. The backward is this op with the other
    direction, so it is recorded under create_graph.
    Saves: nothing (the axis and the direction are attributes).
    """

    @staticmethod
    def forward(ctx, x, axis, reverse=False):
        ctx.axis, ctx.reverse = axis, reverse
        return cumulative_sum(x, axis, reverse)

    @staticmethod
    def backward(ctx, grad_out):
        return _cumsum(grad_out, ctx.axis, not ctx.reverse)

    @staticmethod
    def cost(call):
        """m - 1 adds per lane of length m: n - lanes; backward the same reverse scan."""
        return _scan_cost(call, "cumsum", lambda n, lanes: n - lanes, lambda n, lanes: n - lanes,
                          "n - lanes")


class Cumprod(Function):
    """y_i = x_0 * x_1 * ... * x_i along axis; x, y: (*).

    dy_i/dx_k = prod over j <= i, j != k of x_j for i >= k (0 for i < k), so
    dL/dx_k = sum over i >= k of dL/dy_i * prod_{j <= i, j != k} x_j.
    With no zero in the lane, prod_{j <= i, j != k} x_j = y_i / x_k:
        dL/dx = revcumsum(dL/dy * y) / x          (revcumsum: sum over i >= k)
    With zeros, let z be the first zero of the lane:
        k < z: the same quotient (x_k != 0, and y_i = 0 for i >= z drops those terms);
        k = z: dL/dx_z = sum over i >= z of dL/dy_i * P_i, with P = cumprod(x with x_z
               replaced by 1): revcumsum(dL/dy * P) at z;
        k > z: 0 (every product with i >= k still holds x_z = 0).
    This is exact with any number of zeros (the quotient divides by x only where it is used,
    1 elsewhere, so no inf/nan appears). Under create_graph it is not the form to
    differentiate: the masks are constants, but dL/dx_k for k > z is 0 only at x_z = 0, its
    derivative in x_z is not. So there, with zeros, the gradient is computed from the
    products themselves (as PyTorch does): C[k, i] = prod over j <= i, j != k of x_j, one
    cumprod of an (m, m) matrix per lane (x with its k-th entry replaced by 1 in row k), and
    dL/dx_k = sum over i >= k of dL/dy_i * C[k, i]: O(m^2) work and memory, differentiable
    again. Without zeros the quotient form is used in both cases.
    Saves: x and y; when x has zeros, two boolean masks of x's shape (before the first zero
    of the lane, at it; constants).
    """

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis, ctx.first_zero = axis, None
        if ctx.needs_input_grad[0]:
            _mark_first_zero(ctx, x, axis)
        y = _cumprod(x, axis)
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, y = ctx.saved_tensors
        axis = ctx.axis
        if ctx.first_zero is None:
            return _cumsum(grad_out * y, axis, True) / x
        if not isinstance(grad_out, np.ndarray):
            return products_gradient(x, grad_out, axis)
        before, first_zero = ctx.before, ctx.first_zero
        quotient = _cumsum(grad_out * y, axis, True) / np.where(before, x, 1.0)
        at_zero = _cumsum(grad_out * _cumprod(np.where(first_zero, 1.0, x), axis), axis, True)
        return np.where(before, quotient, np.where(first_zero, at_zero, 0.0))

    @staticmethod
    def cost(call):
        """m - 1 multiplies per lane: n - lanes; backward (lanes without zeros) dL/dy * y,
        the reverse sum and the division: 3n - lanes. (A lane with zeros also costs a second
        cumprod and reverse sum and the selects: about 5n more; the shapes cannot tell.)"""
        return _scan_cost(call, "cumprod", lambda n, lanes: n - lanes,
                          lambda n, lanes: 3 * n - lanes, "n - lanes")


def products_gradient(x, grad_out, axis):
    """dL/dx_k = sum over i >= k of dL/dy_i * prod_{j <= i, j != k} x_j, from the (m, m)
    products of each lane (Cumprod's docstring): for arrays or Tensors (create_graph)."""
    lanes, g = np.swapaxes(x, axis, -1), np.swapaxes(grad_out, axis, -1)   # (..., m)
    m = lanes.shape[-1]
    rows = np.where(np.eye(m, dtype=bool), 1.0, np.expand_dims(lanes, -2))   # [.., k, j]
    products = _cumprod(rows, rows.ndim - 1)          # [..., k, i]: prod_{j <= i, j != k} x_j
    upper = np.triu(np.ones((m, m), dtype=bool))      # i >= k
    grad = np.sum(np.where(upper, products * np.expand_dims(g, -2), 0.0), axis=-1)
    return np.swapaxes(grad, axis, -1)


def _mark_first_zero(ctx, x, axis):
    """ctx.before: positions before the lane's first zero (the whole lane when it has none);
    ctx.first_zero: the first zero itself. Left None when x has no zero."""
    is_zero = x == 0
    if not is_zero.any():
        return
    first = np.argmax(is_zero, axis=axis, keepdims=True)
    has_zero = np.any(is_zero, axis=axis, keepdims=True)
    positions = np.arange(x.shape[axis]).reshape(
        [-1 if a == axis else 1 for a in range(x.ndim)])
    ctx.before = (positions < first) | ~has_zero
    ctx.first_zero = (positions == first) & has_zero
