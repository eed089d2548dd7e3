"""The Module 1 lab (docs/course/m1_graphs.py): its reduced form runs in time, writes readable
figures and a results page, and its numbers agree with computations made here without it."""

import shutil

import numpy as np
import pytest

from tests.course._lab import assert_outputs, assert_page, lab_fixture, load_lab

GRAPHS = ["m1-regression-graph", "m1-neuron-alive-graph", "m1-neuron-dead-graph",
          "m1-mlp-graph"]
PLOTS = ["m1-reverse-vs-forward.png"]

lab = lab_fixture("m1_graphs")


def test_outputs_are_readable(lab):
    result, out = lab
    for name in GRAPHS:
        assert (out / f"{name}.dot").read_text().startswith("digraph")
    pngs = [f"{name}.png" for name in GRAPHS] if shutil.which("dot") else []
    text = assert_outputs(out, pngs + PLOTS, "m1-graphs.md")
    assert "-7.98" in text and "-7.68 (misprint)" in text


def test_regression_step_matches_the_chain_rule(lab):
    # seed 001, the gradient-descent step: w=1, b=0, x=2.1, y=4, lr 0.01. The slide prints
    # dL/dw = -7.68; the chain rule gives 2 (w x + b - y) x = 2 (-1.9)(2.1) = -7.98, and the
    # slide's own update w = 1 - 0.01 dL/dw = 1.0798 uses -7.98.
    reg = lab[0]["regression"]
    expected = dict(L=3.61, dL_dw=-7.98, dL_db=-3.8, dL_dx=-3.8)
    for key, value in expected.items():
        assert reg["hand"][key] == pytest.approx(value, abs=1e-12)
        assert reg["autograd"][key] == pytest.approx(value, abs=1e-12)
    assert reg["explain"] == pytest.approx(dict(w=-7.98, b=-3.8, x=-3.8), abs=1e-12)
    assert reg["explain_ok"]
    assert reg["hand"]["w_new"] == pytest.approx(1.0798, abs=1e-12)
    assert reg["hand"]["L_new"] == pytest.approx(2.87, abs=0.01)
    assert reg["slide_dL_dw"] != pytest.approx(reg["autograd"]["dL_dw"])


def test_shared_weight_gets_the_sum_of_both_branches(lab):
    # L = (relu(w.x + b) - y)^2 + 0.1 |w|^2, w = [0.5, -1, 2], x = [2, 1, 1.5], y = 2
    w, x = np.array([0.5, -1.0, 2.0]), np.array([2.0, 1.0, 1.5])
    penalty = 2 * 0.1 * w
    neuron = lab[0]["neuron"]
    alive = 2 * (w @ x + 0.5 - 2.0) * x + penalty  # z = 3.5 > 0: both branches
    np.testing.assert_allclose(neuron["alive"]["autograd_dL_dw"], alive, rtol=1e-12)
    np.testing.assert_allclose(neuron["alive"]["hand"]["dL_dw"], alive, rtol=1e-12)
    assert neuron["alive"]["autograd_dL_db"] == pytest.approx(3.0)
    # b = -4: z = -1, the ReLU blocks the data branch, only the penalty's gradient is left
    np.testing.assert_allclose(neuron["dead"]["autograd_dL_dw"], penalty, rtol=1e-12)
    assert neuron["dead"]["autograd_dL_db"] == 0.0


def _mlp_loss_and_gradient(module, hidden, images, labels):
    """The digits MLP's loss gradient by backpropagation written out in NumPy here."""
    model = module.digits_mlp(hidden)
    (w1, b1), (w2, b2) = [(lin.weight.detach().numpy(), lin.bias.detach().numpy())
                          for lin in (model.layers[1], model.layers[3])]
    x, n = images.reshape(len(images), -1), len(images)
    z = x @ w1.T + b1
    h = np.maximum(z, 0)
    logits = h @ w2.T + b2
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    dlogits = (p - np.eye(10)[labels]) / n
    dh = dlogits @ w2
    dz = dh * (z > 0)
    grad = np.concatenate([(dz.T @ x).ravel(), dz.sum(0), (dlogits.T @ h).ravel(),
                           dlogits.sum(0)])
    return grad


def test_reverse_mode_and_finite_differences_agree_with_numpy_backprop(lab):
    result = lab[0]
    module = load_lab("m1_graphs")
    images, labels = module.digits_batch(result["settings"]["batch"])
    for row in result["costs"]:
        hidden = row["hidden"]
        assert row["parameters"] == 64 * hidden + hidden + hidden * 10 + 10
        assert row["fd_evaluations"] == 2 * row["parameters"]
        expected = _mlp_loss_and_gradient(module, hidden, images.numpy(), labels.numpy())
        np.testing.assert_allclose(row["reverse"], expected, rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(row["fd"], expected, rtol=0, atol=1e-8)
        assert row["relative_diff"] < 1e-6
        # one backward against 2n forwards: even on a busy machine, not close
        assert row["fd_s"] > 20 * row["reverse_s"]


def test_mlp_graph_edges_carry_the_parameter_gradients(lab):
    graph = lab[0]["mlp_graph"]
    module = load_lab("m1_graphs")
    from retrograd.nn import functional as F

    images, labels = module.digits_batch(256)
    model = module.digits_mlp(16)
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    assert graph["loss"] == pytest.approx(loss.item(), rel=1e-12)
    for name, p in model.named_parameters():
        norm = float(np.linalg.norm(p.grad.numpy()))
        assert graph["parameter_grad_norms"][name] == pytest.approx(norm, rel=1e-12)
        edge = next(e for e in graph["edges"] if e["edge"].startswith(name + " ->"))
        assert edge["norm"] == pytest.approx(norm, rel=1e-6)


def test_page_links_every_figure_and_gives_the_command(lab):
    assert_page("m1_graphs", lab[1])
