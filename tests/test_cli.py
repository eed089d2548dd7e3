"""The retrograd command."""

import subprocess
import sys

from retrograd.cli import main


def test_help_lists_the_train_command(capsys):
    assert main([]) == 0
    assert "train" in capsys.readouterr().out


def test_train_writes_a_run_folder(tmp_path):
    code = main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run"),
                 "--batch-size", "64"])
    assert code == 0
    assert (tmp_path / "run" / "report.html").exists()


def test_bad_data_spec_exits_with_a_message(capsys):
    assert main(["train", "--data", "mnist", "--quiet"]) == 2
    assert "mnist needs a directory" in capsys.readouterr().err


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "retrograd.cli", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("retrograd ")
