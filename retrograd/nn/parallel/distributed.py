"""``nn.parallel.DistributedDataParallel``: data-parallel training across processes (MPI),
with PyTorch's name, arguments and behaviour, on the CPU.

Every process (rank) holds a whole copy of the model and reads its own part of each global
batch. After each backward pass the ranks average their gradients, so every rank takes the
same optimizer step and the copies stay equal. The averaging runs in buckets while backward
is still running (see DistributedDataParallel); the collectives are retrograd.distributed's.
"""

import contextlib
import functools
import weakref

import numpy as np

from retrograd import dtypes as _dt
from retrograd.autograd.grad_mode import is_grad_enabled, no_grad
from retrograd.autograd.hooks import queue_callback
from retrograd.distributed.collectives import (ReduceOp, all_gather_object, all_reduce_array,
                                               broadcast_coalesced, wire_dtype, write_back)
from retrograd.distributed.process_group import GROUP, DistributedError, check_group
from retrograd.nn.module import Module
from retrograd.nn.parallel.data_parallel import check_wrapped
from retrograd.tensor import make_tensor

__all__ = ["DistributedDataParallel"]

_MiB = 2 ** 20
# The pass number sent with each bucket is kept small so that it stays an exact integer after
# a float32 sum over the ranks (world * _PASS_MODULUS < 2**24).
_PASS_MODULUS = 1024


