"""Matrix products on Numba's threads: NumPy's own OpenBLAS, run single-threaded, called from
each thread of a ``numba.prange`` on its share of the work (the one thread pool of
retrograd/_numba/policy.py; the NumPy reference: np.matmul, which retrograd/ops/_matmul.py
calls wherever this module does not apply).

A job (FIELDS, one int64 array) describes a batch of products C_i = op(A_i) @ op(B_i) of one
shape, its matrices a fixed byte step apart, and how each product is cut: whole (a batch of
at least as many matrices as threads: attention's per-head products), or into one block per
thread of rows (C taller than wide), of columns (wider than tall), or of the sum over k (k
much longer than both, as in the gradient of a convolution's weight: each part then writes
a C of its own, which the caller adds up). retrograd/ops/_matmul.py makes the jobs.

Cutting rows or columns leaves every sum over k whole; the results equal np.matmul's to
rounding (bit for bit in float32 on the machine of docs/performance.md; OpenBLAS may pick
another kernel for a smaller block, its small-matrix kernels in float64). Cutting k adds two
partial sums, a different rounding of the same sum.

BLAS is reached through its C interface (cblas_sgemm / cblas_dgemm with 64-bit integers, the
ILP64 build that NumPy's wheels carry, symbols ``scipy_cblas_sgemm64_`` and
``scipy_cblas_dgemm64_``), registered under fixed names with LLVM so that the kernel calling
them is cached on disk like the others. ``AVAILABLE`` is False where NumPy's BLAS is not that
library (another BLAS, a 32-bit-integer build): then retrograd keeps BLAS's own threads.
"""

import ctypes
import os

import numba
import numpy as np
from numba import types

__all__ = ["AVAILABLE", "COLUMNS", "FIELDS", "ROWS", "SUM", "blas_controller", "gemms",
           "pool_threads", "use_pool"]

_ROW_MAJOR = 101                        # CBLAS_ORDER
_SYMBOLS = {"retrograd_sgemm64": "scipy_cblas_sgemm64_",
            "retrograd_dgemm64": "scipy_cblas_dgemm64_"}


def blas_controller():
    """threadpoolctl's controller of NumPy's OpenBLAS (the library inside NumPy's own
    folder), or None."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    numpy_root = os.path.dirname(os.path.dirname(os.path.realpath(np.__file__)))
    for library in ThreadpoolController().select(internal_api="openblas").lib_controllers:
        path = os.path.realpath(library.filepath)
        if os.path.relpath(path, numpy_root).split(os.sep)[0] in ("numpy", "numpy.libs"):
            return library
    return None


def _blas_controller_once():
    if not _CONTROLLER:
        _CONTROLLER.append(blas_controller())
    return _CONTROLLER[0]


_CONTROLLER = []


def _register_symbols():
    """Give LLVM NumPy's cblas ?gemm under _SYMBOLS' fixed names; False where they are not
    there."""
    library = _blas_controller_once()
    if library is None:
        return False
    from llvmlite import binding

    handle = ctypes.CDLL(library.filepath)
    for ours, theirs in _SYMBOLS.items():
        function = getattr(handle, theirs, None)
        if function is None:
            return False
        binding.add_symbol(ours, ctypes.cast(function, ctypes.c_void_p).value)
    return True


AVAILABLE = _register_symbols()

_I32, _I64 = types.int32, types.int64


def _cblas_gemm(name, real):
    # cblas_?gemm(order, trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc); the
    # pointers passed as 64-bit integers (the same registers as pointers on every 64-bit ABI)
    return types.ExternalFunction(name, types.void(
        _I32, _I32, _I32, _I64, _I64, _I64, real, _I64, _I64, _I64, _I64, real, _I64, _I64))


_sgemm = _cblas_gemm("retrograd_sgemm64", types.float32)
_dgemm = _cblas_gemm("retrograd_dgemm64", types.float64)


# The fields of a job (one int64 array, so that a call costs one argument's dispatch):
# trans_a, trans_b, m, n, k, lda, ldb, ldc, the addresses of the first A, B and C; the batch
# as an outer and an inner count of matrices with the byte steps of A, B and C along each
# (a batch over two axes that do not merge, as (N, H) of attention's permuted views); then
# how each product is cut: parts (1: whole), the axis cut (ROWS of A and C, COLUMNS of B and
# C, or the SUM over k: each part then writes its own C, at the C step apart, for the caller
# to add), and the byte steps of one unit of that axis in A, B and C.
FIELDS = ("trans_a", "trans_b", "m", "n", "k", "lda", "ldb", "ldc", "a", "b", "c", "outer",
          "inner", "a_outer", "a_inner", "b_outer", "b_inner", "c_outer", "c_inner", "parts",
          "cut", "a_cut", "b_cut", "c_cut")
ROWS, COLUMNS, SUM = 0, 1, 2


@numba.njit(cache=True, parallel=True, nogil=True)
def _run_jobs(double, job):
    trans_a, trans_b, m, n, k, lda, ldb, ldc = job[0:8]
    inner, parts, cut = job[12], job[19], job[20]
    extent = m if cut == ROWS else (n if cut == COLUMNS else k)
    for j in numba.prange(job[11] * inner * parts):
        matrix, part = j // parts, j % parts
        outer_index, inner_index = matrix // inner, matrix % inner
        start = extent * part // parts
        size = extent * (part + 1) // parts - start
        a = job[8] + outer_index * job[13] + inner_index * job[14]
        b = job[9] + outer_index * job[15] + inner_index * job[16]
        c = job[10] + outer_index * job[17] + inner_index * job[18]
        rows, cols, depth = m, n, k
        if cut == ROWS:
            rows, a, c = size, a + start * job[21], c + start * job[23]
        elif cut == COLUMNS:
            cols, b, c = size, b + start * job[22], c + start * job[23]
        else:
            depth, a, b, c = size, a + start * job[21], b + start * job[22], c + part * job[23]
        if double:
            _dgemm(_ROW_MAJOR, trans_a, trans_b, rows, cols, depth, 1.0, a, lda, b, ldb, 0.0,
                   c, ldc)
        else:
            _sgemm(_ROW_MAJOR, trans_a, trans_b, rows, cols, depth, np.float32(1.0), a, lda,
                   b, ldb, np.float32(0.0), c, ldc)


def gemms(double, job):
    """Run the products of ``job`` (an int64 array of FIELDS) over Numba's threads: for each
    matrix i of the batch, C_i = op(A_i) @ op(B_i), C row-major, each cut into ``parts``
    blocks (see FIELDS); float64 when ``double``, else float32."""
    _run_jobs(double, job)


_POOL = [0]


def use_pool(count):
    """Run retrograd's products on ``count`` of Numba's threads, with NumPy's BLAS on one
    thread (count > 1 and AVAILABLE), or on the calling thread (count 1)."""
    _POOL[0] = count if count > 1 and AVAILABLE else 0
    if _POOL[0]:
        _blas_controller_once().set_num_threads(1)


def pool_threads():
    """The pool's thread count, 0 when products do not go through it."""
    return _POOL[0]
