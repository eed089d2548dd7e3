"""An encoder-decoder Transformer for sequence-to-sequence tasks (retrograd's nn.Transformer
with token embeddings, sinusoidal positions and a linear output layer).

Training uses teacher forcing: the decoder reads the target shifted right (<bos> y_1 ..
y_{T-1}) under a causal mask and predicts y_1 .. y_T at once, so one forward and one backward
cover every position. Inference decodes greedily, one token at a time, feeding back its own
predictions.

How the gradient flows. The loss at decoder position t flows into the decoder's self-attention
(to positions <= t only, because of the causal mask) and through cross-attention into the
memory, i.e. into the encoder's output at every non-padded source position; so the encoder is
trained only through the cross-attention of the decoder. The shared embedding table receives
the sum of both paths' gradients (the <pad> row none: it is the padding_idx).
"""

import math

import numpy as np

import retrograd as rg
from retrograd import nn
from retrograd.nn import init

__all__ = ["Seq2SeqTransformer"]


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer over one shared vocabulary.

    src_x = pe(embed(src) * sqrt(D)),  tgt_x = pe(embed(tgt_in) * sqrt(D)),
    logits = generator(transformer(src_x, tgt_x, causal target mask, source padding masks)).

    Args:
        vocab_size: number of token ids V (source and target share them).
        d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout:
            as nn.Transformer. norm_first: pre-norm layers (default True: trains stably
            without a learning-rate search).
        max_len: the longest sequence (positions of the sinusoidal table).
        pad_idx: the padding id: its embedding row is zero and gets no gradient, and padded
            source positions are masked out of attention.

    Shape:
        - src: (N, S) int64; tgt_in: (N, T) int64.
        - Output: (N, T, V) logits.

    Attributes:
        embed: Embedding(V, D, padding_idx), weight from N(0, D^-1) (so embed * sqrt(D) has
        unit variance). pos: SinusoidalPositionalEncoding(D, max_len) (no parameters).
        transformer: nn.Transformer(batch_first=True) (xavier-uniform matrices).
        generator: Linear(D, V).

    Example:
        >>> import retrograd as rg
        >>> model = Seq2SeqTransformer(vocab_size=14, d_model=16, nhead=2, num_encoder_layers=1,
        ...                            num_decoder_layers=1, dim_feedforward=32)
        >>> model(rg.tensor([[4, 5, 6, 0]]), rg.tensor([[1, 6, 5]])).shape
        (1, 3, 14)
    """

    def __init__(self, vocab_size, d_model=128, nhead=4, num_encoder_layers=2,
                 num_decoder_layers=2, dim_feedforward=256, dropout=0.1, max_len=64, pad_idx=0,
                 norm_first=True):
        super().__init__()
        self.vocab_size, self.d_model, self.pad_idx = vocab_size, d_model, pad_idx
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_idx)
        init.normal_(self.embed.weight, std=d_model ** -0.5)
        with rg.no_grad():
            self.embed.weight[pad_idx] = 0.0
        self.pos = nn.SinusoidalPositionalEncoding(d_model, max_len=max_len, batch_first=True)
        self.transformer = nn.Transformer(d_model, nhead, num_encoder_layers, num_decoder_layers,
                                          dim_feedforward, dropout, batch_first=True,
                                          norm_first=norm_first)
        self.generator = nn.Linear(d_model, vocab_size)

    def _embed(self, ids):
        return self.pos(self.embed(ids) * math.sqrt(self.d_model))

    def encode(self, src):
        """The memory (N, S, D) of the source ids (N, S)."""
        _check_ids(src, "src")
        return self.transformer.encoder(self._embed(src), src_key_padding_mask=src == self.pad_idx)

    def decode(self, tgt_in, memory, src):
        """Logits (N, T, V) for the decoder input ids (N, T) given the memory of src."""
        _check_ids(tgt_in, "tgt_in")
        length = tgt_in.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(length, dtype=memory.dtype)
        out = self.transformer.decoder(self._embed(tgt_in), memory, tgt_mask=mask,
                                       tgt_is_causal=True,
                                       memory_key_padding_mask=src == self.pad_idx)
        return self.generator(out)

    def forward(self, src, tgt_in):
        return self.decode(tgt_in, self.encode(src), src)

    def greedy_decode(self, src, max_len, bos, eos):
        """(N, max_len) int64 ids decoded greedily after <bos>; rows that produced <eos> keep
        producing <eos> (so decode() of a row stops there). Stops early when every row has.

        Example:
            >>> import retrograd as rg
            >>> model = Seq2SeqTransformer(14, d_model=16, nhead=2, num_encoder_layers=1,
            ...                            num_decoder_layers=1, dim_feedforward=32)
            >>> model.greedy_decode(rg.tensor([[4, 5, 6]]), max_len=5, bos=1, eos=2).shape
            (1, 5)
        """
        was_training = self.training
        self.eval()
        n = src.shape[0]
        ys = np.full((n, 1), bos, dtype=np.int64)
        done = np.zeros(n, dtype=bool)
        with rg.no_grad():
            memory = self.encode(src)
            for _ in range(max_len):
                logits = self.decode(rg.tensor(ys), memory, src)
                nxt = np.where(done, eos, logits._data[:, -1].argmax(-1))
                ys = np.concatenate([ys, nxt[:, None]], axis=1)
                done |= nxt == eos
                if done.all():
                    break
        self.train(was_training)
        out = np.full((n, max_len), eos, dtype=np.int64)
        out[:, :ys.shape[1] - 1] = ys[:, 1:]
        return rg.tensor(out)


def _check_ids(ids, label):
    if not isinstance(ids, rg.Tensor) or ids.ndim != 2 or ids.dtype not in (rg.int64, rg.int32):
        shape = ids.shape if isinstance(ids, rg.Tensor) else type(ids).__name__
        raise ValueError(f"Seq2SeqTransformer: expected {label} as a (batch, length) Tensor of "
                         f"integer ids, got {shape}")