class DistributedDataParallel(Module):
    """Wraps ``module`` so that each backward pass averages the parameters' gradients across
    the ranks of the default process group: ``forward(*inputs, **kwargs)`` returns
    ``module(*inputs, **kwargs)``, and after ``loss.backward()`` every rank's ``.grad`` holds
    the average of all ranks' gradients.

    What the average is. Rank r computes g_r = dL_r/dw with L_r = (1/b) sum_{i in B_r} l_i,
    the mean loss over its own batch B_r of b samples. With W ranks and the same b on each,
    (1/W) sum_r g_r = d/dw [ (1/(W b)) sum_{i in B} l_i ]: the gradient of the mean loss over
    the global batch B = B_0 + ... + B_{W-1}, the one a single process would compute on all
    W b samples. (With unequal batch sizes b_r, rank r's samples get the weight 1/(W b_r).)

    Construction (collective: every rank must build the wrapper): the ranks compare the
    model's structure (every parameter's name, shape, dtype and requires_grad; every buffer's
    name, shape and dtype) and raise DistributedError on every rank, naming the first
    difference, if a rank built a different model; then rank 0's parameters and buffers are
    copied into every rank's (in place), so all copies start equal.

    Buckets. The parameters that require grad are taken in reverse order of
    ``module.parameters()`` (backward reaches the last layers first, so their gradients are
    ready first), grouped by dtype, and packed into buckets of at most ``bucket_cap_mb`` MiB
    (a parameter larger than that gets a bucket of its own). Each bucket is one flat buffer:
    its parameters' gradients, then one "had a gradient" flag per parameter, then the number
    of the forward this backward belongs to (a check that the ranks are in the same step).

    Overlap. A post-accumulate-grad hook on every such parameter counts the gradients of its
    bucket; when the bucket's last one is accumulated, the gradients are copied into the
    buffer and its all-reduce (ReduceOp.AVG, non-blocking) starts, while backward goes on
    computing the gradients of earlier layers. Buckets start in bucket order on every rank
    (MPI matches collectives by their order), so a bucket that is ready waits for the ones
    before it. Hooks also poll the reductions in flight, which drives MPI's progress. At the
    end of the backward pass a callback starts the buckets not started yet, waits for every
    reduction (in the order they started) and writes the averages into the ``.grad`` tensors
    in place (their version counters move on, as for any in-place change).

    Unused parameters. A parameter that received no gradient in this backward contributes
    its current ``.grad`` (accumulated earlier, e.g. under no_sync) or zeros, with its flag
    0. Afterwards a parameter whose flag is 0 on every rank keeps its ``.grad`` (None stays
    None); one that had a gradient on some rank gets the average over all ranks (the others
    counting zero) on every rank, so the copies never drift apart. NOTE: this is what
    PyTorch does with ``find_unused_parameters=True``; PyTorch without it raises at the next
    forward when a parameter got no gradient. Here both settings give the result above (the
    flags cost one number per parameter), so no error is needed.

    Half precision. float16 and bfloat16 gradients are reduced in float32 (the buffer of
    such a bucket is float32: the gradients are widened exactly, summed and divided there)
    and rounded once back to the gradient's dtype.

    Every rank must run the same forwards and backwards through the wrapper. Each bucket
    carries the number of the forward its backward belongs to (counting the forwards that
    synchronize: grad enabled, outside no_sync), so a rank that skipped a backward, and would
    otherwise mix its next step's gradients into the others' current ones, makes every rank
    raise DistributedError; a rank that stops calling collectives makes the others' wait
    end with the timeout error naming it.

    In a world of one process nothing is communicated and no hooks are registered: the
    wrapper costs one extra Module call.

    Args:
        module: the Module to replicate (``.module``; state-dict keys are prefixed
            ``module.``, as in PyTorch).
        device_ids, output_device: None (or the CPU): retrograd has no GPUs.
        dim: the batch dim (kept for PyTorch compatibility; each rank reads its own batch).
        broadcast_buffers: copy rank 0's buffers (BatchNorm's running statistics, ...) into
            every rank's at the start of forward, as PyTorch does: before a forward that
            follows a synchronizing forward (grad enabled, outside no_sync) or the first one.
        process_group: None, the default group (the only group in retrograd).
        bucket_cap_mb: the largest bucket, in MiB (default 25).
        find_unused_parameters: accepted; unused parameters are always handled (see above).
        check_reduction: accepted and ignored (deprecated in PyTorch).
        gradient_as_bucket_view: accepted; gradients are copied in and out of the buckets
            (the values are the same; PyTorch's option saves that copy's memory).
        static_graph: accepted; PyTorch uses it for optimizations that do not change results.

    Do not add, remove or re-cast the module's parameters after wrapping it (as in PyTorch).

    Example:
        >>> import retrograd as rg, retrograd.distributed as dist
        >>> dist.init_process_group("mpi")          # alone: a world of one process
        >>> model = rg.nn.parallel.DistributedDataParallel(rg.nn.Linear(3, 2))
        >>> list(model.state_dict())
        ['module.weight', 'module.bias']
        >>> model(rg.ones(4, 3)).sum().backward()  # under mpiexec: the grads are averaged
        >>> model.module.bias.grad
        tensor([4., 4.])
        >>> dist.destroy_process_group()
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0,
                 broadcast_buffers=True, process_group=None, bucket_cap_mb=25,
                 find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        _check_arguments(module, device_ids, output_device, process_group, bucket_cap_mb)
        self.module = module
        self.device_ids, self.output_device, self.dim = [], output_device, dim
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = bucket_cap_mb
        self.find_unused_parameters = bool(find_unused_parameters)
        self.gradient_as_bucket_view = bool(gradient_as_bucket_view)
        self.static_graph = bool(static_graph)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        alone = GROUP.world_size == 1
        if not alone:
            _check_same_structure(module)
        trainable = [p for p in module.parameters() if p.requires_grad]
        if not trainable:
            raise RuntimeError("DistributedDataParallel: the module has no parameter that "
                               "requires grad; there is nothing to synchronize")
        if not alone:
            with no_grad():
                broadcast_coalesced(list(module.parameters()) + list(module.buffers()))
        self._reducer = None if alone else _Reducer(trainable[::-1], bucket_cap_mb * _MiB)

    def forward(self, *inputs, **kwargs):
        if self._reducer is not None:
            self._before_forward()
        return self.module(*inputs, **kwargs)

    def _before_forward(self):
        buffers = list(self.module.buffers())
        if self.require_forward_param_sync and self.broadcast_buffers and buffers:
            with no_grad():
                broadcast_coalesced(buffers)
        sync = is_grad_enabled() and self.require_backward_grad_sync
        if sync:
            self._reducer.prepare_for_backward()
        self.require_forward_param_sync = sync

    @contextlib.contextmanager
    def no_sync(self):
        """Inside, forward/backward accumulate gradients locally, with no communication; the
        first backward after a forward outside it averages the accumulated gradients (as in
        PyTorch, the forward must be inside the context).

        Example:
            >>> import retrograd as rg, retrograd.distributed as dist
            >>> dist.init_process_group("mpi")
            >>> model = rg.nn.parallel.DistributedDataParallel(rg.nn.Linear(3, 2))
            >>> with model.no_sync():
            ...     model(rg.ones(1, 3)).sum().backward()   # accumulated here only
            >>> model(rg.ones(1, 3)).sum().backward()       # averaged across the ranks
            >>> model.module.bias.grad
            tensor([2., 2.])
            >>> dist.destroy_process_group()
        """
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous


def _check_arguments(module, device_ids, output_device, process_group, bucket_cap_mb):
    if not GROUP.initialized:
        raise DistributedError("DistributedDataParallel: the default process group is not "
                               "initialized; call retrograd.distributed.init_process_group("
                               "backend='mpi') first (on every rank)")
    check_wrapped("DistributedDataParallel", module, device_ids, output_device)
    check_group(process_group, "DistributedDataParallel", "process_group")
    if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) \
            or not bucket_cap_mb > 0:
        raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be a positive number "
                         f"of MiB, got {bucket_cap_mb!r}")


# ---------------------------------------------------------------- same model on every rank
_FIELDS = {"parameter": ("shape", "dtype", "requires_grad"), "buffer": ("shape", "dtype")}


def _structure(module):
    """The model's description that every rank must share."""
    return {
        "parameter": [(name, tuple(p.shape), str(p.dtype), bool(p.requires_grad))
                      for name, p in module.named_parameters()],
        "buffer": [(name, tuple(b.shape), str(b.dtype)) for name, b in module.named_buffers()],
    }


