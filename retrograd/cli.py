"""The ``retrograd`` command."""

import argparse
import sys

import retrograd

__all__ = ["main", "build_parser"]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="retrograd",
        description="retrograd: backpropagation through CNNs and Transformers, visible, "
                    "verifiable and fast.")
    parser.add_argument("--version", action="version", version=f"retrograd {retrograd.__version__}")
    parser.add_subparsers(dest="command", title="commands")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
