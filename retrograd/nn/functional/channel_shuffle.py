"""channel_shuffle: ShuffleNet's channel interleaving, a reshape and a transpose (so its
gradient is those ops' own, the inverse interleaving, and double backward works)."""

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.tensor import Tensor

__all__ = ["channel_shuffle", "native_channel_shuffle"]


def channel_shuffle(input, groups, *, owner=None):  # noqa: A002
    """Interleave the channels of (N, C, *) from ``groups`` groups: channel g*(C/g) + k goes
    to position k*g + g', i.e. y = x.reshape(N, g, C/g, *).transpose(1, 2).reshape(N, C, *).
    Any dtype.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.channel_shuffle(rg.arange(6.0).reshape(1, 6, 1), 3).flatten().tolist()
        [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    """
    owner = "channel_shuffle" if owner is None else owner
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got "
                        f"{type(input).__name__}")
    groups = _checks.integer(owner, "groups", groups)
    if groups < 1:
        raise RuntimeError(f"{name_of(owner)}: the number of groups to divide channels in "
                           f"must be positive, got groups={groups}")
    if input.ndim < 3:
        raise RuntimeError(f"{name_of(owner)}: expects an input with more than 2 dims, got "
                           f"input of shape {tuple(input.shape)}")
    n, c, *rest = input.shape
    if c % groups:
        raise RuntimeError(f"{name_of(owner)}: the number of channels must be divisible by "
                           f"groups, got {c} channels and {groups} groups")
    y = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return y.reshape(n, c, *rest)


native_channel_shuffle = channel_shuffle
