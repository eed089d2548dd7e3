"""Anomaly mode and the NaN/Inf guard: every node remembers where it was created, and the
first op that makes a NaN or an Inf is reported with the op, its module, statistics of its
inputs and the user's line that created it.

- Backward (``detect_anomaly()``, ``check_nan=True``): the engine stops at the first op whose
  backward puts NaN or Inf into a gradient.
- Forward too (``check_forward=True``, or ``nan_guard()``, which turns both on): every op's
  floating outputs are checked as they are made (``np.isfinite(out).all()``), and the guard
  stops at the first op that makes NaN or Inf from inputs without NaN or +inf.

The -inf rule (attention masks). -inf is how masks say "never attend", so the forward check
allows it: an op's output may hold -inf when one of its inputs or constant arguments holds
-inf (a float mask built with -inf, ``scores + mask``, ``masked_fill(mask, -inf)``,
``where(c, x, -inf)``, and then ``max``, ``log_softmax`` or a reshape of such scores). NaN
and +inf in an output are always anomalies, and so is -inf made from inputs without it
(``log(0)``). Gradients get no exception: NaN, +inf or -inf in a gradient is an anomaly.

An input that already holds NaN or +inf when it reaches an op was not made by an op under
the guard (which would have stopped there): it is data, a parameter, or a tensor computed
before the guard began. The first op that passes it on is reported, saying so.
"""

import functools
import os
import sys
import traceback

import numpy as np

from retrograd.autograd.grad_mode import STATE
from retrograd.autograd.observer import OpObserver, set_observers
from retrograd.dtypes import _FLOATING_NUMPY as _FLOATING

__all__ = ["AnomalyError", "detect_anomaly", "set_detect_anomaly", "nan_guard",
           "is_anomaly_enabled", "is_anomaly_check_nan_enabled",
           "is_anomaly_check_forward_enabled", "creation_stack", "creation_text",
           "add_creation_note", "check_finite"]


class AnomalyError(RuntimeError):
    """Raised by anomaly mode and the NaN/Inf guard. Besides the message: ``op`` (the op's
    label, ``"Log"`` in forward, ``"LogBackward"`` in backward), ``phase`` ("forward" or
    "backward"), ``module_path`` (as ``node.module_path``: None outside every module) and
    ``site`` (the user's frame that created the op, a ``traceback.FrameSummary``, or None)."""

    def __init__(self, message, op, phase, module_path, site):
        super().__init__(message)
        self.op, self.phase, self.module_path, self.site = op, phase, module_path, site


class detect_anomaly:
    """Context manager (and decorator) that turns anomaly mode on: ops record the user's line
    that created them, and backward raises ``AnomalyError`` (a RuntimeError) at the first op
    whose gradient holds NaN or Inf (``check_nan=False`` keeps the sites but skips that
    check). ``check_forward=True`` checks every op's outputs in forward as well, with the
    -inf rule of attention masks (see the module docstring and ``nan_guard``). Off by
    default: recording a stack per op is slow. Anomaly mode is an observer of ops
    (autograd/observer.py); an inner detect_anomaly or set_detect_anomaly replaces the
    outer one until it exits.

    Example:
        >>> import numpy as np
        >>> import retrograd as rg
        >>> x = rg.tensor([-1.0], requires_grad=True)
        >>> with np.errstate(invalid="ignore"), rg.autograd.detect_anomaly():
        ...     y = x.sqrt()  # NaN
        ...     y.backward(rg.tensor([1.0]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        retrograd...AnomalyError: SqrtBackward: backward produced NaN in the gradient of input 0 ...
    """

    def __init__(self, check_nan=True, check_forward=False):
        self.check_nan, self.check_forward = bool(check_nan), bool(check_forward)

    def __enter__(self):
        self._previous = _install(_AnomalyObserver(self.check_nan, self.check_forward))
        return self

    def __exit__(self, *exc):
        _install(self._previous)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            previous = _install(_AnomalyObserver(self.check_nan, self.check_forward))
            try:
                return fn(*args, **kwargs)
            finally:
                _install(previous)

        return wrapper


