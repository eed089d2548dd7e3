"""Profiling training steps: ``retrograd train --profile N`` (RunProfiler) and ``retrograd
profile --model NAME`` (profile_model).

``RunProfiler`` profiles N training steps of a run after three warm-up steps (two skipped, one
run under the profiler and discarded, so that the profiled steps see warm caches and a warm
allocator), then writes into the run folder ``profile.txt`` (the table by op and by module x
op x phase) and ``trace.json`` (Chrome/Perfetto), and gives the run report a "Profile"
section. The second step of the run (the first one warm) runs under a memory ledger:
``memory.txt`` holds what it kept for backward, by module and op, and its peak.
"""

import os

import retrograd as rg
from retrograd.inspect.memory import MemoryLedger, memory_report
from retrograd.inspect.profiler import profile, schedule
from retrograd.inspect.report import Section
from retrograd.nn import functional as F
from retrograd.utils.serialization import atomic_write

__all__ = ["RunProfiler", "profile_model", "memory_of_model", "profile_tables",
           "PROFILE_FILES", "WARMUP_STEPS"]

WARMUP_STEPS = 3
PROFILE_FILES = ("profile.txt", "trace.json", "memory.txt")
_SECTION_ROWS = 15


def profile_tables(prof, steps, row_limit=30, sort_by="self_cpu_time_total"):
    """The text of profile.txt: the table by op, then by module x op x phase."""
    header = f"retrograd profile of {steps} training step{'s' * (steps != 1)}"
    by_op = prof.key_averages().table(sort_by=sort_by, row_limit=row_limit, header=header)
    by_module = prof.key_averages(group_by_module=True).table(
        sort_by=sort_by, row_limit=row_limit, header="By module x op x phase")
    return f"{by_op}\n\n{by_module}\n"


class RunProfiler:
    """Profiles ``steps`` training steps of a run after WARMUP_STEPS warm-up steps; call
    ``step()`` after each training step and ``close()`` at the end (see the module
    docstring). ``sections`` holds the report section once the profile is written."""

    def __init__(self, steps, out, model=None, optimizer=None):
        self.steps, self.out, self.sections, self.written = steps, out, [], False
        self._ledger, self._steps_seen = MemoryLedger(model, optimizer), 0
        self._profile = profile(
            schedule=schedule(skip_first=WARMUP_STEPS - 1, wait=0, warmup=1, active=steps,
                              repeat=1), on_trace_ready=self._write, profile_memory=True)
        self._profile.__enter__()

    def step(self):
        self._steps_seen += 1
        if self._steps_seen == 1:       # the ledger watches the second step
            self._ledger.__enter__()
        elif self._steps_seen == 2:
            self._write_memory()
        self._profile.step()

    def _write_memory(self):
        self._ledger.__exit__(None, None, None)
        report = self._ledger.report()
        text = f"retrograd memory ledger of one training step\n{report.table()}\n"
        atomic_write(os.path.join(self.out, "memory.txt"),
                     lambda f: f.write(text.encode("utf-8")), owner="train --profile")
        self.sections.append(_memory_section(report))

    def close(self):
        """Stop profiling; returns a note when the run ended before the profile was taken."""
        self._profile.__exit__(None, None, None)
        if self._steps_seen == 1:       # the run ended during the ledger's step
            self._ledger.__exit__(None, None, None)
        if self.written:
            return None
        return (f"--profile {self.steps}: the run ended before {WARMUP_STEPS} warm-up and "
                f"{self.steps} profiled steps; nothing was profiled")

    def _write(self, prof):
        text = profile_tables(prof, self.steps).encode("utf-8")
        atomic_write(os.path.join(self.out, "profile.txt"), lambda f: f.write(text),
                     owner="train --profile")
        prof.export_chrome_trace(os.path.join(self.out, "trace.json"))
        self.sections.append(_section(prof, self.steps))
        self.written = True


