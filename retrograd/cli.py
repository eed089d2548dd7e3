"""The ``retrograd`` command: ``retrograd train`` trains a model and writes a run folder."""

import argparse
import sys

import retrograd

__all__ = ["main", "build_parser"]


def _add_train(subparsers):
    p = subparsers.add_parser(
        "train", help="train a model (default: a small ResNet on the shipped digits data)",
        description="Train an image classifier with a progress bar; writes a checkpoint, "
                    "metrics.json, curves.png and report.html into the run folder.")
    p.add_argument("--model", help="resnet-digits, resnet8, resnet20, resnet56, "
                                   "resnet-bottleneck, vgg, plain20, lenet or mlp "
                                   "(default: depends on --data)")
    p.add_argument("--data", default="digits",
                   help="digits (shipped), mnist:DIR, fashion-mnist:DIR or cifar10:DIR")
    p.add_argument("--epochs", type=int)
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
    return parser


def _train(args):
    try:
        from retrograd.training.image import TrainConfig, train
    except ImportError as e:
        print(f"retrograd train needs the 'train' extra (pip install 'retrograd[train]'): {e}",
              file=sys.stderr)
        return 2
    options = {k: v for k, v in vars(args).items() if k not in ("command", "quiet")}
    try:
        train(TrainConfig(progress=not args.quiet, **options))
    except (ValueError, FileNotFoundError) as e:
        print(f"retrograd train: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "train":
        return _train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
