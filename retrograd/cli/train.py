"""``retrograd train``: train an image classifier, a character-level GPT or a seq2seq
Transformer, chosen from --model and --data (or from the checkpoint given to --resume), and
write its run folder.

Started by a launcher (``mpiexec -n N retrograd train ...``, or srun), it joins the N
processes into the default process group and trains data-parallel
(retrograd/training/data_parallel.py); alone it imports nothing of MPI."""

import argparse
import sys

from retrograd.cli._common import EXPECTED, INTERRUPTED, fail

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Declare ``retrograd train`` and its options on ``subparsers``."""
    p = subparsers.add_parser(
        "train", help="train a model (default: a small ResNet on the shipped digits data)",
        description="Train an image classifier, a character-level GPT (--model gpt, on the "
                    "shipped Shakespeare text or --data text:PATH) or a seq2seq Transformer "
                    "(--model seq2seq --data reverse) with a progress bar; writes a checkpoint, "
                    "metrics.json, curves.png and report.html into the run folder. Under "
                    "mpiexec -n N (or srun) it trains data-parallel on the N processes: "
                    "each trains on its part of every global batch of N x --batch-size "
                    "samples, the gradients are averaged over the processes, and rank 0 "
                    "alone prints and writes the run folder.")
    p.add_argument("--model", help="resnet-digits, resnet8, resnet20, resnet56, "
                                   "resnet-bottleneck, vgg, plain20, lenet, mlp, vit "
                                   "(image data); gpt (shakespeare, text:PATH); seq2seq "
                                   "(reverse, add) (default: depends on --data)")
    p.add_argument("--data",
                   help="digits (shipped, the default), mnist:DIR, fashion-mnist:DIR, "
                        "cifar10:DIR; shakespeare (shipped, the default for gpt) or "
                        "text:PATH (a text file), for gpt; reverse or add "
                        "(algorithmic sequence tasks, for seq2seq)")
    p.add_argument("--epochs", type=int, help="image models: passes over the training set")
    p.add_argument("--steps", type=int, help="gpt and seq2seq: training steps (batches)")
    p.add_argument("--context", type=int, help="gpt: context length in characters")
    p.add_argument("--eval-interval", type=int, dest="eval_interval",
                   help="gpt and seq2seq: evaluate and checkpoint every this many steps")
    p.add_argument("--batch-size", type=int, dest="batch_size",
                   help="samples per step, per process: under mpiexec -n N the global batch "
                        "is N x this")
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"])
    p.add_argument("--weight-decay", type=float, dest="weight_decay")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crops (and flips for CIFAR-10) on training images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue a run from its checkpoint.safetensors")
    p.add_argument("--out", help="run folder (default: runs/<data>-<model>-<time>)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--inspect", action=argparse.BooleanOptionalAction, default=None,
                   help="the report's gradient sections: gradient-flow charts and flags, the "
                        "first step's graph, attribution maps (default: on)")
    p.add_argument("--inspect-attention", type=int, metavar="N", dest="inspect_attention",
                   help="gpt: attention diagnostics every N steps on a fixed validation batch "
                        "(entropy, max logit per head; warnings on collapse): report sections "
                        "and attention.json")
    p.add_argument("--checkpoint", action=argparse.BooleanOptionalAction, default=None,
                   help="image models and gpt: activation checkpointing, recompute each "
                        "block's activations in backward instead of keeping them (less memory, "
                        "about one more forward per step; same weights)")
    p.add_argument("--checkpoint-budget", type=int, metavar="BYTES", dest="checkpoint_budget",
                   help="image models and gpt: checkpoint only as many blocks as it takes to "
                        "keep the peak memory of a step's forward and backward under BYTES "
                        "(planned and measured on the first batch)")
    p.add_argument("--amp", choices=("bf16", "fp16"),
                   help="mixed precision: autocast to bfloat16 or float16 (with loss scaling); "
                        "float32 master weights; amp.json and a report section")
    p.add_argument("--profile", type=int, metavar="N",
                   help="profile N training steps after a warm-up: profile.txt, trace.json "
                        "and a report section in the run folder (under mpiexec: rank 0's "
                        "steps)")
    p.add_argument("--sync-bn", action="store_true", default=None, dest="sync_bn",
                   help="image models under mpiexec: BatchNorm layers normalize with the "
                        "statistics of the global batch (SyncBatchNorm) instead of each "
                        "process's own; alone it changes nothing")
    p.add_argument("--timeout", type=float, metavar="SECONDS", default=_DEFAULT_TIMEOUT,
                   help="under mpiexec: how long a process waits for the others in a "
                        "collective before it ends with an error naming the processes that "
                        "did not answer (default: %(default)g, PyTorch's 30 minutes)")


_DEFAULT_TIMEOUT = 1800.0   # seconds, as torch.distributed's default

# Options each training job understands (besides seed, out, resume, quiet and timeout).
_JOB_OPTIONS = {
    "image": {"model", "data", "epochs", "batch_size", "lr", "optimizer", "weight_decay",
              "augment", "profile", "inspect", "checkpoint", "checkpoint_budget", "amp",
              "sync_bn"},
    "language_model": {"model", "data", "steps", "batch_size", "lr", "weight_decay", "context",
                       "eval_interval", "profile", "inspect", "inspect_attention", "checkpoint",
                       "checkpoint_budget", "amp"},
    "sequence": {"model", "data", "steps", "batch_size", "lr", "weight_decay", "eval_interval",
                 "profile", "inspect", "amp"},
}


def _job_of(args):
    """Which training job the arguments ask for: image, language_model or sequence."""
    if args.resume:
        from retrograd.training.common import read_checkpoint
        return read_checkpoint(args.resume).get("job", "image")
    from retrograd.datasets.sequence_tasks import TASKS
    if args.model == "gpt" or (args.data or "").startswith("text:") \
            or args.data == "shakespeare":
        return "language_model"
    if args.model == "seq2seq" or args.data in TASKS:
        return "sequence"
    return "image"


def _job_config(job, args):
    """The job's train function and its configuration built from the arguments."""
    options = {k: v for k, v in vars(args).items()
               if k not in ("command", "quiet", "seed", "out", "resume", "timeout")
               and v is not None}
    unknown = sorted(set(options) - _JOB_OPTIONS[job])
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ValueError(f"{flags} does not apply to this job ({job.replace('_', ' ')})")
    if args.resume and job != "image" and options:
        flags = ", ".join("--" + k.replace("_", "-") for k in sorted(options))
        raise ValueError(f"{flags}: a resumed run keeps the options it was started with "
                         f"(only --out and --quiet may change)")
    common = dict(seed=args.seed, out=args.out, resume=args.resume, progress=not args.quiet)
    if job == "language_model":
        from retrograd.training.language_model import LMConfig, train
        return train, LMConfig(**options, **common)
    if job == "sequence":
        from retrograd.training.sequence import SeqConfig, train
        return train, SeqConfig(**options, **common)
    from retrograd.training.image import TrainConfig, train
    return train, TrainConfig(**options, **common)


