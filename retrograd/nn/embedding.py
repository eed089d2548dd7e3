"""Token embeddings and positional encodings: Embedding, SinusoidalPositionalEncoding,
LearnedPositionalEmbedding, RotaryEmbedding.

Learned versus fixed positions, seen through their gradients: a LearnedPositionalEmbedding
row t receives the sum over the batch of dL/dy at position t (and rows past the longest
sequence seen receive none), while the sinusoidal table and the rotary cos/sin tables are
constants (non-persistent buffers, no gradient, not in the state dict).
"""

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.grad_mode import no_grad
from retrograd.creation import cat, empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter
from retrograd.tensor import Tensor, make_tensor

__all__ = ["Embedding", "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding",
           "RotaryEmbedding"]


class Embedding(Module):
    """A lookup table: y = weight[input], one row of size embedding_dim per token id.

    Args:
        num_embeddings: size of the vocabulary V.
        embedding_dim: size D of each embedding vector.
        padding_idx: an id whose row is initialized to zeros and never receives a gradient
            (it stays fixed during training). Default: None.
        max_norm: if given, looked-up rows with a larger norm are renormalized in place to
            this norm before the lookup. norm_type: the p of that norm. Default: 2.
        scale_grad_by_freq: divide each row's gradient by its id's count in the batch.
        sparse: not supported (retrograd's weight gradient is dense).
        dtype: the weight's dtype. Default: the default float dtype (float32).

    Shape:
        - Input: (*), integer ids in [0, V).
        - Output: (*, D).

    Attributes:
        weight: (V, D), from N(0, 1), with the padding_idx row zeroed.

    Example:
        >>> import retrograd as rg
        >>> emb = rg.nn.Embedding(10, 3, padding_idx=0)
        >>> y = emb(rg.tensor([[1, 2, 0], [4, 4, 9]]))
        >>> y.shape
        (2, 3, 3)
        >>> y.sum().backward()
        >>> emb.weight.grad[0].tolist(), emb.weight.grad[4].tolist()
        ([0.0, 0.0, 0.0], [2.0, 2.0, 2.0])
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__()
        num_embeddings = _checks.positive_int("Embedding", "num_embeddings", num_embeddings)
        embedding_dim = _checks.positive_int("Embedding", "embedding_dim", embedding_dim)
        _checks.cpu_device("Embedding", device)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        if padding_idx is not None:
            padding_idx = _checks.index("Embedding", "padding_idx", padding_idx, num_embeddings)
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim,
                                          dtype=dtype or _dt.default_float),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight of shape {tuple(_weight.shape)} does not "
                                 f"match ({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding holding ``embeddings`` (a 2-D Tensor or array, shared, not copied;
        its padding row is kept as is, as in PyTorch); ``freeze`` turns its gradient off.

        Example:
            >>> import retrograd as rg
            >>> table = rg.tensor([[1.0, 2.0], [3.0, 4.0]])
            >>> emb = rg.nn.Embedding.from_pretrained(table)
            >>> emb(rg.tensor([1])), emb.weight.requires_grad
            (tensor([[3., 4.]]), False)
        """
        data = embeddings if isinstance(embeddings, Tensor) else make_tensor(np.asarray(embeddings))
        if data.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D "
                             f"(num_embeddings, embedding_dim), got shape {data.shape}")
        return cls(data.shape[0], data.shape[1], padding_idx=padding_idx, max_norm=max_norm,
                   norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse,
                   _weight=data, _freeze=freeze)

    def forward(self, input):  # noqa: A002 - PyTorch's argument name
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse, owner=self)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text


def sinusoidal_table(max_len, d_model, base=10000.0):
    """The (max_len, d_model) float64 table of "Attention is all you need":
    pe[t, 2i] = sin(t / base^(2i / d_model)),  pe[t, 2i + 1] = cos(t / base^(2i / d_model)).

    Example:
        >>> from retrograd.nn.embedding import sinusoidal_table
        >>> sinusoidal_table(2, 4).round(4).tolist()
        [[0.0, 1.0, 0.0, 1.0], [0.8415, 0.5403, 0.01, 1.0]]
    """
    position = np.arange(max_len, dtype=np.float64)[:, None]
    inv_freq = base ** (-np.arange(0, d_model, 2, dtype=np.float64) / d_model)
    angles = position * inv_freq                    # (max_len, ceil(d_model / 2))
    table = np.empty((max_len, d_model), dtype=np.float64)
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, :d_model // 2])  # an odd d_model has one sin more
    return table


def _table_dtype(dtype):
    """The NumPy dtype of a constant table: ``dtype``, or the default float dtype."""
    return _dt.as_numpy_dtype(dtype if dtype is not None else _dt.default_float)


def _positions_check(owner, length, offset, max_len):
    if offset < 0 or offset + length > max_len:
        raise ValueError(f"{owner}: positions {offset}..{offset + length - 1} (sequence length "
                         f"{length}, offset {offset}) exceed max_len {max_len}; build it with a "
                         f"larger max_len")


