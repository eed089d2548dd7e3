"""What precision loses, shown: gradients that float16 flushes to zero, updates that bfloat16
weights cannot take, and each op's error when one step runs in a narrower dtype.

- ``gradient_underflow(model, scale, dtype)``: per parameter, the share of gradient entries
  that become 0 (flush), subnormal (lose precision) or inf (overflow) when ``scale * g`` is
  cast to float16 (or another dtype); ``flush_fraction(S)`` answers "what share of gradients
  flush to zero at scale S"; ``plot(path)`` draws log2|g| per layer against the dtype's lines.
- ``update_stagnation(params, updates, dtype)``: the share of updates smaller than half the
  gap between w and its neighbour in ``dtype``, so that ``w + dw`` rounds back to ``w``.
- ``precision_ab(build_model, inputs)``: one forward and backward in float64, float32,
  bfloat16 and float16 from the same weights; each op's and each gradient's relative error
  against float64.

    >>> import numpy as np
    >>> report = gradient_underflow({"w": np.array([1e-9, 1e-6, 1.0, 0.0])}, scale=1.0)
    >>> report.rows[0].flushed, report.rows[0].subnormal, report.rows[0].zeros
    (1, 1, 1)
    >>> report.flush_fraction(16.0), report.flush_fraction(1024.0)   # 2**-25 ~ 2.98e-8
    (0.25, 0.0)
    >>> ulp(np.array([1.0, 3.0]), "bfloat16")
    array([0.0078125, 0.015625 ])
    >>> stagnation = update_stagnation({"w": np.ones(4)}, {"w": np.array([1e-3, 1e-2, 0, -1e-3])})
    >>> stagnation.total.lost, stagnation.total.fraction_lost
    (2, 0.5)
"""

import copy
import math
import numbers
from collections import namedtuple

import numpy as np

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.autograd.observer import OpObserver, observe
from retrograd.inspect.render import _flow_pyplot, _layer_ticks, _write_flow_figure, text_table
from retrograd.tensor import Tensor, as_array, make_tensor

__all__ = ["gradient_underflow", "UnderflowReport", "UnderflowRow", "dtype_limits", "ulp",
           "update_stagnation", "StagnationReport", "StagnationRow", "precision_ab",
           "PrecisionAB", "OpError"]


DtypeLimits = namedtuple("DtypeLimits", "name smallest_subnormal smallest_normal max "
                                        "significant_bits")


def dtype_limits(dtype):
    """The float facts of ``dtype`` (a retrograd or NumPy dtype, or a name): smallest
    subnormal, smallest normal, max and significant bits (the implicit one included).

        >>> dtype_limits("float16")
        DtypeLimits(name='float16', smallest_subnormal=5.960464477539063e-08, \
smallest_normal=6.103515625e-05, max=65504.0, significant_bits=11)
    """
    np_dtype = _floating_dtype("dtype_limits", dtype)
    info = _finfo(np_dtype)
    return DtypeLimits(_dt.from_numpy_dtype(np_dtype).name, float(info.smallest_subnormal),
                       float(info.smallest_normal), float(info.max), int(info.nmant) + 1)


def _finfo(np_dtype):
    if np_dtype == _dt.bfloat16.np:
        import ml_dtypes

        return ml_dtypes.finfo(np_dtype)
    return np.finfo(np_dtype)


def _floating_dtype(tool, dtype):
    try:
        np_dtype = _dt.as_numpy_dtype(dtype)
    except TypeError:
        raise TypeError(f"{tool}: dtype must be a floating-point dtype (float16, bfloat16, "
                        f"float32 or float64), got {dtype!r}") from None
    if not _dt.is_floating(np_dtype):
        raise TypeError(f"{tool}: dtype must be a floating-point dtype, got {dtype!r}")
    return np_dtype


# ------------------------------------------------------------------------- named arrays in

