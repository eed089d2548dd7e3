"""What the tools record of each op call: its OpCall (shapes, dtypes, attributes, which inputs
need a gradient) and the bytes its graph node keeps for backward. Shared by the FLOP counter,
the profiler and the memory ledger, which all watch ops through the observer slot."""

import numpy as np

from retrograd.autograd.cost import ArrayInfo, OpCall
from retrograd.autograd.function import CONSTANT, INPUT, OUTPUT, PACKED
from retrograd.autograd.observer import OpObserver
from retrograd.tensor import Tensor

__all__ = ["CallObserver", "describe_call", "call_parts", "as_op_call", "saved_arrays",
           "saved_nbytes", "info_of"]


def info_of(value):
    """ArrayInfo of a Tensor or array; any other value unchanged."""
    if isinstance(value, Tensor):
        data = value._data
        return ArrayInfo(data.shape, data.dtype)
    if isinstance(value, np.ndarray):
        return ArrayInfo(value.shape, value.dtype)
    return value


def describe_call(op, inputs, attrs, outputs, node):
    """The OpCall of one call of ``op`` (``node``: the graph node it recorded, or None)."""
    return as_op_call(call_parts(op, inputs, attrs, outputs, node))


def call_parts(op, inputs, attrs, outputs, node):
    """The fields of describe_call's OpCall as a tuple, arrays as plain (shape, dtype)
    tuples and no attributes as None (so that the tuple can be hashed), for tools that
    record thousands of calls and make OpCalls only when asked (``as_op_call``; ``op`` is put
    in as given: the profiler passes an index). One pass over the inputs and the outputs,
    and the fewest objects: it runs for every profiled op."""
    infos = []
    for value in inputs:
        if isinstance(value, Tensor):
            data = value._data
            infos.append((data.shape, data.dtype))
        elif isinstance(value, np.ndarray):
            infos.append((value.shape, value.dtype))
        else:
            infos.append(value)
    if type(outputs) is tuple:
        outs = tuple([(o._data.shape, o._data.dtype) for o in outputs])
    else:
        data = outputs._data
        outs = ((data.shape, data.dtype),)
    if node is None:
        return op, tuple(infos), attrs or None, outs, (False,) * len(infos), 0
    return op, tuple(infos), attrs or None, outs, node.needs_input_grad, saved_nbytes(node)


def as_op_call(parts, op=None):
    """The OpCall of call_parts' tuple (``op``: the op class, when parts hold a stand-in)."""
    recorded_op, inputs, attrs, outputs, needs, saved = parts
    return OpCall(recorded_op if op is None else op, tuple(_as_info(i) for i in inputs),
                  attrs or {}, tuple(ArrayInfo(*o) for o in outputs), needs, saved)


def _as_info(value):
    if type(value) is tuple and len(value) == 2 and isinstance(value[1], np.dtype):
        return ArrayInfo(*value)
    return value


def saved_arrays(node):
    """The arrays ``node`` keeps for backward, as (kind, position, array) with kind 'input',
    'parameter' (an input that is a leaf requiring grad), 'output', 'constant', 'packed' or
    'attribute' (an array the forward set on ctx: its position is the attribute's name).
    Saved values freed by backward are gone; attributes live as long as the node."""
    found = []
    for saved in getattr(node, "_saved", None) or ():
        if saved is None:
            continue
        value = saved.value
        if saved.kind == PACKED:
            value = value._data if isinstance(value, Tensor) else value
            kind = "packed"
        else:
            kind = {INPUT: "input", OUTPUT: "output", CONSTANT: "constant"}[saved.kind]
            if saved.kind == INPUT:
                if value.grad_fn is None and value._requires_grad:
                    kind = "parameter"   # a leaf that requires grad: resident anyway
                value = value._data
        if isinstance(value, np.ndarray):
            found.append((kind, saved.position, value))
    for name, value in vars(node).items():   # arrays the forward kept as ctx attributes
        if isinstance(value, np.ndarray):
            found.append(("attribute", name, value))
    for name, packed in node._packed_attributes or ():   # ... packed by saved_tensors_hooks
        if isinstance(packed.value, Tensor):
            found.append(("packed", name, packed.value._data))
        elif isinstance(packed.value, np.ndarray):
            found.append(("packed", name, packed.value))
    return found


def saved_nbytes(node):
    """Bytes of the arrays ``node`` keeps for backward (an array saved twice counts once).
    Runs for every profiled op: one loop, no list."""
    saved = getattr(node, "_saved", None)
    if not saved:
        return 0
    total, seen = 0, []
    for value in saved:
        if value is None:
            continue
        array = value.value
        if value.kind == INPUT:
            array = array._data
        elif value.kind == PACKED and isinstance(array, Tensor):
            array = array._data
        if isinstance(array, np.ndarray) and not any(a is array for a in seen):
            seen.append(array)
            total += array.nbytes
    return total


class CallObserver(OpObserver):
    """An observer that sees each op call as an OpCall: subclasses implement
    ``on_call(call, node, module_path)`` (forward) and may override ``after_backward``."""

    _attrs = None

    def before_forward(self, op, inputs, attrs):
        self._attrs = attrs
        return None

    def after_forward(self, op, node, inputs, outputs, module_path):
        call = describe_call(op, inputs, self._attrs or {}, outputs, node)
        self._attrs = None
        self.on_call(call, node, module_path)

    def on_call(self, call, node, module_path):
        raise NotImplementedError
