"""What activation checkpointing keeps, drops and costs: the receipt of a checkpointed step,
the dry run of a selective policy, and a planner that fits a step into a memory budget.

``checkpoint_receipt(model, x, target=y, loss_fn=F.cross_entropy)`` runs one step under the
memory ledger and lists what was still saved for backward (op, module path, shape, dtype,
bytes), what checkpointing dropped, the bytes saved against no checkpointing, and the FLOPs
the recomputes paid, from the cost model:

    >>> import retrograd as rg
    >>> from retrograd.utils.checkpoint import checkpoint
    >>> layers = rg.nn.Sequential(rg.nn.Linear(64, 64), rg.nn.Tanh(), rg.nn.Linear(64, 64),
    ...                           rg.nn.Tanh())
    >>> receipt = checkpoint_receipt(lambda x: checkpoint(layers, x), rg.randn(32, 64),
    ...                              model=layers)
    >>> receipt.without_checkpointing_bytes // receipt.saved_bytes   # x kept, 2 Tanh dropped
    3
    >>> receipt.recompute_flops / receipt.forward_flops > 0.99      # the model's forward again
    True

``checkpoint_dry_run(function, *args, policy=[...])`` says op by op which outputs a policy
keeps and which ops the recompute runs again, before a step is paid for.

``plan_checkpoints(model, x, budget_bytes)`` chooses how a model's blocks (the ones
``gradient_checkpointing_enable`` checkpoints) are grouped into checkpointed segments: with
no budget the sqrt(n) schedule of Chen et al. (2016), segments of about sqrt(n) blocks; with a
budget the plan that checkpoints the fewest blocks (the least recompute) whose predicted peak
fits. The prediction comes from two measured steps (no checkpointing, every block
checkpointed): the bytes each block saves, the input it keeps when checkpointed, and the rest
of the step, combined for each candidate plan as the memory model below says. The chosen plan
is then measured, and the report gives predicted and measured peaks side by side.

The memory model of a plan (bytes the memory ledger counts; peaks as it measures them): with
D_i the bytes block i saves besides its input I_i, and p_i its parameters' bytes,

    kept      = sum of I_s over checkpointed segments s + sum of D_i (+ I_i if the block's
                ops save their input) over plain blocks
    peak      = max(plain_rest + kept,
                    recompute_rest + max over checkpointed segments s of
                        (kept by the segments before s) + I_s + sum of D_i in s
                        + sum of p_i of the blocks after s (their gradients exist by then))

where plain_rest and recompute_rest, the bytes outside the blocks at those two moments, are
fitted so that the formula gives the two measured peaks.
"""

import dataclasses
import math
import tracemalloc

import numpy as np

from retrograd import random as _random
from retrograd._checks import positive_int
from retrograd.autograd.cost import declared_cost
from retrograd.autograd.grad_mode import enable_grad
from retrograd.autograd.observer import OpObserver, observe
from retrograd.inspect._calls import describe_call
from retrograd.inspect.memory import MemoryReport, memory_report
from retrograd.inspect.render import format_bytes, format_count, text_table
from retrograd.nn.module import Module
from retrograd.utils.checkpoint import GradientCheckpointing, as_policy, kept_by_policy

__all__ = ["checkpoint_receipt", "CheckpointReceipt", "checkpoint_dry_run", "PolicyDryRun",
           "plan_checkpoints", "CheckpointPlan"]


# ------------------------------------------------------------------------------ receipt
def checkpoint_receipt(fn_or_model, *inputs, target=None, loss_fn=None, optimizer=None,
                       model=None):
    """Run one step (as ``memory_report`` does) and return its CheckpointReceipt."""
    report = memory_report(fn_or_model, *inputs, target=target, loss_fn=loss_fn,
                           optimizer=optimizer, model=model)
    return CheckpointReceipt(*[getattr(report, f.name) for f in dataclasses.fields(report)])


