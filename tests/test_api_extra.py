"""The non-differentiable part of PyTorch's tail (retrograd/api_extra.py, _tensor_math.py,
_tensor_indexing.py, _tensor_random.py) against PyTorch: comparisons and logic, nonzero and
where(cond), unique, searchsorted and bucketize, triangle indices, the layout queries, the
in-place shape methods, apply_, and random sampling (ranges, dtypes, seeds, generators)."""

import numpy as np
import pytest
import torch

import retrograd as rg

X = np.array([[0.0, 1.5, -2.0, np.nan], [np.inf, 0.0, 3.0, -np.inf]])
INTS = np.array([[5, 0, -3], [7, 7, 0]])


def _same(got, want):
    """Values, shape and dtype equal to torch's (tuples element by element)."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)) and len(got) == len(want)
        for g, w in zip(got, want):
            _same(g, w)
        return
    if not isinstance(want, torch.Tensor):
        assert got == want
        return
    assert tuple(got.shape) == tuple(want.shape), (got.shape, want.shape)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], (got.dtype, want.dtype)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def _both(fn, *arrays):
    _same(fn(rg, *[rg.tensor(a) for a in arrays]), fn(torch, *[torch.tensor(a) for a in arrays]))


@pytest.mark.parametrize("name", ["eq", "ne", "lt", "le", "gt", "ge", "greater", "less_equal",
                                  "not_equal", "logical_and", "logical_or", "logical_xor",
                                  "isclose"])
def test_binary_comparisons_and_logic_match_torch(name):
    _both(lambda L, a, b: getattr(L, name)(a, b), X, X[::-1].copy())
    _both(lambda L, a: getattr(L, name)(a, 1.5) if name not in ("logical_and", "logical_or",
                                                                  "logical_xor", "isclose")
          else getattr(a, name)(a), X)


def test_unary_logic_and_reductions_match_torch():
    for name in ("isnan", "isinf", "isfinite", "logical_not"):
        _both(lambda L, a: getattr(L, name)(a), X)
    _both(lambda L, a: L.isclose(a, a, equal_nan=True), X)
    _both(lambda L, a: L.isclose(a, a + 1e-6, rtol=0, atol=1e-5), X)
    for dim in (None, 0, 1, (0, 1), -1):
        _both(lambda L, a: L.count_nonzero(a, dim=dim), X)
        if dim is not None:
            _both(lambda L, a: L.any(a > 0, dim=dim, keepdim=True), X)
            _both(lambda L, a: L.all(a > -5, dim), X)
    _both(lambda L, a: (L.any(a), L.all(a)), X)
    assert rg.equal(rg.tensor(INTS), rg.tensor(INTS)) is True
    assert rg.equal(rg.tensor(INTS), rg.tensor(INTS[:1])) is False
    assert rg.equal(rg.tensor([1.0, np.nan]), rg.tensor([1.0, np.nan])) == \
        torch.equal(torch.tensor([1.0, np.nan]), torch.tensor([1.0, np.nan]))


def test_bitwise_ops_match_torch():
    other = np.array([[1, 2, 3], [-1, 0, 6]])
    for name in ("bitwise_and", "bitwise_or", "bitwise_xor"):
        _both(lambda L, a, b: getattr(L, name)(a, b), INTS, other)
    _both(lambda L, a: L.bitwise_not(a), INTS)
    _both(lambda L, a: L.bitwise_and(a > 0, a < 6), INTS)
    with pytest.raises(TypeError, match="bitwise_and: only integer and bool tensors"):
        rg.bitwise_and(rg.ones(2), rg.ones(2))
    with pytest.raises(TypeError, match="bitwise_not: only integer and bool tensors"):
        rg.ones(2).bitwise_not()


def test_nonzero_argwhere_and_where_condition_match_torch():
    for a in (X, INTS, np.array(3.0), np.array(0.0), np.zeros((2, 0))):
        _both(lambda L, t: L.nonzero(t), a)
        _both(lambda L, t: L.nonzero(t, as_tuple=True), a)
        _both(lambda L, t: L.argwhere(t), a)
    _both(lambda L, t: L.where(t > 0), INTS)
    _both(lambda L, t: t.nonzero(), INTS)


def test_unique_matches_torch():
    u = np.array([3, 1, 2, 1, 3, 3, 0])
    for inverse in (False, True):
        for counts in (False, True):
            _both(lambda L, t: L.unique(t, return_inverse=inverse, return_counts=counts), u)
            _both(lambda L, t: L.unique(t, return_inverse=inverse, return_counts=counts),
                  u[:6].reshape(2, 3))
            _both(lambda L, t: L.unique_consecutive(t, return_inverse=inverse,
                                                    return_counts=counts), u)
    rows = np.array([[1, 2], [0, 1], [1, 2], [0, 0]])
    _both(lambda L, t: L.unique(t, dim=0, return_inverse=True, return_counts=True), rows)
    _both(lambda L, t: t.unique(dim=1, return_counts=True), rows)
    _both(lambda L, t: L.unique_consecutive(t, return_inverse=True, return_counts=True, dim=0),
          np.array([[1, 1], [1, 1], [2, 0], [1, 1]]))
    _both(lambda L, t: L.unique(t), np.array([2.0, np.nan, 1.0, np.nan]))   # NaNs stay apart
    _both(lambda L, t: L.unique(t, return_inverse=True, return_counts=True), np.zeros(0))


def test_searchsorted_and_bucketize_match_torch():
    seq = np.array([1, 3, 5, 7])
    values = np.array([[0, 3, 6], [7, 8, 1]])
    for right in (False, True):
        _both(lambda L, s, v: L.searchsorted(s, v, right=right), seq, values)
        _both(lambda L, s, v: L.bucketize(v, s, right=right), seq, values)
        _both(lambda L, s, v: L.searchsorted(s, v, side="right" if right else "left",
                                             out_int32=True), seq, values)
    _both(lambda L, s, v: L.searchsorted(s, v), np.array([[1, 3, 5, 7], [2, 4, 6, 8]]),
          np.array([[3, 6], [2, 9]]))
    _both(lambda L, s: L.searchsorted(s, 4), seq)
    _both(lambda L, s: L.bucketize(4, s), seq)
    _both(lambda L, s, v: L.searchsorted(s, v, sorter=L.tensor([2, 0, 1, 3])),
          np.array([3, 1, 5, 7]), values)
    with pytest.raises(RuntimeError, match="searchsorted: side='left' and right=True"):
        rg.searchsorted(rg.tensor(seq), rg.tensor(values), right=True, side="left")
    with pytest.raises(RuntimeError, match="bucketize: boundaries must be 1-D"):
        rg.bucketize(rg.tensor(values), rg.tensor(values))


def test_triangle_indices_and_repeat_interleave_counts_match_torch():
    for row, col, offset in ((3, 4, 0), (4, 3, 1), (4, 3, -2), (0, 3, 0), (3, 3, 5)):
        _same(rg.tril_indices(row, col, offset), torch.tril_indices(row, col, offset))
        _same(rg.triu_indices(row, col, offset), torch.triu_indices(row, col, offset))
    _same(rg.tril_indices(3, 3, dtype=rg.int32), torch.tril_indices(3, 3, dtype=torch.int32))
    _both(lambda L, t: L.repeat_interleave(t), np.array([1, 0, 3, 2]))


def test_layout_queries_match_torch():
    x = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    for fn in (lambda t: t, lambda t: t.transpose(0, 2), lambda t: t[:, 1:, ::2],
               lambda t: t[:1].expand(5, 3, 4), lambda t: t.unsqueeze(1), lambda t: t[0, 0, 0]):
        a, b = fn(rg.tensor(x)), fn(torch.tensor(x))
        assert a.stride() == b.stride(), a.shape
        assert a.is_contiguous() == b.is_contiguous(), a.shape
        assert a.nelement() == b.nelement() and a.ndimension() == b.ndimension()
        if a.ndim:
            assert a.stride(-1) == b.stride(-1)
    t = rg.tensor(x)
    assert t.data_ptr() == t.view(6, 4).data_ptr() == t.detach().data_ptr()
    assert t[1].data_ptr() - t.data_ptr() == 12 * 4
    assert t.clone().data_ptr() != t.data_ptr()


def test_in_place_shape_methods_match_torch():
    for name, args in (("unsqueeze_", (1,)), ("squeeze_", ()), ("squeeze_", (0,)), ("t_", ()),
                       ("transpose_", (0, 1)), ("swapdims_", (1, 0))):
        a, b = rg.ones(1, 3), torch.ones(1, 3)
        version = a._version[0]
        assert getattr(a, name)(*args) is a
        getattr(b, name)(*args)
        assert tuple(a.shape) == tuple(b.shape), name
        assert a._version[0] == version + 1
    x = rg.tensor(np.arange(3.0), requires_grad=True)
    y = x * 2.0
    y.unsqueeze_(0)
    assert y.shape == (1, 3)
    (y * rg.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0]
    with pytest.raises(RuntimeError, match="unsqueeze_: a leaf tensor that requires grad"):
        x.unsqueeze_(0)


def test_apply_matches_torch():
    a, b = rg.tensor(INTS), torch.tensor(INTS)
    assert a.apply_(lambda v: v * v - 1) is a
    b.apply_(lambda v: v * v - 1)
    _same(a, b)
    with pytest.raises(RuntimeError, match="apply_: can't call apply_"):
        rg.ones(2, requires_grad=True).apply_(float)


# ---------------------------------------------------------------------------- sampling
def test_bernoulli_forms():
    rg.manual_seed(0)
    p = rg.full((4000,), 0.3)
    draws = rg.bernoulli(p)
    assert draws.dtype == rg.float32 and set(draws.unique().tolist()) <= {0.0, 1.0}
    assert abs(draws.mean().item() - 0.3) < 0.03
    assert abs(rg.zeros(4000).bernoulli(0.8).mean().item() - 0.8) < 0.03
    filled = rg.zeros(4000, dtype=rg.float64).bernoulli_(rg.full((4000,), 0.1))
    assert filled.dtype == rg.float64 and abs(filled.mean().item() - 0.1) < 0.03
    assert rg.zeros(3, dtype=rg.int64).bernoulli_(1.0).tolist() == [1, 1, 1]
    rg.manual_seed(5)
    first = rg.bernoulli(rg.full((10,), 0.5))
    rg.manual_seed(5)
    assert rg.equal(first, rg.bernoulli(rg.full((10,), 0.5)))
    g = rg.Generator().manual_seed(3)
    a = rg.bernoulli(rg.full((10,), 0.5), generator=g)
    g.manual_seed(3)
    assert rg.equal(a, rg.full((10,), 0.5).bernoulli(generator=g))
    with pytest.raises(RuntimeError, match=r"bernoulli: probabilities must be in \[0, 1\]"):
        rg.bernoulli(rg.tensor([1.5]))


def test_normal_function_forms():
    rg.manual_seed(0)
    mean = rg.tensor([0.0, 10.0, -5.0]).reshape(3, 1).expand(3, 3000)
    draws = rg.normal(mean, 2.0)
    assert draws.shape == (3, 3000) and draws.dtype == rg.float32
    np.testing.assert_allclose(draws.mean(1).numpy(), [0.0, 10.0, -5.0], atol=0.2)
    np.testing.assert_allclose(draws.std(1).numpy(), [2.0, 2.0, 2.0], atol=0.2)
    std = rg.tensor([0.5, 3.0], dtype=rg.float64).reshape(2, 1).expand(2, 3000)
    draws = rg.normal(1.0, std)
    assert draws.dtype == rg.float64
    np.testing.assert_allclose(draws.std(1).numpy(), [0.5, 3.0], rtol=0.1)
    both = rg.normal(rg.zeros(2, 1), rg.ones(1, 3))
    assert both.shape == (2, 3)
    sized = rg.normal(2.0, 3.0, size=(4, 5), dtype=rg.float64)
    assert sized.shape == (4, 5) and sized.dtype == rg.float64
    g = rg.Generator().manual_seed(1)
    a = rg.normal(0.0, 1.0, (5,), generator=g)
    g.manual_seed(1)
    assert rg.equal(a, rg.normal(0.0, 1.0, (5,), generator=g))
    with pytest.raises(TypeError, match="normal: with a number mean and std, give size="):
        rg.normal(0.0, 1.0)
    with pytest.raises(RuntimeError, match="normal: expects std >= 0.0"):
        rg.normal(rg.zeros(2), -1.0)


def test_randint_like_poisson_and_fills():
    rg.manual_seed(0)
    x = rg.zeros(2, 500)
    r = rg.randint_like(x, 5)
    assert r.dtype == rg.float32 and r.shape == (2, 500)
    assert set(r.unique().tolist()) == {0.0, 1.0, 2.0, 3.0, 4.0}
    r = rg.randint_like(x, -3, 2, dtype=rg.int64)
    assert r.dtype == rg.int64 and r.min().item() == -3 and r.max().item() == 1
    p = rg.poisson(rg.full((5000,), 4.0))
    assert p.dtype == rg.float32 and abs(p.mean().item() - 4.0) < 0.15
    t = rg.zeros(5000)
    assert t.exponential_(2.0) is t and abs(t.mean().item() - 0.5) < 0.05 and t.min() >= 0
    t.log_normal_(0.0, 0.5)
    assert abs(t.log().mean().item()) < 0.05 and abs(t.log().std().item() - 0.5) < 0.05
    t.geometric_(0.25)
    assert t.min().item() >= 1 and abs(t.mean().item() - 4.0) < 0.3
    t.cauchy_(1.0, 2.0)
    assert abs(t.median().item() - 1.0) < 0.2
    ints = rg.zeros(5000, dtype=rg.int64).random_(3, 7)
    assert ints.min().item() == 3 and ints.max().item() == 6
    assert rg.zeros(1000).random_(4).max().item() == 3
    f16 = rg.zeros(2000, dtype=rg.float16).random_()
    assert f16.min().item() >= 0 and f16.max().item() <= 2 ** 11
    small = rg.zeros(1000, dtype=rg.uint8).random_()
    assert small.max().item() <= 255
    assert rg.zeros(10).random_(**{"from": 2, "to": 4}).min().item() >= 2
    with pytest.raises(RuntimeError, match=r"random_: expects from \(5\) < to \(5\)"):
        rg.zeros(3).random_(5, 5)
    with pytest.raises(TypeError, match="exponential_: expected a floating-point tensor"):
        rg.zeros(3, dtype=rg.int64).exponential_()


def test_fills_respect_autograd_as_torch():
    leaf = rg.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="bernoulli_: a leaf tensor that requires grad"):
        leaf.bernoulli_(0.5)
    x = rg.ones(3, requires_grad=True)
    y = x * 2.0
    y.exponential_()
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]       # overwritten: no gradient reaches x


def test_dropout_function_is_torch_dropout():
    rg.manual_seed(0)
    x = rg.ones(2000)
    y = rg.dropout(x, 0.5, True)
    kept = y.numpy() != 0
    assert 0.4 < kept.mean() < 0.6 and np.all(y.numpy()[kept] == 2.0)
    assert rg.dropout(x, p=0.5, train=False) is x


def test_top_level_spellings_of_functional_ops_match_pytorch():
    import retrograd.nn.functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 6))
    w = rng.standard_normal((3, 4, 3, 3))
    cases = [
        ("conv2d", (x, w, None, 2, 1)),
        ("layer_norm", (x, (6,), None, None, 1e-3)),
        ("group_norm", (x, 2, rng.standard_normal(4), rng.standard_normal(4), 1e-3)),
        ("rms_norm", (x, (6, 6), None, 1e-3)),
        ("threshold", (x, 0.1, -2.0)),
        ("prelu", (x, np.array([0.25]))),
        ("cosine_similarity", (x, x[::-1].copy(), 1, 1e-8)),
        ("pixel_shuffle", (x, 2)),
        ("max_pool2d", (x, 2, 2)),
        ("selu", (x,)),
    ]
    for name, args in cases:
        assert getattr(rg, name) is getattr(F, name), name
        ours = getattr(rg, name)(*[rg.tensor(a) if isinstance(a, np.ndarray) else a
                                   for a in args])
        theirs = getattr(torch, name)(*[torch.tensor(a) if isinstance(a, np.ndarray) else a
                                        for a in args])
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)
    assert all(hasattr(torch, name) for name in rg._FUNCTIONAL_SPELLINGS)
