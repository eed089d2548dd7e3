"""retrograd.set_num_threads sets one thread count for BLAS, the compiled kernels and the
copy threads; bad counts raise errors naming the function."""

import pytest

import retrograd as rg
from retrograd import _fast
from retrograd.ops import _parallel


@pytest.fixture
def restore_threads():
    before = rg.get_num_threads()
    yield
    rg.set_num_threads(before)


def _blas_threads():
    """{library path: threads} of every BLAS threadpoolctl sees."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    return {p["filepath"]: p["num_threads"] for p in threadpoolctl.threadpool_info()
            if p["user_api"] == "blas"}


def _pool():
    """retrograd/_numba/gemm.py when the one thread pool can run (else None)."""
    if not _fast.enabled() or not _fast.compiled("gemm").AVAILABLE:
        return None
    return _fast.compiled("gemm")


@pytest.mark.usefixtures("restore_threads")
def test_one_count_reaches_blas_numba_and_the_copy_threads():
    rg.set_num_threads(1)
    assert rg.get_num_threads() == 1 and _parallel._THREADS == 1
    assert set(_blas_threads().values()) == {1}
    if _fast.enabled():
        import numba

        assert numba.get_num_threads() == 1
    rg.set_num_threads(2)
    assert rg.get_num_threads() == 2 and _parallel._THREADS == 2
    pool = _pool()
    if pool is None:
        assert set(_blas_threads().values()) == {2}
        return
    # the one pool: NumPy's BLAS on one thread, its products on Numba's two
    numpy_blas = pool.blas_controller().filepath
    assert pool.pool_threads() == 2 and _blas_threads()[numpy_blas] == 1
    assert {n for path, n in _blas_threads().items() if path != numpy_blas} <= {2}
    rg.set_num_threads(1)
    assert pool.pool_threads() == 0


@pytest.mark.parametrize("count, error", [(0, ValueError), (-3, ValueError), (1.5, TypeError),
                                          (True, TypeError)])
def test_bad_counts_raise_errors_naming_the_function(count, error):
    with pytest.raises(error, match="set_num_threads"):
        rg.set_num_threads(count)
