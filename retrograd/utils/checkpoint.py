"""Activation checkpointing: trade compute for memory by recomputing a forward in backward.

``checkpoint(function, *args)`` runs ``function(*args)`` once and keeps only its inputs, not
the activations its ops save for backward. When backward first reads one of those saved
values, the function runs again (the "recompute") and its saved values are handed out in
place of the ones that were dropped. This is PyTorch's non-reentrant checkpoint
(``use_reentrant=False``), the only mode retrograd has.

How it works. Under ``saved_tensors_hooks`` the first forward's ``pack`` keeps a small handle
(the value's number, shape, dtype and bytes) instead of the array; the checkpoint's own inputs
are kept as they are (they stay alive anyway). The first ``unpack`` in backward replays the
function on detached copies of the inputs with:

- grad mode on, inside ``region("checkpoint", "recompute")`` (the profiler files its ops
  under the phase "recompute");
- the global RNG state as it was before the first forward (``preserve_rng_state``), so
  dropout draws the same masks; the state of the stream is restored afterwards;
- the observers that shape a forward (``replayed_by_checkpoint``: autocast) in the state they
  had in the first forward, whether or not they are on during backward;
- ``STATE.recomputing`` set, so batch norm does not update its running statistics (nor
  ``num_batches_tracked``) a second time. Its output is unchanged: in training mode it
  normalizes with the statistics of the batch, which is the same batch.

The replayed ops save their values in the same order as the first forward did, so handle
number i receives the i-th recomputed value. The check (``determinism_check`` or ``check``)
compares them with the first forward's: "default" (or "metadata") their shapes and dtypes,
"values" also a fingerprint of their bytes (a CRC-32 taken in the first forward), "none"
nothing. A failed check raises ``CheckpointError`` naming the first op (and module) whose
saved value differs. Recomputed values are dropped once each was read, so a second backward
(``retain_graph=True``) recomputes again.

Selective checkpointing. ``policy=`` names ops (``["linear", "conv2d",
"scaled_dot_product_attention"]``, or a callable ``policy(op_name, module_path) -> bool``)
whose outputs the first forward keeps; the recompute takes those outputs instead of running
the op again, so the expensive ops run once and only the cheap ones (elementwise, norms,
dropout) are recomputed. ``retrograd.inspect.checkpoint_dry_run`` shows the choice op by op
before a step is paid for.
"""

import contextlib
import weakref
import zlib

import numpy as np

from retrograd import random as _random
from retrograd.autograd.function import INPUT, OUTPUT, saved_tensors_hooks
from retrograd.autograd.grad_mode import STATE, enable_grad
from retrograd.autograd.observer import (OpObserver, kernel_subclass, observe, region,
                                        set_observers)
from retrograd.tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "GradientCheckpointing",
           "checkpoint_calls", "CheckpointCall", "CheckpointedValue"]

_CHECKS = {"default": "metadata", "metadata": "metadata", "values": "values", "none": None}


class CheckpointError(RuntimeError):
    """A checkpoint cannot be recomputed faithfully (or was asked for a mode it lacks)."""


