"""Tensor methods, part of PyTorch's tail (issue 19): flips and rolls, repeats, moving dims,
selecting (select, narrow, take, masked_select, nonzero), scattering (scatter, scatter_add,
index_add, index_fill, index_copy, masked_scatter) and their in-place forms, diagonals,
unique values, sliding windows (unfold), and the layout queries (stride, is_contiguous,
data_ptr). Installed on Tensor as ``_tensor_math`` explains.
"""

import numpy as np

from retrograd import _checks
from retrograd._indexing import bool_mask, index_array
from retrograd._tensor_math import in_place
from retrograd.autograd.grad_mode import STATE
from retrograd.autograd.inplace import apply_inplace, write
from retrograd.ops import indexing as _ix
from retrograd.ops import scatter as _sc
from retrograd.ops import shape as _shape
from retrograd.tensor import Tensor, as_array, make_tensor

__all__ = ["Methods", "repeat_interleave_indices"]


def _along(dim, item):
    """An index that applies ``item`` along ``dim`` and takes everything else."""
    return (slice(None),) * dim + (item,)


def _dims_arg(op, dims, ndim):
    """dims given as an int or a sequence, as a tuple of distinct non-negative dims."""
    given = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    out = tuple(_checks.dim(op, d, ndim) for d in given)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dims {tuple(given)} repeat a dim")
    return out


def _index_1d(op, index, size):
    """A 1-D (or 0-d) integer index of positions in [-size, size), as a 1-D array of
    non-negative positions."""
    array = index_array(index, op)
    if array.ndim > 1:
        raise IndexError(f"{op}: index must be 1-D, got shape {array.shape}")
    array = array.reshape(-1)
    if array.size and (array.min() < -size or array.max() >= size):
        raise IndexError(f"{op}: index out of range for a dim of size {size} (got values from "
                         f"{array.min()} to {array.max()})")
    return np.where(array < 0, array + size, array)


def _scatter_index(op, t, dim, index, src):
    """The checks of PyTorch's scatter and scatter_add: index with t's number of dims, no
    larger than src anywhere nor than t outside dim, values in [0, t.shape[dim])."""
    d = _checks.dim(op, dim, t.ndim)
    index = index_array(index, op)
    if index.ndim != max(t.ndim, 1) and not (t.ndim == 0 and index.ndim == 0):
        raise RuntimeError(f"{op}: index must have as many dims as the tensor, got index shape "
                           f"{index.shape} and tensor shape {tuple(t.shape)}")
    src_shape = src.shape if isinstance(src, Tensor) else None
    for k, size in enumerate(index.shape):
        if src_shape is not None and size > src_shape[k]:
            raise RuntimeError(f"{op}: index shape {index.shape} is larger than src shape "
                               f"{tuple(src_shape)} at dim {k}")
        if k != d and size > t.shape[k]:
            raise RuntimeError(f"{op}: index shape {index.shape} is larger than the tensor's "
                               f"shape {tuple(t.shape)} at dim {k} (other than dim {d})")
    if index.size and (index.min() < 0 or index.max() >= t.shape[d]):
        raise IndexError(f"{op}: index values must be in [0, {t.shape[d]}) for dim {d} of shape "
                         f"{tuple(t.shape)}, got values from {index.min()} to {index.max()}")
    return d, index


def _same_dtype_source(op, t, source):
    if not isinstance(source, Tensor):
        raise TypeError(f"{op}: source must be a Tensor, got {type(source).__name__}")
    if source._data.dtype != t._data.dtype:
        raise RuntimeError(f"{op}: expected source and the tensor to have the same dtype, got "
                           f"{source.dtype} and {t.dtype}")
    return source


def _checked_source(op, t, d, positions, source):
    """source for index_add and index_copy: t's shape with len(positions) at dim d."""
    source = _same_dtype_source(op, t, source)
    expected = tuple(t.shape[:d]) + (len(positions),) + tuple(t.shape[d + 1:])
    if tuple(source.shape) != expected and not (t.ndim == 0 and source.numel() == 1):
        raise RuntimeError(f"{op}: source must have shape {expected} (the tensor's shape with "
                           f"the index's length at dim {d}), got {tuple(source.shape)}")
    return source.reshape(expected) if t.ndim else source


