"""The op protocol: ``Function`` (forward/backward on raw arrays) and the graph nodes.

Calling ``SomeOp.apply(*inputs, **attrs)`` runs ``forward`` on the inputs' arrays and, when any
input requires grad (and grad mode is on), makes the ``SomeOp`` instance itself the graph node
(``ctx``) of the outputs: it remembers one edge per input, the inputs' shapes and dtypes, and
what ``forward`` saved for ``backward``.

Saved values: ``ctx.save_for_backward`` accepts only inputs and outputs of the op (or None),
so that for ``create_graph=True`` they can be handed back as Tensors connected to the graph.
Other values that backward needs (masks, shapes, index arrays) are constants: store them as
attributes of ``ctx``. An op whose backward is raw-array only (a fused kernel) sets
``once_differentiable = True``; it may then save any array, and differentiating its backward
raises an error that names it. Each saved value is a ``SavedValue`` that names what it kept.

Every recorded node also keeps the module whose forward made it (``node.module_path``), and
with observers on (anomaly mode, the tools) ``apply`` runs through the observer slot
(``autograd/observer.py``).
"""

import weakref

import numpy as np

from retrograd._quiet import enter as _quiet_enter
from retrograd._quiet import leave as _quiet_leave
from retrograd.autograd.cost import Cost
from retrograd.autograd.grad_mode import STATE
from retrograd.autograd.observer import apply_observed
from retrograd.autograd.tensor_io import adapt as adapt_to_tensors
from retrograd.dtypes import _FLOATING_NUMPY as _FLOATING
from retrograd.dtypes import is_floating
from retrograd.tensor import Tensor, make_tensor

__all__ = ["Node", "Function", "AccumulateGrad", "RemovableHandle", "saved_tensors_hooks",
           "SavedValue", "PackedValue", "edge_of", "guard_double_backward"]

_new_object = object.__new__


class RemovableHandle:
    """Returned by ``register_*hook``; ``remove()`` (or leaving a ``with`` block) unregisters
    the hook.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> handle = x.register_hook(lambda grad: grad * 10)
        >>> (x * x).sum().backward()
        >>> handle.remove()
        >>> x.grad
        tensor([20., 40.])
    """

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Node:
    """A vertex of the backward graph.

    ``next_functions``: one ``(node, output_nr)`` pair per input (``(None, 0)`` for inputs
    that need no gradient), like PyTorch's. ``name()`` is the short op label that drawings
    and error messages use; ``module_path`` the module whose forward made the node;
    ``creation_site`` the user's line that made it (filled in anomaly mode).
    """

    _edges = ()
    _pre_hooks = None          # hooks on this node's gradient outputs: fn(grad_outputs)
    _post_hooks = None         # fn(grad_inputs, grad_outputs)
    _tensor_hooks = None       # {output_nr: [fn(grad)]}: hooks of non-leaf output tensors
    _retained = None           # {output_nr: weakref to the output tensor}: retain_grad()
    _module_scope = None       # the module whose forward made the node (see module_path)
    _packed_attributes = None  # arrays kept as ctx attributes, packed by saved_tensors_hooks
    creation_site = None

    @classmethod
    def name(cls):
        return cls.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"

    @property
    def module_path(self):
        """The path of the module whose forward created this node, as in named_modules()
        (``"layers.1.0.conv2"``; ``""`` for the outermost module), or None when it was made
        outside every module's forward."""
        scope = self._module_scope
        return scope.path if scope is not None else None

    @property
    def next_functions(self):
        return tuple(e if e is not None else (None, 0) for e in self._edges)

    def register_hook(self, hook):
        """hook(grad_inputs, grad_outputs) runs after this node's backward: the gradients it
        computed for its inputs and those it received, as tuples of Tensors (None where
        missing). It may return a tuple of replacements for grad_inputs (same shapes)."""
        if self._post_hooks is None:
            self._post_hooks = []
        self._post_hooks.append(hook)
        return RemovableHandle(self._post_hooks, hook)

    def register_prehook(self, hook):
        """hook(grad_outputs) runs before this node's backward, after the hooks of its output
        tensors; it sees a tuple of Tensors and may return a tuple of replacements."""
        if self._pre_hooks is None:
            self._pre_hooks = []
        self._pre_hooks.append(hook)
        return RemovableHandle(self._pre_hooks, hook)

    def _add_tensor_hook(self, output_nr, hook):
        if self._tensor_hooks is None:
            self._tensor_hooks = {}
        hooks = self._tensor_hooks.setdefault(output_nr, [])
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def _retain_output(self, output_nr, tensor):
        if self._retained is None:
            self._retained = {}
        self._retained[output_nr] = weakref.ref(tensor)


