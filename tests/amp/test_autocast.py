"""retrograd.autocast: the low-precision ops against PyTorch's CPU autocast (bfloat16), the
dtype trace against the documented policy for every op, gradients in the forward's dtypes,
the policy as data, checkpoint replay, and the errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd import nn
from retrograd.amp import AutocastPolicy, autocast, default_policy, explain
from retrograd.autograd.grad_mode import STATE
from retrograd.models import GPT
from retrograd.nn import functional as F

BF16_RTOL = 2.0 ** -7     # bfloat16 keeps 8 significant bits


def _pair(shape, seed):
    array = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return (rg.tensor(array, requires_grad=True),
            torch.tensor(array, requires_grad=True))


def _close(ours, theirs, scale=None):
    ours = ours.detach().float().numpy() if isinstance(ours, rg.Tensor) else ours
    theirs = theirs.detach().float().numpy()
    scale = np.abs(theirs).max() if scale is None else scale
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=4 * BF16_RTOL * scale)


LOW_OPS = {
    "linear": (((6, 16), (8, 16), (8,)), lambda f, x, w, b: f.linear(x, w, b)),
    "matmul": (((4, 6, 16), (16, 5)), lambda f, a, b: a @ b),
    "conv2d": (((2, 3, 9, 9), (4, 3, 3, 3), (4,)),
               lambda f, x, w, b: f.conv2d(x, w, b, stride=2, padding=1)),
    "conv1d": (((2, 3, 12), (4, 3, 3)), lambda f, x, w: f.conv1d(x, w, padding=1)),
    "conv_transpose2d": (((2, 3, 5, 5), (3, 4, 3, 3), (4,)),
                         lambda f, x, w, b: f.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                               output_padding=1)),
    "conv_transpose1d": (((2, 3, 7), (3, 2, 4)),
                         lambda f, x, w: f.conv_transpose1d(x, w, stride=2)),
    "attention": (((2, 2, 7, 8), (2, 2, 9, 8), (2, 2, 9, 8)),
                  lambda f, q, k, v: f.scaled_dot_product_attention(q, k, v)),
}


@pytest.mark.parametrize("name", sorted(LOW_OPS))
def test_low_precision_ops_match_torch_cpu_autocast_bfloat16(name):
    shapes, call = LOW_OPS[name]
    pairs = [_pair(shape, seed) for seed, shape in enumerate(shapes)]
    ours, theirs = [p[0] for p in pairs], [p[1] for p in pairs]
    with autocast(dtype=rg.bfloat16):
        out = call(F, *ours)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = call(torch.nn.functional, *theirs)
    assert out.dtype == rg.bfloat16 and expected.dtype == torch.bfloat16
    _close(out, expected)
    cotangent = np.random.default_rng(9).standard_normal(out.shape).astype(np.float32)
    (out.float() * rg.tensor(cotangent)).sum().backward()
    (expected.float() * torch.tensor(cotangent)).sum().backward()
    for a, b in zip(ours, theirs):
        assert a.grad.dtype == rg.float32        # float32 leaves get float32 gradients
        _close(a.grad, b.grad)


def _everything(x, ids, image, sequence):
    """One call of every op family the policy names (and some it promotes)."""
    linear, conv1, conv2 = nn.Linear(8, 8), nn.Conv1d(2, 2, 3), nn.Conv2d(1, 2, 3)
    lstm, gru, rnn = nn.LSTM(8, 4), nn.GRU(8, 4), nn.RNN(8, 4)
    norms = [nn.LayerNorm(8), nn.BatchNorm1d(8), nn.GroupNorm(2, 8), nn.RMSNorm(8)]
    h = linear(x) @ x.t()
    h = F.gelu(h) + x.sum(-1, keepdim=True) * h.mean()
    feats = conv2(image).flatten(1) + conv1(image[:, 0, :2, :]).flatten(1).sum()
    up2, up1 = nn.ConvTranspose2d(1, 1, 2, stride=2), nn.ConvTranspose1d(2, 1, 3)
    feats = feats + up2(image).sum() + up1(image[:, 0, :2, :]).sum()
    attn = F.scaled_dot_product_attention(x[None], x[None], x[None])[0]
    outs = [m(sequence)[0].sum() for m in (lstm, gru, rnn)]
    normed = sum(norm(x).sum() for norm in norms) + nn.Sequential(nn.BatchNorm1d(8),
                                                                   nn.ReLU())(x).sum()
    probs = h.softmax(-1) + h.log_softmax(-1) + h.logsumexp(-1, keepdim=True)
    losses = F.cross_entropy(h, ids) + F.mse_loss(attn, x) + \
        F.binary_cross_entropy_with_logits(h, h.detach().sigmoid())
    probs_of_h = h.detach().sigmoid()
    losses = losses + F.binary_cross_entropy(h.sigmoid(), probs_of_h) + \
        F.kl_div(h.log_softmax(-1), probs_of_h, reduction="batchmean") + \
        F.smooth_l1_loss(attn, x) + F.huber_loss(attn, x) + F.softplus(h).sum()
    losses = losses + F.multi_margin_loss(h, ids, p=2)
    pooled, where = F.max_pool2d(image, 2, return_indices=True)
    feats = feats + F.max_unpool2d(pooled, where, 2).sum()
    losses = losses + h.cumsum(-1).sum() + h.cumprod(0).sum() + \
        rg.einsum("ij,jk->ik", h, x).sum() + rg.linalg.matrix_norm(h, "nuc")
    scalars = h.exp().sum() + (h.abs() + 1).log().sum() + h.pow(2).sum() + h.var() + h.std() + \
        h.norm() + h.tanh().sum() + h.relu().sum() + feats.sum()
    s = h.sigmoid()
    tail = s.acos().sum() + s.asin().sum() + s.cosh().sum() + s.sinh().sum() + \
        s.tan().sum() + (s * 0.5).erfinv().sum() + s.expm1().sum() + s.log10().sum() + \
        s.log2().sum() + s.log1p().sum() + s.prod(-1).sum() + rg.cdist(h, h).sum()
    return losses + probs.sum() + normed + sum(outs) + scalars + tail


def test_explain_follows_the_documented_policy_for_every_op_it_runs():
    x, ids = rg.randn(5, 8), rg.tensor([1, 0, 3, 2, 4])
    trace = explain(_everything, x, ids, rg.randn(2, 1, 6, 6), rg.randn(3, 2, 8))
    policy, names = default_policy(), set()
    for op, module, _inputs, computes, output, why in trace.rows:
        names.add(op)
        rule = policy.rule(op, module)
        if why == "low list":
            assert rule == "low" and computes == "float32" and "bfloat16" in output, op
        elif why == "float32 list":
            assert rule == "float32" and computes == "float32", op
            assert "bfloat16" not in output, op
        elif why == "promoted":
            assert rule == "promote", op
        else:
            assert why in ("moves data", "no floating inputs", "explicit dtype="), (op, why)
    named = {op for op, rule in policy.rules.items()}
    # every low-list op but the attention variant and every float32-list op ran
    missing = named - names - {"MemoryEfficientAttention", "CrossEntropyProbs", "NllLoss",
                               "PowScalar", "Pow"}
    assert not missing, missing
    assert "Linear" in str(trace) and "low list" in str(trace)


def test_gradients_flow_in_the_forward_dtypes_and_parameters_stay_float32():
    layer = nn.Linear(4, 3)
    x = rg.randn(2, 4, requires_grad=True)
    seen = []
    with autocast(dtype=rg.float16):
        y = layer(x)
        y.register_hook(lambda g: seen.append(g.dtype))
        z = y.softmax(-1)
    assert (y.dtype, z.dtype) == (rg.float16, rg.float32)
    (z * rg.arange(3.0)).sum().backward()
    assert seen == [rg.float16]
    assert layer.weight.dtype == layer.weight.grad.dtype == x.grad.dtype == rg.float32


def test_off_costs_nothing_and_nesting_and_decorator():
    assert STATE.observers == ()
    layer = nn.Linear(4, 4)

    @autocast(dtype=rg.bfloat16)
    def run(t):
        inner = layer(t)
        with autocast(enabled=False):
            plain = layer(t)
        with autocast(dtype=rg.float16):
            half = layer(t)
        return inner, plain, half
    inner, plain, half = run(rg.randn(2, 4))
    assert (inner.dtype, plain.dtype, half.dtype) == (rg.bfloat16, rg.float32, rg.float16)
    assert STATE.observers == () and not rg.amp.is_autocast_enabled()


def test_policy_is_data_and_overridable_per_module():
    policy = default_policy()
    assert isinstance(policy, AutocastPolicy) and "Linear" in str(policy)
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    keep_last = policy.for_module("1", "float32")
    with autocast(policy=keep_last):
        first = model[0](rg.randn(2, 4))
        out = model(rg.randn(2, 4))
    assert first.dtype == rg.bfloat16 and out.dtype == rg.float32
    gelu_low = policy.with_rules({"Gelu": "low"})
    with autocast(dtype=rg.float16, policy=gelu_low):
        assert F.gelu(rg.randn(3)).dtype == rg.float16
    with pytest.raises(ValueError, match=r"a rule is one of .*'fast'"):
        policy.with_rules({"Gelu": "fast"})


def test_explicit_dtype_opts_out():
    x = rg.randn(4, 4)
    with autocast(dtype=rg.bfloat16):
        y = F.softmax(x.to(rg.bfloat16), -1, dtype=rg.float64)
    assert y.dtype == rg.float64


def test_saved_activations_shrink():
    from retrograd.inspect import MemoryLedger
    model = nn.Sequential(nn.Linear(64, 256), nn.GELU(), nn.Linear(256, 64))
    x = rg.randn(32, 64)
    with MemoryLedger(model) as plain:
        model(x).sum().backward()
    with MemoryLedger(model) as low, autocast(dtype=rg.bfloat16):
        model(x).sum().backward()
    # x, the GELU's input and output are saved: bfloat16 halves each; the second Linear also
    # keeps the bfloat16 copy of its weight (for dL/dinput), as PyTorch's autocast does
    weight_copy = model[2].weight.numel() * 2
    assert low.report().saved_bytes == plain.report().saved_bytes // 2 + weight_copy


def _gpt_grads(checkpointing, steps=5, kwargs=None):
    rg.manual_seed(0)
    model = GPT(vocab_size=13, context=8, n_layer=2, n_head=2, d_model=16, dropout=0.2)
    if checkpointing:
        model.gradient_checkpointing_enable(kwargs)
    ids = rg.tensor(np.random.default_rng(0).integers(0, 13, size=(3, 8)))
    opt = rg.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        with autocast(dtype=rg.bfloat16):
            loss = F.cross_entropy(model(ids).reshape(-1, 13), ids.reshape(-1))
        loss.backward()
        opt.step()
    return {n: p.grad.numpy().copy() for n, p in model.named_parameters()}


def test_checkpoint_replays_autocast_exactly():
    plain = _gpt_grads(False)
    for kwargs in (None, {"policy": ["linear", "scaled_dot_product_attention"],
                          "check": "values"}):
        checkpointed = _gpt_grads(True, kwargs=kwargs)
        for name in plain:
            assert np.array_equal(plain[name], checkpointed[name]), (name, kwargs)


def test_bad_input():
    with pytest.raises(TypeError, match=r"dtype must be retrograd.bfloat16 or retrograd.float16"):
        autocast(dtype=rg.int32)
    with pytest.raises(TypeError, match=r"got retrograd.float64"):
        autocast(dtype=rg.float64)
    with pytest.raises(ValueError, match=r"device_type 'tpu' is not available"):
        autocast("tpu")
    with pytest.raises(TypeError, match="enabled must be a bool"):
        autocast(enabled="yes")
    with pytest.raises(TypeError, match="explain: model must be callable"):
        explain(3, rg.randn(2))
