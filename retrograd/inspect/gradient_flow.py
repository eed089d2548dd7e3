"""Gradient flow over training: every N steps, per layer and per parameter, the numbers that say
whether the gradient reaches every layer and whether the updates have a healthy size.

``GradientMonitor(model, every=50)`` records steps 0, 50, 100, ... of a training loop, either
around the whole step or by a call after backward:

    with monitor.step():                     # or: loss.backward(); monitor.record(); opt.step()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

At a recorded step it keeps, for each parameter, the L2 norm, mean |g| and max |g| of its
gradient (``.grad`` as the optimizer receives it) and the update:data ratio std(change) /
std(parameter) (change: what the optimizer's step did to it, lr * update for SGD); for each
leaf module, the mean, std, share of exact zeros (dead ReLUs), share of saturated values
(nn.Tanh: |y| > 0.97; nn.Sigmoid: y < 0.03 or y > 0.97) and a fixed-bin histogram of its
outputs. Forward hooks are on only during recorded steps, so the other steps cost nothing.
It flags vanishing and exploding gradients (layer and step), draws the figures (rendering in
render.py), writes JSON, and gives the sections of a run's report. docs/gradient-flow.md has
the rules and the storage format.

    >>> import retrograd as rg
    >>> from retrograd.nn import functional as F
    >>> _ = rg.manual_seed(0)
    >>> model = rg.nn.Sequential(rg.nn.Linear(4, 8), rg.nn.Tanh(), rg.nn.Linear(8, 3))
    >>> opt = rg.optim.SGD(model.parameters(), lr=0.1)
    >>> monitor = GradientMonitor(model, every=2)
    >>> for _ in range(3):
    ...     with monitor.step():
    ...         opt.zero_grad()
    ...         F.cross_entropy(model(rg.randn(16, 4)), rg.tensor([0, 1, 2, 0] * 4)).backward()
    ...         opt.step()
    >>> monitor.flow.steps, monitor.flow.layers
    ([0, 2], ['0', '2'])
    >>> sorted(monitor.flow.records[0].activations), monitor.flags
    (['0', '1', '2'], [])
"""

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from html import escape

import numpy as np

from retrograd import _checks
from retrograd.autograd.grad_mode import is_grad_enabled
from retrograd.autograd.observer import OpObserver, observe
from retrograd.inspect import render
from retrograd.inspect.report import Section
from retrograd.nn import activation
from retrograd.nn.module import Module
from retrograd.tensor import Tensor
from retrograd.utils.serialization import atomic_write

__all__ = ["GradientMonitor", "GradientFlow", "GradientStats", "ActivationStats", "StepRecord",
           "GradientFlag", "find_flags", "DEFAULT_EVERY", "VANISHING_RATIO", "EXPLODING_RATIO",
           "TANH_SATURATION", "SIGMOID_SATURATION", "HISTOGRAM_EDGES"]

DEFAULT_EVERY = 50     # costs 4% of a digits ResNet step (docs/gradient-flow.md, "Cost")

# The flag rules (docs/gradient-flow.md): a layer's gradient RMS against the layers nearer the
# output at the same step. On the digits at initialization a plain 56-layer CNN without
# normalization is at 1e-26 of the largest, its residual twin at 1e-2 (1e1 for growth).
VANISHING_RATIO = 1e-4
EXPLODING_RATIO = 1e4

TANH_SATURATION = 0.97               # nn.Tanh outputs with |y| > 0.97
SIGMOID_SATURATION = (0.03, 0.97)    # nn.Sigmoid outputs with y < 0.03 or y > 0.97

# Activation histograms: the same bins for every layer and step, so that they add up across
# calls and compare across steps. 25 edges per sign, 3 per decade from 1e-4 to 1e4; the bin
# between -1e-4 and 1e-4 holds small values of both signs; exact zeros are counted apart.
HISTOGRAM_EDGES = tuple(float(v) for v in np.concatenate([-np.logspace(4, -4, 25),
                                                          np.logspace(-4, 4, 25)]))
_EDGES = np.array(HISTOGRAM_EDGES)

_ACTIVATIONS = frozenset(activation.__all__)     # module types whose outputs are activations
_HISTOGRAM_LINES = 8                             # layers drawn in the activation figure
_FORMAT, _VERSION = "retrograd-gradient-flow", 1


