"""The named pairs some functions return, as ``torch.return_types``: ``sort``, ``topk`` and
``median`` give ``(values, indices)``; unpack them, index them, or read ``.values`` and
``.indices``.

Example:
    >>> import retrograd as rg
    >>> result = rg.topk(rg.tensor([1.0, 3.0, 2.0]), 2)
    >>> isinstance(result, rg.return_types.topk), result.indices
    (True, tensor([1, 2]))
"""

import collections

__all__ = ["sort", "topk", "median"]

sort = collections.namedtuple("sort", ("values", "indices"), module=__name__)
topk = collections.namedtuple("topk", ("values", "indices"), module=__name__)
median = collections.namedtuple("median", ("values", "indices"), module=__name__)
