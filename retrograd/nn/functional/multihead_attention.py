"""multi_head_attention_forward: the computation of ``nn.MultiheadAttention``, as a function.

How the gradient flows (one head h, one batch element, X the query input):

    Q_h = X W_q,h^T + b_q,h     K_h, V_h likewise from the key and value inputs
    O_h = softmax(Q_h K_h^T / sqrt(d) + M) V_h          (the fused op, retrograd.ops.attention)
    Y   = concat_h(O_h) W_o^T + b_o

dL/dO_h is the slice of dL/dY W_o for head h; the fused op turns it into dL/dQ_h, dL/dK_h,
dL/dV_h; each projection turns those into its weight gradient and adds its share to dL/dX
(three shares for self-attention, where X is query, key and value at once).

Masks follow PyTorch's MultiheadAttention convention, the opposite of
scaled_dot_product_attention's: a bool True means "do not attend", a float is added to the
scores. Both masks are merged into one mask for the fused op. A query whose every key is
masked gets an attention output of 0 and zero gradients, with or without need_weights (PyTorch
gives NaN with need_weights=True).

QK-norm (retrograd's extension, ``qk_norm=True``; Dehghani et al. 2023, Wortsman et al.
2023): Q_h and K_h are each normalized by a LayerNorm over the head dim d before the dot
product, Q_h <- layer_norm(Q_h) * g_q + b_q (g, b of shape (d,), shared by the heads), which
bounds the scores |q.k| / sqrt(d) <= sqrt(d) max|g_q| max|g_k| (+ the biases) and so keeps the
softmax from saturating. Its gradient passes through F.layer_norm's op on the way back to the
projections.
"""

import math

import numpy as np

from retrograd import _checks
from retrograd._checks import name_of
from retrograd import dtypes as _dt
from retrograd.creation import cat
from retrograd.nn.functional.attention import scaled_dot_product_attention
from retrograd.nn.functional.dropout import dropout
from retrograd.nn.functional.linear import linear
from retrograd.nn.functional.norm import layer_norm
from retrograd.ops.attention import ScaledDotProductAttention
from retrograd.tensor import Tensor, make_tensor

__all__ = ["multi_head_attention_forward"]

_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