# ----------------------------------------------------------------------------- statistics

@dataclasses.dataclass(frozen=True)
class GradientStats:
    """A gradient's L2 ``norm``, mean |g| and max |g| over its ``numel`` values (a parameter's,
    or a layer's: all its parameters' values together)."""

    norm: float
    mean_abs: float
    max_abs: float
    numel: int

    @property
    def rms(self):
        """sqrt(mean(g^2)) = norm / sqrt(numel): comparable between layers of any size."""
        return self.norm / math.sqrt(self.numel) if self.numel else 0.0

    @classmethod
    def of(cls, grad):
        """The statistics of a gradient array, computed in float64."""
        magnitude = np.abs(np.asarray(grad, dtype=np.float64)).ravel()
        if magnitude.size == 0:
            return cls(0.0, 0.0, 0.0, 0)
        return cls(float(np.sqrt(magnitude @ magnitude)), float(magnitude.mean()),
                   float(magnitude.max()), magnitude.size)

    @classmethod
    def combined(cls, parts):
        """The statistics of the values of ``parts`` (GradientStats) taken together."""
        numel = sum(p.numel for p in parts)
        return cls(math.sqrt(sum(p.norm ** 2 for p in parts)),
                   sum(p.mean_abs * p.numel for p in parts) / numel if numel else 0.0,
                   max((p.max_abs for p in parts), default=0.0), numel)


@dataclasses.dataclass(frozen=True)
class ActivationStats:
    """A module's outputs at one recorded step (every call of the step's forward passes run
    with grad mode on): ``count`` values, their ``mean`` and ``std`` (population, as np.std),
    the share of exact zeros, the share of saturated values (None unless the module is nn.Tanh
    or nn.Sigmoid), and ``histogram``: counts of the nonzero values in the bins of
    HISTOGRAM_EDGES (len + 1 counts: below the first edge, between edges, from the last on)."""

    module: str
    count: int
    mean: float
    std: float
    zero_fraction: float
    saturated_fraction: float
    histogram: tuple


class _Accumulator:
    """A module's output statistics over the calls of a step (Chan's parallel mean/variance)."""

    def __init__(self, module, saturation):
        self.module, self.saturation = module, saturation
        self.count, self.mean, self.m2, self.zeros, self.saturated = 0, 0.0, 0.0, 0, 0
        self.histogram = np.zeros(len(_EDGES) + 1, dtype=np.int64)

    def add(self, y):
        y = np.asarray(y, dtype=np.float64).ravel()
        if y.size == 0:
            return
        mean = float(y.mean())
        m2 = float(np.square(y - mean).sum())
        total = self.count + y.size
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.count * y.size / total
        self.mean += delta * y.size / total
        self.count = total
        nonzero = y[y != 0]
        self.zeros += y.size - nonzero.size
        if self.saturation is not None:
            self.saturated += self.saturation(y)
        self.histogram += np.bincount(np.searchsorted(_EDGES, nonzero, side="right"),
                                      minlength=len(_EDGES) + 1)

    def stats(self):
        n = self.count
        return ActivationStats(self.module, n, self.mean, math.sqrt(self.m2 / n),
                               self.zeros / n,
                               None if self.saturation is None else self.saturated / n,
                               tuple(int(c) for c in self.histogram))


def _tanh_saturated(y):
    return int(np.count_nonzero(np.abs(y) > TANH_SATURATION))


def _sigmoid_saturated(y):
    low, high = SIGMOID_SATURATION
    return int(np.count_nonzero((y < low) | (y > high)))


def _saturation_rule(module):
    if isinstance(module, activation.Tanh):
        return _tanh_saturated
    if isinstance(module, activation.Sigmoid):
        return _sigmoid_saturated
    return None


@dataclasses.dataclass
class StepRecord:
    """What one recorded step measured: ``gradients`` {parameter name: GradientStats} (the
    parameters that had a gradient), ``updates`` {parameter name: update:data ratio, None
    when the parameter was constant (std 0) before the step} (empty when no optimizer step was
    seen), ``activations`` {module path: ActivationStats} (leaf modules that ran)."""

    step: int
    gradients: dict = dataclasses.field(default_factory=dict)
    updates: dict = dataclasses.field(default_factory=dict)
    activations: dict = dataclasses.field(default_factory=dict)


