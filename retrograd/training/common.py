"""Pieces shared by the training jobs: progress bars, run folders, run outputs."""

import dataclasses
import json
import os
import sys
import time

import retrograd as rg
from retrograd.inspect.report import write_run_report
from retrograd.nn.utils import clip_grad_norm_

__all__ = ["Progress", "run_folder", "write_outputs", "say", "optimizer_step", "training_state",
           "restore_training_state", "CHECKPOINT"]

CHECKPOINT = "checkpoint.safetensors"


class Progress:
    """A progress line per epoch: tqdm when available, plain prints otherwise."""

    def __init__(self, enabled, epoch, epochs, total):
        self.bar = None
        self.enabled = enabled
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="img",
                                leave=True, mininterval=0.5, file=sys.stderr)

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


def write_outputs(out, config, info, history, report=write_run_report):
    """metrics.json (atomically), then report(out, metrics): curves.png and report.html in
    the run folder (epoch-based by default)."""
    metrics = dict(config=dataclasses.asdict(config), info=info, history=history)
    path = os.path.join(out, "metrics.json")
    with open(path + ".tmp", "w") as f:
        json.dump(metrics, f, indent=2)
    os.replace(path + ".tmp", path)
    report(out, metrics)


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
