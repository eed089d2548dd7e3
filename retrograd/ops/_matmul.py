"""The matrix products of the ops: ``matmul(a, b, out=None)`` is ``a @ b`` (np.matmul, with its
``out``), run on the one thread pool where retrograd has one (retrograd/_numba/policy.py):
NumPy's BLAS on one thread, called from each of Numba's threads on its share of the work
(retrograd/_numba/gemm.py). Then the compiled elementwise kernels can take every core too,
instead of waiting for BLAS's idle threads, which spin for ~0.1 s after every product.

A product goes to the pool when both operands are NumPy arrays of one float dtype (float32
or float64) with 2 dims or more, every matrix of them with one unit stride (rows or columns
contiguous: transposed views included, as BLAS takes them), m, n and k at least 2, and at
least _POOL_MIN_WORK multiply-adds in all, the batch axes (after broadcasting) at most two
or merging into one. The work is shared out as whole matrices of a batch (attention's
per-head products), else a single product in blocks of rows (or of columns, when the result
is wider than tall), or in parts of its sum over k when k is much longer than both (_cut).
A single float32 product (no batch) goes to oneDNN's sgemm instead where it is installed
(retrograd/_onednn/gemm.py: faster on these shapes, on the same threads; it shares the work
out itself). Everything else, and everything without the pool, is np.matmul: the reference.
Cutting rows or columns changes no sum over k (the results are np.matmul's to rounding:
OpenBLAS may take another kernel for a smaller block); cutting k adds two partial sums.
"""

import math
import operator

import numpy as np

from retrograd._fast import FLOATS, compiled, onednn

# how a product is cut (retrograd/_numba/gemm.py, which imports Numba: not imported here)
ROWS, COLUMNS, SUM = 0, 1, 2

__all__ = ["matmul", "pool_threads", "products_for"]

# Multiply-adds below which a product stays on the calling thread (np.matmul, BLAS on one
# thread): handing out ~1 us of work costs more than it saves.
_POOL_MIN_WORK = 1 << 18
# k at least this many times both m and n: a single product is cut along k (see _cut)
_SUM_CUT_RATIO = 8


def matmul(a, b, out=None):
    """a @ b, into ``out`` when given (see the module docstring)."""
    # the cheapest tests first, inline: a product of tiny arrays, as a chain of small ops
    # makes, pays for these alone. a.size * n and b.size * m bound the multiply-adds below.
    if type(a) is _ARRAY and type(b) is _ARRAY and a.ndim > 1 and b.ndim > 1 and (
            a.size * b.shape[-1] >= _POOL_MIN_WORK or b.size * a.shape[-2] >= _POOL_MIN_WORK):
        job = _job(a, b, out)
        if job is not None:
            return _run(job, a, b, out)
    return a @ b if out is None else np.matmul(a, b, out=out)


_ARRAY = np.ndarray


def products_for(a, b):
    """``matmul`` where a @ b (arrays of 2+ dims, as an op's forward has them) can be large
    enough for the pool, else operator.matmul: an op whose backward makes products of its
    forward's size tests once, and by one bound only, a.size * n (the multiply-adds, unless
    b has batch axes a lacks): in a chain of 16x16 products each test costs ~1% of an op."""
    return matmul if a.size * b.shape[-1] >= _POOL_MIN_WORK else operator.matmul