# ----------------------------------------------------------------------------- flags

@dataclasses.dataclass(frozen=True)
class GradientFlag:
    """A vanishing or exploding gradient (``kind``) in ``layer`` at ``step``: the layer's
    gradient RMS beside that of ``reference_layer``, the layer nearer the output it was
    compared with (None for a gradient that is not finite). ``message`` says it in words."""

    kind: str
    step: int
    layer: str
    rms: float
    reference_layer: str = None
    reference_rms: float = None

    @property
    def ratio(self):
        """rms / reference_rms (None without a reference)."""
        return None if self.reference_layer is None else self.rms / self.reference_rms

    @property
    def message(self):
        where = f"{self.kind} gradient at step {self.step} in layer {_label(self.layer)}"
        if self.reference_layer is None:
            return f"{where}: the gradient is not finite (inf or nan)"
        bound = (f"below {VANISHING_RATIO:g}" if self.kind == "vanishing"
                 else f"above {EXPLODING_RATIO:g}")
        return (f"{where}: its gradient RMS {self.rms:.3g} is {self.ratio:.3g} times that of "
                f"layer {_label(self.reference_layer)} ({self.reference_rms:.3g}), nearer the "
                f"output (flagged {bound}; see docs/gradient-flow.md)")

    def __str__(self):
        return self.message


def find_flags(step, layer_gradients):
    """The GradientFlags of one step. ``layer_gradients``: (layer, GradientStats) pairs, input
    side first. Going from the output to the input, a layer is

    - exploding when its gradient is not finite;
    - vanishing when its RMS is below VANISHING_RATIO times the largest RMS of the layers
      after it (nearer the output);
    - exploding when its RMS is above EXPLODING_RATIO times the smallest nonzero RMS of the
      layers after it.

    A layer flagged at the step is no reference for the other rule (a dead layer does not
    make the layers before it "exploding")."""
    flags = []
    largest = smallest = None        # (rms, layer) among the layers nearer the output
    for layer, stats in reversed(list(layer_gradients)):
        rms = stats.rms
        if not math.isfinite(rms):
            flags.append(GradientFlag("exploding", step, layer, rms))
            continue
        if largest is not None and rms < VANISHING_RATIO * largest[0]:
            flags.append(GradientFlag("vanishing", step, layer, rms, largest[1], largest[0]))
        elif smallest is not None and rms > EXPLODING_RATIO * smallest[0]:
            flags.append(GradientFlag("exploding", step, layer, rms, smallest[1], smallest[0]))
        else:
            if largest is None or rms > largest[0]:
                largest = (rms, layer)
            if rms > 0 and (smallest is None or rms < smallest[0]):
                smallest = (rms, layer)
    return flags[::-1]


def _label(layer):
    return layer if layer else "(model)"


# ----------------------------------------------------------------------------- the record