def multi_head_attention_forward(query, key, value, embed_dim_to_check, num_heads,  # noqa: C901
                                 in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn,
                                 dropout_p, out_proj_weight, out_proj_bias, training=True,
                                 key_padding_mask=None, need_weights=True, attn_mask=None,
                                 use_separate_proj_weight=False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights=True, is_causal=False, *,
                                 batch_first=False, owner=None, qk_norm=False,
                                 q_norm_weight=None, q_norm_bias=None, k_norm_weight=None,
                                 k_norm_bias=None, qk_norm_eps=1e-5):
    """Multi-head attention with PyTorch's signature; returns (attn_output, attn_weights),
    the weights None unless need_weights.

    Args (beyond ``nn.MultiheadAttention``'s, whose docstring has the shapes):
        embed_dim_to_check: E, checked against query's last dim. num_heads: H.
        in_proj_weight (3E, E), in_proj_bias (3E,): the packed q, k, v projections, or
            q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim) with
            use_separate_proj_weight=True.
        bias_k, bias_v: (1, 1, E) or None. add_zero_attn: bool. dropout_p: on the weights,
            applied only when training.
        out_proj_weight (E, E), out_proj_bias (E,) or None.
        static_k, static_v: (N * H, S, E / H) keys and values used instead of projecting key
            and value (not with bias_k / bias_v).
        batch_first (retrograd's): inputs and output are (N, L, E), as the layer's option;
            PyTorch's function takes (L, N, E) only.
        owner (retrograd's): who errors name (a layer passes itself); default
            "multi_head_attention_forward".
        qk_norm (retrograd's): normalize the heads' queries and keys with F.layer_norm over
            the head dim d (eps qk_norm_eps), after the projection (and bias_k) and before
            the dot product; q_norm_weight, q_norm_bias, k_norm_weight, k_norm_bias are the
            affine (d,) parameters, or None. static_k and the zero key of add_zero_attn are
            used as given, not normalized.

    Example:
        >>> import retrograd as rg
        >>> import retrograd.nn.functional as F
        >>> _ = rg.manual_seed(0)
        >>> x, w, wo = rg.randn(5, 2, 8), rg.randn(24, 8), rg.randn(8, 8)
        >>> out, weights = F.multi_head_attention_forward(x, x, x, 8, 2, w, None, None, None,
        ...                                               False, 0.0, wo, None)
        >>> out.shape, weights.shape
        ((5, 2, 8), (2, 5, 5))
    """
    owner = "multi_head_attention_forward" if owner is None else owner
    projections = _projection_weights(owner, in_proj_weight, use_separate_proj_weight,
                                      q_proj_weight, k_proj_weight, v_proj_weight)
    layout = _Layout(owner, query, key, value, embed_dim_to_check, num_heads, projections[0],
                     batch_first)
    # self-attention with the packed weight: one (3E, E) product (_heads)
    packed = in_proj_weight if not use_separate_proj_weight and query is key is value else None
    if not layout.batched:
        query, key, value = (t.unsqueeze(layout.batch_axis) for t in (query, key, value))
    qk_norm = _QKNorm(qk_norm, q_norm_weight, q_norm_bias, k_norm_weight, k_norm_bias,
                      qk_norm_eps, owner)
    q, k, v = _heads(owner, layout, query, key, value, projections, packed, in_proj_bias,
                     bias_k, bias_v, static_k, static_v, add_zero_attn, qk_norm)
    lengths = (layout.target_len, k.shape[2] - (bias_k is not None) - bool(add_zero_attn))
    key_padding_mask = _check_padding_mask(owner, key_padding_mask, layout, lengths[1])
    attn_mask = _check_attn_mask(owner, attn_mask, layout, lengths)
    mask, causal = _merged_mask(attn_mask, key_padding_mask, is_causal, need_weights, layout,
                                lengths, (bias_k is not None) + bool(add_zero_attn), q.dtype)
    dropout_p = _checks.probability(owner, "dropout probability", dropout_p) if training else 0.0
    out, weights = _attend(q, k, v, mask, causal, dropout_p, need_weights)
    out = linear(_merge_heads(out, batch_first), out_proj_weight, out_proj_bias, owner=owner)
    if weights is not None and average_attn_weights:
        weights = weights.mean(dim=1)
    if not layout.batched:
        out = out.squeeze(layout.batch_axis)
        weights = weights.squeeze(0) if weights is not None else None
    return out, weights


# ---------------------------------------------------------------------------- checks

def _projection_weights(owner, in_proj_weight, separate, q_proj_weight, k_proj_weight,
                        v_proj_weight):
    """(W_q, W_k, W_v): slices of the packed (3E, E) weight, or the three separate ones."""
    if separate:
        weights = (q_proj_weight, k_proj_weight, v_proj_weight)
        if not all(isinstance(w, Tensor) and w.ndim == 2 for w in weights):
            raise ValueError(f"{name_of(owner)}: use_separate_proj_weight=True needs 2-D "
                             f"q_proj_weight, k_proj_weight and v_proj_weight")
        return weights
    if not isinstance(in_proj_weight, Tensor) or in_proj_weight.ndim != 2 \
            or in_proj_weight.shape[0] % 3:
        shape = getattr(in_proj_weight, "shape", None)
        raise ValueError(f"{name_of(owner)}: in_proj_weight must be a (3E, E) Tensor, got {shape}")
    e = in_proj_weight.shape[0] // 3
    return tuple(in_proj_weight[i * e:(i + 1) * e] for i in range(3))


class _Layout:
    """Where the batch and sequence axes are, and the sizes the masks are checked against:
    n (batch), target_len (L), num_heads, head_dim; ``batched`` is False for 2-D inputs."""

    def __init__(self, owner, query, key, value, embed_dim, num_heads, weight, batch_first):
        _checks.positive_int(owner, "num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"{name_of(owner)}: embed_dim must be divisible by num_heads, got "
                             f"embed_dim={embed_dim} and num_heads={num_heads}")
        self.batched = _check_inputs(owner, query, key, value, embed_dim, weight, batch_first)
        self.batch_first, self.num_heads = batch_first, num_heads
        self.batch_axis = 0 if batch_first else 1
        self.n = query.shape[self.batch_axis] if self.batched else 1
        self.target_len = query.shape[1 - self.batch_axis] if self.batched else query.shape[0]
        self.head_dim = embed_dim // num_heads


