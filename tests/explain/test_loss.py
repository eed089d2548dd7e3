"""retrograd/explain/loss.py: cross-entropy (log-softmax, the picked log-probabilities, the loss,
dL/dx = (softmax - onehot(t)) / N, label smoothing, ignored targets) and the mean squared error
with its differentiable target."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.loss as loss_example
from tests.explain._check import assert_explains, grad


def _loss(ex):
    return float(ex.printed_outputs()[0].value)


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [None, (3,), (1, 4), (4, 5)])
def test_cross_entropy_options_and_batch_sizes(label_smoothing, reduction, shape):
    ex = assert_explains("cross_entropy", shape=shape, label_smoothing=label_smoothing,
                         reduction=reduction, seed=4)
    x, t = ex.inputs["x"].value, ex.inputs["t"].value
    n, c = x.shape
    q = (1 - label_smoothing) * np.eye(c)[t] + label_smoothing / c
    expected = (_softmax(x) - q) / (n if reduction == "mean" else 1)
    np.testing.assert_allclose(grad(ex, "x"), expected, atol=1e-14)


def test_cross_entropy_of_equal_logits_is_log_c():
    # the cross_entropy docstring's example: logits 0 over 4 classes, targets [0, 3]:
    # L = log 4, dL/dx[0] = (1/4 - [1, 0, 0, 0]) / 2 = [-0.375, 0.125, 0.125, 0.125]
    ex = assert_explains("cross_entropy", values={"x": np.zeros((2, 4)), "t": [0, 3]})
    assert _loss(ex) == pytest.approx(np.log(4), rel=1e-15)
    assert grad(ex, "x")[0].tolist() == [-0.375, 0.125, 0.125, 0.125]
    text = str(ex)
    assert "L = sum(loss_n) / N, N = 2 samples = 1.3863" in text
    assert "dL/dx = (p - onehot(t)) / 2" in text


def test_label_smoothing_moves_the_target_off_the_one_hot():
    # eps = 0.2, C = 4: q = 0.8 onehot + 0.05 = [0.85, 0.05, 0.05, 0.05]; p = 1/4:
    # dL/dx = p - q = [-0.6, 0.2, 0.2, 0.2]; the loss stays log 4 (sum(q) = 1, every log p equal)
    ex = assert_explains("cross_entropy", label_smoothing=0.2,
                         values={"x": [[0, 0, 0, 0]], "t": [0]})
    np.testing.assert_allclose([s.value for s in ex.steps if s.name == "q"][0],
                               [[0.85, 0.05, 0.05, 0.05]], rtol=1e-15)
    np.testing.assert_allclose(grad(ex, "x"), [[-0.6, 0.2, 0.2, 0.2]], atol=1e-15)
    assert _loss(ex) == pytest.approx(np.log(4), rel=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_ignored_targets_add_no_loss_and_no_gradient(reduction):
    # targets [0, 1, 1] with ignore_index 1: only sample 0 counts (N = 1 for the mean)
    ex = assert_explains("cross_entropy", ignore_index=1, reduction=reduction,
                         values={"x": [[0, 0], [2, -1], [1, 3]], "t": [0, 1, 1]})
    assert _loss(ex) == pytest.approx(np.log(2), rel=1e-15)
    assert grad(ex, "x").tolist() == [[-0.5, 0.5], [0, 0], [0, 0]]
    assert "0 on ignored rows" in str(ex)


def test_a_wrong_target_distribution_fails_the_gradient_check(monkeypatch):
    real = loss_example._target_distribution
    monkeypatch.setattr(loss_example, "_target_distribution",
                        lambda t, c, eps, counted: real(t, c, eps, counted) * 0.9)
    ex = retrograd.explain("cross_entropy", seed=1)
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dx"]


def test_cross_entropy_bad_input():
    with pytest.raises(ValueError, match=r"explain cross_entropy: t must be in \[0, 3\), got "
                                         r"\[0, 5\]: x \(shape 2x3\) has 3 classes"):
        retrograd.explain("cross_entropy", values={"t": [0, 5]})
    with pytest.raises(ValueError, match=r"explain cross_entropy: expected target of shape "
                                         r"\(2,\) .*got target of shape \(3,\)"):
        retrograd.explain("cross_entropy", values={"target": [0, 1, 2]})
    with pytest.raises(ValueError, match=r"explain cross_entropy: label_smoothing must be in "
                                         r"\[0, 1\], got 1.5"):
        retrograd.explain("cross_entropy", label_smoothing=1.5)
    with pytest.raises(ValueError, match=r"explain cross_entropy: reduction must be one of "
                                         r"mean, sum, got 'none'"):
        retrograd.explain("cross_entropy", reduction="none")
    with pytest.raises(ValueError, match=r"every target is ignore_index 2 \(\[2, 2\]\), so the "
                                         r"mean is 0/0"):
        retrograd.explain("cross_entropy", ignore_index=2, values={"t": [2, 2]})
    with pytest.raises(ValueError, match=r"explain cross_entropy: t must be integers"):
        retrograd.explain("cross_entropy", values={"t": [0.5, 1]})


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [None, (1,), (5,), (2, 3)])
def test_mse_loss_options_and_shapes(reduction, shape):
    ex = assert_explains("mse_loss", shape=shape, reduction=reduction, seed=2)
    pred, target = ex.inputs["pred"].value, ex.inputs["target"].value
    n = pred.size if reduction == "mean" else 1
    np.testing.assert_allclose(grad(ex, "pred"), 2 * (pred - target) / n, atol=1e-15)
    np.testing.assert_array_equal(grad(ex, "target"), -grad(ex, "pred"))


def test_mse_loss_by_hand():
    # the mse_loss docstring's example: pred [1, 2], target [1, 4]: d = [0, -2], L = 4 / 2 = 2,
    # dL/dpred = 2 d / 2 = [0, -2], dL/dtarget = [0, 2]; with the sum, L = 4 and twice those
    ex = assert_explains("mse_loss", values={"pred": [1, 2], "target": [1, 4]})
    assert _loss(ex) == 2.0
    assert grad(ex, "pred").tolist() == [0, -2] and grad(ex, "target").tolist() == [0, 2]
    assert "dL/dtarget = -2 d / 2 = -dL/dpred = [0  2]" in str(ex)
    ex = assert_explains("mse_loss", reduction="sum", values={"pred": [1, 2], "y": [1, 4]})
    assert _loss(ex) == 4.0
    assert grad(ex, "pred").tolist() == [0, -4] and grad(ex, "target").tolist() == [0, 4]


def test_a_wrong_slope_fails_both_mse_gradients(monkeypatch):
    monkeypatch.setattr(loss_example, "_squared_error_slope", lambda d, n: d / n)
    ex = retrograd.explain("mse_loss", values={"pred": [1, 2], "target": [0, 4]})
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dpred", "dL/dtarget"]


def test_mse_loss_shape_mismatch():
    with pytest.raises(ValueError, match=r"explain mse_loss: pred has shape 3 but target has "
                                         r"shape 2; they are compared element by element"):
        retrograd.explain("mse_loss", values={"pred": [1, 2, 3], "target": [1, 2]})
    with pytest.raises(ValueError, match=r"explain mse_loss: pred has shape 2x2 but target "
                                         r"has shape 4"):
        retrograd.explain("mse_loss", values={"pred": [[1, 2], [3, 4]], "target": [1, 2, 3, 4]})
