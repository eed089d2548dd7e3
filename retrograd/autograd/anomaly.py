"""Anomaly mode: every node remembers where it was created, and backward stops at the
first op whose gradient holds NaN or Inf, naming the op and that line."""

import functools
import os
import sys
import traceback

import numpy as np

from retrograd.autograd.grad_mode import STATE
from retrograd.autograd.observer import OpObserver, set_observers

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "creation_stack", "creation_text",
           "add_creation_note", "check_finite"]


class detect_anomaly:
    """Context manager (and decorator) that turns anomaly mode on: ops record the user's line
    that created them, and backward raises at the first op whose gradient holds NaN or Inf
    (``check_nan=False`` keeps the sites but skips that check). Off by default: recording a
    stack per op is slow. Anomaly mode is an observer of ops (autograd/observer.py); an
    inner detect_anomaly or set_detect_anomaly replaces the outer one until it exits.

    Example:
        >>> import numpy as np
        >>> import retrograd as rg
        >>> x = rg.tensor([-1.0], requires_grad=True)
        >>> with np.errstate(invalid="ignore"), rg.autograd.detect_anomaly():
        ...     y = x.sqrt()  # NaN
        ...     y.backward(rg.tensor([1.0]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        RuntimeError: SqrtBackward: backward produced NaN in the gradient of input 0 ...
    """

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self._previous = _install(_AnomalyObserver(self.check_nan))
        return self

    def __exit__(self, *exc):
        _install(self._previous)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly(detect_anomaly):
    """Set anomaly mode on or off; as a context manager, restores the previous mode."""

    def __init__(self, mode, check_nan=True):
        super().__init__(check_nan)
        self._previous = _install(_AnomalyObserver(check_nan) if mode else None)

    def __enter__(self):
        return self


def is_anomaly_enabled():
    """True while anomaly mode is on."""
    return _current() is not None


def is_anomaly_check_nan_enabled():
    """True while anomaly mode is on and checks gradients for NaN and Inf."""
    current = _current()
    return current is not None and current.check_nan


class _AnomalyObserver(OpObserver):
    """Anomaly mode on the observer slot: every recorded node gets its creation site, and
    every backward's gradients are checked for NaN and Inf (unless check_nan is False)."""

    def __init__(self, check_nan):
        self.check_nan = check_nan

    def after_forward(self, op, node, inputs, outputs, module_path):
        if node is not None:
            node.creation_site = creation_stack()

    def after_backward(self, node, grad_outputs, grad_inputs):
        if self.check_nan:
            check_finite(node, grad_inputs)


def _current():
    for observer in STATE.observers:
        if type(observer) is _AnomalyObserver:
            return observer
    return None


def _install(observer):
    """Make ``observer`` (or None: anomaly mode off) the anomaly observer; returns the one it
    replaces."""
    previous = _current()
    others = tuple(o for o in STATE.observers if o is not previous)
    set_observers(others + ((observer,) if observer is not None else ()))
    return previous


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def creation_stack():
    """The call stack where an op was created, without retrograd's own innermost frames,
    so that the last frame is the user's line."""
    frames = traceback.extract_stack(sys._getframe(2))
    while len(frames) > 1 and frames[-1].filename.startswith(_PACKAGE_DIR):
        frames.pop()
    return frames


# ---- used by the engine ----
def creation_text(node):
    """Where the node's op was created (the user's line), or how to find out."""
    site = node.creation_site
    if not site:
        return "(turn on retrograd.autograd.detect_anomaly() to see where it was created)"
    frame = site[-1]
    return f"created at {frame.filename}:{frame.lineno}, in {frame.name}: {frame.line}"


def add_creation_note(error, node):
    """Attach the op's creation line to an error raised by its backward (anomaly mode)."""
    if node.creation_site and hasattr(error, "add_note"):
        error.add_note(f"The failing backward belongs to {node.name()}, {creation_text(node)}")


def check_finite(node, grads):
    """Raise, naming the op and its creation line, when a gradient holds NaN or Inf."""
    for i, g in enumerate(grads):
        if g is None:
            continue
        data = getattr(g, "_data", g)  # a Tensor under create_graph
        if not np.all(np.isfinite(data)):
            bad = "NaN" if np.isnan(data).any() else "Inf"
            raise RuntimeError(f"{node.name()}: backward produced {bad} in the gradient of "
                               f"input {i} (shape {data.shape}); the op was "
                               f"{creation_text(node)}")
