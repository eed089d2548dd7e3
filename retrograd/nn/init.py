"""Parameter initializations (in place, without recording a graph), as ``torch.nn.init``.

Every random draw comes from retrograd's generator (``retrograd.manual_seed``), or from the
``generator=`` (a ``retrograd.Generator``) the initializer is given, as in PyTorch.
"""

import math
import warnings

import numpy as np

from retrograd import _checks
from retrograd import random as _random
from retrograd.autograd.grad_mode import no_grad

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_", "eye_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_",
    "orthogonal_", "dirac_", "sparse_",
]


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity (PyTorch's table): 1 for linear, conv and
    sigmoid, 5/3 for tanh, sqrt(2) for relu, sqrt(2 / (1 + slope^2)) for leaky_relu (param is
    the negative slope, default 0.01), 3/4 for selu.

    Example:
        >>> import retrograd as rg
        >>> round(rg.nn.init.calculate_gain("leaky_relu", 0.2), 4)
        1.3868
    """
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    if tensor.ndim < 2:
        raise ValueError(f"init: fan in and fan out need a tensor with at least 2 dims, got "
                         f"shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fan(tensor, mode):
    _checks.one_of("init", "mode", mode, ("fan_in", "fan_out"))
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _write(tensor, values):
    with no_grad():
        np.copyto(tensor._data, values, casting="unsafe")
        tensor._version[0] += 1
    return tensor


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with U(a, b) samples, in place.

    Example:
        >>> import retrograd as rg
        >>> w = rg.nn.init.uniform_(rg.empty(100), -0.1, 0.1)
        >>> bool((w.abs() <= 0.1).all())
        True
    """
    return _write(tensor, _random.uniform(a, b, tensor.shape, _draw_dtype(tensor), generator))


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with N(mean, std^2) samples, in place.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.init.normal_(rg.empty(2, 3), std=0.02).shape
        (2, 3)
    """
    return _write(tensor, _random.normal(mean, std, tensor.shape, _draw_dtype(tensor),
                                         generator))


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """N(mean, std^2) restricted to [a, b] (a and b are values, not numbers of std), by
    rejection: samples are drawn in batches sized by the acceptance probability (at most
    2^21 at a time); an interval holding less than 1e-6 of the mass is an error, not an
    endless loop.

    Example:
        >>> import retrograd as rg
        >>> w = rg.nn.init.trunc_normal_(rg.empty(1000), std=1.0, a=-0.5, b=0.5)
        >>> bool((w.abs() <= 0.5).all())
        True
    """
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    accept = _normal_cdf((b - mean) / std) - _normal_cdf((a - mean) / std)
    if accept < 1e-6:
        raise ValueError(f"trunc_normal_: [{a}, {b}] holds a fraction {accept:.1e} of "
                         f"N({mean}, {std}^2); rejection sampling cannot reach it")
    n = int(np.prod(tensor.shape))
    kept = []
    while n > 0:
        draw = _random.normal(mean, std, min(int(n / accept * 1.1) + 16, 1 << 21), np.float64,
                              generator)
        draw = draw[(draw >= a) & (draw <= b)][:n]
        kept.append(draw)
        n -= draw.size
    values = np.concatenate(kept) if kept else np.zeros(0)
    return _write(tensor, values.reshape(tensor.shape))


def _normal_cdf(z):
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def constant_(tensor, val):
    """Fill with val, in place.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.init.constant_(rg.empty(3), 2.0)
        tensor([2., 2., 2.])
    """
    return _write(tensor, val)


def ones_(tensor):
    """Fill with ones, in place."""
    return _write(tensor, 1)


def zeros_(tensor):
    """Fill with zeros, in place."""
    return _write(tensor, 0)


def eye_(tensor):
    """The identity matrix (ones on the diagonal of a 2-D tensor), in place.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.init.eye_(rg.empty(2, 3))
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """
    if tensor.ndim != 2:
        raise ValueError(f"eye_: expects a 2-D tensor, got shape {tensor.shape}")
    return _write(tensor, np.eye(*tensor.shape))


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio):
    keeps the variance of activations and of gradients roughly equal across layers.

    Example:
        >>> import retrograd as rg
        >>> w = rg.nn.init.xavier_uniform_(rg.empty(30, 20))
        >>> bool((w.abs() <= (6 / 50) ** 0.5).all())
        True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.init.xavier_normal_(rg.empty(30, 20)).shape
        (30, 20)
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al.): PyTorch's default for
    Linear and Conv weights is a = sqrt(5), which gives bound = 1 / sqrt(fan_in). fan is the
    number of inputs (fan_in) or outputs (fan_out) of a unit, times the kernel size.

    Example:
        >>> import retrograd as rg
        >>> w = rg.nn.init.kaiming_uniform_(rg.empty(64, 3, 3, 3), nonlinearity="relu")
        >>> bool((w.abs() <= (6 / 27) ** 0.5).all())
        True
    """
    if _is_empty(tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """N(0, std^2) with std = gain / sqrt(fan), fan as in kaiming_uniform_.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.init.kaiming_normal_(rg.empty(64, 32), mode="fan_out").shape
        (64, 32)
    """
    if _is_empty(tensor):
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor, gain=1.0, generator=None):
    """A (semi-)orthogonal matrix, times gain, from the QR decomposition of a normal sample
    (dims after the first are flattened): W W^T = gain^2 I when rows <= cols.

    Example:
        >>> import numpy as np
        >>> import retrograd as rg
        >>> w = rg.nn.init.orthogonal_(rg.empty(3, 5, dtype=rg.float64)).numpy()
        >>> np.allclose(w @ w.T, np.eye(3))
        True
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: expects at least 2 dims, got shape {tensor.shape}")
    if tensor.numel() == 0:
        return tensor
    rows, cols = tensor.shape[0], int(np.prod(tensor.shape[1:]))
    flat = _random.normal(0.0, 1.0, (rows, cols), np.float64, generator)
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _write(tensor, gain * q.reshape(tensor.shape))


def dirac_(tensor, groups=1):
    """The identity convolution, in place: a 3-, 4- or 5-D weight (out, in, *kernel) of
    zeros with a 1 at the kernel's centre (size // 2 along each kernel dim) of filter
    g*(out/groups) + d, input channel d, for d < min(out/groups, in) in each group g. A
    convolution with it copies its input channels (the first ones, per group).

    Example:
        >>> import retrograd as rg
        >>> w = rg.nn.init.dirac_(rg.empty(2, 2, 3))
        >>> w.tolist()
        [[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]]
    """
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only tensors with 3, 4, or 5 dimensions are supported, got "
                         f"shape {tensor.shape}")
    groups = _checks.positive_int("dirac_", "groups", groups)
    if tensor.shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({tensor.shape[0]}) must be divisible by groups "
                         f"({groups})")
    per_group = tensor.shape[0] // groups
    values = np.zeros(tensor.shape)
    centre = tuple(size // 2 for size in tensor.shape[2:])
    for g in range(groups):
        for d in range(min(per_group, tensor.shape[1])):
            values[(g * per_group + d, d) + centre] = 1
    return _write(tensor, values)


def sparse_(tensor, sparsity, std=0.01, generator=None):
    """A sparse 2-D matrix, in place (Martens, 2010): N(0, std^2) entries, then in every
    column ceil(sparsity * rows) entries, at rows drawn at random, set to 0.

    Args:
        tensor: a 2-D tensor.
        sparsity: the fraction of each column set to 0, in [0, 1].
        std: the standard deviation of the non-zero entries. Default: 0.01.
        generator: a retrograd.Generator to draw from. Default: the global one.

    Example:
        >>> import retrograd as rg
        >>> w = rg.nn.init.sparse_(rg.empty(10, 4), sparsity=0.3)
        >>> (w == 0).sum(dim=0).tolist()
        [3, 3, 3, 3]
    """
    if tensor.ndim != 2:
        raise ValueError(f"sparse_: only tensors with 2 dimensions are supported, got shape "
                         f"{tensor.shape}")
    sparsity = _checks.probability("sparse_", "sparsity", sparsity)
    rows, cols = tensor.shape
    num_zeros = int(math.ceil(sparsity * rows))
    values = _random.normal(0.0, std, tensor.shape, _draw_dtype(tensor), generator)
    for col in range(cols):
        values[_random.permutation(rows, generator)[:num_zeros], col] = 0
    return _write(tensor, values)


def _is_empty(tensor):
    """PyTorch's rule: a zero-element tensor has no fan, so kaiming init is a no-op."""
    if 0 in tensor.shape:
        warnings.warn("init: initializing a zero-element tensor is a no-op", stacklevel=3)
        return True
    return False


def _draw_dtype(tensor):
    return np.float64 if tensor._data.dtype == np.float64 else np.float32