def run(args):
    """Train the job ``args`` asks for; returns the exit code: 2 with one line on stderr for
    options that do not fit, data or paths that are missing, unreadable or in the way, or a
    missing 'train' extra; 130 after Ctrl-C, with the command that resumes the run. Under a
    launcher: 1 with one line on stderr when the processes lost each other (a process died
    or hangs: retrograd.distributed.DistributedError, naming the processes)."""
    try:
        train, config = _job_config(_job_of(args), args)
        config.check(flags=True)   # here, so that errors name the options as they were typed
        _check_timeout(args.timeout)
    except ImportError as e:
        print(f"retrograd train needs the 'train' extra (pip install 'retrograd[train]'): {e}",
              file=sys.stderr)
        return 2
    except EXPECTED as e:
        return fail("train", e)
    from retrograd.distributed.process_group import launched_world_size

    if launched_world_size() > 1:
        return _train_data_parallel(train, config, args.timeout)
    return _train(train, config)


def _check_timeout(timeout):
    if not timeout > 0:   # also NaN
        raise ValueError(f"train: --timeout must be a number of seconds > 0, got {timeout:g}")


def _train(train, config, writer=True):
    """train(config), its errors turned into exit codes and one line on stderr. ``writer``:
    whether this process reports an interruption (rank 0 of a data-parallel run)."""
    from retrograd.distributed import DistributedError
    from retrograd.training.common import TrainingInterrupted
    try:
        train(config)
    except DistributedError as e:   # before EXPECTED: a timeout is also an OSError
        print(f"retrograd train: {e}", file=sys.stderr)
        return 1
    except EXPECTED as e:
        return fail("train", e)
    except TrainingInterrupted as e:
        if writer:
            print(f"retrograd train: {e}", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:  # before the run had a folder: loading data, building the model
        if writer:
            print("retrograd train: interrupted before training started; nothing was written",
                  file=sys.stderr)
        return INTERRUPTED
    return 0


def _train_data_parallel(train, config, timeout):
    """_train on every process a launcher started, joined in the default process group
    (collectives wait at most ``timeout`` seconds); a DistributedError (a process died or
    hangs) ends this process with its one line, exit code 1, on every process that raised it.
    A process whose training fails otherwise (a data error on one rank) leaves the group as
    it is, so that the others learn at once that it ended (process_group.py)."""
    import retrograd.distributed as dist

    try:
        dist.init_process_group("mpi", timeout=timeout)
    except dist.DistributedError as e:   # launched, but MPI for Python is missing
        print(f"retrograd train: {e}", file=sys.stderr)
        return 1
    code = _train(train, config, writer=dist.get_rank() == 0)
    if code == 0:
        dist.destroy_process_group()
    # otherwise the group stays initialized: at exit this process tells the others that it
    # ended (so that one waiting for it fails at once, naming it) and does not finalize MPI,
    # which would wait for them
    return code
