"""Data-parallel training throughput on this machine: samples/s with 1 and 2 processes.

Workloads (one training step each: forward, cross-entropy, backward with the gradients'
all-reduce, SGD with momentum), on the shipped digits (8x8, 1,438 training images), each
process taking its own shard (DistributedSampler) and the same batch per process
(--batch, 32 by default as `retrograd train` on digits):
- the `mlp` model of `retrograd train` (64-256-128-10), DistributedDataParallel;
- the digits ResNet (`resnet-digits`, the model `retrograd train` trains), its BatchNorms
  made SyncBatchNorm, DistributedDataParallel with broadcast_buffers=False (the running
  statistics are equal on every rank already);
- the same ResNet with plain BatchNorm (each rank's own batch statistics, as `retrograd
  train` without --sync-bn), broadcast_buffers=False: what SyncBatchNorm's exchanges cost.

Each configuration runs under mpiexec (the one beside this Python, which the MPICH wheel
installs): 1 process and 2 processes with one BLAS thread each (OMP_NUM_THREADS=1 and
retrograd.set_num_threads(1)), and, for context, 1 process with 2 BLAS threads. A round
launches every configuration in turn (so that the machine's drift hits all of them alike);
a launch warms each workload up, then times --steps pairs of steps, one with gradient
synchronization and one inside `ddp.no_sync()`, alternating. A step's time is the slowest
rank's. Printed, from the medians over all rounds of the per-round medians:
- samples/s = processes x batch / (median step time with synchronization);
- speedup = samples/s / samples/s of 1 process with 1 thread, and scaling efficiency =
  speedup / cores used (for N processes of one thread: samples/s at N / (N x samples/s at 1));
- communication share = (median step with sync - median step in no_sync) / median step with
  sync: the share of a step spent all-reducing gradients, waiting included (what overlaps
  backward is not counted; SyncBatchNorm's forward statistics are exchanged in both kinds of
  step and are not counted either).

    python benchmarks/distributed.py [--rounds 5] [--steps 20] [--batch 32]

Needs the `distributed` and `train` extras (mpi4py, the MPICH wheel, scikit-learn's digits).
"""

import argparse
import contextlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import time

from _bench import cpu_model   # before NumPy: sets the BLAS threads unless the launch did

# (label, processes, BLAS threads per process); the first is the baseline of the efficiency
CONFIGURATIONS = (("1 process, 1 thread", 1, 1), ("2 processes, 1 thread each", 2, 1),
                  ("1 process, 2 threads", 1, 2))
WORKLOADS = ("MLP 64-256-128-10", "digits ResNet, SyncBatchNorm", "digits ResNet, BatchNorm")
WARM_UP_STEPS = 2


def _build(name):
    """The model of a workload, wrapped in DistributedDataParallel."""
    from retrograd import nn
    from retrograd.models import build_model
    from retrograd.nn.parallel import DistributedDataParallel

    if name == WORKLOADS[0]:
        return DistributedDataParallel(build_model("mlp", 1, 8, 10))
    if name == WORKLOADS[2]:     # per-rank statistics (plain BatchNorm, PyTorch DDP's default)
        return DistributedDataParallel(build_model("resnet-digits", 1, 8, 10),
                                       broadcast_buffers=False)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(build_model("resnet-digits", 1, 8, 10))
    # SyncBatchNorm keeps the running statistics equal on every rank; broadcasting them before
    # a forward (which DDP does only after a synchronizing step) would burden the no_sync
    # steps alone and skew the communication share
    return DistributedDataParallel(model, broadcast_buffers=False)


def _shard_batches(batch):
    """This rank's batches of the normalized digits, cut from its DistributedSampler shard
    (the last, shorter batch dropped), as (x, y) tensors."""
    import retrograd as rg
    from retrograd.datasets import Digits
    from retrograd.utils.data import DistributedSampler

    digits = Digits(train=True)
    images = (digits.data - digits.data.mean()) / digits.data.std()
    order = list(DistributedSampler(digits, shuffle=True, seed=0))
    count = len(order) // batch
    if count == 0:
        sys.exit(f"distributed: --batch {batch} is larger than a rank's shard of "
                 f"{len(order)} images")
    batches = []
    for i in range(count):
        index = order[i * batch:(i + 1) * batch]
        batches.append((rg.tensor(images[index][:, None]), rg.tensor(digits.targets[index])))
    return batches


