"""EmbeddingBag: sums, means or maxima of bags of embeddings, a thin Module over
nn.functional.embedding_bag."""

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.grad_mode import no_grad
from retrograd.creation import empty
from retrograd.nn import functional as F
from retrograd.nn import init
from retrograd.nn.module import Module
from retrograd.nn.parameter import Parameter
from retrograd.tensor import Tensor, make_tensor

__all__ = ["EmbeddingBag"]


class EmbeddingBag(Module):
    """Bags of embeddings reduced to one vector each, without the (B, L, D) intermediate:
    output[b] = sum, mean or max of weight[i] over the ids i of bag b (a bag-of-words
    text classifier's first layer).

    Args:
        num_embeddings: size of the vocabulary V.
        embedding_dim: size D of each embedding vector.
        max_norm, norm_type, scale_grad_by_freq, sparse: as Embedding.
        mode: 'sum', 'mean' or 'max'. Default: 'mean'.
        include_last_offset: offsets has one more entry, the end of the last bag.
        padding_idx: an id left out of every bag; its row is initialized to zeros and gets
            no gradient. Default: None.
        dtype: the weight's dtype. Default: the default float dtype (float32).

    Shape:
        - Input: (B, L) ids (each row a bag), or (N,) ids with offsets (B,) (the start of
          each bag; (B + 1,) with include_last_offset); per_sample_weights (optional, 'sum'
          only): floating, of input's shape.
        - Output: (B, D).

    Attributes:
        weight: (V, D), from N(0, 1), with the padding_idx row zeroed.

    Example:
        >>> import retrograd as rg
        >>> bag = rg.nn.EmbeddingBag(10, 3, mode="sum")
        >>> bag
        EmbeddingBag(10, 3, mode='sum')
        >>> ids, offsets = rg.tensor([1, 2, 4, 5, 4, 3, 2, 9]), rg.tensor([0, 4])
        >>> bag(ids, offsets).shape
        (2, 3)
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None):
        super().__init__()
        owner = "EmbeddingBag"
        self.num_embeddings = _checks.positive_int(owner, "num_embeddings", num_embeddings)
        self.embedding_dim = _checks.positive_int(owner, "embedding_dim", embedding_dim)
        _checks.cpu_device(owner, device)
        self.max_norm, self.norm_type, self.scale_grad_by_freq = max_norm, norm_type, \
            scale_grad_by_freq
        if padding_idx is not None:
            padding_idx = _checks.index(owner, "padding_idx", padding_idx, num_embeddings)
        self.padding_idx = padding_idx
        if _weight is None:
            self.weight = Parameter(empty(num_embeddings, embedding_dim,
                                          dtype=dtype or _dt.default_float))
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"EmbeddingBag: _weight of shape {tuple(_weight.shape)} does "
                                 f"not match ({num_embeddings}, {embedding_dim})")
            self.weight = Parameter(_weight)
        self.mode = _checks.one_of(owner, "mode", mode, ("sum", "mean", "max"))
        self.sparse, self.include_last_offset = sparse, include_last_offset

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx].fill_(0)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, mode="mean", sparse=False,
                        include_last_offset=False, padding_idx=None):
        """An EmbeddingBag holding ``embeddings`` (a 2-D Tensor or array, shared, not
        copied); ``freeze`` turns its gradient off.

        Example:
            >>> import retrograd as rg
            >>> bag = rg.nn.EmbeddingBag.from_pretrained(rg.tensor([[1.0, 2.0], [3.0, 5.0]]))
            >>> bag(rg.tensor([[0, 1]])).tolist()
            [[2.0, 3.5]]
        """
        data = embeddings if isinstance(embeddings, Tensor) else make_tensor(np.asarray(embeddings))
        if data.ndim != 2:
            raise ValueError(f"EmbeddingBag.from_pretrained: embeddings must be 2-D "
                             f"(num_embeddings, embedding_dim), got shape {tuple(data.shape)}")
        bag = cls(data.shape[0], data.shape[1], _weight=data, max_norm=max_norm,
                  norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, mode=mode,
                  sparse=sparse, include_last_offset=include_last_offset,
                  padding_idx=padding_idx)
        bag.weight.requires_grad = not freeze
        return bag

    def forward(self, input, offsets=None, per_sample_weights=None):  # noqa: A002
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                               self.scale_grad_by_freq, self.mode, self.sparse,
                               per_sample_weights, self.include_last_offset, self.padding_idx,
                               owner=self)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm!r}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type!r}"
        if self.scale_grad_by_freq is not False:
            text += f", scale_grad_by_freq={self.scale_grad_by_freq!r}"
        text += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx!r}"
        return text
