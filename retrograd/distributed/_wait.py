"""Waiting for an MPI request with a deadline, and naming the ranks that did not come.

A collective completes only when every rank has joined it. ``wait`` polls the request
(``Test``, which also drives MPI's progress) with a short back-off, and answers the other
ranks' liveness pings while it waits. When the deadline passes it pings every other rank on
a communicator of its own and listens for a grace period: ranks that are alive and waiting
(in this or any collective) answer; a rank that died, is stopped, or computes without
calling into retrograd.distributed does not. The error names those ranks. If the request
completes during the grace period (a slow rank, not a lost one), wait returns normally.

A rank that ends its program with the group still initialized sends every other rank an
exit notice (announce_exit, from process_group's exit handler). A rank waiting in a
collective that has not completed after a short while checks for such notices and raises at
once, naming the rank that ended, instead of waiting out the timeout.
"""

import time

from retrograd.distributed.process_group import (_MPI, GROUP, DistributedError,
                                                 DistributedTimeoutError)

__all__ = ["wait", "fail", "announce_exit"]

_PING, _PONG, _EXIT = 1, 2, 3
_EXIT_CHECK_AFTER = 0.5  # seconds a collective waits before looking for exit notices
_SPIN_SECONDS = 2e-3     # poll without sleeping this long first: a sleep costs ~60 us at
                         # least, and most collectives of a step complete within it
_LONGEST_SLEEP = 1e-3    # seconds between polls once backed off
_sends = []              # pending answers (mpi4py requests must outlive the send)


def wait(request, what):
    """Wait for ``request`` (an mpi4py Request) up to the group's timeout; ``what`` names the
    collective for the error."""
    if GROUP.failed is not None:
        raise DistributedError(f"{what}: the process group failed earlier ({GROUP.failed})")
    start = time.monotonic()
    deadline = start + GROUP.timeout
    naps = 0
    while not _test(request, what):
        _answer_pings()
        now = time.monotonic()
        if now - start > _SPIN_SECONDS:
            if now > deadline:
                _timed_out(request, what)
                return
            if now - start > _EXIT_CHECK_AFTER and _peer_ended(request, what):
                return
            naps += 1
            time.sleep(min(_LONGEST_SLEEP, 1e-5 * naps))


def _test(request, what):
    try:
        return request.Test()
    except _MPI[0].Exception as error:
        fail(DistributedError(f"{what} failed on rank {GROUP.rank} of {GROUP.world_size}: "
                              f"MPI reported {error.Get_error_string()!r}"))


def _answer_pings():
    MPI, control = _MPI[0], GROUP.control
    status = MPI.Status()
    while control.Iprobe(source=MPI.ANY_SOURCE, tag=_PING, status=status):
        control.recv(source=status.Get_source(), tag=_PING)
        _sends.append(control.isend(GROUP.rank, dest=status.Get_source(), tag=_PONG))
    _sends[:] = [request for request in _sends if not request.Test()]


def _peer_ended(request, what):
    """Raise if another rank announced that its program ended (returns True instead if the
    request completed after all)."""
    MPI, status = _MPI[0], _MPI[0].Status()
    if not GROUP.control.Iprobe(source=MPI.ANY_SOURCE, tag=_EXIT, status=status):
        return False
    if _test(request, what):
        return True
    ended = GROUP.control.recv(source=status.Get_source(), tag=_EXIT)
    fail(DistributedError(
        f"{what} cannot complete on rank {GROUP.rank} of {GROUP.world_size}: rank {ended} "
        f"ended its program with the process group still initialized (an error on that "
        f"rank? see its output)"))


def announce_exit():
    """Tell every other rank that this rank's program is ending (waits up to a second for
    the notices to leave)."""
    others = [r for r in range(GROUP.world_size) if r != GROUP.rank]
    notices = [GROUP.control.isend(GROUP.rank, dest=r, tag=_EXIT) for r in others]
    give_up = time.monotonic() + 1.0
    while notices and time.monotonic() < give_up:
        notices = [n for n in notices if not n.Test()]
        time.sleep(_LONGEST_SLEEP)


def _timed_out(request, what):
    """Ping the other ranks, listen for a grace period, and raise naming the silent ones
    (returns instead if ``request`` completes meanwhile)."""
    MPI, control = _MPI[0], GROUP.control
    others = [r for r in range(GROUP.world_size) if r != GROUP.rank]
    pings = [control.isend(GROUP.rank, dest=r, tag=_PING) for r in others]
    answered, status = set(), MPI.Status()
    grace_end = time.monotonic() + min(10.0, max(1.0, GROUP.timeout / 2))
    while time.monotonic() < grace_end and len(answered) < len(others):
        if _test(request, what):
            return
        _answer_pings()
        while control.Iprobe(source=MPI.ANY_SOURCE, tag=_PONG, status=status):
            answered.add(control.recv(source=status.Get_source(), tag=_PONG))
        time.sleep(_LONGEST_SLEEP)
    _sends.extend(pings)
    silent = [r for r in others if r not in answered]
    fail(DistributedTimeoutError(_timeout_message(what, silent, sorted(answered))))


def _timeout_message(what, silent, answered):
    head = (f"{what} did not complete within {GROUP.timeout:g} s on rank {GROUP.rank} of "
            f"{GROUP.world_size}")
    if silent:
        ranks = ", ".join(map(str, silent))
        alive = (f"; rank(s) {', '.join(map(str, answered))} answered" if answered else "")
        return (f"{head}: rank(s) {ranks} did not answer (dead, hung, or stuck outside "
                f"retrograd.distributed){alive}")
    return (f"{head}: every other rank answered, so all are alive but not all joined this "
            f"collective (the ranks' programs diverged: different models, batch counts or "
            f"collectives)")


def fail(error):
    """Mark the group failed (later collectives raise at once; MPI is not finalized at exit,
    which could hang with a dead peer) and raise ``error``."""
    GROUP.failed = str(error)
    raise error
