"""Transformer layers: encoder and decoder layers, their stacks, and the full Transformer.

Each layer is attention and a feed-forward block, each wrapped in a residual path and a
LayerNorm. Post-norm (norm_first=False, the original Transformer):

    x = norm1(x + SA(x));        x = norm2(x + FF(x))
Pre-norm (norm_first=True):
    x = x + SA(norm1(x));        x = x + FF(norm2(x))

with FF(x) = linear2(dropout(activation(linear1(x)))). Backward through a residual path
x + f(x) adds the identity to f's Jacobian: dL/dx = dL/dy + (df/dx)^T dL/dy, so in the
pre-norm form the gradient reaches the first layer of a deep stack undiminished through the
chain of "+ x" (the norms sit off the main path), while in the post-norm form every
gradient passes through each layer's LayerNorm. This is why deep pre-norm stacks train
without warm-up and post-norm ones often need it.

Names, arguments and state-dict keys are PyTorch's (self_attn.in_proj_weight,
linear1.weight, norm1.weight, ...), so a PyTorch state dict loads one to one.
"""

import copy

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.attention import MultiheadAttention
from retrograd.nn.container import ModuleList
from retrograd.nn.dropout import Dropout
from retrograd.nn.linear import Linear
from retrograd.nn.module import Module
from retrograd.nn.normalization import LayerNorm
from retrograd.tensor import Tensor, make_tensor
from retrograd.utils.checkpoint import GradientCheckpointing

__all__ = ["TransformerEncoderLayer", "TransformerDecoderLayer", "TransformerEncoder",
           "TransformerDecoder", "Transformer", "generate_square_subsequent_mask"]


def generate_square_subsequent_mask(sz, device=None, dtype=None):
    """The causal float mask of size (sz, sz): 0 on and below the diagonal, -inf above it
    (position i may attend to positions 0..i).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.Transformer.generate_square_subsequent_mask(3)
        tensor([[  0., -inf, -inf],
                [  0.,   0., -inf],
                [  0.,   0.,   0.]])
    """
    sz = _checks.non_negative_int("generate_square_subsequent_mask", "sz", sz)
    _checks.cpu_device("generate_square_subsequent_mask", device)
    np_dtype = _dt.as_numpy_dtype(dtype or _dt.default_float)
    return make_tensor(np.triu(np.full((sz, sz), -np.inf), 1).astype(np_dtype))


def _activation(activation, owner):
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    if isinstance(activation, str) or not callable(activation):
        raise ValueError(f"{owner}: activation should be 'relu', 'gelu' or a callable, got "
                         f"{activation!r}")
    return activation


def _check_layer_sizes(owner, d_model, nhead, dim_feedforward, dropout):
    for name, size in (("d_model", d_model), ("nhead", nhead),
                       ("dim_feedforward", dim_feedforward)):
        _checks.positive_int(owner, name, size)
    if d_model % nhead:
        raise ValueError(f"{owner}: d_model must be divisible by nhead, got d_model={d_model} "
                         f"and nhead={nhead}")
    _checks.probability(owner, "dropout probability", dropout)


def _check_sequence(layer, label, x):
    d_model = layer.linear1.in_features
    if not isinstance(x, Tensor):
        raise TypeError(f"{type(layer).__name__}: {label} must be a Tensor, got "
                        f"{type(x).__name__}")
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        raise ValueError(f"{type(layer).__name__}: expected {label} of shape (L, N, {d_model}), "
                         f"(N, L, {d_model}) with batch_first, or (L, {d_model}) unbatched "
                         f"(d_model={d_model}), got {x.shape}")


def _check_same_batch(layer, tgt, memory):
    batch_first = layer.self_attn.batch_first
    batch_axis = 0 if batch_first else 1
    if tgt.ndim != memory.ndim or (tgt.ndim == 3
                                   and tgt.shape[batch_axis] != memory.shape[batch_axis]):
        raise ValueError(f"{type(layer).__name__}: tgt and memory must both be batched with the "
                         f"same batch size (dim {batch_axis}, batch_first={batch_first}) or both "
                         f"unbatched, got tgt {tgt.shape} and memory {memory.shape}")


