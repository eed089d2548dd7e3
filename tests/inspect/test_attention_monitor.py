"""AttentionMonitor: the recorded numbers, training left untouched, the warnings and their
rules, the report sections and JSON, and bad inputs; the before-backward error of
capture_attention."""

import json

import numpy as np
import pytest

import retrograd as rg
from retrograd import nn
from retrograd.inspect import AttentionMonitor, attention_diagnostics, capture_attention
from retrograd.inspect.attention_monitor import REMEDIES
from retrograd.models.gpt import GPT
from retrograd.nn import functional as F


def _gpt(seed=0, **kw):
    rg.manual_seed(seed)
    options = dict(vocab_size=7, context=8, n_layer=2, n_head=2, d_model=16, dropout=0.1)
    options.update(kw)
    return GPT(**options)


def _batch():
    ids = np.arange(16).reshape(2, 8)
    return rg.tensor(ids % 7), rg.tensor((ids + 1) % 7)


def _loss(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def test_numbers_equal_attention_diagnostics_of_a_direct_capture():
    model, (x, y) = _gpt(), _batch()
    monitor = AttentionMonitor(model, every=1, batch=(x, y))
    assert monitor.maybe_record(3) == []
    model.eval()
    with capture_attention() as rec:
        _loss(model, x, y).backward()
    assert set(monitor.records[0]["layers"]) == {"blocks.0.attn", "blocks.1.attn"}
    for record in rec.records:
        stored = monitor.records[0]["layers"][record.module_path]
        for d, s in zip(attention_diagnostics(record), stored, strict=True):
            assert s["head"] == d.head and s["dead"] == d.dead
            for name in ("entropy", "normalized_entropy", "max_prob", "saturated_fraction",
                         "logit_std", "logit_max", "jacobian_norm", "importance"):
                assert s[name] == pytest.approx(getattr(d, name), rel=1e-6), name
            finite = record.logits[:, d.head][np.isfinite(record.logits[:, d.head])]
            assert s["max_abs_logit"] == pytest.approx(np.abs(finite).max(), rel=1e-6)
        np.testing.assert_allclose(monitor.last_probs[record.module_path], record.probs,
                                   rtol=1e-6)


def test_grads_rng_and_mode_are_left_as_they_were():
    model, (x, y) = _gpt(), _batch()
    model.train()
    _loss(model, x, y).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    values = {n: g.numpy().copy() for n, g in grads.items()}
    state = rg.get_rng_state()
    AttentionMonitor(model, every=2).record(2, lambda: _loss(model, x, y))
    assert model.training
    assert rg.get_rng_state() == state
    for n, p in model.named_parameters():
        assert p.grad is grads[n] and np.array_equal(p.grad.numpy(), values[n]), n


def _train(steps, monitor_every=None):
    model, (x, y) = _gpt(seed=3), _batch()
    opt = rg.optim.AdamW(model.parameters(), lr=1e-2)
    monitor = AttentionMonitor(model, every=monitor_every) if monitor_every else None
    for step in range(1, steps + 1):
        opt.zero_grad()
        _loss(model, x, y).backward()     # dropout: uses the global RNG
        opt.step()
        if monitor is not None:
            monitor.maybe_record(step, lambda: _loss(model, x, y))
    return model, monitor


def test_training_is_bit_identical_with_the_monitor():
    plain, _ = _train(6)
    watched, monitor = _train(6, monitor_every=2)
    assert [r["step"] for r in monitor.records] == [2, 4, 6]
    a, b = plain.state_dict(), watched.state_dict()
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key


def test_no_warning_on_a_normal_short_run():
    _, monitor = _train(6, monitor_every=1)
    assert monitor.warnings == []


def test_scaled_query_and_key_weights_warn_naming_layer_head_step_and_remedies(tmp_path):
    model, batch = _gpt(dropout=0.0), _batch()
    monitor = AttentionMonitor(model, every=5, batch=batch)
    assert monitor.maybe_record(5) == []
    with rg.no_grad():
        for name, p in model.named_parameters():
            if name == "blocks.1.attn.qkv.weight":
                p._data[:32] *= 100.0          # the q and k rows of the fused projection
    new = monitor.maybe_record(10)
    kinds = {(w.kind, w.layer) for w in new}
    assert ("entropy collapse", "blocks.1.attn") in kinds
    assert ("logit growth", "blocks.1.attn") in kinds
    assert all(w.layer == "blocks.1.attn" and w.step == 10 for w in new)
    message = next(w for w in new if w.kind == "entropy collapse").message
    assert "step 10" in message and "'blocks.1.attn'" in message and "head" in message
    assert "qk_norm=True" in message and "z_loss=1e-4" in message and "warmup" in message
    assert REMEDIES in message
    assert monitor.maybe_record(15) == []        # each kind fires once per head
    sections = monitor.sections(str(tmp_path / "figs"), tokens=list("abcdefgh"))
    titles = [s.title for s in sections]
    assert titles == ["Attention entropy per head", "Max |attention logit| per head",
                      "Attention warnings", "Attention heads at step 15"]
    assert "entropy collapse" in sections[2].body and "rg-hv" in sections[3].body
    monitor.save_json(str(tmp_path / "attention.json"))
    data = json.loads((tmp_path / "attention.json").read_text())
    assert [r["step"] for r in data["records"]] == [5, 10, 15]
    assert data["thresholds"]["entropy_collapse"] == 0.1
    assert {w["kind"] for w in data["warnings"]} >= {"entropy collapse", "logit growth"}


def test_entropy_collapse_needs_an_earlier_record_above_the_threshold():
    model, batch = _gpt(dropout=0.0), _batch()
    with rg.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("attn.qkv.weight"):
                p._data[:32] *= 100.0
    monitor = AttentionMonitor(model, every=1, batch=batch)
    first = monitor.record(1)
    assert "entropy collapse" not in {w.kind for w in first}   # collapsed from the start
    assert "logit growth" in {w.kind for w in first}           # above 50 already


def test_bad_inputs():
    with pytest.raises(ValueError, match="every"):
        AttentionMonitor(_gpt(), every=0)
    mlp = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    monitor = AttentionMonitor(mlp, every=1)
    x = rg.randn(2, 4)
    with pytest.raises(ValueError, match="Sequential.*no attention"):
        monitor.record(1, lambda: mlp(x).sum())
    with pytest.raises(ValueError, match="make_loss"):
        AttentionMonitor(_gpt(), every=1).record(1)


def test_gradients_of_a_record_before_backward_raise():
    model, (x, y) = _gpt(dropout=0.0), _batch()
    with capture_attention() as rec:
        loss = _loss(model, x, y)
        record = rec.records[0]
        for name in ("grad_probs", "grad_logits"):
            with pytest.raises(RuntimeError, match="no backward has run for 'blocks.0.attn'"):
                getattr(record, name)
        assert attention_diagnostics(record)[0].importance is None   # no error there
        loss.backward()
        assert record.grad_probs.shape == record.probs.shape
    with pytest.raises(IndexError, match="heads"):
        with capture_attention(heads=[5]):
            model(x)
