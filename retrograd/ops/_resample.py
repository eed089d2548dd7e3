"""Linear maps along one axis, made of a few taps, and their adjoints: the shared machinery of
padding by reflection/replication/wrapping (ops/padding.py) and of interpolation
(ops/interpolate.py), which apply one such map per spatial axis (they are separable).

An AxisMap takes an axis of length ``size`` to one of length ``out``:

    y[..., o, ...] = sum over taps t of  weight[t, o] * x[..., index[t, o], ...]

Padding and nearest-neighbour interpolation have one tap of weight 1 (a gather), linear
interpolation two, cubic four. Its adjoint, which backward needs, scatter-adds:

    dL/dx[..., k, ...] = sum over (t, o) with index[t, o] = k of  weight[t, o] * dL/dy[..., o, ...]

computed without np.add.at: when the map is built, the (t, o) pairs are sorted by target
and split into layers, the r-th pair of every target in layer r; within a layer no target
repeats, so each layer is one gather of dL/dy and one fancy-indexed add (padding has two
layers: the interior and the few mirrored elements; a 2x nearest upsampling two halves).

    >>> m = AxisMap(np.array([[0, 0, 1, 2, 2]]), 3)        # 3 -> 5, a nearest-style gather
    >>> m.apply(np.array([1.0, 2.0, 3.0]), -1).tolist()
    [1.0, 1.0, 2.0, 3.0, 3.0]
    >>> m.adjoint(np.array([1.0, 10.0, 100.0, 1000.0, 10000.0]), -1).tolist()
    [11.0, 100.0, 11000.0]
"""

import numpy as np

__all__ = ["AxisMap", "apply_maps", "adjoint_maps"]


class AxisMap:
    """A linear map along one axis (see the module docstring). ``index``: (taps, out) ints in
    [0, size); ``weight``: (taps, out) floats, or None for one tap of weight 1 (a gather)."""

    def __init__(self, index, size, weight=None):
        self.index = np.atleast_2d(np.asarray(index, dtype=np.int64))
        self.weight = None if weight is None else np.asarray(weight).reshape(self.index.shape)
        self.size, self.out = int(size), self.index.shape[1]
        self.layers = _layers(self.index.ravel())

    @property
    def taps(self):
        return self.index.shape[0]

    def apply(self, x, axis):
        """y: x with ``axis`` (negative) mapped from size to out."""
        if self.weight is None and self.taps == 1:
            return np.take(x, self.index[0], axis=axis)
        y = None
        for t in range(self.taps):
            term = np.take(x, self.index[t], axis=axis) * _along(self.weight[t], axis)
            y = term if y is None else np.add(y, term, out=y)
        return y

    def adjoint(self, grad, axis):
        """dL/dx from dL/dy: ``axis`` (negative) mapped back from out to size."""
        shape = list(grad.shape)
        shape[axis] = self.size
        if self.taps == 1 and self.weight is None:
            values = grad
        else:
            values = np.concatenate([grad * _along(self.weight[t], axis)
                                     for t in range(self.taps)], axis=axis)
        if values.shape[axis] == 0 or 0 in shape:
            return np.zeros(shape, dtype=grad.dtype)
        trailing = (slice(None),) * (-axis - 1)
        out = None
        for positions, targets in self.layers:
            picked = np.take(values, positions, axis=axis)
            if out is None and targets.size == self.size:   # layer 0 covers every target
                out = picked
                continue
            if out is None:
                out = np.zeros(shape, dtype=picked.dtype)
            out[(Ellipsis, targets) + trailing] += picked
        return out


def _layers(flat):
    """[(positions, targets), ...]: layer r holds the r-th position (in order) of every
    target that has more than r, and the targets in increasing order (so layer 0 is
    arange(size) when every target has a position)."""
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    targets, starts, counts = np.unique(ordered, return_index=True, return_counts=True)
    rank = np.arange(flat.size) - np.repeat(starts, counts)
    return [(order[rank == r], ordered[rank == r]) for r in range(counts.max(initial=0))]


def _along(weight, axis):
    """weight (out,) shaped to broadcast along ``axis`` (negative)."""
    return weight.reshape((-1,) + (1,) * (-axis - 1))


def apply_maps(x, maps):
    """x with its last len(maps) axes mapped, maps[k] acting on axis k - len(maps); the last
    axis first (so that a bilinear map rounds as PyTorch's CPU kernel, which interpolates
    along W inside its interpolation along H)."""
    for k in range(len(maps) - 1, -1, -1):
        x = maps[k].apply(x, k - len(maps))
    return x


def adjoint_maps(grad, maps):
    """The adjoint of apply_maps: each axis's adjoint, in the reverse order."""
    for k in range(len(maps)):
        grad = maps[k].adjoint(grad, k - len(maps))
    return grad
