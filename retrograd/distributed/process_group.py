"""The default process group: which process this is (rank), how many there are (world size),
and the MPI communicators the collectives use, with PyTorch's names
(``torch.distributed.init_process_group`` and friends).

MPI is the engine (mpi4py over the MPICH or Open MPI wheel, ``pip install
'retrograd[distributed]'``), started by ``mpiexec -n N python train.py`` (or ``srun`` under
Slurm): every process runs the same program, and ``init_process_group(backend="mpi")`` joins
them. Run without a launcher, the program is one process of a world of size 1, and that works
without MPI installed: the collectives then return their input. Under a launcher that starts
several processes, MPI is required, and its absence is an error that says how to install it.

Every collective waits with a deadline (``timeout``, 30 minutes by default as in PyTorch):
a rank that died or hangs makes the others raise ``DistributedError`` naming it instead of
waiting forever (_wait.py). After such an error the group is marked failed: later
collectives raise at once, and MPI is not finalized at exit (finalizing with a dead peer
can hang), so the process ends with the error.

A rank whose program ends while its group is still initialized (an uncaught exception, a
``sys.exit`` on an error; a program that finishes normally calls destroy_process_group)
tells the other ranks so on its way out, without finalizing MPI: a rank waiting for it in a
collective then raises at once, naming it, instead of waiting out the timeout.
"""

import atexit
import datetime
import os

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "is_available",
           "is_mpi_available", "get_rank", "get_world_size", "get_backend", "DistributedError",
           "DistributedTimeoutError", "default_timeout", "check_group", "GROUP"]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
BACKENDS = ("mpi",)
# environment variables by which launchers tell a process the size of its world
_LAUNCHER_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")


class DistributedError(RuntimeError):
    """A collective or the process group failed: a rank died or hangs, the ranks disagree
    (model structure, shapes), or the group is used wrongly."""


class DistributedTimeoutError(DistributedError, TimeoutError):
    """A collective did not complete within the process group's timeout."""


class _Group:
    """The state of the default process group (one per process)."""

    def __init__(self):
        self.clear()

    def clear(self):
        self.initialized = False
        self.rank, self.world_size = 0, 1
        self.comm = self.control = None   # MPI communicators (None in a world of one)
        self.timeout = DEFAULT_TIMEOUT.total_seconds()
        self.failed = None                # the message of the error that broke the group
        self.backend = None


GROUP = _Group()
_MPI = []          # the mpi4py.MPI module once imported (MPI is initialized on import)


def is_available():
    """True: retrograd.distributed works in every install (a world of one needs no MPI)."""
    return True


def is_mpi_available():
    """Whether mpi4py (and an MPI library under it) can be imported here."""
    try:
        _mpi()
    except ImportError:
        return False
    return True


def _mpi():
    if not _MPI:
        import mpi4py

        mpi4py.rc.finalize = False    # finalized by _finalize_at_exit, unless the group failed
        from mpi4py import MPI

        _MPI.append(MPI)
        atexit.register(_finalize_at_exit)
    return _MPI[0]


def _finalize_at_exit():
    """Finalize MPI when the program ends cleanly; when it ends with the group still
    initialized, tell the other ranks instead (_wait.announce_exit) and leave MPI as it is:
    finalizing waits for ranks that may be waiting for this one."""
    MPI = _MPI[0]
    if GROUP.failed is not None or not MPI.Is_initialized() or MPI.Is_finalized():
        return
    if GROUP.initialized and GROUP.world_size > 1:
        from retrograd.distributed._wait import announce_exit

        announce_exit()
        return
    MPI.Finalize()


def launched_world_size():
    """The number of processes a launcher (mpiexec, srun) started, from its environment
    variables; 1 when the program was started on its own."""
    for name in _LAUNCHER_SIZE:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


