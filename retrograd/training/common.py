"""Pieces shared by the training jobs: progress bars, run folders, run outputs, the optimizer
step, checkpoint state, and the loop of the step-based jobs (language model, sequence tasks)."""

import dataclasses
import json
import os
import sys
import time

import retrograd as rg
from retrograd.inspect.report import write_run_report, write_step_report
from retrograd.nn.utils import clip_grad_norm_
from retrograd.utils.serialization import atomic_write, load, save

__all__ = ["Progress", "StepProgress", "run_folder", "write_outputs", "write_step_outputs", "say",
           "optimizer_step", "training_state", "restore_training_state", "resumed_config",
           "train_steps", "save_state", "CHECKPOINT"]

CHECKPOINT = "checkpoint.safetensors"


def _bar(enabled, **kwargs):
    """A tqdm progress bar on stderr, or None when disabled or tqdm is missing."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(leave=True, mininterval=0.5, file=sys.stderr, **kwargs)


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


def optimizer_step(run, loss):
    """One update from ``loss``: zero the gradients, backpropagate, clip the gradient norm to
    run.config.grad_clip (when the job has that option and it is set), step the optimizer and
    the scheduler, count the step. Returns the loss as a float."""
    run.optimizer.zero_grad()
    loss.backward()
    clip = getattr(run.config, "grad_clip", None)
    if clip:
        clip_grad_norm_(run.model.parameters(), clip)
    run.optimizer.step()
    run.scheduler.step()
    run.step += 1
    return loss.item()


def training_state(run):
    """What every job's checkpoint holds: model, optimizer, scheduler, data loader and RNG
    states, step, history and config (a job adds its own entries)."""
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "loader": run.loader.state_dict(),
            "rng": rg.get_rng_state(), "step": run.step, "history": run.history,
            "config": dataclasses.asdict(run.config)}


def restore_training_state(run, state):
    """The inverse of training_state: load every state back into ``run``."""
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.loader.load_state_dict(state["loader"])
    rg.set_rng_state(state["rng"])
    run.step, run.history = state["step"], list(state["history"])


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
    resumed = load(config.resume)
    if resumed.get("job") != job:
        raise ValueError(f"train: {config.resume!r} is not a {what} checkpoint")
    overrides = {k: getattr(config, k) for k in ("out", "progress")}
    config = dataclasses.replace(config_class(**resumed["config"]), resume=config.resume,
                                 **{k: v for k, v in overrides.items() if v is not None})
    return config, resumed


def train_steps(run, train_step, evaluate_and_save, checkpoint, stop_after=None,
                describe=lambda run, loss: f"loss={loss:.4f}"):
    """The loop of a step-based job, from run.step to run.config.steps (or ``stop_after`` steps
    on): train_step(run, *batch) returns the loss, which is summed into run.loss_sum and
    run.loss_count; every eval_interval steps and at the last one, evaluate_and_save(run,
    started), ``started`` the time.perf_counter() at which this stretch of training began. A
    run stopped between evaluations ends with checkpoint(run), so that it resumes exactly
    where it stopped."""
    config = run.config
    last = config.steps if stop_after is None else min(config.steps, run.step + stop_after)
    bar = StepProgress(config.progress, config.steps, initial=run.step)
    started, batches = time.perf_counter(), run.batches()
    while run.step < last:
        loss = train_step(run, *next(batches))
        run.loss_sum, run.loss_count = run.loss_sum + loss, run.loss_count + 1
        bar.update(describe(run, loss))
        if run.step % config.eval_interval == 0 or run.step == config.steps:
            evaluate_and_save(run, started)
            started = time.perf_counter()
    bar.close()
    if run.step < config.steps and (not run.history or run.history[-1]["step"] != run.step):
        checkpoint(run)


def save_state(run, out):
    """The run's checkpoint, written atomically to <out>/checkpoint.safetensors."""
    save(run.state(), os.path.join(out, CHECKPOINT))
