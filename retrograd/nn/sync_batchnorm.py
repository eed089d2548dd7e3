"""SyncBatchNorm: batch normalization whose training statistics are those of the global batch
across the ranks of the default process group (PyTorch's ``nn.SyncBatchNorm``)."""

from retrograd import distributed as dist
from retrograd.distributed.process_group import check_group
from retrograd.nn import functional as F
from retrograd.nn.functional.sync_batch_norm import sync_batch_norm
from retrograd.nn.normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over an (N, C, *) input whose statistics, in training, are those
    of the global batch: the union of the batches of every rank of the process group.

    y = (x - mean) / sqrt(var + eps) * weight + bias, per channel, with

        mean = (sum over ranks of sum x) / (sum over ranks of n)
        var  = (sum over ranks of sum (x - mean)^2) / N        (N = sum over ranks of n)

    where each rank sums over its own values of the channel (n = N_r * prod(*) of them),
    computed with tensor ops and the differentiable all_reduce (SUM), so autograd gives the
    exact gradient of the global loss: every rank uses the all-reduced sums, so the gradient
    of a rank's local sum is the sum over ranks of the gradients that reached the all-reduced
    one, and that is what the all-reduce's backward (itself a SUM all-reduce) returns
    (retrograd/nn/functional/sync_batch_norm.py writes it out). The layer computes no
    gradient by hand. nn.Sequential does not fuse it with a following ReLU.

    The running estimates move as BatchNorm's do, with the unbiased global variance
    var * N / (N - 1), and are the same on every rank.

    Without communication, it computes exactly what BatchNorm1d/2d/3d compute (it calls
    F.batch_norm): in eval mode (the running estimates; the local batch's statistics when
    track_running_stats=False), and in training when the default process group is not
    initialized or has one process.

    Every rank must run the layer the same number of times in the same order, as for any
    collective. Use convert_sync_batchnorm to turn a model's BatchNorm layers into
    SyncBatchNorm before wrapping it in DistributedDataParallel.

    Args:
        num_features: C.
        eps: added to the variance. Default: 1e-5.
        momentum: the running-average factor, or None for a cumulative average. Default: 0.1.
        affine: learn weight and bias. Default: True.
        track_running_stats: keep running estimates. Default: True.
        process_group: None, the default process group (the only one retrograd has).
        device: None or "cpu". dtype: the parameters' and statistics' dtype.
        bias: (keyword only) learn a bias when affine. Default: True.

    Shape:
        - Input: (N, C, *), at least 2 dims.
        - Output: the input's shape.

    Attributes:
        weight: (C,), initialized to 1. bias: (C,), initialized to 0.
        running_mean: (C,) buffer, starts at 0. running_var: (C,) buffer, starts at 1.
        num_batches_tracked: int64 buffer, the number of training batches seen.

    Example:
        >>> import retrograd as rg
        >>> model = rg.nn.Sequential(rg.nn.Conv2d(1, 4, 3), rg.nn.BatchNorm2d(4), rg.nn.ReLU())
        >>> model = rg.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        >>> model[1]
        SyncBatchNorm(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
        >>> model(rg.randn(2, 1, 5, 5)).shape    # no process group: BatchNorm2d's result
        (2, 4, 3, 3)
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, process_group=None, device=None, dtype=None, *,
                 bias=True):
        check_group(process_group, "SyncBatchNorm", "process_group")
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)
        self.process_group = process_group

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return self._normalize(input, self._batch_norm)

    def _check_ndim(self, input):  # noqa: A002
        if input.ndim < 2:
            raise ValueError(f"{type(self).__name__}: expected at least 2D input (N, C, *) "
                             f"(got {input.ndim}D input of shape {input.shape})")

    def _batch_norm(self, input, running_mean, running_var, weight, bias,  # noqa: A002
                    training, momentum, eps, *, owner):
        """F.batch_norm's signature (what _BatchNorm._normalize calls): the global batch's
        statistics when training on several ranks, else F.batch_norm itself."""
        if training and self.training and _world_size() > 1:
            return sync_batch_norm(input, running_mean, running_var, weight, bias, momentum,
                                   eps, owner=owner)
        return F.batch_norm(input, running_mean, running_var, weight, bias, training,
                            momentum, eps, owner=owner)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Replace every BatchNorm1d/2d/3d layer in ``module``'s tree with a SyncBatchNorm
        that holds the same weight and bias Parameters and the same running_mean,
        running_var and num_batches_tracked buffers (the objects themselves, so an optimizer
        built before still updates them), eps, momentum, affine, track_running_stats and
        training flag, as PyTorch does. Returns the converted module: ``module`` itself,
        changed in place, or a new SyncBatchNorm when ``module`` is a batch norm layer.

        Example:
            >>> import retrograd as rg
            >>> bn = rg.nn.BatchNorm1d(3).eval()
            >>> sync = rg.nn.SyncBatchNorm.convert_sync_batchnorm(bn)
            >>> type(sync).__name__, sync.training, sync.weight is bn.weight
            ('SyncBatchNorm', False, True)
        """
        converted = module
        if isinstance(module, _BatchNorm):
            converted = cls._from_batch_norm(module, process_group)
        for name, child in module.named_children():
            converted.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        return converted

    @classmethod
    def _from_batch_norm(cls, batch_norm, process_group):
        """A SyncBatchNorm holding ``batch_norm``'s Parameters, buffers and settings."""
        sync = cls(batch_norm.num_features, batch_norm.eps, batch_norm.momentum,
                   batch_norm.affine, batch_norm.track_running_stats, process_group,
                   bias=batch_norm.bias is not None)
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            setattr(sync, name, getattr(batch_norm, name))
        sync.training = batch_norm.training
        return sync


def _world_size():
    """The number of processes of the default group (1 when it is not initialized)."""
    return dist.get_world_size() if dist.is_initialized() else 1
