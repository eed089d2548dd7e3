"""Writer process for the kill -9 test in tests/utils/test_serialization.py.

Run as ``python -m tests.utils._kill_writer PATH FIRST_VERSION`` from the repository root: it
saves versions FIRST_VERSION, FIRST_VERSION + 1, ... of a ~24 MB checkpoint to PATH, forever,
printing "begin v" before and "end v" after each save, until it is killed.
"""

import sys

import numpy as np

import retrograd as rg
from retrograd.utils.serialization import save

N_WEIGHTS = 3_000_000  # float64: 24 MB, so that a kill often lands inside a write


def checkpoint(version):
    """The complete checkpoint of one version: every part depends on the version, so a file
    mixing two versions, or cut short, cannot pass for a complete one."""
    return {
        "version": version,
        "weights": np.arange(N_WEIGHTS, dtype=np.float64) + version,
        "model": {"bias": rg.full((1000,), float(version))},
        "note": f"version {version}",
    }


def main(path, first_version):
    print("ready", flush=True)
    version = first_version
    while True:
        print(f"begin {version}", flush=True)
        save(checkpoint(version), path)
        print(f"end {version}", flush=True)
        version += 1


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
