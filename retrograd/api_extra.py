"""Function forms of PyTorch's tail (issue 19), as in ``torch.log1p(x)`` or
``torch.scatter(x, 0, index, src)``: most are the Tensor method of the same name (see
``_tensor_math``, ``_tensor_indexing``, ``_tensor_random``); the rest are functions only
(meshgrid, broadcast_tensors, the stacks, cdist, var_mean, searchsorted, tril_indices, ...).
"""

import builtins
import warnings

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._tensor_indexing import repeat_interleave_indices
from retrograd._tensor_random import bernoulli, normal, poisson, randint_like
from retrograd.creation import cat
from retrograd.ops import distance as _dist
from retrograd.tensor import Tensor, as_array, make_tensor

_METHODS = (
    # elementwise math
    "log10", "log2", "log1p", "expm1", "exp2", "erf", "erfinv", "sign", "sgn", "floor", "ceil",
    "trunc", "fix", "frac", "neg", "negative", "reciprocal", "square", "tan", "asin", "acos",
    "atan", "arcsin", "arccos", "arctan", "atan2", "arctan2", "sinh", "cosh", "remainder",
    "fmod", "floor_divide", "true_divide", "lerp", "addcmul", "addcdiv", "logaddexp",
    "nan_to_num", "clamp_min", "clamp_max", "absolute", "xlogy", "hypot",
    # comparisons and logic
    "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal",
    "not_equal", "isnan", "isinf", "isfinite", "isclose", "equal", "logical_and", "logical_or",
    "logical_not", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_not", "bitwise_xor",
    "any", "all", "count_nonzero",
    # reductions and products
    "prod", "median", "nanmean", "diff", "trace", "dist", "dot", "vdot", "inner", "mv",
    "cross", "kron", "tensordot",
    # shape and indexing
    "clone", "flip", "fliplr", "flipud", "roll", "rot90", "tile", "broadcast_to", "movedim",
    "moveaxis", "swapaxes", "swapdims", "t", "unbind", "select", "narrow", "index_select",
    "take", "take_along_dim", "masked_select", "nonzero", "argwhere", "scatter", "scatter_add",
    "index_add", "index_fill", "index_copy", "masked_scatter", "diag", "diagonal",
    "diag_embed", "unique_consecutive", "adjoint",
    # dtype questions
    "is_floating_point",
)
_ALIASES = {"greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le",
            "not_equal": "ne"}

__all__ = list(_METHODS) + [
    "round", "unique", "repeat_interleave", "var_mean", "std_mean", "cdist",
    "broadcast_tensors", "broadcast_shapes", "meshgrid", "searchsorted", "bucketize",
    "tril_indices", "triu_indices", "hstack", "vstack", "row_stack", "column_stack", "dstack",
    "atleast_1d", "atleast_2d", "atleast_3d", "bernoulli", "normal", "poisson", "randint_like",
]


def _method(name):
    method = _ALIASES.get(name, name)

    def function(input, *args, **kwargs):  # noqa: A002 - PyTorch's argument name
        _checks.instance_of(name, "input", input, Tensor)
        return getattr(input, method)(*args, **kwargs)

    function.__name__ = name
    function.__doc__ = f"Same as ``input.{method}(...)``; see ``Tensor.{method}``."
    return function


# NOTE: this defines any, all (and round below) in this module: the builtins are
# builtins.any, builtins.all here
globals().update({name: _method(name) for name in _METHODS})


def round(input, *, decimals=0):  # noqa: A001, A002 - PyTorch's names
    """Round half to even, to ``decimals`` decimal places."""
    return _checks.instance_of("round", "input", input, Tensor).round(decimals=decimals)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """See ``Tensor.unique``."""
    return _checks.instance_of("unique", "input", input, Tensor).unique(
        sorted, return_inverse, return_counts, dim)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):  # noqa: A002
    """``input.repeat_interleave(repeats, dim)``; with only an integer tensor of counts,
    the positions 0, 1, ... each repeated that many times."""
    _checks.instance_of("repeat_interleave", "input", input, Tensor)
    if repeats is None:
        if input.ndim > 1:
            raise RuntimeError(f"repeat_interleave: repeats must be 0-d or 1-D, got shape "
                               f"{tuple(input.shape)}")
        positions = repeat_interleave_indices(input.reshape(-1), input.numel())
        return make_tensor(positions.astype(np.int64))
    return input.repeat_interleave(repeats, dim, output_size=output_size)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):  # noqa: A002
    """(var, mean) over dim."""
    return (input.var(dim, unbiased, keepdim, correction=correction),
            input.mean(dim, keepdim=keepdim))


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):  # noqa: A002
    """(std, mean) over dim."""
    return (input.std(dim, unbiased, keepdim, correction=correction),
            input.mean(dim, keepdim=keepdim))


