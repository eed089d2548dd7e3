"""``retrograd sample``: generate text from a GPT checkpoint (``retrograd train --model gpt``)."""

from retrograd.cli._common import EXPECTED, fail

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Declare ``retrograd sample`` and its options on ``subparsers``."""
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


def run(args):
    """Print the sampled text; returns the exit code (2 with one line on stderr for a
    missing, unreadable or foreign checkpoint, or an option or prompt that does not fit)."""
    from retrograd.training.language_model import sample
    try:
        text = sample(args.checkpoint, prompt=args.prompt, length=args.length,
                      temperature=args.temperature, top_k=args.top_k, seed=args.seed)
    except EXPECTED as e:
        return fail("sample", e)
    print(text)
    return 0