class AccumulateGrad(Node):
    """The node of a leaf tensor that requires grad: backward adds into ``variable.grad``."""

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "AccumulateGrad"


def edge_of(t):
    """The (node, output_nr) pair that receives the gradient of tensor ``t``."""
    fn = t.grad_fn
    if fn is not None:
        return (fn, t._output_nr)
    ref = t._grad_accumulator
    acc = ref() if ref is not None else None
    if acc is None:
        acc = AccumulateGrad(t)
        t._grad_accumulator = weakref.ref(acc)
    return (acc, 0)


class saved_tensors_hooks:
    """Context manager: ``pack(tensor) -> obj`` runs when an op saves a tensor for backward,
    ``unpack(obj) -> tensor`` when backward reads it. Used for checkpointing, offloading,
    memory accounting and low-precision storage. Nested contexts: the innermost applies.
    The graph keeps only what ``pack`` returned, not the saved array itself.

    Example:
        >>> import retrograd as rg
        >>> sizes = []
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> with rg.autograd.saved_tensors_hooks(lambda t: sizes.append(t.nbytes) or t,
        ...                                      lambda t: t):
        ...     y = (x * x).exp()  # Mul saves x twice, Exp saves its output
        >>> sizes
        [8, 8, 8]
    """

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self):
        STATE.saved_tensors_hooks.append((self.pack_hook, self.unpack_hook))
        return self

    def __exit__(self, *exc):
        STATE.saved_tensors_hooks.pop()
        return False


