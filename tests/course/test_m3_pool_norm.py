"""The Module 3 lab (docs/course/m3_pool_norm.py): its reduced form runs in time, writes
readable figures and a results page, and its pooling and normalization numbers agree with
computations made here."""

import numpy as np
import pytest

from tests.course._lab import assert_outputs, assert_page, lab_fixture, module_fixture

FIGURES = ["m3-pool-routing.png", "m3-norm-scale.png", "m3-layer-gradients.png",
           "m3-training.png"]

lab = lab_fixture("m3_pool_norm")
module = module_fixture("m3_pool_norm")


def _case(result, kind, kernel, stride, padding):
    return next(c for c in result["pools"]
                if (c["kind"], c["kernel"], c["stride"], c["padding"]) ==
                (kind, kernel, stride, padding))


def test_outputs_are_readable(lab):
    _, out = lab
    text = assert_outputs(out, FIGURES, "m3-pool-norm.md")
    for heading in ("## 1. Pooling", "## 2. Normalization", "## 3. Scale", "## 4. Training"):
        assert heading in text


def test_max_pool_routes_to_one_position_per_window(lab, module):
    result = lab[0]
    images, _ = module.probe_digits(result["probe"])
    features = module.conv_features(images)
    case = _case(result, "max", 2, 2, 0)
    # the first maximum of each 2x2 window, found by reshaping into windows (no loops)
    n, c = features.shape[:2]
    windows = features.reshape(n, c, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(
        n, c, 4, 4, 4)
    winner = np.zeros_like(windows, dtype=bool)
    np.put_along_axis(winner, windows.argmax(axis=-1)[..., None], True, axis=-1)
    winner = winner.reshape(n, c, 4, 4, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, 8, 8)
    np.testing.assert_array_equal(case["grad_x"] != 0, winner)
    assert case["fraction_with_gradient"] == 0.25
    assert case["multiple_wins"] == 0.0
    assert case["grad_x_sum"] == pytest.approx(case["grad_y_sum"], abs=1e-12)
    overlapping = _case(result, "max", 3, 1, 1)
    assert overlapping["multiple_wins"] > 0  # overlapping windows can share a winner
    for pool in result["pools"]:
        assert pool["max_diff"] < 1e-15


def test_average_pool_spreads_to_every_position(lab):
    result = lab[0]
    case = _case(result, "avg", 2, 2, 0)
    assert case["fraction_with_gradient"] == 1.0
    grad = case["grad_x"]
    # within each 2x2 window the four positions get the same quarter of dL/dY
    blocks = grad.reshape(*grad.shape[:2], 4, 2, 4, 2)
    np.testing.assert_allclose(blocks, blocks[:, :, :, :1, :, :1] * np.ones((1, 1, 1, 2, 1, 2)))
    assert case["grad_x_sum"] == pytest.approx(case["grad_y_sum"], abs=1e-12)


def test_seed_max_pooling_example(module):
    # seed 002, max pooling: X = 1..16 in a 4x4 grid, 2x2 windows, stride 2, so Y = [[6, 8],
    # [14, 16]]; dL/dY = [[0.5, -0.5], [1, 0]] goes to the positions of 6, 8, 14 and 16.
    import retrograd as rg
    from retrograd.nn import functional as F

    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    grad_y = np.array([[0.5, -0.5], [1.0, 0.0]])[None, None]
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[3, 1] = 0.5, -0.5, 1.0
    np.testing.assert_array_equal(module.max_pool_backward(x, grad_y, 2, 2, 0)[0, 0], expected)
    tx = rg.tensor(x, requires_grad=True)
    y = F.max_pool2d(tx, 2)
    np.testing.assert_array_equal(y.detach().numpy()[0, 0], [[6, 8], [14, 16]])
    y.backward(rg.tensor(grad_y))
    np.testing.assert_array_equal(tx.grad.numpy()[0, 0], expected)


def test_seed_batch_norm_example(module):
    # seed 002, batch normalization: x = [1, 2, 3, 4], gamma = 1, beta = 0, eps = 1e-4,
    # dL/dy = [0.1, 0.2, -0.1, 0.3] (the seed's own backward uses names it never defines).
    import retrograd as rg
    from retrograd.nn import functional as F

    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(4, 1, 1, 1)
    grad_y = np.array([0.1, 0.2, -0.1, 0.3]).reshape(4, 1, 1, 1)
    hand = module.normalization_backward("batch", x, grad_y, np.ones((1, 1, 1, 1)), eps=1e-4)
    expected = [0.01788461, 0.08049415, -0.21465287, 0.1162741]
    np.testing.assert_allclose(hand["grad_x"].ravel(), expected, atol=1e-8)
    np.testing.assert_allclose(hand["grad_gamma"], [0.13415871], atol=1e-8)
    np.testing.assert_allclose(hand["grad_beta"], [0.5], atol=1e-15)
    tx = rg.tensor(x, requires_grad=True)
    gamma = rg.tensor(np.ones(1), requires_grad=True)
    beta = rg.tensor(np.zeros(1), requires_grad=True)
    F.batch_norm(tx, None, None, gamma, beta, training=True, eps=1e-4).backward(
        rg.tensor(grad_y))
    np.testing.assert_allclose(tx.grad.numpy(), hand["grad_x"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gamma.grad.numpy(), hand["grad_gamma"], rtol=1e-12)


def test_normalization_formula_equals_autograd(lab):
    norms = {c["kind"]: c for c in lab[0]["norms"]}
    assert set(norms) == {"batch", "layer", "group"}
    for case in norms.values():
        assert max(case["diff"].values()) < 1e-12, case


def test_normalization_makes_the_gradient_scale_invariant(lab):
    rows = lab[0]["scales"]
    for row in rows:
        if row["kind"] == "none":
            continue
        # exact for eps = 0; at a = 0.1 the variance is 100 times smaller and eps = 1e-5 shows
        tolerance = 0.05 if row["scale"] < 1 else 1e-3
        assert row["grad_x_ratio"] == pytest.approx(1.0, abs=tolerance), row
        assert row["grad_w_ratio"] * row["scale"] == pytest.approx(1.0, abs=tolerance), row
    plain = {r["scale"]: r for r in rows if r["kind"] == "none"}
    # without a normalization the scale passes through to dL/dx (ReLU is homogeneous)
    assert plain[10.0]["grad_x_ratio"] > 2 and plain[0.1]["grad_x_ratio"] < 0.5


def test_monitor_numbers_and_normalization_at_initialization(lab, module):
    import retrograd as rg
    from retrograd.datasets import Digits
    from retrograd.nn import functional as F
    from retrograd.training.common import seeded_batches

    result = lab[0]
    runs = {run["norm"]: run for run in result["training"]}
    settings = result["settings"]
    for norm, run in runs.items():
        rg.manual_seed(0)
        model = module.build_cnn(norm)
        x, y = next(seeded_batches(Digits(train=True), settings["batch"], 1, 0))
        F.cross_entropy(model(x), y).backward()
        for path, label in module.weight_layers(model):
            grad = model.get_submodule(path).weight.grad.numpy()
            assert run["weight_grad_norms"][label][0] == pytest.approx(
                float(np.linalg.norm(grad.astype(np.float64))), rel=1e-5)
    ratio = {norm: run["weight_grad_norms"]["conv1"][0] / run["weight_grad_norms"]["linear"][0]
             for norm, run in runs.items()}
    # at initialization the first convolution's gradient is a far smaller share of the
    # classifier's without normalization than with it
    assert ratio["batch"] > 2 * ratio["none"] and ratio["group"] > 2 * ratio["none"]
    assert runs["batch"]["weight_grad_norms"]["conv1"][0] > \
        10 * runs["none"]["weight_grad_norms"]["conv1"][0]


def test_page_links_every_figure_and_gives_the_command(lab):
    assert_page("m3_pool_norm", lab[1])
