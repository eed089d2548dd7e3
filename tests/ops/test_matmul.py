"""retrograd/ops/_matmul.py: ``matmul`` is np.matmul, on the one thread pool where there is one
(retrograd/_numba/gemm.py: NumPy's OpenBLAS called from each of Numba's threads on its share).
Every layout the pool takes gives np.matmul's result, and the pool is what ran (a spy counts
its calls); what it does not take goes to np.matmul."""

import numpy as np
import pytest

import retrograd as rg
from retrograd import _fast
from retrograd.ops import _matmul

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed")


@pytest.fixture
def pool(monkeypatch):
    """The pool on 2 threads (whatever the machine's count), its job runs counted: a list of
    (cut, parts, batch count) per call."""
    if not _fast.enabled():
        pytest.skip("compiled kernels turned off (RETROGRAD_KERNELS=numpy)")
    gemm = _fast.compiled("gemm")
    if not gemm.AVAILABLE:
        pytest.skip("NumPy's BLAS is not the ILP64 OpenBLAS the pool calls")
    monkeypatch.setattr(gemm, "_POOL", [2])
    # the pool's own products: single float32 products would go to oneDNN's sgemm
    # (tests/_onednn/test_gemm.py)
    monkeypatch.setitem(_fast._ONEDNN, "gemm", None)
    runs = []
    original = gemm.gemms

    def counted(double, job):
        fields = dict(zip(gemm.FIELDS, job.tolist()))
        runs.append((fields["cut"], fields["parts"], fields["outer"] * fields["inner"]))
        return original(double, job)
    monkeypatch.setattr(gemm, "gemms", counted)
    return runs


def _normal(*shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _assert_matches_numpy(a, b, out=None):
    expected = np.matmul(a, b)
    got = _matmul.matmul(a, b, out=out)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    tolerance = 1e-6 if a.dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got, expected, rtol=tolerance,
                               atol=tolerance * np.abs(expected).max())
    return got


def _pairs(dtype):
    """(name, a, b, (cut, parts, count)) for layouts the pool takes."""
    a, b = _normal(300, 200, dtype=dtype), _normal(200, 500, dtype=dtype, seed=1)
    tall = _normal(600, 100, dtype=dtype, seed=2)
    long_k = _normal(30, 5000, dtype=dtype, seed=3), _normal(5000, 20, dtype=dtype, seed=4)
    heads = _normal(2, 3, 64, 32, dtype=dtype, seed=5)
    keys = _normal(2, 3, 64, 32, dtype=dtype, seed=6)
    return [
        ("wide: columns", a, b, (1, 2, 1)),
        ("tall: rows", tall, _normal(100, 50, dtype=dtype, seed=7), (0, 2, 1)),
        ("A transposed", np.ascontiguousarray(a.T).T, b, (1, 2, 1)),
        ("B transposed", a, np.ascontiguousarray(b.T).T, (1, 2, 1)),
        ("both transposed (B^T A^T)", b.T, a.T, (0, 2, 1)),
        ("rows of a wider array", _normal(300, 260, dtype=dtype)[:, 10:210], b, (1, 2, 1)),
        ("long k: sum", *long_k, (2, 2, 1)),
        ("long k, transposed views", np.ascontiguousarray(long_k[0].T).T,
         np.ascontiguousarray(long_k[1].T).T, (2, 2, 1)),
        ("batch of heads, K^T", heads, np.swapaxes(keys, -1, -2), (0, 1, 6)),
        ("batch against one matrix", heads, _normal(32, 48, dtype=dtype, seed=8), (0, 1, 6)),
        ("one matrix against a batch", _normal(40, 64, dtype=dtype, seed=9), heads, (0, 1, 6)),
        ("size-1 batch axes broadcast", heads, _normal(1, 1, 32, 64, dtype=dtype, seed=10),
         (0, 1, 6)),
        ("a batch of one", _normal(1, 640, 64, dtype=dtype), _normal(1, 64, 320, dtype=dtype),
         (0, 2, 1)),
        ("batch axes that do not merge: heads of a (N, L, H, d) array",
         np.swapaxes(_normal(2, 64, 3, 32, dtype=dtype), 1, 2), np.swapaxes(keys, -1, -2),
         (0, 1, 6)),
        ("broadcast along one of two batch axes", _normal(2, 1, 64, 32, dtype=dtype, seed=12),
         _normal(3, 32, 64, dtype=dtype, seed=13), (0, 1, 6)),
        ("three batch axes that merge", _normal(2, 2, 3, 64, 32, dtype=dtype, seed=14),
         _normal(2, 2, 3, 32, 64, dtype=dtype, seed=15), (0, 1, 12)),
    ]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(16))