def _as_array(tool, name, value):
    """A gradient or weight as a float64 NumPy array."""
    if isinstance(value, Tensor):
        value = value._data
    if not isinstance(value, np.ndarray) or not _dt.is_floating(value.dtype):
        raise TypeError(f"{tool}: {name} must be a floating-point Tensor or NumPy array, got "
                        f"{_checks.describe(value)}")
    return value.astype(np.float64)


def _named_gradients(tool, source):
    """(name, gradient) pairs of a model (its parameters that have a .grad), a dict, or a
    list of (name, gradient) pairs."""
    if _checks.is_module(source):
        return [(name, _as_array(tool, name, p.grad)) for name, p in source.named_parameters()
                if p.grad is not None]
    pairs = _name_value_pairs(tool, "model_or_named_grads", source,
                              "a model, a dict {name: gradient} or a list of (name, gradient)")
    return [(name, _as_array(tool, name, g)) for name, g in pairs]


def _name_value_pairs(tool, argument, source, expected):
    if isinstance(source, dict):
        return list(source.items())
    items = _checks.parameter_iterable(tool, argument, source, expected)
    if not all(isinstance(i, tuple) and len(i) == 2 and isinstance(i[0], str) for i in items):
        raise TypeError(f"{tool}: {argument} must be {expected}, got a "
                        f"{type(source).__name__} of other items")
    return items


# ------------------------------------------------------------------------ gradient underflow

UnderflowRow = namedtuple("UnderflowRow", "name count zeros flushed subnormal overflow")
UnderflowRow.__doc__ = """One parameter's gradient cast to the dtype at a scale: entries in
all, exact zeros (nothing to lose), entries that flush to zero, that land in the subnormal
range (fewer significant bits) and that overflow to inf."""


def _share(count, total):
    return count / total if total else 0.0


def _underflow_counts(name, magnitudes, scale, np_dtype, limits):
    """An UnderflowRow for |g| (float64) scaled by ``scale`` and cast to ``np_dtype``."""
    scaled = magnitudes * scale
    with np.errstate(over="ignore"):
        cast = scaled.astype(np_dtype).astype(np.float64)
    nonzero = scaled != 0
    flushed = nonzero & (cast == 0)
    subnormal = (cast != 0) & (cast < limits.smallest_normal)
    overflow = np.isinf(cast) & np.isfinite(scaled)
    return UnderflowRow(name, magnitudes.size, int(np.count_nonzero(~nonzero)),
                        int(np.count_nonzero(flushed)), int(np.count_nonzero(subnormal)),
                        int(np.count_nonzero(overflow)))