def _check_inputs(owner, query, key, value, embed_dim, weight, batch_first):
    """Check dims, feature sizes, batch sizes and dtypes; return whether the input is batched."""
    for label, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name_of(owner)}: {label} must be a Tensor, got {type(t).__name__}")
    shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"{name_of(owner)}: expected query, key and value all 3-D (batched) or "
                         f"all 2-D (unbatched), got {shapes}")
    if query.shape[-1] != embed_dim:
        raise ValueError(f"{name_of(owner)}: expected query with last dim embed_dim={embed_dim}, "
                         f"got {shapes}")
    batched = query.ndim == 3
    batch_axis, seq_axis = (0, 1) if batch_first else (1, 0)
    if batched and not query.shape[batch_axis] == key.shape[batch_axis] \
            == value.shape[batch_axis]:
        layout = "(N, L, E)" if batch_first else "(L, N, E)"
        raise ValueError(f"{name_of(owner)}: query, key and value must have the same batch size N "
                         f"(layout {layout}, batch_first={batch_first}), got {shapes}")
    seq_axis = seq_axis if batched else 0
    if key.shape[seq_axis] != value.shape[seq_axis]:
        raise ValueError(f"{name_of(owner)}: key and value must have the same sequence length S, "
                         f"got {shapes}")
    if _checks.mixed_dtypes(query, key, value, weight):
        raise TypeError(f"{name_of(owner)}: expected query, key and value of the parameters' dtype "
                        f"{weight.dtype}, got {query.dtype}, {key.dtype}, {value.dtype} "
                        f"({shapes})")
    return batched


def _check_projection_input(owner, label, t, weight, shapes):
    if t.shape[-1] != weight.shape[1]:
        what = label[0] + "dim"
        raise ValueError(f"{name_of(owner)}: expected {label} with last dim "
                         f"{what}={weight.shape[1]}, got {shapes}")


def _check_mask_dtype(owner, mask, label):
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name_of(owner)}: {label} must be a Tensor or None, got "
                        f"{type(mask).__name__}")
    if mask.dtype != _dt.bool and not _dt.is_floating(mask._data.dtype):
        raise TypeError(f"{name_of(owner)}: only bool and floating-point {label} are supported "
                        f"(bool: True = not allowed to attend; float: added to the scores), got "
                        f"dtype {mask.dtype} (shape {mask.shape})")


def _check_padding_mask(owner, mask, layout, source_len):
    """key_padding_mask as (N, S) (an unbatched (S,) mask gets N = 1)."""
    if mask is None:
        return None
    _check_mask_dtype(owner, mask, "key_padding_mask")
    if layout.batched:
        expected = (layout.n, source_len)
        if mask.shape != expected:
            raise ValueError(f"{name_of(owner)}: expected key_padding_mask of shape {expected} "
                             f"(N, S), got {mask.shape}")
        return mask
    if mask.shape != (source_len,):
        raise ValueError(f"{name_of(owner)}: expected key_padding_mask of shape {(source_len,)} "
                         f"(S,) for unbatched inputs, got {mask.shape}")
    return mask.unsqueeze(0)


def _check_attn_mask(owner, mask, layout, lengths):
    """attn_mask as (L, S) or (N * num_heads, L, S)."""
    if mask is None:
        return None
    _check_mask_dtype(owner, mask, "attn_mask")
    three_d = (layout.n * layout.num_heads,) + lengths
    if mask.shape not in (lengths, three_d):
        lead = "N * num_heads" if layout.batched else "num_heads"
        raise ValueError(f"{name_of(owner)}: expected attn_mask of shape (L, S) = {lengths} or "
                         f"({lead}, L, S) = {three_d}, got {mask.shape}")
    return mask


# ---------------------------------------------------------------------------- heads

