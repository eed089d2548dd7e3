"""retrograd/explain/linear.py: the dense layer and the gradient-descent step, with the
course's examples (seed 001's regression step, seed 002's dense + ReLU) reproduced."""

import numpy as np
import pytest

import retrograd
from tests.explain._check import assert_explains, grad


def test_seed_001_gradient_descent_step_with_the_corrected_dL_dw():
    # seed 001, "1-D linear regression": w = 1, b = 0, x = 2.1, y = 4, lr 0.01. The slides print
    # dL/dw = -7.68; 2 (w x + b - y) x = 2 (2.1 - 4) 2.1 = -7.98, which is also what their own
    # update w = 1 - 0.01 * dL/dw = 1.0798 used.
    ex = assert_explains("regression", values={"w": 1, "b": 0, "x": 2.1, "y": 4}, lr=0.01)
    assert grad(ex, "w") == pytest.approx(-7.98)
    assert grad(ex, "b") == pytest.approx(-3.8)
    text = str(ex)
    assert "L = r^2 = 3.61" in text
    assert "dL/dw = dL/dr * x = -7.98" in text and "-7.68" not in text
    assert "w' = w - lr dL/dw = 1.0798" in text and "b' = b - lr dL/db = 0.038" in text
    assert "L' = (w' x + b' - y)^2 = 2.8711" in text  # the slides' 2.87


def test_seed_002_dense_relu_example():
    # seed 002, dense layer: x = [2, 3], W = [[1, 2], [0, -1]], b = [1, -1]; y = [9, -4], ReLU
    # [9, 0]; dL/dy' = [0.5, -0.2] gives dL/dy = [0.5, 0], dL/dx = [0.5, 1], dL/dW = [[1, 1.5],
    # [0, 0]], dL/db = [0.5, 0].
    ex = assert_explains("linear", activation="relu", values={
        "x": [2, 3], "W": [[1, 2], [0, -1]], "b": [1, -1], "dL/dy'": [0.5, -0.2]})
    assert ex.printed_outputs()[0].value.tolist() == [9, 0]
    assert grad(ex, "x").tolist() == [0.5, 1.0]
    assert grad(ex, "W").tolist() == [[1.0, 1.5], [0.0, 0.0]]
    assert grad(ex, "b").tolist() == [0.5, 0.0]
    assert "y = W x + b = [ 9  -4]" in str(ex)


@pytest.mark.parametrize("shape", [None, (4,), (3, 4)])
@pytest.mark.parametrize("activation", ["none", "relu"])
def test_linear_vector_and_batch(shape, activation):
    ex = assert_explains("linear", shape=shape, activation=activation, out_features=3, seed=2)
    x = ex.inputs["x"].value
    assert grad(ex, "W").shape == (3, x.shape[-1])


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_regression_drawn(seed):
    assert_explains("regression", seed=seed)


def test_linear_bad_input():
    with pytest.raises(ValueError, match=r"explain linear: out_features must be >= 1"):
        retrograd.explain("linear", out_features=0)
    with pytest.raises(ValueError, match=r"explain linear: .*x 3 dimensions.* at most 2"):
        retrograd.explain("linear", shape=(2, 2, 2))
    with pytest.raises(ValueError, match=r"explain linear: expected input with last "
                                         r"dim 2, got input of shape \(3,\)"):
        retrograd.explain("linear", values={"x": [1, 2, 3], "W": [[1, 2], [3, 4]]})
    assert np.all(np.isfinite(grad(retrograd.explain("dense"), "W")))