class _FeedForwardLayer(Module):
    """What the encoder and decoder layers share: the feed-forward block and its norms."""

    def _build_feed_forward(self, d_model, dim_feedforward, dropout, activation,
                            layer_norm_eps, norm_first, bias, dtype, n_norms):
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = bool(norm_first)
        for i in range(1, n_norms + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias,
                                                dtype=dtype))
        for i in range(1, n_norms + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation = _activation(activation, type(self).__name__)

    def _ff_block(self, x, out_dropout):
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return out_dropout(x)


class TransformerEncoderLayer(_FeedForwardLayer):
    """Self-attention and a feed-forward block, each with a residual path and a LayerNorm.

    norm_first=False: x = norm1(x + SA(x)); x = norm2(x + FF(x)).
    norm_first=True:  x = x + SA(norm1(x)); x = x + FF(norm2(x)).
    SA(x) = dropout1(self_attn(x, x, x)), FF(x) = dropout2(linear2(dropout(act(linear1(x))))).

    Args:
        d_model: the feature size E. nhead: number of attention heads.
        dim_feedforward: hidden size of the feed-forward block. Default: 2048.
        dropout: dropout probability (attention weights and the three Dropouts).
            Default: 0.1.
        activation: 'relu', 'gelu' or a callable (a function or a Module). Default: 'relu'.
        layer_norm_eps: eps of the LayerNorms. Default: 1e-5.
        batch_first: (N, L, E) instead of (L, N, E). Default: False.
        norm_first: pre-norm instead of post-norm. Default: False.
        bias: biases in the Linears and LayerNorms. Default: True.
        device: None or "cpu". dtype: the parameters' dtype.

    forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False): masks as in
    MultiheadAttention (bool True = not allowed; float added).

    Shape:
        - src: (L, N, E), (N, L, E) with batch_first, or (L, E) unbatched.
        - src_mask: (L, L) or (N * nhead, L, L). src_key_padding_mask: (N, L) or (L,).
        - Output: src's shape.

    Attributes:
        self_attn (MultiheadAttention), linear1 (E -> dim_feedforward), linear2
        (dim_feedforward -> E), norm1, norm2 (LayerNorm(E)), dropout, dropout1, dropout2.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
        >>> layer(rg.randn(2, 5, 16)).shape
        (2, 5, 16)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        _check_layer_sizes(type(self).__name__, d_model, nhead, dim_feedforward, dropout)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, device=device, dtype=dtype)
        self._build_feed_forward(d_model, dim_feedforward, dropout, activation, layer_norm_eps,
                                 norm_first, bias, dtype, n_norms=2)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        _check_sequence(self, "src", src)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x, self.dropout2))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)


class TransformerDecoderLayer(_FeedForwardLayer):
    """Self-attention, cross-attention to the encoder's output (memory) and a feed-forward
    block, each with a residual path and a LayerNorm.

    norm_first=False: x = norm1(x + SA(x)); x = norm2(x + MHA(x, mem)); x = norm3(x + FF(x)).
    norm_first=True:  x = x + SA(norm1(x)); x = x + MHA(norm2(x), mem); x = x + FF(norm3(x)).

    Args: as TransformerEncoderLayer.

    forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False).

    Shape:
        - tgt: (T, N, E) or (N, T, E) with batch_first, or (T, E). memory: (S, N, E),
          (N, S, E) or (S, E).
        - tgt_mask: (T, T) or (N * nhead, T, T); memory_mask: (T, S) or (N * nhead, T, S).
        - tgt_key_padding_mask: (N, T); memory_key_padding_mask: (N, S).
        - Output: tgt's shape.

    Attributes:
        self_attn, multihead_attn (MultiheadAttention), linear1, linear2, norm1, norm2,
        norm3, dropout, dropout1, dropout2, dropout3.

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.TransformerDecoderLayer(16, 4, dim_feedforward=32)
        >>> tgt, memory = rg.randn(6, 2, 16), rg.randn(9, 2, 16)
        >>> mask = rg.nn.Transformer.generate_square_subsequent_mask(6)
        >>> layer(tgt, memory, tgt_mask=mask, tgt_is_causal=True).shape
        (6, 2, 16)
    """

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True,
                 device=None, dtype=None):
        super().__init__()
        _check_layer_sizes(type(self).__name__, d_model, nhead, dim_feedforward, dropout)
        for name in ("self_attn", "multihead_attn"):
            setattr(self, name, MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                   batch_first=batch_first, device=device,
                                                   dtype=dtype))
        self._build_feed_forward(d_model, dim_feedforward, dropout, activation, layer_norm_eps,
                                 norm_first, bias, dtype, n_norms=3)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        _check_sequence(self, "tgt", tgt)
        _check_sequence(self, "memory", memory)
        _check_same_batch(self, tgt, memory)
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                    memory_is_causal)
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                           memory_is_causal))
        return self.norm3(x + self._ff_block(x, self.dropout3))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, memory, memory, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, need_weights=False,
                                is_causal=is_causal)[0]
        return self.dropout2(x)


def _clones(layer, num_layers, owner):
    num_layers = _checks.non_negative_int(owner, "num_layers", num_layers)
    return ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])


def _detect_is_causal_mask(mask, is_causal, size):
    """PyTorch's rule: an explicit is_causal wins; with is_causal=None, a mask equal to the
    square subsequent mask (in its dtype) counts as causal, unless it requires grad (then it
    is used as a mask, so that it gets its gradient)."""
    if is_causal is not None:
        return bool(is_causal)
    if mask is None or mask.shape != (size, size) or mask.requires_grad:
        return False
    causal = generate_square_subsequent_mask(size, dtype=mask.dtype)
    return bool((mask == causal).all().item())


def _sequence_length(x, batch_first):
    return x.shape[1] if batch_first and x.ndim == 3 else x.shape[0]


class TransformerEncoder(GradientCheckpointing, Module):
    """A stack of num_layers deep copies of encoder_layer, then an optional final norm.

    Args:
        encoder_layer: a TransformerEncoderLayer (copied, not shared).
        num_layers: the number of layers.
        norm: a final normalization Module (e.g. LayerNorm(E), needed after pre-norm layers),
            or None.
        enable_nested_tensor, mask_check: accepted for PyTorch compatibility (no effect).

    forward(src, mask=None, src_key_padding_mask=None, is_causal=None): is_causal=None
    detects a causal mask (equal to generate_square_subsequent_mask(L)).

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.TransformerEncoderLayer(16, 4, 32, norm_first=True)
        >>> encoder = rg.nn.TransformerEncoder(layer, num_layers=2, norm=rg.nn.LayerNorm(16))
        >>> encoder(rg.randn(5, 2, 16)).shape
        (5, 2, 16)
        >>> encoder.layers[0].linear1.weight is encoder.layers[1].linear1.weight
        False
    """

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers, type(self).__name__)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        output = src
        if len(self.layers):
            batch_first = self.layers[0].self_attn.batch_first
            is_causal = _detect_is_causal_mask(mask, is_causal,
                                               _sequence_length(src, batch_first))
        output = self._run_blocks(self.layers, output, src_mask=mask,
                                  src_key_padding_mask=src_key_padding_mask,
                                  is_causal=is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(GradientCheckpointing, Module):
    """A stack of num_layers deep copies of decoder_layer, then an optional final norm.

    Args:
        decoder_layer: a TransformerDecoderLayer (copied, not shared).
        num_layers: the number of layers.
        norm: a final normalization Module, or None.

    forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False).

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.TransformerDecoderLayer(16, 4, 32, batch_first=True)
        >>> decoder = rg.nn.TransformerDecoder(layer, num_layers=2)
        >>> decoder(rg.randn(2, 6, 16), rg.randn(2, 9, 16)).shape
        (2, 6, 16)
    """

    def __init__(self, decoder_layer, num_layers, norm=None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers, type(self).__name__)
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        output = tgt
        if len(self.layers):
            batch_first = self.layers[0].self_attn.batch_first
            tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal,
                                                   _sequence_length(tgt, batch_first))
        output = self._run_blocks(
            self.layers, output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(Module):
    """An encoder-decoder Transformer (Vaswani et al., 2017): the encoder reads src into
    memory, the decoder reads tgt and attends to memory. Both stacks end with a LayerNorm.
    Every parameter with more than one dim is initialized with xavier_uniform_ (as PyTorch).

    Args:
        d_model: feature size E. Default: 512. nhead: heads. Default: 8.
        num_encoder_layers, num_decoder_layers: Default: 6 each.
        dim_feedforward: Default: 2048. dropout: Default: 0.1. activation: Default: 'relu'.
        custom_encoder, custom_decoder: Modules used instead of the default stacks.
        layer_norm_eps: Default: 1e-5. batch_first: Default: False. norm_first: Default: False.
        bias: Default: True. device: None or "cpu". dtype: the parameters' dtype.

    forward(src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
    src_key_padding_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
    src_is_causal=None, tgt_is_causal=None, memory_is_causal=False).

    Shape:
        - src: (S, N, E) or (N, S, E) with batch_first, or (S, E). tgt: (T, N, E), (N, T, E)
          or (T, E).
        - src_mask (S, S), tgt_mask (T, T), memory_mask (T, S), or with N * nhead in front.
        - src_key_padding_mask (N, S), tgt_key_padding_mask (N, T),
          memory_key_padding_mask (N, S).
        - Output: tgt's shape.

    Example:
        >>> import retrograd as rg
        >>> model = rg.nn.Transformer(d_model=16, nhead=4, num_encoder_layers=1,
        ...                           num_decoder_layers=1, dim_feedforward=32, dropout=0.0)
        >>> src, tgt = rg.randn(7, 2, 16), rg.randn(5, 2, 16)
        >>> mask = model.generate_square_subsequent_mask(5)
        >>> model(src, tgt, tgt_mask=mask).shape
        (5, 2, 16)
    """

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps=1e-5, batch_first=False, norm_first=False,
                 bias=True, device=None, dtype=None):
        super().__init__()
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                      batch_first, norm_first, bias, device, dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(*layer_args), num_encoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(*layer_args), num_decoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
        self._reset_parameters()
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    generate_square_subsequent_mask = staticmethod(generate_square_subsequent_mask)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        self._check_inputs(src, tgt)
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    def _check_inputs(self, src, tgt):
        for label, t in (("src", src), ("tgt", tgt)):
            if not isinstance(t, Tensor):
                raise TypeError(f"Transformer: {label} must be a Tensor, got "
                                f"{type(t).__name__}")
        if src.ndim != tgt.ndim or src.ndim not in (2, 3):
            raise ValueError(f"Transformer: expected src and tgt both 3-D (batched) or both 2-D "
                             f"(unbatched), got src {src.shape} and tgt {tgt.shape}")
        batch_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_axis] != tgt.shape[batch_axis]:
            raise ValueError(f"Transformer: the batch number of src and tgt must be equal (dim "
                             f"{batch_axis}, batch_first={self.batch_first}), got src "
                             f"{src.shape} and tgt {tgt.shape}")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(f"Transformer: the feature number of src and tgt must be equal to "
                             f"d_model={self.d_model}, got src {src.shape} and tgt {tgt.shape}")

    def _reset_parameters(self):
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)
