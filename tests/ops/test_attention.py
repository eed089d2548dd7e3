"""Scaled dot-product attention (retrograd/ops/attention.py, nn/functional/attention.py).

Checked against torch.nn.functional.scaled_dot_product_attention (float64 with gradcheck,
float32), the op's backward alone, a composed reference (dropout with the same mask, the
weights and log-sum-exp outputs), the inner-product identity at a realistic size, and the
memory-efficient variant against the standard op across block sizes.
"""

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd.engine import sum_to_shape
from retrograd.ops.attention import (MemoryEfficientAttention, ScaledDotProductAttention,
                                     attention_reference_backward)
from retrograd.ops.dropout import dropout_mask
from tests.oracle import check_backward_alone, check_op, randn, to_torch

torch_sdpa = torch.nn.functional.scaled_dot_product_attention


def _qkv(q_shape, k_shape, v_shape, seed=0):
    return (randn(*q_shape, seed=seed), randn(*k_shape, seed=seed + 1),
            randn(*v_shape, seed=seed + 2))


def _bool_mask(shape, seed=7, p_keep=0.6):
    """A random boolean mask whose every row keeps at least one key (fully masked rows are
    tested separately)."""
    keep = np.random.default_rng(seed).random(shape) < p_keep
    keep[..., 0] = True
    return keep


def _compare(fn_kwargs, inputs, dtype=np.float64, mask=None, fn=None, gradcheck=True):
    """check_op of F.scaled_dot_product_attention (or fn) against torch with the same kwargs;
    mask is appended as the last input (float masks require grad)."""
    fn = fn or F.scaled_dot_product_attention
    arrays = list(inputs) + ([mask] if mask is not None else [])

    def rg_fn(q, k, v, *m):
        return fn(q, k, v, attn_mask=m[0] if m else None, **fn_kwargs)

    def torch_fn(q, k, v, *m):
        kwargs = {key: val for key, val in fn_kwargs.items() if key != "block_size"}
        return torch_sdpa(q, k, v, attn_mask=m[0] if m else None, **kwargs)

    return check_op(rg_fn, torch_fn, *arrays, dtype=dtype, gradcheck=gradcheck)


