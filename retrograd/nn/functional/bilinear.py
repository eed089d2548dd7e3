"""bilinear: y = x1^T A x2 + b, the bilinear map of nn.Bilinear, as one einsum."""

from retrograd import _checks
from retrograd._checks import name_of
from retrograd._einsum import einsum
from retrograd.tensor import Tensor

__all__ = ["bilinear"]


def bilinear(input1, input2, weight, bias=None, *, owner=None):
    """y[..., o] = sum over i, j of input1[..., i] weight[o, i, j] input2[..., j] + bias[o].

    One einsum (NumPy's contraction path: input1 with the weight by a matrix product, then
    the products with input2 summed); its gradients are einsums too, so bilinear is twice
    differentiable. Under autocast it runs as Einsum, on the low-precision list.

    Args:
        input1: (*, in1_features). input2: (*, in2_features), the same leading dims (no
            broadcasting, as PyTorch). weight: (out_features, in1_features, in2_features).
            bias: (out_features,) or None.
        owner: who errors name (a layer passes itself); default "bilinear".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.bilinear(rg.ones(2, 3), rg.ones(2, 4), rg.ones(5, 3, 4), rg.zeros(5)).shape
        (2, 5)
    """
    owner = "bilinear" if owner is None else owner
    _check(input1, input2, weight, bias, owner)
    if _checks.mixed_dtypes(input1, input2, weight, bias):
        dtypes = ", ".join(str(t.dtype) for t in (input1, input2, weight, bias) if t is not None)
        raise TypeError(f"{name_of(owner)}: expected input1, input2, weight (and bias) of one "
                        f"dtype, got dtypes {dtypes}")
    y = einsum("...i,oij,...j->...o", input1, weight, input2)
    return y + bias if bias is not None else y


def _check(input1, input2, weight, bias, owner):
    """Types and shapes (PyTorch's rules); ``owner`` is named only when an error is raised."""
    for name, t in (("input1", input1), ("input2", input2), ("weight", weight)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name_of(owner)}: {name} must be a Tensor, got {type(t).__name__}")
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"{name_of(owner)}: bias must be a Tensor or None, got "
                        f"{type(bias).__name__}")
    if weight.ndim != 3:
        raise ValueError(f"{name_of(owner)}: weight must be 3-D (out_features, in1_features, "
                         f"in2_features), got shape {weight.shape}")
    if input1.ndim == 0 or input1.ndim != input2.ndim:
        raise RuntimeError(f"{name_of(owner)}: input dimensions do not match: got input1 of shape "
                           f"{input1.shape} and input2 of shape {input2.shape}")
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise RuntimeError(f"{name_of(owner)}: input batch dimensions do not match: got input1 of "
                           f"shape {input1.shape} and input2 of shape {input2.shape}")
    for k, (name, t) in enumerate((("input1", input1), ("input2", input2)), start=1):
        if t.shape[-1] != weight.shape[k]:
            raise RuntimeError(f"{name_of(owner)}: {name} size does not match weight size: got "
                               f"{t.shape[-1]} but expected {weight.shape[k]} ({name} of shape "
                               f"{t.shape}, weight of shape {weight.shape})")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise RuntimeError(f"{name_of(owner)}: bias size does not match weight size: got bias of "
                           f"shape {bias.shape}, expected ({weight.shape[0]},)")
