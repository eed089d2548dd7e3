"""The harness of the cost tests (test_cost_layers.py, test_cost_elementwise.py,
test_cost_reduce_shape.py): run an op under a recording observer to get its real OpCall,
then compare its declared Cost with brute-force counts (tests/flop_count.py) of a reference
written from the op's docstring, whose values must equal the op's."""

import numpy as np

import retrograd as rg
from retrograd.autograd.cost import cost_of
from retrograd.autograd.observer import observe
from retrograd.inspect._calls import CallObserver
from tests.flop_count import counted, counting

__all__ = ["Calls", "Gemm", "needed", "sum_to", "run", "check"]


class Calls(CallObserver):
    """Records the OpCall of every op run while it observes."""

    def __init__(self):
        self.calls = []

    def on_call(self, call, node, module_path):
        self.calls.append(call)


class Gemm:
    """Counts matrix products apart: ``gemm.mm(a, b)`` is ``a @ b``, its FLOPs added to
    ``gemm.flops`` instead of the enclosing tally."""

    def __init__(self):
        self.flops = 0

    def mm(self, a, b):
        with counting() as tally:
            y = np.matmul(a, b)
        self.flops += tally.flops
        return y


def needed(needs, parts):
    """{position: gradient} of the parts (position -> a function computing it) needed."""
    return {i: part() for i, part in parts.items() if needs[i]}


def sum_to(grad, shape):
    """The engine's unbroadcast (sum over broadcast axes), as counted reductions."""
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape)
                                      if s == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad


def run(op, inputs, needs, attrs, randn, every_output=False):
    """op.apply on inputs (arrays with a ``needs`` entry as Tensors, requiring grad where it
    is True; others as given) under a recording observer, then backward from random
    gradients (``randn(*shape)``) of the first output, or with ``every_output`` of every
    floating output. Returns (call, the outputs as arrays, gradients {position: array},
    the output gradients)."""
    args = [rg.tensor(a, requires_grad=bool(n)) if n is not None and a is not None else a
            for a, n in zip(inputs, needs)] + list(inputs[len(needs):])
    recorder = Calls()
    with observe(recorder):
        out = op.apply(*args, **attrs)
    (call,) = recorder.calls
    outs = out if isinstance(out, tuple) else (out,)
    outs = outs if every_output else outs[:1]
    floating = [o for o in outs if np.issubdtype(o.detach().numpy().dtype, np.floating)]
    grad_outs = [randn(*o.shape) for o in floating]
    if any(needs):
        rg.autograd.backward(floating, [rg.tensor(g) for g in grad_outs])
    grads = {i: args[i].grad.numpy() for i, n in enumerate(needs) if n}
    return call, [o.detach().numpy() for o in outs], grads, grad_outs


def check(op, inputs, needs, attrs, forward, backward, randn, every_output=False):
    """The declared Cost of one call equals the counted references: ``forward(counted
    inputs, gemm)`` returns the op's first output (a tuple of every output with
    ``every_output``), ``backward(counted dL/dy, gemm)`` (a list, one per floating output,
    with ``every_output``) the needed gradients {position: array}; their values equal the op's.
    Returns the Cost."""
    call, outs, grads, grad_outs = run(op, inputs, needs, attrs, randn, every_output)
    cost = cost_of(call)
    gemm = Gemm()
    with counting() as tally:
        expected = forward([counted(a) if isinstance(a, np.ndarray) else a for a in inputs],
                           gemm)
    assert (tally.flops + gemm.flops, gemm.flops) == (cost.flops, cost.gemm_flops), cost.formula
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(expected) == len(outs)
    for ours, theirs in zip(expected, outs):
        np.testing.assert_allclose(np.asarray(ours), theirs, rtol=1e-9, atol=1e-12)
    gemm = Gemm()
    counted_grads = [counted(g) for g in grad_outs]
    with counting() as tally:
        expected_grads = backward(counted_grads if every_output else counted_grads[0],
                                  gemm) if any(needs) else {}
    assert (tally.flops + gemm.flops, gemm.flops) == \
        (cost.backward_flops, cost.backward_gemm_flops), cost.formula
    assert sorted(expected_grads) == sorted(grads)
    for i, grad in grads.items():
        np.testing.assert_allclose(np.asarray(expected_grads[i]), grad, rtol=1e-8, atol=1e-10)
    return cost
