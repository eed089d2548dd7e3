"""CNN building blocks and models, retrograd versus PyTorch, side by side in one process.

Each case builds the same computation in both frameworks from the same float32 arrays and is
timed as forward alone and forward + backward (with a fixed random output gradient); the
framework runs alternate so that both see the same machine load, with a short pause before
each run. Reported: median times in milliseconds and the ratio retrograd / PyTorch of the
forward + backward medians, and the machine's load average (other processes skew both).

    python benchmarks/cnn.py [--repeats 9] [--only conv]

PyTorch runs with 2 threads (torch.set_num_threads(2)), as the 2-core machine retrograd's
NumPy/OpenBLAS uses. To add a case, append a Case to CASES: its build(lib) gets the module
(``retrograd`` or ``torch``) and returns (forward, leaves): a no-argument function computing
the output, and the leaf tensors whose gradients backward fills (reset between runs).
"""

import argparse
import statistics
import time
from dataclasses import dataclass
from collections.abc import Callable

import numpy as np


SETTLE_SECONDS = 0.15


@dataclass
class Case:
    name: str
    build: Callable  # build(lib) -> (forward, leaves)


def _arrays(seed, *shapes, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(s) * scale).astype(np.float32) for s in shapes]


def conv_case(name, x_shape, w_shape, x_requires_grad=True, **kwargs):
    """F.conv2d(x, w, b, **kwargs); the weight and bias always require grad, x only when
    x_requires_grad (False for a first layer, whose dL/dx nobody needs)."""
    x, w, b = _arrays(0, x_shape, w_shape, w_shape[:1], scale=0.1)

    def build(lib):
        tx = lib.tensor(x, requires_grad=x_requires_grad)
        tw, tb = lib.tensor(w, requires_grad=True), lib.tensor(b, requires_grad=True)
        leaves = [tw, tb] + ([tx] if x_requires_grad else [])
        return (lambda: lib.nn.functional.conv2d(tx, tw, tb, **kwargs)), leaves

    return Case(name, build)


def pool_case(name, function, x_shape, *args, **kwargs):
    (x,) = _arrays(1, x_shape)

    def build(lib):
        tx = lib.tensor(x, requires_grad=True)
        return (lambda: getattr(lib.nn.functional, function)(tx, *args, **kwargs)), [tx]

    return Case(name, build)


CASES = [
    conv_case("conv2d 3x3 64->64 pad 1, 32x64x32x32", (32, 64, 32, 32), (64, 64, 3, 3),
              padding=1),
    conv_case("conv2d 5x5 1->6, 64x1x28x28 (1st layer)", (64, 1, 28, 28), (6, 1, 5, 5),
              x_requires_grad=False),
    conv_case("conv2d 5x5 1->6, 64x1x28x28 (+dL/dx)", (64, 1, 28, 28), (6, 1, 5, 5)),
    conv_case("conv2d 3x3 64->128 s2 pad 1, 32x64x32x32", (32, 64, 32, 32), (128, 64, 3, 3),
              stride=2, padding=1),
    conv_case("conv2d 1x1 64->128, 32x64x32x32", (32, 64, 32, 32), (128, 64, 1, 1)),
    conv_case("conv2d 3x3 depthwise 64, 32x64x32x32", (32, 64, 32, 32), (64, 1, 3, 3),
              padding=1, groups=64),
    pool_case("max_pool2d 2x2, 32x64x32x32", "max_pool2d", (32, 64, 32, 32), 2),
    pool_case("max_pool2d 3x3 s2 pad 1, 32x64x32x32", "max_pool2d", (32, 64, 32, 32), 3, 2, 1),
    pool_case("avg_pool2d 2x2, 32x64x32x32", "avg_pool2d", (32, 64, 32, 32), 2),
    pool_case("adaptive_avg_pool2d 1x1, 32x512x7x7", "adaptive_avg_pool2d", (32, 512, 7, 7),
              1),
]


def _time_once(forward, leaves, cotangent, lib, backward):
    for t in leaves:
        t.grad = None
    # NOTE: after a call, OpenBLAS worker threads (NumPy) and OpenMP threads (PyTorch) keep
    # spinning for a while; a pause lets them sleep, so that neither framework's idle
    # threads steal a core from the other's measurement.
    time.sleep(SETTLE_SECONDS)
    start = time.perf_counter()
    if backward:
        forward().backward(cotangent)
    else:
        with lib.no_grad():
            forward()
    return time.perf_counter() - start


def run_case(case, libs, repeats):
    """{lib name: (forward median, forward+backward median)} in milliseconds."""
    built = {}
    for name, lib in libs.items():
        forward, leaves = case.build(lib)
        shape = tuple(forward().shape)
        (g,) = _arrays(2, shape)
        built[name] = (forward, leaves, lib.tensor(g), lib)
    times = {name: ([], []) for name in libs}
    for run in range(repeats + 1):  # the first run warms up (allocations, BLAS threads)
        for name, (forward, leaves, g, lib) in built.items():
            fwd = _time_once(forward, leaves, g, lib, backward=False)
            both = _time_once(forward, leaves, g, lib, backward=True)
            if run > 0:
                times[name][0].append(fwd)
                times[name][1].append(both)
    return {name: (statistics.median(f) * 1e3, statistics.median(b) * 1e3)
            for name, (f, b) in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args()

    import torch

    import retrograd as rg

    torch.set_num_threads(2)
    libs = {"retrograd": rg, "torch": torch}
    print(f"median of {args.repeats} runs, float32, torch {torch.__version__} with 2 threads, "
          f"numpy {np.__version__}; times in ms; load average {_load()}")
    print(f"{'case':<44}{'rg fwd':>9}{'pt fwd':>9}{'rg f+b':>9}{'pt f+b':>9}{'ratio':>8}")
    for case in CASES:
        if args.only not in case.name:
            continue
        result = run_case(case, libs, args.repeats)
        (rg_f, rg_b), (pt_f, pt_b) = result["retrograd"], result["torch"]
        print(f"{case.name:<44}{rg_f:9.1f}{pt_f:9.1f}{rg_b:9.1f}{pt_b:9.1f}{rg_b / pt_b:8.2f}",
              flush=True)
    print(f"ratio = retrograd / PyTorch, forward + backward; load average {_load()}")


def _load():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
