"""MultiheadAttention: project, split into heads, attend with the fused op, merge, project.

How the gradient flows (one head h, one batch element, X the query input):

    Q_h = X W_q,h^T + b_q,h     K_h, V_h likewise from the key and value inputs
    O_h = softmax(Q_h K_h^T / sqrt(d) + M) V_h          (the fused op, retrograd.ops.attention)
    Y   = concat_h(O_h) W_o^T + b_o

dL/dO_h is the slice of dL/dY W_o for head h; the fused op turns it into dL/dQ_h, dL/dK_h,
dL/dV_h; each projection's Linear turns those into its weight gradient and adds its share to
dL/dX (three shares for self-attention, where X is query, key and value at once).

Masks follow PyTorch's MultiheadAttention convention, the opposite of
scaled_dot_product_attention's: a bool True means "do not attend", a float is added to the
scores. Both masks are merged into one mask for the fused op. A query whose every key is
masked gets an attention output of 0 and zero gradients, with or without need_weights (PyTorch
gives NaN with need_weights=True).
"""

import math
import numbers

import numpy as np

from retrograd import dtypes as _dt
from retrograd.creation import cat, empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.linear import Linear
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter
from retrograd.ops.attention import ScaledDotProductAttention
from retrograd.tensor import Tensor, make_tensor

__all__ = ["MultiheadAttention"]

_NAME = "MultiheadAttention"
_NATIVE = (np.dtype(np.float32), np.dtype(np.float64))


