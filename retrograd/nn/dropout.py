"""Dropout layers: Dropout (elements) and Dropout1d/2d/3d (whole channels)."""

from retrograd import _checks
from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class Dropout(Module):
    """During training, zeroes each element with probability p and scales the others by
    1 / (1 - p); in eval mode it is the identity.

    Args:
        p: probability of an element to be zeroed. Default: 0.5.
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (*), any shape.
        - Output: (*), the input's shape.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.Dropout(p=0.5)
        >>> y = layer(rg.ones(4, 8))
        >>> sorted(set(y.numpy().ravel().tolist()))
        [0.0, 2.0]
        >>> layer.eval()(rg.ones(2))
        tensor([1., 1.])
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        _checks.probability("Dropout", "dropout probability", p)
        self.p, self.inplace = p, inplace  # p as given, as PyTorch (its repr shows it)

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.dropout(input, self.p, self.training, self.inplace, owner=self)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class _DropoutNd(Module):
    """Shared by the channel dropouts: p, inplace, the repr; forward calls ``_function``."""

    _function = None

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        _checks.probability(type(self).__name__, "dropout probability", p)
        self.p, self.inplace = p, inplace

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return type(self)._function(input, self.p, self.training, self.inplace, owner=self)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """During training, zeroes each channel of each sample (a 1-D feature map) with
    probability p and scales the others by 1 / (1 - p); in eval mode it is the identity.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5.
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (N, C, L) or (C, L). Output: the input's shape.

    Example:
        >>> import retrograd as rg
        >>> y = rg.nn.Dropout1d(p=0.5)(rg.ones(4, 8, 3))
        >>> sorted(set(y.sum(dim=-1).flatten().tolist()))
        [0.0, 6.0]
    """

    _function = staticmethod(F.dropout1d)


class Dropout2d(_DropoutNd):
    """During training, zeroes each channel of each sample (a 2-D feature map) with
    probability p and scales the others by 1 / (1 - p); in eval mode it is the identity.
    Use it after convolutions, whose neighbouring pixels are too correlated for Dropout.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5.
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (N, C, H, W); a 3-D input is read as (N, C, L), with PyTorch's warning.
        - Output: the input's shape.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.Dropout2d(p=0.5)
        >>> y = layer(rg.ones(4, 8, 2, 2))
        >>> sorted(set(y.sum(dim=(2, 3)).flatten().tolist()))
        [0.0, 8.0]
        >>> layer.eval()(rg.ones(1, 1, 1, 2))
        tensor([[[[1., 1.]]]])
    """

    _function = staticmethod(F.dropout2d)


class Dropout3d(_DropoutNd):
    """During training, zeroes each channel of each sample (a 3-D feature map) with
    probability p and scales the others by 1 / (1 - p); in eval mode it is the identity.

    Args:
        p: probability of a channel to be zeroed. Default: 0.5.
        inplace: write the result into the input. Default: False.

    Shape:
        - Input: (N, C, D, H, W) or (C, D, H, W). Output: the input's shape.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Dropout3d(p=0.2)(rg.ones(2, 3, 2, 2, 2)).shape
        (2, 3, 2, 2, 2)
    """

    _function = staticmethod(F.dropout3d)
