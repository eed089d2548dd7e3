"""Single float32 products by oneDNN's sgemm (retrograd/_onednn/gemm.py, through
retrograd/ops/_matmul.py) against np.matmul, in every layout BLAS takes: transposed views,
rows of a wider array, a long sum, a result written into ``out`` and into rows of a wider
array; batches, float64, small products and a pool of one thread keep their paths."""

import numpy as np
import pytest

import retrograd as rg
from retrograd import _fast
from retrograd.ops import _matmul

gemm = pytest.importorskip("retrograd._onednn.gemm")
if _fast.onednn("gemm") is None or _fast.compiled("gemm") is None \
        or not _fast.compiled("gemm").AVAILABLE:
    pytest.skip("oneDNN or the one thread pool is not there (the 'fast' extra brings both on "
                "x86-64 Linux; RETROGRAD_KERNELS=numpy turns them off)", allow_module_level=True)


@pytest.fixture
def calls(monkeypatch):
    """The pool on 2 threads; (transpose_a, transpose_b, m, n, k) of each sgemm call."""
    monkeypatch.setattr(_fast.compiled("gemm"), "_POOL", [2])
    seen = []
    original = gemm.sgemm

    def counted(a, transpose_a, lda, b, transpose_b, ldb, c, ldc):
        seen.append((transpose_a, transpose_b) + c.shape[-2:] + (a.shape[-1],))
        return original(a, transpose_a, lda, b, transpose_b, ldb, c, ldc)
    monkeypatch.setattr(gemm, "sgemm", counted)
    return seen


def _normal(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _check(a, b, out=None):
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    got = _matmul.matmul(a, b, out=out)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    return got


a, b = _normal(300, 200), _normal(200, 500, seed=1)
CASES = [  # name, a, b, (transpose_a, transpose_b)
    ("plain", a, b, (False, False)),
    ("A transposed", np.ascontiguousarray(a.T).T, b, (True, False)),
    ("B transposed", a, np.ascontiguousarray(b.T).T, (False, True)),
    ("both transposed", b.T, a.T, (True, True)),
    ("rows of a wider array", _normal(300, 260)[:, 10:210], b, (False, False)),
    ("long sum", _normal(30, 9000, seed=3), _normal(9000, 20, seed=4), (False, False)),
    ("a batch of one", _normal(1, 640, 64), _normal(1, 64, 320), (False, False)),
]


@pytest.mark.parametrize("name, a, b, flags", CASES, ids=[c[0] for c in CASES])
def test_single_float32_products_go_to_onednn(name, a, b, flags, calls):
    _check(a, b)
    assert [call[:2] for call in calls] == [flags]


def test_the_product_goes_into_out_and_rows_of_a_wider_array(calls):
    out = np.full((300, 500), np.nan, np.float32)
    assert _check(a, b, out=out) is out
    wide = np.full((300, 520), np.nan, np.float32)
    assert _check(a, b, out=wide[:, :500]).base is wide
    assert np.isnan(wide[:, 500:]).all()
    assert len(calls) == 2


def test_batches_float64_small_products_and_one_thread_keep_their_paths(calls, monkeypatch):
    _check(_normal(2, 3, 64, 32), _normal(2, 3, 32, 64, seed=1))        # the pool's batches
    _matmul.matmul(a.astype(np.float64), b.astype(np.float64))
    _check(_normal(16, 16), _normal(16, 16, seed=1))                     # np.matmul
    monkeypatch.setattr(_fast.compiled("gemm"), "_POOL", [1])
    _check(a, b)
    assert calls == []


def test_a_linear_layer_trains_with_it(calls):
    layer = rg.nn.Linear(200, 300)
    x = rg.tensor(_normal(256, 200), requires_grad=True)
    layer(x).square().sum().backward()
    assert len(calls) == 3                                   # y, dL/dx, dL/dW
    w, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    y = x.detach().numpy() @ w.T + bias
    np.testing.assert_allclose(x.grad.numpy(), (2 * y) @ w, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(layer.weight.grad.numpy(), (2 * y).T @ x.detach().numpy(),
                               rtol=1e-4, atol=1e-2)
