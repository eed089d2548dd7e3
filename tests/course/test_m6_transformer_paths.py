"""The Module 6 lab (docs/course/m6_transformer_paths.py): its reduced form runs in time,
writes readable figures and a results page, and its numbers agree with computations made here
without it: the path terms as differences of gradients read by one backward pass, parameter
gradient norms and per-head slices read from ``.grad``."""

import math

import numpy as np
import pytest

from retrograd.nn import functional as F
from tests.course._lab import assert_outputs, assert_page, lab_fixture, load_lab

FIGURES = ["m6-residual-paths.png", "m6-prenorm-postnorm.png", "m6-head-gradients.png"]

lab = lab_fixture("m6_transformer_paths")


def _loss(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _norm(tensor):
    return float(np.linalg.norm(tensor.numpy().astype(np.float64)))


def _run(result, placement, depth):
    return next(r for r in result["placement"]
                if r["placement"] == placement and r["depth"] == depth)


def test_outputs_are_readable(lab):
    result, out = lab
    text = assert_outputs(out, FIGURES, "m6-transformer-paths.md")
    for figure in FIGURES:
        assert f"({figure})" in text
    assert "| trained | 3 |" in text and "| 12 | post-norm |" in text


def test_path_terms_match_differences_of_one_backward(lab):
    # with y = mid + mlp(ln_2(mid)) and mid = x + attn(ln_1(x)): dL/dmid - dL/dy is the
    # feed-forward path and dL/dx - dL/dmid the attention path; read the three gradients with
    # retain_grad on tensors caught by our own hooks and one loss.backward()
    result, _ = lab
    model, probe = result["model"], result["probe"]
    caught = [{} for _ in model.blocks]

    def keep(slot, key, from_input):
        def hook(module, args, output):
            tensor = args[0] if from_input else output
            tensor.retain_grad()
            slot[key] = tensor
        return hook

    handles = []
    for block, slot in zip(model.blocks, caught):
        handles += [block.register_forward_hook(keep(slot, "x", True)),
                    block.register_forward_hook(keep(slot, "out", False)),
                    block.ln_2.register_forward_hook(keep(slot, "mid", True))]
    loss = _loss(model, *probe)
    for handle in handles:
        handle.remove()
    loss.backward()
    model.zero_grad()
    rows = result["paths"]["trained"]["blocks"]
    for slot, row in zip(caught, rows):
        assert row["identity"] == pytest.approx(_norm(slot["out"].grad), rel=1e-4)
        assert row["ffn"] == pytest.approx(_norm(slot["mid"].grad - slot["out"].grad), rel=1e-3)
        assert row["attention"] == pytest.approx(_norm(slot["x"].grad - slot["mid"].grad),
                                                 rel=1e-3)
        assert row["total"] == pytest.approx(_norm(slot["x"].grad), rel=1e-4)
    assert result["paths"]["trained"]["max_error"] < 1e-6
    assert result["paths"]["init"]["max_error"] < 1e-6


def test_identity_path_dominates_at_initialization(lab):
    # GPT-2's initialization scales the residual projections by 1 / sqrt(2 n_layer): at
    # step 0 every block is close to the identity for the gradient too
    for row in lab[0]["paths"]["init"]["blocks"]:
        assert row["attention"] < 0.5 * row["identity"]
        assert row["ffn"] < 0.5 * row["identity"]
        assert row["total"] > row["identity"]


def test_layer_gradient_norms_match_grad(lab):
    result, _ = lab
    lab_module = load_lab("m6_transformer_paths")
    for placement, norm_first in (("pre-norm", True), ("post-norm", False)):
        run = _run(result, placement, 6)
        model = lab_module.make_encoder_lm(result["vocab_size"], 6, norm_first)
        loss = _loss(model, *result["probe"])
        loss.backward()
        assert run["loss"] == pytest.approx(loss.item(), rel=1e-5)
        for i, layer in enumerate(model.encoder.layers):
            direct = math.sqrt(sum(_norm(p.grad) ** 2 for p in layer.parameters()))
            assert run["layers"][i] == pytest.approx(direct, rel=1e-4)


def test_post_norm_keeps_large_gradients_near_the_output(lab):
    # Xiong et al. (2020): at initialization the post-norm Transformer's last layers get the
    # largest parameter gradients, and they do not shrink with depth; pre-norm's shrink
    result = lab[0]
    pre = [_run(result, "pre-norm", d)["layers"] for d in (2, 6, 12)]
    post = [_run(result, "post-norm", d)["layers"] for d in (2, 6, 12)]
    assert pre[0][-1] > pre[1][-1] > pre[2][-1]
    assert post[2][-1] > 2.5 * pre[2][-1]
    assert post[2][-1] > 1.5 * min(post[2])
    assert pre[2][0] > 1.5 * pre[2][-1]


def test_head_gradients_match_grad_slices(lab):
    result, _ = lab
    model, probe = result["model"], result["probe"]
    _loss(model, *probe).backward()
    width, heads = model.config.d_model, model.config.n_head
    size = width // heads
    for row in result["heads"]["trained"]:
        block = model.blocks[row["layer"]]
        qkv = block.attn.qkv.weight.grad.numpy().astype(np.float64)
        proj = block.attn.proj.weight.grad.numpy().astype(np.float64)
        h = row["head"] * size
        assert row["W_q"] == pytest.approx(np.linalg.norm(qkv[h:h + size]), rel=1e-4)
        assert row["W_k"] == pytest.approx(np.linalg.norm(qkv[width + h:width + h + size]),
                                           rel=1e-4)
        assert row["W_v"] == pytest.approx(
            np.linalg.norm(qkv[2 * width + h:2 * width + h + size]), rel=1e-4)
        assert row["W_o"] == pytest.approx(np.linalg.norm(proj[:, h:h + size]), rel=1e-4)
    model.zero_grad()


def test_queries_and_keys_get_little_gradient_at_initialization(lab):
    # near-uniform attention at step 0: the scores hardly matter, the values and the output
    # projection carry the gradient
    init = lab[0]["heads"]["init"]
    for row in init:
        assert max(row["W_q"], row["W_k"]) < 0.1 * row["W_v"] < row["W_o"]


def test_page_links_every_figure_and_gives_the_command(lab):
    page = assert_page("m6_transformer_paths", lab[1], FIGURES)
    for doc in ("../gradient-flow.md", "../attention-debugging.md"):
        assert doc in page
