"""Dropout layer."""

import numbers

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
        if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability has to be between 0 and 1, but got {p!r}")
        self.p, self.inplace = p, inplace

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.dropout(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"
