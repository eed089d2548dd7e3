"""one_hot: class indices as one-hot rows."""

import numpy as np

from retrograd import _checks
from retrograd.tensor import Tensor, make_tensor

__all__ = ["one_hot"]


def one_hot(tensor, num_classes=-1):
    """y[..., c] = 1 where tensor[...] == c, else 0: an int64 tensor of shape
    (*, num_classes) for int64 class indices of shape (*). ``num_classes=-1`` uses
    max(tensor) + 1. No gradient (the result is integer).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.one_hot(rg.tensor([0, 2, 1]))
        tensor([[1, 0, 0],
                [0, 0, 1],
                [0, 1, 0]])
    """
    t = _checks.instance_of("one_hot", "tensor", tensor, Tensor)
    ids = t._data
    if ids.dtype != np.int64:
        raise RuntimeError(f"one_hot: is only applicable to index tensors of dtype int64, got "
                           f"{t.dtype} (shape {tuple(t.shape)}); convert with .long()")
    num_classes = _checks.integer("one_hot", "num_classes", num_classes)
    if num_classes == -1:
        if ids.size == 0:
            raise RuntimeError("one_hot: can not infer the total number of classes from an "
                               "empty tensor; pass num_classes")
        num_classes = int(ids.max()) + 1
    elif num_classes < 0:
        raise RuntimeError(f"one_hot: num_classes must be -1 (inferred) or >= 0, got "
                           f"{num_classes}")
    if ids.size and ids.min() < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {int(ids.min())}")
    if ids.size and ids.max() >= num_classes:
        raise RuntimeError(f"one_hot: class values must be smaller than num_classes "
                           f"({num_classes}), got {int(ids.max())}")
    return make_tensor((ids[..., None] == np.arange(num_classes)).astype(np.int64))
