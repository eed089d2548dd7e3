"""sync_batch_norm: batch normalization with the statistics of the global batch, the union of
the batches of every rank (the training forward of nn.SyncBatchNorm; PyTorch keeps it in
torch.nn.modules._functions, not in torch.nn.functional, and so does retrograd: it is not
exported by retrograd.nn.functional).

No backward is written here: the statistics are tensor ops and the differentiable
``retrograd.distributed.nn.functional.all_reduce``, and autograd differentiates them (see
sync_batch_norm's docstring for why that gives the exact gradient).
"""

import numpy as np

from retrograd._checks import name_of
from retrograd.autograd.grad_mode import STATE, no_grad
from retrograd.distributed import get_rank, get_world_size
from retrograd.distributed.collectives import ReduceOp, all_reduce_array
from retrograd.distributed.nn.functional import all_reduce
from retrograd.nn.functional.norm import _check_eps, _check_floating_input, _check_per_channel

__all__ = ["sync_batch_norm"]


def sync_batch_norm(input, running_mean, running_var, weight=None, bias=None,  # noqa: A002
                    momentum=0.1, eps=1e-5, *, owner=None):
    """Batch normalization in training mode with the statistics of the global batch: rank r
    holds x_r:(N_r, C, *), and per channel, over the axes A = (N, *) of every rank,

        M    = sum over ranks of M_r,  M_r = N_r * prod(*)     (the count, int64)
        mean = (sum over ranks of sum_A x_r) / M                (all_reduce 1)
        var  = (sum over ranks of sum_A (x_r - mean)^2) / M     (all_reduce 2; biased)
        y_r  = (x_r - mean) / sqrt(var + eps) * weight + bias   (C,) broadcast over (N_r, C, *)

    Two passes, the mean first and then the squares of x - mean, as the single-process batch
    norm computes them (no cancellation, as E[x^2] - E[x]^2 would suffer). float16 and
    bfloat16 inputs are normalized in float32, and y is cast back. The running statistics,
    when given, are updated in place outside the graph as BatchNorm's are:
    running_mean = (1 - momentum) running_mean + momentum mean, and running_var the same with
    the unbiased variance var * M / (M - 1). While a checkpoint recomputes a forward they are
    left alone.

    The backward is autograd's. Let S = sum over ranks of s_r be one of the all-reduced sums
    (s_r is rank r's local sum) and L = sum over ranks j of L_j the loss of the step, L_j the
    loss rank j computes from its y_j. Every rank j receives S and uses it in L_j, so

        dL/ds_r = sum over ranks j of dL_j/dS_j,

    which is exactly what the backward of all_reduce (SUM) computes on rank r: the SUM
    all-reduce of the gradients dL_j/dS_j that reached S on each rank. Autograd then takes
    dL/ds_r back through s_r = sum_A x_r (and x_r - mean) to x_r and adds the direct path
    through y_r, so each rank gets dL/dx_r of the global loss: the slice of the input gradient
    that single-process batch norm gives on the concatenated global batch. Rank r's weight and
    bias gradients are its share; their sum over ranks (DistributedDataParallel all-reduces
    them, then divides by the world size to average the ranks' losses) is the global one.

    Every rank must call it (the same number of times, in the same order): each call runs
    three all-reduces forward (the count's travels with the first sums', so the ranks meet
    twice) and two backward. A rank that raises before them (a bad input)
    leaves the others waiting until the process group's timeout.

    Args:
        input: (N, C, *), at least 2 dims; N may be 0 on some ranks.
        running_mean, running_var: (C,) buffers updated in place, or None.
        weight, bias: (C,) or None.
        momentum: the running-average factor. eps: added to the variance.
        owner: who errors name (a layer passes itself); default "sync_batch_norm".

    Example:
        >>> import retrograd as rg, retrograd.distributed as dist
        >>> from retrograd.nn.functional.sync_batch_norm import sync_batch_norm
        >>> dist.init_process_group("mpi")          # a world of one: the local batch
        >>> x = rg.tensor([[1.0], [3.0]])
        >>> sync_batch_norm(x, None, None).numpy().round(3).ravel().tolist()
        [-1.0, 1.0]
        >>> dist.destroy_process_group()
    """
    owner = "sync_batch_norm" if owner is None else owner
    _check_arguments(input, running_mean, running_var, weight, bias, eps, owner)
    x = input.float() if input._data.dtype.itemsize < 4 else input
    axes = (0, *range(2, x.ndim))
    counting = _start_global_count(input)     # in flight while the sums are reduced
    sums = all_reduce(x.sum(axes))
    count = _global_count(counting, input, owner)
    mean = sums / count
    centered = x - _per_channel(mean, x.ndim)
    var = all_reduce((centered * centered).sum(axes)) / count
    if running_mean is not None and not STATE.recomputing:  # a checkpoint replays: no update
        _update_running_stats(running_mean, running_var, mean, var, momentum, count)
    y = centered * _per_channel((var + eps).rsqrt(), x.ndim)
    if weight is not None:
        y = y * _per_channel(weight.to(y.dtype), x.ndim)
    if bias is not None:
        y = y + _per_channel(bias.to(y.dtype), x.ndim)
    return y.to(input.dtype)


def _check_arguments(input, running_mean, running_var, weight, bias, eps, owner):  # noqa: A002
    """batch_norm's checks, except that an empty local batch (N = 0) is allowed: the other
    ranks may hold the global batch."""
    _check_floating_input(input, 2, owner)
    channels = input.shape[1]
    if channels == 0:
        raise ValueError(f"{name_of(owner)}: the number of input channels must be non-zero, "
                         f"got input of shape {input.shape}")
    _check_per_channel(channels, owner, input, weight=weight, bias=bias,
                       running_mean=running_mean, running_var=running_var)
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{name_of(owner)}: give both running_mean and running_var, or "
                         f"neither")
    _check_eps(eps, owner)


def _start_global_count(input):  # noqa: A002
    """Start the all-reduce of the number of values per channel (non-blocking: it travels
    with the sums' all-reduce, so counting costs no extra wait): (the count array, its
    Work)."""
    count = np.array([input.numel() // input.shape[1]], np.int64)
    return count, all_reduce_array(count, ReduceOp.SUM, "sync_batch_norm count all_reduce")


def _global_count(counting, input, owner):  # noqa: A002
    """M, the number of values per channel in the global batch (a Python int, checked > 1),
    from the all-reduce _start_global_count started."""
    count, work = counting
    work.wait()
    count = int(count[0])
    if count <= 1:
        raise ValueError(f"{name_of(owner)}: Expected more than 1 value per channel when "
                         f"training, got {count} in the global batch (input of shape "
                         f"{input.shape} on rank {get_rank()} of {get_world_size()})")
    return count


def _per_channel(values, ndim):
    """(C,) -> (1, C, 1, ...) to broadcast against an (N, C, *) input of ``ndim`` dims."""
    return values.reshape(1, -1, *([1] * (ndim - 2)))


def _update_running_stats(running_mean, running_var, mean, var, momentum, count):
    """In place, as BatchNorm's (ops/norm.py): new = (1 - momentum) old + momentum batch
    value, with the unbiased variance var * M / (M - 1) for running_var."""
    with no_grad():
        running_mean.mul_(1.0 - momentum)
        running_mean.add_((mean.detach() * momentum).to(running_mean.dtype))
        running_var.mul_(1.0 - momentum)
        unbiased = var.detach() * (momentum * count / (count - 1))
        running_var.add_(unbiased.to(running_var.dtype))
