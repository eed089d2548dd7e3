"""The memory ledger: what a training step keeps in memory, and why, op by op.

``with MemoryLedger(model, optimizer) as ledger:`` around a forward, backward and optimizer
step records every array an op keeps for backward (module path, op, which value, shape,
dtype, bytes), the gradients in flight between backward nodes, the parameter gradients and
optimizer state the step creates, and follows the total through the step:
``ledger.report()`` gives the saved values by module and op, the bytes by category, the
closed-form estimates of the model's Transformer and residual conv blocks beside what they
measured, the step's peak and when it happened, and the timeline.
``memory_report(model, x, target=y, loss_fn=F.cross_entropy, optimizer=opt)`` runs one
step under a ledger.

    >>> import retrograd as rg
    >>> model = rg.nn.Sequential(rg.nn.Linear(64, 128), rg.nn.ReLU(), rg.nn.Linear(128, 10))
    >>> x = rg.randn(32, 64)
    >>> with MemoryLedger(model) as ledger:
    ...     model(x).sum().backward()
    >>> report = ledger.report()
    >>> report.saved_bytes                   # x (32x64), the ReLU's output (32x128), twice f32
    24576
    >>> report.by_module()
    {'0': 8192, '1': 16384}
    >>> report.peak_phase
    'backward'

How the bytes are counted (docs/memory-model.md): an array counts once however many ops save
it, a saved view counts the whole array it views (that is what it keeps alive), and a saved
parameter (the model's, or without a model any leaf that requires grad) is not a saved
value: it is resident anyway. Values
are freed when the backward that reads them has run (not under ``retain_graph=True``, where
they stay). The total is the saved values, the gradients between nodes, the output of the op
that just ran and the parameter gradients created so far, on top of the resident bytes
(parameters, their existing gradients, optimizer state) counted when the ledger starts. NumPy
temporaries inside a kernel are not counted: the model is what the graph keeps, which the
tests check against tracemalloc's measured peak.
"""

import dataclasses
import weakref

import numpy as np

from retrograd.autograd.cost import declared_cost
from retrograd.autograd.function import PACKED, AccumulateGrad
from retrograd.autograd.observer import ObserverBlock
from retrograd.inspect._calls import CallObserver, describe_call, saved_arrays
from retrograd.inspect.memory_estimates import ESTIMATORS, estimate
from retrograd.inspect.render import format_bytes, text_table
from retrograd.nn.module import Module
from retrograd.tensor import Tensor
from retrograd.utils.checkpoint import CheckpointedValue, checkpoint_calls, owner_array

__all__ = ["MemoryLedger", "MemoryReport", "SavedValue", "memory_report"]


@dataclasses.dataclass(frozen=True)
class SavedValue:
    """One array kept for backward: the op and module that saved it first, which of the op's
    values it is ('input', 'output', 'constant' or 'packed', and its position), its shape,
    dtype and the bytes it keeps alive (the whole array a view looks into)."""

    module: str
    op: str
    kind: str
    position: int
    shape: tuple
    dtype: str
    nbytes: int


def _arrays(values):
    for value in values:
        if isinstance(value, Tensor):
            yield value._data
        elif isinstance(value, np.ndarray):
            yield value


class _Pool:
    """Arrays counted by the memory they own, each once: {id of owner: [bytes, holders]}.
    Keeps ids, never the arrays (the ledger must not keep alive what it measures)."""

    def __init__(self):
        self.entries, self.total = {}, 0

    def hold(self, array):
        """Count ``array`` (one more holder); returns its owner's (id, bytes) and whether it
        was not counted yet."""
        owner = owner_array(array)
        key = (id(owner), owner.nbytes)
        entry = self.entries.get(key[0])
        if entry is not None:
            entry[1] += 1
            return key, False
        self.entries[key[0]] = [owner.nbytes, 1]
        self.total += owner.nbytes
        return key, True

    def release(self, key):
        entry = self.entries.get(key[0])
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self.entries[key[0]]
            self.total -= entry[0]

    def release_array(self, array):
        owner = owner_array(array)
        self.release((id(owner), owner.nbytes))