def repeat_interleave_indices(repeats, size, op="repeat_interleave"):
    """The positions 0..size-1, each repeated repeats[i] times (repeats an int, or a 1-D
    tensor of size entries or of one)."""
    counts = repeats._data if isinstance(repeats, Tensor) else np.asarray(repeats)
    if counts.dtype.kind not in "iu":
        raise TypeError(f"{op}: repeats must be an int or an integer tensor, got dtype "
                        f"{counts.dtype}")
    if counts.ndim > 1 or (counts.ndim == 1 and counts.size not in (1, size)):
        raise RuntimeError(f"{op}: repeats must be an int or a 1-D tensor of {size} entries "
                           f"(or one), got shape {counts.shape}")
    if np.any(counts < 0):
        raise RuntimeError(f"{op}: repeats can not be negative, got {counts.tolist()}")
    return np.repeat(np.arange(size), counts.reshape(-1) if counts.size != 1 else int(counts))


def _restride(t, op, compute):
    """unsqueeze_, squeeze_, t_, transpose_: t takes the shape of ``compute(t)`` (a view of
    the same memory) and its version is bumped, as PyTorch; when recorded, t becomes the view
    op's output."""
    if STATE.grad_enabled and t._requires_grad and t.grad_fn is None:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is used in an in-place "
                           f"operation; wrap it in retrograd.no_grad()")
    result = compute(t)
    t._data = result._data
    if result.grad_fn is not None:
        t.grad_fn, t._output_nr = result.grad_fn, result._output_nr
    t._version[0] += 1
    return t


def _unique_consecutive(data, axis):
    """(values, inverse, counts) of runs of equal values (slices along axis)."""
    if axis is None:
        data = data.reshape(-1)
        starts = np.concatenate([[True], data[1:] != data[:-1]]) if data.size else \
            np.zeros(0, bool)
    else:
        moved = np.moveaxis(data, axis, 0).reshape(data.shape[axis], -1)
        changes = np.any(moved[1:] != moved[:-1], axis=1)
        starts = np.concatenate([[True], changes]) if moved.shape[0] else np.zeros(0, bool)
    positions = np.flatnonzero(starts)
    counts = np.diff(np.append(positions, starts.size))
    inverse = np.cumsum(starts) - 1
    values = data[positions] if axis is None else np.take(data, positions, axis=axis)
    return values, inverse, counts


