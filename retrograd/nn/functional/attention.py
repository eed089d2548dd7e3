"""Scaled dot-product attention, standard and memory-efficient.

``scaled_dot_product_attention`` has PyTorch's signature and semantics.
``memory_efficient_attention`` takes the same arguments (plus ``block_size``) and gives the
same result and gradients, but keeps only O(L) values per query row for backward instead of
the L x S attention weights (see ``retrograd.ops.attention``). It is a separate function,
not a flag, because it is a different algorithm with its own knob and limits (no dropout).
"""

import math

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.observer import casting_inputs
from retrograd.ops.attention import MemoryEfficientAttention, ScaledDotProductAttention
from retrograd.tensor import Tensor

__all__ = ["scaled_dot_product_attention", "memory_efficient_attention"]

_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False):
    """softmax(query key^T * scale + mask) value, with dropout on the attention weights.

    Args:
        query: (..., L, E). key: (..., S, E). value: (..., S, Ev). Batch dims broadcast.
        attn_mask: None, a bool Tensor (True = the query may attend to the key) or a float
            Tensor added to the scores (of the query's dtype, or float32); broadcastable to
            (..., L, S). A float mask that requires grad gets a gradient.
        dropout_p: probability of zeroing each attention weight (always applied when > 0, as
            in PyTorch; pass 0.0 in evaluation). The mask comes from retrograd's generator
            and the same mask is used in backward.
        is_causal: mask key j for query i when j > i (top-left aligned when L != S). Not
            allowed together with attn_mask.
        scale: the factor on the scores; default 1 / sqrt(E).
        enable_gqa: grouped-query attention: key and value have Hkv heads (dim -3), which
            the query's Hq heads share in groups of Hq / Hkv (no copy of key or value).

    A query whose every key is masked gets an output row of zeros and zero gradients (never
    NaN), like PyTorch >= 2.5. float16 and bfloat16 inputs are computed in float32.

    Shape:
        Output: (..., L, Ev), the broadcast batch dims of query, key and value.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> q = rg.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> k = rg.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
        >>> v = rg.tensor([[1.0], [2.0], [3.0]])
        >>> F.scaled_dot_product_attention(q, k, v, scale=0.0)  # equal weights: the mean
        tensor([[2.],
                [2.]])
        >>> F.scaled_dot_product_attention(q, k, v, is_causal=True)  # query 0 sees key 0 only
        tensor([[1.    ],
                [1.6698]])
    """
    name = "scaled_dot_product_attention"
    dropout_p = _checks.probability(name, "dropout probability", dropout_p)
    q, k, v, mask, scale, grouped = _prepare(name, query, key, value, attn_mask, is_causal,
                                             scale, enable_gqa)
    out, _ = ScaledDotProductAttention.apply(q, k, v, mask, scale=scale, causal=bool(is_causal),
                                             dropout_p=dropout_p)
    return _finish(out, query, grouped)


def memory_efficient_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                               is_causal=False, scale=None, enable_gqa=False, block_size=128):
    """scaled_dot_product_attention computed over blocks of ``block_size`` keys with an
    online softmax, saving only the output and one log-sum-exp per query row for backward
    (which recomputes the weights block by block). Activation memory grows with L, not
    L x S; peak memory is about L x block_size per batch element.

    Same arguments, masks, causal alignment, scale, grouped-query heads and fully masked
    rows (zeros) as ``scaled_dot_product_attention``; the result and gradients are equal up
    to rounding. Dropout is not supported (dropout_p must be 0).

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> _ = rg.manual_seed(0)
        >>> q, k, v = rg.randn(2, 5, 4), rg.randn(2, 7, 4), rg.randn(2, 7, 3)
        >>> a = F.memory_efficient_attention(q, k, v, is_causal=True, block_size=3)
        >>> b = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        >>> bool(abs(a - b).max() < 1e-6)
        True
    """
    name = "memory_efficient_attention"
    dropout_p = _checks.probability(name, "dropout probability", dropout_p)
    if dropout_p > 0.0:
        raise NotImplementedError(f"{name}: dropout is not supported (got dropout_p="
                                  f"{dropout_p}); use scaled_dot_product_attention for dropout")
    block_size = _checks.positive_int(name, "block_size", block_size)
    q, k, v, mask, scale, grouped = _prepare(name, query, key, value, attn_mask, is_causal,
                                             scale, enable_gqa)
    out, _ = MemoryEfficientAttention.apply(q, k, v, mask, scale=scale,
                                            causal=bool(is_causal), block_size=block_size)
    return _finish(out, query, grouped)


def _prepare(name, query, key, value, attn_mask, is_causal, scale, enable_gqa):
    """Check the arguments; return (q, k, v, mask, scale, grouped) ready for the op: float32
    or float64, key/value heads grouped for GQA (grouped=True), the mask at least 2-D."""
    _check_tensors(name, query, key, value, attn_mask)
    if is_causal and attn_mask is not None:
        raise ValueError(f"{name}: attn_mask must be None when is_causal=True (the causal mask "
                         f"is built from L and S)")
    grouped = enable_gqa and _check_groups(name, query, key, value)
    batch = _batch_shape(name, query, key, value, grouped)
    if attn_mask is not None:
        _check_mask(name, attn_mask, query, key, batch)
    q, k, v, mask = query, key, value, attn_mask
    compute = q.dtype if q._data.dtype in _NATIVE or casting_inputs() else _dt.float32
    if compute != q.dtype:  # NOTE: like PyTorch on CPU, half precisions compute in float32
        # (under autocast the op's boundary does it, and keeps the low dtype it stores)
        q, k, v = q.to(compute), k.to(compute), v.to(compute)
    if mask is not None:
        if mask.dtype != _dt.bool and mask.dtype != compute:
            mask = mask.to(compute)
        if mask.ndim < 2:
            mask = mask.reshape((1,) * (2 - mask.ndim) + tuple(mask.shape))
    if grouped:
        q, k, v, mask = _group_heads(q, k, v, mask)
    return q, k, v, mask, _scale(name, scale, query.shape[-1]), grouped


