"""Worked example of flatten (retrograd/ops/shape.py's reshape, as torch.flatten): the dims
start_dim..end_dim merged into one, in row-major order; no number changes, so dL/dx is
dL/dy reshaped back to x's shape."""

import math

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []


def _dims(shape, start_dim, end_dim):
    """start_dim and end_dim as dims >= 0 of ``shape`` (a 0-d x counts as 1-d, as in
    torch.flatten), checked."""
    ndim = max(len(shape), 1)
    dims = []
    for name, dim in (("start_dim", start_dim), ("end_dim", end_dim)):
        if not -ndim <= dim < ndim:
            raise ExplainError(f"explain flatten: {name} {dim} is out of range for x of shape "
                               f"{_shape(shape)} (expected {-ndim} <= {name} < {ndim})")
        dims.append(dim % ndim)
    if dims[0] > dims[1]:
        raise ExplainError(f"explain flatten: start_dim {start_dim} (dim {dims[0]}) comes after "
                           f"end_dim {end_dim} (dim {dims[1]}) for x of shape {_shape(shape)}")
    return dims


def _shape(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def _flattened_shape(shape, start, end):
    shape = tuple(shape) or (1,)
    return shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]


def _index_map(shape, start, end):
    """'y[i0, k] = x[i0, i1, i2], k = i1*3 + i2': where each entry of x lands in y."""
    if not shape:
        return "y[0] = x: a scalar becomes a vector of one entry"
    names = [f"i{d}" for d in range(len(shape))]
    k = names[start]
    for d in range(start + 1, end + 1):
        k = f"({k})*{shape[d]} + {names[d]}" if d > start + 1 else f"{k}*{shape[d]} + {names[d]}"
    merged = names[:start] + ["k"] + names[end + 1:]
    return f"y[{', '.join(merged)}] = x[{', '.join(names)}], k = {k}"


def _reshape_back(g, shape):
    """dL/dx: dL/dy read in the same row-major order it was written in."""
    return g.reshape(shape)


@explains("flatten", family="shape", aliases=("flat",),
          summary="flatten dims start_dim..end_dim into one: a reshape, undone on the gradient",
          options=(Option("start_dim", int, 1,
                          "first dim merged (nn.Flatten's default; torch.flatten's is 0)"),
                   Option("end_dim", int, -1, "last dim merged")))
def flatten(ex, start_dim, end_dim):
    import retrograd

    x = ex.input("x", (2, 2, 2, 2), primary=True, max_ndim=6,
                 doc="input, (N, C, H, W) by default")
    start, end = _dims(x.shape, start_dim, end_dim)
    (shape,) = ex.reference(lambda x: retrograd.flatten(x, start_dim, end_dim), "x")
    out_shape = _flattened_shape(x.shape, start, end)
    ex.say(f"start_dim {start_dim}, end_dim {end_dim}: dims {start}..{end} of x "
           f"({_shape(x.shape)}) become one of size {out_shape[start]}, so y has shape "
           f"{_shape(out_shape)}.")
    ex.section("Forward")
    ex.say("Nothing is computed: y holds the numbers of x in row-major order (last index "
           "fastest), only the shape changes.")
    ex.say(_index_map(x.shape, start, end) + ".")
    ex.output("y", x.reshape(out_shape), f"x reshaped to shape {_shape(out_shape)}")
    ex.section("Backward")
    g = ex.upstream(shape, "dL/dy", aliases=("dY",))
    ex.say("Each y entry is exactly one x entry (dy/dx is a 0/1 matrix with one 1 per row and "
           "column), so each dL/dx entry is the dL/dy entry its x went to.")
    ex.gradient("x", _reshape_back(g, x.shape),
                f"dL/dy reshaped back to {_shape(x.shape)}, in the same order")