def _stepper(ddp, batches):
    """step(sync) -> seconds: one training step on the next batch, its gradients all-reduced
    when ``sync``, else computed inside ``ddp.no_sync()``."""
    import retrograd as rg

    optimizer = rg.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    position = [0]

    def step(sync):
        x, y = batches[position[0] % len(batches)]
        position[0] += 1
        start = time.perf_counter()
        optimizer.zero_grad()
        with contextlib.nullcontext() if sync else ddp.no_sync():
            loss = rg.nn.functional.cross_entropy(ddp(x), y)
            loss.backward()
        optimizer.step()
        return time.perf_counter() - start
    return step


def _time_workload(name, batch, steps):
    """{"sync": [seconds], "no_sync": [seconds]} of this rank, pairs of steps alternating."""
    import retrograd as rg

    rg.manual_seed(0)
    step = _stepper(_build(name), _shard_batches(batch))
    for _ in range(WARM_UP_STEPS):
        step(True)
        step(False)
    times = {"sync": [], "no_sync": []}
    for _ in range(steps):
        times["sync"].append(step(True))
        times["no_sync"].append(step(False))
    return times


def _worker(threads, batch, steps):
    """Under mpiexec: time every workload; rank 0 prints, as JSON, each workload's step times
    (the slowest rank's, step by step) and the MPI library's name."""
    import retrograd as rg
    import retrograd.distributed as dist

    rg.set_num_threads(threads)
    dist.init_process_group(backend="mpi")
    results = {}
    for name in WORKLOADS:
        mine = _time_workload(name, batch, steps)
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, mine)
        results[name] = {kind: [max(rank[kind][i] for rank in everyone) for i in range(steps)]
                         for kind in mine}
    if dist.get_rank() == 0:
        from mpi4py import MPI

        library = " ".join(MPI.Get_library_version().splitlines()[0].split())
        print(json.dumps({"mpi": library, "world_size": dist.get_world_size(),
                          "times": results}))
    dist.destroy_process_group()


def _mpiexec():
    """The mpiexec beside this Python (the MPICH wheel puts it there), else the one on
    PATH."""
    beside = pathlib.Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        sys.exit("distributed: no mpiexec beside this Python or on PATH; install the "
                 "distributed extra: pip install -e '.[train,fast,distributed]'")
    return found


def _launch(processes, threads, batch, steps):
    """One configuration's run under mpiexec: rank 0's JSON result."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    command = [_mpiexec(), "-n", str(processes), sys.executable, __file__, "--worker",
               "--threads", str(threads), "--batch", str(batch), "--steps", str(steps)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                         timeout=600)
    if out.returncode:
        sys.exit(f"distributed: {' '.join(command)} failed (exit {out.returncode}):\n"
                 f"{out.stdout}{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _round_medians(runs):
    """{(configuration, workload, kind): [per-round median seconds]} of the launches."""
    medians = {}
    for label, result in runs:
        for name, times in result["times"].items():
            for kind, seconds in times.items():
                medians.setdefault((label, name, kind), []).append(statistics.median(seconds))
    return medians


def _report(medians, batch):
    """Print samples/s, speedup, scaling efficiency and communication share per workload."""
    print(f"{'workload':<30}{'configuration':<28}{'samples/s':>10}{'per round':>14}"
          f"{'speedup':>9}{'efficiency':>11}{'comm share':>11}")
    for name in WORKLOADS:
        baseline = None
        for label, processes, threads in CONFIGURATIONS:
            sync = medians[(label, name, "sync")]
            step = statistics.median(sync)
            no_sync = statistics.median(medians[(label, name, "no_sync")])
            rate = processes * batch / step
            baseline = baseline or rate
            speedup = rate / baseline
            per_round = [processes * batch / s for s in sync]
            spread = f"{min(per_round):.0f}-{max(per_round):.0f}"
            print(f"{name:<30}{label:<28}{rate:10.0f}{spread:>14}{speedup:9.2f}"
                  f"{speedup / (processes * threads):11.2f}{(step - no_sync) / step:11.1%}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32, help="samples per process per step")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.threads, args.batch, args.steps)
        return
    print(f"{cpu_model()}, {os.cpu_count()} CPUs; per-process batch {args.batch}, float32; "
          f"{args.rounds} rounds x {args.steps} step pairs; load average {_load()}")
    runs = []
    for _ in range(args.rounds):
        for label, processes, threads in CONFIGURATIONS:
            runs.append((label, _launch(processes, threads, args.batch, args.steps)))
    print(f"MPI: {runs[0][1]['mpi']}")
    _report(_round_medians(runs), args.batch)
    print(f"speedup = samples/s / samples/s of 1 process, 1 thread; efficiency = speedup / "
          f"cores used (processes x threads); comm share = (step with gradient sync - step in "
          f"no_sync) / step with sync (1 process: no all-reduce, the noise floor); load average "
          f"{_load()}")


if __name__ == "__main__":
    main()
