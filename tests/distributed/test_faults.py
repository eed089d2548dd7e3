"""A rank that dies or hangs: the others end with retrograd's own error naming it, within the
timeout and its grace period, instead of waiting forever (3 processes, mpiexec)."""

import pytest

from tests.distributed._mpi import needs_mpi, run_mpi

PROGRAM = """
    import os, signal, sys, time
    import retrograd as rg
    import retrograd.distributed as dist

    victim, how = int(sys.argv[1]), sys.argv[2]
    dist.init_process_group("mpi", timeout=2)
    rank = dist.get_rank()
    t = rg.ones(4)
    dist.all_reduce(t)                       # all alive: this one completes
    print(f"REDUCED {rank} {t.tolist()}", flush=True)
    # connect every pair of ranks first, as a training run has long done when a rank dies:
    # MPICH sets connections up lazily through its launcher, and a rank killed while one is
    # being set up takes the launcher (and every rank) down with it
    dist.all_gather_object([None] * 3, rank)
    dist.barrier()
    time.sleep(0.2)
    if rank == victim:
        os.kill(os.getpid(), signal.SIGKILL if how == "kill" else signal.SIGSTOP)
    start = time.monotonic()
    try:
        dist.all_reduce(t)
    except dist.DistributedTimeoutError as error:
        print(f"FAILED {rank} {time.monotonic() - start:.1f} {error}", flush=True)
        try:
            dist.barrier()
        except dist.DistributedError as again:
            print(f"AGAIN {rank} {again}", flush=True)
        sys.exit(3)
    print(f"PASSED {rank}", flush=True)
"""


@needs_mpi
@pytest.mark.parametrize("victim, how", [(1, "kill"), (2, "stop")])
def test_the_other_ranks_name_the_dead_or_hung_one(victim, how, tmp_path):
    # killed: the dead rank's place is kept for 8 s (linger) and MPICH's -disable-auto-cleanup
    # keeps the others running, so that they, not the launcher, must notice and report it;
    # stopped (hung): the launcher cleans up the stopped rank once the others have failed
    killed = how == "kill"
    run = run_mpi(PROGRAM, 3, tmp_path, args=(victim, how), keep_going=killed,
                  linger=8 if killed else 0, timeout=60)
    assert len(run.lines("REDUCED ")) == 3, run.output
    failed = run.lines("FAILED ")
    survivors = [r for r in range(3) if r != victim]
    assert [int(line.split()[1]) for line in failed] == survivors, run.output
    for line in failed:
        _, rank, seconds, message = line.split(" ", 3)
        # timeout 2 s, then a grace period of max(1, 2 / 2) = 1 s for the pings' answers
        assert 2.0 <= float(seconds) < 8.0, line
        other = next(r for r in survivors if r != int(rank))
        assert message == (f"all_reduce did not complete within 2 s on rank {rank} of 3: "
                           f"rank(s) {victim} did not answer (dead, hung, or stuck outside "
                           f"retrograd.distributed); rank(s) {other} answered"), line
    again = run.lines("AGAIN ")
    assert len(again) == 2 and all("the process group failed earlier" in a for a in again)
    assert not run.lines("PASSED") and run.returncode != 0


ENDS_WITH_AN_ERROR = """
    import time
    import retrograd as rg
    import retrograd.distributed as dist

    dist.init_process_group("mpi", timeout=60)
    rank = dist.get_rank()
    dist.all_reduce(rg.ones(2))
    if rank == 1:
        raise ValueError("a bug on rank 1")
    start = time.monotonic()
    try:
        dist.all_reduce(rg.ones(2))
    except dist.DistributedError as error:
        print(f"FAILED {rank} {time.monotonic() - start:.1f} {error}", flush=True)
        raise SystemExit(3)
"""


@needs_mpi
def test_a_rank_that_ends_with_an_error_fails_the_others_at_once(tmp_path):
    run = run_mpi(ENDS_WITH_AN_ERROR, 3, tmp_path, keep_going=True, timeout=60)
    failed = run.lines("FAILED ")
    assert [int(line.split()[1]) for line in failed] == [0, 2], run.output
    for line in failed:
        _, rank, seconds, message = line.split(" ", 3)
        assert float(seconds) < 5, line          # not the 60 s timeout
        assert message == (f"all_reduce cannot complete on rank {rank} of 3: rank 1 ended its "
                           f"program with the process group still initialized (an error on "
                           f"that rank? see its output)")
    assert "ValueError: a bug on rank 1" in run.ranks[1]
