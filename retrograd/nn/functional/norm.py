"""Normalization: batch_norm, layer_norm, group_norm (each one fused op, see ops/norm.py),
rms_norm (ops/rms_norm.py) and instance_norm (on the group norm and batch norm ops)."""

import math
import numbers

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._checks import name_of
from retrograd.autograd.grad_mode import STATE, no_grad
from retrograd.ops.norm import BatchNorm, BatchNormRelu, GroupNorm, LayerNorm
from retrograd.ops.rms_norm import RMSNorm
from retrograd.tensor import Tensor

__all__ = ["batch_norm", "batch_norm_relu", "layer_norm", "group_norm", "rms_norm",
           "instance_norm"]


def batch_norm(input, running_mean, running_var, weight=None, bias=None,  # noqa: A002
               training=False, momentum=0.1, eps=1e-5, *, owner=None):
    """Normalize each channel of input:(N, C, *) over the batch and spatial dims, then
    y = x_hat * weight + bias per channel.

    training=True uses the batch statistics and, when running_mean / running_var are given,
    updates them in place: running = (1 - momentum) running + momentum batch_stat, with the
    unbiased batch variance (PyTorch's rule). training=False uses running_mean and
    running_var. While a checkpoint recomputes a forward (``STATE.recomputing``) the running
    statistics are left alone: the first forward already updated them.

    Args:
        input: (N, C) or (N, C, L) or (N, C, H, W) (any (N, C, *)).
        running_mean, running_var: (C,) buffers, or None (training only).
        weight, bias: (C,) or None.
        owner: who errors name (a layer passes itself); default "batch_norm".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[1.0], [3.0]])
        >>> mean, var = rg.zeros(1), rg.ones(1)
        >>> F.batch_norm(x, mean, var, training=True).numpy().round(3).ravel().tolist()
        [-1.0, 1.0]
        >>> mean, var   # moved 10% of the way to the batch mean 2 and unbiased variance 2
        (tensor([0.2]), tensor([1.1]))
    """
    return _batch_norm(BatchNorm, input, running_mean, running_var, weight, bias, training,
                       momentum, eps, "batch_norm" if owner is None else owner)


def _batch_norm(op, input, running_mean, running_var, weight, bias,  # noqa: A002
                training, momentum, eps, owner):
    """batch_norm's checks and call of ``op`` (BatchNorm, or BatchNormRelu)."""
    _check_input(input, 2, owner)
    channels = input.shape[1]
    _check_per_channel(channels, owner, input, weight=weight, bias=bias,
                       running_mean=running_mean, running_var=running_var)
    _check_eps(eps, owner)
    if training:
        per_channel = input.numel() // max(channels, 1)
        if per_channel <= 1:
            raise ValueError(f"{name_of(owner)}: Expected more than 1 value per channel when "
                             f"training, got input of shape {input.shape}")
    elif running_mean is None or running_var is None:
        raise ValueError(f"{name_of(owner)}: running_mean and running_var must be given when "
                         f"training=False (they are the statistics used for normalization)")
    if training and STATE.recomputing:  # the same batch, so the same statistics: no update
        running_mean = running_var = None
    out = op.apply(input, weight, bias, _array_of(running_mean), _array_of(running_var),
                   training=bool(training), momentum=float(momentum or 0.0), eps=float(eps))
    if training:
        for buffer in (running_mean, running_var):
            if buffer is not None:
                buffer._version[0] += 1  # updated in place by the op
    return out