class set_detect_anomaly(detect_anomaly):
    """Set anomaly mode on or off; as a context manager, restores the previous mode."""

    def __init__(self, mode, check_nan=True, check_forward=False):
        super().__init__(check_nan, check_forward)
        self._previous = _install(
            _AnomalyObserver(self.check_nan, self.check_forward) if mode else None)

    def __enter__(self):
        return self


class nan_guard(detect_anomaly):
    """Context manager (and decorator, ``@nan_guard()``): stop at the first op that makes
    NaN or Inf, in forward or in backward. It is anomaly mode with both checks on,
    ``detect_anomaly(check_nan=True, check_forward=True)``, and raises ``AnomalyError`` (a
    RuntimeError) naming the op, its module path, its inputs (shape, dtype, min, max, mean,
    count of non-finite values) and the user's line that created it.

    Forward: the first op whose inputs hold no NaN or +inf and whose output holds NaN, +inf,
    or -inf that none of its inputs or constant arguments held. Backward: the first op whose
    backward puts NaN or Inf (either sign) into a gradient, e.g. sqrt at 0 (forward 0,
    gradient inf). -inf is allowed in forward only where a mask brings it: an op's output
    may hold -inf when one of its inputs or constant arguments (``masked_fill(mask, -inf)``,
    ``where(c, x, -inf)``, ``scores + mask``) holds -inf, so attention with -inf masks and
    causal training pass; NaN and +inf always stop it. Costs one ``np.isfinite`` pass over
    each floating output, and the creation site of each op, while on; nothing while off.

    Example:
        >>> import retrograd as rg
        >>> x = rg.tensor([1.0, 0.0], requires_grad=True)
        >>> with rg.autograd.nan_guard():
        ...     y = x.log()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        retrograd...AnomalyError: Log: forward produced -inf in output 0 ...
    """

    def __init__(self):
        super().__init__(check_nan=True, check_forward=True)


def is_anomaly_enabled():
    """True while anomaly mode is on."""
    return _current() is not None


def is_anomaly_check_nan_enabled():
    """True while anomaly mode is on and checks gradients for NaN and Inf."""
    current = _current()
    return current is not None and current.check_nan


def is_anomaly_check_forward_enabled():
    """True while anomaly mode is on and checks the outputs of ops in forward too."""
    current = _current()
    return current is not None and current.check_forward


class _AnomalyObserver(OpObserver):
    """Anomaly mode on the observer slot: every recorded node gets its creation site; every
    backward's gradients are checked for NaN and Inf (unless check_nan is False), and, with
    check_forward, every op's floating outputs."""

    def __init__(self, check_nan, check_forward):
        self.check_nan, self.check_forward = check_nan, check_forward
        self._attrs = None   # the running op's keyword attributes (masked_fill's value)

    def before_forward(self, op, inputs, attrs):
        if self.check_forward:
            self._attrs = attrs

    def after_forward(self, op, node, inputs, outputs, module_path):
        if node is not None:
            node.creation_site = creation_stack()
        if self.check_forward:
            for i, out in enumerate(outputs if type(outputs) is tuple else (outputs,)):
                data = out._data
                if data.dtype in _FLOATING and not np.isfinite(data).all():
                    _judge_forward(op, node, inputs, self._attrs, i, data)

    def after_backward(self, node, grad_outputs, grad_inputs):
        if self.check_nan:
            check_finite(node, grad_inputs, grad_outputs)


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
    # NOTE: a frame walk with source lines read only when a report shows them; at a depth of
    # 40 frames traceback.extract_stack costs ~70 us per op (it reads every line and column
    # up front), this ~25 us.
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    frames = []
    while frame is not None:
        code = frame.f_code
        frames.append(traceback.FrameSummary(code.co_filename, frame.f_lineno, code.co_name,
                                             lookup_line=False))
        frame = frame.f_back
    frames.reverse()
    return traceback.StackSummary.from_list(frames)


