"""embedding: look rows of a table up by integer id."""

import numbers

import numpy as np

from retrograd import dtypes as _dt
from retrograd.ops.embedding import Embedding
from retrograd.tensor import Tensor

__all__ = ["embedding"]


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,  # noqa: A002
              scale_grad_by_freq=False, sparse=False):
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
    ids = check_embedding_input(input, weight, "embedding")
    return lookup(ids, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                  "embedding")


def lookup(ids, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, name):
    """F.embedding after its input check (nn.Embedding checks the ids under its own name).
    ``ids`` is an integer ndarray or Tensor."""
    if sparse:
        raise NotImplementedError(f"{name}: sparse gradients are not supported; retrograd "
                                  f"computes a dense (V, D) weight gradient")
    num_embeddings = weight.shape[0]
    padding_idx = normalize_padding_idx(padding_idx, num_embeddings, name)
    if max_norm is not None:
        _renorm_rows(weight, ids, float(max_norm), float(norm_type))
    return Embedding.apply(ids, weight, padding_idx=padding_idx,
                           scale_grad_by_freq=bool(scale_grad_by_freq))


def check_embedding_input(input, weight, name):  # noqa: A002 - PyTorch's argument name
    """The ids as an integer array or Tensor, after checking weight and the ids' range;
    errors name ``name`` (the op or the module), the bad id and the vocabulary size."""
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        shape = weight.shape if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"{name}: weight must be a 2-D Tensor (num_embeddings, "
                         f"embedding_dim), got {shape}")
    if not _dt.is_floating(weight._data.dtype):
        raise TypeError(f"{name}: weight must be floating point, got dtype {weight.dtype}")
    array = input._data if isinstance(input, Tensor) else np.asarray(input)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name}: token ids must be integers (int64 or int32), got dtype "
                        f"{array.dtype} (input of shape {array.shape}); convert them with "
                        f".long()")
    num_embeddings = weight.shape[0]
    if array.size:
        low, high = array.min(), array.max()
        if low < 0 or high >= num_embeddings:
            bad = int(low) if low < 0 else int(high)
            raise IndexError(f"{name}: token id {bad} is out of range for a vocabulary of "
                             f"size {num_embeddings} (ids must be in [0, {num_embeddings - 1}]; "
                             f"input of shape {array.shape}, weight of shape {weight.shape})")
    return input if isinstance(input, Tensor) else array


def normalize_padding_idx(padding_idx, num_embeddings, name):
    """padding_idx in [0, V) (negative values count from the end), or None."""
    if padding_idx is None:
        return None
    if not isinstance(padding_idx, numbers.Integral) or isinstance(padding_idx, bool) \
            or not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{name}: padding_idx must be an int in [-{num_embeddings}, "
                         f"{num_embeddings - 1}] (num_embeddings = {num_embeddings}), got "
                         f"{padding_idx!r}")
    return int(padding_idx) % num_embeddings


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