def _heads(owner, layout, query, key, value, weights, packed, in_proj_bias, bias_k, bias_v,
           static_k, static_v, add_zero_attn, qk_norm):
    """The projections split into heads: q (N, H, L, d), k and v (N, H, S', d), with S'
    counting bias_k / bias_v and the zero key when those options are on; q and the projected
    k normalized per head when qk_norm is on. Self-attention with the packed (3E, E) weight
    (``packed``; query, key and value one tensor) is one product split in three (one Split
    node, whose backward concatenates the three gradients: the backward is one GEMM for the
    packed weight and one for the input, as in PyTorch); otherwise three products with
    slices of the weight."""
    shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
    for label, t, weight in (("key", key, weights[1]), ("value", value, weights[2])):
        _check_projection_input(owner, label, t, weight, shapes)
    e = layout.num_heads * layout.head_dim
    if packed is not None:
        q, k, v = linear(query, packed, in_proj_bias).split(e, dim=-1)
    else:
        biases = [None] * 3
        if in_proj_bias is not None:
            biases = [in_proj_bias[i * e:(i + 1) * e] for i in range(3)]
        q, k, v = (linear(x, weights[i], biases[i]) for i, x in enumerate((query, key, value)))
    if bias_k is not None:
        if static_k is not None or static_v is not None:
            raise ValueError(f"{name_of(owner)}: bias_k and bias_v cannot be added to static_k / "
                             f"static_v")
        k, v = (_append_along_sequence(t, extra, layout.batch_first)
                for t, extra in ((k, bias_k), (v, bias_v)))
    q, k, v = (_split_heads(t, layout.num_heads, layout.batch_first) for t in (q, k, v))
    q, k = qk_norm.query(q), qk_norm.key(k)
    k = _static(owner, "static_k", static_k, k, layout)
    v = _static(owner, "static_v", static_v, v, layout)
    if add_zero_attn:
        k, v = (cat([t, _zeros(t.shape[:2] + (1,) + t.shape[3:], t.dtype)], dim=2)
                for t in (k, v))
    return q, k, v


class _QKNorm:
    """The per-head LayerNorm of queries and keys (the identity when qk_norm is off)."""

    def __init__(self, on, q_weight, q_bias, k_weight, k_bias, eps, owner):
        given = [p is not None for p in (q_weight, q_bias, k_weight, k_bias)]
        if any(given) and not on:
            raise ValueError(f"{name_of(owner)}: q_norm_weight / q_norm_bias / k_norm_weight / "
                             f"k_norm_bias are given but qk_norm=False")
        self.on, self.eps, self.owner = bool(on), eps, owner
        self.q_params, self.k_params = (q_weight, q_bias), (k_weight, k_bias)

    def query(self, q):
        return self._norm(q, self.q_params)

    def key(self, k):
        return self._norm(k, self.k_params)

    def _norm(self, x, params):
        if not self.on:
            return x
        return layer_norm(x, (x.shape[-1],), *params, eps=self.eps, owner=self.owner)


def _static(owner, label, static, projected, layout):
    """A given (N * H, S, d) key or value as (N, H, S, d), in place of the projected one."""
    if static is None:
        return projected
    n, h, d = layout.n, layout.num_heads, layout.head_dim
    if not isinstance(static, Tensor) or static.ndim != 3 or static.shape[0] != n * h \
            or static.shape[2] != d:
        shape = getattr(static, "shape", None)
        raise ValueError(f"{name_of(owner)}: expected {label} of shape (N * num_heads, S, "
                         f"head_dim) = ({n * h}, S, {d}), got {shape}")
    return static.reshape(n, h, static.shape[1], d)


def _zeros(shape, dtype):
    return make_tensor(np.zeros(shape, dtype=_dt.as_numpy_dtype(dtype)))


def _append_along_sequence(x, extra, batch_first):
    """x (N, S, E) or (S, N, E) with one more position at the end of S: ``extra`` (1, 1, E)."""
    if batch_first:
        return cat([x, extra.expand(x.shape[0], 1, x.shape[2])], dim=1)
    return cat([x, extra.expand(1, x.shape[1], x.shape[2])], dim=0)