class UnderflowReport:
    """gradient_underflow's answer: ``rows`` (one UnderflowRow per parameter), ``total`` (all
    parameters as one row), ``dtype``, ``scale``; ``fractions(row)`` as shares of its entries,
    ``flush_fraction(scale)`` at any other scale, ``plot(path)``, and a printable table."""

    def __init__(self, magnitudes, scale, np_dtype):
        self._magnitudes = magnitudes          # {name: |g| as float64, flattened}
        self.scale = scale
        self.limits = dtype_limits(np_dtype)
        self.dtype = _dt.from_numpy_dtype(np_dtype)
        self.rows = [_underflow_counts(name, m, scale, np_dtype, self.limits)
                     for name, m in magnitudes.items()]
        self.total = UnderflowRow("total", *(sum(getattr(r, f) for r in self.rows)
                                             for f in UnderflowRow._fields[1:]))

    @staticmethod
    def fractions(row):
        """{'flushed', 'subnormal', 'overflow', 'zeros'}: shares of the row's entries."""
        return {f: _share(getattr(row, f), row.count)
                for f in ("flushed", "subnormal", "overflow", "zeros")}

    def flush_fraction(self, scale=None):
        """The share of all gradient entries (nonzero ones that become 0) that flush to zero
        when multiplied by ``scale`` (default: the report's) and cast to the dtype."""
        scale = self.scale if scale is None else _scale("flush_fraction", scale)
        np_dtype = self.dtype.np
        flushed = sum(_underflow_counts(n, m, scale, np_dtype, self.limits).flushed
                      for n, m in self._magnitudes.items())
        return _share(flushed, self.total.count)

    def __str__(self):
        shown = ("flushed", "subnormal", "overflow")
        rows = [[r.name, str(r.count)] + [f"{100 * self.fractions(r)[f]:.2f}%" for f in shown]
                for r in self.rows + [self.total]]
        header = ["parameter", "entries", "flush to 0", "subnormal", "overflow"]
        title = f"Gradients cast to {self.dtype.name} at scale {self.scale:g}"
        return title + "\n" + text_table(rows, header)

    __repr__ = __str__

    def plot(self, path, bins_per_octave=1):
        """A PNG at ``path``: the share of each layer's gradients per log2|g| bin (a layer x
        bin heatmap) under a histogram of all of them, with vertical lines where the dtype's
        smallest subnormal, smallest normal and max fall for |g| at this scale. Returns False
        when matplotlib (the 'train' extra) is missing."""
        plt = _flow_pyplot()
        if plt is None:
            return False
        edges, shares, total = self._log2_histograms(bins_per_octave)
        names = [r.name for r in self.rows]
        fig, (top, grid) = plt.subplots(
            2, 1, figsize=(10.0, 3.0 + max(2.5, 0.22 * len(names))), sharex=True,
            layout="constrained", height_ratios=[1.0, max(1.2, 0.09 * len(names))])
        top.stairs(total, edges, fill=True, alpha=0.6, color="tab:blue")
        top.set(ylabel="share of all", title=self._plot_title())
        shown = grid.imshow(np.ma.masked_equal(shares, 0.0), aspect="auto", cmap="viridis",
                            interpolation="nearest", extent=(edges[0], edges[-1], len(names)
                                                             - 0.5, -0.5))
        fig.colorbar(shown, ax=grid, label="share of the layer's gradients")
        _layer_ticks(grid.set_yticks, grid.set_yticklabels, names, rotation=0)
        grid.set(xlabel="log2 |gradient|", ylabel="parameter")
        for ax in (top, grid):
            self._draw_limit_lines(ax, legend=ax is top)
        top.legend(fontsize=8, loc="upper left")
        _write_flow_figure(plt, fig, path)
        return True

    def _plot_title(self):
        return (f"|gradient| against {self.dtype.name} at scale {self.scale:g}: "
                f"{100 * self.flush_fraction():.2f}% flush to 0, "
                f"{100 * self.fractions(self.total)['subnormal']:.2f}% subnormal, "
                f"{100 * self.fractions(self.total)['overflow']:.2f}% overflow")

    def limit_lines(self):
        """{label: log2 |g|} where scale * |g| meets the dtype's smallest subnormal, smallest
        normal and max."""
        shift = math.log2(self.scale)
        return {"smallest subnormal": math.log2(self.limits.smallest_subnormal) - shift,
                "smallest normal": math.log2(self.limits.smallest_normal) - shift,
                "max": math.log2(self.limits.max) - shift}

    def _draw_limit_lines(self, ax, legend):
        styles = {"smallest subnormal": "tab:red", "smallest normal": "tab:orange",
                  "max": "black"}
        for label, x in self.limit_lines().items():
            ax.axvline(x, color=styles[label], linestyle="--", linewidth=1.3,
                       label=f"{label} / scale (2^{x:.1f})" if legend else None)
        if legend:
            ax.axvspan(ax.get_xlim()[0], self.limit_lines()["smallest subnormal"] - 1,
                       color="tab:red", alpha=0.08, label="flushes to 0")

    def _log2_histograms(self, bins_per_octave):
        """Bin edges in log2|g| (covering the gradients and the limit lines), each layer's
        shares per bin and the shares of all gradients per bin (zeros are left out)."""
        logs = {n: np.log2(m[m > 0]) for n, m in self._magnitudes.items()}
        points = [v for v in self.limit_lines().values()]
        points += [f(x) for x in logs.values() if x.size for f in (np.min, np.max)]
        low, high = math.floor(min(points)) - 1, math.ceil(max(points)) + 1
        edges = np.linspace(low, high, (high - low) * bins_per_octave + 1)
        counts = np.array([np.histogram(x, edges)[0] for x in logs.values()], dtype=np.float64)
        sizes = np.array([m.size for m in self._magnitudes.values()], dtype=np.float64)
        shares = counts / np.maximum(sizes, 1)[:, None]
        return edges, shares, counts.sum(axis=0) / max(sizes.sum(), 1.0)


