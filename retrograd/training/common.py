"""Pieces shared by the training jobs: progress bars, run folders, run outputs, the optimizer
step, checkpoint state, option checks, interruptions, and the loop of the step-based jobs
(language model, sequence tasks)."""

import contextlib
import dataclasses
import functools
import json
import os
import shlex
import sys
import time

import retrograd as rg
from retrograd import _checks
from retrograd.distributed import DistributedError
from retrograd.inspect.report import write_run_report, write_step_report
from retrograd.nn.utils import clip_grad_norm_
from retrograd.training.data_parallel import mean_over_ranks, rank_batches, world_of
from retrograd.training.profiling import RunProfiler
from retrograd.utils.data import DataLoader
from retrograd.utils.serialization import atomic_write, load, save

__all__ = ["Progress", "StepProgress", "run_folder", "write_outputs", "write_step_outputs", "say",
           "optimizer_step", "training_state", "restore_training_state", "resumed_config",
           "train_steps", "save_state", "CHECKPOINT", "check_options", "option_rules",
           "seeded_batches", "check_run_folder", "make_run_folder", "read_checkpoint",
           "config_from", "TrainingInterrupted", "interruptible", "check_full_batches",
           "endless_batches", "profiling", "report_sections", "job_folder"]

CHECKPOINT = "checkpoint.safetensors"


# ----------------------------------------------------------------------------- options
def _int_at_least(minimum):
    return lambda owner, name, value: _checks.int_at_least(owner, name, value, minimum)


def _number_at_least(minimum):
    return lambda owner, name, value: _checks.number_at_least(owner, name, value, minimum)


# The range of every numeric option a job may have, by kind.
_RULES = {
    "count": _int_at_least(1),               # epochs, steps, batch_size, context, layers, ...
    "count or zero": _int_at_least(0),       # warmup_steps, seed
    "rate": _number_at_least(0.0),           # lr, weight_decay, grad_clip, warmup_epochs
    "probability": _checks.probability,      # dropout
}


def option_rules(**kinds):
    """{option: check} for check_options, from option=kind keywords (kinds: "count", "count or
    zero", "rate", "probability")."""
    return {name: _RULES[kind] for name, kind in kinds.items()}


def check_options(config, rules, flags=False, owner="train"):
    """Raise a ValueError for the first option of ``config`` out of its range (``rules`` from
    option_rules; None values mean "the default" and pass). Errors name ``owner`` and the
    option as the configuration field (``batch_size``), or with ``flags`` as a command-line
    option (``--batch-size``).

    Example:
        >>> from retrograd.training.image import TrainConfig
        >>> check_options(TrainConfig(epochs=0), option_rules(epochs="count"), flags=True)
        Traceback (most recent call last):
        ValueError: train: --epochs must be an int >= 1, got 0
    """
    for name, check in rules.items():
        value = getattr(config, name)
        if value is not None:
            check(owner, "--" + name.replace("_", "-") if flags else name, value)
    return config


def seeded_batches(dataset, batch_size, steps, seed):
    """``steps`` training batches of ``dataset``, epoch after epoch, each epoch in a shuffled
    order drawn after ``manual_seed(seed)`` (the experiments train several networks on the
    same batches)."""
    rg.manual_seed(seed)
    produced = 0
    while produced < steps:
        for batch in DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True):
            yield batch
            produced += 1
            if produced == steps:
                return


def check_full_batches(loader, what):
    """A job that drops the last partial batch needs at least one full batch: else its loop
    would wait forever for one."""
    if len(loader) == 0:
        n = len(loader.dataset)
        raise ValueError(f"train: batch_size {loader.batch_size} is larger than the {n} {what} "
                         f"(every batch is full, the rest of an epoch is dropped); use a "
                         f"batch size of at most {n}")