def _seconds(timeout):
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    seconds = (timeout.total_seconds() if isinstance(timeout, datetime.timedelta)
               else timeout if isinstance(timeout, (int, float)) and not isinstance(timeout, bool)
               else None)
    if seconds is None or not seconds > 0:
        raise ValueError(f"init_process_group: timeout must be a positive datetime.timedelta "
                         f"or a number of seconds, got {timeout!r}")
    return float(seconds)


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1,
                       store=None, group_name="", pg_options=None, device_id=None):
    """Join the processes of this run into the default process group.

    Args:
        backend: "mpi" (the only backend: MPI through mpi4py).
        timeout: how long a collective may wait for the other ranks (a timedelta or seconds;
            default 30 minutes) before raising DistributedTimeoutError naming the ranks that
            did not answer.
        world_size, rank: optional; MPI assigns both, and values given must agree with it.
        init_method, store, group_name, pg_options, device_id: accepted for PyTorch
            compatibility; MPI's launcher does the rendezvous, so they must be left unset
            (init_method may be "env://").

    Example:
        >>> import retrograd.distributed as dist
        >>> dist.init_process_group(backend="mpi")   # alone: a world of one process
        >>> dist.get_rank(), dist.get_world_size()
        (0, 1)
        >>> dist.destroy_process_group()
    """
    if GROUP.initialized:
        raise DistributedError("init_process_group: the default process group is already "
                               "initialized (call destroy_process_group() first)")
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise ValueError(f"init_process_group: unknown backend {backend!r}; retrograd "
                         f"supports {', '.join(map(repr, BACKENDS))} (MPI through mpi4py, "
                         f"launched with mpiexec)")
    if init_method not in (None, "env://") or store is not None:
        raise ValueError(f"init_process_group: init_method={init_method!r} and store= are not "
                         f"used with the 'mpi' backend: mpiexec (or srun) starts the processes "
                         f"and MPI connects them; leave them out")
    seconds = _seconds(timeout)
    rank_, size = _join()
    for name, given, actual in (("world_size", world_size, size), ("rank", rank, rank_)):
        if given not in (-1, None) and given != actual:
            raise ValueError(f"init_process_group: {name}={given} but MPI started this "
                             f"process as rank {rank_} of a world of {size}")
    GROUP.initialized, GROUP.backend, GROUP.timeout = True, "mpi", seconds
    GROUP.rank, GROUP.world_size = rank_, size


def _join():
    """(rank, world size), with GROUP's communicators set when the world has several
    processes."""
    launched = launched_world_size()
    try:
        MPI = _mpi()
    except ImportError as error:
        if launched > 1:
            raise DistributedError(
                f"init_process_group: this process is one of {launched} started by a launcher, "
                f"but MPI for Python is not installed ({error}); install it with pip install "
                f"'retrograd[distributed]' (mpi4py and the MPICH wheel)") from None
        return 0, 1
    world = MPI.COMM_WORLD
    if world.Get_size() > 1:
        GROUP.comm, GROUP.control = world.Dup(), world.Dup()
    return world.Get_rank(), world.Get_size()


def destroy_process_group(group=None):
    """Leave the default process group (its communicators are freed); init_process_group may
    be called again afterwards."""
    check_group(group, "destroy_process_group")
    if not GROUP.initialized:
        raise DistributedError("destroy_process_group: the default process group is not "
                               "initialized")
    if GROUP.comm is not None and GROUP.failed is None:
        GROUP.comm.Free()
        GROUP.control.Free()
    failed = GROUP.failed
    GROUP.clear()
    GROUP.failed = failed


def is_initialized():
    """Whether init_process_group has been called (and the group not destroyed)."""
    return GROUP.initialized


def _require(what):
    if not GROUP.initialized:
        raise DistributedError(f"{what}: the default process group is not initialized; call "
                               f"retrograd.distributed.init_process_group(backend='mpi') first")


def check_group(group, what, argument="group"):
    """Raise unless ``group`` (the ``argument`` of ``what``) is the default process group:
    None (or the group itself), the only group retrograd has."""
    if group is not None and group is not GROUP:
        raise ValueError(f"{what}: only the default process group ({argument}=None) exists "
                         f"in retrograd, got {group!r}")


def get_rank(group=None):
    """This process's rank in [0, world size)."""
    check_group(group, "get_rank")
    _require("get_rank")
    return GROUP.rank


def get_world_size(group=None):
    """The number of processes in the default group."""
    check_group(group, "get_world_size")
    _require("get_world_size")
    return GROUP.world_size


def get_backend(group=None):
    """The backend's name: "mpi"."""
    check_group(group, "get_backend")
    _require("get_backend")
    return GROUP.backend


def default_timeout():
    """The collectives' timeout in seconds."""
    return GROUP.timeout
