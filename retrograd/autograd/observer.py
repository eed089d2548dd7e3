"""The observer slot: the one place through which tools watch every op, forward and backward.

Anomaly mode, and the tools built on retrograd's tape (profiler, NaN/Inf guard, memory ledger,
attention capture, autocast), observe ops through this slot instead of asking users for hooks.
An observer is an ``OpObserver`` subclass; ``observe(observer)`` turns it on for a ``with``
block. While no observer is on, ``Function.apply`` and the engine each test one attribute
(``STATE.observers``, an empty tuple) and take their usual path, so an unused slot costs
nothing measurable.

With observers on, each op runs as:

    inputs = observer.before_forward(op, inputs, attrs) or inputs     (each observer in turn)
    op = observer.kernel_class(op) or op                              (each observer in turn)
    outputs = the op's forward (the op itself runs unobserved)
    observer.after_forward(op, node, inputs, outputs, module_path)

and each node of the backward graph (``AccumulateGrad`` leaves included) as:

    observer.before_backward(node, grad_outputs)
    grad_inputs = node.backward(...)  (checked, broadcast undone, hooks run)
    observer.after_backward(node, grad_outputs, grad_inputs)

An observer may also run each op as a subclass of its own (``kernel_class``: the profiler's
timed kernels), and is told when named regions of work begin and end (``region``: an
optimizer's step, a checkpoint's recompute, a user's record_function).

Observers are called with the slot empty: the ops they run themselves are not observed.
``op`` is the Function subclass, ``node`` the recorded graph node (None when nothing was
recorded: grad mode off, or no input requires grad), ``module_path`` the path of the module
whose forward is running (``"layers.1.0.conv2"``; ``""`` for the outermost module, None
outside every module). A recorded node keeps its module path: ``node.module_path``.
Gradients are arrays in a plain backward and Tensors under ``create_graph=True``.
"""

from retrograd.autograd.grad_mode import STATE

__all__ = ["OpObserver", "ObserverBlock", "observe", "current_module_path", "region",
           "set_observers", "casting_inputs", "kernel_subclass"]


class OpObserver:
    """Base class of tools that watch ops; every method does nothing unless overridden.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.observer import OpObserver, observe
        >>> class OpNames(OpObserver):
        ...     def __init__(self):
        ...         self.forward, self.backward = [], []
        ...     def after_forward(self, op, node, inputs, outputs, module_path):
        ...         self.forward.append(op.__name__)
        ...     def after_backward(self, node, grad_outputs, grad_inputs):
        ...         self.backward.append(node.name())
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> names = OpNames()
        >>> with observe(names):
        ...     (x.exp() * 2.0).sum().backward()
        >>> names.forward
        ['Exp', 'Mul', 'Sum']
        >>> names.backward
        ['SumBackward', 'MulBackward', 'ExpBackward', 'AccumulateGrad']
    """

    watches_backward = True    # False: before_backward/after_backward are never called
    replayed_by_checkpoint = False  # True: a checkpoint's recompute runs replay_observer()

    def before_forward(self, op, inputs, attrs):
        """Called before ``op`` runs on ``inputs`` (a tuple: Tensors and constants). May return
        a replacement tuple of inputs (autocast casts them); None keeps them."""
        return None

    def after_forward(self, op, node, inputs, outputs, module_path):
        """Called after ``op`` ran: its (possibly replaced) inputs, its output Tensor or tuple
        of Tensors, and the graph node it recorded (None if none)."""

    def replay_observer(self):
        """For an observer that shapes the forward (``replayed_by_checkpoint``: autocast):
        an observer that applies the state this one applies now. A checkpoint takes it when
        its forward runs and puts it on for the recompute, in place of the ones on then."""
        return self

    def kernel_class(self, op):
        """The class to run in place of ``op`` (a subclass with the same name and rules: the
        profiler times kernels this way); None runs ``op`` itself."""
        return None

    def begin_region(self, name, phase):
        """A named region of work begins: ``phase`` is "optimizer" (an optimizer's step),
        "recompute" (checkpointing replays a forward) or None (a user's record_function)."""

    def end_region(self, name, phase):
        """The innermost region begun with these arguments ends."""

    def before_backward(self, node, grad_outputs):
        """Called before ``node``'s backward, with the gradients of its outputs."""

    def after_backward(self, node, grad_outputs, grad_inputs):
        """Called after ``node``'s backward, with the gradients it computed for its inputs
        (one per input, None where not needed; empty for an ``AccumulateGrad`` leaf)."""


class observe:
    """Context manager: ``observer`` watches every op run inside the block (and the backward
    passes run inside it). Observers nest; the innermost is called last.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.observer import OpObserver, observe
        >>> class Shapes(OpObserver):
        ...     seen = []
        ...     def before_forward(self, op, inputs, attrs):
        ...         self.seen.append((op.__name__, [t.shape for t in inputs]))
        >>> with observe(Shapes()) as shapes:
        ...     y = rg.ones(2, 3) @ rg.ones(3, 4)
        >>> shapes.seen
        [('MatMul', [(2, 3), (3, 4)])]
    """

    def __init__(self, observer):
        if not isinstance(observer, OpObserver):
            raise TypeError(f"observe: expected an OpObserver, got {type(observer).__name__}")
        self.observer = observer

    def __enter__(self):
        set_observers(STATE.observers + (self.observer,))
        return self.observer

    def __exit__(self, *exc):
        set_observers(tuple(o for o in STATE.observers if o is not self.observer))
        return False