def _run(job, a, b, out):
    """Run a job on the pool; returns the product. A single float32 product goes to
    oneDNN's sgemm where it is installed (retrograd/_onednn/gemm.py), on the same threads."""
    out = np.empty(job.shape, dtype=a.dtype) if out is None else out
    if job.count == 1 and a.dtype == np.float32:
        gemm = onednn("gemm")
        if gemm is not None:
            (trans_a, lda), (trans_b, ldb) = job.layouts
            gemm.sgemm(a, trans_a == _TRANS, lda, b, trans_b == _TRANS, ldb, out,
                       out.strides[-2] // out.itemsize)
            return out
    target = out if job.cut != SUM else np.empty((job.parts,) + job.shape, dtype=a.dtype)
    compiled("gemm").gemms(a.dtype == np.float64, job.fields(a, b, target))
    if job.cut == SUM:
        np.sum(target, axis=0, out=out)
    return out


def pool_threads():
    """The thread count of the pool that runs retrograd's products (0: none; NumPy's BLAS
    with its own threads). Loads the compiled kernels, which start the pool."""
    kernels = compiled("gemm")
    return 0 if kernels is None else kernels.pool_threads()


class _Job:
    """A product as the pool runs it: its shape, layouts, batch levels and cut; ``fields``
    gives the int64 array of retrograd/_numba/gemm.py's FIELDS for a C to write into."""

    __slots__ = ("shape", "layouts", "levels", "steps", "count", "parts", "cut")

    def fields(self, a, b, c):
        (trans_a, lda), (trans_b, ldb) = self.layouts
        (m, k), n = a.shape[-2:], b.shape[-1]
        if self.cut == SUM:       # c: (parts, m, n), one C per part of the sum
            c_steps, ldc, c_cut = (0, 0), n, m * n * c.itemsize
            a_cut, b_cut = a.strides[-1], b.strides[-2]
        else:
            c_steps = _level_steps(c, self.shape[:-2], self.levels)
            ldc = c.strides[-2] // c.itemsize
            a_cut = a.strides[-2] if self.cut == ROWS else 0
            b_cut = b.strides[-1] if self.cut == COLUMNS else 0
            c_cut = c.strides[-2] if self.cut == ROWS else c.strides[-1]
        (a_outer, a_inner), (b_outer, b_inner) = self.steps
        return np.array([trans_a, trans_b, m, n, k, lda, ldb, ldc, a.ctypes.data,
                         b.ctypes.data, c.ctypes.data, *self.levels[0], a_outer, a_inner,
                         b_outer, b_inner, *c_steps, self.parts, self.cut, a_cut, b_cut,
                         c_cut], dtype=np.int64)


def _job(a, b, out):
    """The _Job of a @ b (into out) for the pool, or None where np.matmul is the path."""
    (m, k), (k_b, n) = a.shape[-2:], b.shape[-2:]
    if k != k_b or m < 2 or n < 2 or k < 2 or a.dtype != b.dtype or a.dtype not in FLOATS:
        return None
    threads = pool_threads()
    if threads < 2:
        return None
    batch = _batch_shape(a, b)
    if batch is None:
        return None
    job = _Job()
    job.shape, job.count = batch + (m, n), math.prod(batch)
    job.layouts = (_blas_matrix(a), _blas_matrix(b))
    if job.count * m * n * k < _POOL_MIN_WORK or None in job.layouts:
        return None
    job.levels = _levels(batch, a, b)
    if job.levels is None:
        return None
    job.steps = tuple(_level_steps(x, batch, job.levels) for x in (a, b))
    if out is not None and not _writable_result(out, job.shape, a, b, job.levels):
        return None
    job.parts = 1 if job.count >= threads else threads
    job.cut = _cut(m, n, k, job.parts)
    return job


def _cut(m, n, k, parts):
    """How a single product is cut into ``parts`` (retrograd/_numba/gemm.py's ROWS, COLUMNS
    or SUM): blocks of rows where C is taller than wide, of columns where it is wider; parts
    of the sum over k where k is much longer than both (the gradient of a convolution's
    weight, k = N*H*W: OpenBLAS's own threads beat both other cuts there by 1.3x, measured),
    each part writing its own C, which matmul adds up."""
    if parts > 1 and k >= _SUM_CUT_RATIO * max(m, n):
        return SUM
    return ROWS if m >= n else COLUMNS


def _batch_shape(a, b):
    """The broadcast batch shape of a @ b, or None where it does not broadcast."""
    if a.ndim == 2:
        return b.shape[:-2]
    if b.ndim == 2 or a.shape[:-2] == b.shape[:-2]:
        return a.shape[:-2]
    try:
        return np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        return None                     # np.matmul raises its own error


def _levels(batch, *operands):
    """((outer count, inner count), the batch axes of each level) for the broadcast batch:
    its axes of more than one matrix if there are at most two, else all of it as one level
    if every operand steps through it with one stride; None otherwise."""
    axes = tuple(axis for axis, size in enumerate(batch) if size != 1)
    if len(axes) <= 2:
        sizes = (1,) * (2 - len(axes)) + tuple(batch[axis] for axis in axes)
        return sizes, (None,) * (2 - len(axes)) + axes
    if any(_merged_step(x, batch) is None for x in operands):
        return None
    return (1, math.prod(batch)), (None, "all")


def _level_steps(x, batch, levels):
    """x's byte steps (outer, inner) along the levels of _levels (0 for an axis it is
    broadcast along), or None (an ``out`` that does not step through the batch evenly)."""
    lead = len(batch) - (x.ndim - 2)
    steps = []
    for axis in levels[1]:
        if axis is None:
            steps.append(0)
        elif axis == "all":
            steps.append(_merged_step(x, batch))
        else:
            own = axis - lead
            steps.append(x.strides[own] if own >= 0 and x.shape[own] != 1 else 0)
    return None if None in steps else tuple(steps)


def _merged_step(x, batch):
    """The byte step between consecutive matrices of x over the whole broadcast batch (0 when
    x is one matrix for all), or None when there is no single step."""
    step = span = None
    lead = len(batch) - (x.ndim - 2)
    for axis in range(len(batch) - 1, -1, -1):          # innermost batch axis first
        if batch[axis] == 1:
            continue
        own = axis - lead
        stride = x.strides[own] if own >= 0 and x.shape[own] != 1 else 0
        if step is None:
            step = stride
        elif stride != span:
            return None
        span = stride * batch[axis]
    return step or 0


def _blas_matrix(x):
    """(NO_TRANS or TRANS, leading dimension) for the matrices of x (its last two axes) as
    BLAS reads them, or None: rows contiguous (row-major) or columns contiguous (a
    transposed view), element-aligned, leading stride at least the extent."""
    if not x.flags.aligned:
        return None
    size = x.itemsize
    (rows, cols), (row_step, col_step) = x.shape[-2:], x.strides[-2:]
    if col_step == size and row_step % size == 0 and row_step >= cols * size:
        return _NO_TRANS, row_step // size
    if row_step == size and col_step % size == 0 and col_step >= rows * size:
        return _TRANS, col_step // size
    return None


_NO_TRANS, _TRANS = 111, 112          # CBLAS_TRANSPOSE


def _writable_result(out, shape, a, b, levels):
    """Whether the pool can write the product into ``out``: np.matmul's shape and dtype,
    rows contiguous, overlapping neither operand (np.matmul handles the rest)."""
    size = out.itemsize
    return (type(out) is np.ndarray and out.shape == shape and out.dtype == a.dtype
            and out.flags.writeable and out.flags.aligned and out.strides[-1] == size
            and out.strides[-2] % size == 0 and out.strides[-2] >= shape[-1] * size
            and _level_steps(out, shape[:-2], levels) is not None
            and not np.may_share_memory(out, a) and not np.may_share_memory(out, b))
