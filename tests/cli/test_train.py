"""retrograd/cli/train.py: ``retrograd train`` (its errors are in test_common.py's tables)."""

import os
import shlex
import signal
import subprocess
import sys

import numpy as np
import pytest

from retrograd.cli import main
from retrograd.utils.serialization import load
from tests.datasets.test_text import SAMPLE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_train_writes_a_run_folder(tmp_path):
    code = main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run"),
                 "--batch-size", "64"])
    assert code == 0
    assert (tmp_path / "run" / "report.html").exists()


def test_bad_data_spec_exits_with_a_message(capsys):
    assert main(["train", "--data", "mnist", "--quiet"]) == 2
    assert "mnist needs a directory" in capsys.readouterr().err


def test_an_option_of_another_job_exits_with_a_message(capsys):
    assert main(["train", "--steps", "3", "--quiet"]) == 2
    assert "--steps does not apply to this job (image)" in capsys.readouterr().err


# ----------------------------------------------------------------------------- Ctrl-C
def _start(argv, cwd):
    """``retrograd ARGV`` in its own process, as a user runs it (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "retrograd.cli", *argv], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})


def _interrupt_after(proc, line_start):
    """Read stdout until a line starts with ``line_start``, then press Ctrl-C (SIGINT); returns
    (exit code, stdout lines, stderr)."""
    lines = []
    try:
        while not lines or not lines[-1].startswith(line_start):
            line = proc.stdout.readline()
            assert line, f"the run ended before {line_start!r}: {lines} {proc.stderr.read()}"
            lines.append(line.rstrip("\n"))
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, lines + rest.splitlines(), err


def _one_line(err):
    """The one retrograd line of stderr (the rest is progress bars), with no traceback."""
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("retrograd ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.skipif(os.name != "posix", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_prints_the_command_that_resumes_and_that_command_resumes(tmp_path):
    # Many epochs, so that Ctrl-C surely lands in the middle; an epoch's line is printed once
    # its checkpoint is saved, so the test waits for that line, not for a guessed time.
    out = str(tmp_path / "run")
    code, lines, err = _interrupt_after(
        _start(["train", "--model", "mlp", "--epochs", "200", "--batch-size", "64", "--out", out],
               tmp_path), "epoch 1/200:")
    checkpoint = os.path.join(out, "checkpoint.safetensors")
    assert code == 130
    assert _one_line(err) == (f"retrograd train: interrupted; resume with: retrograd train "
                              f"--resume {checkpoint}")
    done = load(checkpoint)["epoch"]            # 1, unless Ctrl-C came after the next save
    # the printed command, as printed, continues from there
    command = shlex.split(_one_line(err).split("resume with: ")[1])
    assert command[:2] == ["retrograd", "train"]
    code, lines, err = _interrupt_after(_start(command[1:], tmp_path), f"epoch {done + 1}/200:")
    assert code == 130 and not any(line.startswith(f"epoch {done}/") for line in lines), lines
    assert _one_line(err) == (f"retrograd train: interrupted; resume with: retrograd train "
                              f"--resume {checkpoint}")
    state = load(checkpoint)
    assert state["epoch"] >= done + 1 and [row["epoch"] for row in state["history"]] == \
        list(range(1, state["epoch"] + 1))


def _interrupt_when(monkeypatch, module, name, when):
    """Make ``module.name`` raise KeyboardInterrupt, as Ctrl-C would, when ``when(*args)``."""
    real = getattr(module, name)

    def interrupted(*args, **kwargs):
        if when(*args):
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(module, name, interrupted)


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(
        tmp_path, monkeypatch, capsys):
    from retrograd.training import image
    _interrupt_when(monkeypatch, image, "_train_epoch", lambda run, bar: True)
    out = str(tmp_path / "run")
    assert main(["train", "--model", "mlp", "--epochs", "2", "--quiet", "--out", out]) == 130
    assert _one_line(capsys.readouterr().err) == (
        f"retrograd train: interrupted before the first checkpoint was written to {out!r}; "
        f"nothing to resume")
    assert not os.path.exists(os.path.join(out, "checkpoint.safetensors"))


def test_ctrl_c_while_loading_the_data(tmp_path, monkeypatch, capsys):
    from retrograd.training import image
    _interrupt_when(monkeypatch, image, "load_image_data", lambda *args: True)
    assert main(["train", "--quiet", "--out", str(tmp_path / "run")]) == 130
    assert _one_line(capsys.readouterr().err) == (
        "retrograd train: interrupted before training started; nothing was written")


def test_ctrl_c_in_a_run_folder_chosen_by_default_names_it(tmp_path, monkeypatch, capsys):
    from retrograd.training import image
    _interrupt_when(monkeypatch, image, "_train_epoch", lambda run, bar: run.epoch == 1)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "mlp", "--epochs", "3", "--quiet"]) == 130
    (out,) = os.listdir(tmp_path / "runs")
    out = os.path.join("runs", out)
    assert _one_line(capsys.readouterr().err) == (
        f"retrograd train: interrupted; resume with: retrograd train --resume "
        f"{os.path.join(out, 'checkpoint.safetensors')} --out {out}")


def test_ctrl_c_in_a_resumed_run_before_its_first_checkpoint(tmp_path, monkeypatch, capsys):
    from retrograd.training import image
    first, second = str(tmp_path / "first"), str(tmp_path / "second folder")
    image.train(image.TrainConfig(model="mlp", epochs=1, limit_train=64, out=first,
                                  progress=False))
    checkpoint = os.path.join(first, "checkpoint.safetensors")
    _interrupt_when(monkeypatch, image, "_train_epoch", lambda run, bar: True)
    assert main(["train", "--resume", checkpoint, "--epochs", "3", "--quiet", "--out",
                 second]) == 130
    assert _one_line(capsys.readouterr().err) == (
        f"retrograd train: interrupted; resume with: retrograd train --resume {checkpoint} "
        f"--out '{second}' --epochs 3")


def test_ctrl_c_in_a_step_job_then_the_printed_command_finishes_it_bit_identically(
        tmp_path, monkeypatch, capsys):
    from retrograd.training import language_model
    argv = ["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--steps", "3",
            "--batch-size", "2", "--context", "8", "--eval-interval", "2", "--quiet", "--out"]
    assert main(argv + [str(tmp_path / "whole")]) == 0
    _interrupt_when(monkeypatch, language_model, "_train_step", lambda run, x, y: run.step == 2)
    out = str(tmp_path / "part")
    assert main(argv + [out]) == 130
    line = _one_line(capsys.readouterr().err)
    checkpoint = os.path.join(out, "checkpoint.safetensors")
    assert line == f"retrograd train: interrupted; resume with: retrograd train --resume " \
                   f"{checkpoint}"
    assert load(checkpoint)["step"] == 2
    monkeypatch.undo()
    assert main(shlex.split(line.split("resume with: ")[1])[1:] + ["--quiet"]) == 0
    whole = load(str(tmp_path / "whole" / "checkpoint.safetensors"))["model"]
    resumed = load(checkpoint)["model"]
    assert whole.keys() == resumed.keys()
    assert all(np.array_equal(whole[k].numpy(), resumed[k].numpy()) for k in whole)


def test_ctrl_c_in_another_subcommand(monkeypatch, capsys):
    from retrograd.cli import sample
    _interrupt_when(monkeypatch, sample, "run", lambda args: True)
    assert main(["sample", "--checkpoint", "x"]) == 130
    assert _one_line(capsys.readouterr().err) == "retrograd sample: interrupted"
