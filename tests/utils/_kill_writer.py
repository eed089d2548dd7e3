"""Writer process for the kill -9 and concurrent-writer tests in tests/utils/test_serialization.py.

Run as ``python -m tests.utils._kill_writer PATH FIRST_VERSION SAVES PAUSE_AT`` from the
repository root: it saves versions FIRST_VERSION, ..., FIRST_VERSION + SAVES - 1 of a ~24 MB
checkpoint to PATH, printing "begin v" before and "end v" after each save; then it saves one
more version, and once PAUSE_AT bytes of it are in its temporary file (flushed to the
operating system) it prints "mid v" and waits for a line on stdin, in the middle of the write.
Given one, it finishes that save, prints "end v" and exits. The tests kill it with SIGKILL
upon reading "mid v" (a kill mid-write, every time, at a byte offset the test chose), or let it
go on while another process saves the same path.
"""

import sys

import numpy as np

import retrograd as rg
from retrograd.utils import serialization
from retrograd.utils.serialization import save

N_WEIGHTS = 3_000_000  # float64: 24 MB, so that a reader racing a save has time to race it


def checkpoint(version):
    """The complete checkpoint of one version: every part depends on the version, so a file
    mixing two versions, or cut short, cannot pass for a complete one."""
    return {
        "version": version,
        "weights": np.arange(N_WEIGHTS, dtype=np.float64) + version,
        "model": {"bias": rg.full((1000,), float(version))},
        "note": f"version {version}",
    }


class _PausingFile:
    """Passes writes through to ``f``; the write that reaches ``pause_at`` bytes is split
    there: the first part is written and flushed, then ``pause()`` runs, then the rest."""

    def __init__(self, f, pause_at, pause):
        self.f, self.pause_at, self.pause, self.written = f, pause_at, pause, 0

    def write(self, data):
        data = memoryview(data).cast("B")
        cut = self.pause_at - self.written
        if 0 <= cut < len(data):
            self.f.write(data[:cut])
            self.f.flush()
            self.pause()
            self.f.write(data[cut:])
        else:
            self.f.write(data)
        self.written += len(data)
        return len(data)


def main(path, first_version, saves, pause_at):
    print("ready", flush=True)
    for version in range(first_version, first_version + saves):
        print(f"begin {version}", flush=True)
        save(checkpoint(version), path)
        print(f"end {version}", flush=True)
    version = first_version + saves

    def pause():
        print(f"mid {version}", flush=True)
        sys.stdin.readline()

    real_write_payload = serialization._write_payload
    serialization._write_payload = lambda f, *rest: real_write_payload(
        _PausingFile(f, pause_at, pause), *rest)
    print(f"begin {version}", flush=True)
    save(checkpoint(version), path)
    print(f"end {version}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], *(int(arg) for arg in sys.argv[2:]))
