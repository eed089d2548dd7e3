"""nn.Embedding against torch.nn.Embedding (lookup, gradients, init, from_pretrained,
max_norm, errors naming the module) and the positional encodings: the sinusoidal table
against a NumPy reference and the formula, the learned table's gradient accumulating over
the batch, RoPE against a rotate-half reference in PyTorch, its norm preservation and
relative-position property, and their errors."""

import math

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import GRADCHECK_TOLERANCES, check_op, randn, to_torch


# ---------------------------------------------------------------- Embedding
@pytest.mark.parametrize("padding_idx, scale", [(None, False), (2, False), (None, True),
                                                (-1, True)])
def test_embedding_module_matches_torch(padding_idx, scale):
    torch.manual_seed(0)
    theirs = torch.nn.Embedding(6, 4, padding_idx=padding_idx, scale_grad_by_freq=scale,
                                dtype=torch.float64)
    ours = rg.nn.Embedding(6, 4, padding_idx=padding_idx, scale_grad_by_freq=scale,
                           dtype=rg.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ids = np.array([[5, 2, 2, 0], [1, 5, 5, 5]])
    cotangent = randn(2, 4, 4, seed=1)
    y, ty = ours(rg.tensor(ids)), theirs(torch.tensor(ids))
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    y.backward(rg.tensor(cotangent))
    ty.backward(to_torch(cotangent))
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-13)
    assert ours.padding_idx == theirs.padding_idx


def test_embedding_init_is_standard_normal_with_a_zero_padding_row():
    emb = rg.nn.Embedding(1000, 64, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert emb.weight.dtype == rg.float32 and emb.weight.requires_grad
    np.testing.assert_array_equal(w[3], 0.0)
    others = np.delete(w, 3, axis=0)
    assert abs(others.mean()) < 0.01 and abs(others.std() - 1.0) < 0.01


def test_padding_row_stays_fixed_under_training():
    emb = rg.nn.Embedding(5, 3, padding_idx=0)
    opt = rg.optim.SGD(emb.parameters(), lr=1.0)
    for _ in range(3):
        opt.zero_grad()
        (emb(rg.tensor([[0, 1, 0, 2]])) ** 2).sum().backward()
        opt.step()
    np.testing.assert_array_equal(emb.weight.detach().numpy()[0], 0.0)


def test_from_pretrained():
    table = randn(4, 3, seed=2)
    frozen = rg.nn.Embedding.from_pretrained(rg.tensor(table))
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(rg.tensor([3, 0])).numpy(), table[[3, 0]])
    trainable = rg.nn.Embedding.from_pretrained(table, freeze=False, padding_idx=1)
    assert trainable.weight.requires_grad and trainable.padding_idx == 1
    # as in PyTorch, the pretrained padding row is kept (not zeroed) but gets no gradient
    np.testing.assert_array_equal(trainable.weight.detach().numpy()[1], table[1])
    trainable(rg.tensor([1, 2])).sum().backward()
    np.testing.assert_array_equal(trainable.weight.grad.numpy()[[0, 1, 3]], 0.0)
    with pytest.raises(ValueError, match=r"from_pretrained: embeddings must be 2-D"):
        rg.nn.Embedding.from_pretrained(rg.zeros(3))