def _scale(tool, scale):
    scale = _checks.number(tool, "scale", scale, positive=True)
    if not math.isfinite(scale):
        raise ValueError(f"{tool}: scale must be a finite positive number, got {scale!r}")
    return scale


def gradient_underflow(model_or_named_grads, scale=1.0, dtype=_dt.float16):
    """What casting ``scale * g`` to ``dtype`` does to each parameter's gradient ``g``: the
    entries that flush to zero (below half the smallest subnormal), turn subnormal (fewer
    significant bits) or overflow to inf. ``model_or_named_grads``: a model after backward
    (its parameters with a .grad), a dict {name: gradient} or a list of (name, gradient);
    gradients are Tensors or NumPy arrays. Returns an UnderflowReport.

        >>> import numpy as np
        >>> report = gradient_underflow({"w": np.array([1e-8, 1e-3, 1e5])}, scale=1.0)
        >>> report.rows[0]
        UnderflowRow(name='w', count=3, zeros=0, flushed=1, subnormal=0, overflow=1)
    """
    tool = "gradient_underflow"
    scale = _scale(tool, scale)
    np_dtype = _floating_dtype(tool, dtype)
    named = _named_gradients(tool, model_or_named_grads)
    if not named:
        raise ValueError(f"{tool}: no gradients to look at (run backward first, or pass a "
                         f"dict {{name: gradient}})")
    magnitudes = {name: np.abs(g).ravel() for name, g in named}
    return UnderflowReport(magnitudes, scale, np_dtype)


# -------------------------------------------------------------------------- update stagnation

def ulp(w, dtype=_dt.bfloat16):
    """The gap from each |w| (rounded to ``dtype``) to the next larger number of ``dtype``:
    2**(exponent(w) - (significant bits - 1)), and the smallest subnormal for the subnormal
    range and zero. float64 array in, float64 array out."""
    limits = dtype_limits(dtype)
    w = np.abs(np.asarray(w, dtype=np.float64)).astype(_dt.as_numpy_dtype(dtype))
    _, exponent = np.frexp(w.astype(np.float64))       # |w| = m * 2**exponent, 0.5 <= m < 1
    gap = np.ldexp(1.0, exponent - limits.significant_bits)
    return np.where(w == 0, limits.smallest_subnormal, np.maximum(gap, limits.smallest_subnormal))


def _half_gaps(w, dw, limits, np_dtype):
    """Half the gap from w (in the dtype) to its neighbour in the direction of dw: below a
    power of two the gap toward zero is half the ulp."""
    gap = ulp(w, np_dtype)
    stored = np.abs(w.astype(np_dtype).astype(np.float64))
    mantissa, _ = np.frexp(stored)
    toward_zero = (np.sign(dw) * np.sign(w) < 0)
    narrower = toward_zero & (mantissa == 0.5) & (stored > limits.smallest_normal)
    return np.where(narrower, gap / 2, gap) / 2


StagnationRow = namedtuple("StagnationRow", "name count zeros lost fraction_lost")
StagnationRow.__doc__ = """One parameter's update: entries, updates that are exactly zero,
nonzero updates lost (w + dw rounds back to w in the dtype) and their share of all entries."""