CASES = {  # name: (q shape, k shape, v shape, kwargs, mask or None)
    "plain": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), {}, None),
    "no batch dims": ((4, 5), (6, 5), (6, 3), {}, None),
    "causal square": ((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 4), {"is_causal": True}, None),
    "causal L < S": ((2, 4, 3), (2, 6, 3), (2, 6, 2), {"is_causal": True}, None),
    "causal L > S": ((2, 6, 3), (2, 4, 3), (2, 4, 2), {"is_causal": True}, None),
    "bool mask (L, S)": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), {}, _bool_mask((4, 6))),
    "bool mask per batch": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 5), {},
                            _bool_mask((2, 1, 4, 6))),
    "bool mask (S,)": ((2, 4, 5), (2, 6, 5), (2, 6, 5), {}, _bool_mask((6,))),
    "additive mask (L, S)": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), {}, randn(4, 6, seed=9)),
    "additive mask full": ((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7), {},
                           randn(2, 3, 4, 6, seed=9)),
    "additive mask (L, 1)": ((2, 4, 5), (2, 6, 5), (2, 6, 5), {}, randn(4, 1, seed=9)),
    "broadcast batch dims": ((2, 1, 4, 5), (1, 3, 6, 5), (3, 6, 7), {}, None),
    "q batch from k": ((4, 5), (2, 6, 5), (6, 3), {"is_causal": True}, None),
    "custom scale": ((2, 4, 5), (2, 6, 5), (2, 6, 5), {"scale": 0.3}, None),
    "zero scale": ((2, 4, 5), (2, 6, 5), (2, 6, 5), {"scale": 0.0}, None),
    "L = S = 1": ((2, 3, 1, 4), (2, 3, 1, 4), (2, 3, 1, 2), {}, None),
    "L = 1": ((2, 1, 4), (2, 5, 4), (2, 5, 3), {"is_causal": True}, None),
    "S = 1": ((2, 5, 4), (2, 1, 4), (2, 1, 3), {}, None),
    "E = 1": ((2, 4, 1), (2, 5, 1), (2, 5, 3), {}, None),
    "gqa": ((2, 4, 3, 5), (2, 2, 6, 5), (2, 2, 6, 3), {"enable_gqa": True}, None),
    "gqa, mask per head": ((2, 4, 3, 5), (2, 1, 6, 5), (2, 1, 6, 3), {"enable_gqa": True},
                                  randn(4, 3, 6, seed=9)),
    "gqa with equal heads": ((2, 2, 3, 5), (2, 2, 6, 5), (2, 2, 6, 3), {"enable_gqa": True},
                             None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_float64(name):
    q_shape, k_shape, v_shape, kwargs, mask = CASES[name]
    _compare(kwargs, _qkv(q_shape, k_shape, v_shape), mask=mask)


@pytest.mark.parametrize("name", ["plain", "causal square", "bool mask per batch",
                                  "additive mask full", "broadcast batch dims", "gqa"])
def test_matches_torch_float32(name):
    q_shape, k_shape, v_shape, kwargs, mask = CASES[name]
    out = _compare(kwargs, _qkv(q_shape, k_shape, v_shape), dtype=np.float32, mask=mask)
    assert out[0].dtype == rg.float32


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("block_size", [1, 4])
def test_memory_efficient_matches_torch(name, block_size):
    q_shape, k_shape, v_shape, kwargs, mask = CASES[name]
    _compare(dict(kwargs, block_size=block_size), _qkv(q_shape, k_shape, v_shape), mask=mask,
             fn=F.memory_efficient_attention)


def _batch_of(full, drop_lead, ones):
    """A batch shape that broadcasts to ``full``: leading dims dropped, some dims set to 1."""
    return tuple(1 if one else d for d, one in zip(full, ones))[drop_lead:]


@settings(max_examples=25, deadline=None)
@given(full=st.lists(st.integers(1, 3), max_size=2), sizes=st.tuples(*[st.integers(1, 4)] * 4),
       layout=st.lists(st.tuples(st.integers(0, 2), st.lists(st.booleans(), min_size=2,
                                                              max_size=2)), min_size=4,
                       max_size=4),
       kind=st.sampled_from(["none", "causal", "bool", "float"]),
       memory_efficient=st.booleans())
def test_broadcast_shapes_match_torch(full, sizes, layout, kind, memory_efficient):
    """Random batch broadcasting of query, key, value and mask, every mask kind, both ops."""
    L, S, E, Ev = sizes
    batches = [_batch_of(full, min(lead, len(full)), ones) for lead, ones in layout[:3]]
    qkv_batch = np.broadcast_shapes(*batches)   # the mask may not add batch dims
    # NOTE: torch's math kernel writes into a buffer shaped by q @ k^T, so it refuses a v with
    # more batch dims than that product (retrograd broadcasts); compare where torch can.
    assume(np.broadcast_shapes(batches[0], batches[1]) == qkv_batch)
    lead, ones = layout[3]
    batches.append(_batch_of(qkv_batch, min(lead, len(qkv_batch)), ones))
    q, k, v = (randn(*b, *tail, seed=i) for i, (b, tail) in
               enumerate(zip(batches, [(L, E), (S, E), (S, Ev)])))
    mask = None
    if kind == "bool":
        mask = np.random.default_rng(1).random(batches[3] + (L, S)) < 0.7
    elif kind == "float":
        mask = randn(*batches[3], L, S, seed=5)
    fn = F.memory_efficient_attention if memory_efficient else F.scaled_dot_product_attention
    kwargs = {"is_causal": kind == "causal"}
    if memory_efficient:
        kwargs["block_size"] = 2
    _compare(kwargs, (q, k, v), mask=mask, fn=fn, gradcheck=False)


def test_float_mask_of_float32_with_float64_query():
    q, k, v = _qkv((2, 4, 5), (2, 6, 5), (2, 6, 5))
    mask = randn(4, 6, seed=4).astype(np.float32)
    out = F.scaled_dot_product_attention(rg.tensor(q), rg.tensor(k), rg.tensor(v),
                                         attn_mask=rg.tensor(mask))
    expected = torch_sdpa(to_torch(q), to_torch(k), to_torch(v), attn_mask=to_torch(mask))
    assert out.dtype == rg.float64
    np.testing.assert_allclose(out.detach().numpy(), expected.numpy(), rtol=1e-7)


def test_float16_computes_in_float32_and_returns_float16():
    q, k, v = (x.astype(np.float16) for x in _qkv((2, 4, 3, 8), (2, 2, 6, 8), (2, 2, 6, 8)))
    tensors = [rg.tensor(x, requires_grad=True) for x in (q, k, v)]
    out = F.scaled_dot_product_attention(*tensors, is_causal=True, enable_gqa=True)
    expected = torch_sdpa(*(to_torch(x.astype(np.float32)) for x in (q, k, v)), is_causal=True,
                          enable_gqa=True)
    assert out.dtype == rg.float16
    np.testing.assert_allclose(out.detach().numpy().astype(np.float32), expected.numpy(), atol=2e-3)
    out.sum().backward()
    assert all(t.grad.dtype == rg.float16 for t in tensors)


def test_sum_backward_with_a_broadcast_gradient():
    """out.sum() sends a zero-stride gradient; the result must equal torch's."""
    check_op(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True).sum(),
             lambda q, k, v: torch_sdpa(q, k, v, is_causal=True).sum(),
             *_qkv((2, 3, 5, 4), (2, 3, 5, 4), (2, 3, 5, 4)))


# ---- the op's backward alone, and its second output ----

BACKWARD_ALONE = {
    "plain": ({"scale": 0.4}, None),
    "causal": ({"scale": 0.4, "causal": True}, None),
    "bool mask": ({"scale": 0.4}, _bool_mask((4, 6))),
    "additive mask": ({"scale": 0.4}, randn(2, 4, 6, seed=3)),
}


@pytest.mark.parametrize("name", list(BACKWARD_ALONE))
def test_backward_alone(name):
    attrs, mask = BACKWARD_ALONE[name]
    arrays = list(_qkv((2, 4, 5), (2, 6, 5), (2, 6, 3))) + [mask]
    check_backward_alone(ScaledDotProductAttention, arrays, attrs)


@pytest.mark.parametrize("name", list(BACKWARD_ALONE))
@pytest.mark.parametrize("block_size", [1, 4, 6])
def test_memory_efficient_backward_alone(name, block_size):
    attrs, mask = BACKWARD_ALONE[name]
    arrays = list(_qkv((2, 4, 5), (2, 6, 5), (2, 6, 3))) + [mask]
    check_backward_alone(MemoryEfficientAttention, arrays, dict(attrs, block_size=block_size))


@pytest.mark.parametrize("op, attrs", [
    (ScaledDotProductAttention, {"scale": 0.3, "causal": True, "dropout_p": 0.2}),
    (MemoryEfficientAttention, {"scale": 0.3, "causal": True, "block_size": 3}),
])
def test_float32_stays_float32_inside_the_kernels(op, attrs):
    """No float64 temporaries leak out: every output and raw gradient of a float32 call is
    float32 before the engine casts anything."""
    arrays = [x.astype(np.float32) for x in _qkv((2, 4, 5), (2, 6, 5), (2, 6, 3))]
    mask = randn(4, 6, seed=3).astype(np.float32)
    ctx = op.__new__(op)
    ctx.needs_input_grad = (True, True, True, True)
    outputs = op.forward(ctx, *arrays, mask, **attrs)
    grads = op.backward(ctx, *(np.ones_like(o) for o in outputs))
    assert [o.dtype for o in outputs + grads] == [np.float32] * 6


