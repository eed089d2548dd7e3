"""Gradient clipping, in place on ``.grad``, as ``torch.nn.utils``.

``clip_grad_norm_`` rescales all the gradients together so that their total norm (the norm of
all of them concatenated into one vector) is at most ``max_norm``; ``clip_grad_value_`` clamps
every gradient entry to [-clip_value, clip_value]. Gradients are changed in their own memory
and their version counters are bumped.
"""

import math

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._quiet import quiet_errors
from retrograd.tensor import Tensor, make_tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]

_LOW_PRECISION = (np.dtype(np.float16), _dt.bfloat16.np)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False):
    """The ``norm_type``-norm of ``tensors`` seen as one vector: the norm of the vector of
    their norms. ``norm_type`` is any float, or ``inf`` (the largest absolute entry).

    Args:
        tensors (Tensor or iterable of Tensors): e.g. the gradients.
        norm_type (float or 'inf'): the p of the p-norm. Default: 2.0.
        error_if_nonfinite (bool): raise if the norm is nan or +-inf. Default: False.

    Returns:
        A 0-d Tensor, of the tensors' (promoted) dtype; ``tensor(0.)`` for no tensors.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.utils.get_total_norm([rg.tensor([3.0]), rg.tensor([4.0])])
        tensor(5.)
    """
    arrays = [t._data for t in _as_list(tensors, "get_total_norm", "tensors")]
    norm_type = float(norm_type)
    if not arrays:
        return make_tensor(np.array(0.0, dtype=_dt.default_float.np))
    norms = [_vector_norm(a, norm_type) for a in arrays]
    total = _vector_norm(np.stack(norms), norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for gradients "
                           f"from `parameters` is non-finite ({float(total)}), so it cannot be "
                           f"clipped. To disable this error and scale the gradients by the "
                           f"non-finite norm anyway, set `error_if_nonfinite=False`")
    return make_tensor(total)


def clip_grads_with_norm_(parameters, max_norm, total_norm):
    """Scale the gradients of ``parameters`` in place by min(1, max_norm / (total_norm +
    1e-6)), given a total norm computed beforehand (e.g. by ``get_total_norm``).

    Example:
        >>> import retrograd as rg
        >>> w = rg.zeros(2, requires_grad=True)
        >>> w.grad = rg.tensor([3.0, 4.0])
        >>> rg.nn.utils.clip_grads_with_norm_([w], 1.0, rg.tensor(10.0))
        >>> w.grad
        tensor([0.3, 0.4])
    """
    grads = [p.grad for p in _as_list(parameters, "clip_grads_with_norm_") if p.grad is not None]
    if not grads:
        return
    total = total_norm._data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    # NOTE: computed in the norm's dtype and always applied, even when it is 1, as in PyTorch
    # (a nan/inf norm then spreads into the gradients, which is the signal to look for).
    with quiet_errors():
        coef = np.minimum(float(max_norm) / (total + 1e-6), 1.0)
        for g in grads:
            g._data *= coef
            g._version[0] += 1


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Rescale the gradients of ``parameters`` together, in place, so that their total
    ``norm_type``-norm is at most ``max_norm``: every gradient is multiplied by
    min(1, max_norm / (total_norm + 1e-6)). Parameters whose ``.grad`` is None are skipped.

    Args:
        parameters (Tensor or iterable of Tensors): e.g. ``model.parameters()``.
        max_norm (float): the largest total norm allowed.
        norm_type (float or 'inf'): the p of the p-norm. Default: 2.0.
        error_if_nonfinite (bool): raise a RuntimeError if the total norm is nan or +-inf
            (otherwise the gradients are scaled by it anyway). Default: False.

    Returns:
        The total norm of the gradients before clipping, as a 0-d Tensor.

    Example:
        >>> import retrograd as rg
        >>> w = rg.zeros(2, requires_grad=True)
        >>> w.grad = rg.tensor([3.0, 4.0])
        >>> rg.nn.utils.clip_grad_norm_([w], max_norm=1.0)
        tensor(5.)
        >>> w.grad
        tensor([0.6, 0.8])
    """
    params = _as_list(parameters, "clip_grad_norm_")
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite)
    clip_grads_with_norm_(params, max_norm, total_norm)
    return total_norm


def clip_grad_value_(parameters, clip_value):
    """Clamp every gradient entry of ``parameters`` to [-clip_value, clip_value], in place.

    Example:
        >>> import retrograd as rg
        >>> w = rg.zeros(3, requires_grad=True)
        >>> w.grad = rg.tensor([-2.0, 0.5, 3.0])
        >>> rg.nn.utils.clip_grad_value_([w], clip_value=1.0)
        >>> w.grad
        tensor([-1. ,  0.5,  1. ])
    """
    clip_value = float(clip_value)
    for p in _as_list(parameters, "clip_grad_value_"):
        if p.grad is not None:
            np.clip(p.grad._data, -clip_value, clip_value, out=p.grad._data)
            p.grad._version[0] += 1


def _as_list(tensors, fn, name="parameters"):
    """A Tensor or an iterable of Tensors as a list; a Module, a dict, a non-Tensor element...
    is a TypeError that says what was given and what to pass (model.parameters())."""
    tensors = _checks.parameter_iterable(fn, name, tensors, "a Tensor or an iterable of Tensors",
                                         single=True)
    return _checks.tensors(fn, name, tensors)


@quiet_errors()
def _vector_norm(a, p):
    """The p-norm of all the entries of array ``a``, as a 0-d array of a's dtype (float16
    and bfloat16 are accumulated in float32, as PyTorch does). Where the sum of powers
    overflows or underflows (float32 gradients of 1e20, or of 1e-30) although the entries are
    finite and not all zero, the norm is computed again from a / max|a|: PyTorch returns inf
    there, and clipping by it would set every gradient to 0."""
    dtype = a.dtype
    if dtype in _LOW_PRECISION:
        a = a.astype(np.float32)
    a = np.abs(a.ravel())
    if p == math.inf:
        norm = a.max() if a.size else a.dtype.type(0)
    elif p == -math.inf:
        norm = a.min() if a.size else a.dtype.type(math.inf)
    elif p == 0:
        norm = np.count_nonzero(a)
    elif p == 1:
        norm = a.sum()
    elif p == 2:
        norm = np.sqrt(np.dot(a, a))
    else:
        norm = np.sum(a ** p) ** (1.0 / p)
    if p not in (0, 1, math.inf, -math.inf) and not 0 < norm < math.inf and a.size:
        peak = a.max()
        if 0 < peak < math.inf:
            norm = peak * _vector_norm(a / peak, p)
    return np.asarray(norm, dtype=dtype)
