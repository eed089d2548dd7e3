"""Running a program under mpiexec from a test: N processes on this machine (loopback),
the MPICH wheel's launcher from the test environment, a hard timeout, and each rank's
output. Tests that need MPI skip with the reason when mpi4py or mpiexec is missing."""

import ast
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
RANK_OUTPUT = pathlib.Path(__file__).with_name("_rank_output.py")


def _mpiexec():
    """The mpiexec beside this Python (the MPICH wheel installs it into the environment's
    bin/), else the one on PATH, else None."""
    beside = pathlib.Path(sys.executable).with_name("mpiexec")
    if beside.exists():
        return str(beside)
    return shutil.which("mpiexec")


def _mpi_missing():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install '.[distributed]')"
    if _mpiexec() is None:
        return "no mpiexec (install the mpich wheel: pip install '.[distributed]')"
    version = subprocess.run([_mpiexec(), "--version"], capture_output=True, text=True).stdout
    if "HYDRA" not in version:
        return (f"the tests launch with MPICH's mpiexec (Hydra) options; {_mpiexec()} is "
                f"another launcher (install the mpich wheel: pip install '.[distributed]')")
    return None


needs_mpi = pytest.mark.skipif(_mpi_missing() is not None, reason=str(_mpi_missing()))


class Run:
    """The result of a launch: the return code, each rank's output (stdout then stderr, each
    rank into files of its own: lines of different ranks never interleave), the
    launcher's own output, and ``output``, all of it with a header per rank."""

    def __init__(self, returncode, ranks, launcher):
        self.returncode, self.ranks, self.launcher = returncode, ranks, launcher
        self.output = "".join(f"--- rank {r}\n{text}" for r, text in enumerate(ranks))
        self.output += f"--- mpiexec\n{launcher}"

    def lines(self, prefix):
        """Every rank's output lines that start with ``prefix`` (a marker the program
        prints), rank 0's first."""
        return [line for text in self.ranks for line in text.splitlines()
                if line.startswith(prefix)]


def run_mpi(source, processes, tmp_path, args=(), timeout=120, keep_going=False, env=None,
            linger=0):
    """Write ``source`` (dedented) to tmp_path and run it on ``processes`` ranks, each
    writing its output to files of its own (_rank_output.py); returns a Run.

    ``keep_going``: MPICH's -disable-auto-cleanup (the other ranks are not killed when one
    dies, so they can report it themselves). ``linger``: seconds a rank killed by a signal
    keeps its place (see _rank_output.py), so that the launcher does not tear the job down
    before the others have noticed. BLAS runs one thread per process."""
    script = tmp_path / "program.py"
    script.write_text(textwrap.dedent(source))
    logs = tmp_path / "mpi-output"
    logs.mkdir(exist_ok=True)
    command = [_mpiexec()]
    if keep_going:
        command.append("-disable-auto-cleanup")
    command += ["-n", str(processes), sys.executable, str(RANK_OUTPUT), str(logs), str(script),
                *map(str, args)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "PYTHONPATH": str(ROOT), "RANK_OUTPUT_LINGER": str(linger), **(env or {})}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path, env=environment)
    ranks = [_read(logs / f"out.{r}") + _read(logs / f"err.{r}") for r in range(processes)]
    return Run(done.returncode, ranks, done.stdout + done.stderr)


def _read(path):
    return path.read_text(errors="replace") if path.exists() else ""


def rank_reports(run, processes, marker="RESULT "):
    """The launch succeeded and every rank printed ``<marker><rank> <world> <dict literal>``
    once: {rank: that dict}, each checked to come from a world of ``processes``."""
    results = run.lines(marker)
    assert run.returncode == 0 and len(results) == processes, run.output
    reports = {}
    for line in results:
        rank, world, text = line[len(marker):].split(" ", 2)
        assert int(world) == processes, line
        reports[int(rank)] = ast.literal_eval(text)
    return reports
