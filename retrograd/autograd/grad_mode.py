"""Grad mode: whether new ops record themselves for backward.

``no_grad``, ``enable_grad`` and ``set_grad_enabled`` work as context managers and as
decorators, like PyTorch's. The flag lives on one small state object that the hot path reads
directly (``STATE.grad_enabled``); it is the only mutable mode of the autograd package, and it
is changed only through these context managers.
"""

import functools

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "STATE"]


class _AutogradState:
    """Process-wide autograd modes (retrograd runs ops on one thread)."""

    __slots__ = ("grad_enabled", "anomaly_enabled", "anomaly_check_nan", "saved_tensors_hooks")

    def __init__(self):
        self.grad_enabled = True
        self.anomaly_enabled = False
        self.anomaly_check_nan = True
        self.saved_tensors_hooks = []


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
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Ops inside do not record the graph; their results do not require grad."""

    mode = False


class enable_grad(_GradModeContext):
    """Turn graph recording back on inside a ``no_grad`` region."""

    mode = True


class set_grad_enabled(_GradModeContext):
    """Set grad mode to ``mode``. Takes effect at once (like PyTorch), and when used as a
    context manager restores the previous mode on exit."""

    def __init__(self, mode):
        self.mode = bool(mode)
        self._previous = STATE.grad_enabled
        STATE.grad_enabled = self.mode

    def __enter__(self):
        return self

    def __call__(self, fn):
        STATE.grad_enabled = self._previous
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper
