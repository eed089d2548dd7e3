"""Character-level text for language models: a tokenizer and next-character data sets.

The tokenizer maps each distinct character of a text to an id (the characters sorted by code
point, so the same text always gives the same ids). ``load_text_splits`` reads a text file,
builds the tokenizer from the whole text and cuts the ids into a training part (the first
90%) and a validation part (the last 10%), as in char-rnn and nanoGPT: a contiguous split, so
no validation window overlaps a training window.

A ``CharDataset`` over ids of length N with context T has N - T samples: sample i is the
window ``x = ids[i : i + T]`` and its targets, the same window shifted by one character,
``y = ids[i + 1 : i + T + 1]``. ``get_batch`` takes a whole batch with one fancy index, so a
``DataLoader`` batches it fast and resumes it bit for bit.
"""

import os

import numpy as np

from retrograd import _checks
from retrograd.tensor import make_tensor
from retrograd.utils.data import Dataset

__all__ = ["CharTokenizer", "CharDataset", "load_text", "load_text_splits"]


class CharTokenizer:
    """Maps characters to ids 0..V-1 and back; V is the number of distinct characters.

    Args:
        chars: the vocabulary, a string of distinct characters in id order.

    Example:
        >>> tok = CharTokenizer.from_text("hello world")
        >>> tok.chars, tok.vocab_size
        (' dehlorw', 8)
        >>> tok.encode("hold").tolist()
        [3, 5, 4, 1]
        >>> tok.decode(tok.encode("hold"))
        'hold'
    """

    def __init__(self, chars):
        if not isinstance(chars, str) or not chars:
            raise ValueError(f"CharTokenizer: chars must be a non-empty string, got {chars!r}")
        if len(set(chars)) != len(chars):
            raise ValueError("CharTokenizer: chars must not repeat a character")
        self.chars = chars
        # Code point -> id lookup table: encodes a whole text with one fancy index.
        codes = np.frombuffer(chars.encode("utf-32-le"), dtype=np.uint32)
        self._table = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
        self._table[codes] = np.arange(len(chars))

    @classmethod
    def from_text(cls, text):
        """The tokenizer of the distinct characters of ``text``, sorted by code point."""
        if not text:
            raise ValueError("CharTokenizer.from_text: the text is empty")
        return cls("".join(sorted(set(text))))

    @property
    def vocab_size(self):
        return len(self.chars)

    def encode(self, text):
        """The int64 ids of the characters of ``text``; an unknown character is an error."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        inside = codes < len(self._table)
        ids = np.full(len(codes), -1, dtype=np.int64)
        ids[inside] = self._table[codes[inside]]
        if (ids < 0).any():
            unknown = sorted({text[i] for i in np.flatnonzero(ids < 0)})
            raise ValueError(f"CharTokenizer: characters {''.join(unknown)!r} are not in the "
                             f"vocabulary of {self.vocab_size} characters {self.chars!r}")
        return ids

    def decode(self, ids):
        """The string of a sequence of ids (ints, a list, an array or a 1-D Tensor)."""
        ids = np.asarray(ids.numpy() if hasattr(ids, "numpy") else ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"CharTokenizer: ids must be in [0, {self.vocab_size}), got values "
                             f"from {ids.min()} to {ids.max()}")
        return "".join(self.chars[i] for i in ids.tolist())

    def __repr__(self):
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class CharDataset(Dataset):
    """Next-character windows over a sequence of ids: sample i is (ids[i:i+T], ids[i+1:i+T+1]).

    Args:
        ids: 1-D integer array of token ids.
        context: the window length T.
        stride: distance between the starts of consecutive windows. Default: 1 (every
            window); ``stride=context`` gives non-overlapping windows (used for evaluation).

    Shape:
        - A sample: (x, y), each (T,) int64. A batch from ``get_batch``: (B, T) each.

    Example:
        >>> import numpy as np
        >>> ds = CharDataset(np.arange(6), context=3)
        >>> len(ds)
        3
        >>> [t.tolist() for t in ds[1]]
        [[1, 2, 3], [2, 3, 4]]
    """

    def __init__(self, ids, context, stride=1):
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"CharDataset: ids must be a 1-D integer array, got shape "
                             f"{ids.shape} and dtype {ids.dtype}")
        context = _checks.positive_int("CharDataset", "context", context)
        if len(ids) <= context:
            raise ValueError(f"CharDataset: {len(ids)} ids are too few for windows of "
                             f"{context} + 1 characters")
        self.ids, self.context, self.stride = ids.astype(np.int64, copy=False), context, stride
        self._count = (len(ids) - context - 1) // stride + 1
        self._offsets = np.arange(context + 1)

    def __len__(self):
        return self._count

    def __getitem__(self, index):
        if not -self._count <= index < self._count:
            raise IndexError(f"CharDataset: index {index} out of range for {self._count} windows")
        x, y = self.get_batch(np.array([index % self._count]))
        return x[0], y[0]

    def get_batch(self, indices):
        """(x, y) int64 Tensors of shape (len(indices), T), in one fancy index."""
        starts = np.asarray(indices, dtype=np.int64) * self.stride
        windows = self.ids[starts[:, None] + self._offsets]
        return make_tensor(windows[:, :-1]), make_tensor(windows[:, 1:])


def load_text(path):
    """The text of a UTF-8 file, with a clear error when it is missing or empty."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"text data: {path!r} is a directory (give --data text:PATH "
                                f"with the path of a UTF-8 text file)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"text data: no such file {path!r} (give --data text:PATH "
                                f"with the path of a UTF-8 text file)")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"text data: {path!r} is not UTF-8 text (byte "
                         f"{e.object[e.start]:#04x} at offset {e.start}); give a UTF-8 text "
                         f"file") from None
    except OSError as e:
        raise OSError(e.errno, f"text data: cannot read {path!r}: {e.strerror}") from None
    if not text:
        raise ValueError(f"text data: {path!r} is empty")
    return text


def load_text_splits(path, context, val_fraction=0.1):
    """(train set, validation set, tokenizer) of a text file, split 90/10 by default.

    The tokenizer covers every character of the file; the first ``1 - val_fraction`` of the
    ids train (every window, stride 1), the rest validates (non-overlapping windows, stride T,
    so an evaluation sees each validation character once).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "t.txt")
        >>> _ = open(path, "w").write("abcd" * 50)
        >>> train, val, tok = load_text_splits(path, context=8)
        >>> len(train.ids), len(val.ids), tok.chars
        (180, 20, 'abcd')
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"text data: val_fraction must be in (0, 1), got {val_fraction}")
    text = load_text(path)
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    cut = int(round(len(ids) * (1.0 - val_fraction)))
    if cut <= context or len(ids) - cut <= context:
        raise ValueError(f"text data: {path!r} has {len(ids)} characters, too few for a "
                         f"{1 - val_fraction:.0%}/{val_fraction:.0%} split with context {context}")
    return (CharDataset(ids[:cut], context), CharDataset(ids[cut:], context, stride=context),
            tokenizer)