@dataclasses.dataclass
class CheckpointReceipt(MemoryReport):
    """The MemoryReport of a checkpointed step, printed as what it kept and paid:
    ``saved_bytes`` (still saved: checkpoint inputs, the values of unchecked ops),
    ``dropped_bytes`` (recomputed instead), ``cached_bytes`` (op outputs policies kept),
    ``without_checkpointing_bytes``, ``forward_flops`` and ``recompute_flops``."""

    @property
    def without_checkpointing_bytes(self):
        """What the same step would have saved without checkpointing."""
        return self.saved_bytes + self.dropped_bytes

    def table(self, row_limit=20):
        saved = sorted(self.saved, key=lambda v: -v.nbytes)
        rows = [[v.op, v.module or "-", "x".join(map(str, v.shape)) or "scalar", v.dtype,
                 format_bytes(v.nbytes)] for v in saved]
        shown = rows if row_limit is None else rows[:row_limit]
        kept = self.saved_bytes + self.cached_bytes
        factor = self.without_checkpointing_bytes / kept if kept else math.inf
        extra = (100 * self.recompute_flops / self.forward_flops if self.forward_flops else 0.0)
        calls = len(self.checkpoint_calls)
        lines = ["Saved for backward in the checkpointed step (each array once)",
                 text_table(shown, ["Op", "Module", "Shape", "Dtype", "Bytes"], left=2)]
        if len(rows) > len(shown):
            lines.append(f"({len(rows) - len(shown)} more rows: raise row_limit to see them)")
        lines += [
            "",
            f"Saved: {format_bytes(self.saved_bytes)}"
            + (f" + {format_bytes(self.cached_bytes)} of outputs kept by policies"
               if self.cached_bytes else "")
            + f"; without checkpointing: {format_bytes(self.without_checkpointing_bytes)} "
              f"({factor:.2f}x less kept, {format_bytes(self.dropped_bytes)} recomputed "
              f"instead)",
            f"Recompute: {format_count(self.recompute_flops)} FLOPs, {extra:.1f}% on top of the "
            f"forward's {format_count(self.forward_flops)}; "
            f"{calls} checkpointed call{'s' if calls != 1 else ''}",
            f"Peak (memory ledger): {format_bytes(self.peak_bytes)}"]
        return "\n".join(lines)


# ------------------------------------------------------------------------------ dry run
def checkpoint_dry_run(function, *args, policy=None, **kwargs):
    """Run ``function(*args, **kwargs)`` once (no backward) and say, for each op, whether a
    checkpoint with ``policy`` keeps its output or runs it again in the recompute, with its
    FLOPs and output bytes: a PolicyDryRun (print it).

    Example:
        >>> import retrograd as rg
        >>> block = rg.nn.Sequential(rg.nn.Linear(8, 32), rg.nn.GELU(), rg.nn.Linear(32, 8))
        >>> run = checkpoint_dry_run(block, rg.randn(4, 8), policy=["linear"])
        >>> [(row.op, row.kept) for row in run.rows]
        [('Linear', True), ('Gelu', False), ('Linear', True)]
    """
    if not callable(function):
        raise TypeError(f"checkpoint_dry_run: function must be callable, got "
                        f"{type(function).__name__}")
    keep = as_policy(policy) or (lambda op, path: False)
    rows = _PolicyRows(keep)
    with enable_grad(), observe(rows):
        function(*args, **kwargs)
    return PolicyDryRun(rows.rows)


@dataclasses.dataclass(frozen=True)
class PolicyRow:
    """One op call of a dry run: its op, module path, the bytes it holds (its outputs, 0 for
    a view; for a kept op also the arrays it keeps for backward, kept with them), forward
    FLOPs (None when the op declares no cost) and whether the policy keeps its output."""

    op: str
    module: str
    output_bytes: int
    flops: int
    kept: bool


class _PolicyRows(OpObserver):
    watches_backward = False

    def __init__(self, keep):
        self.keep, self.rows, self._attrs = keep, [], None

    def before_forward(self, op, inputs, attrs):
        self._attrs = attrs

    def after_forward(self, op, node, inputs, outputs, module_path):
        cost = declared_cost(describe_call(op, inputs, self._attrs or {}, outputs, node))
        out = outputs if type(outputs) is tuple else (outputs,)
        kept = kept_by_policy(self.keep, op, node, module_path) is not None
        view = op.is_view or getattr(node, "is_view", False)
        held = 0 if view else sum(o._data.nbytes for o in out)
        if kept:   # the arrays it keeps for its backward are kept with its outputs
            held += sum(v.nbytes for v in vars(node).values() if type(v) is np.ndarray)
        self.rows.append(PolicyRow(op.__name__, module_path or "", held,
                                   cost.flops if cost is not None else None, kept))


