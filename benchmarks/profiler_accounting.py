"""Do the profiler's rows add up to the time a training step takes without it?

A ResNet-8 SGD training step (batch 32, 3x32x32, 2 threads, float32) is timed unprofiled
and profiled, interleaved for ``--rounds`` rounds. For each profiled step the rows' self
times are summed (kernels, optimizer steps and the measured "[framework overhead]" rows);
the result is the median sum over the median unprofiled wall time, which issue 13's
acceptance holds to within 10% of 1. Also printed: the overhead rows' share and the
profiled step's own wall time.

    python benchmarks/profiler_accounting.py [--rounds 5] [--steps 5] [--batch-size 32]
"""

import argparse
import statistics
import time

import _bench  # noqa: F401  (first: it sets the BLAS threads before NumPy loads)

import retrograd as rg  # noqa: E402
from retrograd.models.resnet import resnet8  # noqa: E402
from retrograd.nn import functional as F  # noqa: E402

from _bench import step_seconds  # noqa: E402


def _train_step(model, optimizer, x, target):
    optimizer.zero_grad()
    F.cross_entropy(model(x), target).backward()
    optimizer.step()


def _profiled(step, steps):
    """(sum of self times, overhead rows, wall) per step, in seconds."""
    found = []
    for _ in range(steps):
        start = time.perf_counter()
        with rg.profiler.profile() as prof:
            step()
        wall = time.perf_counter() - start
        rows = prof.key_averages()
        overhead = sum(r.self_cpu_time_total for r in rows if r.key == "[framework overhead]")
        found.append((rows.self_cpu_time_total / 1e6, overhead / 1e6, wall))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    rg.manual_seed(0)
    model = resnet8(num_classes=10)
    optimizer = rg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, target = rg.randn(args.batch_size, 3, 32, 32), rg.randint(0, 10, (args.batch_size,))

    def step():
        _train_step(model, optimizer, x, target)

    for _ in range(3):
        step()
    walls, sums, overheads, profiled_walls = [], [], [], []
    for r in range(args.rounds):
        walls += step_seconds(step, args.steps)
        for total, overhead, wall in _profiled(step, args.steps):
            sums.append(total)
            overheads.append(overhead)
            profiled_walls.append(wall)
        print(f"round {r + 1}: unprofiled median {1e3 * statistics.median(walls):.1f} ms, "
              f"rows add up to {1e3 * statistics.median(sums):.1f} ms")
    wall, total = statistics.median(walls), statistics.median(sums)
    print(f"\nResNet-8 SGD step, batch {args.batch_size}, 3x32x32, 2 threads:")
    print(f"  unprofiled wall (median of {len(walls)}): {1e3 * wall:.1f} ms")
    print(f"  profiled: rows add up to {1e3 * total:.1f} ms (overhead rows "
          f"{1e3 * statistics.median(overheads):.1f} ms), the profiled step's wall "
          f"{1e3 * statistics.median(profiled_walls):.1f} ms")
    print(f"  rows / unprofiled wall = {total / wall:.3f} (acceptance: within 10% of 1)")


if __name__ == "__main__":
    main()
