"""The embedding op (retrograd/ops/embedding.py) and F.embedding: the gather forward and the
scatter-add backward against PyTorch (repeated ids, padding_idx, scale_grad_by_freq, 1-D,
2-D and 0-d ids, max_norm), against finite differences (through the engine and alone),
double backward, the chunked scatter kernel against np.add.at, and the argument errors."""

import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.ops import embedding as embedding_ops
from retrograd.ops.embedding import Embedding, EmbeddingBackward, embedding_scatter
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

# (ids, vocabulary size): 1-D, 2-D, repeated ids (3 occurs four times), a single id, a 0-d id,
# every id of the vocabulary, an id used once among repeats, 3-D ids.
IDS_CASES = [
    (np.array([0, 4, 2]), 5),
    (np.array([[1, 3, 3], [0, 3, 3]]), 5),
    (np.array([2]), 3),
    (np.array(1), 4),
    (np.array([[0, 1], [2, 3]]), 4),
    (np.array([[[5, 5], [1, 0]], [[5, 2], [2, 2]]]), 7),
]


@pytest.mark.parametrize("ids, vocab", IDS_CASES)
def test_embedding_matches_torch(ids, vocab):
    w = randn(vocab, 3, seed=1)
    check_op(lambda i, w: F.embedding(i, w), lambda i, w: TF.embedding(i, w), ids, w)


# NOTE: padding_idx and scale_grad_by_freq change the gradient on purpose (it is no longer
# the derivative of the forward), so these cases are compared with PyTorch and with an
# explicit formula, not with finite differences.
@pytest.mark.parametrize("ids, vocab", IDS_CASES)
@pytest.mark.parametrize("padding_idx", [0, 2, -1])
def test_embedding_padding_idx_matches_torch(ids, vocab, padding_idx):
    w = randn(vocab, 4, seed=2)
    check_op(lambda i, w: F.embedding(i, w, padding_idx=padding_idx),
             lambda i, w: TF.embedding(i, w, padding_idx=padding_idx), ids, w,
             gradcheck=False)


@pytest.mark.parametrize("ids, vocab", IDS_CASES)
@pytest.mark.parametrize("padding_idx", [None, 1, -2])
def test_embedding_scale_grad_by_freq_matches_torch(ids, vocab, padding_idx):
    w = randn(vocab, 2, seed=3)
    check_op(lambda i, w: F.embedding(i, w, padding_idx, scale_grad_by_freq=True),
             lambda i, w: TF.embedding(i, w, padding_idx, scale_grad_by_freq=True), ids, w,
             gradcheck=False)


def test_repeated_ids_accumulate_and_padding_row_gets_nothing():
    w = rg.tensor(randn(4, 2, seed=4), requires_grad=True)
    ids = rg.tensor([[3, 1, 3], [3, 0, 1]])
    cotangent = randn(2, 3, 2, seed=5)
    F.embedding(ids, w, padding_idx=0).backward(rg.tensor(cotangent))
    grad = w.grad.numpy()
    np.testing.assert_array_equal(grad[0], 0.0)           # padding, although it was looked up
    np.testing.assert_array_equal(grad[2], 0.0)           # never looked up
    np.testing.assert_allclose(grad[3], cotangent[0, 0] + cotangent[0, 2] + cotangent[1, 0])
    np.testing.assert_allclose(grad[1], cotangent[0, 1] + cotangent[1, 2])


