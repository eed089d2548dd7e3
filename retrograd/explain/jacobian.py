"""Worked example of the Jacobian view of backpropagation (retrograd/autograd/functional.py):
the Jacobian of a layer, how large it would be for a real layer and minibatch, and the
vector-Jacobian product that backward computes instead, without ever building it."""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = ["jacobian_size"]


def jacobian_size(in_features, out_features, batch=1):
    """(rows, columns, entries) of the Jacobian of a dense layer in_features -> out_features
    applied to a minibatch of ``batch`` vectors, taken as one function of all the inputs.

    Example:
        >>> jacobian_size(4096, 2048, 100)
        (204800, 409600, 83886080000)
    """
    rows, columns = out_features * batch, in_features * batch
    return rows, columns, rows * columns


def _size_sentence(in_features, out_features, batch):
    rows, columns, entries = jacobian_size(in_features, out_features, batch)
    gigabytes = entries * 4 / 1e9
    return (f"For a layer {in_features} -> {out_features} on a minibatch of {batch}, dy/dx "
            f"would be {rows:,} x {columns:,} = {entries:,} numbers ({gigabytes:,.1f} GB in "
            f"float32). Backward never builds it: the VJP needs only dL/dy "
            f"({rows:,} numbers) and what the forward saved, and returns dL/dx "
            f"({columns:,} numbers).")


@explains("jacobian", family="autograd", aliases=("vjp",),
          summary="the Jacobian a layer never builds, and the vector-Jacobian product "
                  "backward computes instead",
          options=(Option("in_features", int, 4096, "input size of the layer sized up"),
                   Option("out_features", int, 2048, "output size of the layer sized up"),
                   Option("batch", int, 100, "minibatch of the layer sized up")))
def jacobian(ex, in_features, out_features, batch):
    from retrograd.nn import functional as F

    for name, value in (("in_features", in_features), ("out_features", out_features),
                        ("batch", batch)):
        if value < 1:
            raise ExplainError(f"explain jacobian: {name} must be >= 1, got {value}")
    x = ex.input("x", (3,), primary=True, low=1, high=3, doc="input vector")
    if x.ndim != 1:
        raise ExplainError(f"explain jacobian: x must be a vector, got shape "
                           f"{'x'.join(map(str, x.shape))}")
    W = ex.input("W", (2, x.shape[0]), low=-1, high=2, doc="weight (out, in)")
    if W.shape[1] != x.shape[0]:
        raise ExplainError(f"explain jacobian: W has {W.shape[1]} columns (dimension 1) but x "
                           f"has {x.shape[0]} entries")
    x, W = ex.redraw_while(lambda x, W: np.all(W @ x <= 0), "x", "W")  # show a live ReLU
    (out_shape,) = ex.reference(lambda x, W: F.relu(F.linear(x, W)), "x", "W")
    ex.say("f(x) = ReLU(W x): a dense layer and an activation, each a vector function. "
           "The chain rule for vectors multiplies their Jacobians: dy/dx = dy/ds ds/dx.")
    ex.section("Forward")
    s = ex.show("s", W @ x, "W x")
    ex.output("y", np.maximum(s, 0), "ReLU(s)")
    ex.section("The Jacobians, built (only because this example is tiny)")
    ds_dx = ex.show("ds/dx", W, "W  (entry [i, j] = ds_i/dx_j)")
    relu_grad = (s > 0).astype(np.float64)
    dy_ds = ex.show("dy/ds", np.diag(relu_grad), "diag(1 where s > 0): ReLU's Jacobian is "
                    "diagonal, each y_i depends on s_i alone")
    J = ex.show("dy/dx", dy_ds @ ds_dx, "dy/ds @ ds/dx")
    ex.section("Backward")
    g = ex.upstream(out_shape, "dL/dy", aliases=("dY",))
    ex.gradient("x", J.T @ g, "(dy/dx)^T dL/dy, with the Jacobian", name="dL/dx (via J)")
    ex.say("The same product without any Jacobian: each backward multiplies by its own "
           "Jacobian's transpose implicitly.")
    ds = ex.show("dL/ds", g * relu_grad, "dL/dy * 1[s > 0]  (elementwise: the diagonal)")
    ex.gradient("x", W.T @ ds, "W^T dL/ds  (the VJP)", name="dL/dx (VJP)")
    ex.gradient("W", np.outer(ds, x), "dL/ds x^T")
    ex.section("Sizes")
    ex.say(f"Here dy/dx has {J.size} entries. " + _size_sentence(in_features, out_features,
                                                                   batch))