def _torch_weights(q, k, mask, scale, causal):
    scores = q @ k.transpose(-1, -2) * scale
    if causal:
        blocked = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).triu(1)
        scores = scores.masked_fill(blocked, float("-inf"))
    if mask is not None:
        scores = scores + mask
    return scores


def test_weights_output_gets_its_gradient():
    """The op's second output P (used by layers that return attention weights) is
    differentiable: compare (O, P) with torch's composition."""
    def rg_fn(q, k, v, m):
        return ScaledDotProductAttention.apply(q, k, v, m, scale=0.7, causal=False)

    def torch_fn(q, k, v, m):
        p = torch.softmax(_torch_weights(q, k, m, 0.7, False), dim=-1)
        return p @ v, p

    check_op(rg_fn, torch_fn, *_qkv((2, 4, 5), (2, 6, 5), (2, 6, 3)), randn(4, 6, seed=3))


def test_log_sum_exp_output_gets_its_gradient():
    def rg_fn(q, k, v):
        return MemoryEfficientAttention.apply(q, k, v, None, scale=0.7, causal=True, block_size=2)

    def torch_fn(q, k, v):
        scores = _torch_weights(q, k, None, 0.7, True)
        return torch.softmax(scores, dim=-1) @ v, torch.logsumexp(scores, dim=-1)

    check_op(rg_fn, torch_fn, *_qkv((2, 4, 5), (2, 7, 5), (2, 7, 3)))


def test_double_backward_raises_naming_the_op():
    q = rg.tensor(randn(2, 3, 4), requires_grad=True)
    for fn in (F.scaled_dot_product_attention, F.memory_efficient_attention):
        (grad,) = rg.autograd.grad(fn(q, q, q).sum(), q, create_graph=True)
        with pytest.raises(RuntimeError, match="AttentionBackward.*not differentiable"):
            grad.sum().backward()


# ---- the inner-product identity <t, J^T c> = <J t, c> at a realistic size ----

@pytest.mark.parametrize("fn", [F.scaled_dot_product_attention, F.memory_efficient_attention])
def test_inner_product_identity_realistic_size(fn):
    """B=4, H=4, T=64, D=32, causal: one random direction t over (q, k, v), one random
    cotangent c; J t by central differences in float64."""
    rng = np.random.default_rng(11)
    inputs = [rng.standard_normal((4, 4, 64, 32)) for _ in range(3)]
    directions = [rng.standard_normal(x.shape) for x in inputs]
    cotangent = rng.standard_normal((4, 4, 64, 32))

    def run(arrays):
        return fn(*(rg.tensor(a) for a in arrays), is_causal=True).numpy()

    tensors = [rg.tensor(x, requires_grad=True) for x in inputs]
    fn(*tensors, is_causal=True).backward(rg.tensor(cotangent))
    vjp = sum(float(np.sum(t.grad.numpy() * d)) for t, d in zip(tensors, directions))
    eps = 1e-6
    plus = run([x + eps * d for x, d in zip(inputs, directions)])
    minus = run([x - eps * d for x, d in zip(inputs, directions)])
    jvp = float(np.sum((plus - minus) / (2 * eps) * cotangent))
    assert abs(vjp) > 1.0  # the check is not vacuous
    assert np.isclose(vjp, jvp, rtol=1e-7), (vjp, jvp)


# ---- fully masked rows: zeros, never NaN ----

def _fully_masked_masks():
    keep = _bool_mask((2, 1, 4, 6))
    keep[0, 0, 1] = False                      # batch 0, query 1: every key masked
    keep[1, 0, 3] = False
    additive = np.where(keep, randn(2, 1, 4, 6, seed=5), -np.inf)
    return {"bool": keep, "additive -inf": additive}


@pytest.mark.parametrize("kind", ["bool", "additive -inf"])
@pytest.mark.parametrize("fn", [F.scaled_dot_product_attention, F.memory_efficient_attention])
def test_fully_masked_rows_give_zeros_and_no_nan(kind, fn):
    mask = _fully_masked_masks()[kind]
    q, k, v = _qkv((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7))
    tensors = [rg.tensor(x, requires_grad=True) for x in (q, k, v)]
    rg_mask = rg.tensor(mask, requires_grad=kind != "bool")
    out = fn(*tensors, attn_mask=rg_mask)
    cotangent = np.random.default_rng(3).standard_normal(out.shape)
    out.backward(rg.tensor(cotangent))
    takes_part = mask if mask.dtype == np.bool_ else np.isfinite(mask)
    masked = np.broadcast_to(~takes_part.any(axis=-1), (2, 3, 4))
    assert masked.sum() == 6
    assert np.all(out.detach().numpy()[masked] == 0.0)
    assert np.all(tensors[0].grad.numpy()[masked] == 0.0)
    grads = [t.grad.numpy() for t in tensors] + ([rg_mask.grad.numpy()] if kind != "bool" else [])
    assert all(np.all(np.isfinite(g)) for g in grads)
    # the other rows are plain attention: compare them (and k, v grads) with torch, whose
    # masked rows are NaN (before 2.5) or zeros (safe softmax)
    t_in = [to_torch(x).requires_grad_() for x in (q, k, v)]
    t_out = torch_sdpa(*t_in, attn_mask=to_torch(mask))
    t_out.backward(to_torch(np.where(masked[..., None], 0.0, cotangent)))
    np.testing.assert_allclose(out.detach().numpy()[~masked], t_out.detach().numpy()[~masked],
                               rtol=1e-7)
    for t, expected in zip(tensors, t_in):
        np.testing.assert_allclose(np.nan_to_num(t.grad.numpy()),
                                   np.nan_to_num(expected.grad.numpy()), rtol=1e-7, atol=1e-12)


