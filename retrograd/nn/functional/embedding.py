"""embedding: look rows of a table up by integer id."""

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd._checks import name_of
from retrograd.ops.embedding import Embedding
from retrograd.tensor import Tensor

__all__ = ["embedding"]


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,  # noqa: A002
              scale_grad_by_freq=False, sparse=False, *, owner=None):
    """y = weight[input]: the row of ``weight`` for every id of ``input``.

    Gradient: dL/dweight[v] is the sum of dL/dy over the positions where input == v
    (repeated ids accumulate), zero for rows that were not looked up and for the row
    ``padding_idx``; ``scale_grad_by_freq=True`` divides it by the number of times v occurs
    in ``input``. ``max_norm`` renormalizes, in place and outside autograd, the looked-up
    rows whose ``norm_type``-norm exceeds it (to max_norm / (norm + 1e-7) times themselves,
    as PyTorch) before the lookup.

    Args:
        input: integer Tensor (or array) of ids, any shape (*), each in [0, V).
        weight: (V, D) floating Tensor.
        padding_idx: an id (negative counts from the end) whose row gets no gradient.
        owner: who errors name (a layer passes itself); default "embedding".

    Shape:
        - Output: (*, D).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> w = rg.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        >>> ids = rg.tensor([[1, 2, 1]])
        >>> F.embedding(ids, w).sum().backward()
        >>> w.grad
        tensor([[0., 0.],
                [2., 2.],
                [1., 1.]])
    """
    owner = "embedding" if owner is None else owner
    ids = _check_ids(owner, input, weight)
    if sparse:
        raise NotImplementedError(f"{name_of(owner)}: sparse gradients are not supported; "
                                  f"retrograd computes a dense (V, D) weight gradient")
    if padding_idx is not None:
        padding_idx = _checks.index(owner, "padding_idx", padding_idx, weight.shape[0])
    if max_norm is not None:
        _renorm_rows(weight, ids, float(max_norm), float(norm_type))
    return Embedding.apply(ids, weight, padding_idx=padding_idx,
                           scale_grad_by_freq=bool(scale_grad_by_freq))


def _check_ids(owner, input, weight):  # noqa: A002 - PyTorch's argument name
    """The ids as an integer array or Tensor, after checking weight and the ids' range;
    errors name the owner (the op or the layer), the bad id and the vocabulary size."""
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        shape = weight.shape if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"{name_of(owner)}: weight must be a 2-D Tensor (num_embeddings, "
                         f"embedding_dim), got {shape}")
    if not _dt.is_floating(weight._data.dtype):
        raise TypeError(f"{name_of(owner)}: weight must be floating point, got dtype "
                        f"{weight.dtype}")
    array = input._data if isinstance(input, Tensor) else np.asarray(input)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name_of(owner)}: token ids must be integers (int64 or int32), got "
                        f"dtype {array.dtype} (input of shape {array.shape}); convert them "
                        f"with .long()")
    num_embeddings = weight.shape[0]
    if array.size:
        low, high = array.min(), array.max()
        if low < 0 or high >= num_embeddings:
            bad = int(low) if low < 0 else int(high)
            raise IndexError(f"{name_of(owner)}: token id {bad} is out of range for a "
                             f"vocabulary of size {num_embeddings} (ids must be in [0, "
                             f"{num_embeddings - 1}]; input of shape {array.shape}, weight of "
                             f"shape {weight.shape})")
    return input if isinstance(input, Tensor) else array


def _renorm_rows(weight, ids, max_norm, norm_type):
    """PyTorch's embedding_renorm_: rows looked up whose norm exceeds max_norm are scaled,
    in place and without a gradient, by max_norm / (norm + 1e-7). A real write to the
    weight: its version counter moves, so a graph that saved the old weight will refuse
    to backpropagate (as in PyTorch)."""
    data = weight._data
    rows = np.unique(ids._data if isinstance(ids, Tensor) else ids)
    norms = np.linalg.norm(data[rows].astype(np.float64), ord=norm_type, axis=1)
    big = norms > max_norm
    if not np.any(big):
        return
    rows = rows[big]
    data[rows] *= (max_norm / (norms[big] + 1e-7))[:, None].astype(data.dtype)
    weight._version[0] += 1
