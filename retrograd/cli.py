"""The ``retrograd`` command: ``retrograd train`` trains a model and writes a run folder;
``retrograd sample`` generates text from a trained GPT's checkpoint."""

import argparse
import sys

import retrograd

__all__ = ["main", "build_parser"]


def _add_train(subparsers):
    p = subparsers.add_parser(
        "train", help="train a model (default: a small ResNet on the shipped digits data)",
        description="Train an image classifier, a character-level GPT (--model gpt --data "
                    "text:PATH) or a seq2seq Transformer (--model seq2seq --data reverse) with "
                    "a progress bar; writes a checkpoint, metrics.json, curves.png and "
                    "report.html into the run folder.")
    p.add_argument("--model", help="resnet-digits, resnet8, resnet20, resnet56, "
                                   "resnet-bottleneck, vgg, plain20, lenet, mlp, vit "
                                   "(image data); gpt (text:PATH); seq2seq (reverse, add) "
                                   "(default: depends on --data)")
    p.add_argument("--data",
                   help="digits (shipped, the default), mnist:DIR, fashion-mnist:DIR, "
                        "cifar10:DIR; text:PATH (a text file, for gpt); reverse or add "
                        "(algorithmic sequence tasks, for seq2seq)")
    p.add_argument("--epochs", type=int, help="image models: passes over the training set")
    p.add_argument("--steps", type=int, help="gpt and seq2seq: training steps (batches)")
    p.add_argument("--context", type=int, help="gpt: context length in characters")
    p.add_argument("--eval-interval", type=int, dest="eval_interval",
                   help="gpt and seq2seq: evaluate and checkpoint every this many steps")
    p.add_argument("--batch-size", type=int, dest="batch_size")
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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="retrograd",
        description="retrograd: backpropagation through CNNs and Transformers, visible, "
                    "verifiable and fast.")
    parser.add_argument("--version", action="version", version=f"retrograd {retrograd.__version__}")
    subparsers = parser.add_subparsers(dest="command", title="commands")
    _add_train(subparsers)
    _add_sample(subparsers)
    return parser


def _add_sample(subparsers):
    p = subparsers.add_parser(
        "sample", help="generate text from a GPT checkpoint (retrograd train --model gpt)",
        description="Print the prompt followed by sampled characters; the same --seed gives "
                    "the same text.")
    p.add_argument("--checkpoint", required=True, help="a checkpoint.safetensors of a gpt run")
    p.add_argument("--prompt", help="text to continue (default: a newline)")
    p.add_argument("--length", type=int, default=500, help="characters to generate")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="divides the logits: below 1 is more conservative")
    p.add_argument("--top-k", type=int, dest="top_k",
                   help="sample only among the k most likely characters")
    p.add_argument("--seed", type=int, default=0)


# Options each training job understands (besides seed, out, resume and quiet).
_JOB_OPTIONS = {
    "image": {"model", "data", "epochs", "batch_size", "lr", "optimizer", "weight_decay",
              "augment"},
    "language_model": {"model", "data", "steps", "batch_size", "lr", "weight_decay", "context",
                       "eval_interval"},
    "sequence": {"model", "data", "steps", "batch_size", "lr", "weight_decay", "eval_interval"},
}


def _job_of(args):
    """Which training job the arguments ask for: image, language_model or sequence."""
    if args.resume:
        from retrograd.utils.serialization import load
        return load(args.resume).get("job", "image")
    from retrograd.datasets.sequence_tasks import TASKS
    if args.model == "gpt" or (args.data or "").startswith("text:"):
        return "language_model"
    if args.model == "seq2seq" or args.data in TASKS:
        return "sequence"
    return "image"


def _job_config(job, args):
    """The job's train function and its configuration built from the arguments."""
    options = {k: v for k, v in vars(args).items()
               if k not in ("command", "quiet", "seed", "out", "resume") and v is not None}
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


def _train(args):
    try:
        train, config = _job_config(_job_of(args), args)
    except ImportError as e:
        print(f"retrograd train needs the 'train' extra (pip install 'retrograd[train]'): {e}",
              file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f"retrograd train: {e}", file=sys.stderr)
        return 2
    try:
        train(config)
    except (ValueError, FileNotFoundError) as e:
        print(f"retrograd train: {e}", file=sys.stderr)
        return 2
    return 0


def _sample(args):
    from retrograd.training.language_model import sample
    try:
        text = sample(args.checkpoint, prompt=args.prompt, length=args.length,
                      temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    except (ValueError, FileNotFoundError) as e:
        print(f"retrograd sample: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "train":
        return _train(args)
    if args.command == "sample":
        return _sample(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
