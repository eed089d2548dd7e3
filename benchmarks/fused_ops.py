"""Fused normalization and loss ops versus their composition from elementary ops, and PyTorch.

The reason each fused op exists: layer_norm, batch_norm and cross_entropy are single
Functions with hand-derived backwards (retrograd/ops/norm.py, retrograd/ops/loss.py); the
same computation composed of elementary retrograd ops (mean, var, sub, div, sqrt, log_softmax,
indexing) records 5-10 nodes and walks memory many more times. This script times forward +
backward of each version, float32, with PyTorch limited to 2 threads, median of R repeats
(after one warm-up), in the same process:

    python benchmarks/fused_ops.py [--repeats 15] [--torch-threads 2]

Cases: layer_norm on (32, 64, 128) over the last dim, batch_norm in training on
(32, 64, 32, 32), cross_entropy on (512, 1000) logits with class-index targets.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # NumPy's BLAS, before NumPy loads
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402


def _median_ms(run, repeats):
    run()  # warm-up: first-touch allocations, lazy imports
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _cases(rng):
    """name -> (arrays, which of them require grad, retrograd fused, retrograd composed,
    torch); each function takes the framework's tensors (inputs, then the cotangent if any)
    and runs forward + backward."""
    import torch.nn.functional as TF

    import retrograd.nn.functional as F

    def f32(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    def ln_composed(x, w, b, c):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, unbiased=False, keepdim=True)
        ((x - mean) / (var + 1e-5).sqrt() * w + b).backward(c)

    def bn_composed(x, w, b, c):
        shape = (1, x.shape[1], 1, 1)
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        ((x - mean) / (var + 1e-5).sqrt() * w.reshape(shape) + b.reshape(shape)).backward(c)

    def ce_composed(x, target):
        logp = x.log_softmax(1)
        (-logp[np.arange(x.shape[0]), target.numpy()].mean()).backward()

    return {
        "layer_norm (32, 64, 128)": (
            [f32(32, 64, 128), f32(128), f32(128), f32(32, 64, 128)], (True, True, True, False),
            lambda x, w, b, c: F.layer_norm(x, (128,), w, b).backward(c),
            ln_composed,
            lambda x, w, b, c: TF.layer_norm(x, (128,), w, b).backward(c)),
        "batch_norm (32, 64, 32, 32)": (
            [f32(32, 64, 32, 32), f32(64), f32(64), f32(32, 64, 32, 32)],
            (True, True, True, False),
            lambda x, w, b, c: F.batch_norm(x, None, None, w, b, training=True).backward(c),
            bn_composed,
            lambda x, w, b, c: TF.batch_norm(x, None, None, w, b, training=True).backward(c)),
        "cross_entropy (512, 1000)": (
            [f32(512, 1000) * 3, rng.integers(0, 1000, 512)], (True, False),
            lambda x, t: F.cross_entropy(x, t).backward(),
            ce_composed,
            lambda x, t: TF.cross_entropy(x, t).backward()),
    }


def _runner(fn, arrays, needs_grad, from_numpy):
    """Fresh tensors (sharing the arrays' memory) at every run, so no gradient accumulates."""
    def run():
        fn(*(from_numpy(a).requires_grad_(g) for a, g in zip(arrays, needs_grad)))
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--torch-threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    import retrograd as rg

    torch.set_num_threads(args.torch_threads)
    rng = np.random.default_rng(0)
    print(f"forward + backward, milliseconds (median of {args.repeats}), float32; "
          f"torch {torch.__version__} with {args.torch_threads} threads")
    print(f"{'case':<30}{'fused':>9}{'composed':>10}{'torch':>9}{'composed/fused':>16}"
          f"{'fused/torch':>13}")
    for name, (arrays, needs_grad, fused, composed, torch_fn) in _cases(rng).items():
        t_fused = _median_ms(_runner(fused, arrays, needs_grad, rg.from_numpy), args.repeats)
        t_composed = _median_ms(_runner(composed, arrays, needs_grad, rg.from_numpy),
                                args.repeats)
        t_torch = _median_ms(_runner(torch_fn, arrays, needs_grad, torch.from_numpy),
                             args.repeats)
        print(f"{name:<30}{t_fused:9.2f}{t_composed:10.2f}{t_torch:9.2f}"
              f"{t_composed / t_fused:16.2f}{t_fused / t_torch:13.2f}")


if __name__ == "__main__":
    main()
