"""float32 2-D convolutions by oneDNN (retrograd/_onednn/library.py): forward, dL/dx
(backward data) and dL/dW with dL/db (backward weights), for any stride, padding (each side
its own), dilation and groups, depthwise included. The NumPy reference is Conv2d's own path
(retrograd/ops/conv.py, conv2d_reference_backward); the tests compare the two.

Each primitive works in the layout it chooses (channels in blocks of 16, as a rule: the
"format any" of oneDNN), so every call reorders its NCHW inputs into that layout and its
result back, as PyTorch's CPU convolutions do; a reorder is skipped where the chosen layout is
the plain one. A ``Plan`` holds the primitives of one geometry (shapes, stride, padding,
dilation, groups, with or without bias), made on first use (oneDNN compiles its kernels
then) and kept in an LRU cache of PLANS_KEPT geometries. A geometry oneDNN does not implement
gives None, and the caller takes its own path.

oneDNN's dilation counts the gaps between taps: PyTorch's dilation d is oneDNN's d - 1.
"""

import functools
import threading
from collections import OrderedDict

import numpy as np

from retrograd._onednn.library import OneDNNError, dims, empty, load, usable

__all__ = ["plan_for", "usable", "PLANS_KEPT"]

PLANS_KEPT = 64
_FORWARD_TRAINING = 64          # dnnl_forward_training
_CONVOLUTION_DIRECT = 1         # dnnl_convolution_direct
_PLANS = OrderedDict()
_LOCK = threading.Lock()


class _Step:
    """One primitive with the reorders around it: ``inputs`` {argument: (user descriptor,
    chosen descriptor)} reordered in, ``outputs`` likewise reordered out."""

    def __init__(self, library, desc, inputs, outputs):
        self.library, self.primitive = library, library.primitive(desc)
        self.implementation = library.implementation(desc)
        self.slots = {arg: _Slot(library, user, chosen, arg in outputs)
                      for arg, (user, chosen) in {**inputs, **outputs}.items()}
        memories = {arg: slot.memory for arg, slot in self.slots.items()}
        scratchpad = library.queried_desc(desc, "scratchpad")
        self.scratchpad = None
        if scratchpad and library.size(scratchpad):
            memories["scratchpad"] = library.memory(scratchpad)
            self.scratchpad = (scratchpad, memories["scratchpad"])
        # the arguments hold raw handles: the memory objects stay referenced with them
        self.memories, self.arguments = memories, library.arguments(memories)
        self._lock = threading.Lock()

    def run(self, arrays, ready=None):
        """arrays: {argument: C-contiguous float32 array in the user's layout}; the outputs
        among them are written. ready: {argument: (layout, buffer)} of inputs already in a
        layout, used as they are where it is the one this primitive chose. Returns the
        inputs it reordered, as ``ready`` takes them."""
        ready = ready or {}
        library = self.library
        with self._lock:
            for arg, slot in self.slots.items():
                slot.bring_in(arrays[arg], ready.get(arg))
            scratchpad = None           # kept referenced until the primitive has run
            if self.scratchpad is not None:
                scratchpad = empty(library, self.scratchpad[0])
                library.bind(self.scratchpad[1], scratchpad)
            library.execute(self.primitive, self.arguments)
            for slot in self.slots.values():
                slot.send_out()
            library.wait()
            reordered = {arg: (slot.chosen, slot.buffer) for arg, slot in self.slots.items()
                         if not slot.is_output and not slot.same}
            for slot in self.slots.values():
                slot.buffer = None
            del scratchpad
            return reordered


class _Slot:
    """An argument of a primitive: the user's memory and, where the primitive chose another
    layout, a buffer in that layout and the reorder between them. ``memory`` is the one the
    primitive sees."""

    def __init__(self, library, user, chosen, is_output):
        self.library, self.is_output = library, is_output
        self.same = library.same(user, chosen)
        self.user_memory = self.memory = library.memory(user)
        if not self.same:
            self.chosen, self.memory = chosen, library.memory(chosen)
            ends = ((chosen, self.memory), (user, self.user_memory))   # source, target
            (source, source_memory), (target, target_memory) = \
                ends if is_output else ends[::-1]
            self.reorder = library.reorder(source, target)
            self.reorder_arguments = library.arguments({"src": source_memory,
                                                        "dst": target_memory})
        self.buffer = None

    def bring_in(self, array, ready=None):
        """Binds the user's array, and for another chosen layout a buffer in it (``ready``'s,
        when it is in that layout; else a new one, reordered into for an input)."""
        library = self.library
        library.bind(self.user_memory, array)
        if self.same:
            return
        reuse = ready is not None and library.same(ready[0], self.chosen)
        self.buffer = ready[1] if reuse else empty(library, self.chosen)
        library.bind(self.memory, self.buffer)
        if not self.is_output and not reuse:
            library.execute(self.reorder, self.reorder_arguments)

    def send_out(self):
        if self.is_output and not self.same:
            self.library.execute(self.reorder, self.reorder_arguments)


