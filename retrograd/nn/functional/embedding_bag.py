"""embedding_bag: sums, means or maxima of bags of embeddings, without the (B, L, D)
intermediate a user would index by hand (PyTorch's ``F.embedding_bag``).

Composed of existing ops, so its gradients are theirs: the rows of the ids are looked up
once (``embedding``: max_norm and scale_grad_by_freq act on the ids given, as PyTorch's),
a zero row is appended, and each bag's rows are gathered into a (B, Lmax, D) block, the
positions past a bag's end and the ids equal to padding_idx pointing at the zero row; the
block is then summed (times per_sample_weights), averaged over the bag's real entries, or
maximized with those positions at -inf. An empty bag gives zeros.
"""

import numpy as np

from retrograd import _checks
from retrograd._checks import name_of
from retrograd.creation import cat, zeros
from retrograd.nn.functional.embedding import embedding
from retrograd.tensor import Tensor, make_tensor

__all__ = ["embedding_bag"]


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2,  # noqa: A002
                  scale_grad_by_freq=False, mode="mean", sparse=False, per_sample_weights=None,
                  include_last_offset=False, padding_idx=None, *, owner=None):
    """Reduce bags of embeddings: output[b] = sum, mean or max over the ids i of bag b of
    weight[i] (times per_sample_weights[i] for 'sum'); ids equal to padding_idx are left out
    (and not counted by 'mean'); an empty bag gives zeros.

    Args:
        input: integer ids, (B, L) (each row a bag) or (N,) with offsets.
        weight: (V, D) floating Tensor.
        offsets: for 1-D input, the start of each bag in input, (B,) starting at 0 and
            non-decreasing; with include_last_offset, (B + 1,), the last one the end.
        max_norm, norm_type, scale_grad_by_freq: as embedding (scale_grad_by_freq not with
            'max').
        mode: 'sum', 'mean' or 'max'. Default: 'mean'.
        sparse: not supported (retrograd's weight gradient is dense).
        per_sample_weights: floating Tensor of input's shape and weight's dtype, 'sum' only.
        include_last_offset: offsets has B + 1 entries (the CSR layout).
        padding_idx: an id left out of every bag (negative counts from the end).
        owner: who errors name (a layer passes itself); default "embedding_bag".

    Shape:
        - Output: (B, D).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> w = rg.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
        >>> F.embedding_bag(rg.tensor([0, 2, 1, 1]), w, rg.tensor([0, 2]), mode="sum")
        tensor([[6., 8.],
                [6., 8.]])
        >>> F.embedding_bag(rg.tensor([[0, 2], [1, 0]]), w, mode="max", padding_idx=0)
        tensor([[5., 6.],
                [3., 4.]])
    """
    owner = "embedding_bag" if owner is None else owner
    _check_arguments(owner, input, weight, mode, scale_grad_by_freq, sparse, per_sample_weights)
    ids, starts, ends = _bags(owner, input, offsets, include_last_offset)
    if padding_idx is not None:
        padding_idx = _checks.index(owner, "padding_idx", padding_idx, weight.shape[0])
    rows = embedding(make_tensor(ids), weight, max_norm=max_norm, norm_type=norm_type,
                     scale_grad_by_freq=scale_grad_by_freq, owner=owner)
    positions, real = _positions(ids, starts, ends, padding_idx)
    # row n (appended) is zeros: positions past a bag's end and padding ids point at it
    gathered = cat([rows, zeros(1, weight.shape[1], dtype=weight.dtype)])[positions]
    if mode == "max":
        dead = make_tensor(~real)
        out = gathered.masked_fill(dead[..., None], -np.inf).max(dim=1)[0]
        return out.masked_fill(dead.all(dim=1)[:, None], 0.0)
    if per_sample_weights is not None:
        scales = cat([per_sample_weights.reshape(-1), zeros(1, dtype=weight.dtype)])
        gathered = gathered * scales[positions][..., None]
    out = gathered.sum(dim=1)
    if mode == "mean":
        counts = np.maximum(real.sum(axis=1), 1).astype(weight._data.dtype)
        out = out / make_tensor(counts[:, None])
    return out


