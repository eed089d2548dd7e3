"""Matrix multiplication."""

import math

import numpy as np

from retrograd.autograd.cost import Cost, call_arg, reduction_flops, shape_text, unbroadcast_flops
from retrograd.autograd.function import Function
from retrograd.ops._matmul import products_for

__all__ = ["MatMul", "Linear"]


def _flatten_batch(a):
    """(..., n, k) -> (prod(...) * n, k), a view for contiguous a. The row count is explicit:
    reshape(-1, k) cannot infer it when the array is empty."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


class MatMul(Function):
    """Y = A @ B with batch broadcasting; A:(*, n, k), B:(*, k, m), Y:(*, n, m).

    dL/dA = dL/dY @ B^T   (*, n, k)
    dL/dB = A^T @ dL/dY   (*, k, m)
    Batch axes that were broadcast are summed by the engine. When B is a plain matrix (the
    linear-layer case) the batch is folded into rows instead: one large GEMM rather than
    many small ones, in forward and in dL/dB = A_2d^T @ dL/dY_2d.
    Saves: A when dL/dB is needed, B when dL/dA is needed. Both inputs are at least 2-D
    (Tensor.__matmul__ handles vectors).
    """

    @staticmethod
    def forward(ctx, a, b):
        need_a, need_b = ctx.needs_input_grad
        ctx.save_for_backward(a if need_b else None, b if need_a else None)
        ctx.fold = b.ndim == 2 and a.ndim > 2
        ctx.a_shape = a.shape
        # the backward's products have the forward's size: one test for all three
        ctx.product = product = products_for(a, b)
        if ctx.fold:
            y = product(_flatten_batch(a), b).reshape(a.shape[:-1] + b.shape[-1:])
        else:
            y = product(a, b)
        return y.astype(a.dtype, copy=False)  # NOTE: bfloat16 @ bfloat16 is float32 in ml_dtypes

    @staticmethod
    def backward(ctx, grad_out):
        a, b = ctx.saved_tensors
        grad_a = grad_b = None
        product = ctx.product
        if ctx.fold:
            g2d = _flatten_batch(grad_out)
            if b is not None:
                grad_a = product(g2d, np.swapaxes(b, -1, -2)).reshape(ctx.a_shape)
            if a is not None:
                grad_b = product(np.swapaxes(_flatten_batch(a), -1, -2), g2d)
            return grad_a, grad_b
        if b is not None:
            grad_a = product(grad_out, np.swapaxes(b, -1, -2))
        if a is not None:
            grad_b = product(np.swapaxes(a, -1, -2), grad_out)
        return grad_a, grad_b

    @staticmethod
    def cost(call):
        """2*m*n*k for Y, and again for each of dL/dA, dL/dB that is needed (plus the adds
        that sum a broadcast batch back to its input's shape)."""
        a, b = call.inputs
        (y,) = call.outputs
        gemm = 2 * y.size * a.shape[-1]
        backward_gemm = gemm * (call.needs(0) + call.needs(1))
        batch = y.shape[:-2]
        sums = ((call.needs(0) and unbroadcast_flops(batch + a.shape[-2:], a.shape))
                + (call.needs(1) and unbroadcast_flops(batch + b.shape[-2:], b.shape)))
        return Cost(gemm, backward_gemm + sums,
                    f"matmul ({shape_text(a)})@({shape_text(b)}): 2*m*n*k",
                    gemm_flops=gemm, backward_gemm_flops=backward_gemm)


class Linear(Function):
    """y = x @ W^T + b, the affine map of a linear layer; x:(*, in), W:(out, in), b:(out,),
    y:(*, out). One node instead of three (transpose, matmul, add).

    With the batch axes folded into rows, x_2d:(n, in), dL/dy_2d:(n, out):
    dL/dx = dL/dy_2d @ W, reshaped to (*, in)
    dL/dW = dL/dy_2d^T @ x_2d                (out, in)
    dL/db = sum of dL/dy_2d over rows        (out,)
    Saves: x when dL/dW is needed, W when dL/dx is needed (b is never needed). The backward
    is written with Tensor-compatible operations, so double backward works.
    """

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        need_x, need_w, _ = ctx.needs_input_grad
        ctx.save_for_backward(x if need_w else None, weight if need_x else None)
        x2d = _flatten_batch(x)
        ctx.product = product = products_for(x2d, weight.T)   # as MatMul's: one size test
        y = product(x2d, weight.T)
        if bias is not None:
            y += bias
        # NOTE: bfloat16 @ bfloat16 is float32 in ml_dtypes; the layer keeps the input dtype
        return y.astype(x.dtype, copy=False).reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        _, _, need_b = ctx.needs_input_grad
        g2d, product = _flatten_batch(grad_out), ctx.product
        grad_x = product(g2d, weight).reshape(grad_out.shape[:-1] + (weight.shape[1],)) \
            if weight is not None else None
        grad_w = product(np.swapaxes(g2d, 0, 1), _flatten_batch(x)) if x is not None else None
        grad_b = np.sum(g2d, axis=0) if need_b else None
        return grad_x, grad_w, grad_b

    @staticmethod
    def cost(call):
        """2*rows*in*out for y, plus rows*out adds of b; backward 2*rows*in*out for each of
        dL/dx, dL/dW that is needed, and the rows*out - out adds of dL/db when needed."""
        x, w = call.inputs[:2]
        (y,) = call.outputs
        has_bias = call_arg(call, 2, "bias") is not None
        gemm = 2 * y.size * x.shape[-1]
        backward_gemm = gemm * (call.needs(0) + call.needs(1))
        sums = reduction_flops(y.size, w.shape[0]) if call.needs(2) else 0
        return Cost(gemm + has_bias * y.size, backward_gemm + sums,
                    f"linear x({shape_text(x)}) w({shape_text(w)}) -> {shape_text(y)}: "
                    f"2*rows*in*out + bias", gemm_flops=gemm, backward_gemm_flops=backward_gemm)