@dataclasses.dataclass
class GradientFlow:
    """What a GradientMonitor recorded: the ``model``'s class name, ``every``, the ``layers``
    (paths of the modules owning parameters, in the order their forward first ran),
    ``parameters`` {name: shape}, the StepRecords and the GradientFlags (in step order).
    ``GradientFlow.load_json(path)`` reads what ``save_json`` wrote."""

    model: str
    every: int
    layers: list
    parameters: dict
    records: list = dataclasses.field(default_factory=list)
    flags: list = dataclasses.field(default_factory=list)

    @property
    def steps(self):
        return [r.step for r in self.records]

    def layer_gradients(self, record):
        """{layer: GradientStats of all its parameters' gradients} at ``record``, input side
        first, for the layers with a gradient."""
        parts = {}
        for name, stats in record.gradients.items():
            parts.setdefault(name.rpartition(".")[0], []).append(stats)
        return {layer: GradientStats.combined(parts[layer]) for layer in self.layers
                if layer in parts}

    # ---- JSON
    def to_dict(self):
        """The record as JSON-ready dicts and lists (docs/gradient-flow.md has the layout)."""
        return {"format": _FORMAT, "version": _VERSION, "model": self.model,
                "every": self.every, "layers": list(self.layers),
                "parameters": {name: list(shape) for name, shape in self.parameters.items()},
                "histogram_edges": list(HISTOGRAM_EDGES),
                "records": [_record_to_json(r) for r in self.records],
                "flags": [{k: _number_to_json(v) for k, v in dataclasses.asdict(f).items()}
                          for f in self.flags]}

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(f"GradientFlow: not a gradient-flow record (expected "
                             f"format {_FORMAT!r}, got {_describe_format(data)})")
        if data.get("version") != _VERSION:
            raise ValueError(f"GradientFlow: version {data.get('version')!r} of the format is "
                             f"not supported (this retrograd reads version {_VERSION})")
        return cls(data["model"], data["every"], list(data["layers"]),
                   {name: tuple(shape) for name, shape in data["parameters"].items()},
                   [_record_from_json(r) for r in data["records"]],
                   [GradientFlag(**{k: _number_from_json(v) for k, v in f.items()})
                    for f in data["flags"]])

    def save_json(self, path):
        """The record as JSON at ``path`` (written to a temporary and renamed); returns it."""
        text = json.dumps(self.to_dict(), allow_nan=False).encode("utf-8")
        atomic_write(path, lambda f: f.write(text), owner="GradientFlow.save_json")
        return path

    @classmethod
    def load_json(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    # ---- figures and report sections
    def save_plots(self, folder):
        """gradient_flow.png, gradient_norms.png, update_ratio.png and activations.png in
        ``folder``; returns {title: (path, alt text)}, or False when matplotlib is missing
        (and {} before the first recorded step)."""
        if not self.records:
            return {}
        figures = {}
        for title, name, draw, alt in self._figures():
            path = os.path.join(folder, name)
            if not draw(path):
                return False
            figures[title] = (path, alt)
        return figures

    def _figures(self):
        last = self.records[-1]
        return [
            (f"Gradient flow at step {last.step}", "gradient_flow.png", self._plot_flow,
             "mean and max |gradient| per layer, log scale, flagged layers shaded"),
            ("Gradient norm by layer and step", "gradient_norms.png", self._plot_heatmap,
             "heatmap of log10 gradient norm, one row per layer, one column per recorded step"),
            ("Update:data ratio", "update_ratio.png", self._plot_updates,
             "std(update) / std(parameter) per parameter over steps, with the 1e-3 guide line"),
            (f"Activations at step {last.step}", "activations.png", self._plot_activations,
             "histograms of module outputs, symmetric log scale, share of zeros at x = 0"),
        ]

    def _plot_flow(self, path):
        first, last = self.records[0], self.records[-1]
        series = {}
        for label, record, field in ((f"mean |g| at step {last.step}", last, "mean_abs"),
                                     (f"max |g| at step {last.step}", last, "max_abs"),
                                     (f"mean |g| at step {first.step}", first, "mean_abs")):
            if label not in series:       # a single recorded step: its two series only
                series[label] = self._per_layer(record, field)
        marked = {_label(f.layer) for f in self.flags if f.step == last.step}
        return render.plot_layer_gradients(self._labels(), series, path,
                                           title=f"Gradient flow at step {last.step}",
                                           marked=marked)

    def _plot_heatmap(self, path):
        columns = [self._per_layer(r, "norm") for r in self.records]
        values = [list(row) for row in zip(*columns)]
        return render.plot_layer_heatmap(self._labels(), self.steps, values, path)

    def _per_layer(self, record, field):
        """``field`` of each layer's GradientStats at ``record`` (None for no gradient)."""
        stats = self.layer_gradients(record)
        return [getattr(stats[layer], field) if layer in stats else None
                for layer in self.layers]

    def _labels(self):
        return [_label(layer) for layer in self.layers]

    def _plot_updates(self, path):
        names = [n for n, shape in self.parameters.items() if len(shape) >= 2]
        curves = {name: [r.updates.get(name) for r in self.records]
                  for name in names or list(self.parameters)}
        return render.plot_step_ratios(self.steps, curves, path)

    def _plot_activations(self, path):
        last = self.records[-1]
        modules = [p for p, a in last.activations.items() if a.module in _ACTIVATIONS]
        modules = modules or list(last.activations)
        if len(modules) > _HISTOGRAM_LINES:
            picks = np.linspace(0, len(modules) - 1, _HISTOGRAM_LINES).round().astype(int)
            modules = [modules[i] for i in dict.fromkeys(picks)]
        labels = {p: _activation_label(p, last.activations[p]) for p in modules}
        return render.plot_histograms(
            HISTOGRAM_EDGES, {labels[p]: last.activations[p].histogram for p in modules}, path,
            zero_shares={labels[p]: last.activations[p].zero_fraction for p in modules},
            title=f"Module outputs at step {last.step}")

    def sections(self, folder=None):
        """Report Sections: the four figures (PNGs written to ``folder``, or to a temporary
        folder when None) and the table of flags. Without matplotlib a note replaces the
        figures."""
        if not self.records:
            return [Section.html("Gradient flow", "<p>No step recorded yet.</p>")]
        with _folder(folder) as out:
            figures = self.save_plots(out)
            if figures is False:
                sections = [Section.html("Gradient flow", "<p>No figures: matplotlib (the "
                                                          "'train' extra) is not installed.</p>")]
            else:
                sections = [Section.figure(title, path, alt)
                            for title, (path, alt) in figures.items()]
        return sections + [self._flags_section()]

    def flag_rows(self):
        """The flags grouped by kind and layer, one dict per group, in order of first step."""
        groups = {}
        for f in self.flags:
            groups.setdefault((f.kind, f.layer), []).append(f)
        rows = []
        for (kind, layer), flags in groups.items():
            compared = [f for f in flags if f.ratio is not None]
            if compared:
                worst = (min if kind == "vanishing" else max)(compared, key=lambda f: f.ratio)
                ratio, reference = worst.ratio, _label(worst.reference_layer)
            else:
                ratio, reference = "not finite", ""
            rows.append({"kind": kind, "layer": _label(layer), "first step": flags[0].step,
                         "last step": flags[-1].step, "recorded steps flagged": len(flags),
                         "worst ratio": ratio, "compared with": reference})
        return sorted(rows, key=lambda r: r["first step"])

    def _flags_section(self):
        rule = (f"A layer's gradient RMS below {VANISHING_RATIO:g} (vanishing) or above "
                f"{EXPLODING_RATIO:g} (exploding) times that of a layer nearer the output at "
                f"the same step, or not finite; see docs/gradient-flow.md.")
        if not self.flags:
            return Section.html("Gradient flags", f"<p>No vanishing or exploding gradient at "
                                                  f"the {len(self.records)} recorded steps. "
                                                  f"{escape(rule)}</p>")
        table = Section.table("Gradient flags", self.flag_rows())
        return Section.html("Gradient flags", f"<p>{escape(rule)}</p>\n{table.body}")


def _activation_label(path, stats):
    if stats.saturated_fraction is None:
        return f"{_label(path)} {stats.module}"
    return f"{_label(path)} {stats.module}, saturated {100 * stats.saturated_fraction:.0f}%"


def _folder(folder):
    return tempfile.TemporaryDirectory() if folder is None else contextlib.nullcontext(folder)


def _describe_format(data):
    return repr(data.get("format")) if isinstance(data, dict) else type(data).__name__


def _number_to_json(value):
    """JSON has no inf or nan: they are written as the strings "inf", "-inf", "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _number_from_json(value):
    return float(value) if value in ("inf", "-inf", "nan") else value


def _record_to_json(record):
    return {"step": record.step,
            "gradients": {n: [_number_to_json(g.norm), _number_to_json(g.mean_abs),
                              _number_to_json(g.max_abs), g.numel]
                          for n, g in record.gradients.items()},
            "updates": {n: _number_to_json(r) for n, r in record.updates.items()},
            "activations": {p: {k: _number_to_json(v) if k != "histogram" else list(v)
                                for k, v in dataclasses.asdict(a).items()}
                            for p, a in record.activations.items()}}


def _record_from_json(data):
    gradients = {name: GradientStats(*(_number_from_json(v) for v in values[:3]), values[3])
                 for name, values in data["gradients"].items()}
    activations = {p: ActivationStats(**{k: _number_from_json(v) if k != "histogram"
                                         else tuple(v) for k, v in a.items()})
                   for p, a in data["activations"].items()}
    updates = {n: _number_from_json(r) for n, r in data["updates"].items()}
    return StepRecord(data["step"], gradients, updates, activations)


# ----------------------------------------------------------------------------- the monitor

class _OptimizerWatch(OpObserver):
    """Tells the monitor when an optimizer's step begins and ends (the observer slot's
    regions); on only during a recorded ``with monitor.step()``."""

    watches_backward = False

    def __init__(self, monitor):
        self.monitor = monitor

    def begin_region(self, name, phase):
        if phase == "optimizer":
            self.monitor._before_optimizer()

    def end_region(self, name, phase):
        if phase == "optimizer":
            self.monitor._after_optimizer()


class GradientMonitor:
    """Records the gradient and activation flow of ``model`` at every ``every``-th training
    step (steps 0, every, 2 * every, ...) into ``monitor.flow`` (a GradientFlow).

    Two ways to mark the steps, as in PyTorch's training loops:

    - ``with monitor.step():`` around the whole step (forward, backward, optimizer step). The
      gradients are read when an optimizer's ``step()`` begins (after clipping, before the
      update; at the end of the block when no optimizer step ran), the parameters copied then
      and compared after its step.
    - ``monitor.record()`` after ``loss.backward()`` and before ``optimizer.step()``, once per
      training step. The gradients are read at the call; the update of a recorded step is
      measured at the next ``record()`` (the parameters then are those after its optimizer
      step), or at ``close()``.

    Activations are the outputs of the leaf modules (modules without submodules; the first
    element of a tuple output) in the forward passes of a recorded step run with grad mode
    on; with ``record()``, those since the previous call (the hooks go on at the previous call,
    or when the monitor is made). A module called twice in a step counts both outputs.
    ``close()`` (or leaving ``with GradientMonitor(...) as monitor:``) removes every hook.

    Raises:
        TypeError: ``model`` is not a Module.
        ValueError: ``model`` has no parameters, or ``every`` is not a positive int.
    """

    def __init__(self, model, every=DEFAULT_EVERY):
        _checks.instance_of("GradientMonitor", "model", model, Module)
        self.every = _checks.positive_int("GradientMonitor", "every (record every N-th step)",
                                          every)
        self.model = model
        self._parameters = list(model.named_parameters())
        if not self._parameters:
            raise ValueError(f"GradientMonitor: the model {type(model).__name__} has no "
                             f"parameters, so there is no gradient to monitor")
        layers = list(dict.fromkeys(name.rpartition(".")[0] for name, _ in self._parameters))
        self.flow = GradientFlow(type(model).__name__, self.every, layers,
                                 {name: p.shape for name, p in self._parameters})
        self.step_count = 0                # steps begun or recorded so far
        self._hooks, self._activations, self._entered = [], {}, {}
        self._order_known = False          # flow.layers follows the forward order
        self._pending = self._snapshot = self._watching = None
        self._in_step = False
        self._arm()

    @property
    def records(self):
        return self.flow.records

    @property
    def flags(self):
        return self.flow.flags

    def save_json(self, path):
        """GradientFlow.save_json of what was recorded so far."""
        return self.flow.save_json(path)

    def save_plots(self, folder):
        """GradientFlow.save_plots of what was recorded so far."""
        return self.flow.save_plots(folder)

    def sections(self, folder=None):
        """GradientFlow.sections: the figures and the flags, for the run's report."""
        return self.flow.sections(folder)

    def recording(self, step=None):
        """Whether ``step`` (default: the next one) is recorded."""
        return (self.step_count if step is None else step) % self.every == 0

    # ---- with monitor.step()
    @contextlib.contextmanager
    def step(self):
        """Context manager around one training step (see the class docstring)."""
        if self._in_step:
            raise RuntimeError("GradientMonitor.step: already inside a step; steps do not nest")
        self._measure_pending_update()
        self._in_step = True
        if self.recording():
            self._arm()
            self._pending = StepRecord(self.step_count)
            self._watching = observe(_OptimizerWatch(self))
            self._watching.__enter__()
        try:
            yield self
        except BaseException:
            self._stop_watching()
            self._disarm()
            self._pending = self._snapshot = None
            self._in_step = False
            raise
        self._end_step()

    def _end_step(self):
        record, self._pending = self._pending, None
        self._stop_watching()
        if record is not None:
            if self._snapshot is None:          # no optimizer step: the gradients are still there
                self._capture_gradients(record)
            self._finish(record)
        self._snapshot = None
        self._in_step = False
        self.step_count += 1

    def _before_optimizer(self):
        if self._pending is not None and self._snapshot is None:
            self._capture_gradients(self._pending)
            self._snapshot = self._copy_parameters()

    def _after_optimizer(self):
        if self._pending is not None and self._snapshot is not None:
            self._measure_updates(self._pending)    # again after each optimizer of the step

    def _stop_watching(self):
        if self._watching is not None:
            self._watching.__exit__(None, None, None)
            self._watching = None

    # ---- monitor.record()
    def record(self):
        """Call once per training step, after ``loss.backward()`` and before
        ``optimizer.step()``. Records the step when it is due; returns its StepRecord (the
        update is filled in at the next call), or None."""
        if self._in_step:
            raise RuntimeError("GradientMonitor.record: called inside 'with monitor.step()', "
                               "which records the step itself; use one or the other")
        self._measure_pending_update()
        step, record = self.step_count, None
        self.step_count += 1
        if self.recording(step):
            record = StepRecord(step)
            self._capture_gradients(record)
            self._pending, self._snapshot = record, self._copy_parameters()
            self._finish(record)
        if self.recording(step + 1):
            self._arm()
        return record

    def _measure_pending_update(self):
        """record(): the last recorded step's update, now that its optimizer step is done."""
        if self._pending is not None and self._snapshot is not None and not self._in_step:
            self._measure_updates(self._pending)
            self._pending = self._snapshot = None

    def close(self):
        """Measure the last recorded update (record()) and remove the hooks."""
        self._measure_pending_update()
        self._stop_watching()
        self._disarm()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- measuring
    def _capture_gradients(self, record):
        for name, p in self._parameters:
            if p.grad is not None:
                record.gradients[name] = GradientStats.of(p.grad._data)

    def _copy_parameters(self):
        return {name: p._data.copy() for name, p in self._parameters}

    def _measure_updates(self, record):
        """std(after - before) / std(before) per parameter, in float64; None when the
        parameter was constant before the step (std 0: the ratio is undefined)."""
        for name, p in self._parameters:
            before = np.asarray(self._snapshot[name], dtype=np.float64)
            scale = float(before.std()) if before.size else 0.0
            change = np.asarray(p._data, dtype=np.float64) - before
            record.updates[name] = float(change.std()) / scale if scale > 0 else None

    def _finish(self, record):
        """Close a recorded step: its activations, the forward order, its flags."""
        record.activations = {path: acc.stats() for path, acc in self._activations.items()
                              if acc.count}
        self._activations = {}
        if not self._order_known and self._entered:
            self._order_layers()
        self._disarm()
        self.flow.flags.extend(find_flags(record.step,
                                          self.flow.layer_gradients(record).items()))
        self.flow.records.append(record)

    def _order_layers(self):
        """flow.layers in the order their forward first ran. A layer whose module never ran
        itself (attention's out_proj, whose weights its parent uses) goes where its nearest
        enclosing module that ran went, after that module's own parameters."""
        registered = {layer: i for i, layer in enumerate(self.flow.layers)}

        def key(layer):
            path = layer
            while path not in self._entered and path:
                path = path.rpartition(".")[0]
            return (self._entered.get(path, math.inf), registered[layer])

        self.flow.layers = sorted(self.flow.layers, key=key)
        rank = {layer: i for i, layer in enumerate(self.flow.layers)}
        self.flow.parameters = dict(sorted(self.flow.parameters.items(),
                                           key=lambda kv: rank[kv[0].rpartition(".")[0]]))
        self._order_known = True

    # ---- hooks, on only while a recorded step runs
    def _arm(self):
        self._activations = {}
        if self._hooks:
            return
        for path, module in self.model.named_modules():
            if next(module.children(), None) is None:
                hook = self._activation_hook(path, module)
                self._hooks.append(module.register_forward_hook(hook))
            if not self._order_known:
                self._hooks.append(module.register_forward_pre_hook(self._order_hook(path)))

    def _disarm(self):
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    def _activation_hook(self, path, module):
        saturation = _saturation_rule(module)
        kind = type(module).__name__

        def hook(module, args, output):
            if isinstance(output, tuple) and output:
                output = output[0]
            if isinstance(output, Tensor) and output.is_floating_point() and is_grad_enabled():
                if path not in self._activations:
                    self._activations[path] = _Accumulator(kind, saturation)
                self._activations[path].add(output._data)
        return hook

    def _order_hook(self, path):
        def hook(module, args):
            self._entered.setdefault(path, len(self._entered))
        return hook
