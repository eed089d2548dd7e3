"""Old code against new code: is a change free of slowdown? (DEVELOPERS.md, "No slowdown")

Times the same retrograd workloads with two source trees of retrograd, each in its own child
process (PYTHONPATH points it at its tree), alternating old, new, old, new... for ``--rounds``
rounds, so that both see the same machine. Each child runs every workload ``--repeats`` times
and reports medians; the result per workload is the median over the rounds of each version,
and the ratio new / old. "No slowdown" means every ratio is at most 1.03.

Workloads (the figures of benchmarks/overhead.py, cnn.py and transformer.py, retrograd only):
per-op forward + backward of chains of 2,000 tiny ops (mul, tanh, add+mul on 1x1, matmul on
16x16), a conv2d 3x3 64->64 forward + backward, LeNet and ResNet-8 SGD training steps, and a
2-layer pre-norm Transformer encoder AdamW training step.

    git worktree add /tmp/old HEAD      # or any copy of the old tree
    python benchmarks/compare_versions.py /tmp/old [--new .] [--rounds 5] [--repeats 7]
                                          [--only overhead]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
LIMIT = 1.03


def _overhead_workloads(rg, n_ops):
    import overhead

    rng = np.random.default_rng(0)
    w = rg.tensor(np.linalg.qr(rng.standard_normal((16, 16)))[0].astype(np.float32))
    workloads = {}
    for name, (shape, step) in overhead._cases(rg, rg.tensor, w).items():
        data = rng.standard_normal(shape).astype(np.float32) * 0.1

        def run(data=data, step=step):
            forward, backward = overhead._time_chain(
                lambda: rg.tensor(data, requires_grad=True), step, n_ops, 1,
                lambda loss: loss.backward())
            return forward + backward

        workloads[f"overhead {name} (us/op, fwd+bwd)"] = run
    return workloads


def _cnn_workloads(rg):
    import cnn

    workloads = {}
    for case in cnn.CASES:
        if not (case.is_step or case.name.startswith("conv2d 3x3 64->64")):
            continue
        forward, second = case.build(rg)
        if case.is_step:
            workloads[case.name + " (ms)"] = lambda step=second: _seconds(step) * 1e3
        else:
            (g,) = cnn._arrays(2, tuple(forward().shape))
            g = rg.tensor(g)
            workloads[case.name + " fwd+bwd (ms)"] = (
                lambda f=forward, leaves=second, g=g: _seconds(lambda: _backward(f, leaves, g))
                * 1e3)
    return workloads


def _transformer_workload(rg):
    import transformer as tr

    rg.manual_seed(0)
    layer = rg.nn.TransformerEncoderLayer(tr.D_MODEL, tr.HEADS, tr.FFN, dropout=0.0,
                                          batch_first=True, norm_first=True)
    model = rg.nn.TransformerEncoder(layer, tr.LAYERS, norm=rg.nn.LayerNorm(tr.D_MODEL))
    rng = np.random.default_rng(0)
    x = rg.tensor(rng.standard_normal((tr.BATCH, tr.SEQ, tr.D_MODEL)).astype(np.float32))
    target = rg.tensor(rng.standard_normal((tr.BATCH, tr.SEQ, tr.D_MODEL)).astype(np.float32))
    mask = rg.nn.Transformer.generate_square_subsequent_mask(tr.SEQ)
    step = tr._step_runner(rg, model, rg.optim.AdamW(model.parameters(), lr=1e-4), x, target,
                           mask)
    return {"transformer encoder train step (ms)": lambda: step()[0] * 1e3}


def _backward(forward, leaves, g):
    for t in leaves:
        t.grad = None
    forward().backward(g)


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _worker(repeats, n_ops, only):
    """In a child process: every workload of the retrograd found on sys.path whose name
    contains ``only``; prints JSON."""
    sys.path.insert(0, HERE)
    import retrograd as rg

    workloads = {**_overhead_workloads(rg, n_ops), **_cnn_workloads(rg),
                 **_transformer_workload(rg)}
    results = {}
    for name, run in workloads.items():
        if only not in name:
            continue
        run()  # warm-up: allocations, BLAS threads
        results[name] = statistics.median(run() for _ in range(repeats))
    print(json.dumps({"retrograd": os.path.dirname(os.path.dirname(rg.__file__)),
                      "results": results}))


def _run(tree, repeats, n_ops, only):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                          "--repeats", str(repeats), "--ops", str(n_ops), "--only", only],
                         capture_output=True, text=True, check=True, env=env, cwd=HERE)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    if os.path.realpath(report["retrograd"]) != os.path.realpath(tree):
        raise RuntimeError(f"compare_versions: the child imported retrograd from "
                           f"{report['retrograd']}, not from {tree}")
    return report["results"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", nargs="?", help="source tree of the old version")
    parser.add_argument("--new", default=os.path.dirname(HERE), help="tree of the new version")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--only", default="", help="run only workloads whose name contains this")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args.repeats, args.ops, args.only)
    if args.old is None:
        parser.error("the old tree is required")
    per_round = {"old": [], "new": []}
    for r in range(args.rounds):
        for version in ("old", "new"):
            per_round[version].append(_run(getattr(args, version), args.repeats, args.ops,
                                           args.only))
        print(f"round {r + 1}/{args.rounds} done (load {os.getloadavg()[0]:.2f})", flush=True)
    print(f"\nmedians of {args.rounds} interleaved rounds x {args.repeats} runs; old "
          f"{args.old}, new {args.new}")
    print(f"{'workload':<52}{'old':>9}{'new':>9}{'new/old':>9}  per-round ratios")
    worst = 0.0
    for name in per_round["old"][0]:
        old = statistics.median(r[name] for r in per_round["old"])
        new = statistics.median(r[name] for r in per_round["new"])
        rounds = [n[name] / o[name] for o, n in zip(per_round["old"], per_round["new"])]
        worst = max(worst, new / old)
        print(f"{name:<52}{old:9.2f}{new:9.2f}{new / old:9.3f}  "
              f"{' '.join(f'{x:.2f}' for x in rounds)}")
    verdict = "no slowdown" if worst <= LIMIT else "SLOWER"
    print(f"\nworst ratio {worst:.3f}: {verdict} (limit {LIMIT})")


if __name__ == "__main__":
    main()
