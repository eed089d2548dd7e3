"""Every test of the compiled kernels runs twice: with the serial kernels, and with the
parallel ones taken for any size (retrograd/_numba/policy.py otherwise picks them only for
large arrays, and only where BLAS's threads do not spin), and oneDNN's convolutions off. A
test module that sets FAMILY gets the ``kernels`` fixture: that family's compiled module."""

import pytest

from retrograd import _fast


@pytest.fixture(autouse=True, params=["serial", "parallel"])
def kernel_threads(request, monkeypatch):
    policy = pytest.importorskip("retrograd._numba.policy",
                                 reason="the 'fast' extra (numba) is not installed")
    if not _fast.enabled():
        pytest.skip("compiled kernels turned off (RETROGRAD_KERNELS=numpy)")
    # these tests are of Numba's kernels: float32 convolutions must not go to oneDNN
    monkeypatch.setitem(_fast._ONEDNN, "conv", None)
    monkeypatch.setattr(policy, "_ALLOWED", [request.param == "parallel"])
    monkeypatch.setattr(policy, "PARALLEL_MIN", 1)
    return request.param


@pytest.fixture
def kernels(request):
    """The compiled module of the test module's FAMILY (skipped when RETROGRAD_KERNELS=numpy
    turns the kernels off)."""
    module = _fast.compiled(request.module.FAMILY)
    if module is None:
        pytest.skip("compiled kernels turned off (RETROGRAD_KERNELS=numpy)")
    return module


def count_calls(kernels, monkeypatch, names):
    """{name: 0, ...}, counting from now on the calls of those entry points of ``kernels``
    (what each test module's ``spy`` fixture returns)."""
    calls = dict.fromkeys(names, 0)
    for name in names:
        original = getattr(kernels, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)
        monkeypatch.setattr(kernels, name, counted)
    return calls