def test_padding_row_is_still_looked_up_as_is():
    """padding_idx only stops the gradient: the forward returns the row's current value."""
    w = randn(3, 2, seed=6)
    y = F.embedding(rg.tensor([1, 1]), rg.tensor(w), padding_idx=1)
    np.testing.assert_array_equal(y.numpy(), w[[1, 1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_dtypes_match_torch(dtype):
    ids = np.random.default_rng(7).integers(0, 50, size=(8, 30))
    w = randn(50, 16, seed=8)
    check_op(lambda i, w: F.embedding(i, w, padding_idx=7, scale_grad_by_freq=True),
             lambda i, w: TF.embedding(i, w, padding_idx=7, scale_grad_by_freq=True),
             ids, w, dtype=dtype, gradcheck=False)


def test_int32_ids_match_torch():
    ids = np.array([[2, 0, 2]], dtype=np.int32)
    check_op(lambda i, w: F.embedding(i, w), lambda i, w: TF.embedding(i, w), ids,
             randn(3, 5, seed=9))


def test_empty_ids():
    w = rg.tensor(randn(4, 3, seed=10), requires_grad=True)
    y = F.embedding(rg.tensor(np.zeros((2, 0), dtype=np.int64)), w)
    assert y.shape == (2, 0, 3)
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), 0.0)


def test_ids_as_numpy_array():
    w = randn(4, 3, seed=11)
    np.testing.assert_array_equal(F.embedding(np.array([3, 1]), rg.tensor(w)).numpy(), w[[3, 1]])


@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (0.5, 1.0), (100.0, 2.0)])
def test_max_norm_renormalizes_like_torch(max_norm, norm_type):
    w = randn(6, 4, seed=12) * 2
    ids = np.array([[0, 2, 2], [5, 0, 3]])
    ours, theirs = rg.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = F.embedding(rg.tensor(ids), ours, max_norm=max_norm, norm_type=norm_type)
    ty = TF.embedding(torch.tensor(ids), theirs, max_norm=max_norm, norm_type=norm_type)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    untouched = [1, 4]  # rows not looked up keep their norm, whatever it is
    np.testing.assert_array_equal(ours.detach().numpy()[untouched], w[untouched])


def test_max_norm_bumps_the_weight_version():
    w = rg.tensor(randn(3, 2, seed=13) * 10, requires_grad=True)
    before = w._version[0]
    F.embedding(rg.tensor([0]), w, max_norm=1.0)
    assert w._version[0] == before + 1


# ---------------------------------------------------------------- the op alone
@pytest.mark.parametrize("ids, vocab", IDS_CASES)
def test_embedding_backward_alone(ids, vocab):
    check_backward_alone(Embedding, [ids, randn(vocab, 3, seed=14)])


@pytest.mark.parametrize("ids, vocab", IDS_CASES)
@pytest.mark.parametrize("padding_idx, by_freq", [(1, False), (None, True), (0, True)])
def test_embedding_backward_alone_follows_the_formula(ids, vocab, padding_idx, by_freq):
    """dL/dW[v] = sum over k with ids[k] = v of s_k dL/dy[k], s_k = 0 at padding_idx and
    1 / count(ids[k]) with scale_grad_by_freq, written as a plain loop."""
    w = randn(vocab, 3, seed=14)
    ctx = Embedding.__new__(Embedding)
    ctx.needs_input_grad = (False, True)
    y = Embedding.forward(ctx, ids, w, padding_idx=padding_idx, scale_grad_by_freq=by_freq)
    cotangent = randn(*y.shape, seed=15)
    _, grad_w = Embedding.backward(ctx, cotangent)
    expected = np.zeros_like(w)
    flat_ids, flat_rows = ids.reshape(-1), cotangent.reshape(-1, 3)
    for k, v in enumerate(flat_ids):
        if v != padding_idx:
            expected[v] += flat_rows[k] / (np.sum(flat_ids == v) if by_freq else 1)
    np.testing.assert_allclose(grad_w, expected, rtol=1e-13)


@pytest.mark.parametrize("scale", [None, "freq"])
def test_embedding_backward_op_alone(scale):
    ids = np.array([[1, 3, 3], [0, 3, 1]])
    factors = None if scale is None else randn(2, 3, 1, seed=15)
    check_backward_alone(EmbeddingBackward, [randn(2, 3, 4, seed=16)],
                         {"indices": ids, "num_embeddings": 5, "scale": factors})


def test_embedding_gradgradcheck():
    ids = rg.tensor([[2, 0, 2], [1, 2, 4]])
    w = rg.tensor(randn(5, 3, seed=17), requires_grad=True)
    # the weight enters twice, so the second derivative is not zero
    assert rg.autograd.gradgradcheck(lambda w: F.embedding(ids, w) * w[1], (w,),
                                     **GRADCHECK_TOLERANCES)


