"""The Module 8 lab (docs/course/m8_memory_precision.py): its reduced form runs in time,
writes readable figures and a results page, and its numbers agree with computations made here
without it: the bytes kept for backward from the closed form of docs/memory-model.md (with and
without checkpointing), the recomputed FLOPs from the closed form of docs/cost-model.md, the
float16 flush share of the gradients by casting them with NumPy, and the broken softmax rows
from NumPy's float16 arithmetic."""

import math

import numpy as np
import pytest

import retrograd as rg
from retrograd.nn import functional as F
from tests.course._lab import assert_outputs, assert_page, lab_fixture, load_lab

FIGURES = ["m8-memory.png", "m8-flops-time.png", "m8-precision-loss.png",
           "m8-gradient-underflow.png", "m8-softmax-overflow.png"]
F32, I64, BOOL = 4, 8, 1

lab = lab_fixture("m8_memory_precision")


def _shape(settings, vocab):
    s = settings
    return s["batch"], s["context"], s["d_model"], s["n_head"], s["n_layer"], vocab


def once_per_step_bytes(batch, context, width, vocab):
    """docs/memory-model.md, once per step: the embedding's indices, ln_f, the head's input
    and the loss. The lab's x and y are two views of one (B, T + 1) window array, and a saved
    view counts the whole array: the indices cost 8 (N + B), not 8 N."""
    n = batch * context
    return (I64 * (n + batch) + F32 * (n * width + n) + F32 * n * width
            + F32 * n * vocab + I64 * n + BOOL * n + F32 * n)


def test_outputs_are_readable(lab):
    result, out = lab
    text = assert_outputs(out, FIGURES, "m8-memory-precision.md")
    for name in load_lab("m8_memory_precision").CONFIGS:
        assert f"| {name} |" in text


def test_bytes_kept_for_backward_are_the_closed_form(lab):
    # docs/memory-model.md: per layer 4 (17 N D + B H T^2 + 2 N) + B H T bytes (float32)
    result, _ = lab
    batch, context, width, heads, layers, vocab = _shape(result["settings"],
                                                         result["vocab_size"])
    n = batch * context
    per_layer = F32 * (17 * n * width + batch * heads * context ** 2 + 2 * n) + \
        BOOL * batch * heads * context
    once = once_per_step_bytes(batch, context, width, vocab)
    configs = result["configs"]
    assert configs["float32"]["saved_bytes"] == layers * per_layer + once
    # checkpointed: only each block's input (N x D float32) stays, plus the same once-terms
    assert configs["float32 + checkpointing"]["saved_bytes"] == layers * F32 * n * width + once


def test_recompute_costs_one_more_forward_of_the_blocks(lab):
    # docs/cost-model.md, a GPT layer's forward: GEMMs 24 N D^2 + 4 B T^2 D, and
    # 9 N D + 2 (7 N D + 3 N) + 2 N D + 7 P - 2 R + 36 N D elementwise (P = B H T^2, R = B H T)
    result, _ = lab
    batch, context, width, heads, layers, _ = _shape(result["settings"], result["vocab_size"])
    n, p, r = batch * context, batch * heads * context ** 2, batch * heads * context
    layer = (24 * n * width ** 2 + 4 * batch * context ** 2 * width + 9 * n * width
             + 2 * (7 * n * width + 3 * n) + 2 * n * width + 7 * p - 2 * r + 36 * n * width)
    plain = result["configs"]["float32"]["flops"]
    checkpointed = result["configs"]["float32 + checkpointing"]["flops"]
    assert checkpointed["recompute"] == layers * layer
    assert plain["recompute"] == 0
    assert checkpointed["forward"] == plain["forward"]
    assert checkpointed["backward"] == plain["backward"]


def test_checkpointing_trains_the_same_model_and_autocast_keeps_less(lab):
    configs = lab[0]["configs"]
    assert configs["float32 + checkpointing"]["losses"] == configs["float32"]["losses"]
    plain = configs["float32"]
    assert configs["float32 + checkpointing"]["step_peak_bytes"] < plain["step_peak_bytes"]
    for name in ("bfloat16 autocast", "float16 autocast + GradScaler"):
        assert configs[name]["saved_bytes"] < 0.75 * plain["saved_bytes"]
        assert configs[name]["max_loss_difference"] < 0.5


def test_flush_share_is_the_float16_cast_of_the_gradients(lab):
    # a gradient flushes when it is nonzero and its float16 cast (after scaling) is 0
    result, _ = lab
    grads = np.concatenate([p.grad.numpy().astype(np.float32).ravel()
                            for p in result["float32_model"].parameters()])
    underflow = result["underflow"]
    for exponent in (0, 8, 16):
        scaled = grads * np.float32(2.0 ** exponent)
        expected = np.mean((scaled.astype(np.float16) == 0) & (scaled != 0))
        assert underflow["flush"][exponent] == pytest.approx(expected, abs=1e-12)
    assert underflow["flush"][0] > 0 and underflow["flush"][16] < underflow["flush"][0]


def test_softmax_breaks_where_float16_overflows(lab):
    # naive softmax in float16: a row is broken when the sum of its exps rounds to inf in
    # float16 (>= 65520); the float32 sum and retrograd's may differ by rounding at the edge
    result, _ = lab
    stability = result["stability"]
    logits = stability["logits"].reshape(-1, stability["logits"].shape[-1])
    for i, scale in enumerate(stability["scales"]):
        z = (logits * np.float32(scale)).astype(np.float16).astype(np.float32)
        with np.errstate(over="ignore"):
            exps = np.exp(z).astype(np.float16).astype(np.float32)
        expected = np.mean(exps.sum(axis=1) >= 65520.0)
        assert stability["rows"]["naive float16"][i] == pytest.approx(expected, abs=0.02)
        assert stability["rows"]["stable float16"][i] == 0.0
    assert stability["rows"]["naive float16"][-1] == 1.0
    assert stability["lint"] == {"naive": ["exp_unbounded"], "stable": []}


def test_the_fixed_form_is_the_same_function():
    lab_module = load_lab("m8_memory_precision")
    z = rg.tensor(np.array([[1.0, 2.0, 3.0], [-5.0, 0.0, 5.0]]))
    np.testing.assert_allclose(lab_module.stable_softmax(z).numpy(), F.softmax(z, -1).numpy(),
                               rtol=1e-12)
    assert math.isnan(lab_module.naive_softmax(rg.tensor([[20.0, 0.0]]).half()).numpy()[0, 0])


def test_page_links_every_figure_and_gives_the_command(lab):
    assert_page("m8_memory_precision", lab[1], FIGURES)
