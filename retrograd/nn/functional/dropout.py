"""dropout: randomly zero elements during training."""

import numbers

from retrograd import dtypes as _dt
from retrograd.ops.dropout import Dropout
from retrograd.tensor import Tensor

__all__ = ["dropout"]


def dropout(input, p=0.5, training=True, inplace=False):  # noqa: A002 - PyTorch's name
    """In training, zero each element with probability p (mask drawn from retrograd's
    generator) and scale the others by 1 / (1 - p), so the expected value is unchanged; the
    same mask scales the gradient. Outside training (or with p = 0) the input is returned
    as is; p = 1 gives zeros.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> _ = rg.manual_seed(0)
        >>> y = F.dropout(rg.ones(1000), p=0.2)
        >>> sorted(set(y.numpy().tolist()))
        [0.0, 1.25]
        >>> F.dropout(rg.ones(3), p=0.2, training=False)
        tensor([1., 1., 1.])
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"dropout: input must be a Tensor, got {type(input).__name__}")
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p!r}")
    if not training or p == 0 or input.numel() == 0:
        return input
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"dropout: expected a floating-point input, got dtype {input.dtype} "
                        f"(shape {input.shape})")
    out = Dropout.apply(input, p=float(p))
    return input.copy_(out) if inplace else out
