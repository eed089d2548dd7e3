"""Grad mode: whether new ops record themselves for backward.

``no_grad``, ``enable_grad`` and ``set_grad_enabled`` work as context managers and as
decorators, like PyTorch's. The flag lives on one small state object that the hot path reads
directly (``STATE.grad_enabled``), beside the other process-wide modes (saved-tensor hooks,
observers, the running module), each changed only through its own context manager.
"""

import functools
import inspect

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "is_inference_mode_enabled", "STATE"]


class _AutogradState:
    """Process-wide autograd modes (retrograd runs ops on one thread).

    ``observers``: the tools watching ops (see ``autograd/observer.py``; anomaly mode is one),
    a tuple that is empty when none is on; ``backward_observers``: those of them that watch
    backward nodes too (both are set together, by ``observer.set_observers``).
    ``module_scope``: the module whose forward is running (set by ``Module.__call__``; its
    ``path`` names it), or None.
    ``recomputing``: True while ``retrograd.utils.checkpoint`` replays a forward for backward;
    layers with side effects read it (batch norm does not update its running statistics
    again).
    ``inference_mode``: True inside ``inference_mode()`` (which also turns grad mode off).
    """

    __slots__ = ("grad_enabled", "saved_tensors_hooks", "observers", "backward_observers",
                 "module_scope", "recomputing", "inference_mode")

    def __init__(self):
        self.grad_enabled = True
        self.saved_tensors_hooks = []
        self.observers = ()
        self.backward_observers = ()
        self.module_scope = None
        self.recomputing = False
        self.inference_mode = False


STATE = _AutogradState()


def is_grad_enabled():
    """True when ops record the graph for backward."""
    return STATE.grad_enabled


class _GradModeContext:
    """Base for context managers that set ``STATE.grad_enabled`` and restore it on exit."""

    mode = True

    def __enter__(self):
        self._previous = STATE.grad_enabled
        STATE.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled = self._previous
        return False

    def __call__(self, fn):
        return _decorate(fn, lambda: set_grad_enabled(self.mode))


class _BareDecorator(_GradModeContext):
    """Also usable without parentheses, like PyTorch's: ``@no_grad`` as well as ``@no_grad()``."""

    def __new__(cls, fn=None):
        context = super().__new__(cls)
        return context if fn is None else context(fn)


def _decorate(fn, make_context):
    """fn running inside a fresh ``make_context()``; for a generator function, every step of
    the generator runs inside it (calling fn only builds the generator)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            gen = fn(*args, **kwargs)
            try:
                with make_context():
                    value = next(gen)
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        gen.close()
                        raise
                    except BaseException as e:  # thrown into us: pass it on inside the mode
                        with make_context():
                            value = gen.throw(e)
                    else:
                        with make_context():
                            value = gen.send(sent)
            except StopIteration as stop:
                return stop.value

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with make_context():
            return fn(*args, **kwargs)

    return wrapper


class no_grad(_BareDecorator):
    """Ops inside do not record the graph; their results do not require grad.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> with rg.no_grad():
        ...     y = x * 2
        >>> y.requires_grad
        False
    """

    mode = False


class enable_grad(_BareDecorator):
    """Turn graph recording back on inside a ``no_grad`` region.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> with rg.no_grad(), rg.enable_grad():
        ...     y = x * 2
        >>> y.requires_grad
        True
    """

    mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode``. Takes effect at once (like PyTorch), and when used as a
    context manager restores the previous mode on exit.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([1.0, 2.0], requires_grad=True)
        >>> with rg.autograd.set_grad_enabled(False):
        ...     y = x * 2
        >>> y.requires_grad, rg.autograd.is_grad_enabled()
        (False, True)
    """

    def __init__(self, mode):
        self.mode = bool(mode)
        self._previous = STATE.grad_enabled
        STATE.grad_enabled = self.mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        STATE.grad_enabled = self._previous  # as a decorator it changes nothing until called
        return super().__call__(fn)


def is_inference_mode_enabled():
    """True inside an ``inference_mode()`` block."""
    return STATE.inference_mode


class inference_mode:
    """PyTorch's inference mode, as a context manager or decorator (``@inference_mode``,
    ``@inference_mode()``): ops inside record no graph, as under ``no_grad``.
    ``inference_mode(False)`` leaves grad mode as it is (and inference mode off) inside.

    NOTE: PyTorch also marks the tensors made inside as "inference tensors" that autograd
    later refuses; retrograd's are ordinary tensors that do not require grad, as ``no_grad``
    makes them.

    Example:
        >>> import retrograd as rg
        >>> x = rg.ones(2, requires_grad=True)
        >>> with rg.inference_mode():
        ...     y = x * 2
        >>> y.requires_grad, rg.is_inference_mode_enabled()
        (False, False)
    """

    def __new__(cls, mode=True):
        context = super().__new__(cls)
        if not callable(mode):
            return context
        context.mode = True  # bare decorator, @inference_mode: mode is the function
        return context(mode)

    def __init__(self, mode=True):
        self.mode = bool(mode)

    def __enter__(self):
        self._previous = (STATE.grad_enabled, STATE.inference_mode)
        if self.mode:
            STATE.grad_enabled = False
        STATE.inference_mode = self.mode
        return self

    def __exit__(self, *exc):
        STATE.grad_enabled, STATE.inference_mode = self._previous
        return False

    def __call__(self, fn):
        return _decorate(fn, lambda: inference_mode(self.mode))