def batch_norm_relu(input, running_mean, running_var, weight=None, bias=None,  # noqa: A002
                    training=False, momentum=0.1, eps=1e-5, *, owner=None):
    """relu(batch_norm(...)) as one fused op (retrograd's own; PyTorch has no such function):
    the ReLU is applied in place to batch_norm's result, and one autograd node does both
    backwards. nn.Sequential runs it for a BatchNorm layer followed by a ReLU layer. Arguments
    as batch_norm's.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> x = rg.tensor([[1.0], [3.0]])
        >>> F.batch_norm_relu(x, None, None, training=True).numpy().round(3).ravel().tolist()
        [0.0, 1.0]
    """
    return _batch_norm(BatchNormRelu, input, running_mean, running_var, weight, bias, training,
                       momentum, eps, "batch_norm_relu" if owner is None else owner)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *,  # noqa: A002
               owner=None):
    """Normalize over the trailing dims given by normalized_shape (per sample, per position),
    then y = x_hat * weight + bias elementwise over those dims.

    Args:
        input: (*, normalized_shape[0], ..., normalized_shape[-1]).
        normalized_shape: an int or a tuple of ints, the trailing dims of input.
        weight, bias: of shape normalized_shape, or None.
        owner: who errors name (a layer passes itself); default "layer_norm".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.layer_norm(rg.tensor([[1.0, 3.0]]), (2,)).numpy().round(4).tolist()
        [[-1.0, 1.0]]
    """
    owner = "layer_norm" if owner is None else owner
    shape = _checks.positive_int_tuple(owner, "normalized_shape", normalized_shape)
    _check_input(input, len(shape), owner)
    _check_normalized_shape(input, shape, owner)
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None:
            _check_param_shape(_param_shape(param, name, owner, input), name, shape, owner)
    _check_eps(eps, owner)
    return LayerNorm.apply(input, weight, bias, normalized_ndim=len(shape), eps=float(eps))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, *,  # noqa: A002
               owner=None):
    """Split the C channels of input:(N, C, *) into num_groups groups and normalize each
    group of each sample, then y = x_hat * weight + bias per channel.

    Args:
        input: (N, C, *).
        num_groups: a divisor of C.
        weight, bias: (C,) or None.
        owner: who errors name (a layer passes itself); default "group_norm".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.group_norm(rg.tensor([[1.0, 3.0, 5.0, 9.0]]), 2).numpy().round(4).tolist()
        [[-1.0, 1.0, -1.0, 1.0]]
    """
    owner = "group_norm" if owner is None else owner
    _check_input(input, 2, owner)
    channels = input.shape[1]
    num_groups = _checks.positive_int(owner, "num_groups", num_groups)
    if channels % num_groups != 0:
        raise ValueError(f"{name_of(owner)}: the number of channels {channels} (input of shape "
                         f"{input.shape}) must be divisible by num_groups={num_groups}")
    _check_per_channel(channels, owner, input, weight=weight, bias=bias)
    _check_eps(eps, owner)
    return GroupNorm.apply(input, weight, bias, num_groups=num_groups, eps=float(eps))


def rms_norm(input, normalized_shape, weight=None, eps=None, *, owner=None):  # noqa: A002
    """Divide each slice over the trailing dims given by normalized_shape by its root mean
    square, then y = x_hat * weight elementwise over those dims (one fused op, see
    ops/rms_norm.py): y = x / sqrt(mean(x^2) + eps) * weight.

    Args:
        input: (*, normalized_shape[0], ..., normalized_shape[-1]); may be empty.
        normalized_shape: an int or a tuple of ints, the trailing dims of input.
        weight: of shape normalized_shape, or None. A weight of another floating dtype
            multiplies in the wider dtype and the result is cast back to input's, as PyTorch.
        eps: added to the mean square; None takes finfo(dtype).eps of the dtype the op
            computes in: float32 for float16 and bfloat16 inputs (as PyTorch), else input's.
        owner: who errors name (a layer passes itself); default "rms_norm".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.rms_norm(rg.tensor([[3.0, -4.0]]), (2,), eps=0.0)   # x / sqrt(12.5)
        tensor([[ 0.8485, -1.1314]])
    """
    owner = "rms_norm" if owner is None else owner
    shape = _checks.positive_int_tuple(owner, "normalized_shape", normalized_shape)
    _check_floating_input(input, len(shape), owner)
    _check_normalized_shape(input, shape, owner)
    if eps is None:
        eps = float(np.finfo(np.float32 if input._data.dtype.itemsize < 4
                             else input._data.dtype).eps)
    _check_eps(eps, owner)
    cast_back = weight is not None and _checks.mixed_dtypes(weight, input) and \
        isinstance(weight, Tensor) and _dt.is_floating(weight._data.dtype)
    if weight is not None:
        _check_param_shape(tuple(weight.shape) if cast_back else
                           _param_shape(weight, "weight", owner, input), "weight", shape, owner)
    if cast_back:  # PyTorch's composite: x_hat in input's dtype, * weight promoted, cast back
        normalized = RMSNorm.apply(input, None, normalized_ndim=len(shape), eps=float(eps))
        return (normalized * weight).to(input.dtype)
    return RMSNorm.apply(input, weight, normalized_ndim=len(shape), eps=float(eps))


