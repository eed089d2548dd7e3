"""Triangular parts of matrices: tril and triu, on the last two axes (batched over the rest).

Entry (i, j) of an (n, m) matrix lies on diagonal j - i: the main diagonal is 0, those above
it are positive, those below negative. tril(x, k) keeps j - i <= k, triu(x, k) keeps j - i >= k.
"""

import numpy as np

from retrograd.autograd.function import Function
from retrograd.ops.elementwise import elementwise_cost

__all__ = ["Tril", "Triu"]


class Tril(Function):
    """y = tril(x, k): x:(*, n, m) with every entry above diagonal k set to 0 (entry (i, j)
    kept when j - i <= k). y has x's shape and dtype.

    dL/dx = tril(dL/dy, k)   (*, n, m): a kept entry passes its gradient on, a zeroed entry
    gets 0. The backward is the op itself, so it is recorded under create_graph.
    Saves: nothing (k is an attribute).
    """

    keep = staticmethod(np.tril)

    @classmethod
    def forward(cls, ctx, x, diagonal=0):
        ctx.diagonal = diagonal
        return cls.keep(x, diagonal)

    @classmethod
    def backward(cls, ctx, grad_out):
        if isinstance(grad_out, np.ndarray):
            return cls.keep(grad_out, ctx.diagonal)
        return cls.apply(grad_out, diagonal=ctx.diagonal)

    @staticmethod
    def cost(call):
        """One select per element (keep x or write 0): n; backward the same select: n."""
        return elementwise_cost(call, call.op.__name__.lower(), 1, 1, "n selects")


class Triu(Tril):
    """y = triu(x, k): x:(*, n, m) with every entry below diagonal k set to 0 (entry (i, j)
    kept when j - i >= k).

    dL/dx = triu(dL/dy, k)   (*, n, m), as Tril with the other half.
    Saves: nothing.
    """

    keep = staticmethod(np.triu)
