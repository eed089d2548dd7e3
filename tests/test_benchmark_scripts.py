"""benchmarks/train_gpt.py still runs: it builds PyTorch's copy of the GPT job from the job's
own internals (retrograd/training/language_model.py's _Run), which changed under it twice
without a test noticing. Two steps on the shipped tiny Shakespeare, both frameworks; nothing
is timed here (the timings are the script's own output), but both must report the same
losses, which is what makes the script's comparison fair."""

import os
import subprocess
import sys

import pytest

from retrograd.datasets import shakespeare_path

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "benchmarks", "train_gpt.py")


def _losses(output, framework):
    """(train loss, val loss) from the script's table row of ``framework``."""
    for line in output.splitlines():
        fields = line.split()
        if fields and fields[0] == framework:
            return float(fields[3]), float(fields[4])
    raise AssertionError(f"no {framework} row in:\n{output}")


def test_train_gpt_runs_both_frameworks_to_the_same_losses():
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, SCRIPT, "--steps", "2", "--data", shakespeare_path()],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ours, theirs = _losses(out.stdout, "retrograd"), _losses(out.stdout, "torch")
    assert ours == pytest.approx(theirs, abs=2e-4), out.stdout
