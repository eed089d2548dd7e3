"""Worked example of a residual block y = x + F(x), F(x) = W2 ReLU(W1 x + b1) (the skip
connection of ResNet and of the Transformer's sublayers, built from nn.functional.linear and
relu): dL/dx is the sum of the identity path's dL/dy and the branch's W1^T dL/dz, each shown
on its own, then again through the block's Jacobian I + W2 diag(ReLU'(z)) W1."""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []


def _shape(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def _check_weights(x, W1, W2):
    d, h = x.shape[0], W1.shape[0]
    if W1.shape[1] != d:
        raise ExplainError(f"explain residual: W1 has {W1.shape[1]} columns (dimension 1 of "
                           f"W1, shape {_shape(W1.shape)}) but x has {d} entries")
    if W2.shape != (d, h):
        raise ExplainError(f"explain residual: W2 has shape {_shape(W2.shape)}, but F(x) must "
                           f"have x's {d} entries to be added to x and W1 gives {h} hidden "
                           f"units: W2 must be {d}x{h}")


def _identity_term(g):
    """The skip path's part of dL/dx: y = x + F(x) has dy/dx = I along it."""
    return g.copy()


@explains("residual", family="residual", aliases=("residual_block", "skip_connection"),
          summary="residual block y = x + W2 ReLU(W1 x + b1): the skip path adds dL/dy to dL/dx",
          options=(Option("hidden", int, 3, "hidden units: rows of W1 (when W1 is not given)"),
                   Option("branch", str, "linear_relu", "the branch F(x) = W2 ReLU(W1 x + b1)",
                          ("linear_relu",))))
def residual(ex, hidden, branch):
    from retrograd.nn import functional as F

    if hidden < 1:
        raise ExplainError(f"explain residual: hidden must be >= 1, got {hidden}")
    small = {"low": -2, "high": 2}
    x = ex.input("x", (3,), primary=True, doc="input (d,)", **small)
    W1 = ex.input("W1", (hidden, x.shape[0]), doc="first weight (h, d)", **small)
    b1 = ex.input("b1", (W1.shape[0],), integer=False, **small,
                  doc="first bias (h,); two decimals keep z off ReLU's kink at 0")
    W2 = ex.input("W2", (x.shape[0], W1.shape[0]), doc="second weight (d, h)", **small)
    _check_weights(x, W1, W2)
    (shape,) = ex.reference(lambda x, W1, b1, W2: x + F.linear(F.relu(F.linear(x, W1, b1)), W2),
                            "x", "W1", "b1", "W2")
    ex.section("Forward")
    z = ex.show("z", W1 @ x + b1, "W1 x + b1")
    a = ex.show("a", np.maximum(z, 0.0), "ReLU(z) = max(0, z)")
    branch_out = ex.show("F(x)", W2 @ a, "W2 a")
    ex.output("y", x + branch_out, "x + F(x)  (the skip adds x back)")
    ex.section("Backward")
    g = ex.upstream(shape, "dL/dy", aliases=("dY",))
    ex.say("The sum y = x + F(x) hands dL/dy unchanged to both of its terms: to x directly "
           "(the identity path) and to the branch output F(x).")
    identity = ex.show("dL/dx (identity path)", _identity_term(g), "dL/dy")
    ex.gradient("W2", np.outer(g, a), "dL/dy a^T  (outer product)")
    da = ex.show("dL/da", W2.T @ g, "W2^T dL/dy")
    relu_slope = ex.show("ReLU'(z)", (z > 0).astype(np.float64),
                         "1 where z > 0, else 0 (0 at the kink z = 0, as in PyTorch)")
    dz = ex.show("dL/dz", da * relu_slope, "dL/da * ReLU'(z)  (elementwise)")
    if not relu_slope.any():
        ex.say("Every hidden unit is off (z <= 0): the branch passes no gradient back, and "
               "dL/dx below is the identity path's alone, which is what the skip is for.")
    ex.gradient("W1", np.outer(dz, x), "dL/dz x^T")
    ex.gradient("b1", dz, "dL/dz")
    through_branch = ex.show("dL/dx (branch)", W1.T @ dz, "W1^T dL/dz")
    ex.gradient("x", identity + through_branch, "dL/dy + W1^T dL/dz  (identity + branch)")
    _jacobian_view(ex, x, g, W1, W2, relu_slope)


def _jacobian_view(ex, x, g, W1, W2, relu_slope):
    ex.section("The same dL/dx through the block's Jacobian")
    jacobian = ex.show("dy/dx", np.eye(x.shape[0]) + W2 @ (relu_slope[:, None] * W1),
                       "I + W2 diag(ReLU'(z)) W1")
    ex.gradient("x", jacobian.T @ g, "(dy/dx)^T dL/dy", name="dL/dx (via the Jacobian)")
    ex.say("Why the skip keeps gradients alive: through a stack of n blocks, dL/dx is dL/dy "
           "multiplied by n such Jacobians, each I + (the branch's Jacobian). When the "
           "branches' Jacobians are small (dead ReLUs, small weights), a plain stack's product "
           "of them shrinks geometrically with depth and the gradient vanishes; here every "
           "factor keeps its I, so dL/dy still reaches the first block through the identity "
           "paths.")
