"""Padding layers, thin Modules over nn.functional.pad: ZeroPad, ConstantPad, ReflectionPad,
ReplicationPad and CircularPad in 1-D, 2-D and 3-D, as PyTorch's.

``padding`` is an int (the same on every side) or PyTorch's tuple, last axis first:
(left, right) in 1-D, (left, right, top, bottom) in 2-D, (left, right, top, bottom, front,
back) in 3-D.
"""

from retrograd import _checks
from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d",
           "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
           "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d",
           "CircularPad2d", "CircularPad3d"]


def _padding(name, padding, dims):
    """An int repeated 2*dims times, or a tuple of ints as given (as PyTorch, a shorter
    tuple pads fewer dimensions; F.pad checks it against the input)."""
    if _checks.is_int(padding):
        return (int(padding),) * (2 * dims)
    if not isinstance(padding, (tuple, list)) or not all(_checks.is_int(p) for p in padding):
        raise TypeError(f"{name}: padding must be an int or a tuple of {2 * dims} ints "
                        f"(last dimension first), got {padding!r}")
    return tuple(int(p) for p in padding)


class _PadNd(Module):
    """Shared by the padding layers: the padding tuple, the mode, the repr."""

    _dims = 0
    _mode = "constant"

    def __init__(self, padding):
        super().__init__()
        self.padding = _padding(type(self).__name__, padding, self._dims)

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.pad(input, self.padding, self._mode, owner=self)

    def extra_repr(self):
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value):
        super().__init__(padding)
        self.value = value

    def forward(self, input):  # noqa: A002
        return F.pad(input, self.padding, "constant", self.value, owner=self)

    def extra_repr(self):
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pads the last dimension with a constant value.

    Args:
        padding: int, or (left, right). value: the fill.

    Shape:
        - Input: (*, W). Output: (*, W + left + right).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ConstantPad1d((1, 2), 3.5)(rg.tensor([[1., 2.]])).tolist()
        [[3.5, 1.0, 2.0, 3.5, 3.5]]
    """

    _dims = 1


class ConstantPad2d(_ConstantPadNd):
    """Pads the last two dimensions with a constant value.

    Args:
        padding: int, or (left, right, top, bottom). value: the fill.

    Shape:
        - Input: (*, H, W). Output: (*, H + top + bottom, W + left + right).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ConstantPad2d(1, -1.0)(rg.ones(1, 1, 2)).shape
        (1, 3, 4)
    """

    _dims = 2


class ConstantPad3d(_ConstantPadNd):
    """Pads the last three dimensions with a constant value.

    Args:
        padding: int, or (left, right, top, bottom, front, back). value: the fill.

    Shape:
        - Input: (*, D, H, W). Output: (*, D + front + back, H + top + bottom,
          W + left + right).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ConstantPad3d((1, 0, 0, 1, 2, 0), 0.5)(rg.ones(1, 2, 2, 2)).shape
        (1, 4, 3, 3)
    """

    _dims = 3


class ZeroPad1d(ConstantPad1d):
    """Pads the last dimension with zeros (ConstantPad1d with value 0).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ZeroPad1d((0, 2))(rg.tensor([[1., 2.]])).tolist()
        [[1.0, 2.0, 0.0, 0.0]]
    """

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pads the last two dimensions with zeros (ConstantPad2d with value 0).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ZeroPad2d((1, 1, 2, 0))(rg.ones(1, 3, 3)).shape
        (1, 5, 5)
    """

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pads the last three dimensions with zeros (ConstantPad3d with value 0).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ZeroPad3d(1)(rg.ones(1, 1, 1, 1)).shape
        (1, 3, 3, 3)
    """

    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self):
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pads the last dimension with its reflection about the edge element (which is not
    repeated): [1, 2, 3] padded by (2, 1) is [3, 2, 1, 2, 3, 2]. Each pad must be smaller
    than the dimension.

    Shape:
        - Input: (C, W) or (N, C, W). Output: (C, W + left + right) or (N, C, ...).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ReflectionPad1d((2, 1))(rg.tensor([[1., 2., 3.]])).tolist()
        [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    """

    _dims = 1
    _mode = "reflect"


