"""The measurement behind the thread policy of the compiled kernels (retrograd/_numba/policy.py):
a compiled kernel run on both cores right after a matrix product, with OpenBLAS's default
idle spin and with a short one (OPENBLAS_THREAD_TIMEOUT=4), against the serial kernel; and
what the short spin costs the matrix products themselves (the MLP training step of
vs_torch.py, retrograd alone).

Each spin setting runs in its own child process (OpenBLAS reads the variable when NumPy loads
it). Printed: median microseconds of a 64K-element SGD-with-momentum update, serial and
parallel, alone and right after a (128x784)@(784x256) GEMM, and the MLP step's median.

    python benchmarks/kernel_threads.py [--repeats 200]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from _bench import cpu_model, median_step_seconds   # before NumPy: 2 BLAS threads
import numpy as np

SIZE = 1 << 16


def _update_times(repeats):
    """{(driver, after_gemm): median us} of the compiled SGD update."""
    from retrograd import _fast

    kernels = _fast.compiled("optim")
    f = np.float32
    p, g, buf = (np.random.default_rng(i).random(SIZE, np.float32) for i in range(3))
    a = np.random.default_rng(3).random((128, 784), np.float32)
    w = np.random.default_rng(4).random((784, 256), np.float32)
    scalars = (f(0.01), f(0), f(0.9), False, f(1), False, False)
    times = {}
    for name in ("serial", "parallel"):
        run = getattr(kernels._sgd, name)
        run(p, g, buf, *scalars)
        for after_gemm in (False, True):
            samples = []
            for _ in range(repeats):
                if after_gemm:
                    a @ w
                start = time.perf_counter()
                run(p, g, buf, *scalars)
                samples.append(time.perf_counter() - start)
            times[f"{name} {'after a GEMM' if after_gemm else 'alone'}"] = \
                statistics.median(samples) * 1e6
    return times


def _mlp_step_ms(steps=200):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import vs_torch

    import retrograd as rg

    step = vs_torch.WORKLOADS["MLP 784-256-256-10, b128, SGD"](rg)
    step()
    return median_step_seconds(step, steps) * 1e3


def _worker(repeats):
    print(json.dumps({"update_us": _update_times(repeats), "mlp_ms": _mlp_step_ms()}))


def _run(spin, repeats):
    env = dict(os.environ)
    env.pop("OPENBLAS_THREAD_TIMEOUT", None)
    if spin is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = spin
    out = subprocess.run([sys.executable, __file__, "--worker", "--repeats", str(repeats)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.repeats)
        return
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; 2 BLAS threads, 2 Numba threads; "
          f"64K-element SGD update, median of {args.repeats} (us)")
    results = {label: _run(spin, args.repeats)
               for label, spin in (("OpenBLAS default spin", None),
                                   ("OPENBLAS_THREAD_TIMEOUT=4", "4"))}
    cases = list(next(iter(results.values()))["update_us"])
    print(f"{'':28}" + "".join(f"{case:>24}" for case in cases) + f"{'MLP step ms':>14}")
    for label, result in results.items():
        print(f"{label:28}" + "".join(f"{result['update_us'][c]:24.0f}" for c in cases)
              + f"{result['mlp_ms']:14.2f}")


if __name__ == "__main__":
    main()