class MemoryLedger(CallObserver, ObserverBlock):
    """Records what a forward, backward and optimizer step keep in memory (see the module
    docstring). ``model`` and ``optimizer`` (optional) give the resident bytes (parameters
    and buffers, gradients already allocated, optimizer state) and, for the model's
    Transformer and residual conv blocks, the closed-form estimates of memory_estimates.py."""

    def __init__(self, model=None, optimizer=None):
        self.model, self.optimizer = model, optimizer
        self.categories = _resident(model, optimizer)
        # Parameters are resident, not saved values: the model's (a saved view of one, as
        # attention's slices of in_proj_weight, included), or without a model every leaf
        # that requires grad (saved_arrays' 'parameter' kind).
        self._parameters = ({id(p._data) for p in model.parameters()} if model is not None
                            else None)
        self.resident = sum(self.categories.values())
        self.saved = []                       # SavedValue per array, in order of saving
        self.timeline = []                    # (phase, op or node name, module, total bytes)
        self.block_inputs = {}                # module path -> (module, input shape, itemsize)
        self._saved_pool, self._grads_pool = _Pool(), _Pool()
        self._held = {}                       # id(node) -> (owner id, bytes) of what it saved
        self._new_grads = 0                   # parameter gradients allocated by the backward
        self._new_state = 0                   # optimizer state allocated by its step
        self._last = None                     # the node whose backward ran last
        self._hooks = []
        # checkpointing: the values dropped in the forward (SavedValue, None once kept after
        # all) and the live ones by root id (-> (weak ref, index)), the arrays of the
        # recomputes while they live (root id -> (weak ref, bytes)), their FLOPs
        self._dropped, self._live_dropped = [], {}
        self._recomputed = {}
        self._recomputing = 0
        self.forward_flops = self.recompute_flops = 0
        self._calls_block = checkpoint_calls()
        self.checkpoint_calls = []
        self._inputs_held = []                # (CheckpointCall, pool keys of its inputs)

    def __enter__(self):
        self._hooks = [module.register_forward_pre_hook(self._block_input(path))
                       for path, module in _estimable_blocks(self.model)]
        self.checkpoint_calls = self._calls_block.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self._calls_block.__exit__(*exc)
        for handle in self._hooks:
            handle.remove()
        self._release_if_freed()
        return False

    def _block_input(self, path):
        def hook(module, args):
            if path not in self.block_inputs and args and isinstance(args[0], Tensor):
                data = args[0]._data
                self.block_inputs[path] = (module, data.shape, data.dtype.itemsize)
        return hook

    # ---- forward
    def after_forward(self, op, node, inputs, outputs, module_path):
        if self._recomputing:
            self._recomputed_call(op, node, inputs, outputs, module_path)
        else:
            super().after_forward(op, node, inputs, outputs, module_path)

    def on_call(self, call, node, module_path):
        if len(self._inputs_held) < len(self.checkpoint_calls):
            self._hold_checkpoint_inputs()
        cost = declared_cost(call)
        self.forward_flops += cost.flops if cost is not None else 0
        if node is None:
            return
        self._note_dropped(node, call.op.__name__, module_path)
        kept = []
        for kind, position, array in saved_arrays(node):
            if (kind == "parameter" if self._parameters is None
                    else id(owner_array(array)) in self._parameters):
                continue   # counted in the resident bytes
            key, new = self._saved_pool.hold(array)
            kept.append(key)
            self._keep_dropped(key[0])
            if new:
                self.saved.append(SavedValue(module_path or "", call.op.__name__, kind,
                                             position, array.shape, str(array.dtype),
                                             owner_array(array).nbytes))
        if kept:
            self._held[id(node)] = kept
        outputs = sum(o.nbytes for o in call.outputs)
        self._mark("forward", call.op.__name__, module_path, outputs)

    def _note_dropped(self, node, op, module_path):
        """Remember the values checkpointing dropped (each array once, none that is kept)."""
        attributes = [(name, packed) for name, packed in node._packed_attributes or ()]
        for position, saved in [*enumerate(node._saved or ()), *attributes]:
            if saved is None or saved.kind != PACKED or \
                    type(saved.value) is not CheckpointedValue:
                continue
            value = saved.value
            root = value.root()
            if root is None:
                self._dropped.append(self._dropped_value(value, op, module_path, position))
                continue
            known = self._live_dropped.get(id(root))
            if id(root) in self._saved_pool.entries or (known and known[0]() is root):
                continue
            self._live_dropped[id(root)] = (value.root, len(self._dropped))
            self._dropped.append(self._dropped_value(value, op, module_path, position))

    @staticmethod
    def _dropped_value(value, op, module_path, position):
        return SavedValue(module_path or "", op, "recomputed", position, value.shape,
                          str(value.dtype), value.nbytes)

    def _keep_dropped(self, key):
        """The array of root id ``key`` is saved after all: not a dropped value."""
        known = self._live_dropped.pop(key, None)
        if known is not None and known[0]() is not None:
            self._dropped[known[1]] = None

    def _hold_checkpoint_inputs(self):
        """The inputs of new checkpointed calls: kept (by the checkpoint) until its backward
        ran, whether an op saved them or not."""
        for call in self.checkpoint_calls[len(self._inputs_held):]:
            keys = []
            for ref, shape, dtype, nbytes in call.inputs.values():
                array = ref()
                if array is None or id(array) in (self._parameters or ()):
                    continue
                key, new = self._saved_pool.hold(array)
                keys.append(key)
                self._keep_dropped(key[0])
                if new:
                    self.saved.append(SavedValue(call.module_path, "checkpoint", "input",
                                                 len(keys) - 1, shape, str(dtype), nbytes))
            self._inputs_held.append((call, keys))

    def _recomputed_call(self, op, node, inputs, outputs, module_path):
        """An op of a checkpoint's recompute: its FLOPs (unless it handed back outputs a
        policy kept) and the arrays it makes, counted while they live."""
        self._attrs, attrs = None, self._attrs
        if getattr(type(node), "replays_cached_output", False):  # counted as cached bytes
            self._mark("recompute", op.__name__, module_path, 0)
            return
        cost = declared_cost(describe_call(op, inputs, attrs or {}, outputs, node))
        self.recompute_flops += cost.flops if cost is not None else 0
        for t in outputs if type(outputs) is tuple else (outputs,):
            root = owner_array(t._data)
            if id(root) not in self._recomputed:
                self._recomputed[id(root)] = (weakref.ref(root), root.nbytes)
        self._mark("recompute", op.__name__, module_path, 0)

    def begin_region(self, name, phase):
        if phase == "recompute":
            self._recomputing += 1

    def _live_recomputed(self):
        """Bytes of the recomputes' arrays still alive (the values they made for backward,
        ctx arrays included, and the op outputs of the one running), and of the outputs
        policies keep."""
        live = {}
        for table in (self._recomputed, *(c.recomputed for c in self.checkpoint_calls)):
            dead = [key for key, (ref, _) in table.items() if ref() is None]
            for key in dead:
                del table[key]
            live.update(table)
        cached = sum(c.cached_bytes for c in self.checkpoint_calls if c.alive)
        return sum(nbytes for _, nbytes in live.values()) + cached

    # ---- backward
    def before_backward(self, node, grad_outputs):
        self._release_if_freed()
        if type(node) is AccumulateGrad and node.variable.grad is None:
            self._new_grads += node.variable._data.nbytes

    def after_backward(self, node, grad_outputs, grad_inputs):
        for array in _arrays(grad_inputs):
            self._grads_pool.hold(array)
        for array in _arrays(grad_outputs):
            self._grads_pool.release_array(array)
        self._last = node
        module = getattr(getattr(node, "_module_scope", None), "path", None)
        self._mark("backward", node.name(), module, 0)

    def _release_if_freed(self):
        """Let go of the values of the node whose backward ran last once the engine freed
        them (it frees them after the observers' after_backward; retain_graph keeps them)."""
        for i, (call, keys) in enumerate(self._inputs_held):
            if keys and not call.alive:
                for key in keys:
                    self._saved_pool.release(key)
                self._inputs_held[i] = (call, [])
        node, self._last = self._last, None
        if node is None or getattr(node, "_saved", None) is not None:
            return
        for key in self._held.pop(id(node), ()):
            self._saved_pool.release(key)

    # ---- the optimizer's step
    def end_region(self, name, phase):
        if phase == "recompute":
            self._recomputing -= 1
        if phase != "optimizer":
            return
        self._release_if_freed()
        self._grads_pool = _Pool()            # the backward is over: its buffers are gone
        if self.optimizer is not None:
            state = _state_bytes(self.optimizer)
            self._new_state = state - self.categories["optimizer state"]
        self._mark("optimizer", name, None, 0)

    def _mark(self, phase, name, module, transient):
        total = (self.resident + self._saved_pool.total + self._grads_pool.total
                 + self._new_grads + self._new_state + transient)
        if self.checkpoint_calls:
            total += self._live_recomputed()
        self.timeline.append((phase, name, module, total))

    def report(self):
        """The MemoryReport of what was recorded so far."""
        categories = dict(self.categories)
        categories["gradients"] += self._new_grads
        categories["optimizer state"] += self._new_state
        categories["saved activations"] = sum(v.nbytes for v in self.saved)
        estimates = {path: estimate(module, shape, itemsize)
                     for path, (module, shape, itemsize) in self.block_inputs.items()}
        return MemoryReport(list(self.saved), list(self.timeline), self.resident,
                            self._new_grads, categories,
                            {p: e for p, e in estimates.items() if e is not None},
                            [v for v in self._dropped if v is not None], self.forward_flops,
                            self.recompute_flops, list(self.checkpoint_calls))