def _check_same_structure(module):
    """Gather every rank's structure; raise the same DistributedError on every rank when one
    differs from rank 0's."""
    gathered = [None] * GROUP.world_size
    all_gather_object(gathered, _structure(module))
    differing = [rank for rank in range(1, GROUP.world_size) if gathered[rank] != gathered[0]]
    if differing:
        first = differing[0]
        raise DistributedError(
            f"DistributedDataParallel: the model differs across ranks (rank(s) "
            f"{', '.join(map(str, differing))} differ from rank 0): "
            f"{_first_difference(gathered[first], gathered[0], first)}; every rank must "
            f"build the same model")


def _first_difference(theirs, ours, rank):
    """The first entry where rank ``rank``'s structure differs from rank 0's, in words."""
    for kind, fields in _FIELDS.items():
        mine, reference = theirs[kind], ours[kind]
        for position, (a, b) in enumerate(zip(mine, reference)):
            if a[0] != b[0]:
                return (f"rank {rank}'s {kind} #{position} is {a[0]!r} but rank 0's is "
                        f"{b[0]!r}")
            for field, x, y in zip(fields, a[1:], b[1:]):
                if x != y:
                    return (f"rank {rank}'s {kind} {a[0]!r} has {field} {_show(x)} but rank "
                            f"0's has {_show(y)}")
        if len(mine) != len(reference):
            longer = mine if len(mine) > len(reference) else reference
            owner = rank if longer is mine else 0
            return (f"rank {rank} has {len(mine)} {kind}s but rank 0 has {len(reference)} "
                    f"({kind} {longer[min(len(mine), len(reference))][0]!r} is only on rank "
                    f"{owner})")
    return "the models differ"


def _show(value):
    return str(value).removeprefix("retrograd.")


# ---------------------------------------------------------------- gradient averaging
class _Bucket:
    """Parameters whose gradients are averaged by one all-reduce, through one flat buffer:
    [gradients of params[0], params[1], ... | one flag per parameter | pass number]. The
    buffer is float32 for float16/bfloat16 parameters (reduced in float32)."""

    def __init__(self, params):
        self.params = params
        sizes = [p._data.size for p in params]
        self.ends = np.cumsum(sizes)
        self.starts = self.ends - sizes
        self.dtype = params[0]._data.dtype
        self.buffer = np.zeros(int(self.ends[-1]) + len(params) + 1, wire_dtype(self.dtype))
        self.flags = self.buffer[int(self.ends[-1]):-1]
        self.reset()

    def reset(self):
        self.waiting = len(self.params)        # gradients not yet accumulated in this pass
        self.work = None

    def launch(self, pass_number):
        """Pack the current gradients (zeros and flag 0 where .grad is None) and start their
        average across the ranks."""
        for position, (p, start, end) in enumerate(zip(self.params, self.starts, self.ends)):
            if p._data.dtype != self.dtype:
                raise RuntimeError(
                    f"DistributedDataParallel: a parameter of shape {tuple(p.shape)} is now "
                    f"{p.dtype} but was {_dt.from_numpy_dtype(self.dtype)} when the model was "
                    f"wrapped; cast the module before wrapping it (as in PyTorch)")
            grad = p.grad
            if grad is None:
                self.buffer[start:end] = 0
            else:
                self.buffer[start:end] = grad._data.reshape(-1)
            self.flags[position] = grad is not None
        self.buffer[-1] = pass_number
        self.work = all_reduce_array(self.buffer, ReduceOp.AVG,
                                     "DistributedDataParallel gradient all_reduce")

    def write_back(self):
        """The averages into the .grad tensors of the parameters some rank had a gradient
        for (in place where .grad exists; a new tensor where it was None)."""
        for p, start, end, flag in zip(self.params, self.starts, self.ends, self.flags):
            if not flag > 0:
                continue
            if p.grad is None:
                p.grad = make_tensor(np.empty(p._data.shape, p._data.dtype))
            else:
                p.grad._version[0] += 1
            write_back(p.grad._data, self.buffer[start:end].reshape(p._data.shape))