@dataclasses.dataclass
class PolicyDryRun:
    """The rows of checkpoint_dry_run and their totals."""

    rows: list

    def _total(self, kept, field):
        return sum(getattr(r, field) or 0 for r in self.rows if r.kept == kept)

    @property
    def kept_bytes(self):
        """Bytes of outputs the policy keeps (held from the forward to the recompute)."""
        return self._total(True, "output_bytes")

    @property
    def recompute_flops(self):
        return self._total(False, "flops")

    @property
    def skipped_flops(self):
        """FLOPs the recompute does not pay thanks to the kept outputs."""
        return self._total(True, "flops")

    def __str__(self):
        rows = [[r.op, r.module or "-", "keep output" if r.kept else "recompute",
                 format_bytes(r.output_bytes),
                 format_count(r.flops) if r.flops is not None else "?"] for r in self.rows]
        total = self.recompute_flops + self.skipped_flops
        share = 100 * self.skipped_flops / total if total else 0.0
        return "\n".join([
            "Checkpoint policy, op by op",
            text_table(rows, ["Op", "Module", "Recompute", "Output", "FLOPs"], left=2),
            "",
            f"Kept outputs: {format_bytes(self.kept_bytes)}; the recompute runs "
            f"{format_count(self.recompute_flops)} FLOPs and skips "
            f"{format_count(self.skipped_flops)} ({share:.1f}%)"])


# ------------------------------------------------------------------------------ planner
def plan_checkpoints(model, example_input, budget_bytes=None, target=None, loss_fn=None):
    """Choose checkpointed segments for ``model``'s blocks (see the module docstring), apply
    them (``model.gradient_checkpointing_enable(segments=...)``, or disable checkpointing when
    the plain step fits), measure the step, and return the CheckpointPlan.

    Args:
        model: a model with gradient_checkpointing_enable (GPT, ViT, ResNet, VGG, the
            Transformer stacks) running one stack of blocks.
        example_input: a batch of the size training will use.
        budget_bytes: the peak the step may reach (parameters included); None gives the
            sqrt(n) schedule.
        target, loss_fn: the step's loss is ``loss_fn(model(x), target)``; without them the
            output's sum.

    The planning steps (three: plain, every block checkpointed, the plan) leave the model's
    parameters, gradients, buffers (batch norm statistics) and the RNG state as they were.
    """
    if not isinstance(model, GradientCheckpointing):
        raise TypeError(f"plan_checkpoints: {type(model).__name__} has no "
                        f"gradient_checkpointing_enable(); plan models built from blocks "
                        f"(GPT, ViT, ResNet, VGG, nn.TransformerEncoder/Decoder)")
    if budget_bytes is not None:
        positive_int("plan_checkpoints", "budget_bytes", budget_bytes)
        parameters = sum(p._data.nbytes for p in model.parameters())
        if budget_bytes < parameters:
            raise ValueError(
                f"plan_checkpoints: budget_bytes={budget_bytes} ({format_bytes(budget_bytes)}) "
                f"is below the memory of the model's parameters alone, {parameters} bytes "
                f"({format_bytes(parameters)}); no checkpointing can fit the step in it")
    step = _Step(model, example_input, target, loss_fn)
    with step.preserved():
        plain = step.measure(enabled=False)
        every = step.measure(enabled=True)
        blocks = _blocks_of(model, every.checkpoint_calls)
        fit = _Fit(plain.peak_bytes, every.peak_bytes, blocks)
        candidates = fit.candidates()
        chosen = _choose(candidates, budget_bytes, len(blocks))
        plan = CheckpointPlan(chosen[1], chosen[0], budget_bytes, len(blocks),
                              plain.peak_bytes, every.peak_bytes)
        plan.apply(model)
        plan.measured_peak, plan.measured_tracemalloc_peak = step.measure_plan()
    plan.apply(model)
    return plan


