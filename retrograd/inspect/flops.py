"""Count the FLOPs of a computation, forward and backward, from the ops' declared costs.

``with FlopCounter() as counter:`` around any forward and backward counts every op that ran,
by module path, op and phase (docs/cost-model.md gives the convention: FLOPs = 2 x MACs).
``counter.gemm_flops()`` is the part in matrix products, convolutions and attention, what
PyTorch's FlopCounterMode counts.

    >>> import retrograd as rg
    >>> layer = rg.nn.Linear(128, 256)
    >>> x = rg.randn(64, 128, requires_grad=True)
    >>> with FlopCounter() as counter:
    ...     layer(x).sum().backward()
    >>> counter.gemm_flops("forward"), counter.gemm_flops("backward")  # 2*64*128*256 per GEMM
    (4194304, 8388608)
"""

import collections

from retrograd.autograd.cost import declared_cost
from retrograd.autograd.observer import ObserverBlock
from retrograd.inspect._calls import CallObserver

__all__ = ["FlopCounter"]


class FlopCounter(CallObserver, ObserverBlock):
    """Counts FLOPs and bytes per (module path, op, phase); see the module docstring.

    ``counts``: {(module_path, op name, phase): [calls, flops, gemm_flops, bytes]}, phase
    "forward" or "backward" (backward rows are named after the forward op, e.g. "MatMul", and
    carry the module path of the forward call that created them). ``uncounted``: {op name:
    calls} of ops that declare no cost (a user's own Function), left out of every total.
    """

    def __init__(self):
        self.counts = collections.defaultdict(lambda: [0, 0, 0, 0])
        self.uncounted = collections.Counter()   # {op name: calls} of ops without a cost

    def on_call(self, call, node, module_path):
        cost = declared_cost(call)
        name = call.op.__name__
        if cost is None:
            self.uncounted[name] += 1
            return
        self._add((module_path, name, "forward"), cost.flops, cost.gemm_flops,
                  cost.bytes_read + cost.bytes_written)
        if node is not None:
            node._counted_cost = (module_path, name, cost)

    def after_backward(self, node, grad_outputs, grad_inputs):
        counted = getattr(node, "_counted_cost", None)
        if counted is None:
            return
        module_path, name, cost = counted
        self._add((module_path, name, "backward"), cost.backward_flops, cost.backward_gemm_flops,
                  cost.backward_bytes_read + cost.backward_bytes_written)

    def _add(self, key, flops, gemm, nbytes):
        row = self.counts[key]
        row[0] += 1
        row[1] += flops
        row[2] += gemm
        row[3] += nbytes

    def _total(self, column, phase):
        return sum(row[column] for key, row in self.counts.items()
                   if phase is None or key[2] == phase)

    def total_flops(self, phase=None):
        """All FLOPs counted (of one phase: "forward" or "backward")."""
        return self._total(1, phase)

    def gemm_flops(self, phase=None):
        """The FLOPs of matrix products, convolutions and attention (of one phase)."""
        return self._total(2, phase)

    def by_op(self, phase=None):
        """{op name: FLOPs}, over every module (of one phase)."""
        totals = collections.Counter()
        for (_, name, row_phase), row in self.counts.items():
            if phase is None or row_phase == phase:
                totals[name] += row[1]
        return dict(totals)
