"""retrograd/_numba/policy.py: one thread pool, and a forked child that stays alive. GNU
OpenMP (Numba's threads) aborts a child made by fork() that starts a parallel region after
the parent ran one; the policy turns the pool off in such a child, whose kernels and
products then run on its calling thread."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from retrograd import _fast

ROOT = Path(__file__).resolve().parents[2]

FORKED_CHILD = """
    import os
    import numpy as np
    import numba
    import retrograd as rg
    from retrograd._numba import gemm, policy

    x = rg.randn(512, 512)
    expected = float((rg.nn.functional.gelu(x) @ x).sum())  # parallel kernel, pooled product
    print(numba.threading_layer(), gemm.pool_threads(), policy.parallel(1 << 20))
    pid = os.fork()
    if pid == 0:
        ok = gemm.pool_threads() == 0 and not policy.parallel(1 << 20)
        got = float((rg.nn.functional.gelu(x) @ x).sum())
        os._exit(0 if ok and np.isclose(got, expected, rtol=1e-5) else 3)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_runs_retrograd_after_the_parent_ran_the_pool():
    pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed")
    if not _fast.enabled() or not _fast.compiled("gemm").AVAILABLE:
        pytest.skip("no pool here (RETROGRAD_KERNELS=numpy, or another BLAS)")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: no pool to turn off")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(FORKED_CHILD)],
                            capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    first, last = result.stdout.strip().splitlines()[-2:]
    assert first.split()[1:] == ["2", "True"] and last == "child 0", result.stdout
