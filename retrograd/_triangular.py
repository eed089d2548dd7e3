"""tril and triu, as torch.tril and torch.triu: argument checks, then one op of
``ops/triangular.py``."""

from retrograd import _checks
from retrograd.ops.triangular import Tril, Triu
from retrograd.tensor import Tensor

__all__ = ["tril", "triu"]


def _check(op, input, diagonal):  # noqa: A002 - PyTorch's name
    x = _checks.instance_of(op, "input", input, Tensor)
    if x.ndim < 2:
        raise RuntimeError(f"{op}: input tensor must have at least 2 dimensions, got shape "
                           f"{tuple(x.shape)}")
    return x, _checks.integer(op, "diagonal", diagonal)


def tril(input, diagonal=0):  # noqa: A002
    """The lower triangle of the matrices in ``input`` (*, n, m): entry (i, j) is kept when
    j - i <= diagonal, else 0. diagonal 0 is the main diagonal, > 0 above it, < 0 below.

    Example:
        >>> import retrograd as rg
        >>> rg.tril(rg.ones(3, 3))
        tensor([[1., 0., 0.],
                [1., 1., 0.],
                [1., 1., 1.]])
    """
    x, diagonal = _check("tril", input, diagonal)
    return Tril.apply(x, diagonal=diagonal)


def triu(input, diagonal=0):  # noqa: A002
    """The upper triangle of the matrices in ``input`` (*, n, m): entry (i, j) is kept when
    j - i >= diagonal, else 0.

    Example:
        >>> import retrograd as rg
        >>> rg.triu(rg.ones(2, 3), diagonal=1)
        tensor([[0., 1., 1.],
                [0., 0., 1.]])
    """
    x, diagonal = _check("triu", input, diagonal)
    return Triu.apply(x, diagonal=diagonal)
