"""copy_contiguous: the same result as np.ascontiguousarray, on one or two threads."""

import numpy as np
import pytest

from retrograd.ops import _parallel
from retrograd.ops._parallel import copy_contiguous


@pytest.mark.parametrize("shape", [(3, 4), (2048, 1024), (1, 5000000)])
def test_equals_ascontiguousarray(shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    view = x.T if shape[0] > 1 else x[:, ::2]
    out = copy_contiguous(view)
    assert out.flags.c_contiguous and np.array_equal(out, np.ascontiguousarray(view))


def test_a_contiguous_array_is_returned_itself():
    x = np.zeros((4, 4))
    assert copy_contiguous(x) is x


def test_large_copies_use_the_second_thread(monkeypatch):
    calls = []
    monkeypatch.setattr(_parallel, "_THREADS", 2)
    real = _parallel._executor

    def spy():
        calls.append(1)
        return real()

    monkeypatch.setattr(_parallel, "_executor", spy)
    x = np.ones((1024, 2048), dtype=np.float32)
    assert np.array_equal(copy_contiguous(x.T), x.T)
    assert calls == [1]
