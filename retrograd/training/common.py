"""Pieces shared by the training jobs: progress bars, run folders, run outputs."""

import dataclasses
import json
import os
import sys
import time

from retrograd.inspect.report import write_run_report

__all__ = ["Progress", "run_folder", "write_outputs", "say", "CHECKPOINT"]

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


def write_outputs(out, config, info, history):
    """metrics.json (atomically), curves.png and report.html in the run folder."""
    metrics = dict(config=dataclasses.asdict(config), info=info, history=history)
    path = os.path.join(out, "metrics.json")
    with open(path + ".tmp", "w") as f:
        json.dump(metrics, f, indent=2)
    os.replace(path + ".tmp", path)
    write_run_report(out, metrics)


def say(config, text):
    """Print a progress line unless the run is quiet."""
    if config.progress:
        print(text, flush=True)