class StagnationReport:
    """update_stagnation's answer: ``rows`` (one StagnationRow per parameter), ``total`` and
    ``dtype``; prints as a table."""

    def __init__(self, rows, np_dtype):
        self.rows = rows
        self.dtype = _dt.from_numpy_dtype(np_dtype)
        count, zeros, lost = (sum(getattr(r, f) for r in rows) for f in ("count", "zeros",
                                                                        "lost"))
        self.total = StagnationRow("total", count, zeros, lost, _share(lost, count))

    def __str__(self):
        rows = [[r.name, str(r.count), str(r.zeros), str(r.lost), f"{100 * r.fraction_lost:.2f}%"]
                for r in self.rows + [self.total]]
        title = f"Updates lost to {self.dtype.name} rounding (|dw| < ulp(w)/2)"
        return title + "\n" + text_table(rows, ["parameter", "entries", "zero dw", "lost",
                                                "lost share"])

    __repr__ = __str__


def _stagnation_row(name, w, dw, np_dtype, limits):
    if w.shape != dw.shape:
        raise ValueError(f"update_stagnation: the update of {name} has shape {dw.shape}, its "
                         f"weight {w.shape}")
    moving = dw != 0
    lost = moving & (np.abs(dw) < _half_gaps(w, dw, limits, np_dtype))
    lost_count = int(np.count_nonzero(lost))
    return StagnationRow(name, w.size, int(np.count_nonzero(~moving)), lost_count,
                         _share(lost_count, w.size))


def _named_weights(tool, source):
    """(name, Tensor or array) pairs of an optimizer, a model, a dict or a list of
    parameters (named by position)."""
    if hasattr(source, "param_groups"):
        params = [p for group in source.param_groups for p in group["params"]]
        return [(f"param{i}", p) for i, p in enumerate(params)]
    if _checks.is_module(source):
        return list(source.named_parameters())
    if isinstance(source, dict):
        return list(source.items())
    expected = "an optimizer, a model, a dict {name: weight} or a list of parameters"
    params = _checks.tensors(tool, "optimizer_or_params",
                             _checks.parameter_iterable(tool, "optimizer_or_params", source,
                                                        expected, single=True))
    return [(f"param{i}", p) for i, p in enumerate(params)]


def _updates(tool, named, updates_or_step):
    """{name: dw (float64)} from a learning rate (dw = -lr * grad), a dict or list of
    updates, or a callable step (run it: dw is what it changed)."""
    if callable(updates_or_step):
        before = {n: _as_array(tool, n, w) for n, w in named}
        updates_or_step()
        return {n: _as_array(tool, n, w) - before[n] for n, w in named}
    if isinstance(updates_or_step, numbers.Real) and not isinstance(updates_or_step, bool):
        lr = _checks.number_at_least(tool, "lr", updates_or_step, 0.0)
        missing = [n for n, w in named if getattr(w, "grad", None) is None]
        if missing:
            raise ValueError(f"{tool}: a learning rate makes dw = -lr * grad, but "
                             f"{', '.join(missing)} has no gradient (run backward first)")
        return {n: -lr * _as_array(tool, n, w.grad) for n, w in named}
    given = (dict(updates_or_step) if isinstance(updates_or_step, dict)
             else _by_position(tool, named, updates_or_step))
    if set(given) != {n for n, _ in named}:
        raise ValueError(f"{tool}: the updates name {sorted(given)} but the weights are "
                         f"{[n for n, _ in named]}")
    return {n: _as_array(tool, f"the update of {n}", dw) for n, dw in given.items()}


def _by_position(tool, named, updates):
    expected = ("a learning rate, a dict {name: update}, a list of updates (one per weight) "
                "or a callable step")
    items = _checks.parameter_iterable(tool, "updates_or_step", updates, expected)
    if len(items) != len(named):
        raise ValueError(f"{tool}: got {len(items)} updates for {len(named)} weights")
    return {n: dw for (n, _), dw in zip(named, items)}


