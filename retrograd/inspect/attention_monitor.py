"""Attention over training: every N steps, one extra forward and backward of the model on a
fixed batch under ``capture_attention``, the per-head diagnostics of every attention layer
(``attention_diagnostics``) kept as numbers, and warnings when a head goes bad.

    monitor = AttentionMonitor(model, every=50)
    for step in range(1, steps + 1):
        ...                                   # the training step
        for warning in monitor.maybe_record(step, lambda: loss_fn(model(x_fixed), y_fixed)):
            print(warning.message)

The extra pass leaves training untouched: the parameters' ``.grad`` are saved before it and put
back after it (the very same objects), the global RNG state is restored, and the model's
train/eval mode too. The pass runs in eval mode (no dropout), so that records are comparable.

Warnings (thresholds fixed for every model; each kind fires once per layer and head, at the
first record that meets its rule):

- entropy collapse: the head's normalized entropy H / log(n_keys) (mean over query rows) is
  below ENTROPY_COLLAPSE = 0.1 at a record after having been >= 0.1 at an earlier record;
- logit growth: the head's max |logit| (over its unmasked logits) is above LOGIT_MAX = 50, or
  at least LOGIT_GROWTH = 10 times its value at the head's first record while above
  LOGIT_FLOOR = 5 (growth among tiny logits, as at initialization, is harmless);
- saturation: the fraction of the head's query rows whose largest weight is above 0.99 is
  above SATURATED_FRACTION = 0.5.

Remedies (named in every warning): QK-norm (``qk_norm=True`` on the model, e.g.
``GPTConfig(qk_norm=True)``), a lower learning rate or a longer warmup, z-loss
(``F.cross_entropy(..., z_loss=1e-4)``).

Cost: one forward and backward of the fixed batch per record, plus the capture's (see
inspect/attention.py). Memory: numbers per record, plus the last capture's weights A.
"""

import dataclasses
import json
import math
import os
from html import escape

import numpy as np

import retrograd as rg
from retrograd import _checks
from retrograd.inspect.attention import attention_diagnostics, capture_attention

__all__ = ["AttentionMonitor", "AttentionWarning", "ENTROPY_COLLAPSE", "LOGIT_MAX",
           "LOGIT_GROWTH", "LOGIT_FLOOR", "SATURATED_FRACTION", "REMEDIES"]

ENTROPY_COLLAPSE = 0.1
LOGIT_MAX = 50.0
LOGIT_GROWTH = 10.0
LOGIT_FLOOR = 5.0
SATURATED_FRACTION = 0.5

REMEDIES = ("QK-norm (qk_norm=True on the model, e.g. GPTConfig(qk_norm=True)); a lower "
            "learning rate or a longer warmup; z-loss (F.cross_entropy(..., z_loss=1e-4))")

RULES = {
    "entropy collapse": f"H / log(n_keys) < {ENTROPY_COLLAPSE:g} after having been >= "
                        f"{ENTROPY_COLLAPSE:g} at an earlier record",
    "logit growth": f"max |logit| > {LOGIT_MAX:g}, or >= {LOGIT_GROWTH:g}x its value at the "
                    f"head's first record and > {LOGIT_FLOOR:g}",
    "saturation": f"fraction of rows with max weight > 0.99 above {SATURATED_FRACTION:g}",
}

_NUMBERS = ("entropy", "normalized_entropy", "max_prob", "saturated_fraction", "logit_std",
            "logit_max", "jacobian_norm", "importance")


@dataclasses.dataclass(frozen=True)
class AttentionWarning:
    """One warning: ``kind`` (a key of RULES), the step of the record, the layer (module path,
    with ``#k`` for its k-th call when a module makes several), the head, the value that met
    the rule and what it is."""

    kind: str
    step: int
    layer: str
    head: int
    value: float
    detail: str

    @property
    def message(self):
        return (f"attention warning: {self.kind} at step {self.step} in layer {self.layer!r} "
                f"head {self.head}: {self.detail} (rule: {RULES[self.kind]}). Remedies: "
                f"{REMEDIES}")

    def as_dict(self):
        return dict(dataclasses.asdict(self), rule=RULES[self.kind], remedies=REMEDIES)


