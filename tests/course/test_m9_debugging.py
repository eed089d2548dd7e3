"""The Module 9 lab (docs/course/m9_debugging.py): its reduced form runs in time, writes
readable figures and a results page, each tool names the planted bug's layer and passes the
fixed model, and the lab's numbers agree with computations made here without it: which
parameters get a gradient, the maps whose std is 0 and the NaN they make, a saliency map from
autograd, the causality of the attention, and a Linear's FLOPs from its shapes."""

import numpy as np
import pytest

import retrograd as rg
from retrograd.models.gpt import CausalSelfAttention, GPTConfig
from retrograd.nn import functional as F
from tests.course._lab import assert_outputs, assert_page, lab_fixture, module_fixture

FIGURES = ["m9-loss-curves.png", "m9-gradient-flow.png", "m9-saliency.png",
           "m9-attention-maps.png"]

lab = lab_fixture("m9_debugging")
module = module_fixture("m9_debugging")


@pytest.fixture(scope="module")
def digits(module):
    return module.load_digits()


def test_outputs_are_readable(lab):
    result, out = lab
    text = assert_outputs(out, FIGURES, "m9-debugging.md")
    for case in ("| cut branch |", "| no eps |", "| leaky mask |", "| healthy |"):
        assert case in text


# ----------------------------------------------------------------------------- 1. cut branch
def test_monitor_names_the_layers_the_cut_leaves_without_gradient(lab):
    cnn = lab[0]["cnn"]
    assert cnn["cut branch"]["flow"]["without_gradient"] == ["conv1", "conv2"]
    assert cnn["cut branch"]["flow"]["not_updated"] == ["conv1", "conv2"]
    assert cnn["healthy"]["flow"]["without_gradient"] == []
    assert cnn["healthy"]["flow"]["not_updated"] == []


def test_the_cut_leaves_exactly_those_parameters_without_gradient(module, digits):
    train_x, train_y, _, _ = digits
    for case, cut in (("cut branch", True), ("healthy", False)):
        model = module.build_cnn(case)
        F.cross_entropy(model(train_x[:32]), train_y[:32]).backward()
        for name, p in model.named_parameters():
            before_the_cut = name.startswith(("conv1.", "conv2."))
            assert (p.grad is None) == (cut and before_the_cut), (case, name)


def test_saliency_fails_on_the_cut_model_and_is_the_input_gradient_on_the_fixed_one(lab, module,
                                                                                    digits):
    cnn = lab[0]["cnn"]
    assert "does not require grad" in cnn["cut branch"]["saliency_error"]
    assert cnn["healthy"]["saliency_error"] is None
    # the map recomputed with autograd: |d score_c / d x| for the predicted class c, on the
    # lab's trained healthy model
    model = lab[0]["cnn"]["healthy"]["model"]
    x = rg.tensor(digits[2][:6].numpy(), requires_grad=True)
    scores = model(x)
    predicted = scores.detach().numpy().argmax(axis=1)
    picked = (scores * rg.tensor(np.eye(10, dtype=np.float32)[predicted])).sum()
    (gradient,) = rg.autograd.grad(picked, [x])
    np.testing.assert_allclose(cnn["healthy"]["saliency"], np.abs(gradient.numpy())[:, 0],
                               rtol=1e-4, atol=1e-7)


# ----------------------------------------------------------------------------- 2. no eps
def test_lint_and_the_guard_name_the_norm_and_pass_the_fixed_model(lab):
    cnn = lab[0]["cnn"]
    (finding,) = cnn["no eps"]["lint"]
    assert finding[:3] == ("div_by_reduction", "Div", "norm")
    assert finding[3].startswith("m9_debugging.py:")
    guard = cnn["no eps"]["nan_guard"]
    assert (guard["op"], guard["phase"], guard["module"]) == ("Div", "forward", "norm")
    assert guard["site"] == finding[3]
    for case in ("healthy", "cut branch"):
        assert cnn[case]["lint"] == [] and cnn[case]["nan_guard"] is None
    assert cnn["no eps"]["first_nonfinite_step"] == 0
    assert cnn["healthy"]["first_nonfinite_step"] is None
    assert all(np.isfinite(cnn["healthy"]["losses"]))


