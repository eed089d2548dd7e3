"""Worked example of the vector chain rule and the total derivative in a two-layer network:
a hidden unit reaches the loss through every output, so its gradient is a sum over those
paths; a last-layer weight reaches it through one output only."""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []


@explains("chain_rule", family="autograd", aliases=("total_derivative",),
          summary="the vector chain rule and the total derivative through a two-layer network, "
                  "L = 1/2 ||W2 ReLU(W1 x + b1) + b2 - t||^2",
          options=(Option("hidden", int, 2, "hidden units"),
                   Option("outputs", int, 2, "output units")))
def chain_rule(ex, hidden, outputs):
    from retrograd.nn import functional as F

    for name, value in (("hidden", hidden), ("outputs", outputs)):
        if value < 1:
            raise ExplainError(f"explain chain_rule: {name} must be >= 1, got {value}")
    x = ex.input("x", (2,), primary=True, low=1, high=3, doc="input vector")
    if x.ndim != 1:
        raise ExplainError(f"explain chain_rule: x must be a vector, got shape "
                           f"{'x'.join(map(str, x.shape))}")
    W1 = ex.input("W1", (hidden, x.shape[0]), low=-1, high=2, doc="layer 1 weight")
    b1 = ex.input("b1", (W1.shape[0],), low=0, high=1, doc="layer 1 bias")
    W2 = ex.input("W2", (outputs, W1.shape[0]), low=-2, high=2, doc="layer 2 weight")
    b2 = ex.input("b2", (W2.shape[0],), low=-1, high=1, doc="layer 2 bias")
    t = ex.input("t", (W2.shape[0],), differentiable=False, doc="target")
    x, W1, b1 = ex.redraw_while(lambda x, W1, b1: np.all(W1 @ x + b1 <= 0), "x", "W1", "b1")

    def network(x, W1, b1, W2, b2, t):
        y = F.linear(F.relu(F.linear(x, W1, b1)), W2, b2)
        return 0.5 * F.mse_loss(y, t, reduction="sum")

    ex.reference(network, "x", "W1", "b1", "W2", "b2", "t")
    ex.upstream((), "dL/dL", value=1.0)
    ex.section("Forward")
    s = ex.show("s", W1 @ x + b1, "W1 x + b1")
    h = ex.show("h", np.maximum(s, 0), "ReLU(s)")
    y = ex.show("y", W2 @ h + b2, "W2 h + b2")
    ex.output("L", 0.5 * np.sum((y - t) ** 2), "1/2 sum_k (y_k - t_k)^2")
    ex.section("Backward: the last layer (plain chain rule)")
    dy = ex.show("dL/dy", y - t, "y - t")
    ex.gradient("W2", np.outer(dy, h), "dL/dy h^T: W2[k, i] reaches L through y_k alone")
    ex.gradient("b2", dy, "dL/dy")
    ex.section("Backward: a hidden unit (total derivative)")
    ex.say("h_i feeds every output y_k, so its derivative sums over those paths: "
           "dL/dh_i = sum_k dL/dy_k * dy_k/dh_i = sum_k dL/dy_k * W2[k, i].")
    paths = ex.show("dL/dy_k * W2[k, i]", dy[:, None] * W2, "one row per output k, one "
                    "column per hidden unit i: the terms of the sum")
    dh = ex.show("dL/dh", paths.sum(axis=0), "the column sums = W2^T dL/dy")
    relu_grad = ex.show("dh/ds", (s > 0).astype(np.float64),
                        "diagonal of ReLU's Jacobian: 1 where s > 0, else 0")
    ds = ex.show("dL/ds", dh * relu_grad, "dL/dh * dh/ds")
    ex.gradient("W1", np.outer(ds, x), "dL/ds x^T")
    ex.gradient("b1", ds, "dL/ds")
    ex.gradient("x", W1.T @ ds, "W1^T dL/ds")
    ex.say("In matrix form the whole backward is one product of transposed Jacobians applied "
           "to a vector: dL/dx = W1^T diag(dh/ds) W2^T (y - t), evaluated right to left so "
           "that no Jacobian is ever formed.")