class AttentionMonitor:
    """Attention diagnostics every ``every`` steps (see the module docstring).

    Args:
        model: the Module whose attention layers are watched.
        every: record at the steps that are multiples of this (maybe_record).
        batch: optional fixed (inputs, targets) of a language model; then ``make_loss`` may be
            left out: the loss is F.cross_entropy(model(inputs) flattened, targets flattened).

    Attributes: ``records`` (one dict per record: step and, per layer, a list of per-head
    dicts of the HeadDiagnostics numbers plus ``max_abs_logit``), ``warnings`` (every
    AttentionWarning so far), ``last_probs`` ({layer: (samples, heads, L, S) weights of the
    last record}).

    Raises:
        ValueError: ``every`` is not a positive int; the model makes no attention op call in
            the extra pass (record).
    """

    def __init__(self, model, every=100, batch=None):
        self.model = model
        self.every = _checks.positive_int("AttentionMonitor", "every (record every N-th step)",
                                          every)
        self.batch = batch
        self.records, self.warnings, self.last_probs = [], [], {}
        self._first, self._above, self._fired = {}, set(), set()

    # ------------------------------------------------------------------ recording
    def maybe_record(self, step, make_loss=None):
        """record(step, make_loss) when ``step`` is a multiple of ``every``; returns the new
        warnings (a list, empty on other steps)."""
        if step % self.every:
            return []
        return self.record(step, make_loss)

    def record(self, step, make_loss=None):
        """One extra forward (``make_loss()``, which returns the scalar loss) and backward
        under capture_attention; stores the diagnostics and returns the new warnings."""
        if make_loss is None:
            make_loss = self._default_loss()
        model = self.model
        params = list(model.parameters())
        grads = [p.grad for p in params]
        rng, training = rg.get_rng_state(), model.training
        try:
            for p in params:
                p.grad = None
            model.eval()
            with rg.enable_grad(), capture_attention() as capture:
                make_loss().backward()
        finally:
            for p, g in zip(params, grads):
                p.grad = g
            rg.set_rng_state(rng)
            model.train(training)
        if not capture.records:
            raise ValueError(f"AttentionMonitor: the model {type(model).__name__} made no "
                             f"attention op call (ScaledDotProductAttention or "
                             f"MemoryEfficientAttention) in its forward; it has no attention "
                             f"layers to monitor")
        layers, probs = {}, {}
        for rec in capture.records:
            name = rec.module_path or "(model)"
            name = name if rec.call_index == 0 else f"{name}#{rec.call_index}"
            layers[name] = _head_numbers(rec)
            probs[name] = np.array(rec.probs, dtype=np.float32)
        self.records.append(dict(step=int(step), layers=layers))
        self.last_probs = probs
        new = self._check(int(step), layers)
        self.warnings += new
        return new

    def _default_loss(self):
        if self.batch is None:
            raise ValueError("AttentionMonitor: give make_loss (a function returning the "
                             "scalar loss) or batch=(inputs, targets) to the monitor")
        from retrograd.nn import functional as F

        inputs, targets = self.batch

        def loss():
            logits = self.model(inputs)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        return loss

    def _check(self, step, layers):
        new = []
        for layer, heads in layers.items():
            for d in heads:
                key, head = (layer, d["head"]), d["head"]
                h, top, sat = d["normalized_entropy"], d["max_abs_logit"], d["saturated_fraction"]
                first = self._first.setdefault(key, top)
                found = []
                if _finite(h) and h < ENTROPY_COLLAPSE and key in self._above:
                    found.append(("entropy collapse", h, f"H / log n = {h:.3g}"))
                if _finite(h) and h >= ENTROPY_COLLAPSE:
                    self._above.add(key)
                grown = top > LOGIT_FLOOR and first > 0 and top >= LOGIT_GROWTH * first
                if _finite(top) and (top > LOGIT_MAX or grown):
                    found.append(("logit growth", top, f"max |logit| = {top:.4g} (first record: "
                                                       f"{first:.4g})"))
                if _finite(sat) and sat > SATURATED_FRACTION:
                    found.append(("saturation", sat, f"{sat:.0%} of rows have max weight > "
                                                     f"0.99"))
                for kind, value, detail in found:
                    if (kind,) + key not in self._fired:
                        self._fired.add((kind,) + key)
                        new.append(AttentionWarning(kind, step, layer, head, float(value),
                                                    detail))
        return new

    # ------------------------------------------------------------------ output
    def series(self, name):
        """(steps, {"<layer> h<head>": values}) of one per-head number over the records."""
        steps = [r["step"] for r in self.records]
        curves = {}
        for i, r in enumerate(self.records):
            for layer, heads in r["layers"].items():
                for d in heads:
                    values = curves.setdefault(f"{layer} h{d['head']}", [None] * len(steps))
                    values[i] = d[name]
        return steps, curves

    def as_dict(self):
        return dict(every=self.every,
                    thresholds=dict(entropy_collapse=ENTROPY_COLLAPSE, logit_max=LOGIT_MAX,
                                    logit_growth=LOGIT_GROWTH, logit_floor=LOGIT_FLOOR,
                                    saturated_fraction=SATURATED_FRACTION),
                    rules=RULES, remedies=REMEDIES, records=_clean(self.records),
                    warnings=[_clean(w.as_dict()) for w in self.warnings])

    def save_json(self, path):
        """The records and warnings as JSON at ``path``, written atomically (NaN as null)."""
        from retrograd.utils.serialization import atomic_write

        text = json.dumps(self.as_dict(), indent=1).encode("utf-8")
        atomic_write(path, lambda f: f.write(text), owner="AttentionMonitor.save_json")

    def warning_rows(self):
        return [dict(step=w.step, layer=w.layer, head=w.head, warning=w.kind,
                     value=w.value, detail=w.detail) for w in self.warnings]

    def sections(self, folder=None, tokens=None):
        """Report sections: curves of H / log n and max |logit| per layer x head over the
        records (PNGs in ``folder``), the warnings, and the head view of the last record's
        first sample (``tokens``: its L token labels; default the positions)."""
        from retrograd.inspect.attention_views import head_view_section
        from retrograd.inspect.render import plot_step_ratios
        from retrograd.inspect.report import Section

        if not self.records:
            return [Section.html("Attention over training", "<p>No record yet.</p>")]
        sections = []
        if folder is not None:
            os.makedirs(folder, exist_ok=True)
            figures = (("normalized_entropy", ENTROPY_COLLAPSE, "Attention entropy per head",
                        "H / log(n keys)", "attention_entropy.png"),
                       ("max_abs_logit", LOGIT_MAX, "Max |attention logit| per head",
                        "max |logit|", "attention_logits.png"))
            for name, guide, title, ylabel, file in figures:
                steps, curves = self.series(name)
                path = os.path.join(folder, file)
                if plot_step_ratios(steps, curves, path, guide=guide, title=title,
                                    ylabel=ylabel):
                    sections.append(Section.figure(title, path, f"{ylabel} of every layer and "
                                                                f"head at steps {steps}; dashed: "
                                                                f"the warning threshold {guide:g}"))
        rules = "; ".join(f"{kind}: {rule}" for kind, rule in RULES.items())
        note = (f"<p>Rules (records every {self.every} steps): {escape(rules)}. Remedies: "
                f"{escape(REMEDIES)}.</p>")
        if self.warnings:
            table = Section.table("Attention warnings", self.warning_rows())
            sections.append(Section.html("Attention warnings", note + table.body))
        else:
            sections.append(Section.html("Attention warnings", f"<p>No warning in "
                                                               f"{len(self.records)} records."
                                                               f"</p>{note}"))
        names = list(self.last_probs)
        length = next(iter(self.last_probs.values())).shape[-2]
        tokens = [str(i) for i in range(length)] if tokens is None else list(tokens)
        step = self.records[-1]["step"]
        sections.append(head_view_section([self.last_probs[n] for n in names], tokens,
                                          layer_names=names,
                                          title=f"Attention heads at step {step}"))
        return sections


def _head_numbers(record):
    """Per head: the attention_diagnostics numbers of ``record`` and its max |logit|."""
    diagnostics = attention_diagnostics(record)
    logits = np.asarray(record.logits, dtype=np.float64)
    heads = []
    for h, d in enumerate(diagnostics):
        values = logits[:, h][np.isfinite(logits[:, h])]
        numbers = {name: getattr(d, name) for name in _NUMBERS}
        heads.append(dict(head=int(d.head), **{k: None if v is None else float(v)
                                               for k, v in numbers.items()},
                          max_abs_logit=float(np.abs(values).max()) if values.size
                          else math.nan, dead=bool(d.dead), uniform=bool(d.uniform)))
    return heads


def _finite(value):
    return value is not None and math.isfinite(value)


def _clean(value):
    """``value`` with NaN and Inf floats as None (JSON has neither)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
