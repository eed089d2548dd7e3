"""Anomaly mode: every node remembers where it was created, and backward stops at the
first op whose gradient holds NaN or Inf, naming the op and that line."""

import functools

import numpy as np

from retrograd.autograd.grad_mode import STATE

__all__ = ["detect_anomaly", "set_detect_anomaly", "creation_text", "add_creation_note",
           "check_finite"]


class detect_anomaly:
    """Context manager (and decorator) that turns anomaly mode on: ops record the user's line
    that created them, and backward raises at the first op whose gradient holds NaN or Inf
    (``check_nan=False`` keeps the sites but skips that check). Off by default: recording a
    stack per op is slow.

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
        self._previous = (STATE.anomaly_enabled, STATE.anomaly_check_nan)
        STATE.anomaly_enabled, STATE.anomaly_check_nan = True, self.check_nan
        return self

    def __exit__(self, *exc):
        STATE.anomaly_enabled, STATE.anomaly_check_nan = self._previous
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
        self._previous = (STATE.anomaly_enabled, STATE.anomaly_check_nan)
        STATE.anomaly_enabled, STATE.anomaly_check_nan = bool(mode), check_nan

    def __enter__(self):
        return self


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
