"""Recurrent layers: time per step of nn.LSTM / nn.GRU / nn.RNN, retrograd versus PyTorch.

A one-layer module (float32, 2 threads) runs a (T, B, I) sequence; the figures are the
forward time and the forward + backward (BPTT) time divided by T, medians of R repeats, plus
the Python overhead per step measured on a tiny layer (B = 1, H = 8) where the arithmetic is
negligible.

    python benchmarks/rnn.py [--steps 64] [--batch 32] [--input 128] [--hidden 256]
                             [--torch-threads 2]
"""

import argparse
import statistics
import time

import numpy as np


def _time(run, repeats):
    forward, total = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = run(False)
        middle = time.perf_counter()
        loss = run(True)
        end = time.perf_counter()
        forward.append(middle - start)
        total.append(end - middle)
        del loss
    return statistics.median(forward), statistics.median(total)


def _runner(lib, module, x, make):
    def run(backward):
        inp = make(x)
        out = module(inp)[0]
        loss = (out * out).sum()
        if backward:
            loss.backward()
        return loss
    return run


def _measure(kind, steps, batch, inputs, hidden, repeats):
    import torch

    import retrograd as rg

    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(inputs, hidden)
    ours = getattr(rg.nn, kind)(inputs, hidden)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((steps, batch, inputs)).astype(np.float32)
    rg_run = _runner(rg, ours, x, lambda a: rg.tensor(a, requires_grad=True))
    torch_run = _runner(torch, theirs, x, lambda a: torch.tensor(a, requires_grad=True))
    rg_run(True), torch_run(True)   # warm up
    return _time(rg_run, repeats), _time(torch_run, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--torch-threads", type=int, default=2,
                        help="PyTorch threads (on a busy 2-core machine, 1 avoids spinning)")
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.torch_threads)

    configs = [("realistic", args.steps, args.batch, args.input, args.hidden),
               ("overhead", args.steps, 1, 8, 8)]
    print(f"{'layer':>5} {'case':>9} {'T,B,I,H':>16} | {'rg fwd':>8} {'torch fwd':>9} | "
          f"{'rg f+b':>8} {'torch f+b':>9} | ratio f+b   (microseconds per step)")
    for kind in ("LSTM", "GRU", "RNN"):
        for case, steps, batch, inputs, hidden in configs:
            (rf, rt), (tf, tt) = _measure(kind, steps, batch, inputs, hidden, args.repeats)
            per = 1e6 / steps
            sizes = f"{steps},{batch},{inputs},{hidden}"
            print(f"{kind:>5} {case:>9} {sizes:>16} | {rf * per:8.0f} {tf * per:9.0f} | "
                  f"{rt * per:8.0f} {tt * per:9.0f} | {rt / tt:9.2f}")


if __name__ == "__main__":
    main()