def _time_span(module, x, offset):
    """Check x against the module's layout and return (time_axis, T): x is (B, T, D) or
    (T, D) when batch_first, (T, B, D) or (T, D) otherwise."""
    name = type(module).__name__
    if not isinstance(x, Tensor) or x.ndim not in (2, 3) or x.shape[-1] != module.d_model:
        shape = x.shape if isinstance(x, Tensor) else type(x).__name__
        layout = "(batch, seq_len, d_model)" if module.batch_first else "(seq_len, batch, d_model)"
        raise ValueError(f"{name}: expected input of shape {layout} or (seq_len, d_model) with "
                         f"d_model = {module.d_model}, got {shape}")
    time_axis = 1 if (module.batch_first and x.ndim == 3) else 0
    _positions_check(name, x.shape[time_axis], offset, module.max_len)
    return time_axis, x.shape[time_axis]


def _add_rows(x, rows, time_axis):
    """x + rows, rows: (T, D) broadcast over the batch axis (a seq-first batch needs (T, 1, D))."""
    if time_axis == 0 and x.ndim == 3:
        rows = rows.unsqueeze(1)
    return x + rows


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed sin/cos position table of "Attention is all you need" to the input:
    y = dropout(x + pe[t]), pe[t, 2i] = sin(t / 10000^(2i/d_model)),
    pe[t, 2i+1] = cos(t / 10000^(2i/d_model)). No parameters: the gradient passes to x
    unchanged (dL/dx = dL/dy, times the dropout mask).

    Args:
        d_model: the feature size D.
        max_len: the longest sequence (plus offset) supported. Default: 5000.
        dropout: dropout probability applied after the addition. Default: 0.
        batch_first: input is (batch, seq, D) if True, (seq, batch, D) if False.
        dtype: the table's dtype. Default: the default float dtype (float32).

    Shape:
        - Input: (B, T, D) (batch_first), (T, B, D), or unbatched (T, D).
        - Output: the input's shape.

    Attributes:
        pe: (max_len, D) non-persistent buffer (not in the state dict), computed in float64
            and stored in ``dtype``; it is cast to the input's dtype when added (so a float64
            model needs dtype=float64 for a table exact to double precision).

    Example:
        >>> import retrograd as rg
        >>> pos = rg.nn.SinusoidalPositionalEncoding(d_model=4, max_len=16)
        >>> [round(v, 3) for v in pos(rg.zeros(2, 3, 4))[0, 1].tolist()]
        [0.841, 0.54, 0.01, 1.0]
        >>> list(pos.state_dict()), len(list(pos.parameters()))
        ([], 0)
    """

    def __init__(self, d_model, max_len=5000, dropout=0.0, batch_first=True, dtype=None):
        super().__init__()
        name = "SinusoidalPositionalEncoding"
        self.d_model = _checks.positive_int(name, "d_model", d_model)
        self.max_len = _checks.positive_int(name, "max_len", max_len)
        self.dropout = _checks.probability(name, "dropout probability", dropout)
        self.batch_first = batch_first
        table = sinusoidal_table(max_len, d_model).astype(_table_dtype(dtype))
        self.register_buffer("pe", make_tensor(table), persistent=False)

    def forward(self, x, offset=0):
        """x plus the encodings of positions offset .. offset + T - 1."""
        time_axis, length = _time_span(self, x, offset)
        y = _add_rows(x, self.pe[offset:offset + length].to(x.dtype), time_axis)
        return F.dropout(y, self.dropout, self.training, owner=self) if self.dropout > 0 else y

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}, dropout={self.dropout}"


class LearnedPositionalEmbedding(Module):
    """Adds a learned vector per position: y = x + weight[t]. Row t's gradient is the sum of
    dL/dy at position t over the batch: dL/dweight[t] = sum_b dL/dy[b, t] (rows t >= T get 0).

    Args:
        max_len: the number of positions (the longest sequence plus offset).
        d_model: the feature size D.
        batch_first: input is (batch, seq, D) if True, (seq, batch, D) if False.
        dtype: the weight's dtype. Default: the default float dtype.

    Shape:
        - Input: (B, T, D) (batch_first), (T, B, D), or unbatched (T, D), with T <= max_len.
        - Output: the input's shape.

    Attributes:
        weight: (max_len, D), from N(0, 0.02^2) (the GPT-2 / BERT choice: small next to the
            token embeddings, so positions start as a gentle perturbation).

    Example:
        >>> import retrograd as rg
        >>> pos = rg.nn.LearnedPositionalEmbedding(max_len=8, d_model=4)
        >>> pos(rg.zeros(5, 3, 4)).sum().backward()
        >>> pos.weight.grad[:, 0].tolist()   # 5 sequences, 3 positions used
        [5.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(self, max_len, d_model, batch_first=True, device=None, dtype=None):
        super().__init__()
        self.max_len = _checks.positive_int("LearnedPositionalEmbedding", "max_len", max_len)
        self.d_model = _checks.positive_int("LearnedPositionalEmbedding", "d_model", d_model)
        _checks.cpu_device("LearnedPositionalEmbedding", device)
        self.batch_first = batch_first
        self.weight = Parameter(empty(max_len, d_model, dtype=dtype or _dt.default_float))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight, std=0.02)

    def forward(self, x, offset=0):
        """x plus the learned vectors of positions offset .. offset + T - 1."""
        time_axis, length = _time_span(self, x, offset)
        return _add_rows(x, self.weight[offset:offset + length], time_axis)

    def extra_repr(self):
        return f"max_len={self.max_len}, d_model={self.d_model}"


