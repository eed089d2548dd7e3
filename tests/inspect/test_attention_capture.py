"""capture_attention against PyTorch's explicit attention (S = q k^T * scale + mask, A =
softmax(S), O = A v, with S and A retaining their gradients) on the same inputs and weights,
in float64: per head A, dL/dA, dL/dS and the q/k/v gradient norms, for causal, key-padding,
cross-attention, MultiheadAttention, dropout and the memory-efficient op. Diagnostics against
a direct NumPy computation; selection stores only what was asked; nothing outside the block."""

import math

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd.grad_mode import STATE
from retrograd.inspect import AttentionRecord, attention_diagnostics, capture_attention
from retrograd.nn import functional as F
from retrograd.ops.attention import MemoryEfficientAttention, ScaledDotProductAttention

RTOL, ATOL = 1e-10, 1e-12


def _rand(rng, *shape):
    return rng.standard_normal(shape)


def torch_attention(q, k, v, cotangent, allow=None, causal=False, scale=None, dropout=None):
    """Explicit attention in torch; returns (S, A, dL/dA, dL/dS, |dq|, |dk|, |dv|) per head,
    the norms over the last two dims. ``allow``: bool, True = take part."""
    q, k, v = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-1, -2) * scale
    if allow is not None:
        s = s.masked_fill(~torch.tensor(allow), -math.inf)
    if causal:
        blocked = torch.ones(s.shape[-2:], dtype=torch.bool).triu(1)
        s = s.masked_fill(blocked, -math.inf)
    s.retain_grad()
    a = torch.softmax(s, dim=-1)
    a.retain_grad()
    kept = a if dropout is None else a * torch.tensor(dropout)
    (kept @ v * torch.tensor(cotangent)).sum().backward()
    norms = [t.grad.square().sum(dim=(-2, -1)).sqrt().numpy() for t in (q, k, v)]
    return (s.detach().numpy(), a.detach().numpy(), a.grad.numpy(), s.grad.numpy(), *norms)


