"""``retrograd experiment depth``: the depth experiment (training/depth_experiment.py) — plain
and residual CNNs of several depths, with and without batch norm, trained on the digits under
a gradient monitor; prints a line per network and writes results and a report.

``retrograd experiment attention``: the attention lab (training/attention_lab.py) — a small
GPT at a high learning rate with and without QK-norm, attention logits and entropy recorded
per head; prints a line per run and writes results and a report."""

from retrograd.cli._common import EXPECTED, fail

__all__ = ["add_parser", "run"]

_EXPERIMENTS = ("depth", "attention")


def add_parser(subparsers):
    """Declare ``retrograd experiment`` and its options on ``subparsers``."""
    p = subparsers.add_parser(
        "experiment", help="run a case-study experiment (depth: gradients in deep CNNs; attention: "
             "attention-logit growth and QK-norm)",
        description="depth: train plain and residual CNNs of each depth, with and without "
                    "batch norm, on the digits, recording the gradient of every layer; writes "
                    "results.json, gradient JSON files and report.html into the run folder. "
                    "attention: train a small GPT at a high learning rate with and without "
                    "QK-norm per seed, recording each head's max attention logit and entropy; "
                    "writes results.json and report.html (options: --seeds, --steps, --out, "
                    "--quiet).")
    p.add_argument("name", choices=_EXPERIMENTS, help="the experiment")
    p.add_argument("--depths", type=int, nargs="+", default=[8, 20, 56],
                   help="network depths, each 6n + 2 (default: 8 20 56)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps per network (default: depth 300, attention 400)")
    p.add_argument("--batch-size", type=int, default=32, dest="batch_size")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--every", type=int, default=25, help="record the gradients every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="attention: the seeds (default: 0 1 2)")
    p.add_argument("--out", help="run folder (default: runs/<experiment>-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def run(args):
    """Run the experiment; returns the exit code (2 with one line on stderr for an option
    out of range or a run folder that cannot be written)."""
    try:
        if args.name == "attention":
            from retrograd.training.attention_lab import AttentionLabConfig, run_attention_lab
            steps = {} if args.steps is None else dict(steps=args.steps)
            run_attention_lab(AttentionLabConfig(seeds=args.seeds, out=args.out,
                                                 progress=not args.quiet, **steps))
            return 0
        from retrograd.training.depth_experiment import DepthConfig, run_depth_experiment
        config = DepthConfig(depths=args.depths, steps=300 if args.steps is None else args.steps,
                             batch_size=args.batch_size, lr=args.lr, every=args.every,
                             seed=args.seed, out=args.out, progress=not args.quiet)
        run_depth_experiment(config)
    except EXPECTED as e:
        return fail("experiment", e)
    return 0
