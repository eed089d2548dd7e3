"""GradScaler: loss scaling for float16 training, with a record of what every step did.

Why loss scaling. float16 has a narrow range: its largest value is 65504, its smallest normal
number 2**-14 (about 6.1e-5) and its smallest subnormal 2**-24 (about 5.96e-8). A gradient
below about 3e-8 rounds to zero in float16 (flushes), and one below 6.1e-5 keeps only a few
significant bits. Gradients of a network are often that small, so a backward pass run in
float16 loses many of them. Multiplying the loss by a factor S before ``backward()`` multiplies
every gradient by S (backward is linear in the output's gradient): the gradients move up into
float16's range. Before the optimizer uses them, they are divided by S again, in the float32
(or float64) of the master parameters, where nothing is lost.

Choosing S. Too small, and gradients still flush; too large, and some overflow to inf (or
become nan). The scaler adapts: a step whose gradients hold an inf or a nan is *skipped* (the
optimizer does not run, the parameters keep their values) and ``update()`` multiplies S by
``backoff_factor`` (0.5); after ``growth_interval`` clean steps in a row, S is multiplied by
``growth_factor`` (2.0). S thus stays close to the largest value that does not overflow.

The API is PyTorch's ``torch.amp.GradScaler`` (same arguments, same state dict, the same
errors for unscale_() twice or after step()), on the CPU. The scale is kept as a float32 value,
as in PyTorch, so both produce the same sequence of scales. Unlike PyTorch, ``step()`` returns a
``StepRecord`` saying whether the step was skipped, which parameters held inf/nan (named through
``model=``), and which scale the gradients carried; ``update()`` fills in the scale it chose.
``scaler.history`` keeps every record, for plots of the scale over time.

Example:
    >>> import retrograd as rg
    >>> from retrograd.amp.grad_scaler import GradScaler
    >>> model = rg.nn.Linear(2, 1)
    >>> opt = rg.optim.SGD(model.parameters(), lr=0.1)
    >>> scaler = GradScaler(init_scale=1024.0, growth_interval=2, model=model)
    >>> x = rg.ones(4, 2)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     loss = (model(x) ** 2).mean()
    ...     scaler.scale(loss).backward()   # gradients carry the factor 1024
    ...     record = scaler.step(opt)       # unscaled, checked, then opt.step()
    ...     scaler.update()
    >>> [(r.scale, r.new_scale) for r in scaler.history]
    [(1024.0, 1024.0), (1024.0, 2048.0), (2048.0, 2048.0)]
    >>> model.weight.grad.numpy()[0, 0] = float("inf")   # as if the backward overflowed
    >>> record = scaler.step(opt)
    >>> record.skipped, record.nonfinite
    (True, ['weight'])
    >>> scaler.update()
    >>> scaler.get_scale(), scaler.skipped_steps
    (1024.0, 1)
"""

import math
import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np

from retrograd import _checks
from retrograd.amp.autocast import ACCELERATORS
from retrograd.tensor import Tensor

__all__ = ["GradScaler", "StepRecord"]

_OWNER = "GradScaler"
_STATE_KEYS = ("scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker")

# what has happened to an optimizer since the last update()
_UNSCALED = "unscaled"
_STEPPED = "stepped"


@dataclass
class StepRecord:
    """What one ``GradScaler.step(optimizer)`` did.

    Attributes:
        step: the scaler's iteration (the number of ``update()`` calls before this step).
        optimizer: which optimizer stepped, as its class name and the order in which the
            scaler first saw it (``"SGD#0"``, ``"Adam#1"``).
        skipped: True when some gradient held inf/nan, so ``optimizer.step()`` did not run.
        nonfinite: the names of the parameters whose gradients held inf/nan.
        scale: the scale the gradients carried (1.0 for a disabled scaler).
        new_scale: the scale ``update()`` chose after this step (None until it runs).
        result: what ``optimizer.step()`` returned (None when skipped; a Tensor comes back
            detached, so that ``history`` keeps no graph alive).
    """

    step: int
    optimizer: str
    skipped: bool
    nonfinite: list = field(default_factory=list)
    scale: float = 1.0
    new_scale: float = None
    result: object = None


@dataclass
class _IterationState:
    """One optimizer's state between two update() calls."""

    optimizer: object  # held, so that its id is not reused within the iteration
    stage: str = _UNSCALED
    found_inf: bool = False
    nonfinite: list = field(default_factory=list)
    scale: float = 1.0