def test_the_pool_gives_numpys_product(pool, dtype, case):
    name, a, b, run = _pairs(dtype)[case]
    _assert_matches_numpy(a, b)
    assert pool == [run], name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_product_goes_into_out_when_given(pool, dtype):
    a, b = _normal(300, 200, dtype=dtype), _normal(200, 500, dtype=dtype)
    out = np.full((300, 500), np.nan, dtype)
    assert _assert_matches_numpy(a, b, out=out) is out
    wide = np.full((300, 520), np.nan, dtype)           # rows of a wider array
    assert _assert_matches_numpy(a, b, out=wide[:, :500]).base is wide
    assert np.isnan(wide[:, 500:]).all()                # nothing written past the rows
    summed = np.full((30, 20), np.nan, dtype)           # the long-k cut adds its parts into out
    assert _assert_matches_numpy(_normal(30, 5000, dtype=dtype),
                                 _normal(5000, 20, dtype=dtype), out=summed) is summed
    assert [cut for cut, _, _ in pool] == [1, 1, 2]


def test_what_the_pool_does_not_take_is_np_matmul(pool):
    a, b = _normal(300, 200), _normal(200, 500)
    cases = [
        (a[:, ::2], b[:100]),                          # no unit stride
        (a.astype(np.float16), b.astype(np.float16)),  # another dtype
        (a, b.astype(np.float64)),                     # mixed dtypes
        (_normal(8, 8), _normal(8, 8)),                # too little work for the threads
        (_normal(300, 1), _normal(1, 500)),            # k = 1
        (_normal(5000, 300)[:, :1].T, _normal(5000, 2)),  # m = 1
        (np.swapaxes(_normal(2, 3, 4, 32, 64), 0, 2),      # three batch axes that do not
         _normal(4, 3, 2, 64, 32)),                       # merge
    ]
    for x, y in cases:
        np.testing.assert_array_equal(_matmul.matmul(x, y), np.matmul(x, y))
    overlapping = np.zeros((300, 300), np.float32)
    operand = overlapping[:, :200]
    np.testing.assert_allclose(_matmul.matmul(operand, _normal(200, 300), out=overlapping),
                               np.zeros((300, 300)))
    assert pool == []


def test_errors_are_numpys_own(pool):
    with pytest.raises(ValueError, match="matmul"):
        _matmul.matmul(_normal(300, 200), _normal(100, 500))
    with pytest.raises(ValueError):
        _matmul.matmul(_normal(2, 64, 64), _normal(3, 64, 64))
    assert pool == []


def test_tensors_go_through_their_own_matmul(pool):
    """The Tensors of a create_graph backward: ``@`` records a MatMul node, whose forward
    then runs on the arrays (through the pool, once)."""
    a = rg.tensor(_normal(300, 200), requires_grad=True)
    b = rg.tensor(_normal(200, 500))
    product = _matmul.matmul(a, b)
    assert isinstance(product, rg.Tensor) and product.grad_fn is not None
    np.testing.assert_allclose(product.detach().numpy(), a.detach().numpy() @ b.numpy(),
                               rtol=1e-6, atol=1e-5)
    assert pool == [(1, 2, 1)]


def test_without_the_pool_every_product_is_np_matmul(monkeypatch):
    if _fast.enabled() and _fast.compiled("gemm").AVAILABLE:
        monkeypatch.setattr(_fast.compiled("gemm"), "_POOL", [0])
    a, b = _normal(300, 200), _normal(200, 500)
    np.testing.assert_array_equal(_matmul.matmul(a, b), np.matmul(a, b))


def test_training_steps_through_the_pool_match_the_single_thread_path(pool, monkeypatch):
    """A Linear layer and attention, forward and backward, through the pool and without it."""
    def run():
        rg.manual_seed(0)
        layer = rg.nn.Linear(200, 300)
        x = rg.tensor(_normal(256, 200), requires_grad=True)
        q, k, v = (rg.tensor(_normal(4, 4, 64, 32, seed=s), requires_grad=True)
                   for s in (1, 2, 3))
        loss = (layer(x) ** 2).mean() + rg.nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=True).sum()
        loss.backward()
        return [t.grad.numpy().copy() for t in (x, layer.weight, q, k, v)] + [loss.item()]
    pooled = run()
    assert len(pool) > 5
    monkeypatch.setattr(_fast.compiled("gemm"), "_POOL", [0])
    for got, expected in zip(pooled, run()):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