def update_stagnation(optimizer_or_params, updates_or_step, dtype=_dt.bfloat16):
    """The share of updates ``dw`` that weights stored in ``dtype`` cannot take: those with
    |dw| < ulp(w)/2, for which ``w + dw`` rounds back to ``w`` (from a power of two toward
    zero the gap is half as wide, and so is the threshold). Zero updates are counted apart.

    ``optimizer_or_params``: an optimizer, a model, a dict {name: weight} or a list of
    parameters. ``updates_or_step``: a learning rate (dw = -lr * grad), a dict or list of
    updates (Tensors or arrays), or a callable such as ``optimizer.step``, which is run: dw is
    the change it makes (run it on float32 master weights to ask what a bfloat16 copy would
    lose). Returns a StagnationReport.

        >>> import numpy as np
        >>> w = np.array([1.0, 1.0, 256.0])
        >>> update_stagnation({"w": w}, {"w": np.array([0.003, -0.003, 0.9])}).rows[0].lost
        2
    """
    tool = "update_stagnation"
    np_dtype = _floating_dtype(tool, dtype)
    limits = dtype_limits(np_dtype)
    named = _named_weights(tool, optimizer_or_params)
    if not named:
        raise ValueError(f"{tool}: no weights given")
    weights = {n: _as_array(tool, n, w) for n, w in named}
    updates = _updates(tool, named, updates_or_step)
    rows = [_stagnation_row(n, weights[n], updates[n], np_dtype, limits) for n, _ in named]
    return StagnationReport(rows, np_dtype)


# ----------------------------------------------------------------------------- precision A/B

OpError = namedtuple("OpError", "index op module_path errors dtypes")
OpError.__doc__ = """One op of the step: its position, name and module path, {dtype name:
relative error of its output against float64} and {dtype name: the dtype its output had}."""


class _OpRecorder(OpObserver):
    """Records each op's name, module path and floating outputs (as float64), in op order,
    and the name of the op running (to name the op that failed). Casts are counted, not
    recorded: they are dtype plumbing (attention computes float16 and bfloat16 in float32,
    casting in and out), and the ops around them line up across dtypes without them."""

    watches_backward = False

    def __init__(self):
        self.ops, self.running, self.casts = [], None, 0

    def before_forward(self, op, inputs, attrs):
        self.running = op.__name__

    def after_forward(self, op, node, inputs, outputs, module_path):
        self.running = None
        if op.__name__ == "Cast":
            self.casts += 1
            return
        outs = outputs if type(outputs) is tuple else (outputs,)
        floating = [o._data for o in outs if _dt.is_floating(o._data.dtype)]
        values = (np.concatenate([a.astype(np.float64).ravel() for a in floating])
                  if floating else None)
        dtype = floating[0].dtype.name if floating else outs[0]._data.dtype.name
        self.ops.append((op.__name__, module_path, values, dtype))


def relative_error(value, reference):
    """||value - reference|| / ||reference|| (2-norms, float64); 0 when both are zero, inf
    when only the reference is."""
    diff = np.linalg.norm(np.asarray(value, np.float64) - reference)
    norm = np.linalg.norm(reference)
    if norm == 0:
        return 0.0 if diff == 0 else math.inf
    return float(diff / norm)


def _cast_input(value, np_dtype):
    if isinstance(value, Tensor) and value.is_floating_point():
        return value.detach().to(_dt.from_numpy_dtype(np_dtype))
    if isinstance(value, np.ndarray) and _dt.is_floating(value.dtype):
        return make_tensor(value.astype(np_dtype))
    return value if isinstance(value, Tensor) else make_tensor(as_array(np.array(value)))


def _default_loss(output, target):
    from retrograd.nn import functional as F

    if target is None:
        return output.mean()
    if target.is_floating_point():
        return F.mse_loss(output, target)
    return F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1))


class _Run:
    """One dtype's step: the recorded ops, each parameter's gradient (float64), and the
    failure (op name, error text) if an op could not run in the dtype."""

    def __init__(self, model, inputs, target, loss_fn):
        self.recorder, self.failure, self.gradients = _OpRecorder(), None, {}
        try:
            with observe(self.recorder):
                output = model(*inputs)
                loss = (_default_loss(output, target) if loss_fn is None
                        else loss_fn(output) if target is None else loss_fn(output, target))
                loss.backward()
        except Exception as error:          # an op without a kernel for the dtype, say
            ops = self.recorder.ops
            op = self.recorder.running or (f"the code after op #{len(ops) - 1} {ops[-1][0]}"
                                           if ops else "the code before the first op")
            self.failure = (op, f"{type(error).__name__}: {error}")
            return
        self.gradients = {n: p.grad._data.astype(np.float64)
                          for n, p in model.named_parameters() if p.grad is not None}


