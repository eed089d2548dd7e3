"""Batching variable-length sequences, as ``torch.nn.utils.rnn``: pad_sequence.

The padded batch is built from differentiable ops (each sequence concatenated with a block
of padding, then all stacked), so the gradient of the batch flows back to every sequence:
dL/dsequence_i is the slice of dL/dpadded at sequence i's positions; the padding gets none.

Not provided: pack_padded_sequence, pad_packed_sequence, pack_sequence and PackedSequence.
retrograd's RNN, LSTM and GRU take padded tensors only; mask the padded steps (or gather
each sequence's last real step) instead of packing.
"""

from retrograd import _checks
from retrograd.creation import cat, full, stack
from retrograd.tensor import Tensor

__all__ = ["pad_sequence"]


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Pad a list of tensors of shapes (L_i, *) to the longest length L and stack them:
    (L, B, *), or (B, L, *) with batch_first.

    Args:
        sequences: a list (or any iterable) of tensors with equal trailing dims, or one tensor
            (its dim 0 lists the sequences). The result has the first sequence's dtype.
        batch_first: put the batch dim first. Default: False.
        padding_value: the value of the padded positions (cast to the dtype). Default: 0.0.
        padding_side: 'right' (pad after each sequence) or 'left'. Default: 'right'.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.nn.utils.rnn import pad_sequence
        >>> a, b = rg.tensor([1.0, 2.0, 3.0]), rg.tensor([4.0])
        >>> pad_sequence([a, b], batch_first=True)
        tensor([[1., 2., 3.],
                [4., 0., 0.]])
        >>> pad_sequence([a, b], batch_first=True, padding_value=-1.0, padding_side="left")
        tensor([[ 1.,  2.,  3.],
                [-1., -1.,  4.]])
    """
    _checks.one_of("pad_sequence", "padding_side", padding_side, ("left", "right"))
    seqs = _sequence_list(sequences)
    longest = max(s.shape[0] for s in seqs)
    dtype = seqs[0].dtype
    padded = [_padded(s if s.dtype == dtype else s.to(dtype), longest, padding_value,
                      padding_side) for s in seqs]
    return stack(padded, dim=0 if batch_first else 1)


def _sequence_list(sequences):
    """The sequences as a list of tensors of at least one dim and equal trailing dims."""
    if isinstance(sequences, Tensor):
        sequences = sequences.unbind(0) if sequences.ndim else [sequences]
    seqs = list(sequences)
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    for i, s in enumerate(seqs):
        if not isinstance(s, Tensor):
            raise TypeError(f"pad_sequence: sequence {i} must be a Tensor, got "
                            f"{type(s).__name__}")
        if s.ndim == 0:
            raise RuntimeError(f"pad_sequence: sequence {i} is 0-d; each sequence must have "
                               f"shape (L_i, *)")
    trailing = seqs[0].shape[1:]
    for i, s in enumerate(seqs):
        if s.shape[1:] != trailing:
            raise RuntimeError(f"pad_sequence: every sequence must have the trailing dims "
                               f"{trailing} of sequence 0 (shape {seqs[0].shape}), but "
                               f"sequence {i} has shape {s.shape}")
    return seqs


def _padded(seq, length, padding_value, side):
    """seq (L_i, *) extended to (length, *) with padding_value on ``side``."""
    missing = length - seq.shape[0]
    if missing == 0:
        return seq
    fill = full((missing,) + tuple(seq.shape[1:]), padding_value, dtype=seq.dtype)
    return cat([seq, fill] if side == "right" else [fill, seq], dim=0)