def endless_batches(loader):
    """Training batches without end: epoch after epoch of ``loader``."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("train: the data loader gave no batch in a whole epoch")


# ----------------------------------------------------------------------------- run folders
def check_run_folder(out):
    """Raise, before any work, if ``out`` cannot become the run folder: it is a file, a part of
    its path is a file, or it (or the directory it would be created in) is not writable."""
    existing = out
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    existing = existing or "."
    if not os.path.isdir(existing):
        where = "it is" if existing == out else f"{existing!r} is"
        raise NotADirectoryError(f"train: cannot use {out!r} as the run folder: {where} a file, "
                                 f"not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == out else f" in {existing!r}"
        raise PermissionError(f"train: cannot write the run folder {out!r}: permission "
                              f"denied{where}")
    return out


def job_folder(config, task_name, world):
    """(config, out) for this process's part of a job: rank 0 alone prints and writes, so on
    the other ranks of a data-parallel run progress output is off; ``out`` is the run folder
    (run_folder), checked on rank 0 before any work (check_run_folder)."""
    if not world.writer:
        config = dataclasses.replace(config, progress=False)
    out = run_folder(config, task_name)
    if world.writer:
        check_run_folder(out)
    return config, out


def make_run_folder(out, writer=True):
    """Create the run folder ``out`` (and its parents) if needed; errors name it. Nothing
    happens on a process that does not write (``writer`` False: a data-parallel run's ranks
    but 0)."""
    if not writer:
        return out
    check_run_folder(out)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise OSError(e.errno, f"train: cannot create the run folder {out!r}: "
                               f"{e.strerror}") from None
    return out


# ----------------------------------------------------------------------------- checkpoints
_STATE_KEYS = ("model", "optimizer", "scheduler", "loader", "rng", "step", "history", "config")


def read_checkpoint(path, owner="train"):
    """The state saved by a training job at ``path``, checked to be one (any job's: see its
    "job" entry, absent for image classification). A missing, unreadable or damaged file
    raises the error of ``load``; another safetensors file a ValueError naming it."""
    state = load(path)
    if not isinstance(state, dict) or not isinstance(state.get("config"), dict) \
            or not set(_STATE_KEYS) <= set(state):
        held = (f"the entries {sorted(map(str, state))[:6]}" if isinstance(state, dict)
                else _checks.describe(state))
        raise ValueError(f"{owner}: {path!r} is not a checkpoint written by retrograd train (it "
                         f"holds {held}); give the checkpoint.safetensors of a run folder")
    return state


def config_from(config_class, state, path):
    """The configuration saved in a checkpoint, as ``config_class``."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(state["config"]) - fields)
    if unknown:
        raise ValueError(f"train: the configuration in {path!r} has options this version of "
                         f"retrograd does not know: {unknown} (written by a newer version?)")
    return config_class(**state["config"])


def save_state(run, out):
    """The run's checkpoint, written atomically to <out>/checkpoint.safetensors; afterwards
    ``run.checkpoint`` is its path (what an interrupted run resumes from). In a data-parallel
    run rank 0 alone writes it (the state is the same on every rank)."""
    if not world_of(run).writer:
        return
    path = os.path.join(out, CHECKPOINT)
    before = _identity(path)
    try:
        save(run.state(), path)
    finally:  # interrupted or not: once the rename is done, the new checkpoint is there
        if _identity(path) != before:
            run.checkpoint = path


def _identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


# ----------------------------------------------------------------------------- interruptions
class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during a training job: a KeyboardInterrupt that knows the run folder (``out``),
    the checkpoint to resume from (``checkpoint``: the last one this run wrote, else the one
    it was resumed from, else None) and the command that resumes it (``resume_command``)."""

    def __init__(self, out, checkpoint, resume_command):
        self.out, self.checkpoint, self.resume_command = out, checkpoint, resume_command
        super().__init__(f"interrupted; resume with: {resume_command}" if checkpoint else
                         f"interrupted before the first checkpoint was written to {out!r}; "
                         f"nothing to resume")


@contextlib.contextmanager
def interruptible(run, out, repeat=()):
    """Turn a KeyboardInterrupt inside the block into a TrainingInterrupted for ``run`` (whose
    ``checkpoint`` save_state keeps). Resuming from the last checkpoint is bit-identical to
    a run never interrupted. The command names the run folder when it was chosen by default
    (resuming would choose a new one); when this run wrote no checkpoint but was resumed, it
    resumes from the same file with the same folder and the options in ``repeat`` (the
    options a resumed run may change). A DistributedError (a rank of a data-parallel run died
    or hangs) is raised again with the same command added to its message, on the rank that
    knows the checkpoint (rank 0)."""
    try:
        yield
    except KeyboardInterrupt as e:
        if isinstance(e, TrainingInterrupted):
            raise
        checkpoint, command = _resume_command(run, out, repeat)
        raise TrainingInterrupted(out, checkpoint, command) from e
    except DistributedError as e:
        _, command = _resume_command(run, out, repeat)
        if command is None:
            raise
        raise type(e)(f"{e}; resume from the last checkpoint with: {command}") from e


def _resume_command(run, out, repeat):
    """(the checkpoint to resume ``run`` from, the command that resumes it), or (None, None)
    when there is none; see interruptible."""
    config, checkpoint, words = run.config, run.checkpoint, None
    if checkpoint is not None:
        words = ["--resume", checkpoint] + (["--out", out] if config.out is None else [])
    elif config.resume:
        checkpoint = config.resume
        words = ["--resume", checkpoint, "--out", out]
        for name in repeat:
            words += ["--" + name.replace("_", "-"), str(getattr(config, name))]
    command = shlex.join(["retrograd", "train"] + words) if words else None
    return checkpoint, command


def _bar(enabled, **kwargs):
    """A tqdm progress bar on stderr, or None when disabled or tqdm is missing."""
    if not enabled:
        return None
    bar_class = _bar_class()
    if bar_class is None:
        return None
    return bar_class(leave=True, mininterval=0.5, file=sys.stderr, **kwargs)


@functools.cache
def _bar_class():
    """tqdm, except that a bar whose construction a Ctrl-C cut short is dropped quietly:
    tqdm's own __del__ would print a traceback about its missing attributes at exit."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None

    class Bar(tqdm):
        def __del__(self):
            if hasattr(self, "pos") and hasattr(self, "last_print_t"):  # fully built
                super().__del__()

    return Bar


