"""What capture_attention costs a training step: a GPT (4 layers x 4 heads, d_model 128,
batch 16 x 128 tokens, AdamW) stepped without capture, capturing every layer and head, and
capturing head 0 of sample 0 only, interleaved for ``--rounds`` rounds (2 threads, float32).
PyTorch's step of the same architecture (tests/torch_gpt.py) is timed in the same rounds, for
scale. Printed: median step times, the ratios to the uncaptured step, and the bytes each
capture stored.

    python benchmarks/attention_capture.py [--rounds 5] [--steps 3]
"""

import argparse
import os
import statistics
import sys

import _bench  # noqa: E402, F401  (first: it sets the BLAS threads before NumPy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import retrograd as rg  # noqa: E402
from retrograd.inspect import capture_attention  # noqa: E402
from retrograd.models.gpt import GPT, GPTConfig  # noqa: E402
from retrograd.nn import functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.torch_gpt import TorchGPT  # noqa: E402

from _bench import median_step_seconds  # noqa: E402

CONFIG = dict(vocab_size=65, context=128, n_layer=4, n_head=4, d_model=128, dropout=0.0)
BATCH = 16


def _retrograd_step():
    rg.manual_seed(0)
    model = GPT(GPTConfig(**CONFIG))
    optimizer = rg.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rg.tensor(rng.integers(0, 65, (BATCH, 128)))
    y = rg.tensor(rng.integers(0, 65, (BATCH, 128)))

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x).reshape(-1, 65), y.reshape(-1)).backward()
        optimizer.step()
    return model, step


def _torch_step():
    torch.manual_seed(0)
    model = TorchGPT(GPTConfig(**CONFIG))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, 65, (BATCH, 128))
    y = torch.randint(0, 65, (BATCH, 128))

    def step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x).reshape(-1, 65), y.reshape(-1)).backward()
        optimizer.step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, step = _retrograd_step()
    torch_step = _torch_step()
    stored = {}

    def captured(name, **selection):
        def run():
            with capture_attention(model, **selection) as rec:
                step()
            stored[name] = rec.nbytes
        return run

    variants = {"no capture": step, "capture all": captured("capture all"),
                "head 0, sample 0": captured("head 0, sample 0", heads=[0], samples=[0]),
                "PyTorch (no capture)": torch_step}
    for run in variants.values():
        run()                                        # warm-up
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            times[name].append(median_step_seconds(run, args.steps))
    base = statistics.median(times["no capture"])
    print(f"GPT {CONFIG['n_layer']} layers x {CONFIG['n_head']} heads, d_model "
          f"{CONFIG['d_model']}, batch {BATCH} x {CONFIG['context']}, AdamW step, 2 threads; "
          f"medians of {args.rounds} interleaved rounds")
    for name, values in times.items():
        median = statistics.median(values)
        extra = f", stored {stored[name] / 2**20:.2f} MiB" if name in stored else ""
        print(f"  {name:>22}: {1e3 * median:8.1f} ms  ({median / base:.2f}x retrograd's "
              f"uncaptured step){extra}")


if __name__ == "__main__":
    main()
