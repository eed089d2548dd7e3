"""The row softmax of scaled-dot-product attention in one pass over the scores, with the
causal mask applied in the same pass (the NumPy path in retrograd/ops/attention.py,
``_scores`` and ``_softmax_``, makes six: the causal copy, max, subtract, exp, sum, divide).

For each row of S (one query i against the n keys j, key index start + j):
    S[i, j] = -inf where start + j > i                      (causal only)
    m = max_j S[i, j]   (NaN if the row holds one; 0 for a row of -inf only)
    P[i, j] = exp(S[i, j] - m) / sum_j exp(S[i, j] - m)    (a sum of 0, all -inf: P = 0)
and the row is *saturated* when that sum is exactly 1 (its largest weight is 1, the others 0
or below rounding): the backward then recomputes one row sum from its definition. exp is
fastmath.exp32 (one float32 ulp from np.exp); sums run in float32, as NumPy's.
"""

import numba
import numpy as np

from retrograd._numba.fastmath import exp32
from retrograd._numba.policy import twins

__all__ = ["masked_softmax"]

_F = np.float32


@twins(fastmath={"contract"})
def _masked_softmax(scores, queries, causal, start, saturated):
    n = scores.shape[1]
    for r in numba.prange(scores.shape[0]):
        row = scores[r]
        if causal:
            for j in range(max(0, min(n, r % queries - start + 1)), n):
                row[j] = -np.inf
        top = _F(-np.inf)
        for j in range(n):
            v = row[j]
            top = v if (v > top) | (v != v) else top
        top = _F(0.0) if top == -np.inf else top
        total = _F(0.0)
        for j in range(n):
            e = exp32(row[j] - top)
            row[j] = e
            total += e
        saturated[r] = total == _F(1.0)
        total = _F(1.0) if total == _F(0.0) else total
        for j in range(n):
            row[j] = row[j] / total


def masked_softmax(scores, causal, start=0):
    """(P, saturated rows or None) from C-contiguous float32 scores (..., L, n), in place;
    with ``causal`` the keys after each query are masked first (keys start at ``start``)."""
    rows = scores.reshape(-1, scores.shape[-1])
    saturated = np.empty(rows.shape[0], dtype=np.bool_)
    _masked_softmax.pick(scores.size)(rows, scores.shape[-2], causal, start, saturated)
    saturated = saturated.reshape(scores.shape[:-1])
    return scores, (saturated if saturated.any() else None)
