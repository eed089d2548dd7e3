"""Similarity layers: CosineSimilarity."""

from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["CosineSimilarity"]


class CosineSimilarity(Module):
    """Cosine similarity x1 . x2 / (max(||x1||, eps) max(||x2||, eps)) along ``dim``.

    Args:
        dim: the dim of the vectors. Default: 1.
        eps: the smallest norm divided by. Default: 1e-8.

    Shape:
        - x1, x2: broadcastable shapes (*1, D, *2).
        - Output: the broadcast shape without ``dim``.

    Example:
        >>> import retrograd as rg
        >>> rg.nn.CosineSimilarity(dim=1)(rg.tensor([[3.0, 4.0]]), rg.tensor([[4.0, 3.0]]))
        tensor([0.96])
    """

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)
