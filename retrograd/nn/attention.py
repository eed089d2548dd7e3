"""MultiheadAttention: a thin Module over ``nn.functional.multi_head_attention_forward``
(project, split into heads, attend with the fused op, merge, project; the gradient flow and
the mask conventions are in that function's module docstring)."""

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.creation import empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.linear import Linear
from retrograd.nn.module import Module
from retrograd.nn.normalization import LayerNorm
from retrograd.nn.parameter import Parameter

__all__ = ["MultiheadAttention"]


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
        qk_norm: retrograd's extension (PyTorch has no such option): QK-norm (Dehghani et al.
            2023, Wortsman et al. 2023), a LayerNorm over the head dim d = E / H, with a
            learnable elementwise weight and bias shared by the heads, applied to every head's
            query and key after the projection and before the dot product:
            head_i = softmax(LN_q(q W_q,i^T) LN_k(k W_k,i^T)^T / sqrt(d) + mask) v W_v,i^T.
            It bounds the attention logits, which keeps the softmax from saturating in
            training at large learning rates. Default: False (no extra parameters, so state
            dicts stay PyTorch's).

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
            q_norm, k_norm: LayerNorm(d) (weight 1, bias 0; state dict keys q_norm.weight,
            q_norm.bias, k_norm.weight, k_norm.bias), or None without qk_norm.

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
                 dtype=None, qk_norm=False):
        super().__init__()
        name = type(self).__name__
        for label, size in (("embed_dim", embed_dim), ("num_heads", num_heads), ("kdim", kdim),
                            ("vdim", vdim)):
            _checks.positive_int(name, label, size, allow_none=label in ("kdim", "vdim"))
        if embed_dim % num_heads:
            raise ValueError(f"{name}: embed_dim must be divisible by num_heads, got embed_dim="
                             f"{embed_dim} and num_heads={num_heads}")
        dropout = _checks.probability(name, "dropout probability", dropout)
        _checks.cpu_device(name, device)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = dropout, bool(batch_first)
        self.add_zero_attn = bool(add_zero_attn)
        dtype = dtype or _dt.default_float
        self._make_parameters(bias, add_bias_kv, dtype)
        self._reset_parameters()
        self.qk_norm = bool(qk_norm)
        # Registered last, so that the state dict starts with PyTorch's keys in its order.
        self.q_norm = LayerNorm(self.head_dim, dtype=dtype) if self.qk_norm else None
        self.k_norm = LayerNorm(self.head_dim, dtype=dtype) if self.qk_norm else None

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
        separate = not self._qkv_same_embed_dim
        return F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=separate, q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal,
            batch_first=self.batch_first, owner=self, **self._qk_norm_arguments())

    def _qk_norm_arguments(self):
        if not self.qk_norm:
            return {}
        return dict(qk_norm=True, q_norm_weight=self.q_norm.weight, q_norm_bias=self.q_norm.bias,
                    k_norm_weight=self.k_norm.weight, k_norm_bias=self.k_norm.bias,
                    qk_norm_eps=self.q_norm.eps)

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}"
                + (", qk_norm=True" if self.qk_norm else ""))
