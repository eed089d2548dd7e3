"""retrograd/cli/__init__.py: the retrograd command, its help and its entry points."""

import subprocess
import sys

from retrograd.cli import build_parser, main


def test_help_lists_the_train_command(capsys):
    assert main([]) == 0
    assert "train" in capsys.readouterr().out


def test_every_subcommand_module_is_declared_in_order():
    assert "{train,sample,profile,experiment,explain}" in build_parser().format_usage()


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "retrograd.cli", "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.startswith("retrograd ")
