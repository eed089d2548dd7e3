"""The attention mask audit (retrograd/inspect/attention_masks.py): detection on hand-made
masks, agreement with the masks retrograd's attention really applies, the fully masked row
policy (zeros, zero gradients; NaN in the textbook softmax), and exact zero gradients at
masked positions with huge or NaN values there."""

import numpy as np
import pytest

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.inspect import MaskAudit, audit_masks, audit_model, naive_attention

RNG = np.random.default_rng(0)


def _triples(audit):
    return [tuple(int(i) for i in row) for row in audit.fully_masked]


# ---------------------------------------------------------------------------- detection

def test_causal_with_left_padding_masks_the_first_queries():
    padding = np.zeros((2, 6), dtype=bool)
    padding[1, :3] = True                           # sample 1: keys 0..2 are padding
    audit = audit_masks(key_padding_mask=padding, is_causal=True, heads=2)
    assert isinstance(audit, MaskAudit)
    assert audit.shape == (2, 2, 6, 6)
    assert _triples(audit) == [(1, h, i) for h in range(2) for i in range(3)]
    assert audit.counts["fully_masked"] == 6 and audit.counts["rows"] == 24
    assert audit.lines == ["batch 1, query 0..2: every key is masked "
                           "(causal + key padding of keys 0..2)"]
    assert any("left padding" in w and "batch 1" in w for w in audit.warnings)
    assert "batch 1, query 0..2" in str(audit) and not audit.ok


def test_all_padding_sample_masks_every_query():
    padding = np.zeros((3, 4), dtype=bool)
    padding[2] = True
    audit = audit_masks(key_padding_mask=padding, query_len=5)
    assert _triples(audit) == [(2, 0, i) for i in range(5)]
    assert audit.lines == ["batch 2, query 0..4: every key is masked (key padding of keys 0..3)"]
    assert any("batch 2" in w and "every key" in w for w in audit.warnings)


