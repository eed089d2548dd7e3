"""Worked examples of the dense layer (retrograd/ops/linalg.py, nn.functional.linear) and of
one gradient-descent step of 1-D linear regression (the course's first example)."""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError
from retrograd.explain._render import format_number

__all__ = []


@explains("linear", family="linear", aliases=("dense",),
          summary="dense layer y = W x + b (optionally followed by ReLU)",
          options=(Option("out_features", int, 2, "rows of W"),
                   Option("activation", str, "none", "apply ReLU after the layer",
                          ("none", "relu"))))
def linear(ex, out_features, activation):
    from retrograd.nn import functional as F

    if out_features < 1:
        raise ExplainError(f"explain linear: out_features must be >= 1, got {out_features}")
    x = ex.input("x", (2,), primary=True, max_ndim=2, doc="input (in,) or (N, in)",
                 aliases=("X",))
    n_in = x.shape[-1]
    W = ex.input("W", (out_features, n_in), doc="weight (out, in)")
    b = ex.input("b", (W.shape[0],), doc="bias (out,)")
    relu = activation == "relu"

    def reference(x, W, b):
        y = F.linear(x, W, b)
        return F.relu(y) if relu else y

    (out_shape,) = ex.reference(reference, "x", "W", "b")
    batched = x.ndim == 2
    ex.section("Forward")
    record = ex.show if relu else ex.output
    if batched:
        y = record("y", x @ W.T + b, "x W^T + b  (one row per sample)")
    else:
        y = record("y", W @ x + b, "W x + b")
    if relu:
        ex.output("y'", np.maximum(y, 0), "ReLU(y) = max(0, y)")
    ex.section("Backward")
    if relu:
        g_post = ex.upstream(out_shape, "dL/dy'", aliases=("dY",))
        mask = ex.show("ReLU'(y)", (y > 0).astype(np.float64), "1 where y > 0, else 0")
        g = ex.show("dL/dy", g_post * mask, "dL/dy' * ReLU'(y)  (elementwise)")
    else:
        g = ex.upstream(out_shape, "dL/dy", aliases=("dY",))
    if batched:
        ex.gradient("x", g @ W, "dL/dy W")
        ex.gradient("W", g.T @ x, "dL/dy^T x  (summed over the batch)")
        ex.gradient("b", g.sum(axis=0), "sum over the batch of dL/dy")
    else:
        ex.gradient("x", W.T @ g, "W^T dL/dy")
        ex.gradient("W", np.outer(g, x), "dL/dy x^T  (outer product)")
        ex.gradient("b", g, "dL/dy")


@explains("regression", family="linear", aliases=("gradient_descent", "gd_step"),
          summary="one gradient-descent step of 1-D linear regression, L = (w x + b - y)^2",
          options=(Option("lr", float, 0.01, "learning rate"),))
def regression(ex, lr):
    from retrograd.nn import functional as F

    x = ex.input("x", (), doc="input", primary=True)
    y = ex.input("y", (), doc="target", differentiable=False)
    w = ex.input("w", (), doc="weight")
    b = ex.input("b", (), doc="bias")
    ex.reference(lambda x, y, w, b: F.mse_loss(w * x + b, y), "x", "y", "w", "b")
    ex.upstream((), "dL/dL", value=1.0)
    ex.section("Forward")
    pred = ex.show("f", w * x + b, "w x + b")
    residual = ex.show("r", pred - y, "f - y")
    loss = ex.output("L", residual ** 2, "r^2")
    ex.section("Backward (chain rule: dL/dr = 2 r, dr/dw = x, dr/db = 1)")
    dr = ex.show("dL/dr", 2 * residual, "2 r")
    dw = ex.gradient("w", dr * x, "dL/dr * x")
    db = ex.gradient("b", dr, "dL/dr * 1")
    ex.gradient("x", dr * w, "dL/dr * w")
    ex.section(f"Update (learning rate {lr:g})")
    w_new = ex.show("w'", w - lr * dw, "w - lr dL/dw")
    b_new = ex.show("b'", b - lr * db, "b - lr dL/db")
    new_loss = ex.show("L'", (w_new * x + b_new - y) ** 2, "(w' x + b' - y)^2")
    change = f"The loss went from {format_number(loss)} to {format_number(new_loss)}"
    ex.say(change + ("." if new_loss < loss else ": the step was too large."))
