"""Optimizer step time of retrograd versus PyTorch, on ~100 parameter tensors.

The parameters mimic a small Transformer: N blocks of one (D, D) matrix and one (D,) vector
(float32; 100 tensors, 3.3M values by default). Gradients are fixed random arrays, set once;
each timing is the median over R repeats of one ``step()``. PyTorch runs its default CPU
implementation (a per-tensor loop) and, for reference, ``foreach=True`` (one batched kernel
per operation). Both frameworks run in the same process; PyTorch with --threads threads
(NumPy's elementwise ufuncs are single-threaded).

    python benchmarks/optim.py [--blocks 50] [--dim 256] [--repeats 21] [--threads 2]
"""

import argparse
import statistics
import time

import numpy as np
import torch

import retrograd as rg
import retrograd.optim  # noqa: F401

CONFIGS = {
    "SGD momentum": ("SGD", dict(lr=0.01, momentum=0.9)),
    "SGD nesterov+wd": ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    "Adam": ("Adam", dict(lr=1e-3)),
    "AdamW amsgrad": ("AdamW", dict(lr=1e-3, amsgrad=True)),
    "RMSprop centered": ("RMSprop", dict(lr=1e-3, centered=True, momentum=0.9)),
}


def _arrays(blocks, dim, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(dim, dim), (dim,)] * blocks
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    return params, grads


def _time_steps(opt, repeats):
    opt.step()  # the first step allocates the state
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _retrograd_opt(name, kwargs, params, grads):
    ps = [rg.tensor(p, requires_grad=True) for p in params]
    for p, g in zip(ps, grads):
        p.grad = rg.tensor(g)
    return getattr(rg.optim, name)(ps, **kwargs)


def _torch_opt(name, kwargs, params, grads, foreach):
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    for p, g in zip(ps, grads):
        p.grad = torch.tensor(g)
    return getattr(torch.optim, name)(ps, foreach=foreach, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=50)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch's intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params, grads = _arrays(args.blocks, args.dim)
    n_values = sum(p.size for p in params)
    print(f"{len(params)} tensors, {n_values / 1e6:.2f}M float32 values; "
          f"median ms per step over {args.repeats} steps")
    print(f"{'optimizer':<20}{'retrograd':>11}{'torch':>9}{'ratio':>8}{'torch foreach':>15}")
    for label, (name, kwargs) in CONFIGS.items():
        mine = _time_steps(_retrograd_opt(name, kwargs, params, grads), args.repeats)
        theirs = _time_steps(_torch_opt(name, kwargs, params, grads, False), args.repeats)
        batched = _time_steps(_torch_opt(name, kwargs, params, grads, True), args.repeats)
        print(f"{label:<20}{mine:>11.2f}{theirs:>9.2f}{mine / theirs:>8.2f}{batched:>15.2f}")


if __name__ == "__main__":
    main()