def test_embedding_module_max_norm_matches_torch():
    torch.manual_seed(3)
    theirs = torch.nn.Embedding(5, 4, max_norm=1.0, dtype=torch.float64)
    ours = rg.nn.Embedding(5, 4, max_norm=1.0, dtype=rg.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ids = np.array([4, 1, 4])
    np.testing.assert_allclose(ours(rg.tensor(ids)).detach().numpy(),
                               theirs(torch.tensor(ids)).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-12)


def test_embedding_module_state_dict_and_repr():
    emb = rg.nn.Embedding(7, 2, padding_idx=0)
    assert list(emb.state_dict()) == ["weight"]
    assert repr(emb) == "Embedding(7, 2, padding_idx=0)"


def test_embedding_module_errors_name_the_module_id_and_vocabulary():
    emb = rg.nn.Embedding(10, 3)
    with pytest.raises(IndexError, match=r"Embedding\(10, 3\): token id 12 is out of range for "
                                         r"a vocabulary of size 10 .*input of shape \(1, 3\), "
                                         r"weight of shape \(10, 3\)"):
        emb(rg.tensor([[1, 12, 3]]))
    with pytest.raises(IndexError, match=r"Embedding\(10, 3\): token id -2"):
        emb(rg.tensor([-2]))
    with pytest.raises(TypeError, match=r"Embedding\(10, 3\): token ids must be integers .*"
                                        r"float32"):
        emb(rg.tensor([1.0]))
    with pytest.raises(ValueError, match=r"Embedding: padding_idx must be an int in \[-10, 9\]"):
        rg.nn.Embedding(10, 3, padding_idx=10)
    with pytest.raises(ValueError, match=r"Embedding: num_embeddings must be a positive int"):
        rg.nn.Embedding(0, 3)
    with pytest.raises(NotImplementedError, match=r"Embedding\(10, 3\): sparse gradients"):
        rg.nn.Embedding(10, 3, sparse=True)(rg.tensor([1]))


# ---------------------------------------------------------------- sinusoidal
def _sinusoid_reference(max_len, d_model):
    """Entry by entry from the paper's formula, with Python's math module."""
    pe = np.zeros((max_len, d_model))
    for pos in range(max_len):
        for j in range(d_model):
            angle = pos / 10000 ** ((j - j % 2) / d_model)
            pe[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe


@pytest.mark.parametrize("max_len, d_model", [(50, 16), (7, 5), (3, 1), (1, 2)])
def test_sinusoidal_table_equals_the_formula(max_len, d_model):
    from retrograd.nn.embedding import sinusoidal_table
    np.testing.assert_allclose(sinusoidal_table(max_len, d_model),
                               _sinusoid_reference(max_len, d_model), rtol=1e-12, atol=1e-12)


def test_sinusoidal_table_known_entries():
    from retrograd.nn.embedding import sinusoidal_table
    pe = sinusoidal_table(100, 8)
    assert pe[0].tolist() == [0.0, 1.0] * 4
    assert pe[1, 0] == pytest.approx(math.sin(1.0), abs=1e-15)
    assert pe[10, 3] == pytest.approx(math.cos(10 / 10000 ** (2 / 8)), abs=1e-15)
    assert pe[99, 6] == pytest.approx(math.sin(99 / 10000 ** (6 / 8)), abs=1e-15)


@pytest.mark.parametrize("batch_first, shape", [(True, (2, 5, 6)), (False, (5, 2, 6)),
                                                (True, (5, 6)), (False, (5, 6))])
def test_sinusoidal_module_adds_the_table(batch_first, shape):
    x = randn(*shape, seed=4)
    table = _sinusoid_reference(5, 6)
    if len(shape) == 3:
        table = table[None] if batch_first else table[:, None]
    exact = rg.nn.SinusoidalPositionalEncoding(6, max_len=20, batch_first=batch_first,
                                               dtype=rg.float64)
    y = exact(rg.tensor(x))
    assert y.dtype == rg.float64
    np.testing.assert_allclose(y.numpy(), x + table, rtol=1e-12, atol=1e-12)
    # the default table is float32, cast to the input's dtype when added
    pos = rg.nn.SinusoidalPositionalEncoding(6, max_len=20, batch_first=batch_first)
    np.testing.assert_allclose(pos(rg.tensor(x)).numpy(), x + table, rtol=0, atol=1e-7)


def test_sinusoidal_module_is_a_constant_with_no_parameters():
    pos = rg.nn.SinusoidalPositionalEncoding(8, max_len=10)
    assert list(pos.parameters()) == [] and list(pos.state_dict()) == []
    assert [name for name, _ in pos.named_buffers()] == ["pe"]
    assert pos.pe.shape == (10, 8) and pos.pe.dtype == rg.float32
    x = rg.tensor(randn(3, 4, 8, seed=5), requires_grad=True)
    cotangent = randn(3, 4, 8, seed=6)
    pos(x).backward(rg.tensor(cotangent))
    np.testing.assert_array_equal(x.grad.numpy(), cotangent)   # dL/dx = dL/dy


def test_sinusoidal_offset_and_float32():
    pos = rg.nn.SinusoidalPositionalEncoding(4, max_len=10)
    y = pos(rg.zeros(1, 3, 4), offset=5)
    assert y.dtype == rg.float32
    np.testing.assert_allclose(y.numpy()[0], _sinusoid_reference(8, 4)[5:8], atol=1e-7)


def test_sinusoidal_dropout_only_in_training():
    pos = rg.nn.SinusoidalPositionalEncoding(16, max_len=64, dropout=0.5)
    x = rg.ones(4, 32, 16)
    assert (pos(x).numpy() == 0).any()
    pos.eval()
    assert not (pos(x).numpy() == 0).any()


def test_sinusoidal_errors():
    pos = rg.nn.SinusoidalPositionalEncoding(8, max_len=10)
    with pytest.raises(ValueError, match=r"SinusoidalPositionalEncoding: positions 0..11 "
                                         r"\(sequence length 12, offset 0\) exceed max_len 10"):
        pos(rg.zeros(2, 12, 8))
    with pytest.raises(ValueError, match=r"positions 8..10 .* exceed max_len 10"):
        pos(rg.zeros(2, 3, 8), offset=8)
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, seq_len, d_model\) "
                                         r"or \(seq_len, d_model\) with d_model = 8, got "
                                         r"\(2, 3, 7\)"):
        pos(rg.zeros(2, 3, 7))


