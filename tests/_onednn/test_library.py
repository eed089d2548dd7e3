"""retrograd/_onednn/library.py: where the library is found, its errors, one thread count with
retrograd.set_num_threads, and a child made by fork() that leaves oneDNN alone (GNU OpenMP's
threads are the parent's) and still convolves."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import retrograd as rg
from retrograd import _fast

library = pytest.importorskip("retrograd._onednn.library")
if _fast.onednn("conv") is None:
    pytest.skip("oneDNN is not installed (the 'fast' extra brings it on x86-64 Linux) or "
                "RETROGRAD_KERNELS=numpy turned it off", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]


def test_the_library_is_the_wheels_and_a_failing_call_names_itself():
    path = library._library_path()
    assert path is not None and Path(path).name == "libdnnl.so.3" and Path(path).exists()
    with pytest.raises(library.OneDNNError, match=r"dnnl_primitive_create returned status 3 "
                                                  r"\(unimplemented\)"):
        library.Library.check(3, "dnnl_primitive_create")
    library.Library.check(0, "dnnl_primitive_create")


def test_set_num_threads_sets_onednns_threads():
    openmp = library.openmp()
    before = rg.get_num_threads()
    try:
        rg.set_num_threads(1)
        assert openmp.omp_get_max_threads() == 1
        rg.set_num_threads(2)
        assert openmp.omp_get_max_threads() == 2
    finally:
        rg.set_num_threads(before)


FORKED_CHILD = """
    import os
    import numpy as np
    import retrograd as rg
    import retrograd.nn.functional as F
    from retrograd import _fast

    rng = np.random.default_rng(0)
    x = rg.tensor(rng.standard_normal((8, 16, 32, 32)).astype(np.float32))
    w = rg.tensor(rng.standard_normal((16, 16, 3, 3)).astype(np.float32))
    expected = F.conv2d(x, w, padding=1).numpy()           # oneDNN, on GNU OpenMP's threads
    print("parent", _fast.onednn("conv") is not None)
    pid = os.fork()
    if pid == 0:
        ok = _fast.onednn("conv") is None
        got = F.conv2d(x, w, padding=1).numpy()
        os._exit(0 if ok and np.allclose(got, expected, rtol=1e-4, atol=1e-4) else 3)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_convolves_without_onednn():
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(FORKED_CHILD)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["parent", "True", "child", "0"], result.stdout


def test_handles_are_destroyed_once():
    destroyed = []
    handle = library.Handle(12345, destroyed.append)
    handle.__del__()
    handle.__del__()
    assert destroyed == [12345]
    assert np.array_equal(np.frombuffer(bytes(library.dims([3, 4])), np.int64)[:3], [3, 4, 0])


def test_another_version_or_runtime_of_the_library_is_refused(monkeypatch):
    real = library.Library(library._library_path())
    version = real.cdll.dnnl_version().contents
    assert (version.major, version.cpu_runtime) == (3, library._OPENMP_RUNTIME)
    monkeypatch.setattr(library, "_OPENMP_RUNTIME", 4)       # as if it were built on TBB
    with pytest.raises(library.OneDNNError, match=r"retrograd uses 3.x on OpenMP \(4\)"):
        library.Library(library._library_path())