_COMPUTE_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                  "donot_use_mm_for_euclid_dist")


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary"):
    """The p-norm distance between each row of x1 (..., P, M) and each row of x2 (..., R, M):
    (..., P, R), batch dims broadcast. A zero distance gets gradient 0."""
    for name, x in (("x1", x1), ("x2", x2)):
        _checks.instance_of("cdist", name, x, Tensor)
        if x.ndim < 2:
            raise RuntimeError(f"cdist: {name} must have at least 2 dims, got shape "
                               f"{tuple(x.shape)}")
        if not _dt.is_floating(x._data.dtype):
            raise TypeError(f"cdist: only floating-point tensors, got {name} of dtype {x.dtype}")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"cdist: x1 and x2 must have the same number of columns, got shapes "
                           f"{tuple(x1.shape)} and {tuple(x2.shape)}")
    if x1._data.dtype != x2._data.dtype:
        raise RuntimeError(f"cdist: x1 and x2 must have the same dtype, got {x1.dtype} and "
                           f"{x2.dtype}")
    p = float(p)
    if p < 0:
        raise RuntimeError(f"cdist: only supports non-negative p values, got {p}")
    _checks.one_of("cdist", "compute_mode", compute_mode, _COMPUTE_MODES)
    try:
        batch = np.broadcast_shapes(x1.shape[:-2], x2.shape[:-2])
    except ValueError:
        raise ValueError(f"cdist: batch dims of {tuple(x1.shape)} and {tuple(x2.shape)} cannot "
                         f"be broadcast together") from None
    a = x1.expand(*batch, *x1.shape[-2:])
    b = x2.expand(*batch, *x2.shape[-2:])
    if compute_mode == _COMPUTE_MODES[0]:
        matmul = _dist.uses_matmul(p, a.shape[-2], b.shape[-2])
    else:
        matmul = p == 2 and compute_mode == _COMPUTE_MODES[1]
    return _dist.Cdist.apply(a, b, p=p, matmul=matmul)


def broadcast_shapes(*shapes):
    """The shape that all the shapes broadcast to."""
    try:
        return tuple(np.broadcast_shapes(*[(s,) if isinstance(s, int) else tuple(s)
                                           for s in shapes]))
    except ValueError:
        raise RuntimeError(f"broadcast_shapes: shapes {shapes} cannot be broadcast "
                           f"together") from None


def broadcast_tensors(*tensors):
    """The tensors expanded to their common shape (views)."""
    tensors = _checks.tensors("broadcast_tensors", "tensors", list(tensors))
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(t.expand(*shape) for t in tensors)


