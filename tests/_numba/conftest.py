"""Every test of the compiled kernels runs twice: with the serial kernels, and with the
parallel ones taken for any size (retrograd/_numba/policy.py otherwise picks them only for
large arrays, and only where BLAS's threads do not spin)."""

import pytest


@pytest.fixture(autouse=True, params=["serial", "parallel"])
def kernel_threads(request, monkeypatch):
    policy = pytest.importorskip("retrograd._numba.policy",
                                 reason="the 'fast' extra (numba) is not installed")
    monkeypatch.setattr(policy, "_ALLOWED", [request.param == "parallel"])
    monkeypatch.setattr(policy, "PARALLEL_MIN", 1)
    return request.param