def test_the_nan_comes_from_the_maps_the_relu_zeroed(lab, module, digits):
    # the ReLU output maps with std 0, counted with NumPy, are the maps that become NaN
    result, _ = lab
    settings = result["settings"]
    first = module.digit_batches(len(digits[1]), settings["cnn_batch"], 1)[0]
    model = module.build_cnn("no eps")
    with rg.no_grad():
        h = F.relu(model.conv2(F.relu(model.conv1(digits[0][rg.tensor(first)])))).numpy()
    std = h.std(axis=(2, 3))
    assert result["cnn"]["no eps"]["zero_variance_maps"] == int(np.sum(std == 0)) > 0
    with np.errstate(invalid="ignore"):
        standardized = (h - h.mean(axis=(2, 3), keepdims=True)) / std[..., None, None]
    assert np.array_equal(np.isnan(standardized).any(axis=(2, 3)), std == 0)


# ----------------------------------------------------------------------------- 3. leaky mask
def test_audit_and_capture_name_block_1_and_pass_the_fixed_model(lab):
    gpt = lab[0]["gpt"]
    heads = lab[0]["settings"]["n_head"]
    audits = {path: count for path, count, _ in gpt["leaky mask"]["audits"]}
    assert audits == {"blocks.0.attn": 0, "blocks.1.attn": 4 * heads}   # query T-1 of 4 windows
    assert all(count == 0 for _, count, _ in gpt["healthy"]["audits"])
    leaky = gpt["leaky mask"]["future_share"]
    assert leaky["blocks.0.attn"] == [0.0] * heads
    assert min(leaky["blocks.1.attn"]) > 0.9
    assert all(v == 0.0 for values in gpt["healthy"]["future_share"].values() for v in values)
    assert gpt["leaky mask"]["final_val_loss"] < gpt["healthy"]["final_val_loss"]


def test_the_fixed_mask_is_the_causal_attention(module):
    rg.manual_seed(0)
    config = GPTConfig(vocab_size=11, context=8, n_head=2, d_model=16)
    causal = CausalSelfAttention(config)
    explicit = module.ExplicitMaskAttention(config, "sdpa")
    explicit.load_state_dict(causal.state_dict())
    x = rg.randn(3, 8, 16)
    np.testing.assert_allclose(explicit(x).detach().numpy(), causal(x).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case, leaks", [("leaky mask", True), ("healthy", False)])
def test_changing_the_next_token_changes_the_prediction_only_with_the_leak(module, case, leaks):
    # logits at position t must not depend on the token at t + 1 in a causal model
    model = module.build_gpt(case, module.QUICK, vocab_size=11)
    ids = np.arange(16).reshape(1, 16) % 11
    changed = ids.copy()
    changed[0, 6] = (changed[0, 6] + 5) % 11
    with rg.no_grad():
        before, after = model(rg.tensor(ids)).numpy(), model(rg.tensor(changed)).numpy()
    assert np.array_equal(before[0, :6], after[0, :6]) != leaks


# ----------------------------------------------------------------------------- profiler
def test_profiled_flops_of_a_linear_are_its_shapes(lab):
    # blocks.0.attn.qkv: (N, D) @ (D, 3D) + bias: 2 N D 3D + N 3D FLOPs, N = batch x context
    result, _ = lab
    s = result["settings"]
    n, d = s["gpt_batch"] * s["context"], s["d_model"]
    (row,) = [r for r in result["profile"]["all_rows"]
              if r["module"] == "blocks.0.attn.qkv" and r["phase"] == "forward"]
    assert row["op"] == "Linear" and row["flops"] == 2 * n * d * 3 * d + n * 3 * d
    assert result["profile"]["rows"] and result["profile"]["total_ms"] > 0


def test_unknown_cases_are_named(module):
    with pytest.raises(ValueError, match="unknown CNN case 'dropout'"):
        module.build_cnn("dropout")
    with pytest.raises(ValueError, match="unknown GPT case 'rotary'"):
        module.build_gpt("rotary", module.QUICK, 11)
    with pytest.raises(ValueError, match="convention must be 'sdpa' or 'mha', got 'torch'"):
        module.ExplicitMaskAttention(GPTConfig(vocab_size=5, n_head=2, d_model=8), "torch")


def test_page_links_every_figure_and_gives_the_command(lab):
    assert_page("m9_debugging", lab[1], FIGURES)