class RotaryEmbedding(Module):
    """Rotary position embedding (RoPE, Su et al. 2021) for queries and keys, in the
    "rotate-half" layout of GPT-NeoX and LLaMA (Hugging Face): feature j is paired with
    feature j + head_dim/2 (not with its neighbour 2j+1 as in the paper and GPT-J), and the
    pair at position t is rotated by the angle t * theta_j, theta_j = base^(-2j/head_dim):

        y = x * cos(t theta) + rotate_half(x) * sin(t theta),
        rotate_half(x) = cat(-x[..., h:], x[..., :h]),   h = head_dim / 2,

    with cos and sin tables of shape (T, head_dim) (each angle repeated in both halves).
    A rotation preserves norms, and q_m . k_n depends only on m - n. The tables are
    constants, so the op is a few elementwise Tensor ops and any order of gradient works:
    dL/dx = dL/dy * cos - rotate_half(dL/dy * sin)   (the transposed rotation).

    Args:
        head_dim: the size of each head's vectors (even).
        max_len: the most positions (offset + T) supported. Default: 2048.
        base: the frequency base. Default: 10000.
        dtype: the dtype of the cos/sin tables (non-persistent buffers, computed in float64).
            Default: the default float dtype. They are cast to the input's dtype when used.

    Shape:
        - q, k: (*, T, head_dim); outputs have the same shapes.

    Example:
        >>> import retrograd as rg
        >>> rope = rg.nn.RotaryEmbedding(head_dim=8, max_len=32)
        >>> q, k = rg.randn(2, 4, 5, 8), rg.randn(2, 4, 5, 8)
        >>> q_rot, k_rot = rope(q, k)
        >>> q_rot.shape, bool(((q_rot * q_rot).sum(-1) - (q * q).sum(-1)).abs().max() < 1e-4)
        ((2, 4, 5, 8), True)
    """

    def __init__(self, head_dim, max_len=2048, base=10000.0, dtype=None):
        super().__init__()
        _checks.positive_int("RotaryEmbedding", "head_dim", head_dim)
        if head_dim % 2:
            raise ValueError(f"RotaryEmbedding: head_dim must be even (features are rotated in "
                             f"pairs), got {head_dim}")
        self.head_dim = head_dim
        self.max_len = _checks.positive_int("RotaryEmbedding", "max_len", max_len)
        self.base = float(base)
        inv_freq = self.base ** (-np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
        angles = np.arange(max_len, dtype=np.float64)[:, None] * inv_freq
        angles = np.concatenate([angles, angles], axis=1)        # (max_len, head_dim)
        dtype = _table_dtype(dtype)
        self.register_buffer("cos", make_tensor(np.cos(angles).astype(dtype)), persistent=False)
        self.register_buffer("sin", make_tensor(np.sin(angles).astype(dtype)), persistent=False)

    def forward(self, q, k=None, offset=0):
        """RoPE applied to q (and to k when given: returns (q_rot, k_rot)), the first of the
        T positions being ``offset`` (for decoding with a cache)."""
        if k is None:
            return self.rotate(q, offset)
        return self.rotate(q, offset), self.rotate(k, offset)

    def rotate(self, x, offset=0):
        """x * cos + rotate_half(x) * sin for positions offset .. offset + T - 1."""
        if not isinstance(x, Tensor) or x.ndim < 2 or x.shape[-1] != self.head_dim:
            shape = x.shape if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"RotaryEmbedding: expected input of shape (*, seq_len, "
                             f"{self.head_dim}), got {shape}")
        length = x.shape[-2]
        _positions_check("RotaryEmbedding", length, offset, self.max_len)
        cos = self.cos[offset:offset + length].to(x.dtype)
        sin = self.sin[offset:offset + length].to(x.dtype)
        return x * cos + rotate_half(x) * sin

    def extra_repr(self):
        return f"head_dim={self.head_dim}, max_len={self.max_len}, base={self.base:g}"


def rotate_half(x):
    """cat(-x2, x1) where x1, x2 are the first and second halves of the last dim.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.nn.embedding import rotate_half
        >>> rotate_half(rg.tensor([1.0, 2.0, 3.0, 4.0]))
        tensor([-3., -4.,  1.,  2.])
    """
    half = x.shape[-1] // 2
    return cat([-x[..., half:], x[..., :half]], dim=-1)