def _check_arguments(owner, input, weight, mode, scale_grad_by_freq, sparse,  # noqa: A002
                     per_sample_weights):
    """PyTorch's checks, in its order, with its messages (and the owner's name)."""
    if per_sample_weights is not None and tuple(np.shape(per_sample_weights)) != \
            tuple(np.shape(input)):
        raise ValueError(f"{name_of(owner)}: If per_sample_weights "
                         f"({tuple(np.shape(per_sample_weights))}) is not None, then it must "
                         f"have the same shape as the input ({tuple(np.shape(input))})")
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"{name_of(owner)}: weight has to be a 2D Tensor, but got "
                         f"{_describe(weight)}")
    _checks.one_of(owner, "mode", mode, ("sum", "mean", "max"))
    if mode == "max" and scale_grad_by_freq:
        raise ValueError(f"{name_of(owner)}: max mode does not support scaling the gradient "
                         f"by the frequency")
    if sparse:
        raise NotImplementedError(f"{name_of(owner)}: sparse gradients are not supported; "
                                  f"retrograd computes a dense (V, D) weight gradient")
    if per_sample_weights is None:
        return
    if mode != "sum":
        raise NotImplementedError(f"{name_of(owner)}: per_sample_weights was not None. "
                                  f"per_sample_weights is only supported for mode='sum' "
                                  f"(got mode='{mode}')")
    if not isinstance(per_sample_weights, Tensor) or per_sample_weights.dtype != weight.dtype:
        raise RuntimeError(f"{name_of(owner)}: per_sample_weights must be a Tensor of "
                           f"weight's dtype {weight.dtype}, got {_describe(per_sample_weights)}")


def _describe(value):
    if isinstance(value, Tensor):
        return f"a Tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    return type(value).__name__


def _as_ints(owner, name, value):
    array = value._data if isinstance(value, Tensor) else np.asarray(value)
    if array.dtype.kind not in "iu":
        raise RuntimeError(f"{name_of(owner)}: {name} must hold integers (int64 or int32), got "
                           f"dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


def _bags(owner, input, offsets, include_last_offset):  # noqa: A002
    """(ids (N,), starts (B,), ends (B,)): the flat ids and where each bag lies in them."""
    ids = _as_ints(owner, "input", input)
    if ids.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{name_of(owner)}: if input is 2D, then offsets has to be None, "
                             f"as input is treated is a mini-batch of fixed length sequences. "
                             f"However, found offsets of type {type(offsets).__name__}")
        bags, length = ids.shape
        starts = np.arange(bags, dtype=np.int64) * length
        return ids.reshape(-1), starts, starts + length
    if ids.ndim != 1:
        raise ValueError(f"{name_of(owner)}: input has to be 1D or 2D Tensor, but got Tensor "
                         f"of dimension {ids.ndim}")
    if offsets is None:
        raise ValueError(f"{name_of(owner)}: offsets has to be a 1D Tensor but got None")
    offsets = _as_ints(owner, "offsets", offsets)
    if offsets.ndim != 1:
        raise ValueError(f"{name_of(owner)}: offsets has to be a 1D Tensor, got shape "
                         f"{offsets.shape}")
    _check_offsets(owner, offsets, ids.size)
    starts = offsets[:-1] if include_last_offset else offsets
    # NOTE: the last bag runs to the end of input, also with include_last_offset (whose last
    # offset then only counts the bags), as in PyTorch
    ends = np.append(offsets[1:len(starts)], ids.size)[:len(starts)]
    return ids, starts, ends


def _check_offsets(owner, offsets, size):
    if not offsets.size:
        return
    if offsets[0] != 0:
        raise RuntimeError(f"{name_of(owner)}: offsets[0] has to be 0, i.e., the first "
                           f"sequence in the mini-batch has to start from position 0. However, "
                           f"got {offsets[0]}")
    if np.any(np.diff(offsets) < 0):
        raise RuntimeError(f"{name_of(owner)}: offsets must be non-decreasing, got "
                           f"{offsets.tolist()}")
    if offsets[-1] > size:
        raise RuntimeError(f"{name_of(owner)}: offsets[-1] can not be greater than input's "
                           f"length {size} but got offsets[-1] of {offsets[-1]}")


def _positions(ids, starts, ends, padding_idx):
    """(positions (B, Lmax), real (B, Lmax)): where in ids each bag's k-th entry is, and
    whether it is a real entry; the others point at N (the appended zero row)."""
    # at least one column, all at the zero row when every bag is empty (max needs one)
    longest = max(int((ends - starts).max(initial=0)), 1)
    positions = starts[:, None] + np.arange(longest)[None, :]
    real = positions < ends[:, None]
    positions = np.where(real, positions, ids.size)
    if padding_idx is not None:
        real &= np.append(ids, -1)[positions] != padding_idx
        positions = np.where(real, positions, ids.size)
    return positions, real
