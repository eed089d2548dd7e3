"""Dropout layer."""

from retrograd import _checks
from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["Dropout"]


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