def _finish(out, query, grouped):
    """Undo the GQA grouping (..., Hkv, G, L, Ev) -> (..., Hq, L, Ev) and the half-precision
    upcast."""
    if grouped:
        out = out.reshape(tuple(out.shape[:-4]) + (out.shape[-4] * out.shape[-3],)
                          + tuple(out.shape[-2:]))
    return out if out.dtype == query.dtype or casting_inputs() else out.to(query.dtype)


def _check_tensors(name, query, key, value, attn_mask):
    for label, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}: {label} must be a Tensor, got {type(t).__name__}")
    if attn_mask is not None and not isinstance(attn_mask, Tensor):
        raise TypeError(f"{name}: attn_mask must be a Tensor or None, got "
                        f"{type(attn_mask).__name__}")
    shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ValueError(f"{name}: query, key and value must be at least 2-D ((..., L, E), "
                         f"(..., S, E), (..., S, Ev)), got {shapes}")
    if _checks.mixed_dtypes(query, key, value):
        raise TypeError(f"{name}: query, key and value must have one dtype, got {query.dtype}, "
                        f"{key.dtype}, {value.dtype} ({shapes})")
    if not _dt.is_floating(query._data.dtype):
        raise TypeError(f"{name}: expected floating-point query, key and value, got dtype "
                        f"{query.dtype} ({shapes})")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{name}: query and key must have the same head dim E, got {shapes}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{name}: key and value must have the same sequence length S, got "
                         f"{shapes}")
    if query.shape[-1] == 0:
        raise ValueError(f"{name}: the head dim E must be positive, got {shapes}")


def _batch_shape(name, q, k, v, grouped):
    """The broadcast batch dims of query, key and value (key and value counted with the
    query's heads when grouped)."""
    k_batch, v_batch = k.shape[:-2], v.shape[:-2]
    if grouped:
        k_batch, v_batch = k_batch[:-1] + q.shape[-3:-2], v_batch[:-1] + q.shape[-3:-2]
    try:
        return np.broadcast_shapes(q.shape[:-2], k_batch, v_batch)
    except ValueError:
        raise ValueError(f"{name}: the batch dims of query {q.shape}, key {k.shape} and value "
                         f"{v.shape} do not broadcast (for grouped-query attention, with fewer "
                         f"key/value heads, pass enable_gqa=True)") from None


def _check_mask(name, mask, q, k, batch):
    if mask.dtype != _dt.bool and mask.dtype != _dt.float32 and mask.dtype != q.dtype:
        raise TypeError(f"{name}: attn_mask must be bool (True = take part) or a float "
                        f"additive mask of the query's dtype ({q.dtype}) or float32, got dtype "
                        f"{mask.dtype} (shape {mask.shape})")
    L, S = q.shape[-2], k.shape[-2]
    expected = batch + (L, S)
    try:
        fits = np.broadcast_shapes(mask.shape, expected) == expected
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: attn_mask of shape {mask.shape} does not broadcast to the "
                         f"scores' shape {expected}: expected a shape broadcastable to "
                         f"(L, S) = ({L}, {S}) with the batch dims of query, key and value")


def _check_groups(name, q, k, v):
    """Whether grouped-query attention applies (key/value heads fewer than the query's), after
    checking that the heads can be grouped."""
    if q.ndim < 3 or k.ndim < 3 or v.ndim < 3:
        raise ValueError(f"{name}: enable_gqa needs query, key and value of at least 3 dims "
                         f"(..., heads, seq, dim), got {q.shape}, {k.shape}, {v.shape}")
    heads, kv_heads = q.shape[-3], k.shape[-3]
    if kv_heads == heads and v.shape[-3] == heads:
        return False
    if v.shape[-3] != kv_heads or kv_heads == 0 or heads % kv_heads:
        raise ValueError(f"{name}: enable_gqa needs key and value with the same number of heads "
                         f"dividing the query's, got query {q.shape}, key {k.shape}, value "
                         f"{v.shape}")
    return True


def _group_heads(q, k, v, mask):
    """GQA without copies: q (..., Hq, L, E) -> (..., Hkv, G, L, E) and k, v get a size-1
    group dim, so that query head h uses key/value head h // G (PyTorch's repeat_interleave)
    by broadcasting; the engine sums the key/value gradients over each group."""
    heads, kv_heads = q.shape[-3], k.shape[-3]
    group = heads // kv_heads
    q = q.reshape(tuple(q.shape[:-3]) + (kv_heads, group) + tuple(q.shape[-2:]))
    k, v = k.unsqueeze(-3), v.unsqueeze(-3)
    if mask is not None and mask.ndim >= 3:
        split = (kv_heads, group) if mask.shape[-3] == heads else (1, 1)
        mask = mask.reshape(tuple(mask.shape[:-3]) + split + tuple(mask.shape[-2:]))
    return q, k, v, mask


def _scale(name, scale, head_dim):
    scale = _checks.number(name, "scale", scale, allow_none=True)
    return 1.0 / math.sqrt(head_dim) if scale is None else scale