def assert_record_matches(record, expected):
    s, a, grad_a, grad_s, q_norm, k_norm, v_norm = expected
    np.testing.assert_allclose(record.logits, s, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(record.probs, a, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(record.grad_probs, grad_a, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(record.grad_logits, grad_s, rtol=RTOL, atol=ATOL)
    for got, want in ((record.q_grad_norm, q_norm), (record.k_grad_norm, k_norm),
                      (record.v_grad_norm, v_norm)):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    assert np.abs(grad_s).max() > 1e-3   # the comparison is not of zeros


def run_functional(fn, q, k, v, cotangent, **kwargs):
    tq, tk, tv = (rg.tensor(a, requires_grad=True) for a in (q, k, v))
    with capture_attention() as rec:
        out = fn(tq, tk, tv, **kwargs)
        (out * rg.tensor(cotangent)).sum().backward()
    assert len(rec.records) == 1
    return rec.records[0]


@pytest.mark.parametrize("fn", [F.scaled_dot_product_attention,
                                lambda *a, **kw: F.memory_efficient_attention(*a, block_size=2,
                                                                              **kw)],
                         ids=["sdpa", "memory_efficient"])
@pytest.mark.parametrize("case", ["causal", "padding", "cross"])
def test_functional_matches_torch(fn, case):
    rng = np.random.default_rng(1)
    n, h, length, keys, e = 2, 3, 5, (7 if case == "cross" else 5), 4
    q, k, v = _rand(rng, n, h, length, e), _rand(rng, n, h, keys, e), _rand(rng, n, h, keys, 3)
    cotangent = _rand(rng, n, h, length, 3)
    allow = None
    if case == "padding":   # sample 1's last two keys are padding
        allow = np.ones((n, 1, 1, keys), dtype=bool)
        allow[1, ..., -2:] = False
    kwargs = {"is_causal": case == "causal"}
    if allow is not None:
        kwargs["attn_mask"] = rg.tensor(allow)
    record = run_functional(fn, q, k, v, cotangent, **kwargs)
    assert record.probs.shape == (n, h, length, keys)
    assert record.module_path is None and record.call_index == 0
    assert_record_matches(record, torch_attention(q, k, v, cotangent, allow=allow,
                                                  causal=case == "causal"))
    if case == "padding":
        assert np.all(record.probs[1, ..., -2:] == 0.0)
        assert np.all(np.isneginf(record.logits[1, ..., -2:]))


@pytest.mark.parametrize("batch", [(), (3,)], ids=["unbatched", "one-batch-dim"])
def test_fewer_than_two_batch_dims_are_one_head_per_sample(batch):
    # q, k, v of (L, E) or (N, L, E): each sample is one head, recorded as (N, 1, L, S)
    rng = np.random.default_rng(5)
    q, k, v = _rand(rng, *batch, 4, 2), _rand(rng, *batch, 6, 2), _rand(rng, *batch, 6, 3)
    cotangent = _rand(rng, *batch, 4, 3)
    record = run_functional(F.scaled_dot_product_attention, q, k, v, cotangent)
    samples = batch[0] if batch else 1
    assert record.probs.shape == (samples, 1, 4, 6)
    expected = torch_attention(q, k, v, cotangent)
    shaped = [x.reshape(samples, 1, *x.shape[-2:]) for x in expected[:4]]
    norms = [np.reshape(x, (samples, 1)) for x in expected[4:]]
    assert_record_matches(record, (*shaped, *norms))


def test_memory_efficient_op_is_the_one_recorded():
    rng = np.random.default_rng(2)
    q = _rand(rng, 1, 2, 4, 3)
    record = run_functional(lambda *a, **kw: F.memory_efficient_attention(*a, block_size=3),
                            q, q, q, _rand(rng, 1, 2, 4, 3))
    assert record.op == "MemoryEfficientAttention"


def test_dropout_uses_probabilities_before_dropout():
    rng = np.random.default_rng(3)
    q, k, v = _rand(rng, 2, 2, 4, 3), _rand(rng, 2, 2, 6, 3), _rand(rng, 2, 2, 6, 3)
    cotangent = _rand(rng, 2, 2, 4, 3)
    tq, tk, tv = (rg.tensor(a, requires_grad=True) for a in (q, k, v))
    with capture_attention() as rec:
        out = F.scaled_dot_product_attention(tq, tk, tv, dropout_p=0.4)
        dropout = out.grad_fn.dropout          # the op's mask R, kept on its ctx
        (out * rg.tensor(cotangent)).sum().backward()
    assert 0 < np.count_nonzero(dropout == 0.0) < dropout.size
    assert_record_matches(rec.records[0], torch_attention(q, k, v, cotangent, dropout=dropout))


@pytest.mark.parametrize("op", [ScaledDotProductAttention, MemoryEfficientAttention])
def test_gradient_of_the_second_output_matches_torch(op):
    """The weights output A (fused op) or lse (blocked op) also reaches the loss."""
    rng = np.random.default_rng(8)
    q, k, v = _rand(rng, 2, 2, 4, 3), _rand(rng, 2, 2, 5, 3), _rand(rng, 2, 2, 5, 3)
    cotangent = _rand(rng, 2, 2, 4, 3)
    second = _rand(rng, 2, 2, 4, 5) if op is ScaledDotProductAttention else _rand(rng, 2, 2, 4)
    tq, tk, tv = (rg.tensor(a, requires_grad=True) for a in (q, k, v))
    with capture_attention() as rec:
        out, extra = op.apply(tq, tk, tv, None, scale=0.7)
        ((out * rg.tensor(cotangent)).sum() + (extra * rg.tensor(second)).sum()).backward()
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    s = tq @ tk.transpose(-1, -2) * 0.7
    s.retain_grad()
    a = torch.softmax(s, dim=-1)
    a.retain_grad()
    extra = a if op is ScaledDotProductAttention else torch.logsumexp(s, dim=-1)
    ((a @ tv * torch.tensor(cotangent)).sum() + (extra * torch.tensor(second)).sum()).backward()
    record = rec.records[0]
    np.testing.assert_allclose(record.grad_probs, a.grad.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(record.grad_logits, s.grad.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(record.q_grad_norm, tq.grad.square().sum((-2, -1)).sqrt().numpy(),
                               rtol=RTOL)


class _Attend(rg.nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = rg.nn.MultiheadAttention(width, heads, batch_first=True, dtype=rg.float64)

    def forward(self, x, memory, padding):
        return self.attn(x, memory, memory, key_padding_mask=padding)[0]


def torch_mha(mha, x, memory, padding, cotangent):
    """MultiheadAttention written out in torch from the retrograd layer's weights."""
    w = torch.tensor(mha.in_proj_weight.detach().numpy())
    b = torch.tensor(mha.in_proj_bias.detach().numpy())
    heads, width = mha.num_heads, w.shape[1]
    d = width // heads

    def project(t, i):
        y = torch.tensor(t) @ w[i * width:(i + 1) * width].T + b[i * width:(i + 1) * width]
        return y.reshape(t.shape[0], t.shape[1], heads, d).permute(0, 2, 1, 3).detach()

    q, k, v = project(x, 0), project(memory, 1), project(memory, 2)
    for t in (q, k, v):
        t.requires_grad_(True)
    s = q @ k.transpose(-1, -2) / math.sqrt(d)
    s = s.masked_fill(torch.tensor(padding)[:, None, None, :], -math.inf)
    s.retain_grad()
    a = torch.softmax(s, dim=-1)
    a.retain_grad()
    o = (a @ v).permute(0, 2, 1, 3).reshape(x.shape[0], x.shape[1], width)
    out_w, out_b = (torch.tensor(t.detach().numpy()) for t in (mha.out_proj.weight,
                                                               mha.out_proj.bias))
    y = o @ out_w.T + out_b
    (y * torch.tensor(cotangent)).sum().backward()
    norms = [t.grad.square().sum(dim=(-2, -1)).sqrt().numpy() for t in (q, k, v)]
    return (s.detach().numpy(), a.detach().numpy(), a.grad.numpy(), s.grad.numpy(), *norms)


def test_multihead_attention_batch_first_cross_attention_matches_torch():
    rng = np.random.default_rng(4)
    model = _Attend(8, 2)
    x, memory = _rand(rng, 3, 4, 8), _rand(rng, 3, 6, 8)
    padding = np.zeros((3, 6), dtype=bool)
    padding[2, 4:] = True           # True = padding, MultiheadAttention's convention
    cotangent = _rand(rng, 3, 4, 8)
    with capture_attention(model=model, layers=[model.attn]) as rec:
        out = model(rg.tensor(x), rg.tensor(memory), rg.tensor(padding))
        (out * rg.tensor(cotangent)).sum().backward()
    assert rec.paths() == ["attn"]
    assert_record_matches(rec["attn"][0], torch_mha(model.attn, x, memory, padding, cotangent))


def test_gpt_blocks_are_recorded_by_path():
    from retrograd.models.gpt import GPT, GPTConfig
    model = GPT(GPTConfig(vocab_size=11, n_layer=2, n_head=2, d_model=8, context=6))
    tokens = rg.tensor(np.random.default_rng(5).integers(0, 11, (2, 6)))
    with capture_attention(layers=lambda path: path.endswith("1.attn")) as rec:
        model(tokens).sum().backward()
    (path,) = rec.paths()
    record = rec[path, 0]
    assert path.endswith("1.attn") and record.grad_logits.shape == (2, 2, 6, 6)
    np.testing.assert_allclose(record.probs.sum(-1), 1.0, rtol=1e-5)
    assert np.all(record.probs[..., np.triu_indices(6, 1)[0], np.triu_indices(6, 1)[1]] == 0)


def test_selection_stores_only_what_was_asked():
    rng = np.random.default_rng(6)
    q, k, v = _rand(rng, 3, 4, 5, 2), _rand(rng, 3, 4, 6, 2), _rand(rng, 3, 4, 6, 2)
    cotangent = _rand(rng, 3, 4, 5, 2)

    def run(**select):
        tq, tk, tv = (rg.tensor(a, requires_grad=True) for a in (q, k, v))
        with capture_attention(**select) as rec:
            out = F.scaled_dot_product_attention(tq, tk, tv)
            (out * rg.tensor(cotangent)).sum().backward()
        return rec

    full, part = run(), run(heads=[3, 1], samples=[2])
    whole, some = full.records[0], part.records[0]
    assert some.probs.shape == (1, 2, 5, 6) and some.heads == (3, 1) and some.samples == (2,)
    for name in ("logits", "probs", "grad_probs", "grad_logits", "q_grad_norm",
                 "k_grad_norm", "v_grad_norm"):
        np.testing.assert_array_equal(getattr(some, name),
                                      getattr(whole, name)[[2]][:, [3, 1]])
    assert part.nbytes == 8 * (4 * 1 * 2 * 5 * 6 + 3 * 1 * 2)
    assert full.nbytes == 8 * (4 * 3 * 4 * 5 * 6 + 3 * 3 * 4)
    assert len(run(layers=["nowhere"]).records) == 0
    with pytest.raises(IndexError, match="heads"):
        run(heads=[4])


def test_nothing_captured_outside_the_block():
    q = rg.randn(1, 2, 3, 4, dtype=rg.float64, requires_grad=True)
    with capture_attention() as rec:
        out = F.scaled_dot_product_attention(q, q, q)
    assert STATE.observers == ()
    out.sum().backward()                                  # backward after the block
    F.scaled_dot_product_attention(q, q, q).sum().backward()
    assert len(rec.records) == 1 and rec.records[0].grad_probs is None


# ---------------------------------------------------------------------- diagnostics
def direct_diagnostics(logits, probs, grad_probs, head):
    """HeadDiagnostics' fields computed row by row."""
    rows = []
    for n in range(probs.shape[0]):
        for i in range(probs.shape[2]):
            keys = np.isfinite(logits[n, head, i])
            if keys.any():
                rows.append((probs[n, head, i], keys.sum()))
    entropy = [-sum(x * math.log(x) for x in p if x > 0) for p, _ in rows]
    normalized = [h / math.log(m) for h, (_, m) in zip(entropy, rows) if m > 1]
    top = [p.max() for p, _ in rows]
    jac = [np.linalg.norm(np.diag(p) - np.outer(p, p), "fro") for p, _ in rows]
    finite = logits[:, head][np.isfinite(logits[:, head])]
    return dict(entropy=np.mean(entropy), normalized_entropy=np.mean(normalized),
                max_prob=np.mean(top), saturated_fraction=np.mean(np.array(top) > 0.99),
                logit_std=finite.std(), logit_max=finite.max(), jacobian_norm=np.mean(jac),
                importance=np.abs(probs[:, head] * grad_probs[:, head]).sum())


def test_diagnostics_equal_a_direct_computation():
    rng = np.random.default_rng(7)
    logits = 2.0 * _rand(rng, 2, 4, 5, 6)
    logits[:, 1] = 0.0                        # head 1: uniform
    logits[:, 2, :, 0] = 50.0                 # head 2: saturated on key 0
    logits[1, :, 3, 2:] = -np.inf             # padding / one query sees two keys
    logits[0, :, 4, :] = -np.inf              # a fully masked row
    shift = logits.max(-1, keepdims=True, initial=0.0, where=np.isfinite(logits))
    probs = np.where(np.isfinite(logits), np.exp(logits - shift), 0.0)
    probs /= np.maximum(probs.sum(-1, keepdims=True), 1e-300)
    grad_probs = _rand(rng, 2, 4, 5, 6)
    grad_probs[:, 3] = 1e-9 * grad_probs[:, 3]   # head 3: dead
    record = AttentionRecord("attn", 0, logits, probs, grad_probs=grad_probs)
    diagnostics = attention_diagnostics(record)
    for head in range(4):
        expected = direct_diagnostics(logits, probs, grad_probs, head)
        got = diagnostics[head]
        for name, value in expected.items():
            np.testing.assert_allclose(getattr(got, name), value, rtol=1e-12, atol=1e-15,
                                       err_msg=name)
    assert [d.uniform for d in diagnostics] == [False, True, False, False]
    assert [d.dead for d in diagnostics] == [False, False, False, True]
    assert diagnostics[2].saturated_fraction > 0.5
    table = str(diagnostics)
    assert "uniform" in table and "dead" in table and "H/log n" in table


def test_grouped_query_heads_are_numbered_as_the_query_heads():
    rng = np.random.default_rng(9)
    q, k, v = _rand(rng, 2, 4, 3, 5), _rand(rng, 2, 2, 6, 5), _rand(rng, 2, 2, 6, 5)

    def run(q, k, v, **kwargs):
        tensors = [rg.tensor(a, requires_grad=True) for a in (q, k, v)]
        with capture_attention() as rec:
            F.scaled_dot_product_attention(*tensors, **kwargs).sum().backward()
        return rec.records[0]

    grouped = run(q, k, v, enable_gqa=True)
    repeated = run(q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1))
    assert grouped.probs.shape == (2, 4, 3, 6)
    for name in ("logits", "probs", "grad_probs", "grad_logits", "q_grad_norm"):
        np.testing.assert_allclose(getattr(grouped, name), getattr(repeated, name), rtol=RTOL)


def test_the_case_studies_attention_is_captured_by_module_path():
    """ViT's encoder blocks and the seq2seq Transformer's encoder self-attention, decoder
    self-attention and cross-attention all run through the attention ops: each call is
    captured under its layer's path, with dL/dA after backward."""
    from retrograd.models import Seq2SeqTransformer, vit_for

    rg.manual_seed(0)
    vit = vit_for(1, 8, 10).eval()
    with capture_attention(vit) as rec:
        vit(rg.randn(2, 1, 8, 8)).sum().backward()
    paths = rec.paths()
    assert len(paths) == 4 and all(p.endswith("self_attn") for p in paths)
    first = rec[paths[0]][0]
    assert first.probs.shape == (2, 4, 17, 17) and first.grad_probs is not None
    np.testing.assert_allclose(first.probs.sum(-1), 1.0, rtol=1e-5)

    model = Seq2SeqTransformer(12, d_model=16, nhead=2, num_encoder_layers=1,
                               num_decoder_layers=1, dim_feedforward=32).eval()
    src, tgt = rg.randint(1, 12, (2, 5)), rg.randint(1, 12, (2, 4))
    with capture_attention(model) as rec:
        model(src, tgt).sum().backward()
    shapes = {p: rec[p][0].probs.shape for p in rec.paths()}
    cross = [p for p in shapes if "multihead_attn" in p or "cross" in p]
    assert cross and shapes[cross[0]] == (2, 2, 4, 5)          # 4 target queries, 5 source keys
    assert any(s == (2, 2, 5, 5) for s in shapes.values())     # encoder self-attention
    assert any(s == (2, 2, 4, 4) for p, s in shapes.items() if p not in cross)  # decoder self
