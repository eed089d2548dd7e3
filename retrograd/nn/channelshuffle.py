"""ChannelShuffle layer, a thin Module over nn.functional.channel_shuffle."""

from retrograd import _checks
from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    """Interleaves the channels of ``groups`` groups (ShuffleNet, Zhang et al., 2017), so
    that the next grouped convolution sees channels of every group:
    y = x.reshape(N, g, C/g, *).transpose(1, 2).reshape(N, C, *).

    Args:
        groups: g, the number of groups; it divides C.

    Shape:
        - Input: (N, C, *), at least 3 dims. Output: the same shape.

    Example:
        >>> import retrograd as rg
        >>> shuffle = rg.nn.ChannelShuffle(2)
        >>> shuffle
        ChannelShuffle(groups=2)
        >>> shuffle(rg.arange(4.0).reshape(1, 4, 1, 1)).flatten().tolist()
        [0.0, 2.0, 1.0, 3.0]
    """

    def __init__(self, groups):
        super().__init__()
        self.groups = _checks.integer("ChannelShuffle", "groups", groups)

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.channel_shuffle(input, self.groups, owner=self)

    def extra_repr(self):
        return f"groups={self.groups}"