# ---- used by the engine ----
def creation_text(node):
    """Where the node's op was created (the user's line), or how to find out."""
    return _site_text(node.creation_site)


def _site_text(site):
    if not site:
        return "(turn on retrograd.autograd.detect_anomaly() to see where it was created)"
    frame = site[-1]
    text = f"created at {frame.filename}:{frame.lineno}, in {frame.name}"
    return f"{text}: {frame.line}" if frame.line else text  # no source line: stdin, exec


def add_creation_note(error, node):
    """Attach the op's creation line to an error raised by its backward (anomaly mode)."""
    if node.creation_site and hasattr(error, "add_note"):
        error.add_note(f"The failing backward belongs to {node.name()}, {creation_text(node)}")


def check_finite(node, grads, grad_outputs=()):
    """Raise AnomalyError, naming the op, its module, the gradients it received, what it
    saved and its creation line, when a gradient it computed holds NaN or Inf."""
    for i, g in enumerate(grads):
        if g is None:
            continue
        data = getattr(g, "_data", g)  # a Tensor under create_graph
        if not np.all(np.isfinite(data)):
            _raise_backward(node, i, data, grad_outputs)


def _raise_backward(node, i, data, grad_outputs):
    bad = "NaN" if np.isnan(data).any() else "Inf"
    received = _first_bad(grad_outputs, _is_nonfinite)
    if received is None:
        head = f"{node.name()}: backward produced {bad} in the gradient of input {i}"
    else:
        head = (f"{node.name()}: the gradient of output {received} already held NaN or Inf when "
                f"it reached this op (it was passed to backward() or changed by a hook), and "
                f"the gradient of input {i} holds {bad}")
    lines = [f"{head} (shape {data.shape}); the op was {creation_text(node)}",
             f"  {_module_text(node._module_scope)}",
             f"  gradient of input {i}: {_summary(data)}"]
    lines += [f"  gradient of output {k}: {_summary(getattr(g, '_data', g))}"
              for k, g in enumerate(grad_outputs) if g is not None]
    lines += _saved_lines(node)
    site = node.creation_site[-1] if node.creation_site else None
    raise AnomalyError("\n".join(lines), node.name(), "backward", node.module_path, site)


# ---- the forward check (cold path: an output holds NaN or Inf) ----
def _judge_forward(op, node, inputs, attrs, i, data):
    """Raise unless output ``i`` of ``op`` is allowed by the -inf rule."""
    arrays = [_array_of(v) for v in inputs]
    incoming = _first_bad(arrays, _holds_nan_or_posinf)
    if incoming is None and not _holds_nan_or_posinf(data):
        constants = list(attrs.values()) if attrs else []
        if any(_holds_neginf(v) for v in arrays + constants):
            return  # -inf brought by a mask (the -inf rule)
    scope = STATE.module_scope
    site = node.creation_site if node is not None else creation_stack()
    lines = [_forward_head(op.__name__, arrays, i, data, incoming),
             f"  {_module_text(scope)}", f"  {_site_text(site)}"]
    lines += [f"  input {k}: {_summary(a)}" for k, a in enumerate(arrays)]
    if attrs:
        lines.append("  attributes: " + ", ".join(f"{k}={v!r}" for k, v in attrs.items()))
    lines.append(f"  output {i}: {_summary(data)}")
    module_path = scope.path if scope is not None else None
    raise AnomalyError("\n".join(lines), op.__name__, "forward", module_path,
                       site[-1] if site else None)


