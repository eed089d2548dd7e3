"""Similarity and distance layers: CosineSimilarity, PairwiseDistance."""

from retrograd.nn import functional as F
from retrograd.nn.module import Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


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


class PairwiseDistance(Module):
    """The p-norm distance ||x1 - x2 + eps||_p along the last dim.

    Args:
        p: the norm degree. Default: 2.0 (kept as ``norm``, PyTorch's attribute name).
        eps: added to every difference (keeps the gradient defined where x1 == x2).
            Default: 1e-6.
        keepdim: keep the last dim (size 1). Default: False.

    Shape:
        - x1, x2: broadcastable shapes (*, D).
        - Output: the broadcast shape without its last dim (with it, size 1, for keepdim).

    Example:
        >>> import retrograd as rg
        >>> rg.nn.PairwiseDistance(eps=0.0)(rg.tensor([[0.0, 0.0]]), rg.tensor([[3.0, 4.0]]))
        tensor([5.])
    """

    def __init__(self, p=2.0, eps=1e-6, keepdim=False):
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
