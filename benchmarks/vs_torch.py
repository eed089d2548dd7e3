"""retrograd against PyTorch on four training workloads and six op rows (float32, 2 threads).

Workloads (one training step each: forward, loss, backward, optimizer step), both frameworks
starting from the same weights (retrograd initializes, PyTorch loads its state dict) and the
same batch; the first step's losses must agree to float32 rounding or the run stops:
- MLP 784-256-256-10, batch 128, SGD with momentum;
- small CNN (2x conv3x3+BN+ReLU+maxpool2, linear), 1x28x28, batch 64, SGD with momentum;
- ResNet-8 (16-32-64), 3x32x32, batch 32, SGD with momentum;
- 2-layer pre-norm Transformer encoder (d_model 128, 4 heads, FFN 512, causal), sequences of
  64, batch 32, AdamW, MSE loss.
Op rows (forward + backward with a fixed output gradient, or one optimizer step): conv2d 3x3
64->64 on 32x64x32x32, causal scaled-dot-product attention (32x4x64x32), layer norm over 1024
features (4096 rows), cross-entropy 4096x1000, exact GELU on 4M values, an Adam step over
100 tensors (3.3M values).

Each framework runs in its own child process, the two alternating for --rounds rounds (one
process's idle OpenMP/BLAS threads keep spinning after its calls and would slow the other).
A round warms every case up, then times --steps calls of each. Printed: the median time per
call over all rounds, the ratio retrograd / PyTorch, the median of the per-round ratios, and
the compiled kernels' first-run cost (a retrograd process with an empty Numba cache against
one with the cache filled: the difference is compile time).

    python benchmarks/vs_torch.py [--rounds 5] [--steps 10] [--only resnet] [--no-compile-time]
    python benchmarks/vs_torch.py --memory     # tracemalloc peak of one step per workload
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import _bench  # noqa: F401  (sets the BLAS threads before NumPy loads)
import numpy as np

from _bench import cpu_model


def mlp(nn):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256),
                         nn.ReLU(), nn.Linear(256, 10))


def small_cnn(nn):
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 7 * 7, 10))


def resnet8(nn):
    """ResNet-8 written once for both frameworks (the layout of retrograd.models.resnet8)."""

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.down is None else self.down(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                         nn.ReLU(), Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def transformer(nn):
    layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True,
                                       norm_first=True)
    return nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(128))


def _classifier_batch(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(np.float32), rng.integers(0, 10, shape[0])


def _sequence_batch(seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((32, 64, 128)).astype(np.float32) for _ in range(2)]


def _retrograd_weights(make):
    import retrograd as rg

    rg.manual_seed(0)
    return {k: v.numpy().copy() for k, v in make(rg.nn).state_dict().items()}


def _model(lib, make):
    model = make(lib.nn)
    model.load_state_dict({k: lib.tensor(v) for k, v in _retrograd_weights(make).items()})
    return model


def classifier_workload(make, shape):
    def build(lib):
        model = _model(lib, make)
        opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = (lib.tensor(a) for a in _classifier_batch(shape, 1))

        def step():
            opt.zero_grad()
            loss = lib.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
        return step
    return build


def transformer_workload(lib):
    model = _model(lib, transformer)
    opt = lib.optim.AdamW(model.parameters(), lr=1e-4)
    x, target = (lib.tensor(a) for a in _sequence_batch(2))
    mask = lib.nn.Transformer.generate_square_subsequent_mask(64)

    def step():
        opt.zero_grad()
        loss = lib.nn.functional.mse_loss(model(x, mask=mask, is_causal=True), target)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def op_row(make_inputs, forward):
    """forward(lib, *tensors) -> output; one call = forward + backward with a fixed output
    gradient, the inputs' gradients reset first."""
    def build(lib):
        tensors = [lib.tensor(a, requires_grad=grad) for a, grad in make_inputs()]
        out = forward(lib, *tensors)
        cotangent = lib.tensor(np.random.default_rng(9).standard_normal(tuple(out.shape))
                               .astype(np.float32))

        def step():
            for t in tensors:
                t.grad = None
            out = forward(lib, *tensors)
            out.backward(cotangent)
            return float(out.detach().sum().item())
        return step
    return build


def _normal(*shapes, scale=1.0, grads=None):
    rng = np.random.default_rng(5)
    grads = grads or [True] * len(shapes)
    return lambda: [((rng.standard_normal(s) * scale).astype(np.float32), g)
                    for s, g in zip(shapes, grads)]


def _cross_entropy_inputs():
    logits, _ = _normal((4096, 1000))()[0]
    return [(logits, True), (np.random.default_rng(6).integers(0, 1000, 4096), False)]


def adam_row(lib):
    rng = np.random.default_rng(7)
    params = []
    for _ in range(50):
        for shape in ((256, 256), (256,)):
            p = lib.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
            p.grad = lib.tensor(rng.standard_normal(shape).astype(np.float32))
            params.append(p)
    opt = lib.optim.Adam(params, lr=1e-3)

    def step():
        opt.step()
        return float(params[0].detach().sum().item())
    return step


def _ln(lib, x, w, b):
    return lib.nn.functional.layer_norm(x, (1024,), w, b)