def _split_heads(x, num_heads, batch_first):
    """(N, T, E) or (T, N, E) -> (N, H, T, d): a view (the head dim stays contiguous, so the
    fused op's matmuls reach BLAS without a copy)."""
    x = x.reshape(x.shape[0], x.shape[1], num_heads, x.shape[2] // num_heads)
    return x.permute(0, 2, 1, 3) if batch_first else x.permute(1, 2, 0, 3)


def _merge_heads(out, batch_first):
    """(N, H, L, d) -> (N, L, E) or (L, N, E): the one copy of the layer's forward."""
    out = out.permute(0, 2, 1, 3) if batch_first else out.permute(2, 0, 1, 3)
    return out.reshape(out.shape[0], out.shape[1], out.shape[2] * out.shape[3])


# ---------------------------------------------------------------------------- masks

def _merged_mask(attn_mask, key_padding_mask, is_causal, need_weights, layout, lengths, extra,
                 dtype):
    """One mask in scaled_dot_product_attention's convention (bool True = take part, float =
    added), broadcastable to (N, H, L, S'), and the causal flag for the fused op. ``extra``
    keys (bias_k, the zero key) are appended after the S masked ones and always allowed."""
    if is_causal and key_padding_mask is None and extra == 0 and (
            attn_mask is None or not (need_weights or attn_mask.requires_grad)):
        return None, True  # as PyTorch, the hint replaces the mask (unless it needs a gradient)
    if is_causal and attn_mask is None:
        attn_mask = make_tensor(np.triu(np.ones(lengths, dtype=bool), 1))
    parts = []
    if attn_mask is not None:
        if attn_mask.ndim == 3:
            attn_mask = attn_mask.reshape(layout.n, layout.num_heads, *lengths)
        parts.append(attn_mask)
    if key_padding_mask is not None:
        parts.append(key_padding_mask.reshape(layout.n, 1, 1, lengths[1]))
    parts = [_allowing_extra_keys(_sdpa_convention(m, dtype), extra) for m in parts]
    if not parts:
        return None, False
    if len(parts) == 1:
        return parts[0], False
    a, b = parts
    if a.dtype == _dt.bool and b.dtype == _dt.bool:
        return make_tensor(np.logical_and(a._data, b._data)), False
    return _additive(a, dtype) + _additive(b, dtype), False


def _sdpa_convention(mask, dtype):
    """A bool mask flipped to True = take part; a float mask in the query's dtype."""
    if mask.dtype == _dt.bool:
        return make_tensor(np.logical_not(mask._data))
    return mask if mask.dtype == dtype else mask.to(dtype)


def _additive(mask, dtype):
    """A mask as scores to add: a bool mask (True = take part) becomes 0 or -inf."""
    if mask.dtype != _dt.bool:
        return mask
    return make_tensor(np.where(mask._data, 0.0, -np.inf).astype(_dt.as_numpy_dtype(dtype)))


def _allowing_extra_keys(mask, extra):
    """Extend the mask's key dim by ``extra`` columns that every query may attend (the keys
    added by add_bias_kv and add_zero_attn)."""
    if extra == 0:
        return mask
    shape = mask.shape[:-1] + (extra,)
    if mask.dtype == _dt.bool:
        return make_tensor(np.concatenate([mask._data, np.ones(shape, dtype=bool)], axis=-1))
    return cat([mask, _zeros(shape, mask.dtype)], dim=-1)


# ---------------------------------------------------------------------------- attention

def _attend(q, k, v, mask, causal, dropout_p, need_weights):
    """(attention output (N, H, L, d), weights (N, H, L, S) or None)."""
    if not need_weights:
        return scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                            is_causal=causal), None
    dtype = q.dtype
    if q._data.dtype not in _NATIVE:  # NOTE: as scaled_dot_product_attention, half
        q, k, v = (t.to(_dt.float32) for t in (q, k, v))  # precisions compute in float32
        if mask is not None and mask.dtype != _dt.bool:
            mask = mask.to(_dt.float32)
    out, weights = _attend_with_weights(q, k, v, mask, causal, dropout_p)
    return out.to(dtype), weights.to(dtype)


def _attend_with_weights(q, k, v, mask, causal, dropout_p):
    # NOTE: the weights come from the fused op itself (its second output), so that a fully
    # masked row has weights 0, not NaN, and a gradient reaching the weights is exact.
    scale = 1.0 / math.sqrt(q.shape[-1])
    if dropout_p == 0.0:
        return ScaledDotProductAttention.apply(q, k, v, mask, scale=scale, causal=causal)
    # PyTorch returns the weights after dropout and multiplies v by those same weights.
    _, weights = ScaledDotProductAttention.apply(q, k, v.detach(), mask, scale=scale,
                                                 causal=causal)
    weights = dropout(weights, dropout_p)
    return weights @ v, weights
