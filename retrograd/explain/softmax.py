"""Worked examples of softmax and log-softmax over the last dimension (retrograd/ops/softmax.py):
the max subtracted for stability, the exponentials and their sum; backward once through the
softmax Jacobian J = diag(y) - y y^T, built row by row, and once in the cheap form
y * (dL/dy - sum(dL/dy * y)) that never builds it; log-softmax through the logsumexp."""

import numpy as np

from retrograd.explain import explains
from retrograd.explain._example import ExplainError

__all__ = []


def _logits(ex):
    """The input x: a vector (C,) or a matrix (N, C) of floats, one softmax per row."""
    x = ex.input("x", (3,), primary=True, max_ndim=2, integer=False, low=-2, high=2,
                 aliases=("X", "z"), doc="logits (C,) or (N, C), one softmax per row")
    if x.ndim == 0:
        raise ExplainError(f"explain {ex.op}: x is a single number; give a vector (C,) or a "
                           f"matrix (N, C): the {ex.op} runs over the last dimension")
    return x


def _stable_exponentials(ex, x):
    """Show the row max m, the shifted logits x - m (all <= 0, so exp never overflows) and
    exp(x - m); returns (m, x - m, exp(x - m), their row sums), the per-row ones with a
    trailing 1."""
    ex.say(("Each row separately (the last dim). " if x.ndim == 2 else "")
           + "First subtract the max m: the shifted logits are all <= 0, so exp cannot "
           "overflow, and the result is the same (the factor exp(-m) cancels).")
    m = ex.show("m", x.max(axis=-1), "max(x)")[..., None]
    shifted = ex.show("x - m", x - m)
    e = ex.show("e", np.exp(shifted), "exp(x - m)")
    s = ex.show("s", e.sum(axis=-1), "sum(e)")[..., None]
    return m, shifted, e, s


def _without_rounding_noise(v):
    """v with the float noise of a sum that cancels (|v| < 1e-12 of the largest entry) set to 0,
    so that a zero prints as 0 and not as -2.1e-17."""
    return np.where(np.abs(v) < 1e-12 * max(1.0, float(np.abs(v).max(initial=0))), 0.0, v)


def _say_if_constant(ex, g):
    """A constant dL/dy per row gives a zero dL/dx: say why, before it is printed."""
    if np.all(g == g[..., :1]):
        ex.say("dL/dy is the same for every entry of a row, and the rows of J sum to 0: "
               "dL/dx is 0 (pushing all of y up at once is impossible, they sum to 1).")


def _jacobian(y):
    """dy_i/dx_j = y_i ([i == j] - y_j) for every row: diag(y) - y y^T, shape (..., C, C)."""
    eye = np.eye(y.shape[-1])
    return y[..., :, None] * eye - y[..., :, None] * y[..., None, :]


def _jacobian_product(jacobian, g):
    """J^T dL/dy for every row (J is symmetric, so also J dL/dy)."""
    return np.einsum("...ij,...i->...j", jacobian, g)


@explains("softmax", family="softmax",
          summary="softmax over the last dim: y = exp(x - max) / sum(exp(x - max)); backward "
                  "through the Jacobian diag(y) - y y^T and without it")
def softmax(ex):
    from retrograd.nn import functional as F

    x = _logits(ex)
    (out_shape,) = ex.reference(lambda x: F.softmax(x, dim=-1), "x")
    rows = " (one per row)" if x.ndim == 2 else ""
    ex.section("Forward")
    *_, e, s = _stable_exponentials(ex, x)
    y = ex.output("y", e / s, "e / s" + rows)

    ex.section("Backward")
    g = ex.upstream(out_shape, "dL/dy", aliases=("dY", "dL/dp"))
    ex.say("Every y_i depends on every x_j: dy_i/dx_j = y_i ([i == j] - y_j), so a row's "
           "Jacobian is a C x C matrix:")
    jacobian = ex.show("J", _jacobian(y), "diag(y) - y y^T" + rows)
    ex.say("J is symmetric, and each of its rows sums to 0 (the y sum to 1, so adding the "
           "same number to every x changes nothing).")
    _say_if_constant(ex, g)
    ex.gradient("x", _without_rounding_noise(_jacobian_product(jacobian, g)),
                "J^T dL/dy" + rows, name="dL/dx (via J)")
    ex.say("The cheap form: J^T dL/dy = y * dL/dy - y (y . dL/dy), one dot product per row. "
           "It never builds J (O(C) work per row instead of O(C^2)); it is what retrograd's "
           "backward computes.")
    dot = ex.show("y . dL/dy", (g * y).sum(axis=-1), "sum(dL/dy * y)" + rows)
    ex.gradient("x", _without_rounding_noise(y * (g - dot[..., None])),
                "y * (dL/dy - y . dL/dy)", name="dL/dx (cheap form)")


@explains("log_softmax", family="softmax", aliases=("logsoftmax",),
          summary="log-softmax over the last dim: y = x - logsumexp(x); "
                  "dL/dx = dL/dy - softmax(x) * sum(dL/dy)")
def log_softmax(ex):
    from retrograd.nn import functional as F

    x = _logits(ex)
    (out_shape,) = ex.reference(lambda x: F.log_softmax(x, dim=-1), "x")
    rows = " (one per row)" if x.ndim == 2 else ""
    ex.section("Forward")
    m, shifted, _, s = _stable_exponentials(ex, x)
    log_s = ex.show("log s", np.log(s)[..., 0])[..., None]
    ex.show("logsumexp(x)", (m + log_s)[..., 0], "m + log s" + rows)
    y = ex.output("y", shifted - log_s, "x - logsumexp(x) = (x - m) - log s")
    ex.say("Never exp(x) itself: a logit of 1000 would overflow, x - m cannot; and (x - m) - "
           "log s keeps the digits that x - logsumexp(x) would cancel.")

    ex.section("Backward")
    g = ex.upstream(out_shape, "dL/dy", aliases=("dY",))
    ex.say("dy_i/dx_j = [i == j] - softmax(x)_j: every x_j also moves every y_i through "
           "logsumexp(x), by its softmax weight.")
    p = ex.show("softmax(x)", np.exp(y), "exp(y)")
    total = ex.show("sum(dL/dy)", g.sum(axis=-1))
    ex.gradient("x", g - p * total[..., None], "dL/dy - softmax(x) * sum(dL/dy)")
