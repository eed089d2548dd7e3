"""A decoder-only Transformer language model (GPT), pre-norm, with causal self-attention
through the fused scaled-dot-product-attention op.

How the gradient flows. Each block is x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)), so dL/dx
reaches every block twice: straight through the residual sum (the identity, unchanged) and
through the block's branch. The loss gradient at the logits enters through the head; with
weight tying, the token-embedding table receives two gradients that are summed: the head's
(from every position's logits) and the lookup's (only the rows of the tokens seen).

Causality. Position t attends to positions 0..t only (``is_causal=True``), so logits at t do
not depend on tokens after t; ``tests/models/test_gpt.py`` checks it.
"""

import math

import numpy as np

import retrograd as rg
from retrograd import _checks
from retrograd import nn
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.utils.checkpoint import GradientCheckpointing

__all__ = ["GPT", "GPTConfig", "Block", "CausalSelfAttention", "MLP", "sample_next"]


class GPTConfig:
    """Hyperparameters of a GPT; ``as_dict()``/``GPTConfig(**d)`` round-trip a checkpoint.

    Args:
        vocab_size: number of token ids V.
        context: the longest sequence T the model reads (learned positions 0..T-1).
        n_layer, n_head, d_model: depth, heads and width (d_model divisible by n_head).
        dropout: dropout probability (embeddings, attention weights, residual branches).
        tie_weights: the output head shares the token-embedding table (no bias).
        qk_norm: QK-norm in every block's attention: a LayerNorm over the head dim (learnable
            weight and bias) on the queries and keys before the dot product (see
            CausalSelfAttention). Default: False (a checkpoint's config without it loads as
            False).

    Example:
        >>> config = GPTConfig(vocab_size=65, n_layer=2)
        >>> GPTConfig(**config.as_dict()).n_layer, config.d_model
        (2, 128)
    """

    def __init__(self, vocab_size, context=128, n_layer=4, n_head=4, d_model=128, dropout=0.0,
                 tie_weights=True, qk_norm=False):
        if d_model % n_head:
            raise ValueError(f"GPT: d_model ({d_model}) must be divisible by n_head ({n_head})")
        self.vocab_size, self.context = int(vocab_size), int(context)
        self.n_layer, self.n_head, self.d_model = int(n_layer), int(n_head), int(d_model)
        self.dropout, self.tie_weights = float(dropout), bool(tie_weights)
        self.qk_norm = bool(qk_norm)

    def as_dict(self):
        return dict(vars(self))

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"GPTConfig({fields})"


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees positions 0..t.

    q, k, v = split(x W_qkv^T + b_qkv), each (B, H, T, d) after the head split (d = D / H);
    y = merge_heads(softmax(q k^T / sqrt(d) + causal mask) v) W_proj^T + b_proj.

    With config.qk_norm (QK-norm, Dehghani et al. 2023, Wortsman et al. 2023), q and k are
    first normalized per head: q <- q_norm(q), k <- k_norm(k), each a LayerNorm(d) with a
    learnable weight and bias shared by the heads (state dict keys attn.q_norm.weight,
    attn.q_norm.bias, attn.k_norm.*; absent without qk_norm, so older checkpoints load).

    Shape: x (B, T, D) -> (B, T, D).

    Example:
        >>> import retrograd as rg
        >>> attn = CausalSelfAttention(GPTConfig(vocab_size=5, n_head=2, d_model=8))
        >>> attn(rg.randn(2, 3, 8)).shape
        (2, 3, 8)
    """

    def __init__(self, config):
        super().__init__()
        self.n_head, self.dropout = config.n_head, config.dropout
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.resid_dropout = nn.Dropout(config.dropout)
        head_dim = config.d_model // config.n_head
        self.q_norm = nn.LayerNorm(head_dim) if config.qk_norm else None
        self.k_norm = nn.LayerNorm(head_dim) if config.qk_norm else None

    def forward(self, x):
        batch, length, width = x.shape
        head_dim = width // self.n_head
        heads = self.qkv(x).reshape(batch, length, 3, self.n_head, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = heads.unbind(0)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        y = y.transpose(1, 2).reshape(batch, length, width)
        return self.resid_dropout(self.proj(y))


class MLP(nn.Module):
    """y = dropout(W_2 gelu(W_1 x + b_1) + b_2), hidden size 4 D. Shape: (B, T, D) -> (B, T, D).

    GELU in its tanh approximation, as in GPT-2 (and several times faster here than the
    exact erf form).

    Example:
        >>> import retrograd as rg
        >>> MLP(GPTConfig(vocab_size=5, n_head=2, d_model=8)).fc.weight.shape
        (32, 8)
    """

    def __init__(self, config):
        super().__init__()
        self.fc = nn.Linear(config.d_model, 4 * config.d_model)
        self.act = nn.GELU(approximate="tanh")
        self.proj = nn.Linear(4 * config.d_model, config.d_model)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """A pre-norm Transformer block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)).

    Example:
        >>> import retrograd as rg
        >>> Block(GPTConfig(vocab_size=5, n_head=2, d_model=8))(rg.randn(2, 3, 8)).shape
        (2, 3, 8)
    """

    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(GradientCheckpointing, nn.Module):
    """A character-level (or any-token) GPT: token embedding + learned positions, n_layer
    pre-norm blocks with causal self-attention, a final LayerNorm and a linear head.

    logits = head(ln_f(blocks(dropout(wte[idx] + wpe[0..T-1])))).

    Args:
        config: a GPTConfig (or keyword arguments of one).

    Shape:
        - Input: (B, T) int64 token ids, T <= config.context.
        - Output: (B, T, V) logits of the next token at every position.

    Attributes:
        wte: Embedding(V, D); wpe: LearnedPositionalEmbedding(T, D); blocks: ModuleList of
        Block; ln_f: LayerNorm(D); head: Linear(D, V, bias=False), whose weight is wte.weight
        when tie_weights. Init (GPT-2): every Linear and Embedding weight from N(0, 0.02^2),
        biases 0, the residual output projections (attn.proj, mlp.proj) from
        N(0, (0.02 / sqrt(2 n_layer))^2) so the residual stream's variance does not grow with
        depth; LayerNorms weight 1, bias 0.

    Example:
        >>> import retrograd as rg
        >>> model = GPT(vocab_size=11, context=8, n_layer=1, n_head=2, d_model=16)
        >>> model(rg.tensor([[1, 2, 3], [4, 5, 6]])).shape
        (2, 3, 11)
        >>> model.head.weight is model.wte.weight
        True
    """

    def __init__(self, config=None, **kwargs):
        super().__init__()
        config = config if config is not None else GPTConfig(**kwargs)
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.d_model)
        self.wpe = nn.LearnedPositionalEmbedding(config.context, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self._init_weights()
        if config.tie_weights:
            self.head.weight = self.wte.weight

    def _init_weights(self):
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                init.normal_(p, std=residual_std)
            elif p.ndim == 2:
                init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                init.zeros_(p)

    def forward(self, idx):
        _check_ids(idx, self.config)
        x = self.drop(self.wpe(self.wte(idx)))
        x = self._run_blocks(self.blocks, x)
        return self.head(self.ln_f(x))

    def generate(self, idx, length, temperature=1.0, top_k=None, generator=None):
        """Append ``length`` sampled tokens to each row of ``idx`` (B, T0); returns (B, T0 +
        length) int64. Each step reads the last ``context`` tokens (a sliding window once the
        sequence is longer than the context), so the prompt itself must fit in the context.

        Args:
            temperature: divides the logits (> 0; smaller is greedier).
            top_k: sample among the k most likely tokens only (None: all).
            generator: a numpy Generator; None uses retrograd's generator (so
                ``retrograd.manual_seed`` makes sampling reproducible).
        """
        ids = np.array(idx.numpy() if isinstance(idx, rg.Tensor) else idx, dtype=np.int64)
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise ValueError(f"GPT.generate: expected a (batch, length >= 1) prompt of ids, got "
                             f"shape {ids.shape}")
        if ids.shape[1] > self.config.context:
            raise ValueError(f"GPT.generate: the prompt has {ids.shape[1]} tokens, longer than "
                             f"the model's context of {self.config.context}")
        generator = generator if generator is not None else rg.random.generator()
        was_training = self.training
        self.eval()
        with rg.no_grad():
            for _ in range(length):
                window = rg.tensor(ids[:, -self.config.context:])
                logits = self(window)._data[:, -1, :]
                nxt = sample_next(logits, temperature, top_k, generator)
                ids = np.concatenate([ids, nxt[:, None]], axis=1)
        self.train(was_training)
        return rg.tensor(ids)


def sample_next(logits, temperature=1.0, top_k=None, generator=None):
    """One token id per row of ``logits`` (B, V), drawn from softmax(logits / temperature)
    restricted to the top_k largest logits. Ties at the k-th value are all kept.

    Example:
        >>> import numpy as np
        >>> logits = np.array([[0.0, 5.0, 1.0, -2.0]])
        >>> sample_next(logits, top_k=1, generator=np.random.default_rng(0)).tolist()
        [1]
    """
    logits = np.asarray(logits, dtype=np.float64)
    if not temperature > 0:
        raise ValueError(f"sample: temperature must be > 0, got {temperature}")
    top_k = _checks.positive_int("sample", "top_k", top_k, allow_none=True)
    scaled = logits / float(temperature)
    if top_k is not None and top_k < scaled.shape[-1]:
        kth = np.partition(scaled, -top_k, axis=-1)[:, -top_k][:, None]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    generator = generator if generator is not None else rg.random.generator()
    draws = generator.random((probs.shape[0], 1))
    # Inverse-CDF sampling, one uniform per row: the same draws give the same tokens.
    choice = (np.cumsum(probs, axis=-1) < draws).sum(axis=-1)
    return np.minimum(choice, probs.shape[-1] - 1).astype(np.int64)


def _check_ids(idx, config):
    if not isinstance(idx, rg.Tensor) or idx.ndim != 2 or idx.dtype not in (rg.int64, rg.int32):
        shape = idx.shape if isinstance(idx, rg.Tensor) else type(idx).__name__
        raise ValueError(f"GPT: expected a (batch, length) Tensor of integer token ids, got "
                         f"{shape}")
    if idx.shape[1] > config.context:
        raise ValueError(f"GPT: sequence length {idx.shape[1]} is longer than the context "
                         f"{config.context}")
