"""The ``retrograd`` command, one module per subcommand: ``retrograd train`` (cli/train.py)
trains a model and writes a run folder; ``retrograd sample`` (cli/sample.py) generates text
from a trained GPT's checkpoint; ``retrograd profile`` (cli/profile.py) profiles a training
step of a case-study model; ``retrograd experiment`` (cli/experiment.py) runs a case-study
experiment; ``retrograd explain`` (cli/explain.py) prints a worked forward and backward pass of
an op. Each subcommand module has add_parser(subparsers), which
declares its options, and run(args), which returns the exit code."""

import argparse
import os
import sys

import retrograd
from retrograd.cli import experiment, explain, profile, sample, train
from retrograd.cli._common import INTERRUPTED

__all__ = ["main", "build_parser"]

# in the order `retrograd --help` lists them
_COMMANDS = {"train": train, "sample": sample, "profile": profile, "experiment": experiment,
             "explain": explain}


def build_parser():
    """The argument parser of the ``retrograd`` command and all its subcommands."""
    parser = argparse.ArgumentParser(
        prog="retrograd",
        description="retrograd: backpropagation through CNNs and Transformers, visible, "
                    "verifiable and fast.")
    parser.add_argument("--version", action="version", version=f"retrograd {retrograd.__version__}")
    subparsers = parser.add_subparsers(dest="command", title="commands")
    for command in _COMMANDS.values():
        command.add_parser(subparsers)
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit code: 0, 2 for
    a usage error (argparse's, or the subcommand's one line on stderr), 130 after Ctrl-C."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return _COMMANDS[args.command].run(args)
    except KeyboardInterrupt:  # a subcommand with more to say (train) says it itself
        print(f"retrograd {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:  # the reader of stdout is gone (retrograd sample | head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 1