def test_fully_masked_rows_match_torch_safe_softmax():
    """torch >= 2.5 gives zeros for fully masked rows too: the whole check_op agrees."""
    mask = _fully_masked_masks()["bool"]
    _compare({}, _qkv((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7)), mask=mask)
    _compare({"block_size": 4}, _qkv((2, 3, 4, 5), (2, 3, 6, 5), (2, 3, 6, 7)), mask=mask,
             fn=F.memory_efficient_attention)


@pytest.mark.parametrize("fn", [F.scaled_dot_product_attention, F.memory_efficient_attention])
@pytest.mark.parametrize("causal", [False, True])
def test_no_keys_gives_zeros(fn, causal):
    """S = 0: every query is fully masked (also under the causal mask)."""
    q = rg.tensor(randn(2, 4, 5), requires_grad=True)
    k = rg.zeros(2, 0, 5, dtype=rg.float64, requires_grad=True)
    v = rg.zeros(2, 0, 3, dtype=rg.float64, requires_grad=True)
    out = fn(q, k, v, is_causal=causal)
    expected = torch_sdpa(torch.randn(2, 4, 5), torch.zeros(2, 0, 5), torch.zeros(2, 0, 3),
                          is_causal=causal)
    assert out.shape == tuple(expected.shape) == (2, 4, 3)
    assert np.all(out.detach().numpy() == 0.0)
    out.sum().backward()
    assert np.all(q.grad.numpy() == 0.0) and k.grad.shape == (2, 0, 5)


def test_causal_rows_of_early_blocks_are_fully_masked_in_memory_efficient():
    """With block_size 2 and the causal mask, the later key blocks are fully masked for the
    first queries (their running max stays -inf for a while): still exact, no NaN."""
    q, k, v = _qkv((1, 2, 8, 4), (1, 2, 8, 4), (1, 2, 8, 3))
    _compare({"is_causal": True, "block_size": 2}, (q, k, v), fn=F.memory_efficient_attention)


# ---- memory-efficient equals standard (float64, tight) across block sizes ----

def _run_both(q, k, v, mask, kwargs, block_size, seed=4):
    """Outputs and all gradients of the standard and the memory-efficient op."""
    cotangent = None
    results = []
    for fn, extra in ((F.scaled_dot_product_attention, {}),
                      (F.memory_efficient_attention, {"block_size": block_size})):
        tensors = [rg.tensor(x, requires_grad=True) for x in (q, k, v)]
        rg_mask = None
        if mask is not None:
            rg_mask = rg.tensor(mask, requires_grad=mask.dtype != np.bool_)
        out = fn(*tensors, attn_mask=rg_mask, **kwargs, **extra)
        if cotangent is None:
            cotangent = np.random.default_rng(seed).standard_normal(out.shape)
        out.backward(rg.tensor(cotangent))
        grads = [t.grad.numpy() for t in tensors]
        if rg_mask is not None and rg_mask.requires_grad:
            grads.append(rg_mask.grad.numpy())
        results.append([out.detach().numpy()] + grads)
    return results


EQUALITY = {
    "plain": ((2, 3, 13, 8), (2, 3, 13, 8), (2, 3, 13, 6), {}, None),
    "causal": ((2, 3, 13, 8), (2, 3, 13, 8), (2, 3, 13, 6), {"is_causal": True}, None),
    "causal L < S": ((2, 5, 8), (2, 13, 8), (2, 13, 6), {"is_causal": True}, None),
    "causal L > S": ((2, 13, 8), (2, 5, 8), (2, 5, 6), {"is_causal": True}, None),
    "bool mask, fully masked rows": ((2, 3, 4, 8), (2, 3, 13, 8), (2, 3, 13, 6), {},
                                     _bool_mask((2, 1, 4, 13)) * np.array([1, 0, 1, 1])[:, None]
                                     .astype(bool)),
    "additive mask with -inf": ((2, 3, 4, 8), (2, 3, 13, 8), (2, 3, 13, 6), {},
                                np.where(_bool_mask((3, 4, 13)), randn(3, 4, 13), -np.inf)),
    "broadcast batch, scale": ((2, 1, 4, 8), (1, 3, 13, 8), (3, 13, 6), {"scale": 0.2}, None),
    "gqa": ((2, 4, 5, 8), (2, 2, 13, 8), (2, 2, 13, 6), {"enable_gqa": True}, None),
}


@pytest.mark.parametrize("name", list(EQUALITY))
@pytest.mark.parametrize("block_size", [1, 3, 4, 13, 64])
def test_memory_efficient_equals_standard(name, block_size):
    q_shape, k_shape, v_shape, kwargs, mask = EQUALITY[name]
    standard, efficient = _run_both(*_qkv(q_shape, k_shape, v_shape), mask, kwargs, block_size)
    assert len(standard) == len(efficient)
    for a, b in zip(standard, efficient):
        assert a.shape == b.shape and np.all(np.isfinite(b))
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


def test_memory_efficient_log_sum_exp():
    q, k, v = _qkv((2, 5, 4), (2, 9, 4), (2, 9, 3))
    mask = _bool_mask((5, 9))
    mask[2] = False
    _, lse = MemoryEfficientAttention.apply(rg.tensor(q), rg.tensor(k), rg.tensor(v),
                                            rg.tensor(mask), scale=0.5, causal=False,
                                            block_size=4)
    scores = np.where(mask, q @ np.swapaxes(k, -1, -2) * 0.5, -np.inf)
    with np.errstate(divide="ignore"):
        expected = np.log(np.sum(np.exp(scores), axis=-1))
    np.testing.assert_allclose(lse.numpy(), expected, rtol=1e-12)
    assert np.all(lse.numpy()[:, 2] == -np.inf)


