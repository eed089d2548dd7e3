"""Activation checkpointing: trade compute for memory by recomputing a forward in backward.

``checkpoint(function, *args)`` runs ``function(*args)`` once and keeps only its inputs, not
the activations its ops save for backward. When backward first reads one of those saved
values, the function runs again (the "recompute") and its saved values are handed out in
place of the ones that were dropped. This is PyTorch's non-reentrant checkpoint
(``use_reentrant=False``), the only mode retrograd has.

How it works. Under ``saved_tensors_hooks`` the first forward's ``pack`` keeps a small handle
(the value's number, shape and dtype) instead of the array; the checkpoint's own inputs are
kept as they are (they stay alive anyway). The first ``unpack`` in backward replays the
function on detached copies of the inputs with:

- grad mode on, inside ``region("checkpoint", "recompute")`` (the profiler files its ops
  under the phase "recompute");
- the global RNG state as it was before the first forward (``preserve_rng_state``), so
  dropout draws the same masks; the state of the stream is restored afterwards;
- ``STATE.recomputing`` set, so batch norm does not update its running statistics (nor
  ``num_batches_tracked``) a second time. Its output is unchanged: in training mode it
  normalizes with the statistics of the batch, which is the same batch.

The replayed ops save their values in the same order as the first forward did, so handle
number i receives the i-th recomputed value. ``determinism_check="default"`` compares their
shapes and dtypes with the first forward's and raises ``CheckpointError`` naming the op that
differs; ``"none"`` skips the comparison. Recomputed values are dropped once each was read,
so a second backward (``retain_graph=True``) recomputes again.
"""

import contextlib

from retrograd import random as _random
from retrograd.autograd.function import saved_tensors_hooks
from retrograd.autograd.grad_mode import STATE, enable_grad
from retrograd.autograd.observer import OpObserver, observe, region
from retrograd.tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "GradientCheckpointing"]

_CHECKS = ("default", "none")


class CheckpointError(RuntimeError):
    """A checkpoint cannot be recomputed faithfully (or was asked for a mode it lacks)."""


def checkpoint(function, *args, use_reentrant=False, preserve_rng_state=True,
               determinism_check="default", context_fn=None, **kwargs):
    """Run ``function(*args, **kwargs)`` without keeping its activations for backward; they
    are recomputed when backward needs them (see the module docstring).

    Args:
        function: any callable (a Module, a block's forward, a lambda); may return a Tensor
            or nested tuples/lists of them.
        args, kwargs: its arguments; Tensors among the positional ones are kept.
        use_reentrant: must be False (retrograd has only the non-reentrant mode).
        preserve_rng_state: replay with the RNG state of the first forward, so random ops
            (dropout) draw the same values. Default: True.
        determinism_check: "default" checks that the recomputed saved values have the
            shapes and dtypes of the first forward's; "none" does not.
        context_fn: None, or a callable returning two context managers: the first wraps the
            forward, the second the recompute (as PyTorch's).

    Returns:
        what ``function`` returns.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.utils.checkpoint import checkpoint
        >>> layer = rg.nn.Linear(3, 3)
        >>> x = rg.randn(2, 3, requires_grad=True)
        >>> y = checkpoint(lambda t: layer(t).tanh().exp(), x)
        >>> y.sum().backward()
        >>> x.grad.shape, layer.weight.grad.shape
        ((2, 3), (3, 3))
    """
    _refuse_reentrant("checkpoint", use_reentrant)
    if determinism_check not in _CHECKS:
        raise ValueError(f"checkpoint: determinism_check must be one of {_CHECKS}, got "
                         f"{determinism_check!r}")
    forward_context, recompute_context = (context_fn() if context_fn is not None else
                                          (contextlib.nullcontext(), contextlib.nullcontext()))
    if not STATE.grad_enabled:  # nothing is saved for backward: nothing to recompute
        with forward_context:
            return function(*args, **kwargs)
    replay = _Replay(function, args, kwargs, preserve_rng_state, determinism_check == "default",
                     recompute_context)
    with forward_context, saved_tensors_hooks(replay.pack, replay.unpack):
        return function(*args, **kwargs)


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
    functions = list(functions)
    if isinstance(segments, bool) or not isinstance(segments, int) \
            or not 1 <= segments <= max(len(functions), 1):
        raise ValueError(f"checkpoint_sequential: segments must be an int between 1 and the "
                         f"number of functions ({len(functions)}), got {segments!r}")
    size = len(functions) // segments
    end = 0
    for start in range(0, size * (segments - 1), size):
        end = start + size
        input = checkpoint(_run(functions[start:end]), input,  # noqa: A001
                           use_reentrant=use_reentrant, **kwargs)
    return _run(functions[end:])(input)


