"""Run a program as one rank with its stdout and stderr going to files of its own
(``<folder>/out.<rank>``, ``err.<rank>``), written by the rank itself: they survive the
launcher's own failure when a rank is killed. Usage: python _rank_output.py FOLDER PROGRAM
[ARGS...].

With RANK_OUTPUT_LINGER=SECONDS in the environment the program runs in a child process, and
this process, the one the launcher started, stays for that long after the child died from a
signal before it ends the same way. It keeps the child's connection to the launcher open, so
the launcher does not notice the death and tear the job down at once (MPICH's launcher kills
every rank when one dies, even with -disable-auto-cleanup at times): the other ranks then see
a rank that stopped answering, as when a machine is lost, and must report it themselves.
"""

import os
import runpy
import signal
import sys
import time


def redirect(folder):
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    for fd, name in ((1, "out"), (2, "err")):
        target = os.open(os.path.join(folder, f"{name}.{rank}"),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)


def run(program, args):
    sys.argv = [program, *args]
    runpy.run_path(program, run_name="__main__")


def run_in_child(program, args, linger):
    """Run the program in a child; if a signal kills it, stay ``linger`` seconds, then die
    by the same signal (a normal exit is passed on at once)."""
    child = os.fork()
    if child == 0:   # the child ends through the interpreter (atexit, exit status)
        run(program, args)
        sys.exit(0)
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        time.sleep(linger)
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    folder, program, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    redirect(folder)
    linger = float(os.environ.get("RANK_OUTPUT_LINGER", "0"))
    if linger > 0:
        run_in_child(program, args, linger)
    else:
        run(program, args)