def _unique_result(values, inverse, counts, return_inverse, return_counts):
    out = [make_tensor(values)]
    if return_inverse:
        out.append(make_tensor(inverse.astype(np.int64)))
    if return_counts:
        out.append(make_tensor(counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)


class Methods:
    """The methods this module adds to Tensor (see the module docstring)."""

    # ------------------------------------------------------------------ flips, rolls, repeats
    def flip(self, *dims):
        """The elements in reverse order along dims (a copy)."""
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        axes = _dims_arg("flip", dims, self.ndim)
        if self.ndim == 0 or not axes:
            return self.clone()
        return _ix.Flip.apply(self, axes=axes)

    def fliplr(self):
        if self.ndim < 2:
            raise RuntimeError(f"fliplr: input must be >= 2-d, got shape {tuple(self.shape)}")
        return self.flip(1)

    def flipud(self):
        if self.ndim < 1:
            raise RuntimeError("flipud: input must be >= 1-d, got a 0-d tensor")
        return self.flip(0)

    def roll(self, shifts, dims=None):
        """The elements shifted by ``shifts`` along dims (those past the end come back at the
        start); without dims, the flattened tensor is rolled and the shape restored."""
        shifts = tuple(shifts) if isinstance(shifts, (tuple, list)) else (shifts,)
        shifts = tuple(_checks.integer("roll", "shifts", s) for s in shifts)
        if dims is None:
            if len(shifts) != 1:
                raise RuntimeError(f"roll: without dims, shifts must be one int, got {shifts}")
            return self.reshape(-1).roll(shifts, 0).reshape(self.shape)
        axes = tuple(_checks.dim("roll", d, self.ndim) for d in
                     (tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)))
        if len(axes) != len(shifts):
            raise RuntimeError(f"roll: shifts {shifts} and dims {tuple(axes)} must have the same "
                               f"length")
        if self.ndim == 0:
            return self.clone()
        return _ix.Roll.apply(self, shifts=shifts, axes=axes)

    def rot90(self, k=1, dims=(0, 1)):
        """Rotation by 90 degrees k times in the plane dims, from dims[0] toward dims[1]:
        flips and a transpose, as PyTorch."""
        if len(dims) != 2:
            raise RuntimeError(f"rot90: dims must be two dims, got {dims}")
        d0, d1 = (_checks.dim("rot90", d, self.ndim) for d in dims)
        if self.ndim < 2 or d0 == d1:
            raise RuntimeError(f"rot90: needs two different dims of a tensor with >= 2 dims, got "
                               f"dims {tuple(dims)} and shape {tuple(self.shape)}")
        k = _checks.integer("rot90", "k", k) % 4
        if k == 1:
            return self.flip(d1).transpose(d0, d1)
        if k == 2:
            return self.flip(d0, d1)
        if k == 3:
            return self.flip(d0).transpose(d0, d1)
        return self.clone()

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        """Each element (each slice along dim; of the flattened tensor without dim) repeated
        repeats times (an int, or one count per slice): an index_select."""
        x = self.reshape(-1) if dim is None else self
        d = 0 if dim is None else _checks.dim("repeat_interleave", dim, self.ndim)
        if x.ndim == 0:
            x = x.reshape(1)
        positions = repeat_interleave_indices(repeats, x.shape[d])
        if output_size is not None and output_size != positions.size:
            raise RuntimeError(f"repeat_interleave: output_size={output_size} but the repeats "
                               f"give {positions.size} elements")
        return x[_along(d, positions)]

    def tile(self, *dims):
        """repeat(), with ones prepended to dims when it has fewer entries than self has dims."""
        dims = _checks.sizes("tile", dims)
        dims = (1,) * (self.ndim - len(dims)) + dims
        return self.repeat(*dims)

    def movedim(self, source, destination):
        """self with the dims in source moved to the positions in destination, the others
        keeping their order."""
        src = (source,) if isinstance(source, (int, np.integer)) else tuple(source)
        dst = (destination,) if isinstance(destination, (int, np.integer)) else \
            tuple(destination)
        if len(src) != len(dst):
            raise RuntimeError(f"movedim: source {src} and destination {dst} must have the same "
                               f"number of dims")
        src = _dims_arg("movedim", src, self.ndim)
        dst = _dims_arg("movedim", dst, self.ndim)
        order = [i for i in range(self.ndim) if i not in src]
        for d, s in sorted(zip(dst, src)):
            order.insert(d, s)
        return self.permute(*order) if self.ndim else self

    moveaxis = movedim

    def swapdims(self, dim0, dim1):
        return self.transpose(dim0, dim1)

    # ------------------------------------------------------------------ selecting
    def select(self, dim, index):
        """The slice at ``index`` along dim (a view, one dim fewer)."""
        if self.ndim == 0:
            raise IndexError("select: cannot select on a 0-d tensor")
        d = _checks.dim("select", dim, self.ndim)
        i = _checks.index("select", "index", index, self.shape[d])
        return self[_along(d, i)]

    def narrow(self, dim, start, length):
        """The slice start:start + length along dim (a view); start may be negative."""
        d = _checks.dim("narrow", dim, self.ndim)
        size = self.shape[d]
        start = int(start.item()) if isinstance(start, Tensor) else start
        start = _checks.integer("narrow", "start", start)
        length = _checks.non_negative_int("narrow", "length", length)
        if not -size <= start <= size:
            raise IndexError(f"narrow: start {start} is out of range for dim {d} of size {size}")
        if start < 0:
            start += size
        if start + length > size:
            raise RuntimeError(f"narrow: start ({start}) + length ({length}) exceeds dimension "
                               f"size ({size})")
        return self[_along(d, slice(start, start + length))]

    def take(self, index):
        """The elements of the flattened tensor at index (an integer tensor of any shape)."""
        positions = index_array(index, "take")
        n = self.numel()
        if positions.size and (positions.min() < -n or positions.max() >= n):
            raise IndexError(f"take: index out of range for a tensor of {n} elements (got values "
                             f"from {positions.min()} to {positions.max()})")
        return self.reshape(-1)[positions]

    def take_along_dim(self, indices, dim=None):
        """gather along dim after broadcasting self and indices in the other dims; without
        dim, take on the flattened tensor (a 1-D result)."""
        positions = index_array(indices, "take_along_dim")
        if dim is None:
            return self.take(positions.reshape(-1))
        d = _checks.dim("take_along_dim", dim, self.ndim)
        if positions.ndim != self.ndim:
            raise RuntimeError(f"take_along_dim: indices must have as many dims as the tensor, "
                               f"got shapes {positions.shape} and {tuple(self.shape)}")
        shape = list(np.broadcast_shapes(tuple(np.delete(self.shape, d)),
                                         tuple(np.delete(positions.shape, d))))
        x = self.expand(*shape[:d], self.shape[d], *shape[d:])
        positions = np.broadcast_to(positions, shape[:d] + [positions.shape[d]] + shape[d:])
        positions = np.where(positions < 0, positions + self.shape[d], positions)
        return x.gather(d, positions)

    def masked_select(self, mask):
        """The elements where mask (broadcast with self) is True, as a 1-D tensor."""
        array = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
        if array.dtype != np.bool_:
            raise TypeError(f"masked_select: mask must have dtype bool, got {array.dtype}")
        try:
            shape = np.broadcast_shapes(self.shape, array.shape)
        except ValueError:
            raise ValueError(f"masked_select: mask of shape {array.shape} and tensor of shape "
                             f"{tuple(self.shape)} cannot be broadcast together") from None
        x = self.expand(*shape) if tuple(self.shape) != shape else self
        return x[np.broadcast_to(array, shape)]

    def nonzero(self, *, as_tuple=False):
        """The indices of the non-zero elements: an (n, ndim) int64 tensor, or with as_tuple
        one 1-D tensor per dim."""
        if as_tuple:
            return tuple(make_tensor(i.astype(np.int64))
                         for i in np.nonzero(np.atleast_1d(self._data)))
        return make_tensor(np.argwhere(self._data).astype(np.int64))

    def argwhere(self):
        return self.nonzero()

    # ------------------------------------------------------------------ scattering
    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        """A copy with src's elements (or the number ``value``) written at index along dim:
        out[j_0, .., index[j], .., j_k] = src[j]."""
        if reduce is not None:
            raise NotImplementedError(f"scatter: reduce={reduce!r} is not supported; use "
                                      f"scatter_add (reduce='add')")
        if src is None and value is None:
            raise TypeError("scatter: give src (a tensor) or value (a number)")
        src = value if src is None else src
        if isinstance(src, Tensor):
            _same_dtype_source("scatter", self, src)
            if src.ndim != self.ndim:
                raise RuntimeError(f"scatter: src must have as many dims as the tensor, got "
                                   f"shapes {tuple(src.shape)} and {tuple(self.shape)}")
        else:
            src = as_array(src, self._data.dtype).item()
        d, positions = _scatter_index("scatter", self, dim, index, src)
        return _sc.Scatter.apply(self, src, index=positions, axis=d)

    def scatter_add(self, dim, index, src):
        """A copy with src's elements added at index along dim (repeats add up)."""
        _same_dtype_source("scatter_add", self, src)
        if src.ndim != self.ndim:
            raise RuntimeError(f"scatter_add: src must have as many dims as the tensor, got "
                               f"shapes {tuple(src.shape)} and {tuple(self.shape)}")
        d, positions = _scatter_index("scatter_add", self, dim, index, src)
        return _sc.ScatterAdd.apply(self, src, index=positions, axis=d)

    def index_add(self, dim, index, source, *, alpha=1):
        """A copy with alpha * source[.., i, ..] added at index[i] along dim (repeats add)."""
        d = _checks.dim("index_add", dim, self.ndim)
        positions = _index_1d("index_add", index, self.shape[d] if self.ndim else 1)
        source = _checked_source("index_add", self, d, positions, source)
        source = source * alpha if alpha != 1 else source
        if self.ndim == 0:
            return self + source.sum()
        added = _shape.scatter_add_index(source, self.shape, _along(d, positions), False)
        return self + added

    def index_fill(self, dim, index, value):
        """A copy with the slices at index along dim set to value (a number or 0-d tensor)."""
        d = _checks.dim("index_fill", dim, self.ndim)
        size = self.shape[d] if self.ndim else 1
        positions = _index_1d("index_fill", index, size)
        mask = np.zeros(size, dtype=bool)
        mask[positions] = True
        if self.ndim:
            mask = mask.reshape([-1 if k == d else 1 for k in range(self.ndim)])
        else:
            mask = mask.reshape(())
        if isinstance(value, Tensor) and value.ndim != 0:
            raise RuntimeError(f"index_fill: value must be a number or a 0-d tensor, got shape "
                               f"{tuple(value.shape)}")
        return self.masked_fill(mask, value)

    def index_copy(self, dim, index, source):
        """A copy with source[.., i, ..] written at index[i] along dim."""
        d = _checks.dim("index_copy", dim, self.ndim)
        positions = _index_1d("index_copy", index, self.shape[d] if self.ndim else 1)
        source = _checked_source("index_copy", self, d, positions, source)
        if self.ndim == 0:
            return source.reshape(()).clone()
        return _shape.IndexPut.apply(self, source, index=_along(d, positions))

    def masked_scatter(self, mask, source):
        """A copy with the elements of source, in order, written where mask (broadcast to
        self's shape) is True."""
        mask = np.broadcast_to(bool_mask(mask, self, "masked_scatter"), self.shape)
        source = _same_dtype_source("masked_scatter", self, source)
        count = int(mask.sum())
        if source.numel() < count:
            raise RuntimeError(f"masked_scatter: the mask has {count} True entries but source "
                               f"has only {source.numel()} elements")
        return _shape.IndexPut.apply(self, source.reshape(-1)[:count], index=mask)

    # ------------------------------------------------------------------ diagonals
    def diagonal(self, offset=0, dim1=0, dim2=1):
        """The diagonal of the plane (dim1, dim2), shifted by offset, as the last dim (a
        view)."""
        a1 = _checks.dim("diagonal", dim1, self.ndim)
        a2 = _checks.dim("diagonal", dim2, self.ndim)
        if self.ndim < 2 or a1 == a2:
            raise RuntimeError(f"diagonal: dim1 and dim2 must be two different dims of a tensor "
                               f"with >= 2 dims, got {dim1}, {dim2} and shape "
                               f"{tuple(self.shape)}")
        offset = _checks.integer("diagonal", "offset", offset)
        return _ix.Diagonal.apply(self, offset=offset, axis1=a1, axis2=a2)

    def diag_embed(self, offset=0, dim1=-2, dim2=-1):
        """A tensor with one more dim whose planes (dim1, dim2) hold self's last dim on their
        diagonal shifted by offset, zeros elsewhere."""
        ndim = self.ndim + 1
        a1 = _checks.dim("diag_embed", dim1, ndim)
        a2 = _checks.dim("diag_embed", dim2, ndim)
        if a1 == a2 or self.ndim == 0:
            raise RuntimeError(f"diag_embed: dim1 and dim2 must differ and the input must have "
                               f">= 1 dim, got {dim1}, {dim2} and shape {tuple(self.shape)}")
        offset = _checks.integer("diag_embed", "offset", offset)
        n = self.shape[-1] + abs(offset)
        shape = list(self.shape[:-1])
        for a in sorted((a1, a2)):
            shape.insert(a, n)
        return _ix.DiagEmbed.apply(self, shape=tuple(shape), offset=offset, axis1=a1, axis2=a2)

    def diag(self, diagonal=0):
        """A vector: the square matrix with it on the given diagonal; a matrix: that diagonal
        (a copy)."""
        diagonal = _checks.integer("diag", "diagonal", diagonal)
        if self.ndim == 1:
            return self.diag_embed(diagonal, 0, 1)
        if self.ndim == 2:
            return self.diagonal(diagonal).clone()
        raise RuntimeError(f"diag: expected a 1-D or 2-D tensor, got shape {tuple(self.shape)}")

    def fill_diagonal_(self, fill_value, wrap=False):
        """Fill the main diagonal in place (NumPy's fill_diagonal; a tall matrix with wrap
        starts again every n + 1 rows); every dim must be equal above 2-D."""
        if self.ndim < 2 or (self.ndim > 2 and len(set(self.shape)) != 1):
            raise RuntimeError(f"fill_diagonal_: dims must all be equal and >= 2, got shape "
                               f"{tuple(self.shape)}")
        mask = np.zeros(self.shape, dtype=bool)
        np.fill_diagonal(mask, True, wrap=wrap)
        return apply_inplace(self, "fill_diagonal_",
                             lambda src: src.masked_fill(mask, fill_value))

    # ------------------------------------------------------------------ unique values
    def unique(self, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
        """The distinct values (slices along dim), sorted, with optionally the inverse (where
        each element went) and the counts. NaNs are all distinct, as PyTorch's."""
        axis = None if dim is None else _checks.dim("unique", dim, self.ndim)
        values, inverse, counts = np.unique(self._data, return_inverse=True,
                                            return_counts=True, axis=axis, equal_nan=False)
        inverse = inverse.reshape(self.shape if axis is None else -1)
        return _unique_result(values, inverse, counts, return_inverse, return_counts)

    def unique_consecutive(self, return_inverse=False, return_counts=False, dim=None):
        """The first of each run of equal consecutive values (slices along dim), with
        optionally the inverse and the run lengths."""
        axis = None if dim is None else _checks.dim("unique_consecutive", dim, self.ndim)
        values, inverse, counts = _unique_consecutive(self._data, axis)
        inverse = inverse.reshape(self.shape if axis is None else -1)
        return _unique_result(values, inverse, counts, return_inverse, return_counts)

    # ------------------------------------------------------------------ windows, layout
    def unfold(self, dimension, size, step):
        """The windows of ``size`` along dimension every ``step``, as a new last dim (a
        read-only view: windows may share elements)."""
        d = _checks.dim("unfold", dimension, self.ndim)
        size = _checks.non_negative_int("unfold", "size", size)
        step = _checks.positive_int("unfold", "step", step)
        if self.ndim == 0:
            raise RuntimeError("unfold: not supported on a 0-d tensor")
        if size > self.shape[d]:
            raise RuntimeError(f"unfold: size {size} is larger than dim {d} of shape "
                               f"{tuple(self.shape)}")
        return _ix.Unfold.apply(self, axis=d, size=size, step=step)

    def stride(self, dim=None):
        """The step in elements from one index to the next along each dim (0 along a
        broadcast dim)."""
        strides = tuple(s // self._data.itemsize for s in self._data.strides)
        return strides if dim is None else strides[_checks.dim("stride", dim, self.ndim)]

    def is_contiguous(self, memory_format=None):
        return bool(self._data.flags.c_contiguous)

    def data_ptr(self):
        """The address of the first element (an int; equal for tensors sharing it)."""
        return int(self._data.__array_interface__["data"][0])

    def nelement(self):
        return self.numel()

    def ndimension(self):
        return self.ndim

    def unsqueeze_(self, dim):
        return _restride(self, "unsqueeze_", lambda t: t.unsqueeze(dim))

    def squeeze_(self, dim=None):
        return _restride(self, "squeeze_", lambda t: t.squeeze(dim))

    def t_(self):
        return _restride(self, "t_", lambda t: t.t())

    def transpose_(self, dim0, dim1):
        return _restride(self, "transpose_", lambda t: t.transpose(dim0, dim1))

    swapdims_ = swapaxes_ = transpose_

    def apply_(self, callable):  # noqa: A002 - PyTorch's name
        """Replace each element x by callable(x), in place (Python speed; no gradient)."""
        if self._requires_grad:
            raise RuntimeError("apply_: can't call apply_() on a tensor that requires grad")
        values = np.vectorize(callable, otypes=[self._data.dtype])(self._data) \
            if self._data.size else self._data
        write(self, "apply_", values)
        return self

    @property
    def H(self):
        """The conjugate transpose of a matrix (the transpose: retrograd is real)."""
        if self.ndim not in (0, 2):
            raise RuntimeError(f"H: only supported on matrices (2-D tensors), got shape "
                               f"{tuple(self.shape)}; use mH for batches")
        return self.t()

    @property
    def mH(self):
        """The transpose of the last two dims (conjugation is a no-op on real tensors)."""
        if self.ndim < 2:
            raise RuntimeError(f"mH: needs a tensor with >= 2 dims, got shape {tuple(self.shape)}")
        return self.transpose(-2, -1)

    adjoint = mH.fget


for _name in ("scatter", "scatter_add", "index_add", "index_fill", "index_copy",
              "masked_scatter"):
    setattr(Methods, _name + "_", in_place(_name))
