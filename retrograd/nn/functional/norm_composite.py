"""Normalizations composed of differentiable ops, as PyTorch computes them: normalize (the
norm, a clamp and a division) and local_response_norm (a square, a zero pad, an average
pool across channels, a power and a division). Their gradients are those of the parts."""

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._checks import name_of
from retrograd.autograd.grad_mode import is_grad_enabled, no_grad
from retrograd.nn.functional.padding import pad
from retrograd.nn.functional.pool import avg_pool2d
from retrograd.tensor import Tensor

__all__ = ["normalize", "local_response_norm"]


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):  # noqa: A002
    """input / max(||input||_p, eps) along ``dim``: each slice along dim scaled to norm 1.

    The clamp is ``clamp_min``, so a slice whose norm is below eps (a zero row) is divided by
    eps and gets the gradient dL/dy / eps, nothing through its norm (PyTorch's values).

    Args:
        input: a floating Tensor of any shape.
        p: the norm's exponent (2.0, 1.0, inf, ...). Default: 2.0.
        dim: the dim (or dims) normalized. Default: 1.
        eps: the smallest divisor. Default: 1e-12.
        out: a Tensor of input's shape to write the result into (not differentiable).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.normalize(rg.tensor([[3.0, 4.0], [0.0, 0.0]]))
        tensor([[0.6, 0.8],
                [0. , 0. ]])
    """
    _check_floating("normalize", input)
    if out is not None:
        _check_out(input, out)
        with no_grad():
            return out.copy_(normalize(input, p, dim, eps))
    return input / input.norm(p, dim, keepdim=True).clamp_min(eps).expand_as(input)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0, *,  # noqa: A002
                        owner=None):
    """Divide each element by (k + alpha * the mean of the squares of ``size`` neighbouring
    channels) ** beta: with c the channel of x:(N, C, *),

        y_c = x_c / (k + alpha / size * sum(x_c'^2 for c' in [c - size//2, c + (size-1)//2]))
                   ** beta

    channels beyond the edges counting as 0 (PyTorch's zero padding and average pool).

    Args:
        input: (N, C, *) with at least 3 dims; an empty input is returned as it is.
        size: the number of channels in the window.
        alpha, beta, k: the formula's constants. Defaults: 1e-4, 0.75, 1.0.
        owner: who errors name (a layer passes itself); default "local_response_norm".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[[1.0], [2.0], [2.0]]])
        >>> F.local_response_norm(x, 2, alpha=1.0, beta=1.0).flatten()   # 1/1.5, 2/3.5, 2/5
        tensor([0.6667, 0.5714, 0.4   ])
    """
    owner = "local_response_norm" if owner is None else owner
    _check_floating(owner, input)
    if input.ndim < 3:
        raise ValueError(f"{name_of(owner)}: Expected 3D or higher dimensionality input (got "
                         f"{input.ndim} dimensions, input of shape {input.shape})")
    size = _checks.positive_int(owner, "size", size)
    if input.numel() == 0:
        return input
    n, channels = input.shape[:2]
    squares = (input * input).reshape(n, 1, channels, -1)
    squares = pad(squares, (0, 0, size // 2, (size - 1) // 2))
    mean_square = avg_pool2d(squares, (size, 1), stride=1).reshape(input.shape)
    return input / (mean_square * alpha + k) ** beta


def _check_floating(owner, input):  # noqa: A002
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got {type(input).__name__}")
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{name_of(owner)}: expected a floating-point input, got dtype "
                        f"{input.dtype} (shape {input.shape})")


def _check_out(input, out):  # noqa: A002
    if not isinstance(out, Tensor) or tuple(out.shape) != tuple(input.shape):
        raise ValueError(f"normalize: out must be a Tensor of the input's shape {input.shape}, "
                         f"got {getattr(out, 'shape', type(out).__name__)}")
    if is_grad_enabled() and (input.requires_grad or out.requires_grad):
        raise RuntimeError("normalize: functions with out=... arguments don't support "
                           "automatic differentiation, but one of the arguments requires grad")