@pytest.mark.parametrize("seed", range(5))
def test_no_false_positives_on_ordinary_masks(seed):
    """Causal + right padding, and random padding that keeps key 0: no row is masked."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 7, size=4)
    right = np.arange(7)[None, :] >= lengths[:, None]
    assert right.any()  # the padding really varies
    random_padding = (rng.random((4, 7)) < 0.6) & (np.arange(7) > 0)
    random_attn = (rng.random((7, 7)) < 0.6) & (np.arange(7) > 0)
    assert random_padding.any() and random_attn.any()
    for audit in (audit_masks(key_padding_mask=right, is_causal=True, heads=3),
                  audit_masks(random_attn, random_padding, heads=2)):
        assert audit.ok and audit.fully_masked.shape == (0, 3), str(audit)
        assert audit.warnings == [] and audit.errors == []


def test_per_head_masks_name_the_head():
    keep = np.ones((2, 3, 4, 5), dtype=bool)       # sdpa convention: True = take part
    keep[1, 2, 3] = False
    audit = audit_masks(keep, convention="sdpa")
    assert _triples(audit) == [(1, 2, 3)]
    assert audit.lines == ["batch 1, head 2, query 3: every key is masked (attn_mask)"]


def test_mha_attn_mask_of_batch_times_heads():
    blocked = np.zeros((2 * 2, 3, 4), dtype=bool)  # (N * H, L, S), True = not allowed
    blocked[3, 1] = True                            # batch 1, head 1, query 1
    audit = audit_masks(blocked, heads=2)
    assert audit.shape == (2, 2, 3, 4) and _triples(audit) == [(1, 1, 1)]


def test_float_masks_nan_and_posinf_are_errors():
    mask = np.zeros((3, 3))
    mask[0, 1] = np.nan
    mask[2, 0] = np.inf
    audit = audit_masks(mask)
    assert len(audit.errors) == 2 and not audit.ok
    assert "NaN" in audit.errors[0] and "+inf" in audit.errors[1]
    assert audit.counts["nan"] == 1 and audit.counts["posinf"] == 1
    # the errors are real: retrograd's attention gives NaN on those rows, finite elsewhere
    q = rg.tensor(RNG.standard_normal((3, 2)))
    out = F.scaled_dot_product_attention(q, q, q, attn_mask=rg.tensor(mask)).numpy()
    assert np.isnan(out[[0, 2]]).all() and np.isfinite(out[1]).all()


def test_very_negative_finite_rows_are_flagged_not_masked():
    mask = np.zeros((2, 3))
    mask[1] = -1e9
    audit = audit_masks(mask)
    assert audit.counts["fully_masked"] == 0 and len(audit.warnings) == 1
    assert "not -inf" in audit.warnings[0]


def test_causal_hint_with_a_non_causal_mask_is_flagged():
    eye = np.eye(3, dtype=bool)  # MHA convention: the diagonal is not allowed
    with_weights = audit_masks(eye, is_causal=True)
    without = audit_masks(eye, is_causal=True, need_weights=False)
    assert "attn_mask)" in with_weights.warnings[0] and "causal mask)" in without.warnings[0]
    assert not np.array_equal(with_weights.allowed, without.allowed)


# ---------------------------------------------------------------------------- the combination

@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("is_causal", [True, False])
@pytest.mark.parametrize("float_attn", [True, False])
def test_audit_agrees_with_multihead_attention(need_weights, is_causal, float_attn):
    """The rows the audit calls fully masked are exactly the rows whose attention output is 0
    in nn.MultiheadAttention (its weights, with need_weights)."""
    n, heads, length = 3, 2, 5
    padding = np.zeros((n, length), dtype=bool)
    padding[0, :2] = True                            # left padding
    padding[2] = True                                # a padded-out sample
    attn = np.zeros((n * heads, length, length), dtype=bool)
    attn[1, 3] = True                                # batch 0, head 1, query 3
    attn[4, :, 4] = True
    attn_mask = np.where(attn, -np.inf, RNG.standard_normal(attn.shape)) if float_attn else attn
    audit = audit_masks(attn_mask, padding, is_causal, heads=heads, need_weights=need_weights)
    assert audit.counts["fully_masked"] > length * heads  # more than the padded-out sample
    mha = rg.nn.MultiheadAttention(4, heads, batch_first=True, bias=False, dtype=rg.float64)
    x = rg.tensor(RNG.standard_normal((n, length, 4)))
    hook = audit_model(mha, x, x, x, key_padding_mask=rg.tensor(padding),
                       attn_mask=rg.tensor(attn_mask), is_causal=is_causal,
                       need_weights=need_weights, average_attn_weights=False)
    [(path, op, recorded)] = hook
    assert op == "ScaledDotProductAttention" and path == ""
    assert _triples(recorded) == _triples(audit)
    np.testing.assert_array_equal(recorded.allowed, audit.allowed)


def test_audit_model_names_the_module():
    model = rg.nn.TransformerEncoderLayer(8, 2, dim_feedforward=8, batch_first=True,
                                          dropout=0.0)
    padding = np.zeros((2, 4), dtype=bool)
    padding[1] = True
    x = rg.randn(2, 4, 8)
    [(path, op, audit)] = audit_model(model, x, src_key_padding_mask=rg.tensor(padding))
    assert path == "self_attn" and audit.counts["fully_masked"] == 8
    assert audit.lines == ["batch 1, query 0..3: every key is masked (attn_mask)"]


# ---------------------------------------------------------------------------- the policy

def _fully_masked_inputs():
    q, k, v = (RNG.standard_normal((2, 4, 3)) for _ in range(3))
    padding = np.zeros((2, 4), dtype=bool)
    padding[1, :2] = True
    audit = audit_masks(key_padding_mask=padding, is_causal=True)
    return q, k, v, audit


@pytest.mark.parametrize("fn", [F.scaled_dot_product_attention, F.memory_efficient_attention])
def test_fully_masked_rows_give_zero_output_and_zero_gradient(fn):
    q, k, v, audit = _fully_masked_inputs()
    assert _triples(audit) == [(1, 0, 0), (1, 0, 1)]
    tq, tk, tv = (rg.tensor(a, requires_grad=True) for a in (q, k, v))
    out = fn(tq, tk, tv, attn_mask=rg.tensor(audit.allowed[:, 0]))
    out.backward(rg.tensor(RNG.standard_normal(out.shape)))
    rows = audit.fully_masked[:, [0, 2]].T
    np.testing.assert_array_equal(out.detach().numpy()[tuple(rows)], 0.0)
    np.testing.assert_array_equal(tq.grad.numpy()[tuple(rows)], 0.0)
    assert np.isfinite(out.detach().numpy()).all() and np.abs(out.detach().numpy()).sum() > 0
    assert all(np.isfinite(t.grad.numpy()).all() for t in (tq, tk, tv))
    # the textbook softmax on the same input: NaN on those rows, the same values elsewhere
    naive = naive_attention(q, k, v, audit.additive[:, 0])
    assert np.isnan(naive[tuple(rows)]).all()
    finite = ~np.isnan(naive).any(-1)
    assert finite.sum() == 6
    np.testing.assert_allclose(naive[finite], out.detach().numpy()[finite], rtol=1e-12)


def test_naive_attention_is_outside_retrograd():
    q = np.ones((1, 2))
    keep = np.zeros((1, 3), dtype=bool)
    assert np.isnan(naive_attention(q, np.ones((3, 2)), np.ones((3, 1)), keep)).all()
    out = F.scaled_dot_product_attention(rg.tensor(q), rg.ones(3, 2, dtype=rg.float64),
                                         rg.ones(3, 1, dtype=rg.float64),
                                         attn_mask=rg.tensor(keep))
    np.testing.assert_array_equal(out.detach().numpy(), 0.0)


# ---------------------------------------------------------------------------- exact zeros

def _padded_case(poison):
    """q:(2, 5, 4), k, v:(2, 6, 4): keys 4, 5 of sample 0 and keys 3..5 of sample 1 are
    padding. ``poison`` puts huge values (q.k ~ 1e30) or NaN into k and v at the padding."""
    q, k, v = (RNG.standard_normal((2, n, 4)) for n in (5, 6, 6))
    padded = np.zeros((2, 6), dtype=bool)
    padded[0, 4:] = True
    padded[1, 3:] = True
    if poison == "huge":
        k[padded] = 1e30
        v[padded] = 1e30
    elif poison == "nan":
        k[padded] = np.nan
        v[padded] = np.nan
    return q, k, v, padded


def _check_exact_zeros(q, k, v, padded, run):
    """Run attention on leaves q, k, v; the padded key rows get exactly zero gradients, the
    outputs and other gradients are finite."""
    tensors = [rg.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = run(*tensors)
    assert np.isfinite(out.detach().numpy()).all(), "non-finite output"
    out.backward(rg.tensor(RNG.standard_normal(out.shape)))
    grad_q, grad_k, grad_v = (t.grad.numpy() for t in tensors)
    assert np.array_equal(grad_k[padded], np.zeros_like(grad_k[padded]))
    assert np.array_equal(grad_v[padded], np.zeros_like(grad_v[padded]))
    assert np.abs(grad_k[~padded]).sum() > 0 and np.abs(grad_v[~padded]).sum() > 0
    assert all(np.isfinite(g).all() for g in (grad_q, grad_k, grad_v)), "non-finite gradient"


def _functional_runs(padded):
    keep = rg.tensor(~padded[:, None, :])                     # (2, 1, 6): True = take part
    additive = np.where(padded[:, None, :], -np.inf, RNG.standard_normal((2, 5, 6)))
    return {
        "sdpa bool": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=keep),
        "sdpa float": lambda q, k, v: F.scaled_dot_product_attention(
            q, k, v, attn_mask=rg.tensor(additive)),
        "memory-efficient bool": lambda q, k, v: F.memory_efficient_attention(
            q, k, v, attn_mask=keep, block_size=2),
        "memory-efficient float": lambda q, k, v: F.memory_efficient_attention(
            q, k, v, attn_mask=rg.tensor(additive), block_size=4),
    }


NAN_LEAK = ("the ops compute P @ V and dL/dS @ K as plain matmuls: a weight of exactly 0 at a "
            "padded key times a NaN in that key's v (or k) row is NaN (0 * NaN), so the NaN "
            "reaches the output of every query and every gradient (PyTorch does the same)")


@pytest.mark.parametrize("run", list(_functional_runs(np.zeros((2, 6), dtype=bool))))
@pytest.mark.parametrize("poison", [
    "none", "huge", pytest.param("nan", marks=pytest.mark.xfail(strict=True, reason=NAN_LEAK))])
def test_padded_keys_get_exactly_zero_gradient(run, poison):
    q, k, v, padded = _padded_case(poison)
    _check_exact_zeros(q, k, v, padded, _functional_runs(padded)[run])


def test_huge_scores_really_sit_at_the_padding():
    q, k, _, padded = _padded_case("huge")
    scores = np.abs(q @ np.swapaxes(k, -1, -2))
    assert scores[np.broadcast_to(padded[:, None, :], scores.shape)].min() > 1e27
    assert scores[np.broadcast_to(~padded[:, None, :], scores.shape)].max() < 100


@pytest.mark.parametrize("poison", [
    "none", "huge", pytest.param("nan", marks=pytest.mark.xfail(strict=True, reason=NAN_LEAK))])
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_padded_inputs_get_exactly_zero_gradient(poison, need_weights):
    """Self-attention through nn.MultiheadAttention with a key padding mask: the padded input
    rows reach the output only through masked keys and values (as queries, they are cut off
    by the loss), so their gradient is exactly 0."""
    _, _, x, padded = _padded_case(poison)
    mha = rg.nn.MultiheadAttention(4, 2, batch_first=True, dtype=rg.float64)
    tx = rg.tensor(x, requires_grad=True)
    out, _ = mha(tx, tx, tx, key_padding_mask=rg.tensor(padded), need_weights=need_weights)
    cotangent = RNG.standard_normal(out.shape)
    # NOTE: multiplying by the 0/1 mask would give 0 * NaN; the loss reads the real rows only
    loss = (out[~padded] * rg.tensor(cotangent[~padded])).sum()
    assert np.isfinite(out.detach().numpy()[~padded]).all(), "non-finite output at real positions"
    loss.backward()
    grad = tx.grad.numpy()
    assert np.array_equal(grad[padded], np.zeros_like(grad[padded]))
    assert np.isfinite(grad).all() and np.abs(grad[~padded]).sum() > 0