class ReflectionPad2d(_PadNd):
    """Pads the last two dimensions with their reflection about the edge (see
    ReflectionPad1d).

    Shape:
        - Input: (C, H, W) or (N, C, H, W). Output: (..., H + top + bottom, W + left + right).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ReflectionPad2d(1)(rg.arange(4.).reshape(1, 2, 2)).tolist()
        [[[3.0, 2.0, 3.0, 2.0], [1.0, 0.0, 1.0, 0.0], [3.0, 2.0, 3.0, 2.0], [1.0, 0.0, 1.0, 0.0]]]
    """

    _dims = 2
    _mode = "reflect"


class ReflectionPad3d(_PadNd):
    """Pads the last three dimensions with their reflection about the edge.

    Shape:
        - Input: (C, D, H, W) or (N, C, D, H, W).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ReflectionPad3d(1)(rg.ones(1, 1, 2, 2, 2)).shape
        (1, 1, 4, 4, 4)
    """

    _dims = 3
    _mode = "reflect"


class ReplicationPad1d(_PadNd):
    """Pads the last dimension by repeating its edge elements.

    Shape:
        - Input: (C, W) or (N, C, W).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ReplicationPad1d((2, 1))(rg.tensor([[1., 2., 3.]])).tolist()
        [[1.0, 1.0, 1.0, 2.0, 3.0, 3.0]]
    """

    _dims = 1
    _mode = "replicate"


class ReplicationPad2d(_PadNd):
    """Pads the last two dimensions by repeating their edge elements.

    Shape:
        - Input: (C, H, W) or (N, C, H, W).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ReplicationPad2d((1, 0, 0, 1))(rg.tensor([[[1., 2.]]])).tolist()
        [[[1.0, 1.0, 2.0], [1.0, 1.0, 2.0]]]
    """

    _dims = 2
    _mode = "replicate"


class ReplicationPad3d(_PadNd):
    """Pads the last three dimensions by repeating their edge elements.

    Shape:
        - Input: (C, D, H, W) or (N, C, D, H, W).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.ReplicationPad3d((1, 1, 0, 0, 0, 2))(rg.ones(1, 1, 1, 1, 1)).shape
        (1, 1, 3, 1, 3)
    """

    _dims = 3
    _mode = "replicate"


class _CircularPadNd(_PadNd):
    """PyTorch's circular padding layers check the input's dimensionality themselves."""

    _mode = "circular"

    def forward(self, input):  # noqa: A002
        if input.ndim not in (self._dims + 1, self._dims + 2):
            raise ValueError(f"{_checks.name_of(self)}: expected {self._dims + 1}D or "
                             f"{self._dims + 2}D input (got {input.ndim}D input of shape "
                             f"{tuple(input.shape)})")
        return super().forward(input)


class CircularPad1d(_CircularPadNd):
    """Pads the last dimension by wrapping around: [1, 2, 3] padded by (2, 1) is
    [2, 3, 1, 2, 3, 1].

    Shape:
        - Input: (C, W) or (N, C, W).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.CircularPad1d((2, 1))(rg.tensor([[1., 2., 3.]])).tolist()
        [[2.0, 3.0, 1.0, 2.0, 3.0, 1.0]]
    """

    _dims = 1


class CircularPad2d(_CircularPadNd):
    """Pads the last two dimensions by wrapping around.

    Shape:
        - Input: (C, H, W) or (N, C, H, W).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.CircularPad2d((1, 0, 1, 0))(rg.tensor([[[1., 2.], [3., 4.]]])).tolist()
        [[[4.0, 3.0, 4.0], [2.0, 1.0, 2.0], [4.0, 3.0, 4.0]]]
    """

    _dims = 2


class CircularPad3d(_CircularPadNd):
    """Pads the last three dimensions by wrapping around.

    Shape:
        - Input: (C, D, H, W) or (N, C, D, H, W).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.CircularPad3d(1)(rg.ones(1, 1, 2, 2, 2)).shape
        (1, 1, 4, 4, 4)
    """

    _dims = 3
