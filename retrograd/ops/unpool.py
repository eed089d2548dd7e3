"""MaxUnpool2d: the partial inverse of max pooling (PyTorch's max_unpool2d): each pooled
value goes back to the position its argmax index names, every other cell is 0."""

import numpy as np

from retrograd.autograd.cost import Cost, shape_text
from retrograd.autograd.function import Function

__all__ = ["MaxUnpool2d"]


class MaxUnpool2d(Function):
    """y = zeros (N, C, Ho, Wo), then y[n, c].flat[indices[n, c, h, w]] = x[n, c, h, w]:
    x:(N, C, H, W) placed at the flat positions h'*Wo + w' that indices:(N, C, H, W) (int64,
    MaxPool2d's return_indices) name; (Ho, Wo) = output_size. When two inputs name one cell,
    the later one in row-major order is kept, as PyTorch's CPU kernel writes them in that
    order.

    dL/dx[n, c, h, w] = dL/dy[n, c].flat[indices[n, c, h, w]]          (N, C, H, W)
    a gather; an input overwritten by a later one still receives the cell's gradient, as in
    PyTorch (whose backward is the same gather). indices gets no gradient.
    Saves: indices (the input itself). Attrs: output_size (Ho, Wo).
    """

    once_differentiable = True
    moves_data = "each input written to the cell its index names: no arithmetic"

    @staticmethod
    def forward(ctx, x, indices, output_size):
        n, c = x.shape[:2]
        y = np.zeros((n * c, output_size[0] * output_size[1]), dtype=x.dtype)
        np.put_along_axis(y, indices.reshape(n * c, -1), x.reshape(n * c, -1), axis=1)
        ctx.save_for_backward(indices)
        return y.reshape(n, c, *output_size)

    @staticmethod
    def backward(ctx, grad_out):
        (indices,) = ctx.saved_tensors
        n, c = grad_out.shape[:2]
        flat = indices.reshape(n * c, -1)
        grad_x = np.take_along_axis(grad_out.reshape(n * c, -1), flat, axis=1)
        return grad_x.reshape(indices.shape), None

    @staticmethod
    def cost(call):
        """No arithmetic: writes forward, a gather backward."""
        x, y = call.inputs[0], call.outputs[0]
        return Cost(0, 0, f"max_unpool2d {shape_text(x)} -> {shape_text(y)}: no arithmetic")
