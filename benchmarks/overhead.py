"""Per-op overhead of retrograd versus PyTorch on long chains of tiny ops.

Times forward and backward of chains of N ops where the arithmetic is negligible, so what is
measured is the framework's own cost per op: elementwise ops on a 1x1 tensor, and matmul on
16x16. Both frameworks run in the same process, float32, 2 threads; medians of R repeats.

    python benchmarks/overhead.py [--ops 2000] [--repeats 9]

Also measures the create_graph path (backward rules running on Tensors) against the plain
raw-array backward, the figure behind the design note in docs/architecture.md, and the cost
of the profiler: the same chains inside ``retrograd.profiler.profile()`` (column "prof/off":
per-op time profiled over unprofiled; the profiler's promise is at most 2x).
"""

import argparse
import statistics
import time

import numpy as np


def _time_chain(make_input, step, n_ops, repeats, backward):
    forward_times, backward_times = [], []
    for _ in range(repeats):
        x = make_input()
        start = time.perf_counter()
        y = x
        for _ in range(n_ops):
            y = step(y)
        loss = y.sum()
        middle = time.perf_counter()
        backward(loss)
        end = time.perf_counter()
        forward_times.append((middle - start) / n_ops * 1e6)
        backward_times.append((end - middle) / n_ops * 1e6)
    return statistics.median(forward_times), statistics.median(backward_times)


def _cases(lib, tensor_from, weight):
    return {
        "mul 1x1": ((1, 1), lambda y: y * 1.0001),
        "tanh 1x1": ((1, 1), lambda y: y.tanh()),
        "add+mul 1x1": ((1, 1), lambda y: (y + 0.5) * 0.5),
        "matmul 16x16": ((16, 16), lambda y: y @ weight),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    import torch

    import retrograd as rg

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    # orthogonal, so that a chain of 2,000 products neither overflows nor underflows
    w = np.linalg.qr(rng.standard_normal((16, 16)))[0].astype(np.float32)
    rg_w, torch_w = rg.tensor(w), torch.tensor(w)
    rg_cases = _cases(rg, rg.tensor, rg_w)
    torch_cases = _cases(torch, torch.tensor, torch_w)
    print(f"per-op time in microseconds (median of {args.repeats}, chains of {args.ops} ops, "
          f"float32, torch {torch.__version__} with 2 threads)")
    header = f"{'case':<14}{'rg fwd':>9}{'rg bwd':>9}{'rg 2nd':>9}{'pt fwd':>9}{'pt bwd':>9}" \
             f"{'ratio':>8}{'2nd/1st':>9}{'prof/off':>10}"
    print(header)
    for name, (shape, step) in rg_cases.items():
        data = rng.standard_normal(shape).astype(np.float32) * 0.1
        rg_f, rg_b = _time_chain(lambda: rg.tensor(data, requires_grad=True), step, args.ops,
                                 args.repeats, lambda loss: loss.backward())
        _, rg_b2 = _time_chain(lambda: rg.tensor(data, requires_grad=True), step, args.ops,
                               args.repeats, lambda loss: loss.backward(create_graph=True))
        with rg.profiler.profile():
            prof_f, prof_b = _time_chain(lambda: rg.tensor(data, requires_grad=True), step,
                                         args.ops, args.repeats, lambda loss: loss.backward())
        t_step = torch_cases[name][1]
        pt_f, pt_b = _time_chain(lambda: torch.tensor(data, requires_grad=True), t_step,
                                 args.ops, args.repeats, lambda loss: loss.backward())
        ratio = (rg_f + rg_b) / (pt_f + pt_b)
        profiled = (prof_f + prof_b) / (rg_f + rg_b)
        print(f"{name:<14}{rg_f:9.2f}{rg_b:9.2f}{rg_b2:9.2f}{pt_f:9.2f}{pt_b:9.2f}"
              f"{ratio:8.2f}{rg_b2 / rg_b:9.2f}{profiled:10.2f}")
    print("ratio = (retrograd fwd + bwd) / (PyTorch fwd + bwd); rg 2nd = backward with "
          "create_graph=True (rules run on Tensors); prof/off = (fwd + bwd) with the profiler "
          "recording over (fwd + bwd) without it")


if __name__ == "__main__":
    main()