class ObserverBlock(OpObserver):
    """An OpObserver that is its own context manager: ``with tool:`` turns it on for the
    block (the FLOP counter, the memory ledger, graph recordings). Subclasses that do more on
    entry or exit call super().__enter__() / super().__exit__(*exc)."""

    _observing = None

    def __enter__(self):
        self._observing = observe(self)
        self._observing.__enter__()
        return self

    def __exit__(self, *exc):
        return self._observing.__exit__(*exc)


def set_observers(observers):
    """Make ``observers`` (a tuple) the ones watching ops; those whose ``watches_backward``
    is true also watch backward nodes (the engine tests that tuple alone)."""
    STATE.observers = observers
    STATE.backward_observers = tuple(o for o in observers if o.watches_backward)


def kernel_subclass(op, forward=None, backward=None, **members):
    """A subclass of ``op`` with its name, module and docstring, for ``kernel_class`` (the
    profiler's timed kernels, autocast's float32 ones, checkpointing's recording and replaying
    ones): ``forward`` / ``backward`` (functions of ctx, as an op's) replace the op's, and
    ``members`` are set on the class."""
    body = {"__module__": op.__module__, "__qualname__": op.__qualname__, "__doc__": op.__doc__,
            **members}
    if forward is not None:
        body["forward"] = staticmethod(forward)
    if backward is not None:
        body["backward"] = staticmethod(backward)
    return type(op.__name__, (op,), body)


def casting_inputs():
    """True while an observer casts ops' inputs at their boundary (``casts_inputs``: an
    enabled autocast): code above the ops then leaves dtypes to it."""
    return any(getattr(o, "casts_inputs", False) for o in STATE.observers)


def current_module_path():
    """The path of the module whose forward is running (``""`` for the outermost module), or
    None outside every module."""
    scope = STATE.module_scope
    return scope.path if scope is not None else None


def apply_observed(op, apply, inputs, attrs):
    """``Function.apply`` with observers on: the observers' before_forward, the op itself
    (through ``apply``), then their after_forward with the node it recorded. The slot is
    empty meanwhile, so the op and any op an observer runs are not observed again."""
    observers, watching = STATE.observers, STATE.backward_observers
    STATE.observers = STATE.backward_observers = ()
    try:
        for observer in observers:
            replaced = observer.before_forward(op, inputs, attrs)
            if replaced is not None:
                inputs = tuple(replaced)
        runner = op
        for observer in observers:
            runner = observer.kernel_class(runner) or runner
        outputs = apply(*inputs, **attrs) if runner is op else runner.apply(*inputs, **attrs)
        node = None
        for t in outputs if type(outputs) is tuple else (outputs,):
            if t.grad_fn is not None:
                node = t.grad_fn
                break
        scope = STATE.module_scope
        module_path = scope.path if scope is not None else None
        for observer in observers:
            observer.after_forward(op, node, inputs, outputs, module_path)
    finally:
        STATE.observers, STATE.backward_observers = observers, watching
    return outputs


class region:
    """Context manager: tell the observers that a named region of work runs (see
    OpObserver.begin_region). Costs one attribute test when no observer is on.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.autograd.observer import OpObserver, observe, region
        >>> class Regions(OpObserver):
        ...     seen = []
        ...     def begin_region(self, name, phase):
        ...         self.seen.append((name, phase))
        >>> with observe(Regions()) as regions, region("SGD.step", "optimizer"):
        ...     pass
        >>> regions.seen
        [('SGD.step', 'optimizer')]
    """

    __slots__ = ("name", "phase", "observers")

    def __init__(self, name, phase=None):
        self.name, self.phase = name, phase

    def __enter__(self):
        self.observers = observers = STATE.observers
        if observers:
            _notify_region(observers, True, self.name, self.phase)
        return self

    def __exit__(self, *exc):
        if self.observers:
            _notify_region(self.observers, False, self.name, self.phase)
        return False


def _notify_region(observers, begin, name, phase):
    watching = STATE.backward_observers
    STATE.observers = STATE.backward_observers = ()
    try:
        for observer in observers:
            if begin:
                observer.begin_region(name, phase)
            else:
                observer.end_region(name, phase)
    finally:
        STATE.observers, STATE.backward_observers = observers, watching


def notify_backward(observers, before, node, grad_outputs, grad_inputs=None):
    """Tell ``observers`` that ``node``'s backward is about to run (``before``) or has run,
    with the slot empty meanwhile (an observer's own ops are not observed). ``observers``
    are the ones that watch backward (STATE.backward_observers)."""
    every = STATE.observers
    STATE.observers = STATE.backward_observers = ()
    try:
        for observer in observers:
            if before:
                observer.before_backward(node, grad_outputs)
            else:
                observer.after_backward(node, grad_outputs, grad_inputs)
    finally:
        STATE.observers, STATE.backward_observers = every, observers
