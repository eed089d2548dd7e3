"""Embedding lookup: a gather of weight rows, whose gradient is a scatter-add of rows.

Gradient flow through an embedding, the facts the course is about:
- only the rows that were looked up receive a gradient (the rest of dL/dW is zero);
- a token that occurs k times receives the sum of its k output gradients (repeated ids
  accumulate; nothing is overwritten);
- the padding row receives no gradient at all, whatever it was multiplied with;
- with scale_grad_by_freq, each row's summed gradient is divided by k (PyTorch semantics:
  k counts the id over the whole index tensor of this call).

The scatter is ``np.add.at`` on the flattened weight gradient, fed in chunks of rows: adding
one element per index into a 1-D array is NumPy's fast path for ``ufunc.at``, 3 to 4 times
faster than ``np.add.at`` on the 2-D (V, D) array and than a sort + ``np.add.reduceat``
(benchmarks/embedding.py measures the three for vocabularies of 65 to 50k rows and 4k to
64k tokens); the chunks bound the memory of the flat index to a few MB.
"""

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, shape_text
from retrograd.autograd.function import Function

__all__ = ["Embedding", "EmbeddingBackward", "embedding_scatter"]

# Elements of dL/dy per np.add.at call: big enough to amortize the call, small enough for the
# int64 flat index (8 bytes per element) to stay in cache.
_SCATTER_CHUNK = 1 << 17


def _row_scale(indices, num_embeddings, padding_idx, scale_grad_by_freq, dtype):
    """Per-lookup factors (indices.shape + (1,)) applied to dL/dy before the scatter:
    0 at the padding id, 1 / count(id) with scale_grad_by_freq; None when all are 1."""
    if padding_idx is None and not scale_grad_by_freq:
        return None
    flat = indices.reshape(-1)
    if scale_grad_by_freq:
        counts = np.bincount(flat, minlength=num_embeddings)
        scale = (1.0 / counts[flat]).astype(dtype)
    else:
        scale = np.ones(flat.shape, dtype=dtype)
    if padding_idx is not None:
        scale[flat == padding_idx] = 0
    return scale.reshape(indices.shape + (1,))


