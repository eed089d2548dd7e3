"""Collectives on tensors, with PyTorch's names and semantics (``torch.distributed``):
``all_reduce``, ``broadcast``, ``all_gather``, ``barrier``, and the object forms
``all_gather_object`` and ``broadcast_object_list``.

Each works in place on the tensors' memory, over MPI's non-blocking collectives waited for
with the group's deadline (_wait.py). In a world of one process they return at once.

float16 and bfloat16: MPI has no bfloat16 type (and float16 only as an MPICH extension), so
these tensors are reduced in float32: each rank's values are widened exactly, summed (or
maxed) in float32, averaged there for AVG, and rounded once back to the tensor's dtype. The
result equals the float32 reduction of the same values, rounded once; it is the same on every
rank, because MPI reduces in one order for all ranks.
"""

import enum
import pickle

import numpy as np

from retrograd import dtypes as _dt
from retrograd.distributed._wait import wait
from retrograd.distributed.process_group import (_MPI, GROUP, DistributedError, _require,
                                                 check_group)
from retrograd.tensor import Tensor, make_tensor

__all__ = ["ReduceOp", "Work", "all_reduce", "broadcast", "broadcast_coalesced", "all_gather",
           "barrier", "all_gather_object", "broadcast_object_list", "all_reduce_array"]


class ReduceOp(enum.Enum):
    """How all_reduce combines the ranks' values: SUM, AVG (the sum divided by the world
    size), PRODUCT, MIN, MAX."""
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


def _mpi_op(op):
    MPI = _MPI[0]
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
            ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}[op]


class Work:
    """A collective in flight (``async_op=True``): ``wait()`` blocks until it completed (with
    the group's deadline) and finishes it (copies, averaging); ``is_completed()``."""

    def __init__(self, request, what, finish=None):
        self._request, self._what, self._finish = request, what, finish
        self._done = request is None
        if self._done and finish is not None:
            finish()

    def is_completed(self):
        if not self._done and self._request.Test():
            self.wait()
        return self._done

    def wait(self, timeout=None):
        if not self._done:
            wait(self._request, self._what)
            self._done = True
            if self._finish is not None:
                self._finish()
        return True


def _tensor(tensor, what):
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what}: expected a retrograd Tensor, got {type(tensor).__name__}")
    return tensor


def _is_half(np_dtype):
    return np_dtype == np.float16 or np_dtype == _dt.bfloat16.np


def wire_dtype(np_dtype):
    """The dtype MPI reduces values of ``np_dtype`` in: float32 for float16/bfloat16 (which
    it has no type for), uint8 for bool, the dtype itself otherwise."""
    if _is_half(np_dtype):
        return np.dtype(np.float32)
    return np.dtype(np.uint8) if np_dtype == np.bool_ else np.dtype(np_dtype)


def _wire(array):
    """The array MPI sends: contiguous, in wire_dtype (float16/bfloat16 widened exactly)."""
    if _is_half(array.dtype):
        return _dt.convert(np.ascontiguousarray(array), np.float32)
    return np.ascontiguousarray(array, dtype=wire_dtype(array.dtype))


def _mark_changed(tensor):
    tensor._version[0] += 1


def all_reduce_array(array, op=ReduceOp.SUM, what="all_reduce"):
    """Start reducing ``array`` across ranks in place; returns a Work (its ``wait()`` writes
    the result into ``array``). Used by the tensor form and by DistributedDataParallel."""
    op = _reduce_op(op, what)
    if op is ReduceOp.AVG and array.dtype.kind not in "fc" and not _is_half(array.dtype):
        raise TypeError(f"{what}: ReduceOp.AVG needs a floating-point tensor, got "
                        f"{array.dtype}")
    if GROUP.comm is None:
        return Work(None, what)
    buffer = _wire(array)
    request = GROUP.comm.Iallreduce(_MPI[0].IN_PLACE, buffer, op=_mpi_op(op))

    def finish():
        if op is ReduceOp.AVG:
            np.divide(buffer, GROUP.world_size, out=buffer, casting="unsafe")
        write_back(array, buffer)
    return Work(request, what, finish)


def write_back(array, buffer):
    """Copy a wire buffer's values (wire_dtype) into ``array``, rounded once to its dtype
    where that is float16/bfloat16."""
    if buffer is not array:
        array[...] = _dt.convert(buffer, array.dtype) if _is_half(array.dtype) else buffer