WORKLOADS = {
    "MLP 784-256-256-10, b128, SGD": classifier_workload(mlp, (128, 1, 28, 28)),
    "small CNN 1x28x28, b64, SGD": classifier_workload(small_cnn, (64, 1, 28, 28)),
    "ResNet-8 3x32x32, b32, SGD": classifier_workload(resnet8, (32, 3, 32, 32)),
    "Transformer 2L d128 T64, b32, AdamW": transformer_workload,
}
OPS = {
    "conv2d 3x3 64->64, 32x64x32x32": op_row(
        _normal((32, 64, 32, 32), (64, 64, 3, 3), (64,), scale=0.1),
        lambda lib, x, w, b: lib.nn.functional.conv2d(x, w, b, padding=1)),
    "SDPA causal 32x4x64x32": op_row(
        _normal(*[(32, 4, 64, 32)] * 3),
        lambda lib, q, k, v: lib.nn.functional.scaled_dot_product_attention(q, k, v,
                                                                            is_causal=True)),
    "layer norm 4096x1024": op_row(_normal((4096, 1024), (1024,), (1024,)), _ln),
    "cross entropy 4096x1000": op_row(
        _cross_entropy_inputs, lambda lib, x, y: lib.nn.functional.cross_entropy(x, y)),
    "GELU (exact) 4M": op_row(_normal((64, 64, 1024)),
                              lambda lib, x: lib.nn.functional.gelu(x)),
    "Adam step, 100 tensors 3.3M": adam_row,
}
CASES = {**WORKLOADS, **OPS}


def _worker(framework, only, steps):
    """In a child process: {case: (first call's result, first call's seconds, [seconds of
    each timed call])} for one framework, printed as JSON."""
    if framework == "torch":
        import torch as lib

        lib.set_num_threads(2)
    else:
        import retrograd as lib
    results = {}
    for name, build in CASES.items():
        if only.lower() not in name.lower():
            continue
        step = build(lib)
        start = time.perf_counter()
        first = step()
        first_seconds = time.perf_counter() - start
        step()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        results[name] = (first, first_seconds, times)
    print(json.dumps(results))


def _run_worker(framework, only, steps, env=None):
    out = subprocess.run([sys.executable, __file__, "--worker", framework, "--only", only,
                          "--steps", str(steps)], capture_output=True, text=True,
                         env=env, check=False)
    if out.returncode:
        sys.exit(f"vs_torch: the {framework} worker failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _check_first_losses(first):
    """The workloads' first losses (same weights, same batch) agree to float32 rounding."""
    for name in WORKLOADS:
        if name in first["retrograd"]:
            rg_loss, pt_loss = first["retrograd"][name], first["torch"][name]
            if abs(rg_loss - pt_loss) > 1e-4 * max(1.0, abs(pt_loss)):
                sys.exit(f"vs_torch: first-step losses differ on {name}: retrograd "
                         f"{rg_loss:.7f}, PyTorch {pt_loss:.7f}")


def compile_seconds(only):
    """(seconds of every case's first call with an empty Numba cache, the same with the cache
    filled): one retrograd process each."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = _run_worker("retrograd", only, 1, env)
        warm = _run_worker("retrograd", only, 1, env)
    return (sum(r[1] for r in cold.values()), sum(r[1] for r in warm.values()))


def memory_peaks(only):
    """{workload: tracemalloc peak of one retrograd training step, bytes}, measured in this
    process after two warm-up steps (NumPy's arrays are traced; so are the compiled kernels'
    outputs, which are allocated by NumPy)."""
    import tracemalloc

    import retrograd as rg

    peaks = {}
    for name, build in WORKLOADS.items():
        if only.lower() in name.lower():
            step = build(rg)
            step()
            step()
            tracemalloc.start()
            step()
            peaks[name] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    return peaks


def _load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    parser.add_argument("--no-compile-time", action="store_true")
    parser.add_argument("--memory", action="store_true",
                        help="only print the tracemalloc peak of one retrograd step of each "
                             "workload (run it with PYTHONPATH set to compare versions)")
    parser.add_argument("--worker", choices=["retrograd", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.only, args.steps)
        return
    if args.memory:
        import retrograd

        print(f"tracemalloc peak of one training step, retrograd at {retrograd.__file__}")
        for name, peak in memory_peaks(args.only).items():
            print(f"  {name:<38}{peak / 2**20:9.1f} MiB")
        return
    import torch

    from retrograd._fast import compiled_kernels

    kernels = "compiled (Numba)" if compiled_kernels() else "NumPy"
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; torch {torch.__version__} and retrograd "
          f"(kernels: {kernels}, numpy {np.__version__}) with 2 threads, float32; "
          f"{args.rounds} rounds x {args.steps} calls; load average {_load()}")
    times = {"retrograd": {}, "torch": {}}
    round_medians = {"retrograd": {}, "torch": {}}
    first = {"retrograd": {}, "torch": {}}
    for _ in range(args.rounds):
        for framework in ("retrograd", "torch"):
            for name, (loss, _, calls) in _run_worker(framework, args.only,
                                                      args.steps).items():
                first[framework][name] = loss
                times[framework].setdefault(name, []).extend(calls)
                round_medians[framework].setdefault(name, []).append(statistics.median(calls))
    _check_first_losses(first)
    print(f"{'case':<38}{'retrograd ms':>13}{'PyTorch ms':>12}{'ratio':>8}{'per round':>22}")
    for name in CASES:
        if name not in times["retrograd"]:
            continue
        rg_ms, pt_ms = (statistics.median(times[fw][name]) * 1e3 for fw in times)
        rounds = [r / p for r, p in zip(round_medians["retrograd"][name],
                                        round_medians["torch"][name])]
        spread = f"{min(rounds):.2f}-{max(rounds):.2f}"
        print(f"{name:<38}{rg_ms:13.2f}{pt_ms:12.2f}{rg_ms / pt_ms:8.2f}{spread:>22}")
    print(f"ratio = retrograd / PyTorch of the median call; first-step losses agree; load "
          f"average {_load()}")
    if not args.no_compile_time and compiled_kernels():
        cold, warm = compile_seconds(args.only)
        print(f"first calls of every case: {cold:.1f} s with an empty Numba cache, {warm:.1f} "
              f"s with it filled: {cold - warm:.1f} s of compiling")


if __name__ == "__main__":
    main()
