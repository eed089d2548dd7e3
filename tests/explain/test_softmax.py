"""retrograd/explain/softmax.py: softmax with its Jacobian diag(y) - y y^T shown and the cheap
backward that never builds it, and log-softmax through the logsumexp."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.softmax as softmax_example
from tests.explain._check import assert_explains, grad


def _step(ex, name):
    (step,) = [s for s in ex.steps if s.name == name]
    return step.value


def _output(ex):
    return ex.printed_outputs()[0].value


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [None, (2,), (5,), (2, 3), (3, 4), (1, 6)])
def test_vectors_and_matrices(op, shape):
    assert_explains(op, shape=shape, seed=3)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (3, 5)])
def test_the_printed_jacobian_is_diag_p_minus_p_p_transposed(shape):
    ex = assert_explains("softmax", shape=shape, seed=2)
    y = _output(ex).reshape(-1, shape[-1])
    jacobian = _step(ex, "J").reshape(-1, shape[-1], shape[-1])
    for p, j in zip(y, jacobian):
        np.testing.assert_allclose(j, np.diag(p) - np.outer(p, p), atol=1e-15)
        np.testing.assert_allclose(j.sum(axis=1), 0.0, atol=1e-15)
        np.testing.assert_allclose(j, j.T)
    via_j, cheap = [s.value for s in ex.printed_gradients()]
    np.testing.assert_allclose(via_j, cheap, atol=1e-15)
    assert [s.name for s in ex.printed_gradients()] == ["dL/dx (via J)", "dL/dx (cheap form)"]
    assert "never builds J" in str(ex)


def test_two_equal_logits_by_hand():
    # y = [1/2, 1/2]; J = [[1/4, -1/4], [-1/4, 1/4]]; dL/dy = [1, 0] gives dL/dx = [1/4, -1/4]
    ex = assert_explains("softmax", values={"x": [0, 0], "dL/dy": [1, 0]})
    assert _output(ex).tolist() == [0.5, 0.5]
    assert _step(ex, "J").tolist() == [[0.25, -0.25], [-0.25, 0.25]]
    assert grad(ex, "x").tolist() == [0.25, -0.25]
    assert "y . dL/dy = sum(dL/dy * y) = 0.5" in str(ex)


def test_the_max_is_subtracted_so_large_logits_do_not_overflow():
    ex = assert_explains("softmax", values={"x": [1000, 1001, 1002]})
    assert _step(ex, "m") == 1002 and _step(ex, "x - m").tolist() == [-2, -1, 0]
    expected = np.exp([-2.0, -1.0, 0.0]) / np.exp([-2.0, -1.0, 0.0]).sum()
    np.testing.assert_allclose(_output(ex), expected, rtol=1e-15)
    ex = assert_explains("log_softmax", values={"x": [1000, 1000]})
    np.testing.assert_allclose(_output(ex), [-np.log(2)] * 2, rtol=1e-15)


def test_a_constant_upstream_gives_a_zero_gradient_and_says_why():
    ex = assert_explains("softmax", values={"x": [[1, 2, 0.5], [0, -1, 3]],
                                            "dL/dy": [[0.5, 0.5, 0.5], [-1, -1, -1]]})
    assert np.all(grad(ex, "x") == 0)
    assert "dL/dx is 0" in str(ex).replace("\n  ", " ")


def test_log_softmax_by_hand():
    # four equal logits: y = -log 4, softmax 1/4; dL/dy = [1, 0, 0, 0], sum 1:
    # dL/dx = dL/dy - 1/4 = [0.75, -0.25, -0.25, -0.25]
    ex = assert_explains("log_softmax", values={"x": [0, 0, 0, 0], "dY": [1, 0, 0, 0]})
    np.testing.assert_allclose(_output(ex), [-np.log(4)] * 4, rtol=1e-15)
    np.testing.assert_allclose(_step(ex, "logsumexp(x)"), np.log(4), rtol=1e-15)
    assert grad(ex, "x").tolist() == [0.75, -0.25, -0.25, -0.25]


def test_log_softmax_gradient_is_upstream_minus_softmax_times_its_sum():
    ex = assert_explains("log_softmax", shape=(3, 4), seed=5)
    x, g = ex.inputs["x"].value, ex.upstreams[0][1]
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grad(ex, "x"), g - p * g.sum(axis=1, keepdims=True), atol=1e-14)


def test_a_wrong_jacobian_fails_the_check_of_the_gradient_through_it(monkeypatch):
    real = softmax_example._jacobian
    monkeypatch.setattr(softmax_example, "_jacobian", lambda y: real(y) + 0.01 * np.eye(3))
    ex = retrograd.explain("softmax", values={"x": [1, 2, 3], "dL/dy": [1, -1, 0.5]})
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dx (via J)"]
    assert "CHECK FAILED for dL/dx (via J)" in str(ex)


def test_bad_input():
    with pytest.raises(ValueError, match=r"explain softmax: x is a single number; give a "
                                         r"vector \(C,\) or a matrix \(N, C\)"):
        retrograd.explain("softmax", values={"x": 2})
    with pytest.raises(ValueError, match=r"explain log_softmax: --shape gives x 3 dimensions"):
        retrograd.explain("log_softmax", shape=(2, 2, 3))
    with pytest.raises(ValueError, match=r"explain softmax: unknown option dim"):
        retrograd.explain("softmax", dim=0)