class Function(Node):
    """Base class of every differentiable op (see the module docstring).

    Subclasses define ``forward(ctx, *arrays, **attrs) -> array or tuple of arrays`` and
    ``backward(ctx, *grad_outputs) -> gradient or tuple of gradients, one per input``.
    Class flags: ``once_differentiable`` (raw-array backward only), ``is_view`` (the output
    shares memory with input 0; ``forward`` may also set ``ctx.is_view``).

    Example:
        >>> import retrograd as rg
        >>> class Cube(rg.autograd.Function):
        ...     '''y = x^3.  dL/dx = dL/dy * 3 x^2.  Saves: x.'''
        ...     @staticmethod
        ...     def forward(ctx, x):
        ...         ctx.save_for_backward(x)
        ...         return x ** 3
        ...     @staticmethod
        ...     def backward(ctx, grad_out):
        ...         (x,) = ctx.saved_tensors
        ...         return grad_out * 3.0 * x * x
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> y = Cube.apply(x)
        >>> y.grad_fn
        <CubeBackward>
        >>> y.sum().backward()
        >>> x.grad
        tensor([ 3., 12.])
    """

    once_differentiable = False
    is_view = False
    moves_data = None          # why the op does no arithmetic (a view, a copy, a gather), if so
    materialize_grads = True
    _to_save = None
    _saved = None
    _freed = False
    _non_differentiable = None
    _tensor_io = False         # a PyTorch-style Function running on Tensors (tensor_io.py)

    def __init_subclass__(cls, **kwargs):
        """A Function defined outside retrograd may be written on Tensors, PyTorch's way:
        its forward and backward are wrapped to find out on their first call
        (autograd/tensor_io.py)."""
        super().__init_subclass__(**kwargs)
        if not cls.__module__.startswith("retrograd."):
            adapt_to_tensors(cls)

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must define forward(ctx, *arrays)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(f"{type(ctx).__name__} has no backward rule")

    @staticmethod
    def cost(call):
        """The Cost (FLOPs, bytes, formula) of one call, an OpCall: see autograd/cost.py."""
        raise NotImplementedError(f"{call.op.__name__} declares no cost (autograd/cost.py)")

    # ---- what forward may call on ctx ----
    def save_for_backward(self, *arrays):
        """Keep inputs or outputs of this op (or None) for backward."""
        self._to_save = arrays

    def mark_non_differentiable(self, *outputs):
        """Outputs (arrays returned by forward, or Tensors in a PyTorch-style Function) that
        never get a gradient."""
        self._non_differentiable = tuple(id(o._data if isinstance(o, Tensor) else o)
                                         for o in outputs)

    def set_materialize_grads(self, value):
        """Whether missing output gradients are passed to backward as zeros (default) or None."""
        self.materialize_grads = bool(value)

    @property
    def saved_tensors(self):
        """The saved values: arrays in a plain backward, Tensors when the graph of the
        backward itself is recorded (``create_graph=True``)."""
        saved = self._saved
        if saved is None:
            if self._freed:
                raise RuntimeError(
                    f"{self.name()}: trying to backward through the graph a second time (or to "
                    f"read saved tensors after they were freed). Saved values are freed after "
                    f"backward; call backward(retain_graph=True) the first time to keep them.")
            # forward ran outside apply() (an op tested alone): hand back what it saved
            return list(self._to_save) if self._to_save is not None else []
        if not STATE.grad_enabled or self.once_differentiable:
            arrays = [_unpack_array(self, value) for value in saved]
            if self._tensor_io:  # a PyTorch-style Function gets Tensors (tensor_io.py)
                return [None if a is None else make_tensor(a) for a in arrays]
            return arrays
        return [_unpack(self, value, True) for value in saved]

    # ---- running the op ----
    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run forward on the inputs' arrays; record the node when a gradient is needed.
        This is the hot path of every op: one loop over the inputs, no helper calls (with
        observers on, see autograd/observer.py, it runs inside apply_observed)."""
        if STATE.observers:
            return apply_observed(cls, cls.apply, inputs, attrs)
        grad_on = STATE.grad_enabled
        arrays, needs, edges, meta = [], [], [], []
        requires = False
        for t in inputs:
            if isinstance(t, Tensor):
                array = t._data
                arrays.append(array)
                if grad_on and t._requires_grad:
                    requires = True
                    needs.append(True)
                    fn = t.grad_fn
                    edges.append((fn, t._output_nr) if fn is not None else edge_of(t))
                    meta.append((array.shape, array.dtype))
                    continue
            else:
                arrays.append(t)
            needs.append(False)
            edges.append(None)
            meta.append(None)
        ctx = _new_object(cls)
        ctx.needs_input_grad = tuple(needs)
        token = _quiet_enter()  # IEEE results (inf, nan) without NumPy warnings: _quiet.py
        try:
            out = cls.forward(ctx, *arrays, **attrs)
        finally:
            _quiet_leave(token)
        if not requires:
            return _wrap_outputs(ctx, inputs, out, None)
        ctx._edges = edges
        ctx._input_meta = meta
        ctx._module_scope = STATE.module_scope
        if type(out) is np.ndarray and ctx._non_differentiable is None:
            floating = out.dtype in _FLOATING
            outputs = make_tensor(out, floating, ctx if floating else None, 0)
            if ctx.is_view:
                _link_view(outputs, inputs[0], True)
        else:
            outputs = _wrap_outputs(ctx, inputs, out, ctx)
            if type(outputs) is tuple:
                ctx._output_meta = tuple((o._data.shape, o._data.dtype, o._requires_grad)
                                         for o in outputs)
        if ctx._to_save is not None:
            ctx._saved = _save_all(ctx, inputs, arrays, out, outputs)
            ctx._to_save = None
        if STATE.saved_tensors_hooks:
            _pack_attributes(ctx, STATE.saved_tensors_hooks[-1])
        return outputs

    def _free_saved(self):
        if self._saved is not None:
            self._saved = None
            self._freed = True
        if self._packed_attributes is not None:   # the unpacked arrays go with the values
            for name, _ in self._packed_attributes:
                self.__dict__.pop(name, None)
            self._packed_attributes = None

    def _unpack_attributes(self):
        """Put the arrays that saved_tensors_hooks packed back as ctx attributes (the engine
        calls this before the node's backward)."""
        for name, packed in self._packed_attributes:
            setattr(self, name, _unpack_hooked(self, packed, False))


def _as_array(out):
    return out if type(out) is np.ndarray else np.asarray(out)


def _wrap_outputs(ctx, inputs, out, grad_fn):
    """Wrap forward's array(s) in Tensors; views share input 0's version counter."""
    non_diff = ctx._non_differentiable
    if type(out) is tuple:
        tensors = tuple(_wrap_one(ctx, inputs, _as_array(o), grad_fn, i, non_diff)
                        for i, o in enumerate(out))
        return tensors
    return _wrap_one(ctx, inputs, _as_array(out), grad_fn, 0, non_diff)


def _wrap_one(ctx, inputs, array, grad_fn, output_nr, non_diff):
    differentiable = (grad_fn is not None and is_floating(array.dtype)
                      and (non_diff is None or id(array) not in non_diff))
    t = make_tensor(array, differentiable, grad_fn if differentiable else None, output_nr)
    if ctx.is_view and isinstance(inputs[0], Tensor):
        _link_view(t, inputs[0], grad_fn is not None)
    return t


def _link_view(view, source, recorded):
    """A view shares its base's version counter; recorded views are remembered (weakly) by
    the base so that an in-place op that rebases the base's history can refuse."""
    base = source._base if source._base is not None else source
    view._version = base._version
    view._base = base
    if recorded and base.grad_fn is not None:  # leaves that require grad never rebase
        views = base._views
        if views is None:
            views = base._views = []
        elif len(views) >= 32:
            views[:] = [ref for ref in views if ref() is not None]
        views.append(weakref.ref(view))


class SavedValue:
    """One value that forward kept for backward (what ``ctx.save_for_backward`` recorded).

    kind: ``INPUT`` (value: the input Tensor), ``OUTPUT`` (value: the output array),
    ``CONSTANT`` (value: an array that is neither, kept only by once-differentiable ops, or
    a Python number) or ``PACKED`` (value: what a saved_tensors_hooks ``pack`` returned; see
    PackedValue). ``version`` is the tensor's shared version counter (a one-element list)
    and ``saved_version`` its value at save time: backward refuses the value if they differ.
    ``position`` is the input or output number, for error messages.
    """

    __slots__ = ("kind", "value", "version", "saved_version", "position")

    def __init__(self, kind, value, version=None, saved_version=0, position=0):
        self.kind, self.value, self.position = kind, value, position
        self.version, self.saved_version = version, saved_version

    def is_stale(self):
        """True when the tensor was changed in place after it was saved."""
        return self.version is not None and self.version[0] != self.saved_version

    def __repr__(self):
        return f"<SavedValue {_KIND_NAMES[self.kind]} {self.position}>"


class PackedValue(SavedValue):
    """A value saved under saved_tensors_hooks: ``value`` is what pack() returned, and
    ``unpack`` turns it back into a Tensor. ``packed_kind`` is what the value was (INPUT,
    OUTPUT or CONSTANT), and ``link`` how to reconnect the unpacked tensor to the graph: the
    leaf tensor or (node, output_nr) of a saved input that requires grad, else None. The
    saved array itself is not kept (otherwise packing to float16 or offloading would free
    no memory)."""

    __slots__ = ("unpack", "packed_kind", "link")


INPUT, OUTPUT, CONSTANT, PACKED = 0, 1, 2, 3
_KIND_NAMES = ("input", "output", "constant", "packed")


def _save_all(ctx, inputs, arrays, out, outputs):
    """The SavedValues of the arrays forward gave to save_for_backward: each is matched by
    identity against the op's inputs, then its outputs; any other array is a constant
    (allowed only in once-differentiable ops). ``out`` is what forward returned: NumPy turns
    0-d results into scalars (np.float64), which the output tensor wraps in a new array, so
    saved outputs are matched against both. One loop for all of them, with no call per
    value but the SavedValue: this runs for every recorded op."""
    saved = []
    for array in ctx._to_save:
        value = None
        if array is not None:
            for i, a in enumerate(arrays):
                if a is array:
                    t = inputs[i]
                    value = (SavedValue(INPUT, t, t._version, t._version[0], i)
                             if isinstance(t, Tensor) else SavedValue(CONSTANT, array))
                    break
            else:
                outs = outputs if type(outputs) is tuple else (outputs,)
                raw = out if type(out) is tuple else (out,)
                for k, o in enumerate(outs):
                    if o._data is array or raw[k] is array:
                        value = SavedValue(OUTPUT, o._data, o._version, o._version[0], k)
                        break
                else:
                    value = _saved_constant(ctx, array)
        saved.append(value)
    hooks = STATE.saved_tensors_hooks
    if hooks:  # Python numbers are never packed
        return [_pack_with_hook(ctx, v, hooks[-1])
                if v is not None and (v.kind != CONSTANT or type(v.value) is np.ndarray) else v
                for v in saved]
    return saved


def _pack_attributes(ctx, hook_pair):
    """Under saved_tensors_hooks, the arrays forward kept as ctx attributes (the inverse
    std of a norm, a dropout mask, attention probabilities) are packed like the saved values
    (PyTorch's hooks see every tensor kept for backward): checkpointing drops them too, and
    the engine unpacks them before the node's backward (Function._unpack_attributes)."""
    packed = []
    for name, value in list(vars(ctx).items()):
        if type(value) is np.ndarray:
            packed.append((name, _pack_with_hook(ctx, SavedValue(CONSTANT, value), hook_pair)))
            del ctx.__dict__[name]
    if packed:
        ctx._packed_attributes = packed


def _saved_constant(ctx, array):
    """An array that is neither an input nor an output: a constant of a once-differentiable
    op; any other op must keep it as a ctx attribute (see the module docstring)."""
    if not ctx.once_differentiable:
        raise TypeError(
            f"{type(ctx).__name__}.forward saved an array that is neither an input nor an "
            f"output of the op; keep constants as ctx attributes, or declare the op "
            f"once_differentiable")
    return SavedValue(CONSTANT, array)


def _pack_with_hook(ctx, saved, hook_pair):
    """The PackedValue of ``saved`` under saved_tensors_hooks (see PackedValue)."""
    pack, unpack = hook_pair
    packed = PackedValue(PACKED, None, saved.version, saved.saved_version, saved.position)
    packed.unpack, packed.packed_kind, packed.link = unpack, saved.kind, None
    if saved.kind == CONSTANT:  # an array outside autograd (e.g. a fused kernel's buffer)
        packed.value = pack(make_tensor(saved.value))
        return packed
    if saved.kind == INPUT:
        tensor = saved.value
        if tensor._requires_grad:
            # a leaf stays alive anyway (its AccumulateGrad node holds it); a non-leaf is
            # reconnected through its node, like the original tensor
            packed.link = tensor if tensor.grad_fn is None else (tensor.grad_fn,
                                                                 tensor._output_nr)
    else:
        tensor = make_tensor(saved.value, True, ctx, saved.position)
    packed.value = pack(tensor)
    return packed


def _check_version(ctx, saved, kind):
    if saved.is_stale():
        raise RuntimeError(
            f"{ctx.name()}: a tensor saved for backward ({_KIND_NAMES[kind]} {saved.position}) "
            f"was modified by an in-place operation: it is at version {saved.version[0]}, "
            f"expected version {saved.saved_version}. Use an out-of-place op (e.g. x = x + 1 "
            f"instead of x += 1), or clone() the tensor before changing it.")


def _unpack_array(ctx, saved):
    """The fast path of a plain backward: the saved array, after the version check."""
    if saved is None:
        return None
    kind = saved.kind
    if kind == INPUT:
        if saved.version[0] != saved.saved_version:
            _check_version(ctx, saved, kind)
        return saved.value._data
    if kind == OUTPUT:
        if saved.version[0] != saved.saved_version:
            _check_version(ctx, saved, kind)
        return saved.value
    if kind == CONSTANT:
        return saved.value
    return _unpack_hooked(ctx, saved, False)


def _unpack(ctx, saved, as_tensors):
    if saved is None:
        return None
    kind = saved.kind
    if kind == CONSTANT:
        return saved.value
    if kind == PACKED:
        return _unpack_hooked(ctx, saved, as_tensors)
    _check_version(ctx, saved, kind)
    if kind == INPUT:
        return saved.value if as_tensors else saved.value._data
    if as_tensors:
        return make_tensor(saved.value, True, ctx, saved.position)
    return saved.value


def _unpack_hooked(ctx, packed, as_tensors):
    kind, link = packed.packed_kind, packed.link
    _check_version(ctx, packed, kind)
    t = packed.unpack(packed.value)
    if not isinstance(t, Tensor):
        raise TypeError(f"{ctx.name()}: the unpack hook of saved_tensors_hooks must return a "
                        f"Tensor, got {type(t).__name__}")
    if not as_tensors or kind == CONSTANT:
        return t._data
    if kind == OUTPUT:
        return make_tensor(t._data, True, ctx, packed.position)
    if link is None or t is link:
        return t
    if isinstance(link, Tensor):  # a leaf: a new tensor that accumulates into the leaf
        relinked = make_tensor(t._data, True)
        relinked._grad_accumulator = link._grad_accumulator
        return relinked
    return make_tensor(t._data, True, link[0], link[1])


def guard_double_backward(node, grad_outputs, grad_inputs):
    """The results of a once-differentiable backward run under create_graph=True.

    They depend on the op's inputs and on the incoming gradients, so they become outputs of a
    guard node wired to both, whose backward raises an error naming the op: differentiating
    them again can never silently treat them as constants.
    """
    present = [getattr(g, "_data", g) for g in grad_inputs if g is not None]
    if not present:
        return tuple(grad_inputs)
    guard = _new_object(_DoubleBackwardError)
    guard.op = node.name()
    guard._edges = [e for e in node._edges if e is not None]
    guard._edges += [edge_of(g) for g in grad_outputs
                     if isinstance(g, Tensor) and g._requires_grad]
    guard.needs_input_grad = (True,) * len(guard._edges)
    guard._output_meta = tuple((p.shape, p.dtype, True) for p in present)
    guard.creation_site = node.creation_site
    guard._module_scope = node._module_scope
    outputs = iter([make_tensor(p, True, guard, k) for k, p in enumerate(present)])
    return tuple(next(outputs) if g is not None else None for g in grad_inputs)


class _DoubleBackwardError(Function):
    """Stands for the backward of a once-differentiable op inside a recorded graph."""

    moves_data = "stands for a backward that cannot be differentiated: computes nothing"

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(f"{ctx.op}: this op's backward is not differentiable (it is a fused "
                           f"raw-array kernel), so it cannot be differentiated twice "
                           f"(create_graph=True)")

    @staticmethod
    def cost(call):
        """Nothing: its backward raises."""
        return Cost(0, 0, f"{call.op.__name__}: 0")
