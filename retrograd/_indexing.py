"""Index translation: PyTorch's indexing rules on top of NumPy's.

``t[index]`` and ``t[index] = value`` accept what PyTorch accepts (ints, slices, None,
Ellipsis, bool and integer tensors or lists) and give PyTorch's result shapes: Tensors and
lists inside an index become arrays, an index that picks one element still gives a 0-d view,
and an index mixing ints with arrays is split where NumPy and PyTorch disagree. Reading an
index is the ``Index`` op (differentiable); writing is the ``IndexPut`` op, in place.
"""

import numpy as np

from retrograd.autograd.inplace import apply_inplace
from retrograd.ops import shape as _shape
from retrograd.tensor import Tensor

__all__ = ["getitem", "setitem", "index_array", "bool_mask"]


def getitem(t, index):
    """t[index] as a differentiable op (a view where NumPy gives one)."""
    index = _numpy_index(index)
    split = _split_mixed_index(index)
    if split is not None:
        return getitem(getitem(t, split[0]), split[1])
    if _picks_one_element(index, t._data.ndim):
        # NOTE: NumPy's x[i, j] is a scalar copy, x[i, j, ...] a 0-d view: with the view,
        # an in-place change to t[i] reaches t (and shares its version), as in PyTorch
        index = (index if isinstance(index, tuple) else (index,)) + (Ellipsis,)
    try:
        return _shape.Index.apply(t, index=index)
    except IndexError as e:
        raise IndexError(f"index: {e} (tensor of shape {t.shape})") from None


def setitem(t, index, value):
    """t[index] = value, in place (recorded by autograd when a gradient is involved)."""
    index = _numpy_index(index)
    if not isinstance(value, Tensor):
        value = np.asarray(value, dtype=t._data.dtype)
    split = _split_mixed_index(index)
    target = t._data[index] if split is None else t._data[split[0]][split[1]]
    try:
        np.broadcast_shapes(np.shape(value), target.shape)
    except ValueError:
        raise ValueError(f"setitem: cannot assign a value of shape {np.shape(value)} to "
                         f"positions of shape {target.shape} "
                         f"(tensor of shape {t.shape})") from None
    if split is None:
        apply_inplace(t, "setitem", lambda src: _shape.IndexPut.apply(src, value, index=index))
        return
    basic, advanced = split
    apply_inplace(t, "setitem", lambda src: _shape.IndexPut.apply(
        src, _shape.IndexPut.apply(getitem(src, basic), value, index=advanced), index=basic))


def index_array(index, op):
    """An index given as an integer tensor, array or list, as an integer array."""
    array = index._data if isinstance(index, Tensor) else np.asarray(index)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {array.dtype}")
    return array


def _picks_one_element(index, ndim):
    """True for an index of one int per dim (NumPy would return a scalar, not a view)."""
    items = index if isinstance(index, tuple) else (index,)
    return len(items) == ndim and all(isinstance(i, (int, np.integer)) and
                                      not isinstance(i, bool) for i in items)


def _numpy_index(index):
    """Replace Tensors and lists inside an index by NumPy arrays."""
    if isinstance(index, tuple):
        return tuple(_numpy_index_item(i) for i in index)
    return _numpy_index_item(index)


def _is_int_index(item):
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def _split_mixed_index(index):
    """PyTorch applies integer indices before array indices; NumPy counts an int next to an
    array as one more array, which moves the result's dims (x[0, :, [0, 1]] has shape (2, n)
    in NumPy, (n, 2) in PyTorch). Such an index is split into its basic part (ints, slices,
    None, Ellipsis) and the array part applied after it; None when no split is needed."""
    if not isinstance(index, tuple) or not any(_is_int_index(i) for i in index):
        return None
    if not any(isinstance(i, np.ndarray) and i.ndim > 0 for i in index):
        return None
    basic, advanced = [], []
    for item in index:
        if _is_int_index(item):
            basic.append(item)
        elif isinstance(item, np.ndarray) and item.ndim > 0:
            basic.extend([slice(None)] * (item.ndim if item.dtype == np.bool_ else 1))
            advanced.append(item)
        elif item is None or isinstance(item, slice):
            basic.append(item)
            advanced.append(slice(None))
        else:  # Ellipsis (and anything NumPy will reject with its own message)
            basic.append(item)
            advanced.append(item)
    return tuple(basic), tuple(advanced)


def _numpy_index_item(item):
    if isinstance(item, Tensor):
        if item._data.ndim == 0 and item._data.dtype.kind in "iu":
            return int(item._data)
        return item._data
    if isinstance(item, list):
        return np.asarray(item)
    return item


def bool_mask(mask, x, op):
    """A bool mask (tensor or array) that broadcasts to x's shape, as an array."""
    array = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    if array.dtype != np.bool_:
        raise TypeError(f"{op}: mask must have dtype bool, got {array.dtype} (shape {array.shape})")
    try:
        if np.broadcast_shapes(array.shape, x.shape) != x.shape:
            raise ValueError
    except ValueError:
        raise ValueError(f"{op}: mask of shape {array.shape} does not broadcast to the tensor's "
                         f"shape {x.shape}") from None
    return array