def test_double_backward_matches_torch():
    ids = np.array([[2, 0, 2], [1, 2, 4]])
    w = randn(5, 3, seed=18)
    results = []
    for lib, make in ((rg, rg.tensor), (torch, torch.tensor)):
        weight = make(w, requires_grad=True)
        fn = F.embedding if lib is rg else TF.embedding
        y = fn(make(ids), weight, padding_idx=2, scale_grad_by_freq=True)
        (g,) = lib.autograd.grad((y * y).sum(), weight, create_graph=True)
        (gg,) = lib.autograd.grad((g * make(randn(5, 3, seed=20))).sum(), weight)
        results.append((g.detach().numpy(), gg.numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


# ---------------------------------------------------------------- the scatter kernel
@pytest.mark.parametrize("chunk", [1, 7, 1 << 17])
def test_scatter_matches_add_at_on_the_2d_array(monkeypatch, chunk):
    """The chunked flat np.add.at gives what the plain 2-D np.add.at gives, also when chunk
    boundaries split the rows (chunk=7 elements with D=3 gives 2 rows per chunk)."""
    monkeypatch.setattr(embedding_ops, "_SCATTER_CHUNK", chunk)
    rng = np.random.default_rng(21)
    ids = rng.integers(0, 6, size=(5, 9))
    rows = rng.standard_normal((5, 9, 3))
    expected = np.zeros((6, 3))
    np.add.at(expected, ids.reshape(-1), rows.reshape(-1, 3))
    np.testing.assert_allclose(embedding_scatter(rows, ids, 6), expected, rtol=1e-13)


def test_scatter_keeps_the_dtype():
    rows = np.ones((4, 2), dtype=np.float32)
    out = embedding_scatter(rows, np.array([0, 0, 1, 0]), 3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[3, 3], [1, 1], [0, 0]])


# ---------------------------------------------------------------- errors
def test_out_of_range_id_names_the_id_and_the_vocabulary():
    w = rg.randn(10, 3)
    with pytest.raises(IndexError, match=r"embedding: token id 10 is out of range for a "
                                         r"vocabulary of size 10"):
        F.embedding(rg.tensor([[1, 10]]), w)
    with pytest.raises(IndexError, match=r"token id -1 .* size 10"):
        F.embedding(rg.tensor([-1, 2]), w)


def test_float_ids_are_refused():
    with pytest.raises(TypeError, match=r"embedding: token ids must be integers .* float32"):
        F.embedding(rg.tensor([1.0, 2.0]), rg.randn(4, 3))
    with pytest.raises(TypeError, match=r"token ids must be integers .* bool"):
        F.embedding(rg.tensor([True]), rg.randn(4, 3))


def test_bad_weight_and_arguments():
    with pytest.raises(ValueError, match=r"embedding: weight must be a 2-D Tensor .* \(4,\)"):
        F.embedding(rg.tensor([1]), rg.randn(4))
    with pytest.raises(TypeError, match=r"embedding: weight must be floating point"):
        F.embedding(rg.tensor([1]), rg.tensor([[1, 2]]))
    with pytest.raises(ValueError, match=r"embedding: padding_idx must be an int in \[-4, 3\]"):
        F.embedding(rg.tensor([1]), rg.randn(4, 2), padding_idx=4)
    with pytest.raises(NotImplementedError, match=r"embedding: sparse gradients"):
        F.embedding(rg.tensor([1]), rg.randn(4, 2), sparse=True)


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
def test_low_precision_weight_keeps_its_dtype(dtype):
    w = rg.tensor(randn(6, 4, seed=22)).to(dtype).requires_grad_()
    y = F.embedding(rg.tensor([[1, 5, 1]]), w, padding_idx=5, scale_grad_by_freq=True)
    assert y.dtype == dtype
    y.float().sum().backward()
    assert w.grad.dtype == dtype
    np.testing.assert_array_equal(w.grad.float().numpy()[[1, 5]], [[1.0] * 4, [0.0] * 4])


@settings(max_examples=40, deadline=None)
@given(ids_shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
       vocab=st.integers(1, 6), dim=st.integers(1, 4), chunk=st.integers(1, 40),
       seed=st.integers(0, 2**16))
def test_scatter_matches_add_at_for_any_shape(ids_shape, vocab, dim, chunk, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, size=ids_shape)
    rows = rng.standard_normal(ids_shape + (dim,))
    expected = np.zeros((vocab, dim))
    np.add.at(expected, ids.reshape(-1), rows.reshape(-1, dim))
    original = embedding_ops._SCATTER_CHUNK
    embedding_ops._SCATTER_CHUNK = chunk
    try:
        np.testing.assert_allclose(embedding_scatter(rows, ids, vocab), expected, rtol=1e-13)
    finally:
        embedding_ops._SCATTER_CHUNK = original
