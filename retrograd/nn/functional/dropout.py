"""dropout: randomly zero elements during training."""

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._checks import name_of
from retrograd.ops.dropout import Dropout
from retrograd.tensor import Tensor

__all__ = ["dropout"]


def dropout(input, p=0.5, training=True, inplace=False, *, owner=None):  # noqa: A002
    """In training, zero each element with probability p (mask drawn from retrograd's
    generator) and scale the others by 1 / (1 - p), so the expected value is unchanged; the
    same mask scales the gradient. Outside training (or with p = 0) the input is returned
    as is; p = 1 gives zeros.

    Args:
        input: any shape, floating point. p: the probability of zeroing, in [0, 1].
        training: apply dropout (else return input). inplace: write the result into input.
        owner: who errors name (a layer passes itself); default "dropout".

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
    owner = "dropout" if owner is None else owner
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got {type(input).__name__}")
    p = _checks.probability(owner, "dropout probability", p)
    if not training or p == 0 or input.numel() == 0:
        return input
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{name_of(owner)}: expected a floating-point input, got dtype "
                        f"{input.dtype} (shape {input.shape})")
    out = Dropout.apply(input, p=p)
    return input.copy_(out) if inplace else out


def torch_dropout(input, p, train):  # noqa: A002 - PyTorch's names
    """``torch.dropout(input, p, train)``: dropout under PyTorch's top-level name, whose third
    argument is ``train`` (nn.functional's is ``training``)."""
    return dropout(input, p, training=train)