def meshgrid(*tensors, indexing=None):
    """Coordinate grids from 1-D tensors: output k varies along dim k ("ij", the default) or,
    with "xy", the first two dims swapped (Cartesian). Views of the inputs."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    tensors = _checks.tensors("meshgrid", "tensors", list(tensors))
    if indexing is None:
        warnings.warn("torch.meshgrid: in an upcoming release, it will be required to pass the "
                      "indexing argument.", UserWarning, stacklevel=2)
        indexing = "ij"
    _checks.one_of("meshgrid", "indexing", indexing, ("ij", "xy"))
    for t in tensors:
        if t.ndim > 1:
            raise RuntimeError(f"meshgrid: expects 0-d or 1-D tensors, got shape "
                               f"{tuple(t.shape)}")
    sizes = [t.numel() for t in tensors]
    order = list(range(len(tensors)))
    if indexing == "xy" and len(tensors) >= 2:
        order[0], order[1] = 1, 0
    shape = [sizes[k] for k in order]
    grids = []
    for k, t in enumerate(tensors):
        position = order.index(k)
        view = t.reshape(*[-1 if i == position else 1 for i in range(len(tensors))])
        grids.append(view.expand(*shape))
    return tuple(grids)


def _search(op, sorted_sequence, values, side, sorter):
    """np.searchsorted over the innermost dim, row by row for an N-D sorted_sequence."""
    if sorted_sequence.ndim == 1:
        return np.searchsorted(sorted_sequence, values, side=side, sorter=sorter)
    if sorter is not None:
        sorted_sequence = np.take_along_axis(sorted_sequence, sorter, -1)
    if values.shape[:-1] != sorted_sequence.shape[:-1]:
        raise RuntimeError(f"{op}: the leading dims of sorted_sequence {sorted_sequence.shape} "
                           f"and values {values.shape} must match")
    rows = sorted_sequence.reshape(-1, sorted_sequence.shape[-1])
    queries = values.reshape(-1, values.shape[-1])
    out = [np.searchsorted(r, q, side=side) for r, q in zip(rows, queries)]
    return np.stack(out).reshape(values.shape) if out else np.zeros(values.shape, np.int64)


def searchsorted(sorted_sequence, values, *, out_int32=False, right=False, side=None,
                 sorter=None):
    """For each value, the index in the innermost dim of sorted_sequence where it would be
    inserted to keep it sorted: the first such index ("left"), or the last (right=True or
    side="right")."""
    _checks.instance_of("searchsorted", "sorted_sequence", sorted_sequence, Tensor)
    if side is not None:
        _checks.one_of("searchsorted", "side", side, ("left", "right"))
        if right and side == "left":
            raise RuntimeError("searchsorted: side='left' and right=True contradict each other")
    side = side or ("right" if right else "left")
    seq = sorted_sequence._data
    queries = values._data if isinstance(values, Tensor) else as_array(values)
    if seq.ndim == 0:
        raise RuntimeError("searchsorted: sorted_sequence must have at least 1 dim")
    order = None if sorter is None else (sorter._data if isinstance(sorter, Tensor)
                                         else np.asarray(sorter))
    positions = _search("searchsorted", seq, queries, side, order)
    return make_tensor(np.asarray(positions).astype(np.int32 if out_int32 else np.int64))


def bucketize(input, boundaries, *, out_int32=False, right=False):  # noqa: A002
    """For each element, the index of its bucket among the sorted 1-D boundaries:
    boundaries[i-1] < x <= boundaries[i] (right=False) or boundaries[i-1] <= x < boundaries[i]
    (right=True)."""
    _checks.instance_of("bucketize", "boundaries", boundaries, Tensor)
    if boundaries.ndim != 1:
        raise RuntimeError(f"bucketize: boundaries must be 1-D, got shape "
                           f"{tuple(boundaries.shape)}")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def _triangle_indices(op, pick, row, col, offset, dtype):
    row = _checks.non_negative_int(op, "row", row)
    col = _checks.non_negative_int(op, "col", col)
    offset = _checks.integer(op, "offset", offset)
    rows, cols = pick(row, offset, col)
    target = _dt.as_numpy_dtype(dtype) if dtype is not None else np.int64
    return make_tensor(np.stack([rows, cols]).astype(target).reshape(2, -1))


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (2, N) coordinates of the lower triangle (on and below diagonal ``offset``) of a
    row x col matrix, in row-major order."""
    _checks.cpu_device("tril_indices", device)
    return _triangle_indices("tril_indices", np.tril_indices, row, col, offset, dtype)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    """The (2, N) coordinates of the upper triangle (on and above diagonal ``offset``) of a
    row x col matrix, in row-major order."""
    _checks.cpu_device("triu_indices", device)
    return _triangle_indices("triu_indices", np.triu_indices, row, col, offset, dtype)


def _at_least(op, tensors, ndim, shape_of):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    out = tuple(t if t.ndim >= ndim else t.reshape(*shape_of(t))
                for t in _checks.tensors(op, "tensors", list(tensors)))
    return out[0] if len(out) == 1 else out


def atleast_1d(*tensors):
    return _at_least("atleast_1d", tensors, 1, lambda t: (1,))


def atleast_2d(*tensors):
    return _at_least("atleast_2d", tensors, 2, lambda t: (1, t.numel()))


def atleast_3d(*tensors):
    return _at_least("atleast_3d", tensors, 3,
                     lambda t: (1, t.numel(), 1) if t.ndim < 2 else (*t.shape, 1))


def _as_list(op, tensors):
    if not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{op}: expects a non-empty list or tuple of tensors")
    return _checks.tensors(op, "tensors", list(tensors))


def hstack(tensors):
    """cat along dim 1 (dim 0 when all are 1-D), after atleast_1d."""
    tensors = [atleast_1d(t) for t in _as_list("hstack", tensors)]
    return cat(tensors, 0 if builtins.all(t.ndim == 1 for t in tensors) else 1)


def vstack(tensors):
    """cat along dim 0, after atleast_2d (vectors become rows)."""
    return cat([atleast_2d(t) for t in _as_list("vstack", tensors)], 0)


row_stack = vstack


def column_stack(tensors):
    """cat along dim 1, vectors and numbers becoming columns."""
    tensors = [t.reshape(t.numel(), 1) if t.ndim < 2 else t
               for t in _as_list("column_stack", tensors)]
    return cat(tensors, 1)


def dstack(tensors):
    """cat along dim 2, after atleast_3d."""
    return cat([atleast_3d(t) for t in _as_list("dstack", tensors)], 2)