def _estimable_blocks(model):
    if model is None:
        return []
    return [(path, m) for path, m in model.named_modules() if type(m) in ESTIMATORS]


def _state_bytes(optimizer):
    return sum(a.nbytes for state in optimizer.state.values() for a in _arrays(state.values()))


def _resident(model, optimizer):
    """Bytes by category when the ledger starts."""
    params = grads = 0
    if model is not None:
        for p in model.parameters():
            params += p._data.nbytes
            grads += p.grad._data.nbytes if p.grad is not None else 0
        params += sum(b._data.nbytes for b in model.buffers())
    state = _state_bytes(optimizer) if optimizer is not None else 0
    return {"parameters": params, "gradients": grads, "optimizer state": state}


@dataclasses.dataclass
class MemoryReport:
    """What a MemoryLedger recorded: ``saved`` (SavedValue per array kept for backward),
    ``timeline`` ((phase, name, module, bytes) after each op, backward node and optimizer
    step), the ``resident`` bytes at the start, the parameter ``gradient_bytes`` the
    backward allocated, ``categories`` (bytes of parameters and buffers, gradients,
    optimizer state, saved activations) and ``estimates`` ({module path: (bytes, formula)},
    the closed forms of the model's Transformer and residual conv blocks)."""

    saved: list
    timeline: list
    resident: int
    gradient_bytes: int
    categories: dict = dataclasses.field(default_factory=dict)
    estimates: dict = dataclasses.field(default_factory=dict)
    dropped: list = dataclasses.field(default_factory=list)
    forward_flops: int = 0
    recompute_flops: int = 0
    checkpoint_calls: list = dataclasses.field(default_factory=list)

    @property
    def dropped_bytes(self):
        """Bytes checkpointing did not keep for backward (recomputed instead)."""
        return sum(v.nbytes for v in self.dropped)

    @property
    def cached_bytes(self):
        """Bytes of op outputs that checkpoint policies kept."""
        return sum(c.cached_bytes for c in self.checkpoint_calls)

    @property
    def saved_bytes(self):
        """Bytes kept for backward at the end of the forward (every value saved)."""
        return sum(v.nbytes for v in self.saved)

    @property
    def peak_bytes(self):
        return max((t[3] for t in self.timeline), default=self.resident)

    @property
    def step_peak_bytes(self):
        """The peak above the resident bytes: what the step itself allocated at its peak."""
        return self.peak_bytes - self.resident

    @property
    def _peak(self):
        return max(self.timeline, key=lambda t: t[3]) if self.timeline else None

    @property
    def peak_phase(self):
        return self._peak[0] if self.timeline else None

    def _grouped(self, key):
        totals = {}
        for value in self.saved:
            totals[key(value)] = totals.get(key(value), 0) + value.nbytes
        return totals

    def by_module(self):
        """{module path: bytes it saved for backward}, in order of first saving."""
        return self._grouped(lambda v: v.module)

    def by_op(self):
        """{op name: bytes saved for backward}."""
        return self._grouped(lambda v: v.op)

    def by_category(self):
        """{category: bytes}: parameters (and buffers), gradients, optimizer state, saved
        activations."""
        return dict(self.categories)

    def measured_under(self, path):
        """Bytes saved by the module at ``path`` and the modules inside it."""
        prefix = path + "." if path else ""    # "": the outermost module, everything
        return sum(v.nbytes for v in self.saved
                   if v.module == path or v.module.startswith(prefix))

    def table(self, row_limit=20):
        """The saved values by module and op (largest first), the closed-form estimates
        beside the measured bytes, the categories and the peak."""
        groups = self._grouped(lambda v: (v.module or "-", v.op))
        total = self.saved_bytes
        rows = [[module, op, format_bytes(n), f"{100 * n / total:.1f}%" if total else ""]
                for (module, op), n in sorted(groups.items(), key=lambda kv: -kv[1])]
        shown = rows if row_limit is None or row_limit < 0 else rows[:row_limit]
        lines = ["Saved for backward, by module and op (each array once; a view counts the "
                 "array it keeps alive)",
                 text_table(shown, ["Module", "Op", "Bytes", "Share"], left=2)]
        if len(rows) > len(shown):
            lines.append(f"({len(rows) - len(shown)} more rows: raise row_limit to see them)")
        if self.estimates:
            lines += ["", "Closed form beside measured (docs/memory-model.md)",
                      text_table(self._estimate_rows(), ["Block", "Closed form", "Measured",
                                                         "Formula"], left=1)]
        categories = ", ".join(f"{name} {format_bytes(n)}" for name, n in self.categories.items())
        lines += ["", f"Saved total: {format_bytes(total)}; by category: {categories}"]
        if self.timeline:
            phase, name, module, peak = self._peak
            lines.append(f"Peak: {format_bytes(peak)} during {phase}, at {name}"
                         f"{f' in {module}' if module else ''}")
        return "\n".join(lines)

    def _estimate_rows(self):
        return [[path, format_bytes(nbytes), format_bytes(self.measured_under(path)), formula]
                for path, (nbytes, formula) in self.estimates.items()]

    def __str__(self):
        return self.table()


