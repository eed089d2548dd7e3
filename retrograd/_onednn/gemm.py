"""float32 matrix products by oneDNN's ``dnnl_sgemm`` (retrograd/_onednn/library.py): row-major
C = op(A) @ op(B), each operand as stored or transposed, with its leading dimension, as
retrograd/ops/_matmul.py describes it for BLAS. oneDNN generates the kernel for the machine's
vectors and runs it on GNU OpenMP's threads (the one pool); on the products of the Linear
layers of benchmarks/vs_torch.py's MLP and Transformer it took 0.60x to 0.95x the time of
OpenBLAS's sgemm shared out over the same threads (benchmarks/onednn_paths.py,
docs/performance.md). The reference is np.matmul.
"""

from retrograd._onednn.library import OneDNNError, load, usable

__all__ = ["sgemm", "usable"]

_FLAG = {False: b"N", True: b"T"}


def sgemm(a, transpose_a, lda, b, transpose_b, ldb, c, ldc):
    """c = op(a) @ op(b) for float32 arrays (c's m x n block from its first element, rows
    ldc elements apart); a and b as BLAS reads them: stored rows lda (ldb) elements apart,
    transposed or not."""
    m, n = c.shape[-2:]
    k = a.shape[-1]
    status = load().cdll.dnnl_sgemm(_FLAG[transpose_a], _FLAG[transpose_b], m, n, k, 1.0,
                                    a.ctypes.data, lda, b.ctypes.data, ldb, 0.0,
                                    c.ctypes.data, ldc)
    if status != 0:
        raise OneDNNError(f"oneDNN: dnnl_sgemm returned status {status} for a "
                          f"({m}, {k}) @ ({k}, {n}) product")
