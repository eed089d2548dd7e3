"""Collectives that autograd differentiates through (PyTorch's
``torch.distributed.nn.functional``): the result is a new tensor in the graph, and the
backward pass runs the matching collective on the gradients. SyncBatchNorm builds its global
batch statistics with ``all_reduce`` here, so its backward is autograd's, not a hand-written
one.

all_reduce (SUM): every rank r holds x_r and gets y = sum_r x_r. Training minimizes the sum
of the ranks' losses L = sum_j L_j (DistributedDataParallel then averages, dividing by the
world size), and every rank's y feeds its own L_j, so

    dL/dx_r = sum_j dL_j/dy_j,

the all_reduce (SUM) of the incoming gradients: the backward of a sum-all-reduce is a
sum-all-reduce.
"""

import numpy as np

from retrograd.autograd.cost import Cost
from retrograd.autograd.function import Function
from retrograd.distributed.collectives import ReduceOp, _reduce_op, all_reduce_array
from retrograd.distributed.process_group import _require, check_group

__all__ = ["all_reduce"]


def _summed(array, what):
    result = np.array(array, copy=True, order="C")
    all_reduce_array(result, ReduceOp.SUM, what).wait()
    return result


class AllReduceSum(Function):
    """y = sum over ranks of x (every rank gets y).  dL/dx = sum over ranks of dL/dy.
    Saves: nothing."""

    @staticmethod
    def forward(ctx, x):
        return _summed(x, "all_reduce (forward)")

    @staticmethod
    def backward(ctx, grad_out):
        return _summed(grad_out, "all_reduce (backward)")

    @staticmethod
    def cost(call):
        """The adds on each rank of a ring all-reduce of n values over W ranks: its
        reduce-scatter sums W - 1 chunks of n / W values, (W - 1) n / W adds; backward the
        same (the messages themselves are not FLOPs)."""
        from retrograd.distributed.process_group import GROUP

        n, world = call.outputs[0].size, GROUP.world_size
        adds = (world - 1) * n // world
        return Cost(adds, adds * call.needs(0),
                    f"all_reduce {'x'.join(map(str, call.outputs[0].shape)) or 'scalar'}: "
                    f"(W-1)*n/W adds, W = {world}")


def all_reduce(tensor, op=ReduceOp.SUM, group=None):
    """The sum of ``tensor`` over all ranks, as a new tensor that autograd differentiates
    through (only ReduceOp.SUM, as PyTorch's differentiable all_reduce supports).

    Example:
        >>> import retrograd as rg, retrograd.distributed as dist
        >>> from retrograd.distributed.nn.functional import all_reduce
        >>> dist.init_process_group("mpi")
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> all_reduce(x * 3).sum().backward(); x.grad   # world of one
        tensor([3., 3.])
        >>> dist.destroy_process_group()
    """
    _require("all_reduce")
    check_group(group, "all_reduce")
    if _reduce_op(op, "all_reduce") is not ReduceOp.SUM:
        raise ValueError(f"all_reduce (differentiable): only ReduceOp.SUM has a gradient "
                         f"here, got {op}")
    return AllReduceSum.apply(tensor)
