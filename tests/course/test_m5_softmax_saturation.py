"""The Module 5 lab (docs/course/m5_softmax_saturation.py): its reduced form runs in time,
writes readable figures and a results page, and its numbers agree with computations made here
without it: score variances drawn afresh, entropies and softmax Jacobians built as explicit
matrices from the captured weights, query gradients read from a hook of our own."""

import math

import numpy as np
import pytest

import retrograd as rg
from retrograd.nn import functional as F
from tests.course._lab import assert_outputs, assert_page, lab_fixture

FIGURES = ["m5-score-variance.png", "m5-saturation-sweep.png", "m5-entropy-vs-gradient.png",
           "m5-attention-maps.png"]

lab = lab_fixture("m5_softmax_saturation")


def _point(result, c):
    return min(result["sweep"], key=lambda p: abs(math.log(p["c"] / c)))


def _mean(point, key):
    return float(np.mean([h[key] for h in point["heads"]]))


def test_outputs_are_readable(lab):
    result, out = lab
    text = assert_outputs(out, FIGURES, "m5-softmax-saturation.md")
    for figure in FIGURES:
        assert f"({figure})" in text
    assert "| 256 |" in text


def test_score_variance_is_d_without_scaling_and_1_with_it(lab):
    # seed 002, scaled dot-product attention: S = Q K^T / sqrt(d). For q, k with independent
    # N(0, 1) entries, var(q.k) = d; dividing by sqrt(d) brings it to 1
    rows = lab[0]["variance"]
    rng = np.random.default_rng(12345)
    for d in (4, 16, 64, 256):
        scaled = next(r for r in rows if r["d"] == d and r["scaled"])
        unscaled = next(r for r in rows if r["d"] == d and not r["scaled"])
        assert unscaled["variance"] / scaled["variance"] == pytest.approx(d, rel=1e-5)
        assert scaled["variance"] == pytest.approx(1.0, abs=0.1)
        q, k = rng.standard_normal((2, 4000, d))
        ours = float(np.var(np.sum(q * k, axis=1)))
        assert unscaled["variance"] == pytest.approx(ours, rel=0.15)


def test_unscaled_scores_saturate_as_d_grows(lab):
    rows = lab[0]["variance"]
    scaled = [r for r in rows if r["scaled"]]
    unscaled = [r for r in rows if not r["scaled"]]
    assert all(0.8 < r["normalized_entropy"] < 0.95 for r in scaled)    # about the same at every d
    entropy = [r["normalized_entropy"] for r in unscaled]
    assert all(a > b for a, b in zip(entropy, entropy[1:]))
    assert unscaled[-1]["jacobian_norm"] < 0.6 * scaled[-1]["jacobian_norm"]
    assert unscaled[-1]["passed"] < 0.6 * scaled[-1]["passed"]


@pytest.mark.parametrize("c", [1.0, 100.0])
def test_head_statistics_match_explicit_jacobians(lab, c):
    # entropy, H / log n and ||diag(a) - a a^T||_F row by row, from the captured weights
    point = _point(lab[0], c)
    probs = np.asarray(point["probs"], dtype=np.float64)        # (samples, heads, L, S)
    for h, head in enumerate(point["heads"]):
        entropies, normalized, jacobians = [], [], []
        for row in probs[:, h].reshape(-1, probs.shape[-1]):
            kept = row[row > 0]
            entropy = -float(np.sum(kept * np.log(kept)))
            entropies.append(entropy)
            jacobians.append(np.linalg.norm(np.diag(row) - np.outer(row, row)))
        for t in range(1, probs.shape[2]):                       # row t sees t + 1 keys
            for s in range(probs.shape[0]):
                normalized.append(entropies[s * probs.shape[2] + t] / math.log(t + 1))
        assert head["entropy"] == pytest.approx(np.mean(entropies), rel=1e-6, abs=1e-9)
        assert head["normalized_entropy"] == pytest.approx(np.mean(normalized), rel=1e-6,
                                                           abs=1e-9)
        assert head["jacobian_norm"] == pytest.approx(np.mean(jacobians), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("c", [1.0, 100.0])
def test_query_gradients_match_a_hook_of_our_own(lab, c):
    # the capture's per-head |dL/dQ| against the gradient of the qkv projection's output,
    # read through our own hook that also multiplies q and k by sqrt(c)
    result, _ = lab
    model, (x, y) = result["training"]["model"], result["training"]["probe"]
    width, heads = model.config.d_model, model.config.n_head
    kept = []

    def hook(module, args, output):
        factor = np.ones(3 * width, dtype=np.float32)
        factor[:2 * width] = math.sqrt(c)
        scaled = output * rg.tensor(factor)
        scaled.retain_grad()
        kept.append(scaled)
        return scaled

    handle = model.blocks[0].attn.qkv.register_forward_hook(hook)
    logits = model(x)
    F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
    handle.remove()
    model.zero_grad()
    grad = kept[0].grad.numpy().astype(np.float64).reshape(x.shape[0], x.shape[1], 3, heads, -1)
    point = _point(result, c)
    for h in range(heads):
        assert point["heads"][h]["q_grad"] == pytest.approx(np.linalg.norm(grad[:, :, 0, h]),
                                                            rel=1e-4)
        assert point["heads"][h]["k_grad"] == pytest.approx(np.linalg.norm(grad[:, :, 1, h]),
                                                            rel=1e-4)


def test_larger_scores_saturate_the_softmax(lab):
    points = lab[0]["sweep"]
    entropy = [_mean(p, "normalized_entropy") for p in points]
    assert all(a > b for a, b in zip(entropy, entropy[1:]))      # every head sharpens with c
    one, hundred = _point(lab[0], 1.0), _point(lab[0], 100.0)
    assert _mean(hundred, "jacobian_norm") < 0.3 * _mean(one, "jacobian_norm")
    assert _mean(hundred, "passed") < 0.3 * _mean(one, "passed")
    assert _mean(hundred, "saturated") > 0.5 > _mean(one, "saturated")


def test_saturated_rows_pass_almost_no_gradient(lab):
    bands = lab[0]["bands"]
    assert bands["low_rows"] > 100 and bands["high_rows"] > 100
    assert bands["low_passed"] < 1e-2 * bands["high_passed"]
    assert bands["low_q_grad"] < 1e-2 * bands["high_q_grad"]


def test_page_links_every_figure_and_gives_the_command(lab):
    page = assert_page("m5_softmax_saturation", lab[1], FIGURES)
    assert "../attention-debugging.md" in page
    assert "retrograd explain attention" in page