def _reduce_op(op, what):
    if isinstance(op, str):
        try:
            return ReduceOp[op.upper()]
        except KeyError:
            pass
    if not isinstance(op, ReduceOp):
        raise ValueError(f"{what}: unknown op {op!r}; use one of "
                         f"{', '.join('ReduceOp.' + o.name for o in ReduceOp)}")
    return op


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine ``tensor`` across all ranks with ``op``, in place: afterwards every rank holds
    the same result.

    Example:
        >>> import retrograd as rg, retrograd.distributed as dist
        >>> dist.init_process_group("mpi")
        >>> t = rg.tensor([1.0, 2.0])
        >>> dist.all_reduce(t, op=dist.ReduceOp.SUM); t   # world of one: unchanged
        tensor([1., 2.])
        >>> dist.destroy_process_group()
    """
    _prepare(tensor, group, "all_reduce")
    work = all_reduce_array(tensor._data, op, "all_reduce")
    return _finish(tensor, work, async_op)


def _prepare(tensor, group, what):
    check_group(group, what)
    _require(what)
    _tensor(tensor, what)


def _finish(tensor, work, async_op):
    _mark_changed(tensor)
    if async_op:
        return work
    work.wait()
    return None


def broadcast(tensor, src=0, group=None, async_op=False):
    """Copy rank ``src``'s ``tensor`` into every rank's ``tensor`` (same shape and dtype on
    every rank)."""
    _prepare(tensor, group, "broadcast")
    _check_rank(src, "broadcast", "src")
    if GROUP.comm is None:
        return _finish(tensor, Work(None, "broadcast"), async_op)
    array = tensor._data
    buffer = _wire(array)
    request = GROUP.comm.Ibcast(buffer, root=src)

    def finish():
        write_back(array, buffer)
    return _finish(tensor, Work(request, f"broadcast from rank {src}", finish), async_op)


def broadcast_coalesced(tensors, src=0):
    """Copy rank ``src``'s values into ``tensors`` on every rank, in place (a model's
    parameters and buffers): one broadcast per dtype, of the tensors packed into one flat
    array, rather than one per tensor. Every rank passes tensors of the same shapes and
    dtypes, in the same order."""
    by_dtype = {}
    for t in tensors:
        by_dtype.setdefault(t._data.dtype, []).append(_tensor(t, "broadcast_coalesced"))
    for group in by_dtype.values():
        flat = make_tensor(np.concatenate([t._data.reshape(-1) for t in group]))
        broadcast(flat, src=src)
        start = 0
        for t in group:
            t._data[...] = flat._data[start:start + t._data.size].reshape(t._data.shape)
            _mark_changed(t)
            start += t._data.size


def _check_rank(rank, what, name):
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < GROUP.world_size:
        raise ValueError(f"{what}: {name}={rank!r} is not a rank of this world of "
                         f"{GROUP.world_size} process(es)")


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Every rank's ``tensor`` into ``tensor_list`` (one tensor per rank, in rank order, each
    of ``tensor``'s shape and dtype), on every rank."""
    _prepare(tensor, group, "all_gather")
    if not isinstance(tensor_list, list) or len(tensor_list) != GROUP.world_size:
        raise ValueError(f"all_gather: tensor_list must be a list of {GROUP.world_size} "
                         f"tensors (one per rank), got {_describe(tensor_list)}")
    for i, out in enumerate(tensor_list):
        _tensor(out, "all_gather")
        if out.shape != tensor.shape or out.dtype != tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] has shape {tuple(out.shape)} and "
                             f"dtype {out.dtype}, but the tensor sent has shape "
                             f"{tuple(tensor.shape)} and dtype {tensor.dtype}")
    send = _wire(tensor._data)
    gathered = np.empty((GROUP.world_size,) + send.shape, send.dtype)
    request = None
    if GROUP.comm is None:
        gathered[0] = send
    else:
        request = GROUP.comm.Iallgather(send, gathered)

    def finish():
        for out, part in zip(tensor_list, gathered):
            write_back(out._data, part)
            _mark_changed(out)
    work = Work(request, "all_gather", finish)
    if async_op:
        return work
    work.wait()
    return None


def _describe(value):
    return f"a list of {len(value)}" if isinstance(value, list) else type(value).__name__


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank has reached the barrier."""
    check_group(group, "barrier")
    _require("barrier")
    work = Work(None if GROUP.comm is None else GROUP.comm.Ibarrier(), "barrier")
    if async_op:
        return work
    work.wait()
    return None


def _gather_bytes(payload, what):
    """Every rank's bytes, in rank order."""
    if GROUP.comm is None:
        return [payload]
    sizes = np.empty(GROUP.world_size, np.int64)
    wait(GROUP.comm.Iallgather(np.array([len(payload)], np.int64), sizes), what)
    received = np.empty(int(sizes.sum()), np.uint8)
    sent = np.frombuffer(payload, np.uint8)
    wait(GROUP.comm.Iallgatherv(sent, [received, sizes]), what)
    ends = np.cumsum(sizes)
    return [received[end - size:end].tobytes() for end, size in zip(ends, sizes)]


def all_gather_object(object_list, obj, group=None):
    """Every rank's picklable ``obj`` into ``object_list`` (a list of world-size entries),
    in rank order."""
    check_group(group, "all_gather_object")
    _require("all_gather_object")
    if not isinstance(object_list, list) or len(object_list) != GROUP.world_size:
        raise ValueError(f"all_gather_object: object_list must be a list of "
                         f"{GROUP.world_size} entries, got {_describe(object_list)}")
    parts = _gather_bytes(pickle.dumps(obj), "all_gather_object")
    object_list[:] = [pickle.loads(part) for part in parts]


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """Rank ``src``'s ``object_list`` entries (picklable) copied into every rank's list."""
    check_group(group, "broadcast_object_list")
    _require("broadcast_object_list")
    _check_rank(src, "broadcast_object_list", "src")
    if not isinstance(object_list, list):
        raise TypeError(f"broadcast_object_list: object_list must be a list, got "
                        f"{type(object_list).__name__}")
    if GROUP.comm is None:
        return
    payload = pickle.dumps(object_list) if GROUP.rank == src else b""
    size = np.array([len(payload)], np.int64)
    wait(GROUP.comm.Ibcast(size, root=src), "broadcast_object_list")
    buffer = np.empty(int(size[0]), np.uint8)
    if GROUP.rank == src:
        buffer[:] = np.frombuffer(payload, np.uint8)
    wait(GROUP.comm.Ibcast(buffer, root=src), "broadcast_object_list")
    if GROUP.rank != src:
        received = pickle.loads(buffer.tobytes())
        if len(received) != len(object_list):
            raise DistributedError(f"broadcast_object_list: rank {src} sent {len(received)} "
                                   f"objects, but this rank's list has {len(object_list)}")
        object_list[:] = received