class GradScaler:
    """Scales the loss, unscales and checks the gradients, skips steps that overflowed and
    adapts the scale (see the module docstring).

    Args:
        device: "cpu" (retrograd computes on the CPU only).
        init_scale: the first scale. Default: 2.0**16.
        growth_factor: the scale is multiplied by it after ``growth_interval`` clean
            iterations in a row (> 1). Default: 2.0.
        backoff_factor: the scale is multiplied by it after an iteration that found inf/nan
            (between 0 and 1). Default: 0.5.
        growth_interval: the number of clean iterations before the scale grows. Default: 2000.
        enabled: False makes every method a pass-through (``scale`` returns its input,
            ``step`` just calls ``optimizer.step()``), so one training loop serves both.
        model: (retrograd extension) a Module whose ``named_parameters()`` name the
            parameters in the records; without it a parameter is named by its position in
            the optimizer, like ``param_groups[0][3] (64x32)``.

    ``history`` holds a ``StepRecord`` for every ``step()`` call since the scaler was made: it
    grows by one small record per step and is never trimmed (call ``history.clear()`` to drop
    it, e.g. in a very long run).
    """

    def __init__(self, device="cpu", init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True, model=None):
        self._enabled = _checks.boolean(_OWNER, "enabled", enabled)
        if not _device_available(device, self._enabled):
            self._enabled = False
        self._scale = _float32(_check_init_scale(_OWNER, "init_scale", init_scale))
        self._growth_factor = _check_growth_factor(_OWNER, growth_factor)
        self._backoff_factor = _check_backoff_factor(_OWNER, backoff_factor)
        self._growth_interval = _checks.positive_int(_OWNER, "growth_interval", growth_interval)
        self._growth_tracker = 0
        self._model = _check_model(model)
        self._iteration = 0
        self._states = {}  # id(optimizer) -> _IterationState, for this iteration
        self._pending = []  # this iteration's records, whose new_scale update() fills in
        self._labels = weakref.WeakKeyDictionary()  # optimizer -> "SGD#0"
        self._optimizers_seen = 0
        self.history = []

    # ------------------------------------------------------------------ the training step
    def scale(self, outputs):
        """``outputs`` (a Tensor, or nested lists/tuples of Tensors) multiplied by the current
        scale, differentiably: their backward gives gradients multiplied by the scale. Each
        result keeps its input's dtype. A disabled scaler returns ``outputs`` unchanged."""
        if not self._enabled:
            return outputs
        return self._scale_nested(outputs, "outputs")

    def unscale_(self, optimizer):
        """Divide the gradients of ``optimizer``'s parameters by the scale, in place and in
        their own dtype, and note which hold inf/nan. Call it before working on the true
        gradients (e.g. clipping them); ``step()`` then does not unscale them again. Allowed
        once per optimizer between two ``update()`` calls, and not after ``step()``."""
        if not self._enabled:
            return
        _check_optimizer("GradScaler.unscale_", optimizer)
        state = self._states.get(id(optimizer))
        if state is not None and state.stage == _UNSCALED:
            raise RuntimeError("GradScaler.unscale_: unscale_() has already been called on this "
                               "optimizer since the last update()")
        if state is not None:
            raise RuntimeError("GradScaler.unscale_: unscale_() is being called after step() "
                               "for this optimizer; call it before step(), at most once per "
                               "iteration")
        self._unscale(optimizer, "GradScaler.unscale_")

    def step(self, optimizer, *args, **kwargs):
        """Unscale ``optimizer``'s gradients (unless ``unscale_`` did), then run
        ``optimizer.step(*args, **kwargs)`` unless some gradient holds inf/nan. Returns a
        ``StepRecord`` (also appended to ``history``)."""
        _check_optimizer("GradScaler.step", optimizer)
        if not self._enabled:
            result = optimizer.step(*args, **kwargs)
            return self._record(optimizer, False, [], 1.0, result)
        _refuse_closure(args, kwargs)
        state = self._states.get(id(optimizer))
        if state is not None and state.stage == _STEPPED:
            raise RuntimeError("GradScaler.step: step() has already been called on this "
                               "optimizer since the last update()")
        if state is None:
            state = self._unscale(optimizer, "GradScaler.step")
        result = None if state.found_inf else optimizer.step(*args, **kwargs)
        state.stage = _STEPPED
        return self._record(optimizer, state.found_inf, list(state.nonfinite), state.scale,
                            result)

    def update(self, new_scale=None):
        """Choose the next scale: times ``backoff_factor`` if any optimizer unscaled since the
        last update found inf/nan, times ``growth_factor`` after ``growth_interval`` clean
        iterations in a row, else unchanged. ``new_scale`` (a number or a one-element Tensor)
        sets it instead. Ends the iteration: fills ``new_scale`` of its records. A disabled
        scaler keeps its scale (1.0) and only ends the iteration."""
        if self._enabled and new_scale is not None:
            self._scale = _float32(_check_init_scale("GradScaler.update", "new_scale",
                                                     _as_number(new_scale)))
        elif self._enabled:
            if not self._states:
                raise RuntimeError("GradScaler.update: no inf/nan checks were recorded since "
                                   "the last update(); call step(optimizer) (or "
                                   "unscale_(optimizer)) before update()")
            self._adapt(any(state.found_inf for state in self._states.values()))
        self._end_iteration()

    # ------------------------------------------------------------------ the records
    @property
    def skipped_steps(self):
        """The number of steps in ``history`` that were skipped."""
        return sum(record.skipped for record in self.history)

    # ------------------------------------------------------------------ options
    def get_scale(self):
        """The current scale as a float (1.0 when disabled)."""
        return self._scale if self._enabled else 1.0

    def get_growth_factor(self):
        """The factor the scale grows by after ``growth_interval`` clean iterations."""
        return self._growth_factor

    def set_growth_factor(self, new_factor):
        """Set the growth factor (a number > 1)."""
        self._growth_factor = _check_growth_factor("GradScaler.set_growth_factor", new_factor)

    def get_backoff_factor(self):
        """The factor the scale shrinks by after an iteration that found inf/nan."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor):
        """Set the backoff factor (a number between 0 and 1)."""
        self._backoff_factor = _check_backoff_factor("GradScaler.set_backoff_factor",
                                                     new_factor)

    def get_growth_interval(self):
        """The number of clean iterations in a row after which the scale grows."""
        return self._growth_interval

    def set_growth_interval(self, new_interval):
        """Set the growth interval (a positive int). A tracker already past a smaller new
        interval grows the scale at the next clean iteration."""
        self._growth_interval = _checks.positive_int("GradScaler.set_growth_interval",
                                                     "new_interval", new_interval)

    def is_enabled(self):
        """True unless the scaler was made with ``enabled=False``."""
        return self._enabled

    # ------------------------------------------------------------------ state dict
    def state_dict(self):
        """The scaler's state as plain numbers, with PyTorch's keys: ``scale``,
        ``growth_factor``, ``backoff_factor``, ``growth_interval`` and ``_growth_tracker``
        (empty for a disabled scaler, as in PyTorch). ``history`` is not part of it.

        Example:
            >>> from retrograd.amp.grad_scaler import GradScaler
            >>> GradScaler(init_scale=8.0, growth_interval=100).state_dict()
            {'scale': 8.0, 'growth_factor': 2.0, 'backoff_factor': 0.5, 'growth_interval': 100, '_growth_tracker': 0}
        """  # noqa: E501 - a doctest's output is one line
        if not self._enabled:
            return {}
        return {"scale": self._scale, "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict):
        """Restore a state from ``state_dict()`` (of this scaler, a saved checkpoint, or
        PyTorch's GradScaler). Every key must be present, with a value of the right kind; a
        disabled scaler ignores the call, as in PyTorch."""
        if not self._enabled:
            return
        values = _check_state_dict(state_dict)
        self._scale = _float32(values["scale"])
        self._growth_factor = values["growth_factor"]
        self._backoff_factor = values["backoff_factor"]
        self._growth_interval = values["growth_interval"]
        self._growth_tracker = values["_growth_tracker"]

    def __repr__(self):
        if not self._enabled:
            return "GradScaler(enabled=False)"
        return (f"GradScaler(scale={self._scale}, growth_factor={self._growth_factor}, "
                f"backoff_factor={self._backoff_factor}, "
                f"growth_interval={self._growth_interval}, "
                f"growth_tracker={self._growth_tracker})")

    # ------------------------------------------------------------------ internals
    def _scale_nested(self, value, where):
        if isinstance(value, Tensor):
            return value * self._scale
        if isinstance(value, (list, tuple)):
            items = [self._scale_nested(v, f"{where}[{i}]") for i, v in enumerate(value)]
            if hasattr(value, "_fields"):  # a namedtuple
                return type(value)(*items)
            return type(value)(items)
        raise TypeError(f"GradScaler.scale: outputs must be a Tensor or (nested) lists/tuples of "
                        f"Tensors, but {where} is {_checks.describe(value)}")

    def _unscale(self, optimizer, method):
        """Unscale and check every gradient of ``optimizer``; its state for this iteration."""
        grads = _gradients(optimizer, method)
        names = None
        nonfinite = []
        for group_index, index, p in grads:
            if not _unscale_array(p.grad._data, self._scale):
                names = names if names is not None else self._model_names()
                nonfinite.append(_param_name(p, optimizer, group_index, index, names))
            p.grad._version[0] += 1
        state = _IterationState(optimizer, _UNSCALED, bool(nonfinite), nonfinite, self._scale)
        self._states[id(optimizer)] = state
        return state

    def _model_names(self):
        if self._model is None:
            return {}
        return {id(p): name for name, p in self._model.named_parameters()}

    def _adapt(self, found_inf):
        """PyTorch's rule for the next scale and growth tracker."""
        if found_inf:
            self._scale = _float32(self._scale * self._backoff_factor)
            self._growth_tracker = 0
            return
        self._growth_tracker += 1
        if self._growth_tracker >= self._growth_interval:
            grown = _float32(self._scale * self._growth_factor)
            if math.isfinite(grown):  # beyond float32's range: keep the scale
                self._scale = grown
            self._growth_tracker = 0

    def _record(self, optimizer, skipped, nonfinite, scale, result):
        if isinstance(result, Tensor):
            result = result.detach()
        record = StepRecord(step=self._iteration, optimizer=self._label(optimizer),
                            skipped=skipped, nonfinite=nonfinite, scale=scale, result=result)
        self._pending.append(record)
        self.history.append(record)
        return record

    def _label(self, optimizer):
        try:
            label = self._labels.get(optimizer)
            if label is None:
                label = f"{type(optimizer).__name__}#{self._optimizers_seen}"
                self._labels[optimizer] = label
                self._optimizers_seen += 1
            return label
        except TypeError:  # an optimizer that cannot be weakly referenced or hashed
            return type(optimizer).__name__

    def _end_iteration(self):
        for record in self._pending:
            record.new_scale = self.get_scale()
        self._pending = []
        self._states = {}
        self._iteration += 1


# ---------------------------------------------------------------------- gradients
def _gradients(optimizer, method):
    """(group index, index in group, parameter) of every parameter with a gradient; a float16
    gradient is refused (as in PyTorch) before any is changed."""
    grads = [(g, i, p) for g, group in enumerate(optimizer.param_groups)
             for i, p in enumerate(group["params"]) if p.grad is not None]
    for g, i, p in grads:
        if p.grad._data.dtype == np.float16:
            raise ValueError(f"{method}: the gradient of param_groups[{g}][{i}] (shape "
                             f"{p.shape}) is float16; unscaling it in float16 would flush small "
                             f"values to zero again. Keep float32 parameters (autocast computes "
                             f"in float16 but keeps them float32), or copy the float16 gradients "
                             f"into float32 master parameters and give those to the optimizer")
    return grads


def _unscale_array(grad, scale):
    """Divide ``grad`` by ``scale`` in place, in its own dtype (bfloat16 through float32);
    True if every entry is finite."""
    if grad.dtype in (np.float32, np.float64):
        np.divide(grad, grad.dtype.type(scale), out=grad)
    else:
        grad[...] = (grad.astype(np.float32) / np.float32(scale)).astype(grad.dtype)
    return bool(np.isfinite(grad).all())


def _param_name(p, optimizer, group_index, index, model_names):
    """The model's name of ``p``, else the optimizer's (named parameters), else its place."""
    if id(p) in model_names:
        return model_names[id(p)]
    group = optimizer.param_groups[group_index]
    if "param_names" in group:
        return group["param_names"][index]
    shape = "x".join(str(s) for s in p.shape) or "scalar"
    return f"param_groups[{group_index}][{index}] ({shape})"


# ---------------------------------------------------------------------- argument checks
def _device_available(device, enabled):
    """True for the CPU. An accelerator PyTorch knows ('cuda', ...) is absent here: as a
    CPU-only PyTorch does, the scaler warns (when enabled) and is disabled, so scripts that
    make one unconditionally run unchanged. Anything else is an error."""
    if device == "cpu":
        return True
    if device in ACCELERATORS:
        if enabled:
            warnings.warn(f"GradScaler: device {device!r} is not available (retrograd runs on "
                          f"the CPU only); this GradScaler is disabled: scale() returns its "
                          f"input and step() just steps", UserWarning, stacklevel=3)
        return False
    raise ValueError(f"GradScaler: device must be 'cpu' (retrograd runs on the CPU only), "
                     f"got {device!r}")


def _check_model(model):
    if model is not None and not _checks.is_module(model):
        raise TypeError(f"GradScaler: model must be a Module (whose named_parameters() name "
                        f"the parameters in the records) or None, got {_checks.describe(model)}")
    return model


def _check_optimizer(method, optimizer):
    if not hasattr(optimizer, "param_groups") or not callable(getattr(optimizer, "step", None)):
        hint = "; pass the optimizer, not the model" if _checks.is_module(optimizer) else ""
        raise TypeError(f"{method}: optimizer must be an Optimizer (with param_groups and "
                        f"step()), got {_checks.describe(optimizer)}{hint}")


def _refuse_closure(args, kwargs):
    if "closure" in kwargs or any(callable(a) for a in args):
        raise RuntimeError("GradScaler.step: a closure is not supported when the scaler is "
                           "enabled (its loss would be neither scaled nor unscaled); run the "
                           "forward, scaler.scale(loss).backward(), then scaler.step(optimizer)")


def _check_init_scale(owner, name, value):
    value = _checks.number(owner, name, value)
    if not (value > 0 and math.isfinite(value) and math.isfinite(_float32(value))):
        raise ValueError(f"{owner}: {name} must be a positive finite number (within float32's "
                         f"range), got {value!r}")
    return value


def _check_growth_factor(owner, value):
    value = _checks.number(owner, "growth_factor", value)
    if not (value > 1 and math.isfinite(value)):
        raise ValueError(f"{owner}: growth_factor must be a finite number > 1, got {value!r}")
    return value


def _check_backoff_factor(owner, value):
    value = _checks.number(owner, "backoff_factor", value)
    if not 0 < value < 1:
        raise ValueError(f"{owner}: backoff_factor must be a number between 0 and 1 "
                         f"(exclusive), got {value!r}")
    return value


def _as_number(value):
    """A number, or the value of a one-element Tensor or array (as update(new_scale) and
    a saved state accept)."""
    if isinstance(value, (Tensor, np.ndarray)):
        array = value._data if isinstance(value, Tensor) else value
        _checks.one_element("GradScaler.update", "new_scale", array)
        return array.reshape(-1)[0].item()
    return value


# ---------------------------------------------------------------------- state dict checks
def _check_state_dict(state_dict):
    """The values of a state dict, checked: each key present, none unknown, each value of
    the right kind."""
    method = "GradScaler.load_state_dict"
    if not isinstance(state_dict, dict):
        raise ValueError(f"{method}: expected a dict from GradScaler.state_dict(), got "
                         f"{_checks.describe(state_dict)}")
    if not state_dict:
        raise ValueError(f"{method}: the state dict is empty, perhaps saved from a disabled "
                         f"GradScaler; expected the keys {list(_STATE_KEYS)}")
    missing = [key for key in _STATE_KEYS if key not in state_dict]
    unknown = [key for key in state_dict if key not in _STATE_KEYS]
    if missing or unknown:
        raise ValueError(f"{method}: the state dict is missing the keys {missing} and has the "
                         f"unknown keys {unknown}; expected exactly {list(_STATE_KEYS)}")
    return {"scale": _check_init_scale(method, "'scale'", _state_number(state_dict, "scale")),
            "growth_factor": _check_growth_factor(
                method, _state_number(state_dict, "growth_factor")),
            "backoff_factor": _check_backoff_factor(
                method, _state_number(state_dict, "backoff_factor")),
            "growth_interval": _checks.positive_int(method, "'growth_interval'",
                                                    _state_number(state_dict, "growth_interval")),
            "_growth_tracker": _checks.non_negative_int(
                method, "'_growth_tracker'", _state_number(state_dict, "_growth_tracker"))}


def _state_number(state_dict, key):
    """The state's ``key`` as a Python or NumPy number; a one-element array or Tensor gives
    its element, a larger one is refused."""
    value = state_dict[key]
    if isinstance(value, (Tensor, np.ndarray)):
        array = value._data if isinstance(value, Tensor) else value
        if array.size != 1:
            raise ValueError(f"GradScaler.load_state_dict: {key!r} must be a number (or a "
                             f"one-element array), got an array of shape {array.shape}")
        return array.reshape(-1)[0]
    if not isinstance(value, (int, float, np.number)) or isinstance(value, bool):
        raise ValueError(f"GradScaler.load_state_dict: {key!r} must be a number, got "
                         f"{_checks.describe(value)}")
    return value


def _float32(value):
    """``value`` rounded to float32, as a Python float: PyTorch keeps the scale in float32."""
    with np.errstate(over="ignore"):
        return float(np.float32(value))