def embedding_scatter(grad_rows, indices, num_embeddings):
    """zeros((num_embeddings, D)) with row grad_rows[k] added at row indices[k], for every
    position k of ``indices`` (repeated ids accumulate). grad_rows: indices.shape + (D,).

    Example:
        >>> import numpy as np
        >>> from retrograd.ops.embedding import embedding_scatter
        >>> embedding_scatter(np.ones((3, 2)), np.array([2, 0, 2]), 4).tolist()
        [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0], [0.0, 0.0]]
    """
    dim = grad_rows.shape[-1]
    flat_ids = indices.reshape(-1)
    rows = grad_rows.reshape(flat_ids.size, dim)
    out = np.zeros(num_embeddings * dim, dtype=grad_rows.dtype)
    cols = np.arange(dim)
    step = max(1, _SCATTER_CHUNK // max(dim, 1))
    for start in range(0, flat_ids.size, step):
        ids = flat_ids[start:start + step]
        flat_index = (ids[:, None] * dim + cols).reshape(-1)
        np.add.at(out, flat_index, rows[start:start + step].reshape(-1))
    return out.reshape(num_embeddings, dim)


def _gather(weight, indices):
    """weight[indices] on an array (np.take) or, in a recorded backward, on a Tensor."""
    if isinstance(weight, np.ndarray):
        return np.take(weight, indices, axis=0)
    return Embedding.apply(indices, weight)


def _scatter(grad_out, indices, num_embeddings, scale):
    """dL/dW from dL/dy: the scatter kernel on arrays, the EmbeddingBackward op on Tensors."""
    if not isinstance(grad_out, np.ndarray):
        return EmbeddingBackward.apply(grad_out, indices=indices, num_embeddings=num_embeddings,
                                       scale=scale)
    if scale is not None:
        grad_out = grad_out * scale
    return embedding_scatter(grad_out, indices, num_embeddings)


def _scatter_flops(rows, scaled):
    """The adds of scatter-adding ``rows`` elements into dL/dW (one per value, as np.add.at),
    and s_k * dL/dy[k] (one product per element) when the rows are ``scaled``."""
    return rows * (1 + bool(scaled))


class Embedding(Function):
    """y = W[ids]: row lookup. ids: (*) integers in [0, V), W: (V, D), y: (*, D).

    dL/dW[v] = sum over positions k with ids[k] = v of s_k * dL/dy[k]         (V, D)
    where s_k = 1, or 0 when ids[k] = padding_idx, or 1 / count(ids[k]) with
    scale_grad_by_freq; rows never looked up get 0. ids get no gradient.
    Saves: nothing from the arrays; the ids (a constant, as ctx.indices) and V. The backward
    is itself an op (EmbeddingBackward, a scatter whose adjoint is this gather), so double
    backward works. Input order is F.embedding's: (ids, weight).
    """

    moves_data = "a gather of rows: no arithmetic (its backward scatter-adds)"

    @staticmethod
    def forward(ctx, indices, weight, padding_idx=None, scale_grad_by_freq=False):
        ctx.indices = indices
        ctx.num_embeddings = weight.shape[0]
        ctx.padding_idx, ctx.scale_grad_by_freq = padding_idx, scale_grad_by_freq
        return np.take(weight, indices, axis=0)

    @staticmethod
    def backward(ctx, grad_out):
        if not ctx.needs_input_grad[1]:
            return None, None
        scale = _row_scale(ctx.indices, ctx.num_embeddings, ctx.padding_idx,
                           ctx.scale_grad_by_freq, grad_out.dtype)
        return None, _scatter(grad_out, ctx.indices, ctx.num_embeddings, scale)

    @staticmethod
    def cost(call):
        """No arithmetic forward (a gather); backward, when dL/dW is needed, the scatter-add
        of the N D values of dL/dy (N ids, D columns), plus s_k * dL/dy[k] (N D products)
        with padding_idx or scale_grad_by_freq, plus s_k = 1 / count(ids[k]) (N divides) with
        scale_grad_by_freq (the counts and the padding test are integer bookkeeping on the
        constant ids: not counted)."""
        ids, weight = call.inputs[:2]
        y = call.outputs[0]
        by_freq = bool(call_arg(call, 3, "scale_grad_by_freq", False))
        scaled = call_arg(call, 2, "padding_idx") is not None or by_freq
        backward = (_scatter_flops(y.size, scaled) + by_freq * ids.size) * call.needs(1)
        return Cost(0, backward, f"embedding ids({shape_text(ids)}) w({shape_text(weight)}) -> "
                                 f"{shape_text(y)}: 0; backward N*D (+ N*D scaled)")


class EmbeddingBackward(Function):
    """Y = scatter of scaled rows: Y[v] = sum over k with ids[k] = v of s_k X[k] (the
    gradient of Embedding, as an op so that a recorded backward can be differentiated).
    X: (*, D), ids: (*), s: (*, 1) or None (all ones), Y: (V, D).

    dL/dX[k] = s_k * dL/dY[ids[k]]     (*, D): a gather, the adjoint of the scatter.
    Saves: nothing (ids and s are constants on ctx).
    """

    @staticmethod
    def forward(ctx, x, indices, num_embeddings, scale=None):
        ctx.indices, ctx.scale = indices, scale
        return _scatter(x, indices, num_embeddings, scale)

    @staticmethod
    def backward(ctx, grad_out):
        rows = _gather(grad_out, ctx.indices)
        return rows * ctx.scale if ctx.scale is not None else rows

    @staticmethod
    def cost(call):
        """The scatter-add of X's N D values (one add per value, as Embedding's backward),
        plus s_k X[k] (N D products) when s is given; backward the gather, times s_k (N D)
        when s is given."""
        x, y = call.inputs[0], call.outputs[0]
        scaled = call_arg(call, 3, "scale") is not None
        return Cost(_scatter_flops(x.size, scaled), x.size * scaled * call.needs(0),
                    f"embedding_backward x({shape_text(x)}) -> {shape_text(y)}: N*D "
                    f"(+ N*D scaled)")
