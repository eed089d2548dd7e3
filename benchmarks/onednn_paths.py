"""The measurement behind retrograd/_onednn/: oneDNN's convolutions and sgemm against
retrograd's own paths (the row layout / im2col + GEMM and the direct Numba loops for
convolutions; OpenBLAS shared out over the one thread pool for products), in one process,
alternated round by round, float32 on 2 threads.

Printed: per convolution layer of the benchmarks' models (and two transposed convolutions of
a DCGAN generator), forward + backward (dL/dW always, dL/dx except for first layers) in ms;
per matrix product of their Linear layers (y = x W, dL/dW^T = x^T g, dL/dx = g W^T), us;
medians of the rounds and the ratio oneDNN / own.

    python benchmarks/onednn_paths.py [--rounds 5] [--only conv|gemm]
"""

import argparse

from _bench import cpu_model, median_step_seconds    # before NumPy: 2 BLAS threads
import numpy as np

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast

LAYERS = [  # name, x shape, weight shape, conv2d keywords, dL/dx wanted
    ("ResNet-8 stem 3->16, 32x32, b32", (32, 3, 32, 32), (16, 3, 3, 3), dict(padding=1), False),
    ("ResNet-8 16->16, 32x32", (32, 16, 32, 32), (16, 16, 3, 3), dict(padding=1), True),
    ("ResNet-8 16->32 stride 2", (32, 16, 32, 32), (32, 16, 3, 3),
     dict(stride=2, padding=1), True),
    ("ResNet-8 32->32, 16x16", (32, 32, 16, 16), (32, 32, 3, 3), dict(padding=1), True),
    ("ResNet-8 64->64, 8x8", (32, 64, 8, 8), (64, 64, 3, 3), dict(padding=1), True),
    ("ResNet-8 1x1 16->32 stride 2", (32, 16, 32, 32), (32, 16, 1, 1), dict(stride=2), True),
    ("LeNet 1->20 5x5, 28x28, b64", (64, 1, 28, 28), (20, 1, 5, 5), dict(padding=2), False),
    ("LeNet 20->50 5x5, 14x14", (64, 20, 14, 14), (50, 20, 5, 5), {}, True),
    ("small CNN 1->32, 28x28, b64", (64, 1, 28, 28), (32, 1, 3, 3), dict(padding=1), False),
    ("small CNN 32->64, 14x14", (64, 32, 14, 14), (64, 32, 3, 3), dict(padding=1), True),
    ("depthwise 64 3x3, 16x16, b32", (32, 64, 16, 16), (64, 1, 3, 3),
     dict(padding=1, groups=64), True),
    ("conv2d row 64->64, 32x32, b32", (32, 64, 32, 32), (64, 64, 3, 3), dict(padding=1), True),
]
TRANSPOSED = [  # name, x shape, weight shape (Ci, Co, kh, kw), conv_transpose2d keywords
    ("DCGAN 128->64 4x4 stride 2, 8x8 -> 16x16, b64", (64, 128, 8, 8), (128, 64, 4, 4),
     dict(stride=2, padding=1)),
    ("DCGAN 64->32 4x4 stride 2, 16x16 -> 32x32, b64", (64, 64, 16, 16), (64, 32, 4, 4),
     dict(stride=2, padding=1)),
]
PRODUCTS = [  # (m, k, n) of x:(m, k) @ W:(k, n): the Transformer's and the MLP's layers
    (2048, 128, 384), (2048, 128, 128), (2048, 128, 512), (2048, 512, 128),
    (128, 784, 256), (128, 256, 256), (128, 256, 10),
]


def _use(family, on):
    """oneDNN's ``family`` on or off (retrograd/_fast.py's switch, as the tests use it)."""
    if on:
        _fast._ONEDNN.pop(family, None)
    else:
        _fast._ONEDNN[family] = None


def _alternated(family, step, rounds, steps):
    """(median seconds with oneDNN, without), the two alternated round by round."""
    times = {True: [], False: []}
    for _ in range(rounds):
        for on in (True, False):
            _use(family, on)
            step()
            times[on].append(median_step_seconds(step, steps))
    _use(family, True)
    return np.median(times[True]), np.median(times[False])


def _conv_step(x_shape, w_shape, options, needs_x, rng, function=F.conv2d):
    x = rg.tensor(rng.standard_normal(x_shape).astype(np.float32), requires_grad=needs_x)
    w = rg.tensor((rng.standard_normal(w_shape) * 0.1).astype(np.float32), requires_grad=True)
    grad = rg.tensor(rng.standard_normal(tuple(function(x, w, **options).shape))
                     .astype(np.float32))

    def step():
        x.grad = w.grad = None
        function(x, w, **options).backward(grad)
    return step


def convolutions(rounds, rng):
    print("convolution layer, forward + backward           oneDNN ms   own ms   ratio")
    for name, x_shape, w_shape, options, needs_x in LAYERS:
        step = _conv_step(x_shape, w_shape, options, needs_x, rng)
        ours, own = _alternated("conv", step, rounds, 8)
        print(f"{name:46s} {ours * 1e3:9.2f} {own * 1e3:8.2f} {ours / own:7.2f}")
    print("transposed convolution, forward + backward")
    for name, x_shape, w_shape, options in TRANSPOSED:
        step = _conv_step(x_shape, w_shape, options, True, rng, F.conv_transpose2d)
        ours, own = _alternated("conv", step, rounds, 8)
        print(f"{name:46s} {ours * 1e3:9.2f} {own * 1e3:8.2f} {ours / own:7.2f}")


def products(rounds, rng):
    from retrograd.ops._matmul import matmul

    print("matrix product (m, k, n)          oneDNN us   own us   ratio")
    for m, k, n in PRODUCTS:
        x, w = (rng.standard_normal(s).astype(np.float32) for s in ((m, k), (k, n)))
        g = rng.standard_normal((m, n)).astype(np.float32)
        for name, (a, b) in (("y", (x, w)), ("dL/dW^T", (x.T, g)), ("dL/dx", (g, w.T))):
            ours, own = _alternated("gemm", lambda a=a, b=b: matmul(a, b), rounds, 30)
            print(f"{str((m, k, n)):18s} {name:8s} {ours * 1e6:12.0f} {own * 1e6:8.0f} "
                  f"{ours / own:7.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=("conv", "gemm"))
    args = parser.parse_args()
    if _fast.onednn("conv") is None:
        raise SystemExit("oneDNN is not installed (pip install -e '.[fast]' on x86-64 Linux) "
                         "or RETROGRAD_KERNELS=numpy turned it off")
    print(f"{cpu_model()}; float32, {rg.get_num_threads()} threads, medians of "
          f"{args.rounds} alternated rounds")
    rng = np.random.default_rng(0)
    if args.only in (None, "conv"):
        convolutions(args.rounds, rng)
    if args.only in (None, "gemm"):
        products(args.rounds, rng)


if __name__ == "__main__":
    main()