def _section(prof, steps):
    rows = prof.key_averages(group_by_module=True)
    total = rows.self_cpu_time_total
    top = sorted(rows, key=lambda r: r.self_cpu_time_total, reverse=True)[:_SECTION_ROWS]
    columns = ["name", "phase", "module", "self_ms_per_step", "self_percent", "calls",
               "gflop_per_s", "roofline_percent"]
    return Section.table(f"Profile: where {steps} training step{'s' * (steps != 1)} spent "
                         f"their time (profile.txt, trace.json)",
                         [_section_row(r, rows.peaks, total, steps) for r in top], columns)


def _section_row(row, peaks, total, steps):
    """One row of the report's profile table; rows without FLOPs (the overhead, optimizer
    steps) leave the rate and roofline cells empty."""
    cells = dict(name=row.key, phase=row.phase, module=row.module or "-",
                 self_ms_per_step=row.self_cpu_time_total / 1e3 / steps,
                 self_percent=100 * row.self_cpu_time_total / total if total else 0.0,
                 calls=row.count)
    fraction = row.roofline_fraction(peaks)
    if row.flops:
        cells["gflop_per_s"] = row.gflops_per_s
    if fraction is not None:
        cells["roofline_percent"] = 100 * fraction
    return cells


def _memory_section(report):
    top = sorted(report.by_module().items(), key=lambda kv: -kv[1])[:_SECTION_ROWS]
    rows = [dict(module=module or "-", saved_for_backward_kib=nbytes / 1024,
                 saved_percent=100 * nbytes / report.saved_bytes) for module, nbytes in top]
    return Section.table(f"Memory: one training step kept {report.saved_bytes / 2**20:.2f} MiB "
                         f"for backward, peak {report.peak_bytes / 2**20:.2f} MiB "
                         f"(memory.txt)", rows)


# ----------------------------------------------------------------------------- retrograd profile

# model -> (in_channels, image_size) of the data set it is trained on by default
_IMAGE_INPUTS = {"resnet-digits": (1, 8), "lenet": (1, 28), "mlp": (1, 28)}
_DEFAULT_IMAGE = (3, 32)
_GPT = dict(vocab_size=65, context=128, n_layer=4, n_head=4, d_model=128)


def _case_study(name, batch_size):
    """(model, inputs, target, loss function) of a case-study model with a random batch."""
    from retrograd.models import MODELS, GPT, GPTConfig, build_model
    if name == "gpt":
        config = GPTConfig(**_GPT)
        ids = rg.randint(0, config.vocab_size, (batch_size, config.context))
        target = rg.randint(0, config.vocab_size, (batch_size, config.context))
        return GPT(config), ids, target, _token_loss
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: gpt, {', '.join(MODELS)}")
    channels, size = _IMAGE_INPUTS.get(name, _DEFAULT_IMAGE)
    x = rg.randn(batch_size, channels, size, size)
    return build_model(name, channels, size, 10), x, rg.randint(0, 10, (batch_size,)), \
        F.cross_entropy


def _token_loss(logits, target):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def _training(name, batch_size, seed):
    """(model, optimizer, one training step, the step's inputs) of a case-study model."""
    rg.manual_seed(seed)
    model, x, target, loss_fn = _case_study(name, batch_size)
    optimizer = rg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        optimizer.zero_grad()
        loss_fn(model(x), target).backward()
        optimizer.step()
    return model, optimizer, train_step, (x, target, loss_fn)


def profile_model(name, batch_size=32, steps=1, warmup=WARMUP_STEPS, seed=0, **profile_args):
    """Profile ``steps`` training steps (forward, loss, backward, SGD step) of the case-study
    model ``name`` on a random batch, after ``warmup`` unprofiled steps; returns the profile."""
    _, _, train_step, _ = _training(name, batch_size, seed)
    for _ in range(warmup):
        train_step()
    with profile(**profile_args) as prof:
        for _ in range(steps):
            train_step()
    return prof


def memory_of_model(name, batch_size=32, seed=0):
    """The MemoryReport of one training step of the case-study model ``name`` (after one
    unmeasured step, so that the optimizer's state exists)."""
    model, optimizer, train_step, (x, target, loss_fn) = _training(name, batch_size, seed)
    train_step()
    optimizer.zero_grad()
    return memory_report(model, x, target=target, loss_fn=loss_fn, optimizer=optimizer)
