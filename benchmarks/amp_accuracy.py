"""Does mixed precision train as well as float32? The digits ResNet (retrograd train's main
job) and the tiny-Shakespeare GPT trained in float32, with --amp bf16 and with --amp fp16, for
``--seeds`` seeds each; printed: each run's final test accuracy / validation loss, and how far
the bf16 and fp16 means are from the float32 mean (the bar: 0.5 percentage points of
accuracy, 0.05 nats of validation loss).

    python benchmarks/amp_accuracy.py [--seeds 3] [--gpt-steps 400] [--only resnet|gpt]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import _bench  # noqa: E402, F401  (first: it sets the BLAS threads before NumPy loads)

from retrograd.training.image import TrainConfig  # noqa: E402
from retrograd.training.image import train as train_image  # noqa: E402
from retrograd.training.language_model import LMConfig  # noqa: E402
from retrograd.training.language_model import train as train_gpt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench import cpu_model  # noqa: E402

PRECISIONS = (None, "bf16", "fp16")


def resnet_run(seed, amp, out):
    summary = train_image(TrainConfig(seed=seed, amp=amp, out=out, progress=False,
                                      inspect=False))
    return summary["test_acc"]


def gpt_run(seed, amp, out, steps):
    summary = train_gpt(LMConfig(seed=seed, amp=amp, out=out, progress=False, inspect=False,
                                 steps=steps, eval_interval=steps, warmup_steps=steps // 10))
    return summary["val_loss"]


def runs(name, run, seeds):
    """{precision: [final metric per seed]}, printing each run as it ends."""
    results = {amp: [] for amp in PRECISIONS}
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(seeds):
            for amp in PRECISIONS:
                started = time.perf_counter()
                value = run(seed, amp, os.path.join(folder, f"{name}-{amp}-{seed}"))
                results[amp].append(value)
                print(f"  {name} seed {seed} {amp or 'float32':>7}: {value:.4f} "
                      f"({time.perf_counter() - started:.0f} s)", flush=True)
    return results


def summary(name, results, unit, bar, scale):
    base = statistics.mean(results[None])
    print(f"{name}: float32 mean {base:.4f}")
    for amp in PRECISIONS[1:]:
        mean = statistics.mean(results[amp])
        gap = scale * abs(mean - base)
        print(f"  {amp}: mean {mean:.4f}, {gap:.3f} {unit} from float32 "
              f"(<= {bar}: {'yes' if gap <= bar else 'NO'})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--gpt-steps", type=int, default=400)
    parser.add_argument("--only", choices=("resnet", "gpt"))
    args = parser.parse_args()
    print(f"CPU: {cpu_model()}; 2 threads; {args.seeds} seeds; digits ResNet as retrograd "
          f"train's defaults; GPT case study for {args.gpt_steps} steps")
    if args.only in (None, "resnet"):
        summary("digits ResNet test accuracy", runs("resnet", resnet_run, args.seeds),
                "percentage points", 0.5, 100)
    if args.only in (None, "gpt"):
        summary("GPT validation loss", runs("gpt", lambda s, a, o: gpt_run(s, a, o,
                                                                            args.gpt_steps),
                                            args.seeds), "nats", 0.05, 1)


if __name__ == "__main__":
    main()
