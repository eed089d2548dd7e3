"""linear: the affine map of fully connected layers."""

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.ops.linalg import Linear
from retrograd.tensor import Tensor

__all__ = ["linear"]


def linear(input, weight, bias=None, *, owner=None):  # noqa: A002 - PyTorch's argument name
    """y = input @ weight^T + bias.

    Args:
        input: (*, in_features). weight: (out_features, in_features). bias: (out_features,).
        owner: who errors name (a layer passes itself); default "linear".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.linear(rg.ones(2, 3), rg.ones(4, 3), rg.zeros(4)).shape
        (2, 4)
    """
    owner = "linear" if owner is None else owner
    _check(input, weight, bias, owner)
    if _checks.mixed_dtypes(input, weight, bias):
        bias_dtype = f", bias dtype {bias.dtype}" if bias is not None else ""
        raise TypeError(f"{name_of(owner)}: expected input and weight (and bias) of one dtype, "
                        f"got input dtype {input.dtype}, weight dtype {weight.dtype}{bias_dtype}")
    return Linear.apply(input, weight, bias)


def _check(input, weight, bias, owner):  # noqa: A002
    """Types and shapes; ``owner`` is named (its repr made) only when an error is raised."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor) \
            or not (bias is None or isinstance(bias, Tensor)):
        raise TypeError(f"{name_of(owner)}: input, weight (and bias) must be Tensors, got "
                        f"{type(input).__name__}, {type(weight).__name__}, "
                        f"{type(bias).__name__}")
    if weight.ndim != 2:
        raise ValueError(f"{name_of(owner)}: weight must be 2-D (out_features, in_features), got "
                         f"shape {weight.shape}")
    if input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        raise ValueError(f"{name_of(owner)}: expected input with last dim {weight.shape[1]}, got "
                         f"input of shape {input.shape} (weight shape {weight.shape})")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"{name_of(owner)}: bias of shape {bias.shape} does not match weight of "
                         f"shape {weight.shape}: expected ({weight.shape[0]},)")
