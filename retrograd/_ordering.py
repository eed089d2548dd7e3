"""sort, argsort and topk, as torch.sort, torch.argsort and torch.topk.

Each function checks its arguments (errors name the op, the shapes and the values) and calls
one op of ``ops/sort.py``. The order is stable in both directions and NaN is the largest
value (ops/sort.py): equal values keep their input order, which is what PyTorch's
``stable=True`` returns. ``stable=False`` returns the same order (a valid choice: PyTorch then
promises no particular order among ties). For topk, PyTorch's CPU kernel picks among tied
values in an order that changes with k; retrograd returns the lowest indices first. The
values are the same; the indices of ties can differ (docs/pytorch-compatibility.md).
"""

import numpy as np

from retrograd import _checks
from retrograd import return_types
from retrograd.ops.sort import Sort, TopK, stable_argsort
from retrograd.tensor import Tensor, make_tensor

__all__ = ["sort", "argsort", "topk"]


def _tensor(op, value):
    return _checks.instance_of(op, "input", value, Tensor)


def sort(input, dim=-1, descending=False, *, stable=False):  # noqa: A002 - PyTorch's name
    """(values, indices): ``input`` sorted along ``dim``, ascending (or descending), and
    where each value came from; values[..., j] = input[..., indices[j]] along dim.

    Ties keep their input order (``stable`` is accepted; the sort is always stable) and NaN
    sorts as the largest value. The gradient of values flows back to the positions the
    values came from.

    Example:
        >>> import retrograd as rg
        >>> rg.sort(rg.tensor([3.0, 1.0, 2.0, 1.0]))
        sort(values=tensor([1., 1., 2., 3.]), indices=tensor([1, 3, 2, 0]))
    """
    x = _tensor("sort", input)
    d = _checks.dim("sort", dim, x.ndim)
    if stable is not None:
        _checks.boolean("sort", "stable", stable)
    if x.ndim == 0:
        values, indices = Sort.apply(x.reshape(1), axis=0, descending=bool(descending))
        return return_types.sort(values.reshape(()), indices.reshape(()))
    return return_types.sort(*Sort.apply(x, axis=d, descending=bool(descending)))


def argsort(input, dim=-1, descending=False, *, stable=False):  # noqa: A002
    """The int64 indices that sort ``input`` along ``dim`` (sort(...).indices; no gradient).

    Example:
        >>> import retrograd as rg
        >>> rg.argsort(rg.tensor([[3.0, 1.0, 2.0]]), dim=1, descending=True)
        tensor([[0, 2, 1]])
    """
    x = _tensor("argsort", input)
    d = _checks.dim("argsort", dim, x.ndim)
    if x.ndim == 0:
        return make_tensor(np.zeros((), dtype=np.int64))
    indices = stable_argsort(x._data, d, bool(descending))
    return make_tensor(indices.astype(np.int64, copy=False))


def topk(input, k, dim=-1, largest=True, sorted=True):  # noqa: A002 - PyTorch's names
    """(values, indices): the ``k`` largest (or smallest, ``largest=False``) entries of
    ``input`` along ``dim``, in order (largest first), and their positions.

    NaN counts as the largest value. Among tied values the lowest index comes first;
    ``sorted=False`` returns the same order. k may be 0; k larger than the dim's size is a
    RuntimeError. The gradient of values flows back to the positions in indices, the other
    entries get 0.

    Example:
        >>> import retrograd as rg
        >>> values, indices = rg.topk(rg.tensor([1.0, 5.0, 3.0, 5.0]), 2)
        >>> values, indices
        (tensor([5., 5.]), tensor([1, 3]))
    """
    x = _tensor("topk", input)
    d = _checks.dim("topk", -1 if dim is None else dim, x.ndim)
    k = _checks.non_negative_int("topk", "k", k)
    size = x.shape[d] if x.ndim else 1
    if k > size:
        raise RuntimeError(f"topk: selected index k out of range: k = {k} but dim {dim} has "
                           f"size {size} (input of shape {tuple(x.shape)})")
    if x.ndim == 0:  # as torch: the element and index 0, for k = 0 too
        values, indices = TopK.apply(x.reshape(1), k=1, axis=0, largest=bool(largest))
        return return_types.topk(values.reshape(()), indices.reshape(()))
    return return_types.topk(*TopK.apply(x, k=k, axis=d, largest=bool(largest)))