def test_memory_efficient_saves_no_score_sized_array():
    """Bytes saved for backward (through saved_tensors_hooks): the standard op keeps the
    B x H x L x S weights, the memory-efficient one only O(L) per row besides q, k, v."""
    q, k, v = _qkv((1, 2, 64, 8), (1, 2, 64, 8), (1, 2, 64, 8))
    saved = {}
    for fn in (F.scaled_dot_product_attention, F.memory_efficient_attention):
        sizes = []
        with rg.autograd.saved_tensors_hooks(lambda t: sizes.append(t.nbytes) or t, lambda t: t):
            fn(*(rg.tensor(x, requires_grad=True) for x in (q, k, v)), is_causal=True)
        saved[fn.__name__] = sizes
    qkv_out = 4 * q.nbytes
    weights = 2 * 64 * 64 * 8  # B x H x L x S float64
    saturated = 2 * 64         # B x H x L bool: the causal first row's weight is exactly 1
    assert sorted(saved["scaled_dot_product_attention"]) == sorted([q.nbytes] * 4 +
                                                                   [weights, saturated])
    assert sum(saved["memory_efficient_attention"]) == qkv_out + 2 * 64 * 8 + saturated
    assert max(saved["memory_efficient_attention"]) == q.nbytes


# ---- both ops against the reference backward (float64, tight) ----

def _op_inputs(q_shape, k_shape, v_shape, kwargs, mask, seed=0):
    """(q, k, v, mask, attrs) as nn.functional hands them to the ops: the scale 1/sqrt(E)
    unless given, a mask of at least 2 dims, and with grouped heads the query viewed as
    (..., Hkv, G, L, E) and key and value given a size-1 group dim."""
    q, k, v = _qkv(q_shape, k_shape, v_shape, seed)
    if mask is not None and mask.ndim < 2:
        mask = mask.reshape(1, -1)
    if kwargs.get("enable_gqa") and k.shape[-3] != q.shape[-3]:
        heads, kv_heads = q.shape[-3], k.shape[-3]
        q = q.reshape(q.shape[:-3] + (kv_heads, heads // kv_heads) + q.shape[-2:])
        k, v = k[..., None, :, :], v[..., None, :, :]
        if mask is not None and mask.ndim >= 3:
            split = (kv_heads, heads // kv_heads) if mask.shape[-3] == heads else (1, 1)
            mask = mask.reshape(mask.shape[:-3] + split + mask.shape[-2:])
    attrs = dict(scale=kwargs.get("scale", 1.0 / np.sqrt(q_shape[-1])),
                 causal=kwargs.get("is_causal", False))
    return q, k, v, mask, attrs


def _fast_grads(op, q, k, v, mask, attrs, seed=5):
    """Op.apply, then the engine's backward of a random cotangent of O: (dL/dq, dL/dk,
    dL/dv, dL/dmask or None), each in its input's shape, the cotangent, the second output."""
    tensors = [rg.tensor(x, requires_grad=True) for x in (q, k, v)]
    rg_mask = None
    if mask is not None:
        rg_mask = rg.tensor(mask, requires_grad=mask.dtype != np.bool_)
    out, second = op.apply(*tensors, rg_mask, **attrs)
    cotangent = np.random.default_rng(seed).standard_normal(out.shape)
    assert np.unique(cotangent).size == cotangent.size  # every entry differs, unlike ones
    out.backward(rg.tensor(cotangent))
    grads = [t.grad.numpy() for t in tensors]
    grads.append(rg_mask.grad.numpy() if rg_mask is not None and rg_mask.requires_grad else None)
    return grads, cotangent, second


def _reference_grads(q, k, v, mask, cotangent, attrs, dropout=None):
    """attention_reference_backward with its broadcast batch dims summed away, as the engine
    does for the ops."""
    grads = attention_reference_backward(q, k, v, mask, cotangent, dropout=dropout, **attrs)
    return [None if g is None else sum_to_shape(g, x.shape)
            for g, x in zip(grads, (q, k, v, mask))]


def _assert_same_gradients(fast, reference):
    """Equal to rounding: the ops use rowsum(dO * O) and (the memory-efficient one) blocks,
    the reference rowsum(dP * P) over whole rows."""
    assert any(np.any(g != 0) for g in reference if g is not None)  # not 0 == 0
    for name, a, b in zip(("query", "key", "value", "mask"), fast, reference):
        if b is None:
            assert a is None, f"{name}: a gradient the reference does not have"
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, f"{name}: {a.shape} vs {b.shape}"
        assert np.all(np.isfinite(a)), f"{name}: not finite"
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"gradient of {name}")


OPS = {"standard": (ScaledDotProductAttention, {}),
       "memory-efficient, blocks of 1": (MemoryEfficientAttention, {"block_size": 1}),
       "memory-efficient, blocks of 4": (MemoryEfficientAttention, {"block_size": 4})}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("op_name", list(OPS))
def test_backward_equals_the_reference(name, op_name):
    op, extra = OPS[op_name]
    q, k, v, mask, attrs = _op_inputs(*CASES[name])
    fast, cotangent, _ = _fast_grads(op, q, k, v, mask, dict(attrs, **extra))
    _assert_same_gradients(fast, _reference_grads(q, k, v, mask, cotangent, attrs))


@pytest.mark.parametrize("name", list(EQUALITY))
@pytest.mark.parametrize("op_name", list(OPS))
def test_backward_with_fully_masked_rows_equals_the_reference(name, op_name):
    """The longer sequences of the equality table: rows with every key masked (bool and
    -inf), causal with L != S, broadcast batch dims, grouped heads."""
    op, extra = OPS[op_name]
    q, k, v, mask, attrs = _op_inputs(*EQUALITY[name])
    fast, cotangent, _ = _fast_grads(op, q, k, v, mask, dict(attrs, **extra))
    _assert_same_gradients(fast, _reference_grads(q, k, v, mask, cotangent, attrs))


def _dropout_of_the_forward(seed, shape, p):
    """The dropout mask that the op drew after retrograd.manual_seed(seed)."""
    rg.manual_seed(seed)
    return dropout_mask(shape, np.float64, p)


@pytest.mark.parametrize("name", ["plain", "causal square", "causal L > S", "bool mask per batch",
                                  "additive mask full", "broadcast batch dims",
                                  "gqa, mask per head"])
def test_backward_with_dropout_equals_the_reference(name):
    q, k, v, mask, attrs = _op_inputs(*CASES[name])
    rg.manual_seed(123)
    fast, cotangent, weights = _fast_grads(ScaledDotProductAttention, q, k, v, mask,
                                           dict(attrs, dropout_p=0.3))
    dropout = _dropout_of_the_forward(123, weights.shape, 0.3)
    assert 0 < np.sum(dropout == 0) < dropout.size
    _assert_same_gradients(fast, _reference_grads(q, k, v, mask, cotangent, attrs, dropout))


@pytest.mark.parametrize("q_shape, k_shape, v_shape, kwargs, mask", [
    CASES["additive mask full"], CASES["causal L > S"], CASES["broadcast batch dims"],
    EQUALITY["bool mask, fully masked rows"]])
def test_reference_backward_matches_torch(q_shape, k_shape, v_shape, kwargs, mask):
    """The reference against torch's autograd (safe softmax: fully masked rows give zeros),
    so that a wrong reference cannot agree with ops that are wrong the same way."""
    q, k, v, _, attrs = _op_inputs(q_shape, k_shape, v_shape, kwargs, mask)
    leaves = [to_torch(x).requires_grad_() for x in (q, k, v)]
    t_mask = None
    if mask is not None:
        t_mask = to_torch(mask).requires_grad_(mask.dtype != np.bool_)
    out = torch_sdpa(*leaves, attn_mask=t_mask, **kwargs)
    cotangent = np.random.default_rng(6).standard_normal(out.shape)
    out.backward(to_torch(cotangent))
    expected = [t.grad.numpy() for t in leaves]
    expected.append(t_mask.grad.numpy() if t_mask is not None and t_mask.requires_grad else None)
    _assert_same_gradients(_reference_grads(q, k, v, mask, cotangent, attrs), expected)


def test_reference_backward_with_dropout_matches_torch():
    """Dropout: torch's composition (softmax(S) * R) V with the same mask R."""
    q, k, v = _qkv((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3))
    dropout = _dropout_of_the_forward(7, (2, 3, 5, 6), 0.3)
    leaves = [to_torch(x).requires_grad_() for x in (q, k, v)]
    weights = torch.softmax(_torch_weights(*leaves[:2], None, 0.5, True), dim=-1)
    out = (weights * to_torch(dropout)) @ leaves[2]
    cotangent = np.random.default_rng(8).standard_normal(out.shape)
    out.backward(to_torch(cotangent))
    reference = _reference_grads(q, k, v, None, cotangent, dict(scale=0.5, causal=True), dropout)
    _assert_same_gradients(reference, [t.grad.numpy() for t in leaves] + [None])


# ---- dropout ----

def _torch_dropped_attention(q, k, v, mask, dropout, kwargs):
    """torch's composition softmax(q k^T * scale + mask) * R @ v for the dropout mask R
    (an array of the weights' size; grouped heads are laid out as the query's heads), with
    the causal mask, bool or additive masks and grouped-query heads as torch's sdpa."""
    scale = kwargs.get("scale", 1.0 / np.sqrt(q.shape[-1]))
    if kwargs.get("enable_gqa") and k.shape[-3] != q.shape[-3]:
        group = q.shape[-3] // k.shape[-3]
        k, v = k.repeat_interleave(group, -3), v.repeat_interleave(group, -3)
    scores = _torch_weights(q, k, None, scale, kwargs.get("is_causal", False))
    if mask is not None and mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask, float("-inf"))
    elif mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores, dim=-1)
    return (weights * to_torch(dropout).reshape(weights.shape)) @ v