@dataclasses.dataclass
class _Block:
    dropped: int     # D_i: what block i saves besides its input
    kept: int        # I_i: its input, kept when a segment starts at it
    parameters: int  # p_i
    saves_input: bool  # whether its ops save its input (then it is kept when plain too)

    @property
    def plain(self):
        """What the block keeps when it is not checkpointed."""
        return self.dropped + (self.kept if self.saves_input else 0)


def _blocks_of(model, calls):
    """The _Block of each checkpointed call of the every-block-checkpointed step."""
    owners = {id(c.owner) for c in calls}
    if not calls or len(owners) != 1 or [c.segment for c in calls] != list(range(len(calls))):
        raise ValueError(
            f"plan_checkpoints: {type(model).__name__} ran {len(calls)} checkpointed blocks "
            f"in {len(owners)} stacks; the planner plans one stack of blocks (plan an encoder "
            f"and a decoder separately)")
    return [_Block(c.dropped_bytes, c.kept_bytes, c.parameter_bytes, c.saves_input)
            for c in calls]


class _Fit:
    """The memory model of the module docstring, fitted to the two measured peaks."""

    def __init__(self, plain_peak, every_peak, blocks):
        self.blocks = blocks
        n = len(blocks)
        self.plain_rest = plain_peak - self._kept(_segments(n, 0, 1))
        self.recompute_rest = 0
        self.recompute_rest = every_peak - self._recompute_peak(_segments(n, n, 1))

    def _kept(self, segments):
        return sum(self._kept_by(s) for s in segments)

    def _kept_by(self, segment):
        start, stop, checkpointed = segment
        if checkpointed:
            return self.blocks[start].kept
        return sum(b.plain for b in self.blocks[start:stop])

    def _recompute_peak(self, segments):
        peaks, before = [], 0
        for start, stop, checkpointed in segments:
            if checkpointed:
                after = sum(b.parameters for b in self.blocks[stop:])
                inside = sum(b.dropped for b in self.blocks[start:stop])
                peaks.append(before + self.blocks[start].kept + inside + after)
            before += self._kept_by((start, stop, checkpointed))
        return self.recompute_rest + max(peaks, default=0)

    def predict(self, segments):
        peak = self.plain_rest + self._kept(segments)
        if any(s[2] for s in segments):
            peak = max(peak, self._recompute_peak(segments))
        return peak

    def candidates(self):
        """(predicted peak, segments, checkpointed blocks) of every plan that checkpoints
        the first m blocks in segments of length L."""
        n, found = len(self.blocks), {}
        for m in range(n + 1):
            for length in range(1, max(m, 1) + 1):
                segments = _segments(n, m, length)
                found[tuple(segments)] = (self.predict(segments), segments, m)
        return list(found.values())


def _segments(n, m, length):
    """The first m of n blocks checkpointed in segments of ``length``, the rest plain."""
    segments = [(start, min(start + length, m), True) for start in range(0, m, length)]
    return segments + ([(m, n, False)] if m < n else [])


def _choose(candidates, budget, n):
    if budget is None:  # Chen et al.: segments of about sqrt(n) blocks
        length = max(1, round(math.sqrt(n)))
        return next(c for c in candidates if c[1] == _segments(n, n, length))
    fitting = [c for c in candidates if c[0] <= budget]
    if not fitting:
        best = min(candidates, key=lambda c: c[0])
        raise ValueError(
            f"plan_checkpoints: no plan fits budget_bytes={budget} ({format_bytes(budget)}): "
            f"the lowest predicted peak is {format_bytes(best[0])}, with segments {best[1]}; "
            f"use a smaller batch or a larger budget")
    return min(fitting, key=lambda c: (c[2], c[0]))