class MultiheadAttention(Module):
    """Multi-head attention: y = concat(head_1, ..., head_h) W_o^T + b_o, with
    head_i = softmax(q W_q,i^T (k W_k,i^T)^T / sqrt(d) + mask) v W_v,i^T, d = embed_dim / h.

    Args:
        embed_dim: total dimension E of the model (split across the heads).
        num_heads: number of heads H; E must be divisible by H.
        dropout: dropout probability on the attention weights (training only). Default: 0.0.
        bias: add biases to the input and output projections. Default: True.
        add_bias_kv: add a learned key and value (bias_k, bias_v) at the end of the key and
            value sequences. Default: False.
        add_zero_attn: add a key and value of zeros at the end of the sequences (after the
            heads are split). Default: False.
        kdim, vdim: feature sizes of key and value. Default: embed_dim.
        batch_first: inputs and outputs are (N, L, E) instead of (L, N, E). Default: False.
        device: None or "cpu". dtype: the parameters' dtype.

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) returns (attn_output, attn_weights), the
    weights None unless need_weights. Masks: bool (True = not allowed to attend) or float
    (added to the scores); key_padding_mask and attn_mask are merged. is_causal=True with an
    attn_mask is a hint that the mask is causal (as in PyTorch; a float mask that requires grad
    is still used, so that it gets its gradient); without an attn_mask it applies the causal
    mask (PyTorch raises an error there). Returned weights are taken after dropout,
    as in PyTorch.

    Shape:
        - query: (L, N, E), or (N, L, E) with batch_first, or (L, E) unbatched.
        - key: (S, N, kdim), (N, S, kdim) or (S, kdim). value: the same with vdim.
        - key_padding_mask: (N, S) or (S,) unbatched.
        - attn_mask: (L, S), or (N * num_heads, L, S) ((num_heads, L, S) unbatched).
        - attn_output: the query's shape. attn_weights: (N, L, S) averaged over the heads,
          or (N, num_heads, L, S); without the N for unbatched inputs. With add_bias_kv and
          add_zero_attn, S counts the added keys.

    Attributes:
        in_proj_weight: (3E, E), xavier_uniform_ (when kdim == vdim == E); otherwise
            q_proj_weight (E, E), k_proj_weight (E, kdim), v_proj_weight (E, vdim), each
            xavier_uniform_. in_proj_bias: (3E,), zeros. out_proj: Linear(E, E) with a zero
            bias. bias_k, bias_v: (1, 1, E), xavier_normal_ (add_bias_kv only).

    Example:
        >>> import retrograd as rg
        >>> mha = rg.nn.MultiheadAttention(16, 4, batch_first=True)
        >>> x = rg.randn(2, 5, 16)
        >>> out, weights = mha(x, x, x)
        >>> out.shape, weights.shape
        ((2, 5, 16), (2, 5, 5))
        >>> bool(abs(weights.sum(-1) - 1).max() < 1e-6)
        True
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        _check_sizes(embed_dim, num_heads, kdim, vdim)
        if not isinstance(dropout, numbers.Real) or isinstance(dropout, bool) \
                or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{_NAME}: dropout probability has to be between 0 and 1, but got "
                             f"{dropout!r}")
        if device not in (None, "cpu"):
            raise RuntimeError(f"{_NAME}: retrograd runs on the CPU only, got device {device!r}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), bool(batch_first)
        self.add_zero_attn = bool(add_zero_attn)
        dtype = dtype or _dt.default_float
        self._make_parameters(bias, add_bias_kv, dtype)
        self._reset_parameters()

    def _make_parameters(self, bias, add_bias_kv, dtype):
        """The parameters, registered in PyTorch's order (state dict keys map one to one)."""
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * e, e, dtype=dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(empty(e, e, dtype=dtype))
            self.k_proj_weight = Parameter(empty(e, self.kdim, dtype=dtype))
            self.v_proj_weight = Parameter(empty(e, self.vdim, dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * e, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(e, e, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(empty(1, 1, e, dtype=dtype))
            self.bias_v = Parameter(empty(1, 1, e, dtype=dtype))
        else:
            self.bias_k = self.bias_v = None

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        batched = _check_inputs(self, query, key, value)
        batch_axis = 0 if self.batch_first else 1
        if not batched:
            query, key, value = (t.unsqueeze(batch_axis) for t in (query, key, value))
        n = query.shape[batch_axis]
        lengths = (query.shape[1 - batch_axis], key.shape[1 - batch_axis])
        key_padding_mask = _check_padding_mask(key_padding_mask, n, lengths[1], batched)
        attn_mask = _check_attn_mask(attn_mask, n * self.num_heads, lengths, batched)
        q, k, v = self._heads(query, key, value)
        mask, causal = _merged_mask(self, attn_mask, key_padding_mask, is_causal, need_weights,
                                    n, lengths, q.dtype)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = _attend(q, k, v, mask, causal, dropout_p, need_weights)
        out = self.out_proj(_merge_heads(out, self.batch_first))
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out = out.squeeze(batch_axis)
            weights = weights.squeeze(0) if weights is not None else None
        return out, weights

    def _heads(self, query, key, value):
        """The projections split into heads: q (N, H, L, d), k and v (N, H, S', d), with S'
        counting bias_k / bias_v and the zero key when those options are on."""
        q, k, v = self._project(query, key, value)
        if self.bias_k is not None:
            k, v = (_append_along_sequence(t, extra, self.batch_first)
                    for t, extra in ((k, self.bias_k), (v, self.bias_v)))
        q, k, v = (_split_heads(t, self.num_heads, self.batch_first) for t in (q, k, v))
        if self.add_zero_attn:
            k, v = (cat([t, _zeros(t.shape[:2] + (1,) + t.shape[3:], t.dtype)], dim=2)
                    for t in (k, v))
        return q, k, v

    def _project(self, query, key, value):
        """q = query W_q^T + b_q, k and v likewise, in the input's layout. Three Linears,
        not one packed (3E, E) product: the backward of the packed form would scatter three
        slices of a (.., 3E) gradient into three full-size zero arrays, while slicing the
        weight costs a (3E, E) scatter only."""
        e = self.embed_dim
        thirds = (slice(0, e), slice(e, 2 * e), slice(2 * e, 3 * e))
        if self._qkv_same_embed_dim:
            weights = [self.in_proj_weight[part] for part in thirds]
        else:
            weights = [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]
        biases = [None] * 3
        if self.in_proj_bias is not None:
            biases = [self.in_proj_bias[part] for part in thirds]
        return tuple(F.linear(x, weights[i], biases[i]) for i, x in enumerate((query, key, value)))

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


# ---------------------------------------------------------------------------- checks

def _check_sizes(embed_dim, num_heads, kdim, vdim):
    for name, size in (("embed_dim", embed_dim), ("num_heads", num_heads), ("kdim", kdim),
                       ("vdim", vdim)):
        if size is None and name in ("kdim", "vdim"):
            continue
        if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"{_NAME}: {name} must be a positive int, got {size!r}")
    if embed_dim % num_heads:
        raise ValueError(f"{_NAME}: embed_dim must be divisible by num_heads, got embed_dim="
                         f"{embed_dim} and num_heads={num_heads}")


def _check_inputs(mha, query, key, value):
    """Check dims, feature sizes, batch sizes and dtypes; return whether the input is batched."""
    for label, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{_NAME}: {label} must be a Tensor, got {type(t).__name__}")
    shapes = f"query {query.shape}, key {key.shape}, value {value.shape}"
    if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(f"{_NAME}: expected query, key and value all 3-D (batched) or all 2-D "
                         f"(unbatched), got {shapes}")
    for label, t, size in (("query", query, mha.embed_dim), ("key", key, mha.kdim),
                           ("value", value, mha.vdim)):
        if t.shape[-1] != size:
            what = "embed_dim" if label == "query" else label[0] + "dim"
            raise ValueError(f"{_NAME}: expected {label} with last dim {what}={size}, got "
                             f"{shapes}")
    batched = query.ndim == 3
    batch_axis, seq_axis = (0, 1) if mha.batch_first else (1, 0)
    if batched and not query.shape[batch_axis] == key.shape[batch_axis] \
            == value.shape[batch_axis]:
        layout = "(N, L, E)" if mha.batch_first else "(L, N, E)"
        raise ValueError(f"{_NAME}: query, key and value must have the same batch size N "
                         f"(layout {layout}, batch_first={mha.batch_first}), got {shapes}")
    seq_axis = seq_axis if batched else 0
    if key.shape[seq_axis] != value.shape[seq_axis]:
        raise ValueError(f"{_NAME}: key and value must have the same sequence length S, got "
                         f"{shapes}")
    weight = mha.in_proj_weight if mha._qkv_same_embed_dim else mha.q_proj_weight
    if not query.dtype == key.dtype == value.dtype == weight.dtype:
        raise TypeError(f"{_NAME}: expected query, key and value of the parameters' dtype "
                        f"{weight.dtype}, got {query.dtype}, {key.dtype}, {value.dtype} "
                        f"({shapes})")
    return batched


def _check_mask_dtype(mask, label):
    if not isinstance(mask, Tensor):
        raise TypeError(f"{_NAME}: {label} must be a Tensor or None, got {type(mask).__name__}")
    if mask.dtype != _dt.bool and not _dt.is_floating(mask._data.dtype):
        raise TypeError(f"{_NAME}: only bool and floating-point {label} are supported (bool: "
                        f"True = not allowed to attend; float: added to the scores), got dtype "
                        f"{mask.dtype} (shape {mask.shape})")


def _check_padding_mask(mask, n, source_len, batched):
    """key_padding_mask as (N, S) (an unbatched (S,) mask gets N = 1)."""
    if mask is None:
        return None
    _check_mask_dtype(mask, "key_padding_mask")
    expected = (n, source_len) if batched else (source_len,)
    if mask.shape != expected:
        raise ValueError(f"{_NAME}: expected key_padding_mask of shape {expected} (N, S), got "
                         f"{mask.shape}" if batched else
                         f"{_NAME}: expected key_padding_mask of shape {expected} (S,) for "
                         f"unbatched inputs, got {mask.shape}")
    return mask if batched else mask.unsqueeze(0)


def _check_attn_mask(mask, batch_heads, lengths, batched):
    """attn_mask as (L, S) or (N * num_heads, L, S)."""
    if mask is None:
        return None
    _check_mask_dtype(mask, "attn_mask")
    two_d = lengths
    three_d = (batch_heads,) + lengths
    if mask.shape not in (two_d, three_d):
        lead = "N * num_heads" if batched else "num_heads"
        raise ValueError(f"{_NAME}: expected attn_mask of shape (L, S) = {two_d} or "
                         f"({lead}, L, S) = {three_d}, got {mask.shape}")
    return mask


# ---------------------------------------------------------------------------- masks

def _merged_mask(mha, attn_mask, key_padding_mask, is_causal, need_weights, n, lengths, dtype):
    """One mask in scaled_dot_product_attention's convention (bool True = take part, float =
    added), broadcastable to (N, H, L, S'), and the causal flag for the fused op."""
    if is_causal and key_padding_mask is None and mha.bias_k is None \
            and not mha.add_zero_attn and (attn_mask is None or not (
                need_weights or attn_mask.requires_grad)):
        return None, True  # as PyTorch, the hint replaces the mask (unless it needs a gradient)
    if is_causal and attn_mask is None:
        target, source = lengths
        attn_mask = make_tensor(np.triu(np.ones((target, source), dtype=bool), 1))
    parts = []
    if attn_mask is not None:
        if attn_mask.ndim == 3:
            attn_mask = attn_mask.reshape(n, mha.num_heads, *lengths)
        parts.append(attn_mask)
    if key_padding_mask is not None:
        parts.append(key_padding_mask.reshape(n, 1, 1, lengths[1]))
    extra = (mha.bias_k is not None) + mha.add_zero_attn
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


# ---------------------------------------------------------------------------- heads

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


def _attend(q, k, v, mask, causal, dropout_p, need_weights):
    """(attention output (N, H, L, d), weights (N, H, L, S) or None)."""
    if not need_weights:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                              is_causal=causal), None
    dtype = q.dtype
    if q._data.dtype not in _NATIVE:  # NOTE: as F.scaled_dot_product_attention, half
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
    weights = F.dropout(weights, dropout_p)
    return weights @ v, weights