def _sdpa_seeded(seed, p, kwargs):
    """scaled_dot_product_attention with dropout after retrograd.manual_seed(seed): every
    call (also gradcheck's) draws the same mask."""
    def fn(q, k, v, *mask):
        rg.manual_seed(seed)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[0] if mask else None,
                                              dropout_p=p, **kwargs)
    return fn


# cases of CASES that have no fully masked row (torch's plain softmax gives NaN there)
DROPOUT_CASES = ["plain", "no batch dims", "causal L < S", "causal L > S", "bool mask per batch",
                 "bool mask (S,)", "additive mask full", "broadcast batch dims", "custom scale",
                 "gqa, mask per head"]


@pytest.mark.parametrize("name", DROPOUT_CASES)
def test_dropout_uses_the_same_mask_in_backward(name):
    """With a fixed seed, the dropout mask is reproducible (replayed here from the generator):
    a composed torch reference with that mask gives the same output and gradients (so backward
    used the forward's mask), and so do finite differences of the seeded function."""
    q_shape, k_shape, v_shape, kwargs, mask = CASES[name]
    p = 0.3
    q, k, v, op_mask, attrs = _op_inputs(q_shape, k_shape, v_shape, kwargs, mask)
    _, weights = ScaledDotProductAttention.apply(*(rg.tensor(x) for x in (q, k, v)),
                                                 None if op_mask is None else rg.tensor(op_mask),
                                                 **attrs)
    drop = _dropout_of_the_forward(123, weights.shape, p)
    assert 0 < np.sum(drop == 0) < drop.size

    def torch_fn(q, k, v, *m):
        return _torch_dropped_attention(q, k, v, m[0] if m else None, drop, kwargs)

    inputs = _qkv(q_shape, k_shape, v_shape) + (() if mask is None else (mask,))
    check_op(_sdpa_seeded(123, p, kwargs), torch_fn, *inputs)


