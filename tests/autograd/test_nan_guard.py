"""The NaN/Inf guard (anomaly mode with the forward check): the first op that makes NaN or
Inf, in forward or in backward, is named with its module path, its inputs and the user's
line; -inf from attention masks passes (the -inf rule); nothing is watched once it is off."""

import os

import numpy as np
import pytest

import retrograd as rg
from retrograd import nn
from retrograd.autograd import AnomalyError, detect_anomaly, nan_guard, set_detect_anomaly
from retrograd.autograd.anomaly import is_anomaly_check_forward_enabled
from retrograd.autograd.grad_mode import STATE
from retrograd.models.gpt import GPT
from retrograd.nn import functional as F

THIS_FILE = os.path.abspath(__file__)
NEG_INF = float("-inf")


def line_of(marker):
    """The line of this file that carries ``marker`` in a comment."""
    with open(THIS_FILE) as f:
        lines = [n for n, text in enumerate(f, 1) if text.rstrip().endswith(f"# {marker}")]
    assert len(lines) == 1, marker
    return lines[0]


class LogOf(nn.Module):
    def forward(self, x):
        return x.log()  # marker: log


class SqrtOf(nn.Module):
    def forward(self, x):
        return x.sqrt()  # marker: sqrt


def two_layers(inner):
    """Linear(3, 3) whose output is set to x (weight I, bias 0), then ``inner``: the bad op
    runs in the module at path '1', on the values of x."""
    linear = nn.Linear(3, 3)
    with rg.no_grad():
        linear.weight.copy_(rg.tensor(np.eye(3, dtype=np.float32)))
        linear.bias.zero_()
    return nn.Sequential(linear, inner)


# ---- forward ----
def test_log_of_zero_in_a_module_names_the_op_the_module_and_the_line():
    model = two_layers(LogOf())
    x = rg.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 4.0]], requires_grad=True)
    with nan_guard(), pytest.raises(AnomalyError) as info:
        model(x)
    error, message = info.value, str(info.value)
    assert isinstance(error, RuntimeError)
    assert (error.op, error.phase, error.module_path) == ("Log", "forward", "1")
    assert (os.path.abspath(error.site.filename), error.site.lineno) == \
        (THIS_FILE, line_of("marker: log"))
    assert message.startswith("Log: forward produced -inf in output 0 (shape (2, 3)) from "
                              "finite inputs")
    assert "module: '1' (LogOf)" in message
    assert f"{THIS_FILE}:{line_of('marker: log')}, in forward: return x.log()" in message
    assert "input 0: float32 (2, 3), min 0, max 4, mean 1.667, non-finite 0" in message
    assert "non-finite 2 (-inf 2)" in message


def test_without_the_forward_check_the_same_forward_passes():
    x = rg.tensor([[1.0, 0.0, 2.0]], requires_grad=True)
    with detect_anomaly():
        y = two_layers(LogOf())(x)
    assert np.isneginf(y.detach().numpy()).sum() == 1


def test_forward_check_runs_under_no_grad_too():
    with nan_guard(), rg.no_grad():
        with pytest.raises(AnomalyError, match=r"^Div: forward produced \+inf") as info:
            rg.tensor([1.0, 2.0]) / rg.tensor([1.0, 0.0])  # marker: div
    assert info.value.site.lineno == line_of("marker: div")


def test_float16_overflow_is_caught_at_the_op():
    x = rg.tensor([60000.0, 1.0], dtype=rg.float16)
    with nan_guard(), pytest.raises(AnomalyError, match=r"^Mul: forward produced \+inf") as info:
        (x + 1.0) * 2.0
    assert "input 0: float16 (2,), min 2, max 6e+04, mean 3e+04, non-finite 0" in str(info.value)


# ---- backward ----
def test_inf_made_only_in_backward_names_the_op_the_module_and_the_line():
    model = two_layers(SqrtOf())
    x = rg.tensor([[1.0, 0.0, 4.0]], requires_grad=True)
    with nan_guard():
        y = model(x)  # sqrt(0) = 0: the forward is finite
        assert np.isfinite(y.detach().numpy()).all()
        with pytest.raises(AnomalyError) as info:
            y.sum().backward()
    error, message = info.value, str(info.value)
    assert (error.op, error.phase, error.module_path) == ("SqrtBackward", "backward", "1")
    assert error.site.lineno == line_of("marker: sqrt")
    assert message.startswith("SqrtBackward: backward produced Inf in the gradient of input 0 "
                              "(shape (1, 3))")
    assert f"{THIS_FILE}:{line_of('marker: sqrt')}, in forward: return x.sqrt()" in message
    assert "module: '1' (SqrtOf)" in message
    assert "gradient of output 0: float32 (1, 3), min 1, max 1, mean 1, non-finite 0" in message
    assert "saved output 0: float32 (1, 3), min 0, max 2, mean 1, non-finite 0" in message


