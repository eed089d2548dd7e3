"""The cost model: what one call of an op costs, in FLOPs and bytes, forward and backward.

Every ``Function`` in ``ops/`` declares its cost beside its forward and backward, as a
``cost(call)`` static method that returns a ``Cost`` for one call (``OpCall``: the shapes and
dtypes of the inputs and outputs, the attributes, which inputs need a gradient). The tools
(profiler, FLOP counter, memory ledger, checkpoint planner) read costs through ``cost_of``.

Convention (docs/cost-model.md): FLOPs = 2 x MACs for matrix products and convolutions; every
other elementary operation on one element (add, multiply, compare, select, exp, log, tanh,
sqrt, ...) is one FLOP; a reduction of n elements to one costs n - 1. Backward FLOPs count
only the gradients the call needs (``call.needs_input_grad``), as the op's backward computes
only those. ``gemm_flops`` is the part of the FLOPs spent in matrix products and convolutions
(bias additions excluded): the part PyTorch's FlopCounterMode counts.

Bytes: unless an op says otherwise, forward reads its array inputs and writes its outputs;
backward reads the output gradients and the saved values and writes the input gradients it
needs. Ops that only move data (views, copies, gathers) declare ``moves_data`` with the
reason; their FLOPs are zero and their bytes still count.

    >>> import numpy as np
    >>> from retrograd.ops.linalg import MatMul
    >>> call = OpCall(MatMul, (ArrayInfo((64, 128), np.dtype("float32")),
    ...                        ArrayInfo((128, 256), np.dtype("float32"))), {},
    ...               (ArrayInfo((64, 256), np.dtype("float32")),), (True, True))
    >>> c = cost_of(call)
    >>> c.formula
    'matmul (64x128)@(128x256): 2*m*n*k'
    >>> c.flops, c.backward_flops, c.bytes_read
    (4194304, 8388608, 163840)
"""

import dataclasses
from typing import NamedTuple

import numpy as np

__all__ = ["ArrayInfo", "OpCall", "Cost", "cost_of", "declared_cost", "shape_text",
           "reduction_flops", "unbroadcast_flops", "call_arg"]


class ArrayInfo(NamedTuple):
    """The shape and dtype of an array an op read or wrote (not the array: tools keep these
    for thousands of calls)."""

    shape: tuple
    dtype: np.dtype

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self):
        return self.size * self.dtype.itemsize


@dataclasses.dataclass
class OpCall:
    """One call of ``op``: ``inputs`` as passed to apply (arrays and Tensors as ArrayInfo,
    other values as given, None kept), keyword ``attrs``, ``outputs`` as ArrayInfo, and
    which inputs need a gradient. ``saved_nbytes``: bytes the call kept for backward (None
    when unknown)."""

    op: type
    inputs: tuple
    attrs: dict
    outputs: tuple
    needs_input_grad: tuple = ()
    saved_nbytes: int = None

    def arrays(self):
        """The inputs that are arrays (ArrayInfo), in order."""
        return [i for i in self.inputs if isinstance(i, ArrayInfo)]

    def needs(self, position):
        """True when input ``position`` needs a gradient."""
        needs = self.needs_input_grad
        return position < len(needs) and bool(needs[position])

    @property
    def any_grad(self):
        return any(self.needs_input_grad)


@dataclasses.dataclass(frozen=True)
class Cost:
    """The cost of one call: FLOPs forward and backward (the part in matrix products and
    convolutions in ``gemm_flops``), bytes read and written, and the formula as text with the
    call's shapes (``matmul (64x128)@(128x256): 2*m*n*k``). Bytes left as None take the
    defaults of the module docstring (``cost_of`` fills them in)."""

    flops: int
    backward_flops: int
    formula: str
    gemm_flops: int = 0
    backward_gemm_flops: int = 0
    bytes_read: int = None
    bytes_written: int = None
    backward_bytes_read: int = None
    backward_bytes_written: int = None


def cost_of(call):
    """The op's declared Cost of ``call``, with default bytes filled in. Raises
    NotImplementedError naming an op that declares no cost."""
    declared = call.op.cost(call)
    if not isinstance(declared, Cost):
        raise TypeError(f"{call.op.__name__}.cost returned {type(declared).__name__}, "
                        f"expected a Cost")
    arrays = call.arrays()
    out_bytes = sum(o.nbytes for o in call.outputs)
    defaults = {}
    if declared.bytes_read is None:
        defaults["bytes_read"] = sum(a.nbytes for a in arrays)
    if declared.bytes_written is None:
        defaults["bytes_written"] = out_bytes
    if declared.backward_bytes_read is None:
        saved = call.saved_nbytes if call.saved_nbytes is not None else 0
        defaults["backward_bytes_read"] = out_bytes + saved if call.any_grad else 0
    if declared.backward_bytes_written is None:
        defaults["backward_bytes_written"] = sum(
            i.nbytes for k, i in enumerate(call.inputs)
            if isinstance(i, ArrayInfo) and call.needs(k))
    return dataclasses.replace(declared, **defaults) if defaults else declared


def declared_cost(call):
    """cost_of(call), or None for an op that declares no cost (a user's own Function): tools
    report its FLOPs as unknown instead of failing."""
    try:
        return cost_of(call)
    except NotImplementedError:
        return None


def shape_text(info):
    """``64x128`` for an array of shape (64, 128); ``scalar`` for a 0-d array."""
    return "x".join(str(d) for d in info.shape) if info.shape else "scalar"


def reduction_flops(in_size, out_size):
    """A reduction of ``in_size`` elements to ``out_size`` results: in_size - out_size adds
    (zero for an empty input)."""
    return max(in_size - out_size, 0)


def unbroadcast_flops(grad_shape, input_shape):
    """The adds that sum a gradient of ``grad_shape`` back to a broadcast input's shape."""
    grad = ArrayInfo(tuple(grad_shape), np.dtype("float32"))
    target = ArrayInfo(tuple(input_shape), np.dtype("float32"))
    return reduction_flops(grad.size, target.size)


def call_arg(call, position, name, default=None):
    """An argument of ``call`` given by keyword (``name`` in attrs) or by ``position`` in the
    inputs; ``default`` when it was not passed."""
    if name in call.attrs:
        return call.attrs[name]
    return call.inputs[position] if position < len(call.inputs) else default
