"""The collectives on 2 and 3 processes under mpiexec: every result compared with the same
reduction computed directly from all ranks' inputs (which every rank can rebuild: rank r's
input is drawn from seed r), in every dtype, float16 and bfloat16 included."""

import pytest

from tests.distributed._mpi import needs_mpi, rank_reports, run_mpi

PROGRAM = """
    import numpy as np
    import retrograd as rg
    import retrograd.distributed as dist
    from retrograd.distributed.nn.functional import all_reduce as differentiable_all_reduce

    dist.init_process_group("mpi", timeout=60)
    rank, world = dist.get_rank(), dist.get_world_size()
    report = {}

    def data(r, dtype, shape=(3, 4)):
        values = np.random.default_rng(r).standard_normal(shape) * 4
        return values.astype(np.int64) if dtype == "int64" else values

    def check(name, got, want):
        report[name] = float(np.max(np.abs(np.asarray(got, np.float64) - want)))

    reducers = {"SUM": np.sum, "AVG": np.mean, "MAX": np.max, "MIN": np.min, "PRODUCT": np.prod}
    for dtype in ("float64", "float32", "int64"):
        for op, reduce in reducers.items():
            if op == "AVG" and dtype == "int64":
                continue
            t = rg.tensor(data(rank, dtype)).to(getattr(rg, dtype))
            dist.all_reduce(t, op=dist.ReduceOp[op])
            everyone = np.stack([data(r, dtype) for r in range(world)]).astype(dtype)
            check(f"all_reduce {op} {dtype}", t.numpy(), reduce(everyone, axis=0))

    # half precision: reduced in float32, rounded once back (the same as that, bit for bit)
    for dtype in ("float16", "bfloat16"):
        for op in ("SUM", "AVG", "MAX"):
            rg_dtype = getattr(rg, dtype)
            t = rg.tensor(data(rank, "float64")).to(rg_dtype)
            dist.all_reduce(t, op=dist.ReduceOp[op])
            widened = np.stack([rg.tensor(data(r, "float64")).to(rg_dtype).float().numpy()
                                for r in range(world)])
            want = rg.tensor(reducers[op](widened, axis=0).astype(np.float32)).to(rg_dtype)
            check(f"all_reduce {op} {dtype}", (t.float() - want.float()).numpy(), 0.0)

    # a non-contiguous tensor is reduced in place through its view
    base = rg.tensor(data(rank, "float64"))
    view = base.t()
    dist.all_reduce(view)
    check("all_reduce transposed view", base.numpy(),
          np.sum([data(r, "float64") for r in range(world)], axis=0))

    work = dist.all_reduce(rg.tensor(data(rank, "float64")), async_op=True)
    report["async wait"] = float(work.wait())

    for src in range(world):
        t = rg.tensor(data(rank, "float32")).float()
        dist.broadcast(t, src=src)
        check(f"broadcast from {src}", t.numpy(), data(src, "float32").astype(np.float32))

    parts = [rg.zeros(2, 3, dtype=rg.bfloat16) for _ in range(world)]
    dist.all_gather(parts, rg.tensor(data(rank, "float64", (2, 3))).to(rg.bfloat16))
    check("all_gather bfloat16", np.stack([p.float().numpy() for p in parts]),
          np.stack([rg.tensor(data(r, "float64", (2, 3))).to(rg.bfloat16).float().numpy()
                    for r in range(world)]))

    objects = [None] * world
    dist.all_gather_object(objects, {"rank": rank, "text": "x" * rank})
    report["all_gather_object"] = objects == [{"rank": r, "text": "x" * r} for r in range(world)]
    shared = [{"from": 0}, [1, 2]] if rank == 0 else [None, None]
    dist.broadcast_object_list(shared, src=0)
    report["broadcast_object_list"] = shared == [{"from": 0}, [1, 2]]

    # the differentiable all-reduce: y = sum_r x_r, L = sum_r sum(w_r * y); dL/dx_r = sum_r w_r
    x = rg.tensor(data(rank, "float64"), requires_grad=True)
    y = differentiable_all_reduce(x * 2.0)
    (y * rg.tensor(data(100 + rank, "float64"))).sum().backward()
    check("differentiable all_reduce forward", y.detach().numpy(),
          2 * np.sum([data(r, "float64") for r in range(world)], axis=0))
    check("differentiable all_reduce backward", x.grad.numpy(),
          2 * np.sum([data(100 + r, "float64") for r in range(world)], axis=0))

    dist.barrier()
    print(f"RESULT {rank} {world} {report!r}", flush=True)
    dist.destroy_process_group()
"""


@needs_mpi
@pytest.mark.parametrize("processes", [2, 3])
def test_collectives_equal_the_direct_reduction(processes, tmp_path):
    run = run_mpi(PROGRAM, processes, tmp_path, timeout=120)
    for rank, report in rank_reports(run, processes).items():
        assert report.pop("all_gather_object") and report.pop("broadcast_object_list")
        assert report.pop("async wait") == 1.0
        worst = {name: diff for name, diff in report.items()
                 if diff > (1e-12 if "float64" in name or "int64" in name else
                            1e-5 if "float32" in name or "broadcast" in name else 0.0)
                 and not name.startswith(("all_reduce PRODUCT", "differentiable",
                                          "all_reduce transposed"))}
        assert not worst, (rank, worst)
        for name in ("all_reduce transposed view", "differentiable all_reduce forward",
                     "differentiable all_reduce backward"):
            assert report[name] <= 1e-12, (rank, name, report[name])
        assert len(report) == 24 + processes  # every check reported