class GradientCheckpointing:
    """Mixin for Modules: Hugging Face's ``gradient_checkpointing_enable()`` / ``_disable()``.

    Once enabled, the model's ``_checkpointed(block, ...)`` calls run its blocks through
    ``checkpoint`` while the model is in training mode with grad enabled; in eval mode or under
    ``no_grad`` they are plain calls. Enabling (disabling) sets the flag on every submodule
    that has this mixin too (e.g. ViT's TransformerEncoder).

    Example:
        >>> import retrograd as rg
        >>> encoder = rg.nn.TransformerEncoder(rg.nn.TransformerEncoderLayer(8, 2, 16), 2)
        >>> encoder.gradient_checkpointing_enable()
        >>> encoder.gradient_checkpointing
        True
    """

    gradient_checkpointing = False
    _checkpointing_kwargs = {}  # noqa: RUF012  (never mutated: replaced when enabling)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        """Checkpoint each block in training; ``gradient_checkpointing_kwargs`` go to
        ``checkpoint`` (e.g. ``{"preserve_rng_state": False}``)."""
        _refuse_reentrant("gradient_checkpointing_enable",
                          (gradient_checkpointing_kwargs or {}).get("use_reentrant", False))
        self._set_checkpointing(True, dict(gradient_checkpointing_kwargs or {}))

    def gradient_checkpointing_disable(self):
        """Run the blocks without checkpointing again."""
        self._set_checkpointing(False, {})

    def _set_checkpointing(self, enabled, kwargs):
        for module in self.modules():
            if isinstance(module, GradientCheckpointing):
                object.__setattr__(module, "gradient_checkpointing", enabled)
                object.__setattr__(module, "_checkpointing_kwargs", kwargs)

    def _checkpointed(self, function, *args, **kwargs):
        """``function(*args, **kwargs)``, through ``checkpoint`` when it is enabled, the
        module is training and grad mode is on."""
        if self.gradient_checkpointing and self.training and STATE.grad_enabled:
            return checkpoint(function, *args, **self._checkpointing_kwargs, **kwargs)
        return function(*args, **kwargs)


def _refuse_reentrant(caller, use_reentrant):
    if use_reentrant:
        raise CheckpointError(
            f"{caller}: use_reentrant=True is not supported: retrograd has one checkpointing "
            f"mode, the non-reentrant one (PyTorch's use_reentrant=False), which works with "
            f"autograd.grad, inputs that do not require grad and nested outputs; pass "
            f"use_reentrant=False or leave it out")


def _run(chunk):
    def run(x):
        for function in chunk:
            x = function(x)
        return x
    return run


class _Handle:
    """What the first forward keeps of a saved value: its number, shape and dtype."""

    __slots__ = ("index", "shape", "dtype")

    def __init__(self, index, shape, dtype):
        self.index, self.shape, self.dtype = index, shape, dtype

    def __repr__(self):
        return f"<checkpointed value {self.index}: {self.shape} {self.dtype}>"


class _Replay:
    """One checkpointed call: the pack/unpack hooks of its first forward and the recompute
    that refills them."""

    def __init__(self, function, args, kwargs, preserve_rng_state, check, recompute_context):
        self.function, self.args, self.kwargs = function, args, kwargs
        self.inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
        self.rng_state = _random.get_rng_state() if preserve_rng_state else None
        self.check, self.recompute_context = check, recompute_context
        self.handles = []          # the _Handle of every saved value, in order of saving
        self.values = None         # the recomputed saved Tensors, while backward reads them
        self.unread = set()        # handles not read since the last recompute

    def pack(self, tensor):
        handle = _Handle(len(self.handles), tensor.shape, tensor.dtype)
        self.handles.append(handle)
        if any(tensor is t for t in self.inputs):
            return tensor          # an input of the checkpoint: kept anyway
        return handle

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
        """Replay the function; the Tensors its ops save, in order of saving."""
        saved = []
        names = _OpNames() if self.check else None

        def pack(tensor):
            saved.append((tensor, names.where() if names is not None else None))
            return len(saved) - 1

        def unpack(index):  # the replay's own graph is never run backward
            return saved[index][0]

        args = tuple(_detached(a) for a in self.args)
        kwargs = {k: _detached(v) for k, v in self.kwargs.items()}
        stream, recomputing = _random.get_rng_state(), STATE.recomputing
        try:
            if self.rng_state is not None:
                _random.set_rng_state(self.rng_state)
            STATE.recomputing = True
            with contextlib.ExitStack() as stack:
                stack.enter_context(region("checkpoint", "recompute"))
                stack.enter_context(enable_grad())
                stack.enter_context(self.recompute_context)
                if names is not None:
                    stack.enter_context(observe(names))
                stack.enter_context(saved_tensors_hooks(pack, unpack))
                self.function(*args, **kwargs)
        finally:
            STATE.recomputing = recomputing
            _random.set_rng_state(stream)
        if self.check:
            self._compare(saved)
        inputs = {i for i, h in enumerate(self.handles) if any(h is t for t in self.inputs)}
        return [None if i in inputs else t for i, (t, _) in enumerate(saved)]

    def _compare(self, saved):
        """CheckpointError unless the replay saved values of the same shapes and dtypes."""
        for handle, (tensor, where) in zip(self.handles, saved):
            if tensor.shape != handle.shape or tensor.dtype != handle.dtype:
                raise CheckpointError(
                    f"checkpoint: recomputed saved value {handle.index}, saved by {where}, has "
                    f"shape {tensor.shape} and dtype {tensor.dtype}, but the first forward "
                    f"saved shape {handle.shape} and dtype {handle.dtype}: the checkpointed "
                    f"function must run the same ops on the same shapes when recomputed "
                    f"(determinism_check='none' skips this check)")
        if len(saved) != len(self.handles):
            extra = saved[len(self.handles)][1] if len(saved) > len(self.handles) else None
            raise CheckpointError(
                f"checkpoint: the recomputation saved {len(saved)} values for backward, the "
                f"first forward {len(self.handles)}"
                + (f" (the first extra one saved by {extra})" if extra else "")
                + ": the checkpointed function must run the same ops when recomputed "
                  "(determinism_check='none' skips this check)")


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

    def before_forward(self, op, inputs, attrs):
        self.op = op.__name__
        scope = STATE.module_scope
        self.module = scope.path if scope is not None else None

    def where(self):
        return self.op if self.module is None else f"{self.op} in module {self.module!r}"