class PrecisionAB:
    """precision_ab's answer: ``ops`` (OpErrors in op order), ``parameters`` ({name: {dtype
    name: relative error of the gradient}}), ``failures`` ({dtype name: (op, error)} for
    dtypes in which the step could not run), ``dtypes`` (names); ``worst(dtype)``,
    ``summary()``, and printable as a table (one column per dtype)."""

    def __init__(self, dtype_names, ops, parameters, failures):
        self.dtypes, self.ops, self.parameters, self.failures = (dtype_names, ops, parameters,
                                                                 failures)

    def worst(self, dtype):
        """The OpError with the largest error in ``dtype`` (a name or dtype), or None."""
        name = _dt.from_numpy_dtype(_dt.as_numpy_dtype(dtype)).name
        ranked = [op for op in self.ops if op.errors.get(name) is not None]
        return max(ranked, key=lambda op: op.errors[name], default=None)

    def drifted(self):
        """OpErrors whose output was not in the dtype the step ran in (an op that quietly
        computed in another dtype), as {dtype name: [OpError]}."""
        return {d: [op for op in self.ops if op.dtypes.get(d) not in (None, d, "bool")
                    and not op.dtypes[d].startswith("int")] for d in self.dtypes}

    def summary(self):
        """One line per dtype: the worst op (error, name, module path) and the worst
        gradient, or why the step failed."""
        lines = []
        for d in self.dtypes:
            if d in self.failures:
                op, error = self.failures[d]
                lines.append(f"{d}: failed in {op}: {error}")
                continue
            worst = self.worst(d)
            grads = {n: e[d] for n, e in self.parameters.items() if e.get(d) is not None}
            where = f" ({worst.module_path})" if worst and worst.module_path else ""
            op_part = f"worst op #{worst.index} {worst.op}{where} {worst.errors[d]:.2e}" \
                if worst else "no ops"
            grad_part = (f"worst gradient {max(grads, key=grads.get)} {max(grads.values()):.2e}"
                         if grads else "no gradients")
            lines.append(f"{d}: {op_part}; {grad_part}")
        return "\n".join(lines)

    def __str__(self):
        drifted = {d: {op.index for op in ops} for d, ops in self.drifted().items()}

        def cell(value, marked=False):
            return "-" if value is None else f"{value:.2e}" + ("*" if marked else "")

        op_rows = [[str(op.index), op.op, op.module_path or ""]
                   + [cell(op.errors.get(d), op.index in drifted[d]) for d in self.dtypes]
                   for op in self.ops]
        grad_rows = [["", "grad", name] + [cell(errors.get(d)) for d in self.dtypes]
                     for name, errors in self.parameters.items()]
        header = ["#", "op", "module"] + self.dtypes
        table = text_table(op_rows + grad_rows, header, left=3)
        note = ("\n* the op's output had another dtype (it computed in float32, say)"
                if any(drifted.values()) else "")
        return ("Relative error against float64 (ops in order, then gradients)\n" + table
                + note + "\n\n" + self.summary())

    __repr__ = __str__


def _op_errors(reference, runs):
    """OpErrors: each recorded op's relative error per dtype; ops must line up by position."""
    ops = []
    for i, (name, path, values, dtype) in enumerate(reference.recorder.ops):
        errors, dtypes = {}, {"float64": dtype}
        for d, run in runs.items():
            recorded = run.recorder.ops
            if i >= len(recorded):
                errors[d] = None
                continue
            _check_same_op(i, (name, path), recorded[i][:2], d)
            other = recorded[i][2]
            errors[d] = (relative_error(other, values) if values is not None
                         and other is not None and other.shape == values.shape else None)
            dtypes[d] = recorded[i][3]
        ops.append(OpError(i, name, path, errors, dtypes))
    return ops


