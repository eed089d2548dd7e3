"""Character GPT on tiny Shakespeare: retrograd's language-model job against the same model in
PyTorch (same architecture, same initial weights, same batches, same optimizer and schedule).

    python benchmarks/train_gpt.py [--data PATH] [--steps 2000]

Both train the default model of ``retrograd train --model gpt`` (4 pre-norm blocks, d_model
128, 4 heads, context 128, tanh-GELU, tied embeddings; batch 32; AdamW lr 2e-3 with 100 warmup
steps and cosine decay to 2e-4, weight decay 0.1 on matrices, gradient clipping at 1.0) for
``--steps`` steps, one after the other, and print their wall times and losses: the mean
training loss over all steps and the final validation loss (nats per character over every
non-overlapping 128-character window of the last 10% of the text).

How the two runs are made equal. The PyTorch model is built, then loaded with the retrograd
run's initial state dict (so "the same init scheme" holds exactly: the same numbers), and it
trains on the batches of an identically seeded copy of the retrograd run's data loader.

Threads: PyTorch runs with ``--threads`` threads (default 2, the machine's cores). retrograd
runs its matrix products and compiled kernels on Numba's threads (its one thread pool,
docs/performance.md, 'Threads'; NumPy's BLAS on one thread); without the 'fast' extra, NumPy's
BLAS uses OPENBLAS_NUM_THREADS (read at import; by default all cores).
"""

import argparse
import math
import os
import sys
import time

import numpy as np

DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                            "tinyshakespeare", "input.txt")


def run_retrograd(config):
    from retrograd.training.language_model import train

    start = time.perf_counter()
    summary = train(config)
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, val_loss=summary["val_loss"],
                train_loss=summary["history"][-1]["train_loss"])


def _schedule(config):
    """The LinearWarmup(start_factor=0, cosine to min_lr) factors, for torch's LambdaLR."""
    warmup, total = config.warmup_steps, max(config.steps, config.warmup_steps + 1)

    def factor(t):
        if t < warmup:
            return t / warmup
        s = min(t, total) - warmup
        lr = config.min_lr + (config.lr - config.min_lr) * (1 + math.cos(math.pi * s /
                                                                         (total - warmup))) / 2
        return lr / config.lr
    return factor


def run_torch(config, threads):
    import torch

    from retrograd.training.common import endless_batches
    from retrograd.training.data_parallel import current_world
    from retrograd.training.language_model import _Run

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.torch_gpt import TorchGPT   # the reference the GPT tests check against

    torch.set_num_threads(threads)
    # seeded exactly like the retrograd run: same weights, same batches
    run = _Run(config, current_world())
    model = TorchGPT(run.model_config)
    model.load_state_dict({k: torch.from_numpy(v.detach().numpy().copy())
                           for k, v in run.model.state_dict().items()})
    params = list(model.parameters())
    groups = [dict(params=[p for p in params if p.ndim >= 2], weight_decay=config.weight_decay),
              dict(params=[p for p in params if p.ndim < 2], weight_decay=0.0)]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.99))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config))
    batches, losses = endless_batches(run.loader), []
    start = time.perf_counter()
    for _ in range(config.steps):
        x, y = next(batches)
        x, y = torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    val_loss = _torch_val_loss(torch, model, run.val_set)
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, val_loss=val_loss, train_loss=float(np.mean(losses)))


def _torch_val_loss(torch, model, dataset, batch_size=64):
    total = 0.0
    with torch.no_grad():
        for begin in range(0, len(dataset), batch_size):
            x, y = dataset.get_batch(np.arange(begin, min(begin + batch_size, len(dataset))))
            logits = model(torch.from_numpy(x.numpy()))
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y.numpy()).reshape(-1),
                reduction="sum").item()
    return total / (len(dataset) * dataset.context)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    parser.add_argument("--only", choices=["retrograd", "torch"])
    parser.add_argument("--out", default=os.path.join("runs", "benchmark-gpt"))
    args = parser.parse_args()

    from retrograd.training.language_model import LMConfig

    # One evaluation, at the end, in both runs; the schedule spans --steps.
    config = LMConfig(data=f"text:{args.data}", steps=args.steps, eval_interval=args.steps,
                      out=args.out, progress=False)
    print(f"GPT on {args.data}: {args.steps} steps of {config.batch_size} x {config.context} "
          f"characters; OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"torch threads {args.threads}")
    results = {}
    if args.only in (None, "retrograd"):
        results["retrograd"] = run_retrograd(config)
    if args.only in (None, "torch"):
        results["torch"] = run_torch(config, args.threads)
    print(f"{'':10} {'wall s':>9} {'s/step':>8} {'train loss':>11} {'val loss':>9}")
    for name, r in results.items():
        print(f"{name:10} {r['seconds']:9.1f} {r['seconds'] / args.steps:8.3f} "
              f"{r['train_loss']:11.4f} {r['val_loss']:9.4f}")
    if len(results) == 2:
        print(f"retrograd / torch wall time: "
              f"{results['retrograd']['seconds'] / results['torch']['seconds']:.1f}x")


if __name__ == "__main__":
    main()
