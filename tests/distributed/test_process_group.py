"""The default process group in a world of one (no launcher), with and without MPI, and its
errors; the tests of several processes launch mpiexec (test_collectives.py)."""

import datetime
import subprocess
import sys
import textwrap

import pytest

import retrograd as rg
import retrograd.distributed as dist
from tests.distributed._mpi import ROOT


@pytest.fixture
def group():
    dist.init_process_group("mpi")
    yield
    dist.destroy_process_group()


def test_a_world_of_one(group):
    assert dist.is_initialized() and dist.is_available()
    assert (dist.get_rank(), dist.get_world_size(), dist.get_backend()) == (0, 1, "mpi")
    t = rg.tensor([1.0, -2.0])
    for op in dist.ReduceOp:
        dist.all_reduce(t, op=op)
    assert t.tolist() == [1.0, -2.0]
    dist.broadcast(t, src=0)
    out = [rg.zeros(2)]
    dist.all_gather(out, t)
    assert out[0].tolist() == [1.0, -2.0]
    objects = [None]
    dist.all_gather_object(objects, {"a": 1})
    assert objects == [{"a": 1}]
    dist.barrier()
    assert dist.all_reduce(t, async_op=True).wait()


def test_collectives_bump_the_version_so_autograd_sees_the_change(group):
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = (y * y).sum()
    with rg.no_grad():
        dist.all_reduce(y)
    with pytest.raises(RuntimeError, match="modified by an inplace operation|version"):
        z.backward()


def test_init_twice_and_use_before_init_are_errors(group):
    with pytest.raises(dist.DistributedError, match="already initialized"):
        dist.init_process_group("mpi")


def test_not_initialized():
    assert not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier,
                 lambda: dist.all_reduce(rg.ones(2))):
        with pytest.raises(dist.DistributedError, match="not initialized.*init_process_group"):
            call()
    with pytest.raises(dist.DistributedError, match="not initialized"):
        dist.destroy_process_group()


@pytest.mark.parametrize("kwargs, match", [
    (dict(backend="nccl"), "unknown backend 'nccl'.*'mpi'"),
    (dict(backend="mpi", timeout=-1), "timeout must be a positive"),
    (dict(backend="mpi", init_method="tcp://10.0.0.1:23456"), "init_method='tcp://"),
    (dict(backend="mpi", world_size=2), "world_size=2 but MPI started this process as rank 0 "
                                        "of a world of 1"),
    (dict(backend="mpi", rank=3), "rank=3"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dist.init_process_group(**kwargs)
    assert not dist.is_initialized()


def test_timeouts_take_timedeltas_and_seconds():
    for timeout, seconds in ((datetime.timedelta(seconds=90), 90.0), (2.5, 2.5), (None, 1800.0)):
        dist.init_process_group("mpi", timeout=timeout)
        assert dist.process_group.default_timeout() == seconds
        dist.destroy_process_group()


def test_bad_collective_arguments(group):
    with pytest.raises(ValueError, match="unknown op 'median'"):
        dist.all_reduce(rg.ones(2), op="median")
    with pytest.raises(TypeError, match="AVG needs a floating-point tensor, got int64"):
        dist.all_reduce(rg.tensor([1, 2]), op=dist.ReduceOp.AVG)
    with pytest.raises(ValueError, match="src=1 is not a rank of this world of 1"):
        dist.broadcast(rg.ones(2), src=1)
    with pytest.raises(ValueError, match="tensor_list must be a list of 1 tensors"):
        dist.all_gather([rg.ones(2), rg.ones(2)], rg.ones(2))
    with pytest.raises(ValueError, match=r"tensor_list\[0\] has shape \(3,\)"):
        dist.all_gather([rg.ones(3)], rg.ones(2))
    with pytest.raises(TypeError, match="expected a retrograd Tensor, got ndarray"):
        dist.all_reduce(rg.ones(2).numpy())
    with pytest.raises(ValueError, match="only the default process group"):
        dist.get_rank(group="workers")


def _python(source, **env):
    import os

    return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


WITHOUT_MPI = """
    import sys
    sys.modules["mpi4py"] = None          # as if mpi4py were not installed
    import retrograd as rg, retrograd.distributed as dist
    print("available", dist.is_mpi_available())
    try:
        dist.init_process_group("mpi")
    except dist.DistributedError as error:
        print("error", error)
    else:
        t = rg.tensor([3.0]); dist.all_reduce(t)
        print("world", dist.get_world_size(), t.tolist())
"""


def test_a_world_of_one_needs_no_mpi():
    done = _python(WITHOUT_MPI)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["available False", "world 1 [3.0]"]


def test_under_a_launcher_missing_mpi_is_an_error_that_says_how_to_install_it():
    done = _python(WITHOUT_MPI, PMI_SIZE="4", PMI_RANK="1")
    assert done.returncode == 0, done.stderr
    assert "error init_process_group: this process is one of 4 started by a launcher, but " \
           "MPI for Python is not installed" in done.stdout
    assert "pip install 'retrograd[distributed]'" in done.stdout


def test_importing_retrograd_does_not_import_mpi():
    done = _python("import sys, retrograd, retrograd.distributed; "
                   "print('mpi4py' in sys.modules)")
    assert done.stdout.strip() == "False", done.stderr
