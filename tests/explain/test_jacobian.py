"""retrograd/explain/jacobian.py: the Jacobian that is never built (seed 004's sizes) and the
vector-Jacobian product that replaces it."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.jacobian as jacobian_example
from tests.explain._check import assert_explains


def test_seed_004_jacobian_sizes():
    # seed 004, "gradients for multidimensional data": a 4096 -> 2048 layer has a 2048 x 4096
    # Jacobian; on a minibatch of 100 it is 204,800 x 409,600, about 83.9 billion numbers
    assert jacobian_example.jacobian_size(4096, 2048) == (2048, 4096, 8_388_608)
    rows, columns, entries = jacobian_example.jacobian_size(4096, 2048, 100)
    assert (rows, columns) == (204_800, 409_600) and round(entries / 1e9, 1) == 83.9
    text = " ".join(str(assert_explains("jacobian")).split())  # the sentence wraps
    assert "204,800 x 409,600 = 83,886,080,000 numbers (335.5 GB in float32)" in text


def test_the_jacobian_built_and_the_vjp_agree_with_a_direct_computation():
    x, W, g = [1.0, 2.0, -1.0], [[1.0, -1.0, 2.0], [2.0, 1.0, 0.0]], [0.5, -1.0]
    ex = assert_explains("jacobian", values={"x": x, "W": W, "dL/dy": g})
    steps = {s.name: s.value for s in ex.steps}
    s = np.array(W) @ np.array(x)  # [-3, 4]: the first unit is off
    expected_J = np.diag((s > 0).astype(float)) @ np.array(W)
    np.testing.assert_array_equal(steps["dy/dx"], expected_J)
    via_j, vjp = [st.value for st in ex.printed_gradients() if st.of == "x"]
    np.testing.assert_array_equal(via_j, vjp)
    np.testing.assert_array_equal(vjp, expected_J.T @ np.array(g))


def test_drawn_example_shows_a_live_unit():
    for seed in range(5):
        ex = retrograd.explain("jacobian", seed=seed)
        assert np.any({s.name: s.value for s in ex.steps}["s"] > 0)


@pytest.mark.parametrize("options", [{"in_features": 784, "out_features": 10, "batch": 1},
                                     {"shape": (5,)}])
def test_jacobian_options(options):
    assert_explains("jacobian", **options)


def test_mutation_of_the_relu_diagonal_fails_the_check(monkeypatch):
    real_diag = np.diag
    monkeypatch.setattr(jacobian_example.np, "diag", lambda v: real_diag(v) + 0.5)
    ex = retrograd.explain("jacobian", seed=1)
    assert not ex.ok and [c.name for c in ex.checks if not c.ok] == ["dL/dx (via J)"]


def test_jacobian_bad_input():
    with pytest.raises(ValueError, match=r"explain jacobian: batch must be >= 1, got 0"):
        retrograd.explain("jacobian", batch=0)
    with pytest.raises(ValueError, match=r"explain jacobian: W has 2 columns \(dimension 1\) "
                                         r"but x has 3 entries"):
        retrograd.explain("jacobian", values={"W": [[1, 2], [3, 4]]})
