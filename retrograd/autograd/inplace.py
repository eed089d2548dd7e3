"""In-place operations under autograd: writing into a tensor's memory, bumping its version,
and rebasing its history onto the op that wrote it.

Every in-place change bumps the tensor's version counter (shared with its views), so that a
saved tensor changed before backward is reported instead of silently used. An in-place op
either runs outside autograd (grad mode off, or nothing involved requires grad: the result is
written and the version bumped) or is recorded: the tensor's history is *rebased* onto the new
op, whose input is a snapshot (a copy) of the old values with the old history, so backward
never reads overwritten memory.

Limitation (unlike PyTorch): a recorded in-place op is refused on a view, and on a tensor
whose recorded views are still alive, because their histories would not be rebased too.
Under no_grad both are allowed (only the shared version counter moves).
"""

import numpy as np

from retrograd.autograd.grad_mode import STATE
from retrograd.tensor import Tensor, make_tensor

__all__ = ["apply_inplace", "overwrite", "write", "zero_grads"]


def apply_inplace(t, op, compute):
    """Run ``compute(source)`` out of place and write the result into t's memory; when autograd
    records it, t becomes the output of the recorded op (see the module docstring)."""
    if not STATE.grad_enabled:
        write(t, op, compute(t)._data)
        return t
    if t._requires_grad and t.grad_fn is None:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad is used in an in-place "
                           f"operation; wrap it in retrograd.no_grad() or use an out-of-place op")
    if not t._requires_grad:
        result = compute(t)
        if not result._requires_grad:
            write(t, op, result._data)
            return t
        # NOTE: the recorded op may have saved t itself; recompute it on a snapshot.
    _check_rebase_allowed(t, op)
    snapshot = make_tensor(t._data.copy(), t._requires_grad, t.grad_fn, t._output_nr)
    result = compute(snapshot)
    if result._data.shape != t._data.shape:
        raise RuntimeError(f"{op}: the result has shape {result.shape} but the tensor being "
                           f"written has shape {t.shape}")
    write(t, op, result._data)
    t.grad_fn, t._output_nr, t._requires_grad = result.grad_fn, result._output_nr, True
    if t._retains_grad:  # like PyTorch, .grad follows the new value (hooks stay on the old one)
        t.grad_fn._retain_output(t._output_nr, t)
    return t


def overwrite(t, op, value, record):
    """Overwrite all of t's values with ``value`` (broadcast): fill_, zero_, normal_, copy_.
    ``record(source)`` is the differentiable op used when autograd must record the write."""
    value_requires_grad = isinstance(value, Tensor) and value._requires_grad
    if not STATE.grad_enabled or not (t._requires_grad or value_requires_grad):
        if t._requires_grad and t.grad_fn is None and STATE.grad_enabled:
            raise RuntimeError(f"{op}: a leaf tensor that requires grad is used in an in-place "
                               f"operation; wrap it in retrograd.no_grad()")
        write(t, op, value._data if isinstance(value, Tensor) else value)
        return t
    return apply_inplace(t, op, record)


def write(t, op, value):
    """Copy ``value`` (an array or number, broadcast) into t's memory and bump its version;
    errors name the op, the dtypes and the shape."""
    try:
        np.copyto(t._data, value, casting="same_kind")
    except TypeError:
        raise TypeError(f"{op}: cannot write a result of dtype {np.asarray(value).dtype} into a "
                        f"tensor of dtype {t.dtype}") from None
    except ValueError as e:
        raise RuntimeError(f"{op}: cannot write into this tensor (shape {t.shape}): {e}") from None
    t._version[0] += 1


def _check_rebase_allowed(t, op):
    if t._base is not None:
        raise RuntimeError(f"{op}: in-place operations that autograd records are not supported "
                           f"on views (this tensor of shape {t.shape} is a view); use an "
                           f"out-of-place op")
    if t._views and any(ref() is not None for ref in t._views):
        raise RuntimeError(f"{op}: in-place operations that autograd records are not supported "
                           f"on a tensor whose views are still alive (their history would go "
                           f"stale); use an out-of-place op")


def zero_grads(tensors, set_to_none=True):
    """Reset the gradients of ``tensors`` (Module.zero_grad and Optimizer.zero_grad): to None,
    which frees the memory, or to zeros in place, detached from any graph as PyTorch does."""
    for t in tensors:
        grad = t._grad
        if grad is None:
            continue
        if set_to_none:
            t._grad = None
            continue
        if grad.grad_fn is not None:
            grad.detach_()
        else:
            grad.requires_grad_(False)
        grad._data[...] = 0
        grad._version[0] += 1
