"""Algorithmic sequence-to-sequence tasks with held-out test sequences.

Two tasks, over one small vocabulary (``VOCAB``: <pad>, <bos>, <eos>, the digits, "+"):

- ``reverse``: a string of 4 to 12 random digits -> the same digits in reverse order
  ("5021" -> "1205").
- ``add``: "a+b" with a, b in [0, 1000) -> the decimal sum ("123+45" -> "168").

How the sets are drawn. ``make_task(name, n_train, n_test, seed)`` draws distinct problems
from ``numpy.random.Generator(PCG64(seed))`` until it has n_train + n_test of them (in the
order first drawn); the first n_test go to the test set, the rest to the training set. So
every test problem is absent from the training set (the test measures generalization, not
memory), and the same seed gives the same sets on every machine.

Each set is a ``SequenceDataset``: ``src`` (N, S) and ``tgt`` (N, T) int64 arrays padded with
<pad> (id 0); ``tgt`` is <bos> answer <eos>. For teacher forcing the decoder reads
``tgt[:, :-1]`` and learns to predict ``tgt[:, 1:]``.
"""

import numpy as np

from retrograd import _checks
from retrograd.tensor import make_tensor
from retrograd.utils.data import Dataset

__all__ = ["VOCAB", "PAD", "BOS", "EOS", "TASKS", "SequenceDataset", "make_task", "encode",
           "decode"]

VOCAB = ("<pad>", "<bos>", "<eos>") + tuple("0123456789+")
PAD, BOS, EOS = 0, 1, 2
_IDS = {token: i for i, token in enumerate(VOCAB)}


def encode(text):
    """Ids of a string of digits and '+'.

    Example:
        >>> encode("12+3").tolist()
        [4, 5, 13, 6]
    """
    try:
        return np.array([_IDS[c] for c in text], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"sequence tasks: {e.args[0]!r} is not in the vocabulary "
                         f"(digits and '+')") from None


def decode(ids):
    """The string of a row of ids, stopping at <eos> and skipping <pad> and <bos>.

    Example:
        >>> decode([1, 4, 5, 2, 7])
        '12'
    """
    out = []
    for i in np.asarray(ids).tolist():
        if i == EOS:
            break
        if i not in (PAD, BOS):
            out.append(VOCAB[i])
    return "".join(out)


def _draw_reverse(rng, min_len=4, max_len=12):
    digits = "".join(map(str, rng.integers(0, 10, rng.integers(min_len, max_len + 1))))
    return digits, digits[::-1]


def _draw_add(rng, max_value=1000):
    a, b = (int(v) for v in rng.integers(0, max_value, 2))
    return f"{a}+{b}", str(a + b)


TASKS = {"reverse": _draw_reverse, "add": _draw_add}


class SequenceDataset(Dataset):
    """Pairs (source, target) of a task, padded to fixed widths.

    Args:
        problems: list of (source string, answer string).

    Attributes:
        src: (N, S) int64, the sources padded with PAD. tgt: (N, T) int64, BOS answer EOS
        padded with PAD. problems: the (source, answer) strings.

    Example:
        >>> ds = SequenceDataset([("12", "21"), ("345", "543")])
        >>> ds.src.tolist(), ds.tgt.tolist()
        ([[4, 5, 0], [6, 7, 8]], [[1, 5, 4, 2, 0], [1, 8, 7, 6, 2]])
    """

    def __init__(self, problems):
        if not problems:
            raise ValueError("SequenceDataset: no problems")
        self.problems = list(problems)
        self.src = _pad([encode(s) for s, _ in problems])
        self.tgt = _pad([np.concatenate([[BOS], encode(a), [EOS]]) for _, a in problems])

    def __len__(self):
        return len(self.problems)

    def __getitem__(self, index):
        src, tgt = self.get_batch(np.array([index]))
        return src[0], tgt[0]

    def get_batch(self, indices):
        """(src, tgt) int64 Tensors of shape (len(indices), S) and (len(indices), T)."""
        indices = np.asarray(indices, dtype=np.int64)
        return make_tensor(self.src[indices]), make_tensor(self.tgt[indices])


def _pad(rows):
    out = np.full((len(rows), max(len(r) for r in rows)), PAD, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def make_task(name, n_train=20000, n_test=1000, seed=0):
    """(train set, test set) of distinct problems of task ``name`` ('reverse' or 'add');
    no test problem is in the training set.

    Example:
        >>> train, test = make_task("add", n_train=50, n_test=10)
        >>> len(train), len(test)
        (50, 10)
        >>> set(train.problems) & set(test.problems)
        set()
    """
    if name not in TASKS:
        raise ValueError(f"sequence tasks: unknown task {name!r}; choose one of: "
                         f"{', '.join(TASKS)}")
    for label, n in (("n_train", n_train), ("n_test", n_test)):
        _checks.positive_int("sequence tasks", label, n)
    rng = np.random.Generator(np.random.PCG64(seed))
    seen, problems = set(), []
    attempts, limit = 0, 50 * (n_train + n_test)
    while len(problems) < n_train + n_test:
        attempts += 1
        if attempts > limit:
            raise ValueError(f"sequence tasks: could not draw {n_train + n_test} distinct "
                             f"{name} problems (only {len(problems)} found)")
        problem = TASKS[name](rng)
        if problem[0] not in seen:
            seen.add(problem[0])
            problems.append(problem)
    return SequenceDataset(problems[n_test:]), SequenceDataset(problems[:n_test])
