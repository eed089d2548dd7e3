"""CNN building blocks and models, retrograd versus PyTorch, side by side in one process.

Each case builds the same computation in both frameworks from the same float32 arrays and is
timed as forward alone and forward + backward (with a fixed random output gradient), with a
short pause before each run (training-step cases instead run blocks of steps back to back, as
a training loop does). Each framework runs in its own child process, the two alternating for
``--rounds`` rounds: in one process, PyTorch's idle OpenMP threads keep spinning after its
runs and were measured to slow the next NumPy run by up to 40x, which no user would see.
Reported: median times in milliseconds and the ratio retrograd / PyTorch of the forward +
backward medians, and the machine's load average (other processes skew both).

    python benchmarks/cnn.py [--repeats 9] [--only conv]

PyTorch runs with 2 threads (torch.set_num_threads(2)), as the 2-core machine retrograd's
NumPy/OpenBLAS uses. To add a case, append a Case to CASES: its build(lib) gets the module
(``retrograd`` or ``torch``) and returns (forward, leaves): a no-argument function computing
the output, and the leaf tensors whose gradients backward fills (reset between runs).
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from collections.abc import Callable

from _bench import step_seconds   # imported before NumPy: it sets 2 BLAS threads
import numpy as np


SETTLE_SECONDS = 0.15
STEP_BLOCK = 4  # training steps timed back to back per framework and round


@dataclass
class Case:
    name: str
    build: Callable  # build(lib) -> (forward, leaves), or (forward, step) when is_step
    is_step: bool = False


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


def _torch_twin(torch, model):
    """The same architecture in torch, built from retrograd's module tree: every retrograd
    layer maps to the torch layer of the same name, and the weights are copied."""
    from retrograd import models as rg_models
    from retrograd import nn as rg_nn

    tnn = torch.nn
    simple = {rg_nn.ReLU: lambda m: tnn.ReLU(), rg_nn.Flatten: lambda m: tnn.Flatten(),
              rg_nn.MaxPool2d: lambda m: tnn.MaxPool2d(m.kernel_size, m.stride),
              rg_nn.AdaptiveAvgPool2d: lambda m: tnn.AdaptiveAvgPool2d(m.output_size),
              rg_nn.BatchNorm2d: lambda m: tnn.BatchNorm2d(m.num_features),
              rg_nn.Linear: lambda m: tnn.Linear(m.in_features, m.out_features),
              rg_nn.Conv2d: lambda m: tnn.Conv2d(m.in_channels, m.out_channels, m.kernel_size,
                                                 m.stride, m.padding, bias=m.bias is not None)}

    def convert(m):
        if type(m) in simple:
            return simple[type(m)](m)
        if isinstance(m, rg_nn.Sequential):
            return tnn.Sequential(*(convert(c) for c in m))
        if isinstance(m, rg_nn.ModuleList):
            return tnn.ModuleList(convert(c) for c in m)
        twin = tnn.Module()
        for name, child in m.named_children():
            setattr(twin, name, convert(child))
        for name in ("downsample",):
            if name in m.__dict__ or name in m._modules:
                setattr(twin, name, convert(m._modules[name]) if m._modules.get(name) else None)
        twin.forward = _twin_forward(m, twin)
        return twin

    twin = convert(model)
    twin.load_state_dict({k: torch.from_numpy(v.numpy().copy())
                          for k, v in model.state_dict().items()})
    assert isinstance(model, (rg_models.LeNet, rg_models.ResNet, rg_models.BasicBlock))
    return twin


def _twin_forward(model, twin):
    """Run retrograd's forward code on the torch twin: the models only call submodules,
    ReLU, addition and flatten, which torch tensors support the same way."""
    return lambda x: type(model).forward(twin, x)


def train_step_case(name, make_model, x_shape, batch_classes=10):
    """One SGD training step (forward, cross-entropy, backward, update) of a model."""
    (x,) = _arrays(3, x_shape)
    y = np.random.default_rng(4).integers(0, batch_classes, x_shape[0])

    def build(lib):
        import retrograd as rg

        rg.manual_seed(0)
        model = make_model()
        if lib is not rg:
            model = _torch_twin(lib, model)
        opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        tx, ty = lib.tensor(x), lib.tensor(y)

        def step():
            loss = lib.nn.functional.cross_entropy(model(tx), ty)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        return (lambda: model(tx)), step

    return Case(name, build, is_step=True)


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
    train_step_case("LeNet train step, batch 64, 1x28x28", lambda: _models().LeNet(),
                    (64, 1, 28, 28)),
    train_step_case("ResNet-8 train step, batch 32, 3x32x32", lambda: _models().resnet8(),
                    (32, 3, 32, 32)),
]


def _models():
    from retrograd import models
    return models


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


def measure(case, lib, repeats):
    """(forward times, forward+backward or training-step times) of one case in one
    framework, in seconds; the first run warms up (allocations, BLAS threads)."""
    forward, second = case.build(lib)
    (g,) = _arrays(2, tuple(forward().shape))
    g = lib.tensor(g)
    fwd_times, step_times = [], []
    for run in range(repeats + 1):
        if case.is_step:
            fwd = [_time_once(forward, [], g, lib, backward=False)]
            # back to back, as a training loop runs: its threads stay awake, its caches warm
            both = step_seconds(second, STEP_BLOCK)
        else:
            fwd = [_time_once(forward, second, g, lib, backward=False)]
            both = [_time_once(forward, second, g, lib, backward=True)]
        if run > 0:
            fwd_times.extend(fwd)
            step_times.extend(both)
    return fwd_times, step_times


def _worker(framework, only, repeats):
    """Runs in a child process: one framework, every selected case; prints JSON."""
    if framework == "torch":
        import torch as lib

        lib.set_num_threads(2)
    else:
        import retrograd as lib
    results = {case.name: measure(case, lib, repeats) for case in CASES if only in case.name}
    print(json.dumps(results))


def _run_worker(framework, only, repeats):
    out = subprocess.run([sys.executable, __file__, "--worker", framework, "--only", only,
                          "--repeats", str(repeats)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=2,
                        help="times each framework's process runs (alternating)")
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    parser.add_argument("--worker", choices=["retrograd", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker, args.only, args.repeats)
        return

    import torch

    print(f"median of {args.rounds} x {args.repeats} runs, float32, torch {torch.__version__} "
          f"with 2 threads, numpy {np.__version__}; each framework in its own process; times "
          f"in ms; load average {_load()}")
    times = {"retrograd": {}, "torch": {}}
    for _ in range(args.rounds):
        for framework in ("retrograd", "torch"):
            for name, (fwd, both) in _run_worker(framework, args.only, args.repeats).items():
                entry = times[framework].setdefault(name, ([], []))
                entry[0].extend(fwd)
                entry[1].extend(both)
    print(f"{'case':<44}{'rg fwd':>9}{'pt fwd':>9}{'rg f+b':>9}{'pt f+b':>9}{'ratio':>8}")
    for case in CASES:
        if case.name not in times["retrograd"]:
            continue
        (rg_f, rg_b), (pt_f, pt_b) = ([statistics.median(v) * 1e3 for v in times[fw][case.name]]
                                      for fw in ("retrograd", "torch"))
        print(f"{case.name:<44}{rg_f:9.1f}{pt_f:9.1f}{rg_b:9.1f}{pt_b:9.1f}{rg_b / pt_b:8.2f}")
    print(f"ratio = retrograd / PyTorch, forward + backward (for models: one SGD training "
          f"step, forward + loss + backward + update); load average {_load()}")


def _load():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