@dataclasses.dataclass
class CheckpointPlan:
    """A plan: ``segments`` ((start, stop, checkpointed) over the model's blocks), the
    ``predicted_peak`` and, once measured, the ``measured_peak`` (memory ledger) and
    ``measured_tracemalloc_peak`` (every allocation, NumPy's temporaries included), beside
    the two measured steps the prediction was fitted to."""

    segments: list
    predicted_peak: int
    budget_bytes: int
    blocks: int
    plain_peak: int
    every_block_peak: int
    measured_peak: int = None
    measured_tracemalloc_peak: int = None

    @property
    def checkpointed_blocks(self):
        return sum(stop - start for start, stop, checkpointed in self.segments if checkpointed)

    def apply(self, model):
        """Configure ``model`` to run this plan."""
        if self.checkpointed_blocks:
            model.gradient_checkpointing_enable(segments=self.segments)
        else:
            model.gradient_checkpointing_disable()

    def __str__(self):
        rows = [[f"{start}-{stop - 1}" if stop - start > 1 else str(start),
                 "checkpointed" if checkpointed else "plain"]
                for start, stop, checkpointed in self.segments]
        budget = (format_bytes(self.budget_bytes) if self.budget_bytes is not None
                  else "none (sqrt(n) schedule)")
        lines = [f"Checkpoint plan for {self.blocks} blocks, budget {budget}",
                 text_table(rows, ["Blocks", "Segment"], left=2), "",
                 f"Peak without checkpointing: {format_bytes(self.plain_peak)}; every block "
                 f"checkpointed: {format_bytes(self.every_block_peak)}",
                 f"Predicted peak: {format_bytes(self.predicted_peak)}"]
        if self.measured_peak is not None:
            error = 100 * (self.predicted_peak - self.measured_peak) / self.measured_peak
            lines.append(f"Measured peak: {format_bytes(self.measured_peak)} (memory ledger; "
                         f"prediction {error:+.1f}%), "
                         f"{format_bytes(self.measured_tracemalloc_peak)} (tracemalloc, "
                         f"NumPy's temporaries included)")
        return "\n".join(lines)


class _Step:
    """One forward and backward of the model on the example, measured, with the model's
    state and the RNG put back afterwards."""

    def __init__(self, model, x, target, loss_fn):
        if not isinstance(model, Module):
            raise TypeError(f"plan_checkpoints: model must be a Module, got "
                            f"{type(model).__name__}")
        self.model, self.x, self.target, self.loss_fn = model, x, target, loss_fn

    def preserved(self):
        return _Preserved(self.model)

    def measure(self, enabled):
        """The MemoryReport of a step with every block checkpointed, or none."""
        if enabled:
            self.model.gradient_checkpointing_enable()
        else:
            self.model.gradient_checkpointing_disable()
        return self._report()

    def _report(self):
        self.model.zero_grad(set_to_none=True)
        return memory_report(self.model, self.x, target=self.target, loss_fn=self.loss_fn)

    def measure_plan(self):
        """The peaks of a step as the model is configured: (ledger, tracemalloc)."""
        report = self._report()
        self.model.zero_grad(set_to_none=True)
        tracing = tracemalloc.is_tracing()
        if not tracing:
            tracemalloc.start()
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        try:
            out = self.model(self.x)
            loss = self.loss_fn(out, self.target) if self.loss_fn is not None else out
            (loss if loss.ndim == 0 else loss.sum()).backward()
            del out, loss
            peak = tracemalloc.get_traced_memory()[1] - start
        finally:
            if not tracing:
                tracemalloc.stop()
        return report.peak_bytes, report.resident + peak


class _Preserved:
    """Puts back the model's gradients, buffers, training mode, checkpointing and the RNG."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        model = self.model
        self.grads = [(p, p.grad) for p in model.parameters()]
        self.buffers = [(b, b._data.copy()) for b in model.buffers()]
        self.rng = _random.get_rng_state()
        self.training = model.training
        self.checkpointing = (model.gradient_checkpointing, model._checkpointing_kwargs,
                              model._checkpoint_segments)
        model.train()
        return self

    def __exit__(self, *exc):
        for p, grad in self.grads:
            p.grad = grad
        for b, data in self.buffers:
            b._data[...] = data
        _random.set_rng_state(self.rng)
        self.model.train(self.training)
        self.model._set_checkpointing(*self.checkpointing)
        return False