def test_power_one_half_at_zero_outside_modules():
    x = rg.tensor([0.0, 4.0], requires_grad=True)
    with nan_guard():
        y = x ** 0.5  # marker: pow
        with pytest.raises(AnomalyError, match="^PowScalarBackward: backward produced Inf") as info:
            y.sum().backward()
    assert info.value.module_path is None
    assert "module: none (made outside every module's forward)" in str(info.value)
    assert f"{THIS_FILE}:{line_of('marker: pow')}, in " in str(info.value)


# ---- inputs that are already non-finite ----
def test_the_op_that_made_the_value_is_named_not_the_ops_after_it():
    x = rg.tensor([-1.0, 1.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError) as backward_only:
        (x.log() * 3.0).exp().sum().backward()  # NaN first shows in ExpBackward's gradient
    assert backward_only.value.op == "ExpBackward"
    with nan_guard(), pytest.raises(AnomalyError) as guarded:
        (x.log() * 3.0).exp().sum().backward()
    assert (guarded.value.op, guarded.value.phase) == ("Log", "forward")


def test_nan_from_outside_the_guard_is_reported_where_it_first_passes_through():
    data = rg.tensor([np.nan, 1.0, 2.0])
    with nan_guard():
        clean = data.masked_fill(rg.tensor([True, False, False]), 0.0)  # NaN dropped: fine
        assert np.isfinite(clean.numpy()).all()
        with pytest.raises(AnomalyError) as info:
            (data * 2.0).exp()
    message = str(info.value)
    assert info.value.op == "Mul"
    assert message.startswith("Mul: input 0 already held NaN when it reached this op: no op "
                              "under the guard made it")
    assert "input 0: float32 (3,), min 1, max 2, mean 1.5, non-finite 1 (NaN 1)" in message


def test_a_non_finite_gradient_passed_to_backward_is_reported_as_received():
    x = rg.tensor([1.0, 2.0], requires_grad=True)
    with nan_guard():
        y = x * 2.0
        with pytest.raises(AnomalyError, match="^MulBackward: the gradient of output 0 "
                                               "already held NaN or Inf when it reached"):
            y.backward(rg.tensor([np.nan, 1.0]))


# ---- the -inf rule: no false alarms ----
def test_masks_built_with_minus_inf_pass():
    scores = rg.randn(2, 4, 4, requires_grad=True)
    blocked = rg.tensor(np.triu(np.ones((4, 4), dtype=bool), 1))
    additive = rg.zeros(4, 4).masked_fill(blocked, NEG_INF)
    with nan_guard():
        mask = rg.zeros(4, 4).masked_fill(blocked, NEG_INF)         # a -inf constant argument
        chosen = rg.where(blocked, NEG_INF, scores)                  # -inf as where's operand
        summed = scores + additive                                   # -inf carried by an input
        logp = summed.log_softmax(-1)                                # -inf where masked
        top = summed.max(-1)                                         # finite: the diagonal
        (logp.masked_fill(blocked, 0.0).sum() + top.values.sum() + chosen.softmax(-1).sum()
         ).backward()
    assert np.isneginf(mask.numpy()).sum() == 6
    assert np.isneginf(logp.detach().numpy()).sum() == 12
    assert np.isfinite(scores.grad.numpy()).all()


def test_softmax_of_masked_rows_passes_but_nan_from_minus_inf_is_caught():
    with nan_guard():
        row = rg.tensor([[1.0, NEG_INF, 2.0]], requires_grad=True)
        p = row.softmax(-1)
        (p * rg.tensor([[1.0, 2.0, 3.0]])).sum().backward()
        assert p.detach().numpy()[0, 1] == 0.0 and np.isfinite(row.grad.numpy()).all()
        # a fully masked row is defined (zeros, zero gradient: docs/stability.md)
        masked = rg.tensor([[NEG_INF, NEG_INF]], requires_grad=True)
        masked.softmax(-1).sum().backward()
        assert not masked.grad.numpy().any()
        with pytest.raises(AnomalyError, match=r"^Sub: forward produced NaN .* from inputs "
                                               r"without NaN or \+inf"):
            rg.tensor([NEG_INF]) - rg.tensor([NEG_INF])


def test_minus_inf_from_finite_inputs_and_plus_inf_from_a_mask_are_caught():
    mask = rg.zeros(3).masked_fill(rg.tensor([False, True, False]), NEG_INF)
    with nan_guard():
        with pytest.raises(AnomalyError, match=r"^Sub: forward produced \+inf"):
            1.0 - mask                        # +inf is never allowed, even from a mask
        with pytest.raises(AnomalyError, match="-inf is allowed only where"):
            rg.zeros(3).log()                 # -inf from finite inputs


def test_causal_attention_with_a_float_mask_of_minus_inf_trains():
    rg.manual_seed(0)
    q, k, v = (rg.randn(2, 2, 5, 4, requires_grad=True) for _ in range(3))
    causal = rg.zeros(5, 5).masked_fill(rg.tensor(np.triu(np.ones((5, 5), bool), 1)), NEG_INF)
    with nan_guard():
        fused = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
        scores = (q @ k.transpose(-2, -1)) * 0.5 + causal   # nanoGPT's composed attention
        composed = scores.softmax(-1) @ v
        (fused.sum() + (composed * composed).sum()).backward()
    np.testing.assert_allclose(fused.detach().numpy(), composed.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    assert all(np.isfinite(t.grad.numpy()).all() for t in (q, k, v))


def test_multihead_attention_with_an_additive_minus_inf_mask():
    rg.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    x = rg.randn(2, 5, 8, requires_grad=True)
    attn_mask = rg.zeros(5, 5).masked_fill(rg.tensor(np.triu(np.ones((5, 5), bool), 1)),
                                           NEG_INF)
    padding = rg.tensor(np.array([[False] * 5, [False, False, False, True, True]]))
    with nan_guard():
        out, weights = mha(x, x, x, attn_mask=attn_mask, key_padding_mask=padding)
        (out.sum() + weights.sum()).backward()
    assert np.isfinite(out.detach().numpy()).all() and np.isfinite(x.grad.numpy()).all()
    assert all(np.isfinite(p.grad.numpy()).all() for p in mha.parameters())


def test_gpt_training_steps_with_causal_masking():
    rg.manual_seed(0)
    model = GPT(vocab_size=11, context=8, n_layer=2, n_head=2, d_model=16)
    optimizer = rg.optim.AdamW(model.parameters(), lr=1e-2)
    ids = np.random.default_rng(0).integers(0, 11, size=(3, 9))
    x, y = rg.tensor(ids[:, :-1]), rg.tensor(ids[:, 1:])
    losses = []
    with nan_guard():
        assert is_anomaly_check_forward_enabled()
        for _ in range(3):
            loss = F.cross_entropy(model(x).reshape(-1, 11), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        sample = model.generate(ids[:1, :3], 4, top_k=3, generator=np.random.default_rng(1))
    assert losses[-1] < losses[0] and sample.shape == (1, 7)


def test_cross_entropy_training_with_label_smoothing():
    rg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = rg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = rg.randn(32, 4)
    target = rg.tensor(np.random.default_rng(0).integers(0, 3, size=32))
    with nan_guard():
        for _ in range(5):
            loss = F.cross_entropy(model(x), target, label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert np.isfinite(loss.item())


# ---- turning it on and off ----
def test_flags_decorator_and_off_after_an_error():
    assert not STATE.observers
    with detect_anomaly():
        assert not is_anomaly_check_forward_enabled()
        rg.zeros(2).log()  # the default detect_anomaly() checks backward only
    with detect_anomaly(check_forward=True):
        assert is_anomaly_check_forward_enabled()
    with set_detect_anomaly(True, check_forward=True):
        assert is_anomaly_check_forward_enabled()

    @nan_guard()
    def make(t):
        return t.log()

    with pytest.raises(AnomalyError):
        make(rg.zeros(2))
    assert make.__name__ == "make"
    assert not STATE.observers  # the error left the guard off again
    assert np.isneginf(rg.zeros(2).log().numpy()).all()


def test_exported():
    assert rg.autograd.nan_guard is nan_guard
    assert rg.inspect.nan_guard is nan_guard
    assert issubclass(AnomalyError, RuntimeError)
