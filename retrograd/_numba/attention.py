"""The row work of scaled-dot-product attention without a mask array (retrograd/ops/attention.py,
ScaledDotProductAttention; its NumPy reference: ``_scores``' causal select, ``_softmax_``,
and the dL/dS step of the backward with ``_exact_rowsum_where_saturated``), on C-contiguous
float32 arrays with the batch axes folded into rows: scores S and weights P (R, K), output O
and its gradient dO (R, Ev). Row r is query i = r % L.

Forward, in place on S, per row (one pass each, the row in cache):
    visible keys: j < K, and j <= i + start when causal (PyTorch's top-left causal mask); the
    others are set to -inf first, as the reference's select does
    m = max over the row (NaN when one is NaN, as np.max); shift = m, or 0 when
    m = -inf (a fully masked row); P_j = exp(S_j - shift) / sum (the sum in float64,
    rounded to float32 before dividing; a zero sum divides by 1); exp(-inf) = 0.
    saturated[r] = (the rounded sum == 1): the largest weight is exactly 1.
exp is fastmath.exp32_flush (0 below e^-86, as the softmax kernels of softmax.py).

Backward, in place on dP = dO V^T, per row:
    row = sum(dO * O) (= sum(dP * P)), or sum(dP * P) itself on a saturated row (the reference
    explains why), both accumulated in float64;      dL/dS = (dP - row) * P.

The kernels allow "contract"; the float64 sums also "reassoc" (softmax._row_sum), no flag
that assumes finite values.
"""

import numba
import numpy as np

from retrograd._numba.fastmath import exp32_flush
from retrograd._numba.policy import twins
from retrograd._numba.softmax import _SUMS, _row_max, _row_sum

__all__ = ["masked_softmax_", "softmax_grad_"]

_F = np.float32
_OPTIONS = dict(fastmath={"contract"})


@numba.njit(fastmath=_SUMS, error_model="numpy")
def _row_dot(a, b):
    """sum(a * b) (float32 products) accumulated in float64."""
    total = 0.0
    for j in range(a.size):
        total += a[j] * b[j]
    return total


@twins(**_OPTIONS)
def _masked_softmax(scores, n_queries, causal, start, saturated):
    # every loop runs over the whole row: LLVM's vector loop takes 32 to 64 values per
    # iteration, and a row cut at the last visible key (32 keys on average for 64-key causal
    # rows) would run in the scalar remainder loop
    width = scores.shape[1]
    for r in numba.prange(scores.shape[0]):
        row = scores[r]
        visible = min(width, r % n_queries + start + 1) if causal else width
        for j in range(width):
            row[j] = row[j] if j < visible else _F(-np.inf)
        top = _row_max(row)
        shift = _F(0.0) if top == -np.inf else top
        for j in range(width):
            row[j] = exp32_flush(row[j] - shift)
        total = _F(_row_sum(row))
        saturated[r] = total == _F(1.0)
        divisor = _F(1.0) if total == _F(0.0) else total
        for j in range(width):
            row[j] = row[j] / divisor


@twins(**_OPTIONS)
def _softmax_grad(grad_p, p, grad_out, out, saturated):
    for r in numba.prange(grad_p.shape[0]):
        g, w = grad_p[r], p[r]
        total = _row_dot(g, w) if saturated[r] else _row_dot(grad_out[r], out[r])
        row = _F(total)
        for j in range(g.size):
            g[j] = (g[j] - row) * w[j]


def _rows(array):
    return array.reshape(-1, array.shape[-1])


def masked_softmax_(scores, causal, start=0):
    """The row softmax of float32 C-contiguous scores (..., L, K) in place, keys after query
    i + start masked when causal: returns (P (the scores array), saturated rows (..., L) bool
    or None when no row is)."""
    rows = _rows(scores)
    saturated = np.empty(rows.shape[0], np.bool_)
    _masked_softmax.pick(scores.size)(rows, scores.shape[-2], causal, start, saturated)
    return scores, (saturated.reshape(scores.shape[:-1]) if saturated.any() else None)


def softmax_grad_(grad_p, p, grad_out, out, saturated):
    """dL/dS = (dP - rowsum(dO * O)) * P in place on grad_p (..., L, K), rowsum(dP * P) on the
    saturated rows; p like grad_p, grad_out and out (..., L, Ev) with the same leading axes,
    all float32 C-contiguous; saturated as masked_softmax_ returned it."""
    rows = _rows(grad_p)
    flags = np.zeros(rows.shape[0], np.bool_) if saturated is None else saturated.reshape(-1)
    _softmax_grad.pick(grad_p.size)(rows, _rows(p), _rows(grad_out), _rows(out), flags)
    return grad_p