class Plan:
    """The oneDNN primitives of one convolution geometry; backward steps made on first use."""

    def __init__(self, library, x_shape, w_shape, out_size, has_bias, stride, padding,
                 dilation, groups):
        self.library, self.x_shape, self.w_shape = library, tuple(x_shape), tuple(w_shape)
        o, cg, kh, kw = w_shape
        (top, bottom), (left, right) = padding
        self.y_shape = (x_shape[0], o) + tuple(out_size)
        self.weight_view = (groups, o // groups, cg, kh, kw) if groups > 1 else w_shape
        self.geometry = (dims(stride), dims([d - 1 for d in dilation]), dims((top, left)),
                         dims((bottom, right)))
        self.x_desc = library.plain_desc(x_shape)
        self.w_desc = library.plain_desc(self.weight_view)
        self.y_desc = library.plain_desc(self.y_shape)
        self.b_desc = library.plain_desc((o,))
        self.any = {name: library.any_desc(shape) for name, shape in
                    (("x", x_shape), ("w", self.weight_view), ("y", self.y_shape))}
        self.forward_desc = library.primitive_desc(
            "dnnl_convolution_forward_primitive_desc_create", library.engine.value,
            _FORWARD_TRAINING, _CONVOLUTION_DIRECT, self.any["x"].value, self.any["w"].value,
            self.b_desc.value if has_bias else None, self.any["y"].value, *self.geometry,
            library.user_scratchpad.value)
        chosen = functools.partial(library.queried_desc, self.forward_desc)
        inputs = {"src": (self.x_desc, chosen("src")),
                  "weights": (self.w_desc, chosen("weights"))}
        if has_bias:
            inputs["bias"] = (self.b_desc, self.b_desc)
        self.forward_step = _Step(library, self.forward_desc, inputs,
                                  {"dst": (self.y_desc, chosen("dst"))})
        self.has_bias = has_bias
        # the backward descriptors now, so that a geometry is taken whole or not at all; their
        # primitives (oneDNN's compiled kernels) on first use
        self.data_desc = library.primitive_desc(
            "dnnl_convolution_backward_data_primitive_desc_create", library.engine.value,
            _CONVOLUTION_DIRECT, self.any["x"].value, self.any["w"].value, self.any["y"].value,
            *self.geometry, self.forward_desc.value, library.user_scratchpad.value)
        self.weights_desc = library.primitive_desc(
            "dnnl_convolution_backward_weights_primitive_desc_create", library.engine.value,
            _CONVOLUTION_DIRECT, self.any["x"].value, self.any["w"].value,
            self.b_desc.value if has_bias else None, self.any["y"].value, *self.geometry,
            self.forward_desc.value, library.user_scratchpad.value)
        self._data_step = self._weights_step = None

    def forward(self, x, weight, bias):
        """y = conv2d(x, W) + b."""
        y = np.empty(self.y_shape, np.float32)
        arrays = {"src": x, "weights": weight.reshape(self.weight_view), "dst": y}
        if self.has_bias:
            arrays["bias"] = bias
        self.forward_step.run(arrays)
        return y

    def backward(self, grad_y, x, weight):
        """(dL/dx, dL/dW, dL/db): dL/dx (backward data, the transposed convolution of dL/dy
        with W) when W is given, dL/dW (backward weights: x's windows times dL/dy, summed over
        samples and positions) and dL/db (dL/dy summed; None without a bias) when x is.
        dL/dy is reordered once for both where they chose one layout."""
        grad_x = grad_w = grad_b = None
        reordered = None
        if weight is not None:
            grad_x = np.empty(self.x_shape, np.float32)
            reordered = self._data().run({"diff_dst": grad_y, "diff_src": grad_x,
                                          "weights": weight.reshape(self.weight_view)})
        if x is not None:
            grad_w = np.empty(self.weight_view, np.float32)
            arrays = {"src": x, "diff_dst": grad_y, "diff_weights": grad_w}
            if self.has_bias:
                grad_b = arrays["diff_bias"] = np.empty(self.y_shape[1], np.float32)
            self._weights().run(arrays, reordered)
            grad_w = grad_w.reshape(self.w_shape)
        return grad_x, grad_w, grad_b

    def _data(self):
        if self._data_step is None:
            chosen = functools.partial(self.library.queried_desc, self.data_desc)
            self._data_step = _Step(self.library, self.data_desc,
                                    {"diff_dst": (self.y_desc, chosen("diff_dst")),
                                     "weights": (self.w_desc, chosen("weights"))},
                                    {"diff_src": (self.x_desc, chosen("diff_src"))})
        return self._data_step

    def _weights(self):
        if self._weights_step is None:
            chosen = functools.partial(self.library.queried_desc, self.weights_desc)
            outputs = {"diff_weights": (self.w_desc, chosen("diff_weights"))}
            if self.has_bias:
                outputs["diff_bias"] = (self.b_desc, self.b_desc)
            self._weights_step = _Step(self.library, self.weights_desc,
                                       {"src": (self.x_desc, chosen("src")),
                                        "diff_dst": (self.y_desc, chosen("diff_dst"))},
                                       outputs)
        return self._weights_step


def plan_for(x_shape, w_shape, out_size, has_bias, stride, padding, dilation, groups):
    """The Plan of this geometry (out_size: the output's (Ho, Wo)), or None (oneDNN not
    installed, or not implementing it)."""
    key = (tuple(x_shape), tuple(w_shape), has_bias, tuple(stride),
           tuple(map(tuple, padding)), tuple(dilation), groups)
    with _LOCK:
        if key in _PLANS:
            _PLANS.move_to_end(key)
            return _PLANS[key]
    library = load()
    plan = None
    if library is not None:
        try:
            plan = Plan(library, x_shape, w_shape, out_size, has_bias, stride, padding,
                        dilation, groups)
        except OneDNNError:
            plan = None
    with _LOCK:
        _PLANS[key] = plan
        while len(_PLANS) > PLANS_KEPT:
            _PLANS.popitem(last=False)
    return plan
