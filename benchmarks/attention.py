"""Scaled dot-product attention: speed against PyTorch, and memory of the two variants.

1. Time of forward + backward of causal attention at B=32, H=4, T=64, D=32 (float32),
   retrograd's fused op against torch.nn.functional.scaled_dot_product_attention (2 threads),
   both in the same process, alternating run by run so that both see the same machine load;
   medians of R repeats of wall time, and of process CPU time (robust when other processes
   compete for the cores: multithreaded BLAS/OpenMP then loses much wall time waiting).
   Target: retrograd / torch <= 1.5. For a single-thread comparison run
   ``OPENBLAS_NUM_THREADS=1 python benchmarks/attention.py --threads 1``.
2. Activation memory of the standard op against the memory-efficient one at T = 256, 1024,
   4096 (B=1, H=4, D=32, float32, causal): the bytes saved for backward, counted by
   ``retrograd.autograd.saved_tensors_hooks`` (nbytes of every packed tensor, q, k, v
   included), and the tracemalloc peak during forward + backward. The standard op saves the
   B x H x T x T weights (T^2); the memory-efficient op saves O and one log-sum-exp per row
   (T).

    python benchmarks/attention.py [--repeats 30] [--threads 2] [--lengths 256 1024 4096]
                                   [--block-size 128]
"""

import argparse
import statistics
import time
import tracemalloc

import numpy as np


def _timed(forward_backward):
    """(forward wall time, backward wall time, total process CPU time) in seconds."""
    cpu = time.process_time()
    start = time.perf_counter()
    out, backward = forward_backward()
    middle = time.perf_counter()
    backward(out)
    end = time.perf_counter()
    return middle - start, end - middle, time.process_time() - cpu


def _time_rg(rg, fn, arrays, grad):
    tensors = [rg.tensor(a, requires_grad=True) for a in arrays]
    return _timed(lambda: (fn(*tensors, is_causal=True), lambda out: out.backward(grad)))


def _time_torch(torch, arrays, grad):
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    sdpa = torch.nn.functional.scaled_dot_product_attention
    return _timed(lambda: (sdpa(*tensors, is_causal=True), lambda out: out.backward(grad)))


def speed(repeats, threads, shape=(32, 4, 64, 32)):
    import torch

    import retrograd as rg
    import retrograd.nn.functional as F

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(shape).astype(np.float32) for _ in range(3)]
    grad = rng.standard_normal(shape).astype(np.float32)
    runners = {
        "retrograd": lambda: _time_rg(rg, F.scaled_dot_product_attention, arrays,
                                      rg.tensor(grad)),
        "retrograd memory-efficient": lambda: _time_rg(rg, F.memory_efficient_attention, arrays,
                                                       rg.tensor(grad)),
        "torch": lambda: _time_torch(torch, arrays, torch.tensor(grad)),
    }
    times = {name: [] for name in runners}
    for _ in range(3):  # warm-up
        for run in runners.values():
            run()
    for _ in range(repeats):
        for name, run in runners.items():
            times[name].append(run())
    b, h, t, d = shape
    print(f"forward + backward, causal, float32, B={b} H={h} T={t} D={d}, torch threads "
          f"{threads}: median of {repeats} (ms)")
    print(f"{'':28s} {'forward':>8s} {'backward':>9s} {'total':>8s} {'CPU time':>9s}")
    totals, cpu = {}, {}
    for name, runs in times.items():
        fwd = statistics.median(r[0] for r in runs) * 1e3
        bwd = statistics.median(r[1] for r in runs) * 1e3
        totals[name] = statistics.median(r[0] + r[1] for r in runs) * 1e3
        cpu[name] = statistics.median(r[2] for r in runs) * 1e3
        print(f"{name:28s} {fwd:8.2f} {bwd:9.2f} {totals[name]:8.2f} {cpu[name]:9.2f}")
    print(f"ratio retrograd / torch: {totals['retrograd'] / totals['torch']:.2f} wall time, "
          f"{cpu['retrograd'] / cpu['torch']:.2f} CPU time (target <= 1.5)")


def _memory(rg, fn, shape, **kwargs):
    """(bytes saved for backward, bytes of those that are q, k, v, tracemalloc peak of
    forward + backward above the inputs, seconds)."""
    rng = np.random.default_rng(0)
    tensors = [rg.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
               for _ in range(3)]
    grad = rg.tensor(rng.standard_normal(shape).astype(np.float32))
    inputs = {id(t._data) for t in tensors}
    saved = []

    def pack(t):
        saved.append((t.nbytes, id(t._data) in inputs))
        return t

    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    with rg.autograd.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*tensors, is_causal=True, **kwargs)
    out.backward(grad)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return (sum(n for n, _ in saved), sum(n for n, is_input in saved if is_input), peak,
            seconds)


def memory(lengths, block_size, heads=4, dim=32):
    import retrograd as rg
    import retrograd.nn.functional as F

    print(f"\nactivation memory, causal, float32, B=1 H={heads} D={dim}, block_size={block_size}"
          f" (MiB; 'saved' = bytes packed by saved_tensors_hooks, q, k, v included)")
    print(f"{'T':>6s} {'variant':18s} {'saved':>9s} {'of it q,k,v':>12s} {'peak':>9s} "
          f"{'time s':>7s}")
    mib = 1 / 2 ** 20
    for length in lengths:
        shape = (1, heads, length, dim)
        for name, fn, kwargs in (("standard", F.scaled_dot_product_attention, {}),
                                 ("memory-efficient", F.memory_efficient_attention,
                                  {"block_size": block_size})):
            saved, inputs, peak, seconds = _memory(rg, fn, shape, **kwargs)
            print(f"{length:6d} {name:18s} {saved * mib:9.2f} {inputs * mib:12.2f} "
                  f"{peak * mib:9.2f} {seconds:7.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--block-size", type=int, default=128)
    args = parser.parse_args()
    speed(args.repeats, args.threads)
    memory(args.lengths, args.block_size)


if __name__ == "__main__":
    main()