class Progress:
    """A progress line per epoch: tqdm when available, plain prints otherwise."""

    def __init__(self, enabled, epoch, epochs, total):
        self.enabled = enabled
        self.bar = _bar(enabled, total=total, desc=f"epoch {epoch}/{epochs}", unit="img")

    def update(self, n, loss, acc, rate):
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss={loss:.4f} acc={acc:.4f} {rate:,.0f} img/s",
                                     refresh=False)
            self.bar.update(n)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run_folder(config, task_name):
    """config.out, or runs/<task>-<model>-<time> when not given."""
    if config.out:
        return config.out
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join("runs", f"{task_name}-{config.model}-{stamp}")


def write_outputs(out, config, info, history, report=write_run_report, sections=()):
    """metrics.json (atomically), then report(out, metrics, sections): curves.png and
    report.html in the run folder (epoch-based by default), with ``sections``
    (retrograd.inspect.Section: the parts tools add to the page) before the configuration."""
    metrics = dict(config=dataclasses.asdict(config), info=info, history=history)
    text = json.dumps(metrics, indent=2).encode("utf-8")
    atomic_write(os.path.join(out, "metrics.json"), lambda f: f.write(text), owner="train")
    report(out, metrics, sections)


@contextlib.contextmanager
def profiling(run, out):
    """``--profile N`` (the job's ``profile`` option): profile N training steps of the run
    after a warm-up (training/profiling.py); run.profiler is None without the option, and on
    every rank but 0 of a data-parallel run (rank 0's steps are profiled, with their waits for
    the others)."""
    steps = getattr(run.config, "profile", None) if world_of(run).writer else None
    run.profiler = RunProfiler(steps, out, run.model, run.optimizer) if steps else None
    try:
        yield
    finally:
        if run.profiler is not None:
            note = run.profiler.close()
            if note:
                say(run.config, note)


def report_sections(run, final, out):
    """The sections tools add to the run's report: the gradient sections (drawn for the
    ``final`` report, training/inspection.py), the attention ones (--inspect-attention), the
    mixed-precision one (--amp; it also writes amp.json into ``out``) and the profile, once
    taken."""
    sections = []
    inspection = getattr(run, "inspection", None)
    if inspection is not None:
        sections += inspection.sections(final)
    attention = getattr(run, "attention_inspection", None)
    if attention is not None:
        sections += attention.sections(final)
    amp = getattr(run, "amp", None)
    if amp is not None:
        amp.write(out)
        sections += amp.sections(out)
    profiler = getattr(run, "profiler", None)
    return sections + (profiler.sections if profiler is not None else [])


def optimizer_step(run, loss):
    """One update from ``loss``: zero the gradients, backpropagate, clip the gradient norm to
    run.config.grad_clip (when the job has that option and it is set), let the run's
    inspection read the gradients, step the optimizer and the scheduler, count the step.
    Under --amp (``run.amp``, training/mixed_precision.py) the loss is scaled, the gradients
    unscaled before clipping, and a skipped optimizer step skips the scheduler's too.
    Returns the loss as a float."""
    amp = getattr(run, "amp", None)
    run.optimizer.zero_grad()
    if amp is None:
        loss.backward()
    else:
        amp.backward(loss)
        amp.unscale(run.optimizer)
    clip = getattr(run.config, "grad_clip", None)
    if clip:
        clip_grad_norm_(run.model.parameters(), clip)
    if getattr(run, "inspection", None) is not None:
        run.inspection.after_backward(loss)
    if amp is None:
        run.optimizer.step()
        run.scheduler.step()
    elif amp.step(run.optimizer, run.step):
        run.scheduler.step()
    run.step += 1
    if getattr(run, "profiler", None) is not None:
        run.profiler.step()
    return loss.item()