def checkpoint(function, *args, use_reentrant=False, preserve_rng_state=True,
               determinism_check="default", context_fn=None, check=None, policy=None,
               **kwargs):
    """Run ``function(*args, **kwargs)`` without keeping its activations for backward; they
    are recomputed when backward needs them (see the module docstring).

    Args:
        function: any callable (a Module, a block's forward, a lambda); must return a Tensor
            or nested tuples/lists/dicts holding at least one.
        args, kwargs: its arguments; Tensors among them are kept.
        use_reentrant: must be False (retrograd has only the non-reentrant mode).
        preserve_rng_state: replay with the RNG state of the first forward, so random ops
            (dropout) draw the same values. Default: True.
        determinism_check: how the recomputed saved values are checked against the first
            forward's: "default" (shapes and dtypes), "values" (also their bytes, by a
            fingerprint) or "none".
        context_fn: None, or a callable returning two context managers: the first wraps the
            forward, the second the recompute (as PyTorch's).
        check: the same choice as ``determinism_check`` ("metadata", "values", "none"),
            which it overrides when given.
        policy: None (recompute every op), a list of op names whose outputs are kept and
            not recomputed (``"linear"``, ``"Conv2d"``, ``"scaled_dot_product_attention"``:
            case and underscores do not matter), or a callable ``policy(op_name,
            module_path) -> bool`` saying which ops to keep.

    Returns:
        what ``function`` returns.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.checkpoint import checkpoint
        >>> layer = rg.nn.Linear(3, 3)
        >>> x = rg.randn(2, 3, requires_grad=True)
        >>> y = checkpoint(lambda t: layer(t).tanh().exp(), x, check="values")
        >>> y.sum().backward()
        >>> x.grad.shape, layer.weight.grad.shape
        ((2, 3), (3, 3))
    """
    _refuse_reentrant("checkpoint", use_reentrant)
    if not callable(function):
        raise TypeError(f"checkpoint: function must be callable (a Module or a function), got "
                        f"{type(function).__name__}")
    mode = _check_mode(determinism_check if check is None else check,
                       "determinism_check" if check is None else "check")
    keep = as_policy(policy)
    forward_context, recompute_context = (context_fn() if context_fn is not None else
                                          (contextlib.nullcontext(), contextlib.nullcontext()))
    if not STATE.grad_enabled:  # nothing is saved for backward: nothing to recompute
        with forward_context:
            return _with_tensor(function(*args, **kwargs), function)
    replay = _Replay(function, args, kwargs, preserve_rng_state, mode, recompute_context, keep)
    with contextlib.ExitStack() as stack:
        stack.enter_context(forward_context)
        stack.enter_context(saved_tensors_hooks(replay.pack, replay.unpack))
        if replay.cache is not None:
            stack.enter_context(observe(replay.cache.recorder()))
        output = function(*args, **kwargs)
    return _with_tensor(output, function)


def checkpoint_sequential(functions, segments, input, use_reentrant=False,  # noqa: A002
                          **kwargs):
    """Run a Sequential (or a list of callables) in ``segments`` chunks, checkpointing every
    chunk but the last (whose activations backward needs first anyway), like PyTorch's.

    Args:
        functions: a Sequential (its children, in order) or a list of callables.
        segments: the number of chunks, 1 <= segments <= len(functions); each chunk has
            len // segments functions and the last takes the rest.
        input: the input of the first function.
        use_reentrant: must be False; other keyword arguments go to ``checkpoint``.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.checkpoint import checkpoint_sequential
        >>> model = rg.nn.Sequential(*[rg.nn.Linear(4, 4) for _ in range(4)])
        >>> checkpoint_sequential(model, 2, rg.randn(3, 4)).shape
        (3, 4)
    """
    _refuse_reentrant("checkpoint_sequential", use_reentrant)
    if hasattr(functions, "children"):
        functions = list(functions.children())
    elif callable(functions) or not hasattr(functions, "__iter__"):
        raise TypeError(f"checkpoint_sequential: functions must be a Sequential or a list of "
                        f"callables, got {type(functions).__name__}")
    functions = list(functions)
    for i, function in enumerate(functions):
        if not callable(function):
            raise TypeError(f"checkpoint_sequential: functions[{i}] is not callable (got "
                            f"{type(function).__name__})")
    if isinstance(segments, bool) or not isinstance(segments, int) \
            or not 1 <= segments <= max(len(functions), 1):
        raise ValueError(f"checkpoint_sequential: segments must be an int between 1 and the "
                         f"number of functions ({len(functions)}), got {segments!r}")
    size = len(functions) // segments
    end = 0
    for start in range(0, size * (segments - 1), size):
        end = start + size
        input = checkpoint(_chain(functions[start:end]), input,  # noqa: A001
                           use_reentrant=use_reentrant, **kwargs)
    return _chain(functions[end:])(input)


