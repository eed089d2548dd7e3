"""Singular values of matrices (batched over leading axes): the spectral and nuclear norms
are built from them (retrograd/linalg.py)."""

import numpy as np

from retrograd.autograd.cost import Cost, shape_text
from retrograd.autograd.function import Function
from retrograd.dtypes import LOW_PRECISION

__all__ = ["SingularValues"]


class SingularValues(Function):
    """s = svdvals(A): the singular values of A:(*, m, n) in descending order, s:(*, r) with
    r = min(m, n). With the reduced SVD A = U diag(s) V^T (U:(*, m, r), V^T:(*, r, n)):

    ds_i = u_i^T dA v_i (the first-order change of s_i), so
    dL/dA = U diag(dL/ds) V^T = (U * dL/ds[..., None, :]) @ V^T    (*, m, n)
    exact where the singular values are distinct; for tied values the rule stays right for
    functions symmetric in them (their sum, the nuclear norm), and is PyTorch's choice
    otherwise (it uses the same formula).
    Saves: U and V^T (constants), computed only when dL/dA is needed. Once differentiable:
    the second derivative would need dU and dV.
    float16 and bfloat16 are computed in float32 (LAPACK has no half precision).
    """

    once_differentiable = True

    @staticmethod
    def forward(ctx, a):
        wide = a.astype(np.float32) if a.dtype in LOW_PRECISION else a
        try:
            if ctx.needs_input_grad[0]:
                u, s, vh = np.linalg.svd(wide, full_matrices=False)
                ctx.u, ctx.vh = u, vh
            else:
                s = np.linalg.svd(wide, compute_uv=False)
        except np.linalg.LinAlgError:
            raise RuntimeError(f"linalg.svdvals: the SVD failed to converge for a matrix of "
                               f"shape {a.shape} and dtype {a.dtype}; the input holds nan or "
                               f"inf") from None
        return s.astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_out):
        return (ctx.u * grad_out[..., None, :]) @ ctx.vh

    @staticmethod
    def cost(call):
        """LAPACK's reduced SVD of each (m, n) matrix, m >= n (else transposed), r = min:
        about 4 m n^2 - 4/3 n^3 for the values, plus 4 m^2 n + 8 m n^2 + 9 n^3 more for U and
        V (when dL/dA is needed); backward U * dL/ds (m r) and the product with V^T
        (2 m r n)."""
        a = call.inputs[0]
        *batch, m, n = a.shape
        m, n = max(m, n), min(m, n)
        count = int(np.prod(batch, dtype=np.int64))
        values = 4 * m * n * n - (4 * n ** 3) // 3
        vectors = 4 * m * m * n + 8 * m * n * n + 9 * n ** 3 if call.needs(0) else 0
        backward = (m * n + 2 * m * n * n) if call.needs(0) else 0
        return Cost(count * (values + vectors), count * backward,
                    f"svdvals A({shape_text(a)}): 4*m*n^2 - 4/3*n^3 (+ U, V when needed)",
                    backward_gemm_flops=count * 2 * m * n * n * call.needs(0))
