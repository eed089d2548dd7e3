"""``retrograd train --amp bf16|fp16``: the training jobs' forward and loss under autocast,
their updates through a GradScaler, and what mixed precision did, shown.

With fp16 the loss is scaled (GradScaler, init_scale 2**16) and a step whose gradients hold
Inf/NaN is skipped, with the learning-rate scheduler's step (so the schedule follows the
updates that happened); bf16 has float32's range and needs no scaling (its scaler is off, as
PyTorch's practice is). Parameters stay float32 (master weights); evaluation runs in float32.
The scaler's state is in the training checkpoint, so an --amp run resumes bit-exactly.

The run folder gets ``amp.json`` (the scale at each step, the skipped steps with the
parameters that held Inf/NaN) and the report a "Mixed precision" section: the scale history
with the skipped steps marked, and the last step's gradients against float16's limits
(retrograd.inspect.precision.gradient_underflow).
"""

import contextlib
import json
import os

import retrograd as rg
from retrograd.amp import GradScaler, autocast
from retrograd.inspect.precision import gradient_underflow
from retrograd.inspect.render import plot_scale_history
from retrograd.inspect.report import Section
from retrograd.utils.serialization import atomic_write

__all__ = ["AMP_DTYPES", "MixedPrecision", "mixed_precision", "forward_context"]

AMP_DTYPES = {"bf16": rg.bfloat16, "fp16": rg.float16}


def mixed_precision(config, model):
    """The run's MixedPrecision for ``config.amp`` (None without --amp)."""
    name = getattr(config, "amp", None)
    if name is None:
        return None
    if name not in AMP_DTYPES:
        raise ValueError(f"train: --amp must be one of {', '.join(AMP_DTYPES)}, got {name!r}")
    return MixedPrecision(name, model)


def forward_context(run):
    """Autocast for the run's forward and loss under --amp, else nothing."""
    amp = getattr(run, "amp", None)
    return amp.autocast() if amp is not None else contextlib.nullcontext()


class MixedPrecision:
    """The autocast dtype and the GradScaler of a run, and the history of its steps."""

    def __init__(self, name, model):
        self.name, self.dtype, self.model = name, AMP_DTYPES[name], model
        self.scaler = GradScaler(enabled=name == "fp16", model=model)
        self.scales, self.skipped = [], []   # [step, scale]; {step, parameters}

    def autocast(self):
        return autocast(dtype=self.dtype)

    def backward(self, loss):
        self.scaler.scale(loss).backward()

    def unscale(self, optimizer):
        """The gradients in their true size (before clipping or reading them)."""
        self.scaler.unscale_(optimizer)

    def step(self, optimizer, step):
        """Step the optimizer through the scaler; True when the step was taken."""
        record = self.scaler.step(optimizer)
        self.scaler.update()
        self.scales.append([step, float(record.scale)])
        if record.skipped:
            self.skipped.append({"step": step, "parameters": list(record.nonfinite)})
        return not record.skipped

    def state_dict(self):
        return {"scaler": self.scaler.state_dict(), "scales": self.scales,
                "skipped": self.skipped}

    def load_state_dict(self, state):
        self.scaler.load_state_dict(state["scaler"])
        self.scales = [list(s) for s in state["scales"]]
        self.skipped = [dict(s) for s in state["skipped"]]

    def write(self, out):
        """amp.json in the run folder."""
        data = {"dtype": self.name, "scale": self.scaler.get_scale(), "scales": self.scales,
                "skipped_steps": self.skipped}
        text = json.dumps(data).encode("utf-8")
        atomic_write(os.path.join(out, "amp.json"), lambda f: f.write(text),
                     owner="train --amp")

    def sections(self, out):
        """The report's "Mixed precision" section (and the figures it embeds)."""
        skipped = len(self.skipped)
        text = (f"<p>Autocast {self.name}; {len(self.scales)} steps, {skipped} skipped "
                f"(gradients with Inf/NaN)"
                + (f"; loss scale now {self.scaler.get_scale():g}" if self.name == "fp16"
                   else "; no loss scaling (bfloat16 has float32's range)") + ".</p>")
        sections = [Section.html("Mixed precision", text)]
        if self.name == "fp16" and self.scales:
            path = os.path.join(out, "amp_scale.png")
            if plot_scale_history([s for s, _ in self.scales], [v for _, v in self.scales],
                                  [s["step"] for s in self.skipped], path):
                sections.append(Section.figure("Loss scale by step", path,
                                               "the GradScaler's scale at each step, skipped "
                                               "steps marked"))
        underflow = gradient_underflow(self.model, scale=self.scaler.get_scale()
                                       if self.name == "fp16" else 1.0)
        path = os.path.join(out, "amp_gradients.png")
        if underflow.plot(path):
            sections.append(Section.figure(
                "Gradients against float16's limits", path,
                f"log2 |gradient| per layer at the last step; "
                f"{100 * underflow.flush_fraction():.2f}% would flush to zero in float16"))
        return sections
