"""``retrograd profile``: profile training steps of a case-study model on a random batch and
print where the time goes (op, phase, module, FLOPs, roofline) and, with ``--memory``, what
one step keeps in memory."""

from retrograd import _checks
from retrograd.cli._common import EXPECTED, fail

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Declare ``retrograd profile`` and its options on ``subparsers``."""
    p = subparsers.add_parser(
        "profile", help="profile a training step of a case-study model",
        description="Profile training steps (forward, loss, backward, SGD step) of a "
                    "case-study model on a random batch, after warm-up steps, and print the "
                    "profiler's table.")
    p.add_argument("--model", required=True,
                   help="gpt, resnet-digits, resnet8, resnet20, resnet56, resnet-bottleneck, "
                        "vgg, plain20, lenet, mlp or vit")
    p.add_argument("--batch-size", type=int, default=32, dest="batch_size")
    p.add_argument("--steps", type=int, default=1, help="training steps to profile")
    p.add_argument("--warmup", type=int, default=3, help="unprofiled steps before them")
    p.add_argument("--sort-by", default="self_cpu_time_total", dest="sort_by",
                   help="table order, e.g. self_cpu_time_total, cpu_time_total, flops, count")
    p.add_argument("--row-limit", type=int, default=25, dest="row_limit")
    p.add_argument("--by-module", action="store_true", dest="by_module",
                   help="one row per module x op x phase")
    p.add_argument("--trace", metavar="PATH", help="also write the Chrome/Perfetto trace here")
    p.add_argument("--memory", action="store_true",
                   help="also print the memory ledger of one step: what backward keeps, by "
                        "module and op, and the peak")
    p.add_argument("--seed", type=int, default=0)


def _check(args):
    for name in ("batch_size", "steps", "row_limit"):
        _checks.int_at_least("profile", "--" + name.replace("_", "-"), getattr(args, name), 1)
    _checks.int_at_least("profile", "--warmup", args.warmup, 0)
    from retrograd.inspect.profile_events import sorted_rows
    sorted_rows([], args.sort_by)   # an unknown key: the error that lists the valid ones


def run(args):
    """Print the table; returns the exit code (2 with one line on stderr for an unknown
    model, an option out of range, or a trace path that cannot be written)."""
    try:
        _check(args)
        from retrograd.training.profiling import profile_model
        prof = profile_model(args.model, args.batch_size, args.steps, args.warmup, args.seed)
        print(prof.key_averages(group_by_module=args.by_module).table(
            sort_by=args.sort_by, row_limit=args.row_limit,
            header=f"retrograd profile: {args.model}, batch {args.batch_size}, "
                   f"{args.steps} training step{'s' * (args.steps != 1)}"))
        if args.trace:
            prof.export_chrome_trace(args.trace)
            print(f"trace: {args.trace} (open it in ui.perfetto.dev)")
        if args.memory:
            from retrograd.training.profiling import memory_of_model
            report = memory_of_model(args.model, args.batch_size, args.seed)
            print(f"\nMemory ledger of one training step\n{report.table(args.row_limit)}")
    except EXPECTED as e:
        return fail("profile", e)
    return 0
