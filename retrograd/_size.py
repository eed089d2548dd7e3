"""Size: the shape of a tensor, a tuple of ints, as ``torch.Size``.

``Tensor.shape`` and ``Tensor.size()`` return it. It is a tuple (it compares equal to one,
indexes, unpacks and passes to NumPy as one); on top it has ``numel()``, and slicing it,
adding a tuple to it or repeating it gives a Size again.

NOTE: it prints as a tuple, ``(2, 3)``, not as ``torch.Size([2, 3])``: retrograd's error
messages quote shapes, and read the same with a Size as with a tuple.
"""

import numbers

__all__ = ["Size"]


class Size(tuple):
    """A tensor's shape: a tuple of ints with ``numel()``.

    Example:
        >>> import retrograd as rg
        >>> s = rg.zeros(2, 3, 4).shape
        >>> s, s.numel(), s[1:], isinstance(s[1:], rg.Size)
        ((2, 3, 4), 24, (3, 4), True)
    """

    __slots__ = ()

    def __new__(cls, sizes=()):
        values = tuple(sizes)
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) \
                    and not _is_index(v):
                raise TypeError(f"Size: takes an iterable of ints (item {i} is "
                                f"'{type(v).__name__}')")
        return tuple.__new__(cls, (v.__index__() for v in values))

    def numel(self):
        """The number of elements of a tensor of this shape (1 for the empty shape)."""
        count = 1
        for s in self:
            count *= s
        return count

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return as_size(item) if isinstance(index, slice) else item

    def __add__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return as_size(tuple.__add__(self, other))

    def __radd__(self, other):
        if not isinstance(other, tuple):
            return NotImplemented
        return as_size(tuple.__add__(other, self))

    def __mul__(self, times):
        return as_size(tuple.__mul__(self, times))

    __rmul__ = __mul__

    def __reduce__(self):
        return (Size, (tuple(self),))


def _is_index(value):
    """A one-element integer tensor or NumPy integer, usable where an int is (``__index__``)."""
    try:
        value.__index__()
    except (AttributeError, TypeError):
        return False
    return True


_size_new = tuple.__new__


def as_size(values):
    """A Size from a tuple of ints, without checks (the fast path for ``Tensor.shape``)."""
    return _size_new(Size, values)
