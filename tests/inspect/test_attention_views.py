"""Attention views: rollout (attention and gradient-weighted, against NumPy and torch), the rank
comparison of two maps, the figures (they decode as PNG) and the head view (its data, and a page
with it loading in headless Chromium without console errors)."""

import json
import re

import numpy as np
import pytest

from retrograd.inspect import render
from retrograd.inspect.attention_views import (attention_rollout, gradient_rollout,
                                               head_view_html, head_view_section, rollout,
                                               rollout_disagreement)
from retrograd.inspect.report import Report
from tests.browser import check_page, chromium_or_skip

TOKENS = ["<s>", "the", "cat", "sat", "</script>", "."]      # one needs escaping in the page


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _attention(rng, *shape, sharpness=2.0):
    return _softmax(sharpness * rng.normal(size=shape))


def _augmented(a):
    """Abnar & Zuidema's per-layer matrix, written out: heads averaged, + I, rows renormalized."""
    mixed = 0.5 * a.mean(axis=0) + 0.5 * np.eye(a.shape[-1])
    return mixed / mixed.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- attention rollout

def test_one_layer_rollout_is_half_attention_half_identity_averaged_over_heads():
    a = _attention(np.random.default_rng(0), 3, 5, 5)
    expected = 0.5 * a.mean(axis=0) + 0.5 * np.eye(5)
    np.testing.assert_allclose(attention_rollout([a]), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(attention_rollout([a]).sum(axis=1), 1.0, rtol=1e-12)


def test_identity_attention_rolls_out_to_the_identity():
    eye = np.broadcast_to(np.eye(4), (2, 4, 4))
    np.testing.assert_array_equal(attention_rollout([eye, eye, eye]), np.eye(4))
    np.testing.assert_array_equal(attention_rollout([eye], residual=False), np.eye(4))


def test_two_layers_multiply_with_the_first_layer_on_the_right():
    rng = np.random.default_rng(1)
    first, second = _attention(rng, 2, 5, 5), _attention(rng, 2, 5, 5)
    a1, a2 = _augmented(first), _augmented(second)
    assert not np.allclose(a2 @ a1, a1 @ a2, atol=1e-3)           # the order matters here
    np.testing.assert_allclose(attention_rollout([first, second]), a2 @ a1, rtol=1e-12)
    np.testing.assert_allclose(rollout([first, second]), a2 @ a1, rtol=1e-12)


def test_rollout_of_samples_is_the_rollout_of_each_sample():
    rng = np.random.default_rng(2)
    layers = [_attention(rng, 3, 2, 4, 4) for _ in range(3)]        # (samples, heads, T, T)
    together = attention_rollout(layers, head_fusion="max")
    assert together.shape == (3, 4, 4)
    for s in range(3):
        alone = attention_rollout([a[s] for a in layers], head_fusion="max")
        np.testing.assert_allclose(together[s], alone, rtol=1e-12)
    assert not np.allclose(together[0], together[1])


def test_rollout_names_what_is_wrong():
    a = np.full((2, 3, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"attentions\[1\] has shape \(2, 4, 4\)"):
        attention_rollout([a, np.full((2, 4, 4), 0.25)])
    with pytest.raises(ValueError, match="head_fusion must be one of"):
        attention_rollout([a], head_fusion="median")
    with pytest.raises(ValueError, match="method='gradient' needs gradients"):
        rollout([a], method="gradient")
    with pytest.raises(ValueError, match="one gradient per layer"):
        gradient_rollout([a, a], [a])


# ----------------------------------------------------------------------------- gradient rollout

def _torch_attention_model(torch, tokens, width, heads, layers, seed):
    """Per layer: multi-head softmax(Q K^T / sqrt(d)) V with a residual, random weights; a
    scalar loss with a random cotangent; returns (per-layer A with A.grad, the loss)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(tokens, width, generator=gen, dtype=torch.float64, requires_grad=True)
    d = width // heads
    probs = []
    for _ in range(layers):
        wq, wk, wv = (torch.randn(width, width, generator=gen, dtype=torch.float64) / width ** 0.5
                      for _ in range(3))
        q, k, v = ((x @ w).reshape(tokens, heads, d).transpose(0, 1) for w in (wq, wk, wv))
        a = torch.softmax(q @ k.transpose(1, 2) / d ** 0.5, dim=-1)      # (heads, T, T)
        a.retain_grad()
        probs.append(a)
        x = x + (a @ v).transpose(0, 1).reshape(tokens, width)
    cotangent = torch.randn(tokens, width, generator=gen, dtype=torch.float64)
    loss = (x * cotangent).sum()
    loss.backward()
    return probs


def test_gradient_rollout_matches_chefer_et_al_computed_with_torch():
    torch = pytest.importorskip("torch")
    probs = _torch_attention_model(torch, tokens=6, width=8, heads=2, layers=2, seed=0)
    expected = torch.eye(6, dtype=torch.float64)
    for a in probs:                                          # R = R + E_h[(grad A * A)^+] R
        weighted = (a.grad * a).clamp(min=0).mean(dim=0)
        expected = expected + weighted @ expected
    attentions = [a.detach().numpy() for a in probs]
    gradients = [a.grad.numpy() for a in probs]
    found = gradient_rollout(attentions, gradients)
    np.testing.assert_allclose(found, expected.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rollout(attentions, gradients, method="gradient"), found)
    assert np.abs(found - np.eye(6)).max() > 1e-3            # the gradients did contribute
    # the order of the layers matters: (I + A2)(I + A1), not (I + A1)(I + A2)
    assert not np.allclose(gradient_rollout(attentions[::-1], gradients[::-1]), found)


def test_gradient_rollout_keeps_only_positive_contributions():
    a = _attention(np.random.default_rng(3), 2, 4, 4)
    np.testing.assert_array_equal(gradient_rollout([a], [-np.ones_like(a)]), np.eye(4))
    np.testing.assert_allclose(gradient_rollout([a], [np.ones_like(a)]),
                               np.eye(4) + a.mean(axis=0), rtol=1e-12)


# ----------------------------------------------------------------------------- disagreement

def test_identical_maps_agree_and_reversed_ranks_disagree_fully():
    a = np.random.default_rng(4).random((5, 7))
    same = rollout_disagreement(a, a.copy())
    np.testing.assert_allclose(same.per_row, 1.0, rtol=1e-12)
    assert same.overall == pytest.approx(1.0, abs=1e-12)
    reversed_ = rollout_disagreement(a, -a)
    np.testing.assert_allclose(reversed_.per_row, -1.0, rtol=1e-12)
    assert reversed_.overall == pytest.approx(-1.0, abs=1e-12)
    assert reversed_.mean_row == pytest.approx(-1.0, abs=1e-12)


def test_rank_correlation_matches_scipy_with_ties_and_is_nan_for_a_constant_row():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 4, (4, 9)).astype(float), rng.random((4, 9))   # a has ties
    a[3] = 2.0
    found = rollout_disagreement(a, b)
    for row in range(3):
        assert found.per_row[row] == pytest.approx(stats.spearmanr(a[row], b[row])[0], abs=1e-12)
    assert np.isnan(found.per_row[3])
    assert found.overall == pytest.approx(stats.spearmanr(a.ravel(), b.ravel())[0], abs=1e-12)
    assert found.mean_row == pytest.approx(np.mean(found.per_row[:3]), abs=1e-12)


# ----------------------------------------------------------------------------- figures

def _decoded(path):
    import matplotlib.image

    picture = matplotlib.image.imread(path)
    assert picture.ndim == 3 and picture.shape[0] > 100 and picture.shape[1] > 100
    assert picture.std() > 0.01                              # not a blank image
    return picture


def test_the_figures_decode_as_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(6)
    attentions = [_attention(rng, 3, 6, 6) for _ in range(2)]
    gradients = [rng.normal(size=(3, 6, 6)) for _ in range(2)]
    grids = dict(a=attentions, grad=gradients, product=[a * g for a, g in zip(attentions,
                                                                                gradients)])
    for name, maps in grids.items():
        assert render.plot_attention_grid(maps, str(tmp_path / f"{name}.png"), tokens=TOKENS,
                                          title=name)
        _decoded(tmp_path / f"{name}.png")
    assert render.plot_attention_grid(np.stack(attentions), str(tmp_path / "plain.png"))
    q, k = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    assert render.plot_neuron_view(q, k, 2, str(tmp_path / "neuron.png"), tokens=TOKENS)
    _decoded(tmp_path / "neuron.png")
    plain, weighted = attention_rollout(attentions), gradient_rollout(attentions, gradients)
    assert render.plot_rollout_disagreement(plain, weighted, str(tmp_path / "disagree.png"),
                                            tokens=TOKENS)
    _decoded(tmp_path / "disagree.png")
    with pytest.raises(ValueError, match="3 token labels for an axis of 6"):
        render.plot_attention_grid(attentions, str(tmp_path / "x.png"), tokens=TOKENS[:3])


# ----------------------------------------------------------------------------- head view

def _embedded_data(fragment):
    found = re.findall(r'<script type="application/json">(.*?)</script>', fragment, re.S)
    assert len(found) == 1
    return json.loads(found[0])


def test_the_head_view_embeds_every_layer_and_head():
    rng = np.random.default_rng(7)
    attentions = [_attention(rng, 2, 3, 6, 6) for _ in range(4)]    # (samples, heads, L, S)
    fragment = head_view_html(attentions, TOKENS, sample=1)
    data = _embedded_data(fragment)
    assert data["layers"] == ["layer 0", "layer 1", "layer 2", "layer 3"]
    assert data["tokens"] == data["key_tokens"] == TOKENS
    assert np.shape(data["attention"]) == (4, 3, 6, 6)
    np.testing.assert_allclose(data["attention"][2], attentions[2][1], atol=5e-4)
    assert "http" not in fragment.replace("http://www.w3.org/2000/svg", "")
    cross = _embedded_data(head_view_html([_attention(rng, 2, 3, 4)], ["a", "b", "c"],
                                          key_tokens=["w", "x", "y", "z"],
                                          layer_names=["decoder.cross"]))
    assert np.shape(cross["attention"]) == (1, 2, 3, 4) and cross["layers"] == ["decoder.cross"]
    with pytest.raises(ValueError, match="5 tokens"):
        head_view_html(attentions, TOKENS[:5])


# After the views' scripts ran: both drew an SVG, and hovering a query shades the key boxes.
_PAGE_CHECK = """<script>
const views = document.querySelectorAll('.rg-hv');
if (views.length !== 2 || document.querySelectorAll('.rg-hv svg').length !== 2) {
  console.error('head view: expected 2 drawings');
}
const query = views[0].querySelector('svg g.rg-hv-query');
query.dispatchEvent(new MouseEvent('mouseenter'));
const shaded = Array.from(views[0].querySelectorAll('svg rect[fill-opacity]'))
  .map(r => Number(r.getAttribute('fill-opacity')));
if (!(shaded.length === 6 && Math.abs(shaded.reduce((s, w) => s + w, 0) - 1) < 0.01)) {
  console.error('head view: hover shading', JSON.stringify(shaded));
}
views[0].querySelector('select').value = '1';
views[0].querySelector('select').dispatchEvent(new Event('change'));
views[0].querySelector('.rg-hv-heads button').click();
</script>"""


def test_a_page_with_two_head_views_loads_in_chromium_without_errors(tmp_path):
    chromium = chromium_or_skip()
    rng = np.random.default_rng(8)
    attentions = [_attention(rng, 2, 6, 6) for _ in range(2)]
    report = Report("attention")
    report.add(head_view_section(attentions, TOKENS, layer_names=["enc.0", "enc.1"]))
    report.add_html("Second view", head_view_html(attentions[:1], TOKENS) + _PAGE_CHECK)
    path = report.write(str(tmp_path / "report.html"))
    check = check_page(path, chromium=chromium)
    assert check.console_errors == [] and check.title == "attention"