def instance_norm(input, running_mean=None, running_var=None, weight=None,  # noqa: A002
                  bias=None, use_input_stats=True, momentum=0.1, eps=1e-5, *, owner=None):
    """Normalize each channel of each sample of input:(N, C, *) over its spatial dims, then
    y = x_hat * weight + bias per channel.

    use_input_stats=True normalizes with each instance's own statistics (a group norm with
    one channel per group: the GroupNorm op) and, when running_mean / running_var are given,
    moves them towards the batch average of those statistics, as PyTorch:
    running = (1 - momentum) running + momentum mean_over_N(stat), with the unbiased
    variance. use_input_stats=False normalizes with running_mean and running_var (the
    BatchNorm op in eval mode: the same statistics for every sample).

    Args:
        input: (N, C, *) with more than one spatial element when use_input_stats.
        running_mean, running_var: (C,) buffers, both or neither.
        weight, bias: (C,) or None.
        owner: who errors name (a layer passes itself); default "instance_norm".

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> F.instance_norm(rg.tensor([[[1.0, 3.0], [2.0, 6.0]]])).numpy().round(3).tolist()
        [[[-1.0, 1.0], [-1.0, 1.0]]]
    """
    owner = "instance_norm" if owner is None else owner
    _check_input(input, 2, owner)
    channels = input.shape[1]
    _check_per_channel(channels, owner, input, weight=weight, bias=bias,
                       running_mean=running_mean, running_var=running_var)
    _check_eps(eps, owner)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{name_of(owner)}: running_mean and running_var must either both be "
                         f"None or neither be None")
    if not use_input_stats:
        if running_mean is None:
            raise RuntimeError(f"{name_of(owner)}: Expected running_mean and running_var to be "
                               f"defined when use_input_stats is false")
        return BatchNorm.apply(input, weight, bias, running_mean._data, running_var._data,
                               training=False, eps=float(eps))
    if math.prod(input.shape[2:]) <= 1:
        raise ValueError(f"{name_of(owner)}: Expected more than 1 spatial element when "
                         f"training, got input of shape {input.shape}")
    if running_mean is not None and not STATE.recomputing:  # a checkpoint replays: no update
        _update_instance_running_stats(input, running_mean, running_var,
                                       float(momentum or 0.0))
    return GroupNorm.apply(input, weight, bias, num_groups=channels, eps=float(eps))


def _update_instance_running_stats(input, running_mean, running_var, momentum):  # noqa: A002
    """running = (1 - momentum) running + momentum * (the mean over the batch of each
    instance's mean, and of its unbiased variance), in place (float16 and bfloat16 inputs
    are averaged in float32)."""
    with no_grad():
        x = input.detach()
        x = x.float() if x._data.dtype.itemsize < 4 else x
        x = x.reshape(x.shape[0], x.shape[1], -1)
        for buffer, stat in ((running_mean, x.mean(-1)), (running_var, x.var(-1))):
            buffer.copy_(buffer * (1.0 - momentum) + stat.mean(0) * momentum)


def _check_normalized_shape(input, shape, owner):  # noqa: A002
    if tuple(input.shape[input.ndim - len(shape):]) != shape:
        raise ValueError(f"{name_of(owner)}: normalized_shape {shape} does not match the last "
                         f"{len(shape)} dims of the input of shape {input.shape}: expected "
                         f"input of shape (*, {', '.join(map(str, shape))})")


def _check_param_shape(param_shape, name, shape, owner):
    if param_shape != shape:
        raise ValueError(f"{name_of(owner)}: {name} of shape {param_shape} does not match "
                         f"normalized_shape {shape}")


def _array_of(t):
    return t._data if isinstance(t, Tensor) else None


def _check_input(input, min_ndim, owner):  # noqa: A002
    _check_floating_input(input, min_ndim, owner)
    if input.numel() == 0:
        raise ValueError(f"{name_of(owner)}: cannot normalize an empty input of shape "
                         f"{input.shape}")


def _check_floating_input(input, min_ndim, owner):  # noqa: A002
    """_check_input without the refusal of an empty input."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name_of(owner)}: input must be a Tensor, got "
                        f"{type(input).__name__}")
    if not _dt.is_floating(input._data.dtype):
        raise TypeError(f"{name_of(owner)}: expected a floating-point input, got dtype "
                        f"{input.dtype} (shape {input.shape})")
    if input.ndim < min_ndim:
        raise ValueError(f"{name_of(owner)}: expected an input with at least {min_ndim} dims, "
                         f"got input of shape {input.shape}")


def _param_shape(param, name, owner, input):  # noqa: A002
    if not isinstance(param, Tensor):
        raise TypeError(f"{name_of(owner)}: {name} must be a Tensor or None, got "
                        f"{type(param).__name__}")
    if _checks.mixed_dtypes(param, input):
        raise TypeError(f"{name_of(owner)}: {name} has dtype {param.dtype} but the input has "
                        f"dtype {input.dtype}; convert one of them")
    return tuple(param.shape)


def _check_per_channel(channels, owner, input, **params):  # noqa: A002
    for name, param in params.items():
        if param is None:
            continue
        if name.startswith("running"):  # buffers may keep their own float dtype
            if not isinstance(param, Tensor):
                raise TypeError(f"{name_of(owner)}: {name} must be a Tensor or None, got "
                                f"{type(param).__name__}")
            shape = tuple(param.shape)
        else:
            shape = _param_shape(param, name, owner, input)
        if shape != (channels,):
            raise ValueError(f"{name_of(owner)}: {name} of shape {param.shape} does not match "
                             f"the {channels} channels of the input of shape {input.shape}: "
                             f"expected ({channels},)")


def _check_eps(eps, owner):
    if not isinstance(eps, numbers.Real) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{name_of(owner)}: eps must be a non-negative number, got {eps!r}")