def memory_report(fn_or_model, *inputs, target=None, loss_fn=None, optimizer=None,
                  model=None):
    """Run one training step under a MemoryLedger and return its MemoryReport.

    ``fn_or_model`` is a Module (its output, or ``loss_fn(output, target)`` when a loss
    function is given, is backpropagated) or a function of ``inputs`` returning the tensor to
    backpropagate (pass ``model=`` for its resident bytes and block estimates). A non-scalar
    result is backpropagated as its sum. With an ``optimizer`` the step includes
    ``optimizer.step()`` (which updates the parameters) and its state is counted."""
    is_module = isinstance(fn_or_model, Module)
    if not (is_module or callable(fn_or_model)):
        raise TypeError(f"memory_report: expected a Module or a function, got "
                        f"{type(fn_or_model).__name__}")
    model = fn_or_model if is_module else model
    with MemoryLedger(model, optimizer) as ledger:
        result = fn_or_model(*inputs)
        if loss_fn is not None:
            result = loss_fn(result, target)
        if not isinstance(result, Tensor):
            raise TypeError(f"memory_report: the step returned {type(result).__name__}; "
                            f"expected a Tensor to backpropagate")
        (result if result.ndim == 0 else result.sum()).backward()
        if optimizer is not None:
            optimizer.step()
    return ledger.report()
