"""``retrograd explain OP``: a worked forward and backward pass of one op with small numbers,
checked live against retrograd's autograd and finite differences (retrograd/explain/).

The op's own options (``--stride`` for conv2d, ``--eps`` for batch_norm, ...) are read after
the op is known: ``retrograd explain conv2d --help`` lists them. ``--values NAME=NUMBERS``
(repeatable) gives an input's numbers as a Python/JSON literal: ``--values "X=[[1,2],[3,4]]"``.
"""

import argparse
import ast
import sys

from retrograd.cli._common import fail

__all__ = ["add_parser", "run"]

EPILOG = ("Examples:\n"
          "  retrograd explain conv2d --stride 2 --padding 1\n"
          "  retrograd explain batch_norm --values \"x=[[1],[2],[3],[4]]\"\n"
          "  retrograd explain attention --format markdown\n"
          "  retrograd explain --list")


def _common_options(p):
    p.add_argument("--shape", metavar="DIMS",
                   help="shape of the main input, e.g. 4x4 or 2,3,5,5 (missing leading "
                        "dimensions are 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawn inputs (default 0)")
    p.add_argument("--values", action="append", default=[], metavar="NAME=NUMBERS",
                   help="an input's own numbers, e.g. \"W=[[1,0],[-1,1]]\" or \"dY=[0.5,-1]\"; "
                        "repeat for several inputs")
    p.add_argument("--format", default="text", choices=("text", "markdown", "latex"),
                   help="text for a terminal (80 columns), markdown, or latex")


def add_parser(subparsers):
    """Declare ``retrograd explain``; the op's own options are parsed in run()."""
    p = subparsers.add_parser(
        "explain", help="a worked forward/backward pass of an op, checked against autograd",
        description="Print a worked forward and backward pass of OP with small numbers, step "
                    "by step in the op's own notation, and check every printed gradient "
                    "against retrograd's autograd and finite differences.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=False)
    p.add_argument("op", nargs="?", help="the op to explain (--list shows them)")
    p.add_argument("--list", action="store_true", help="list the ops, by family")
    p.add_argument("-h", "--help", action="store_true", help="show this help (with OP: its "
                                                             "options too)")
    _common_options(p)
    p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(parser=p)


def _op_parser(found):
    p = argparse.ArgumentParser(
        prog=f"retrograd explain {found.name}", description=f"{found.name}: {found.summary}",
        epilog=("aliases: " + ", ".join(found.aliases)) if found.aliases else None)
    _common_options(p)
    for option in found.options:
        kind = {bool: _boolean}.get(option.type, option.type)
        p.add_argument("--" + option.name.replace("_", "-"), dest=option.name, type=kind,
                       default=option.default, choices=option.choices or None,
                       help=f"{option.help} (default {option.default})")
    return p


def _boolean(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def parse_shape(text):
    """'4x4', '2,3,5,5' or '(1, 4)' as a tuple of ints.

    Example:
        >>> parse_shape("4x4"), parse_shape("2,3,5,5"), parse_shape("(1, 4)")
        ((4, 4), (2, 3, 5, 5), (1, 4))
    """
    cleaned = text.strip().strip("()[]").replace("x", ",").replace("X", ",")
    try:
        dims = tuple(int(part) for part in cleaned.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--shape must be sizes like 4x4 or 2,3,5,5, got {text!r}") \
            from None
    if not dims:
        raise ValueError(f"--shape must give at least one size, got {text!r}")
    return dims


def parse_values(items):
    """['X=[[1,2],[3,4]]', 'b=1'] as {'X': [[1, 2], [3, 4]], 'b': 1}."""
    values = {}
    for item in items:
        name, sep, literal = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--values must be NAME=NUMBERS, e.g. \"X=[[1,2],[3,4]]\"; "
                             f"got {item!r}")
        try:
            values[name.strip()] = ast.literal_eval(literal.strip())
        except (ValueError, SyntaxError):
            raise ValueError(f"--values {name.strip()}: {literal!r} is not a list of "
                             "numbers like [[1, 2], [3, 4]]") from None
    return values


def _print_list():
    from retrograd import explain as package

    print("retrograd explain OP: the ops, by family\n")
    for family, names in sorted(package.families().items()):
        print(f"  {family:<12} {', '.join(names)}")
    print("\nretrograd explain OP --help lists an op's options.")


def run(args):
    """Build, check and print the worked example; exit 1 when a check failed."""
    from retrograd import explain as package

    if args.list or (args.op is None and not args.help):
        _print_list()
        return 0
    if args.op is None:
        args.parser.print_help()
        return 0
    command = "explain"
    try:
        found = package.entry(args.op)
        command = f"explain {found.name}"
        options = _op_parser(found).parse_args(_op_argv(args))
        if args.help:
            _op_parser(found).print_help()
            return 0
        chosen = {o.name: getattr(options, o.name) for o in found.options}
        shape = parse_shape(options.shape) if options.shape else None
        ex = package.explain(found.name, shape=shape, seed=options.seed,
                             values=parse_values(options.values), **chosen)
    except ValueError as error:
        return fail(command, error)
    sys.stdout.write(ex.render(options.format))
    return 0 if ex.ok else 1


def _op_argv(args):
    """The op parser's arguments: the common options given before the op, then the rest."""
    argv = []
    if args.shape:
        argv += ["--shape", args.shape]
    argv += ["--seed", str(args.seed), "--format", args.format]
    for item in args.values:
        argv += ["--values", item]
    return argv + list(args.rest)