# ---------------------------------------------------------------- learned
def test_learned_gradient_accumulates_over_the_batch():
    pos = rg.nn.LearnedPositionalEmbedding(max_len=6, d_model=3, dtype=rg.float64)
    x = rg.tensor(randn(4, 5, 3, seed=7), requires_grad=True)
    cotangent = randn(4, 5, 3, seed=8)
    y = pos(x)
    np.testing.assert_allclose(y.detach().numpy(),
                               x.detach().numpy() + pos.weight.detach().numpy()[:5], rtol=1e-14)
    y.backward(rg.tensor(cotangent))
    expected = np.zeros((6, 3))
    expected[:5] = cotangent.sum(axis=0)      # row t: the sum over the batch at position t
    np.testing.assert_allclose(pos.weight.grad.numpy(), expected, rtol=1e-13)
    np.testing.assert_array_equal(x.grad.numpy(), cotangent)


def test_learned_matches_a_torch_parameter_slice():
    """Sequence-first layout with an offset, against the same computation in PyTorch."""
    pos = rg.nn.LearnedPositionalEmbedding(max_len=9, d_model=4, batch_first=False,
                                           dtype=rg.float64)
    weight = pos.weight.detach().numpy().copy()
    check_op(lambda x: pos(x, offset=2),
             lambda x: x + torch.tensor(weight)[2:7, None, :], randn(5, 3, 4, seed=9))
    tw = torch.tensor(weight, requires_grad=True)
    x = randn(5, 3, 4, seed=10)
    (torch.tensor(x) + tw[2:7, None, :]).pow(2).sum().backward()
    pos.weight.grad = None
    (pos(rg.tensor(x), offset=2) ** 2).sum().backward()
    np.testing.assert_allclose(pos.weight.grad.numpy(), tw.grad.numpy(), rtol=1e-13)


def test_learned_init_and_state_dict():
    pos = rg.nn.LearnedPositionalEmbedding(max_len=512, d_model=64)
    w = pos.weight.detach().numpy()
    assert w.dtype == np.float32 and abs(w.std() - 0.02) < 0.001
    assert list(pos.state_dict()) == ["weight"]


def test_learned_errors_name_both_lengths():
    pos = rg.nn.LearnedPositionalEmbedding(max_len=8, d_model=4)
    with pytest.raises(ValueError, match=r"LearnedPositionalEmbedding: positions 0..9 "
                                         r"\(sequence length 10, offset 0\) exceed max_len 8"):
        pos(rg.zeros(2, 10, 4))
    with pytest.raises(ValueError, match=r"LearnedPositionalEmbedding: max_len must be a "
                                         r"positive int"):
        rg.nn.LearnedPositionalEmbedding(0, 4)