def _forward_head(name, arrays, i, data, incoming):
    """The first line of a forward report: what the op made and from what."""
    if incoming is not None:
        return (f"{name}: input {incoming} already held {_kinds(arrays[incoming])} when it "
                f"reached this op: no op under the guard made it (it is data, a parameter, or "
                f"a tensor computed before the guard began)")
    masked = any(_holds_neginf(a) for a in arrays)
    if not _holds_nan_or_posinf(data):
        why = " (-inf is allowed only where an input or a constant argument holds -inf)"
    elif masked and np.isnan(data).any():
        why = " (a row or window of -inf only, e.g. a fully masked row, gives NaN)"
    else:
        why = ""
    source = "inputs without NaN or +inf" if masked else "finite inputs"
    return f"{name}: forward produced {_kinds(data)} in output {i} (shape {data.shape}) " \
           f"from {source}{why}"


def _array_of(value):
    data = getattr(value, "_data", value)
    return data if isinstance(data, np.ndarray) else value


def _floating(value):
    return isinstance(value, np.ndarray) and value.dtype in _FLOATING


def _holds_nan_or_posinf(value):
    if _floating(value):
        return bool(np.isnan(value).any() or (value == np.inf).any())
    return isinstance(value, float) and (value != value or value == np.inf)


def _holds_neginf(value):
    value = getattr(value, "_data", value)
    if _floating(value):
        return bool((value == -np.inf).any())
    return isinstance(value, float) and value == -np.inf   # np.float64 is a float too


def _is_nonfinite(value):
    value = getattr(value, "_data", value)
    return _floating(value) and not np.isfinite(value).all()


def _first_bad(values, test):
    for k, v in enumerate(values):
        if v is not None and test(v):
            return k
    return None


def _kinds(data):
    """"NaN", "+inf", "-inf" or a list of them, for the values the array holds."""
    kinds = [k for k, n in _nonfinite_counts(data).items() if n]
    return " and ".join(kinds) if kinds else "no NaN or Inf"


def _nonfinite_counts(data):
    return {"NaN": int(np.isnan(data).sum()), "+inf": int((data == np.inf).sum()),
            "-inf": int((data == -np.inf).sum())}


def _module_text(scope):
    if scope is None:
        return "module: none (made outside every module's forward)"
    kind = type(scope.module).__name__
    path = scope.path
    return f"module: {path!r} ({kind})" if path else f"module: the outermost module ({kind})"


def _summary(value):
    """One line about an input, an output or a gradient: dtype, shape, min, max, mean (of the
    finite values) and the count of non-finite values."""
    if not isinstance(value, np.ndarray):
        return f"constant {value!r}"
    head = f"{value.dtype} {value.shape}"
    if value.size == 0:
        return f"{head}, empty"
    if value.dtype == np.bool_:
        return f"{head}, {int(value.sum())} True"
    if value.dtype.kind not in "fiuc" and value.dtype not in _FLOATING:
        return head
    finite = value
    counts = {}
    if value.dtype in _FLOATING:
        counts = _nonfinite_counts(value)
        finite = value[np.isfinite(value)]
    text = head
    if finite.size:
        finite = finite.astype(np.float64)
        text += (f", min {finite.min():.4g}, max {finite.max():.4g}, "
                 f"mean {finite.mean():.4g}")
    else:
        text += ", no finite values"
    if counts:
        total = sum(counts.values())
        detail = ", ".join(f"{k} {n}" for k, n in counts.items() if n)
        text += f", non-finite {total}" + (f" ({detail})" if total else "")
    return text


def _saved_lines(node):
    """Statistics of what the node saved for backward (its inputs or outputs), if still held."""
    from retrograd.autograd.function import _KIND_NAMES, PACKED  # cold path; avoids a cycle

    lines = []
    for saved in getattr(node, "_saved", None) or ():
        if saved is None:
            continue
        if saved.kind == PACKED:
            lines.append(f"  saved {_KIND_NAMES[saved.packed_kind]} {saved.position}: "
                         f"packed by saved_tensors_hooks (not shown)")
            continue
        value = _array_of(saved.value)
        lines.append(f"  saved {_KIND_NAMES[saved.kind]} {saved.position}: {_summary(value)}")
    return lines