def training_state(run):
    """What every job's checkpoint holds: model, optimizer, scheduler, data loader and RNG
    states, step, history and config (a job adds its own entries)."""
    state = {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scheduler": run.scheduler.state_dict(), "loader": run.loader.state_dict(),
             "rng": rg.get_rng_state(), "step": run.step, "history": run.history,
             "config": dataclasses.asdict(run.config)}
    if getattr(run, "amp", None) is not None:
        state["amp"] = run.amp.state_dict()
    return state


def restore_training_state(run, state):
    """The inverse of training_state: load every state back into ``run``."""
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.loader.load_state_dict(state["loader"])
    rg.set_rng_state(state["rng"])
    run.step, run.history = state["step"], list(state["history"])
    if getattr(run, "amp", None) is not None:
        run.amp.load_state_dict(state["amp"])


def say(config, text):
    """Print a progress line unless the run is quiet."""
    if config.progress:
        print(text, flush=True)


class StepProgress:
    """A progress bar over training steps: tqdm when available and enabled, else silent."""

    def __init__(self, enabled, total, initial=0, desc="train"):
        self.bar = _bar(enabled, total=total, initial=initial, desc=desc, unit="step")

    def update(self, text):
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def write_step_outputs(out, config, info, history, val_keys, title, sections=()):
    """metrics.json (atomically), curves.png (losses and ``val_keys`` per step) and a
    self-contained report.html in the run folder, with ``sections`` as in write_outputs."""
    def report(folder, metrics, sections):
        write_step_report(folder, metrics, val_keys, title, sections)

    write_outputs(out, config, info, history, report=report, sections=sections)


def resumed_config(config, job, config_class, what):
    """(config, checkpoint state) of a step-based job: ``config`` itself and None without
    config.resume; else the checkpoint's own configuration (only out and progress may
    change) and its state. ``what`` names the job in the error for another job's file."""
    if not config.resume:
        return config, None
    resumed = read_checkpoint(config.resume)
    if resumed.get("job") != job:
        raise ValueError(f"train: {config.resume!r} is not a {what} checkpoint")
    overrides = {k: getattr(config, k) for k in ("out", "progress")}
    config = dataclasses.replace(config_from(config_class, resumed, config.resume),
                                 resume=config.resume,
                                 **{k: v for k, v in overrides.items() if v is not None})
    return config, resumed


def train_steps(run, train_step, evaluate_and_save, checkpoint, stop_after=None,
                describe=lambda run, loss: f"loss={loss:.4f}"):
    """The loop of a step-based job, from run.step to run.config.steps (or ``stop_after`` steps
    on): train_step(run, *batch) returns the loss, which is summed into run.loss_sum and
    run.loss_count; every eval_interval steps and at the last one, evaluate_and_save(run,
    started), ``started`` the time.perf_counter() at which this stretch of training began. A
    run stopped between evaluations ends with checkpoint(run), so that it resumes exactly
    where it stopped. In a data-parallel run (run.world) each step trains on this rank's
    part of the global batch (rank_batches), and run.loss_sum is averaged over the ranks
    before evaluate_and_save and checkpoint read it."""
    config, world = run.config, world_of(run)
    last = config.steps if stop_after is None else min(config.steps, run.step + stop_after)
    started, batches = time.perf_counter(), endless_batches(run.loader)
    if world.parallel:
        batches = rank_batches(batches, world)
    bar = None
    try:  # the bar made inside: a Ctrl-C right after it was drawn still closes it
        bar = StepProgress(config.progress, config.steps, initial=run.step)
        while run.step < last:
            loss = train_step(run, *next(batches))
            run.loss_sum, run.loss_count = run.loss_sum + loss, run.loss_count + 1
            bar.update(describe(run, loss))
            if run.step % config.eval_interval == 0 or run.step == config.steps:
                _average_running_loss(run, world)
                evaluate_and_save(run, started)
                started = time.perf_counter()
    finally:  # on Ctrl-C too, so that the next line starts on a line of its own
        if bar is not None:
            bar.close()
    if run.step < config.steps and (not run.history or run.history[-1]["step"] != run.step):
        _average_running_loss(run, world)
        checkpoint(run)


def _average_running_loss(run, world):
    """run.loss_sum averaged over the ranks: every rank's loss_count is the same, so this is
    the sum of the global batches' losses. The result is the same on every rank, so averaging
    it again later (with more losses added) stays right."""
    if world.parallel:
        run.loss_sum = mean_over_ranks(run.loss_sum, world)