def _mask_read_off_the_output(q, k, mask, kwargs, seed, p):
    """The dropout mask R that scaled_dot_product_attention draws after manual_seed(seed),
    read off its output for an identity value matrix (O = (P * R) I = P * R) divided by P from
    a run without dropout; shaped like the output (the query's heads). Where P = 0 (masked
    keys) R comes out 0, which changes nothing: R only ever multiplies P. Returns (R, P)."""
    n_keys = k.shape[-2]
    eye = np.broadcast_to(np.eye(n_keys), k.shape[:-1] + (n_keys,))
    args = [rg.tensor(x) for x in (q, k, eye)]
    rg_mask = None if mask is None else rg.tensor(mask)
    rg.manual_seed(seed)
    dropped = F.scaled_dot_product_attention(*args, attn_mask=rg_mask, dropout_p=p,
                                             **kwargs).numpy()
    weights = F.scaled_dot_product_attention(*args, attn_mask=rg_mask, **kwargs).numpy()
    ratio = np.divide(dropped, weights, out=np.zeros_like(weights), where=weights > 0)
    keep = ratio > 0.5 / (1 - p)
    np.testing.assert_allclose(ratio, np.where(keep, 1 / (1 - p), 0.0), atol=1e-12)
    assert 0 < keep.sum() < np.sum(weights > 0)  # something dropped, something kept
    return np.where(keep, 1 / (1 - p), 0.0), weights


@pytest.mark.parametrize("name", DROPOUT_CASES)
def test_dropout_backward_uses_the_mask_read_off_the_forward(name):
    """The same, with the mask observed in the forward's output instead of replayed from
    the generator: the gradients are those of (P * R) V for the R that forward applied."""
    q_shape, k_shape, v_shape, kwargs, mask = CASES[name]
    p = 0.4
    q, k, v = _qkv(q_shape, k_shape, v_shape, seed=20)
    drop, _ = _mask_read_off_the_output(q, k, mask, kwargs, 321, p)

    def torch_fn(q, k, v, *m):
        return _torch_dropped_attention(q, k, v, m[0] if m else None, drop, kwargs)

    check_op(_sdpa_seeded(321, p, kwargs), torch_fn, q, k, v,
             *(() if mask is None else (mask,)))


# (q shape, k shape, v shape, kwargs, mask): two or three queries and keys, so that with
# p = 0.5 some query rows lose every weight and some keys lose every query
ZERO_GRADIENT_CASES = {
    "plain": ((2, 3, 2, 4), (2, 3, 2, 4), (2, 3, 2, 5), {}, None),
    "one query": ((2, 3, 1, 4), (2, 3, 3, 4), (2, 3, 3, 5), {}, None),
    "causal": ((2, 3, 3, 4), (2, 3, 3, 4), (2, 3, 3, 2), {"is_causal": True}, None),
    "bool mask": ((2, 3, 3, 4), (2, 3, 3, 4), (2, 3, 3, 5), {}, _bool_mask((2, 1, 3, 3))),
    "additive mask": ((4, 2, 4), (4, 3, 4), (4, 3, 2), {}, randn(4, 2, 3, seed=9)),
    "gqa": ((4, 2, 1, 4), (4, 1, 2, 4), (4, 1, 2, 5), {"enable_gqa": True}, None),
}


@pytest.mark.parametrize("name", list(ZERO_GRADIENT_CASES))
def test_dropout_fully_dropped_rows_and_keys_get_exactly_zero_gradient(name):
    """A query whose every weight is dropped has an output row of exact zeros, hence
    dP = (dO V^T) * R = 0 and rowsum(dO * O) = 0 on its row: its query gradient is exactly 0.
    A key that every query drops has a value gradient (P * R)^T dO of exact zeros. The other
    keys, and the other rows that attend to more than one key, get gradients (a query that
    sees a single key has P = 1 there whatever its scores: no query gradient). Both hold only
    if backward applies the forward's mask."""
    q_shape, k_shape, v_shape, kwargs, mask = ZERO_GRADIENT_CASES[name]
    p = 0.5
    q, k, v = _qkv(q_shape, k_shape, v_shape, seed=30)
    drop, weights = _mask_read_off_the_output(q, k, mask, kwargs, 99, p)   # (..., Hq, L, S)
    tensors = [rg.tensor(x, requires_grad=True) for x in (q, k, v)]
    rg_mask = None if mask is None else rg.tensor(mask)
    rg.manual_seed(99)
    out = F.scaled_dot_product_attention(*tensors, attn_mask=rg_mask, dropout_p=p, **kwargs)
    out.backward(rg.tensor(np.random.default_rng(31).standard_normal(out.shape)))
    grad_q, _, grad_v = (t.grad.numpy() for t in tensors)
    rows_dropped = np.all(drop == 0, axis=-1)                     # (..., Hq, L)
    assert 0 < rows_dropped.sum() < rows_dropped.size
    assert np.all(out.detach().numpy()[rows_dropped] == 0.0)
    assert np.all(grad_q[rows_dropped] == 0.0)
    several_keys = np.sum(weights > 0, axis=-1) > 1
    assert np.all(np.any(grad_q != 0.0, axis=-1)[~rows_dropped & several_keys])
    # a key is dropped when every query of every query head that reads its value head drops
    # it: with grouped heads, the groups of Hq / Hkv query heads share one key head
    kept_by = np.any(drop != 0, axis=-2)                          # (..., Hq, S)
    if kwargs.get("enable_gqa"):
        kept_by = kept_by.reshape(kept_by.shape[:-2] + (k.shape[-3], -1, k.shape[-2])).any(-2)
    keys_dropped = np.broadcast_to(~kept_by, grad_v.shape[:-1])
    assert 0 < keys_dropped.sum() < keys_dropped.size
    assert np.all(grad_v[keys_dropped] == 0.0)
    assert np.all(np.any(grad_v != 0.0, axis=-1)[~keys_dropped])