# ---------------------------------------------------------------- rotary
def _torch_rope(x, base=10000.0, offset=0):
    """The rotate-half RoPE of GPT-NeoX / LLaMA (Hugging Face's apply_rotary_pos_emb),
    written independently in PyTorch."""
    dim, length = x.shape[-1], x.shape[-2]
    inv_freq = 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    t = torch.arange(offset, offset + length, dtype=torch.float64)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    x1, x2 = x[..., :dim // 2], x[..., dim // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


@pytest.mark.parametrize("shape, offset", [((2, 3, 5, 8), 0), ((4, 6), 0), ((1, 1, 2), 3),
                                           ((2, 7, 4), 10)])
def test_rope_matches_the_rotate_half_reference(shape, offset):
    rope = rg.nn.RotaryEmbedding(shape[-1], max_len=32, dtype=rg.float64)
    check_op(lambda x: rope(x, offset=offset), lambda x: _torch_rope(x, offset=offset),
             randn(*shape, seed=11))


def test_rope_float32_and_q_k_pair():
    rope = rg.nn.RotaryEmbedding(16, max_len=64, base=500.0)
    q, k = randn(2, 4, 9, 16, seed=12), randn(2, 4, 9, 16, seed=13)
    check_op(lambda q, k: rope(q, k), lambda q, k: (_torch_rope(q, 500.0), _torch_rope(k, 500.0)),
             q, k, dtype=np.float32)


def test_rope_preserves_norms():
    rope = rg.nn.RotaryEmbedding(8, max_len=100, dtype=rg.float64)
    x = randn(3, 50, 8, seed=14)
    y = rope(rg.tensor(x)).numpy()
    np.testing.assert_allclose(np.linalg.norm(y, axis=-1), np.linalg.norm(x, axis=-1),
                               rtol=1e-13)


def test_rope_scores_depend_only_on_the_relative_position():
    """<rope(q)_m, rope(k)_n> with the same q at every position and the same k: equal for
    equal m - n, and different for different m - n."""
    rope = rg.nn.RotaryEmbedding(8, max_len=64, dtype=rg.float64)
    q, k = randn(8, seed=15), randn(8, seed=16)
    qs = rope(rg.tensor(np.tile(q, (20, 1)))).numpy()
    ks = rope(rg.tensor(np.tile(k, (20, 1)))).numpy()
    scores = qs @ ks.T                                   # scores[m, n]
    for delta in (-5, 0, 3, 11):
        diagonal = np.diagonal(scores, offset=-delta)    # entries with m - n = delta
        np.testing.assert_allclose(diagonal, diagonal[0], rtol=1e-12)
    assert not np.isclose(np.diagonal(scores, 0)[0], np.diagonal(scores, -3)[0])
    # offset shifts both positions: the scores do not change
    shifted = rope(rg.tensor(np.tile(q, (20, 1))), offset=7).numpy() @ \
        rope(rg.tensor(np.tile(k, (20, 1))), offset=7).numpy().T
    np.testing.assert_allclose(shifted, scores, rtol=1e-11)


def test_rope_double_backward():
    rope = rg.nn.RotaryEmbedding(4, max_len=8, dtype=rg.float64)
    x = rg.tensor(randn(2, 3, 4, seed=17), requires_grad=True)
    assert rg.autograd.gradgradcheck(lambda x: rope(x) * x, (x,), **GRADCHECK_TOLERANCES)


def test_rope_buffers_and_errors():
    rope = rg.nn.RotaryEmbedding(6, max_len=5)
    assert list(rope.state_dict()) == [] and list(rope.parameters()) == []
    assert rope.cos.shape == (5, 6)
    with pytest.raises(ValueError, match=r"RotaryEmbedding: head_dim must be even"):
        rg.nn.RotaryEmbedding(5)
    with pytest.raises(ValueError, match=r"RotaryEmbedding: positions 0..5 \(sequence length "
                                         r"6, offset 0\) exceed max_len 5"):
        rope(rg.zeros(2, 6, 6))
    with pytest.raises(ValueError, match=r"RotaryEmbedding: expected input of shape "
                                         r"\(\*, seq_len, 6\), got \(2, 3, 4\)"):
        rope(rg.zeros(2, 3, 4))