def _check_mode(value, name):
    if value not in _CHECKS:
        raise ValueError(f"checkpoint: {name} must be one of {tuple(_CHECKS)}, got {value!r}")
    return _CHECKS[value]


def _with_tensor(output, function):
    """``output``, or a CheckpointError when it holds no Tensor (nothing to backpropagate)."""
    if not _holds_tensor(output):
        name = getattr(function, "__name__", type(function).__name__)
        raise CheckpointError(
            f"checkpoint: the checkpointed function {name} returned "
            f"{type(output).__name__}, which holds no Tensor: there is nothing to "
            f"backpropagate through, so there is nothing to checkpoint")
    return output


def _holds_tensor(value):
    if isinstance(value, Tensor):
        return True
    if isinstance(value, dict):
        return any(_holds_tensor(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return any(_holds_tensor(v) for v in value)
    return False


def as_policy(policy):
    """The callable ``keep(op_name, module_path) -> bool`` of a ``policy`` argument (None:
    None). Names are matched without case or underscores; an unknown name is an error that
    lists the op names there are."""
    if policy is None or callable(policy):
        return policy
    if isinstance(policy, str) or not hasattr(policy, "__iter__"):
        raise TypeError(f"checkpoint: policy must be a list of op names or a callable "
                        f"policy(op_name, module_path), got {policy!r}")
    known, views = _op_names()
    wanted = set()
    for name in policy:
        key = _op_key(name) if isinstance(name, str) else None
        if key not in known:
            raise ValueError(f"checkpoint: policy names an unknown op {name!r}; ops are named "
                             f"as the profiler shows them, e.g. " + ", ".join(
                                 sorted(known[k] for k in known if k in _EXAMPLE_KEYS)))
        if known[key] in views:
            raise ValueError(f"checkpoint: policy names {known[key]}, a view (it copies "
                             f"nothing and costs nothing to recompute); name the op that "
                             f"computes the values instead")
        wanted.add(key)
    return lambda op_name, module_path: _op_key(op_name) in wanted


_EXAMPLE_KEYS = {"linear", "matmul", "conv2d", "scaleddotproductattention", "layernorm",
                 "batchnorm", "gelu", "relu", "add", "mul", "dropout", "softmax"}


def _op_key(name):
    return name.replace("_", "").lower()


def _op_names():
    """({key: name}, {names of views}) of every op class (Function subclass) defined in
    retrograd or by the user."""
    from retrograd.autograd.function import Function
    names, views, todo = {}, set(), list(Function.__subclasses__())
    while todo:
        op = todo.pop()
        todo.extend(op.__subclasses__())
        if not op.__name__.startswith("_"):
            names.setdefault(_op_key(op.__name__), op.__name__)
            if op.is_view:
                views.add(op.__name__)
    return names, views


class GradientCheckpointing:
    """Mixin for Modules: Hugging Face's ``gradient_checkpointing_enable()`` / ``_disable()``.

    Once enabled, the model's blocks (the ones it runs through ``_run_blocks``) run through
    ``checkpoint`` while the model is in training mode with grad enabled; in eval mode or
    under ``no_grad`` they are plain calls. By default each block is its own checkpointed
    segment; ``segments`` (a list of ``(start, stop, checkpointed)`` covering the blocks in
    order, as ``retrograd.inspect.plan_checkpoints`` makes them) groups blocks into segments
    and may leave some unchecked. Enabling (disabling) sets the flag on every submodule that
    has this mixin too (e.g. ViT's TransformerEncoder).

    Example:
        >>> import retrograd as rg
        >>> encoder = rg.nn.TransformerEncoder(rg.nn.TransformerEncoderLayer(8, 2, 16), 4)
        >>> encoder.gradient_checkpointing_enable(segments=[(0, 2, True), (2, 4, False)])
        >>> encoder.gradient_checkpointing
        True
    """

    gradient_checkpointing = False
    _checkpointing_kwargs = {}  # noqa: RUF012  (never mutated: replaced when enabling)
    _checkpoint_segments = None

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None, segments=None):
        """Checkpoint the blocks in training; ``gradient_checkpointing_kwargs`` go to
        ``checkpoint`` (e.g. ``{"preserve_rng_state": False}``), ``segments`` group them
        (see the class docstring; None: each block alone)."""
        kwargs = dict(gradient_checkpointing_kwargs or {})
        _refuse_reentrant("gradient_checkpointing_enable", kwargs.get("use_reentrant", False))
        if kwargs.get("policy") is not None:   # resolved once, not at every block's call
            kwargs["policy"] = as_policy(kwargs["policy"])
        self._set_checkpointing(True, kwargs, None if segments is None else
                                [tuple(s) for s in segments])

    def gradient_checkpointing_disable(self):
        """Run the blocks without checkpointing again."""
        self._set_checkpointing(False, {}, None)

    def _set_checkpointing(self, enabled, kwargs, segments):
        for module in self.modules():
            if isinstance(module, GradientCheckpointing):
                object.__setattr__(module, "gradient_checkpointing", enabled)
                object.__setattr__(module, "_checkpointing_kwargs", kwargs)
                object.__setattr__(module, "_checkpoint_segments", segments)

    def _checkpointing_now(self):
        return self.gradient_checkpointing and self.training and STATE.grad_enabled

    def _run_blocks(self, blocks, x, *args, **kwargs):
        """``x`` through each block in turn (``x = block(x, *args, **kwargs)``), in the
        checkpointed segments while checkpointing is on."""
        if not self._checkpointing_now():
            for block in blocks:
                x = block(x, *args, **kwargs)
            return x
        blocks = list(blocks)
        for number, (start, stop, checkpointed) in enumerate(self._segments(len(blocks))):
            run = _chain(blocks[start:stop])
            if checkpointed:
                with _segment(self, number):
                    x = checkpoint(run, x, *args, **self._checkpointing_kwargs, **kwargs)
            else:
                x = run(x, *args, **kwargs)
        return x

    def _segments(self, count):
        segments = self._checkpoint_segments
        if segments is None:
            return [(i, i + 1, True) for i in range(count)]
        if [s[:2] for s in segments] != _tiling(segments, count):
            raise CheckpointError(
                f"{type(self).__name__}: the checkpoint segments {segments} do not cover its "
                f"{count} blocks in order (each (start, stop, checkpointed), the first starting "
                f"at 0, each starting where the last stopped, the last stopping at {count})")
        return segments


def _tiling(segments, count):
    """The (start, stop) pairs a valid list of segments over ``count`` blocks has."""
    stops = [s[1] for s in segments if len(s) == 3 and isinstance(s[1], int)]
    if len(stops) != len(segments) or not stops or stops[-1] != count:
        return None
    starts = [0, *stops[:-1]]
    return [(a, b) for a, b in zip(starts, stops)] if all(a < b for a, b in
                                                          zip(starts, stops)) else None


def _refuse_reentrant(caller, use_reentrant):
    if use_reentrant:
        raise CheckpointError(
            f"{caller}: use_reentrant=True is not supported: retrograd has one checkpointing "
            f"mode, the non-reentrant one (PyTorch's use_reentrant=False), which works with "
            f"autograd.grad, inputs that do not require grad and nested outputs; pass "
            f"use_reentrant=False or leave it out")


def _chain(chunk):
    def run(x, *args, **kwargs):
        for function in chunk:
            x = function(x, *args, **kwargs)
        return x
    return run


# ---- what tools learn of each checkpointed call (retrograd.inspect's receipt and planner)

class CheckpointCall:
    """One checkpointed call, as ``checkpoint_calls()`` records it: ``owner`` and ``segment``
    (the model whose blocks it ran and the segment's number, None for a direct call),
    ``module_path`` (of the module whose forward called it), ``inputs`` and ``kept_bytes``
    (the arrays its inputs keep alive until its backward ran), ``dropped`` (the values its
    ops saved that were dropped, as (shape, dtype, bytes) of the arrays they keep alive, each
    array once), ``cached_bytes`` (outputs a policy kept), ``parameter_bytes`` (the
    parameters its ops saved, kept as they are), ``saves_input`` (whether its ops save an
    input, which unchecked they would keep too) and ``recomputes`` (how often it ran
    again)."""

    def __init__(self, owner, segment, replay):
        self.owner, self.segment = owner, segment
        scope = STATE.module_scope
        self.module_path = scope.path if scope is not None else ""
        self.cached_bytes = self.recomputes = self.parameter_bytes = 0
        self.saves_input = False
        self.recomputed = {}   # id of a recomputed array -> (weak ref to it, bytes)
        self.dropped = []
        # id of the array an input keeps alive -> (weak ref to it, shape, dtype, bytes)
        self.inputs = {}
        for t in replay.inputs:
            root = owner_array(t._data)
            self.inputs.setdefault(id(root), (weakref.ref(root), root.shape, root.dtype,
                                              root.nbytes))
        self._replay = weakref.ref(replay)
        self._parameters = set()

    @property
    def kept_bytes(self):
        """Bytes of the arrays its inputs keep alive (each once)."""
        return sum(entry[3] for entry in self.inputs.values())

    def note_recomputed(self, saved):
        """The values a recompute made for backward (weakly: tools count them while they
        live)."""
        for t in saved:
            root = owner_array(t._data)
            self.recomputed[id(root)] = (weakref.ref(root), root.nbytes)

    def note_kept(self, tensor, parameter):
        """Its ops saved a parameter (a leaf that requires grad) or an input (or a view of
        one): kept, not recomputed."""
        if not parameter:
            self.saves_input = True
        elif id(tensor) not in self._parameters:
            self._parameters.add(id(tensor))
            self.parameter_bytes += tensor._data.nbytes

    @property
    def alive(self):
        """True while the graph that needs the call's recompute is alive."""
        return self._replay() is not None

    @property
    def dropped_bytes(self):
        return sum(nbytes for _, _, nbytes in self.dropped)

    def __repr__(self):
        return (f"<CheckpointCall segment {self.segment}: kept {self.kept_bytes} B, dropped "
                f"{self.dropped_bytes} B, recomputed {self.recomputes}x>")


_RECORDERS = []      # the lists of the checkpoint_calls() blocks that are open
_SEGMENT = [None]    # (owner, number) of the segment _run_blocks is running


@contextlib.contextmanager
def checkpoint_calls():
    """``with checkpoint_calls() as calls:`` collects a CheckpointCall for every checkpointed
    call in the block (what the memory tools read)."""
    calls = []
    _RECORDERS.append(calls)
    try:
        yield calls
    finally:
        _RECORDERS.remove(calls)


@contextlib.contextmanager
def _segment(owner, number):
    outer = _SEGMENT[0]
    _SEGMENT[0] = (owner, number)
    try:
        yield
    finally:
        _SEGMENT[0] = outer


def owner_array(array):
    """The array that owns ``array``'s memory (itself unless it is a view): what keeping
    ``array`` keeps alive (the memory ledger counts it too)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _fingerprint(array):
    """A CRC-32 of the array's bytes: equal arrays have equal ones."""
    return zlib.crc32(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


class CheckpointedValue:
    """What the first forward keeps of a saved value it drops (what its node holds in place
    of the array): its number, shape, dtype, the bytes of the array it kept alive (``root``:
    a weak reference to that array), and with check="values" a fingerprint."""

    __slots__ = ("index", "shape", "dtype", "nbytes", "root", "fingerprint")

    def __init__(self, index, array, fingerprint):
        root = owner_array(array)
        self.index, self.shape, self.dtype = index, array.shape, array.dtype
        self.nbytes, self.root, self.fingerprint = root.nbytes, weakref.ref(root), fingerprint

    def __repr__(self):
        return f"<checkpointed value {self.index}: {self.shape} {self.dtype}>"


class _Replay:
    """One checkpointed call: the pack/unpack hooks of its first forward and the recompute
    that refills them."""

    def __init__(self, function, args, kwargs, preserve_rng_state, mode, recompute_context,
                 keep):
        self.function, self.args, self.kwargs = function, args, kwargs
        self.inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        self.input_roots = {id(owner_array(t._data)) for t in self.inputs}
        self.rng_state = _random.get_rng_state() if preserve_rng_state else None
        # observers that shape the forward (autocast) are replayed in the state they had
        self.replayed = tuple(o.replay_observer() for o in STATE.observers
                              if getattr(o, "replayed_by_checkpoint", False))
        self.mode, self.recompute_context = mode, recompute_context
        self.cache = _OutputCache(keep) if keep is not None else None
        self.handles = []          # the CheckpointedValue of every saved value, in order of saving
        self.values = None         # the recomputed saved Tensors, while backward reads them
        self.unread = set()        # handles not read since the last recompute
        self.record = None
        if _RECORDERS:
            segment = _SEGMENT[0] or (None, None)
            self.record = CheckpointCall(*segment, self)
            self._dropped_roots = {}
            for calls in _RECORDERS:
                calls.append(self.record)
            if self.cache is not None:
                self.cache.record = self.record

    def pack(self, tensor):
        leaf = tensor.grad_fn is None and tensor._requires_grad
        if leaf or id(owner_array(tensor._data)) in self.input_roots:
            self.handles.append(None)
            if self.record is not None:
                self.record.note_kept(tensor, leaf)
            return tensor          # a parameter, an input of the checkpoint or a view of one:
                                   # kept anyway
        array = tensor._data
        handle = CheckpointedValue(len(self.handles), array,
                         _fingerprint(array) if self.mode == "values" else None)
        self.handles.append(handle)
        if self.record is not None:
            self._note_dropped(handle)
        return handle

    def _note_dropped(self, handle):
        root = handle.root()
        known = self._dropped_roots.get(id(root))
        if known is None or known() is not root:
            self._dropped_roots[id(root)] = handle.root
            self.record.dropped.append((handle.shape, handle.dtype, handle.nbytes))

    def unpack(self, packed):
        if isinstance(packed, Tensor):
            return packed
        if self.values is None:
            self.values = self._recompute()
            self.unread = {i for i, v in enumerate(self.values) if v is not None}
        if packed.index >= len(self.values):
            raise CheckpointError(
                f"checkpoint: backward needs saved value {packed.index} ({packed.shape} "
                f"{packed.dtype}), but the recomputation saved only {len(self.values)}: the "
                f"function ran different ops when recomputed")
        value = self.values[packed.index]
        self.unread.discard(packed.index)
        if not self.unread:
            self.values = None     # every value was read: let them go
        return value

    def _recompute(self):
        """Replay the function; the Tensors its ops saved (None where the first forward
        kept its own), in order of saving."""
        saved = self._replay()
        if self.record is not None:
            self.record.recomputes += 1
            self.record.note_recomputed(t for h, t in zip(self.handles, saved)
                                        if h is not None)
        if self.mode is not None:
            self._compare(saved)
        # detached: the replay's own graph (whose nodes hold these values) is let go now
        return [None if h is None else t.detach() for h, t in zip(self.handles, saved)]

    def _replay(self, names=None):
        """Run the function again as its first forward ran; the Tensors its ops saved.
        ``names`` (an _OpNames) is told which op saved each value."""
        saved = []

        def pack(tensor):
            saved.append(tensor)
            if names is not None:
                names.saved.append(names.where())
            return len(saved) - 1

        def unpack(index):  # the replay's own graph is never run backward
            return saved[index]

        args = tuple(_detached(a) for a in self.args)
        kwargs = {k: _detached(v) for k, v in self.kwargs.items()}
        stream, recomputing = _random.get_rng_state(), STATE.recomputing
        try:
            if self.rng_state is not None:
                _random.set_rng_state(self.rng_state)
            STATE.recomputing = True
            with contextlib.ExitStack() as stack:
                stack.enter_context(region("checkpoint", "recompute"))
                stack.enter_context(_replaying(self.replayed))
                stack.enter_context(enable_grad())
                stack.enter_context(self.recompute_context)
                for observer in (names, self.cache and self.cache.replayer()):
                    if observer is not None:
                        stack.enter_context(observe(observer))
                stack.enter_context(saved_tensors_hooks(pack, unpack))
                self.function(*args, **kwargs)
        finally:
            STATE.recomputing = recomputing
            _random.set_rng_state(stream)
        result = list(saved)
        saved.clear()              # no cycle through the replay's nodes: freed right away
        return result

    def _compare(self, saved):
        """CheckpointError unless the replay saved what the first forward did (shapes and
        dtypes; with mode "values" also the bytes), naming the op of the first difference."""
        for handle, tensor in zip(self.handles, saved):
            if handle is None:
                continue
            data = tensor._data
            if data.shape != handle.shape or data.dtype != handle.dtype:
                raise CheckpointError(
                    f"checkpoint: recomputed saved value {handle.index}, saved by "
                    f"{self._saver(handle.index)}, has shape {data.shape} and dtype "
                    f"{data.dtype}, but the first forward saved shape {handle.shape} and "
                    f"dtype {handle.dtype}: the checkpointed function must run the same ops on "
                    f"the same shapes when recomputed (determinism_check='none' skips this "
                    f"check)")
            if handle.fingerprint is not None and _fingerprint(data) != handle.fingerprint:
                raise CheckpointError(
                    f"checkpoint: recomputed saved value {handle.index} ({data.shape} "
                    f"{data.dtype}), saved by {self._saver(handle.index)}, differs from the "
                    f"first forward's value: the checkpointed function is not deterministic "
                    f"(a random draw outside retrograd's generator, a global it reads, an input "
                    f"changed in place?), so the gradients would be wrong")
        if len(saved) != len(self.handles):
            extra = (self._saver(len(self.handles)) if len(saved) > len(self.handles)
                     else None)
            raise CheckpointError(
                f"checkpoint: the recomputation saved {len(saved)} values for backward, the "
                f"first forward {len(self.handles)}"
                + (f" (the first extra one saved by {extra})" if extra else "")
                + ": the checkpointed function must run the same ops when recomputed "
                  "(determinism_check='none' skips this check)")

    def _saver(self, index):
        """The op (and module) that saves value ``index`` when the function is replayed once
        more, this time watched (only to word an error)."""
        names = _OpNames()
        try:
            self._replay(names)
        except Exception:  # noqa: BLE001  (the error being worded is the one to raise)
            return "an op"
        return names.saved[index] if index < len(names.saved) else "an op"


@contextlib.contextmanager
def _replaying(observers):
    """The observers that shape a forward (``replayed_by_checkpoint``: autocast) as they were
    in the first forward, in place of the ones on now."""
    current = STATE.observers
    set_observers(tuple(o for o in current if not getattr(o, "replayed_by_checkpoint", False))
                  + observers)
    try:
        yield
    finally:
        set_observers(current)


def _detached(value):
    """A Tensor input as a new leaf (the replay's graph stays apart from the real one)."""
    if not isinstance(value, Tensor):
        return value
    return value.detach().requires_grad_(value.requires_grad)


class _OpNames(OpObserver):
    """Remembers the op running (and its module), so a failed check can name it."""

    watches_backward = False
    op = None
    module = None

    def __init__(self):
        self.saved = []

    def before_forward(self, op, inputs, attrs):
        self.op = op.__name__
        scope = STATE.module_scope
        self.module = scope.path if scope is not None else None

    def where(self):
        return self.op if self.module is None else f"{self.op} in module {self.module!r}"


class _OutputCache:
    """The outputs of the ops a policy keeps: recorded in the first forward by call number,
    handed back in the recompute in place of running the op again."""

    def __init__(self, keep):
        self.keep = keep
        # call number -> (outputs, save recipe, is a tuple, attributes, RNG state after it)
        self.outputs = {}
        self.record = None         # the CheckpointCall told of the bytes kept, if any

    def recorder(self):
        return _CacheRecorder(self)

    def replayer(self):
        return _CacheReplayer(self)


class _CacheRecorder(OpObserver):
    """First forward: runs each op the policy names as a kernel that also records its
    outputs, the arrays it keeps as ctx attributes and the RNG state after it."""

    watches_backward = False

    def __init__(self, cache):
        self.cache, self.calls, self.current, self.pending = cache, 0, None, None

    def before_forward(self, op, inputs, attrs):
        self.current, self.calls, self.pending = self.calls, self.calls + 1, None

    def kernel_class(self, op):
        scope = STATE.module_scope
        if op.is_view or not self.cache.keep(op.__name__, scope.path if scope else None):
            return None
        return _recording_kernel(op, self)

    def after_forward(self, op, node, inputs, outputs, module_path):
        attributes, self.pending = self.pending, None
        recipe = _save_recipe(node) if attributes is not None and node is not None else None
        if recipe is None:
            return
        arrays = tuple(o._data for o in (outputs if type(outputs) is tuple else (outputs,)))
        self.cache.outputs[self.current] = (arrays, recipe, type(outputs) is tuple, attributes,
                                            self.rng_after)
        if self.cache.record is not None:
            self.cache.record.cached_bytes += sum(a.nbytes for a in (*arrays,
                                                                     *attributes.values()))


def _recording_kernel(op, recorder):
    def forward(ctx, *inputs, **attrs):
        out = op.forward(ctx, *inputs, **attrs)
        recorder.pending = {name: value for name, value in vars(ctx).items()
                            if type(value) is np.ndarray}
        recorder.rng_after = _random.get_rng_state()   # the op may have drawn (dropout)
        return out
    return kernel_subclass(op, forward)


def kept_by_policy(keep, op, node, module_path):
    """How to replay the saving of an op call whose output ``keep`` (a policy) keeps, as
    _save_recipe gives it; None when the call's output is recomputed: the policy does not
    name it, it is a view, it recorded no node, or it saved a constant."""
    if node is None or op.is_view or not keep(op.__name__, module_path):
        return None
    return _save_recipe(node)


def _save_recipe(node):
    """What ``node`` saved, as (kind, position) of its inputs and outputs; None when it saved
    anything else (a constant), which only running the op again can reproduce."""
    recipe = []
    for saved in node._saved or ():
        if saved is None:
            recipe.append(None)
            continue
        kind = getattr(saved, "packed_kind", saved.kind)
        if kind not in (INPUT, OUTPUT):
            return None
        recipe.append((kind, saved.position))
    return tuple(recipe)


class _CacheReplayer(OpObserver):
    """Recompute: runs each kept op as a kernel that returns its first-forward outputs (and
    saves what the op saves), so the op's work is not done twice."""

    watches_backward = False

    def __init__(self, cache):
        self.cache, self.calls, self.current = cache, 0, None

    def before_forward(self, op, inputs, attrs):
        self.current, self.calls = self.calls, self.calls + 1

    def kernel_class(self, op):
        entry = self.cache.outputs.get(self.current)
        return None if entry is None else _cached_kernel(op, *entry)


def _cached_kernel(op, arrays, recipe, is_tuple, attributes, rng_after):
    def forward(ctx, *inputs, **attrs):
        _random.set_rng_state(rng_after)   # as if the op had drawn what it drew
        for name, value in attributes.items():
            setattr(ctx, name, value)
        ctx.save_for_backward(*[None if r is None else
                                inputs[r[1]] if r[0] == INPUT else arrays[r[1]]
                                for r in recipe])
        return arrays if is_tuple else arrays[0]
    return kernel_subclass(op, forward, replays_cached_output=True)