def test_dropout_changes_with_the_seed_and_p_zero_is_exact():
    q, k, v = (rg.tensor(x) for x in _qkv((2, 5, 4), (2, 6, 4), (2, 6, 3)))
    rg.manual_seed(1)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    assert not np.allclose(a, b)
    state = rg.random.get_rng_state()
    plain = F.scaled_dot_product_attention(q, k, v).numpy()
    zero = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0).numpy()
    assert np.array_equal(plain, zero)
    assert rg.random.get_rng_state() == state  # p = 0 draws nothing
    assert np.all(F.scaled_dot_product_attention(q, k, v, dropout_p=1.0).numpy() == 0.0)


def test_memory_efficient_refuses_dropout():
    q = rg.randn(2, 3, 4)
    with pytest.raises(NotImplementedError, match="memory_efficient_attention: dropout"):
        F.memory_efficient_attention(q, q, q, dropout_p=0.1)


# ---- errors ----

def _t(*shape, dtype=rg.float64):
    return rg.zeros(*shape, dtype=dtype)


ERRORS = [
    ("mask wrong shape", lambda f: f(_t(2, 4, 5), _t(2, 6, 5), _t(2, 6, 5), attn_mask=_t(4, 5)),
     ValueError, r"attn_mask of shape \(4, 5\).*\(L, S\) = \(4, 6\)"),
    ("mask adds batch dims", lambda f: f(_t(2, 4, 5), _t(2, 6, 5), _t(2, 6, 5),
                                         attn_mask=_t(3, 2, 4, 6)),
     ValueError, r"attn_mask of shape \(3, 2, 4, 6\) does not broadcast"),
    ("mask int dtype", lambda f: f(_t(2, 4, 5), _t(2, 6, 5), _t(2, 6, 5),
                                   attn_mask=_t(4, 6, dtype=rg.int64)),
     TypeError, r"attn_mask must be bool .* got dtype retrograd.int64 \(shape \(4, 6\)\)"),
    ("mask float64 for float32 query", lambda f: f(_t(4, 5, dtype=rg.float32),
                                                   _t(6, 5, dtype=rg.float32),
                                                   _t(6, 5, dtype=rg.float32),
                                                   attn_mask=_t(4, 6)),
     TypeError, r"attn_mask must be bool .*float32"),
    ("mask and is_causal", lambda f: f(_t(4, 5), _t(6, 5), _t(6, 5), attn_mask=_t(4, 6),
                                       is_causal=True),
     ValueError, "attn_mask must be None when is_causal=True"),
    ("head dims differ", lambda f: f(_t(2, 4, 5), _t(2, 6, 4), _t(2, 6, 5)),
     ValueError, r"same head dim E, got query \(2, 4, 5\), key \(2, 6, 4\)"),
    ("key and value lengths differ", lambda f: f(_t(2, 4, 5), _t(2, 6, 5), _t(2, 5, 5)),
     ValueError, r"same sequence length S.*value \(2, 5, 5\)"),
    ("1-D query", lambda f: f(_t(5), _t(6, 5), _t(6, 5)),
     ValueError, r"at least 2-D .* got query \(5,\)"),
    ("dtype mismatch", lambda f: f(_t(4, 5), _t(6, 5, dtype=rg.float32), _t(6, 5)),
     TypeError, r"one dtype, got retrograd.float64, retrograd.float32, retrograd.float64"),
    ("integer inputs", lambda f: f(*(_t(4, 5, dtype=rg.int64),) * 3),
     TypeError, "expected floating-point"),
    ("batch dims", lambda f: f(_t(3, 4, 5), _t(2, 6, 5), _t(2, 6, 5)),
     ValueError, r"batch dims of query \(3, 4, 5\), key \(2, 6, 5\).*do not broadcast"),
    ("heads without gqa", lambda f: f(_t(1, 4, 3, 5), _t(1, 2, 6, 5), _t(1, 2, 6, 5)),
     ValueError, "enable_gqa=True"),
    ("gqa heads do not divide", lambda f: f(_t(1, 4, 3, 5), _t(1, 3, 6, 5), _t(1, 3, 6, 5),
                                            enable_gqa=True),
     ValueError, "same number of heads dividing"),
    ("gqa 2-D", lambda f: f(_t(3, 5), _t(6, 5), _t(6, 5), enable_gqa=True),
     ValueError, "enable_gqa needs .* at least 3 dims"),
    ("not a tensor", lambda f: f(np.zeros((4, 5)), _t(6, 5), _t(6, 5)),
     TypeError, "query must be a Tensor, got ndarray"),
    ("mask not a tensor", lambda f: f(_t(4, 5), _t(6, 5), _t(6, 5), attn_mask=np.ones((4, 6))),
     TypeError, "attn_mask must be a Tensor or None"),
    ("dropout above 1", lambda f: f(_t(4, 5), _t(6, 5), _t(6, 5), dropout_p=1.5),
     ValueError, "dropout probability has to be between 0 and 1, but got 1.5"),
    ("zero head dim", lambda f: f(_t(4, 0), _t(6, 0), _t(6, 5)),
     ValueError, "head dim E must be positive"),
    ("bad scale", lambda f: f(_t(4, 5), _t(6, 5), _t(6, 5), scale="big"),
     TypeError, "scale must be a number"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
@pytest.mark.parametrize("fn", [F.scaled_dot_product_attention, F.memory_efficient_attention])
def test_errors(case, fn):
    _, call, error, message = case
    with pytest.raises(error, match=fn.__name__ + ": .*" + message):
        call(fn)


@pytest.mark.parametrize("block_size", [0, -2, 2.5, True])
def test_memory_efficient_block_size_error(block_size):
    q = rg.randn(2, 3, 4)
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        F.memory_efficient_attention(q, q, q, block_size=block_size)