def _assign_buckets(params, cap_bytes):
    """Buckets of ``params`` (in the given order) by dtype, each up to ``cap_bytes`` (or one
    larger parameter), ordered by their first parameter's position in ``params``."""
    filling = {}     # dtype -> [first position, members, bytes] of the bucket being filled
    full = []
    for position, p in enumerate(params):
        dtype, size = p._data.dtype, p._data.nbytes
        bucket = filling.get(dtype)
        if bucket is not None and bucket[2] + size > cap_bytes:
            full.append(filling.pop(dtype))
        bucket = filling.setdefault(dtype, [position, [], 0])
        bucket[1].append(p)
        bucket[2] += size
    ordered = sorted(full + list(filling.values()), key=lambda bucket: bucket[0])
    return [_Bucket(members) for _, members, _ in ordered]


class _Reducer:
    """Buckets, the hooks that start their all-reduces during backward, and the
    end-of-backward callback that finishes them."""

    def __init__(self, params, cap_bytes):
        self.buckets = _assign_buckets(params, cap_bytes)
        self.bucket_of = {}
        for index, bucket in enumerate(self.buckets):
            for p in bucket.params:
                self.bucket_of[id(p)] = index
        self.expecting = False        # a synchronizing forward ran; its backward will reduce
        self.in_backward = False      # a hook of this backward ran (the callback is queued)
        self.launched = 0             # buckets started, in order, in this backward
        self.completed = 0            # of those, how many are known to be done
        self.passes = 0               # synchronizing forwards so far: the pass number
        self.ready = set()
        this = weakref.ref(self)      # the hooks must not keep the model alive
        self.handles = [p.register_post_accumulate_grad_hook(functools.partial(_grad_ready, this))
                        for p in params]

    def prepare_for_backward(self):
        if self.launched:
            raise DistributedError(
                f"DistributedDataParallel: the previous backward pass started averaging "
                f"gradients ({self.launched} of {len(self.buckets)} buckets) but did not "
                f"finish (it raised an error?); the ranks are no longer in step")
        self.expecting = True
        self.passes += 1
        self.in_backward = False
        self.ready.clear()
        for bucket in self.buckets:
            bucket.reset()

    def grad_ready(self, param):
        """A parameter's gradient was accumulated: count it in its bucket and start every
        bucket that is now ready, in order."""
        if not self.expecting or id(param) in self.ready:
            return
        if not self.in_backward:
            self.in_backward = True
            queue_callback(self.finish_backward)
        self.ready.add(id(param))
        self.buckets[self.bucket_of[id(param)]].waiting -= 1
        while self.launched < len(self.buckets) and self.buckets[self.launched].waiting == 0:
            self._launch_next()
        self._poll()

    def _launch_next(self):
        self.buckets[self.launched].launch(self.passes % _PASS_MODULUS)
        self.launched += 1

    def _poll(self):
        while self.completed < self.launched and \
                self.buckets[self.completed].work.is_completed():
            self.completed += 1

    def finish_backward(self):
        """End of backward: start the remaining buckets, wait for all (in order), check that
        every rank was in this same pass, write the averages into .grad."""
        while self.launched < len(self.buckets):
            self._launch_next()
        for bucket in self.buckets:
            bucket.work.wait()
        expected = self.passes % _PASS_MODULUS
        self.expecting, self.in_backward, self.launched, self.completed = False, False, 0, 0
        for bucket in self.buckets:
            if bucket.buffer[-1] != expected:
                raise DistributedError(
                    f"DistributedDataParallel: rank {GROUP.rank} is in the backward pass of "
                    f"its forward number {expected} (mod {_PASS_MODULUS}) but the average over "
                    f"the ranks is {bucket.buffer[-1]:g}: a rank skipped a backward pass, or "
                    f"ran a forward (with grad enabled, outside no_sync) that the others did "
                    f"not; every rank must run the same forwards and backwards through the "
                    f"wrapper (evaluate on one rank under no_grad() or through .module)")
        for bucket in self.buckets:
            bucket.write_back()


def _grad_ready(reducer_ref, param):
    reducer = reducer_ref()
    if reducer is not None:
        reducer.grad_ready(param)