def _check_same_op(i, expected, got, dtype):
    if tuple(expected) != tuple(got):
        raise RuntimeError(f"precision_ab: op #{i} is {got[0]} ({got[1]}) in {dtype} but "
                           f"{expected[0]} ({expected[1]}) in float64: the model runs "
                           f"different ops in different dtypes, so they cannot be compared")


def _check_op_counts(reference, runs):
    for d, run in runs.items():
        if run.failure is None and len(run.recorder.ops) != len(reference.recorder.ops):
            raise RuntimeError(f"precision_ab: the step runs {len(run.recorder.ops)} ops in {d} "
                               f"but {len(reference.recorder.ops)} in float64: the op "
                               f"sequences differ, so they cannot be compared")


def _as_tuple(inputs):
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def precision_ab(build_model, inputs, target=None, loss_fn=None,
                 dtypes=(_dt.float64, _dt.float32, _dt.bfloat16, _dt.float16)):
    """Run one forward and backward of the same model in each of ``dtypes`` and report each
    op's output and each parameter's gradient as a relative error against float64:
    ||x_d - x_64|| / ||x_64||.

    ``build_model()`` makes the model once; it is cast to float64, and each dtype gets a
    copy cast with ``.to(dtype)`` (the same weights, rounded). ``inputs`` (a Tensor, an array
    or a tuple of them) and a float ``target`` are cast too; integer ones (token ids) are
    kept. The loss is ``loss_fn(output, target)`` (``loss_fn(output)`` without a target); by
    default cross-entropy for an integer target, mean squared error for a float one, and
    the mean of the output without one. Use a model without dropout. An op that cannot run
    in a dtype stops that dtype's run: the report names it (``failures``) instead of
    raising. Returns a PrecisionAB.
    """
    tool = "precision_ab"
    a_model = _checks.is_module(build_model) and not isinstance(build_model, type)
    if not callable(build_model) or a_model:
        hint = (" (precision_ab casts the model it builds; to use this one, pass "
                "lambda: copy.deepcopy(model))" if a_model else "")
        raise TypeError(f"{tool}: build_model must be a callable that returns a model, got "
                        f"{_checks.describe(build_model)}{hint}")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"{tool}: loss_fn must be callable, got {_checks.describe(loss_fn)}")
    np_dtypes = [_floating_dtype(tool, d) for d in _checks.parameter_iterable(
        tool, "dtypes", dtypes, "a tuple of floating-point dtypes", nonempty=True)]
    model = build_model()
    if not _checks.is_module(model):
        raise TypeError(f"{tool}: build_model() must return a model, got "
                        f"{_checks.describe(model)}")
    model = model.to(_dt.float64)
    reference = _run_in(model, inputs, target, loss_fn, np.dtype(np.float64))
    if reference.failure is not None:
        op, error = reference.failure
        raise RuntimeError(f"{tool}: the float64 reference step failed in {op}: {error}")
    names = [_dt.from_numpy_dtype(d).name for d in np_dtypes]
    runs = {name: _run_in(copy.deepcopy(model).to(_dt.from_numpy_dtype(d)), inputs, target,
                          loss_fn, d) for name, d in zip(names, np_dtypes)}
    _check_op_counts(reference, runs)
    ops = _op_errors(reference, runs)
    parameters = {n: {d: (relative_error(run.gradients[n], g) if n in run.gradients else None)
                      for d, run in runs.items()} for n, g in reference.gradients.items()}
    failures = {d: run.failure for d, run in runs.items() if run.failure is not None}
    return PrecisionAB(names, ops, parameters, failures)


def _run_in(model, inputs, target, loss_fn, np_dtype):
    model.zero_grad()
    cast = tuple(_cast_input(x, np_dtype) for x in _as_tuple(inputs))
    cast_target = None if target is None else _cast_input(target, np_dtype)
    return _Run(model, cast, cast_target, loss_fn)
