"""retrograd/explain/residual.py: the block y = x + W2 ReLU(W1 x + b1), its gradients by hand,
the identity path and the branch shown apart, the Jacobian I + W2 diag(ReLU'(z)) W1, and a
forgotten skip path caught by the check."""

import pytest

import retrograd
import retrograd.explain.residual as residual_example
from tests.explain._check import assert_explains, grad

# z = W1 x + b1 = [1.5, -1.5]: one unit on, one off
HAND_WORKED = {"x": [1, 2], "W1": [[1, 0], [0, -1]], "b1": [0.5, 0.5],
               "W2": [[1, 2], [3, 4]], "dy": [1, 0.5]}


def _step(ex, name):
    return next(s for s in ex.steps if s.name == name)


@pytest.mark.parametrize("shape, hidden", [(None, 3), (None, 1), ((2,), 2), ((4,), 3)])
@pytest.mark.parametrize("seed", [0, 3])
def test_residual_sizes(shape, hidden, seed):
    ex = assert_explains("residual", shape=shape, hidden=hidden, seed=seed)
    d = ex.inputs["x"].value.shape[0]
    assert grad(ex, "W1").shape == (hidden, d) and grad(ex, "W2").shape == (d, hidden)


def test_a_block_worked_by_hand():
    # a = ReLU([1.5, -1.5]) = [1.5, 0], F(x) = W2 a = [1.5, 4.5], y = [2.5, 6.5];
    # dL/dW2 = dy a^T, dL/da = W2^T dy = [2.5, 4], dL/dz = [2.5, 0], dL/dW1 = dL/dz x^T,
    # dL/dx = dy + W1^T dL/dz = [1, 0.5] + [2.5, 0]
    ex = assert_explains("residual", values=HAND_WORKED)
    assert ex.printed_outputs()[0].value.tolist() == [2.5, 6.5]
    assert _step(ex, "dL/dx (identity path)").value.tolist() == [1, 0.5]
    assert _step(ex, "dL/dx (branch)").value.tolist() == [2.5, 0]
    assert grad(ex, "x").tolist() == [3.5, 0.5]
    assert grad(ex, "W2").tolist() == [[1.5, 0], [0.75, 0]]
    assert grad(ex, "W1").tolist() == [[2.5, 5], [0, 0]]
    assert grad(ex, "b1").tolist() == [2.5, 0]
    assert _step(ex, "dy/dx").value.tolist() == [[2, 0], [3, 1]]
    assert [s.name for s in ex.printed_gradients()] == [
        "dL/dW2", "dL/dW1", "dL/db1", "dL/dx", "dL/dx (via the Jacobian)"]
    assert "each I + (the branch's Jacobian)" in str(ex)


def test_with_every_unit_off_the_identity_path_carries_the_gradient():
    ex = assert_explains("residual", values={**HAND_WORKED, "b1": [-5, -5]})
    assert grad(ex, "x").tolist() == [1, 0.5] and not grad(ex, "W1").any()
    assert "Every hidden unit is off" in str(ex)


def test_a_forgotten_skip_path_fails_the_check(monkeypatch):
    # dL/dx without the identity term: only the printed identity + branch sum is wrong
    monkeypatch.setattr(residual_example, "_identity_term", lambda g: 0.0 * g)
    ex = retrograd.explain("residual", values=HAND_WORKED)
    assert not ex.ok and [c.name for c in ex.checks if not c.ok] == ["dL/dx"]


def test_residual_bad_input():
    with pytest.raises(ValueError, match=r"explain residual: hidden must be >= 1, got 0"):
        retrograd.explain("residual", hidden=0)
    with pytest.raises(ValueError, match=r"explain residual: W1 has 3 columns \(dimension 1 "
                                         r"of W1, shape 2x3\) but x has 2 entries"):
        retrograd.explain("residual", values={"x": [1, 2], "W1": [[1, 2, 3], [4, 5, 6]]})
    with pytest.raises(ValueError, match=r"explain residual: W2 has shape 2x3, but F\(x\) must "
                                         r"have x's 2 entries .* W2 must be 2x2"):
        retrograd.explain("residual", values={"x": [1, 2], "W1": [[1, 0], [0, 1]],
                                              "W2": [[1, 2, 3], [4, 5, 6]]})
    with pytest.raises(ValueError, match=r"explain residual: --shape gives x 2 dimensions"):
        retrograd.explain("residual", shape=(2, 3))
    with pytest.raises(ValueError, match=r"explain residual: branch must be one of "
                                         r"linear_relu, got 'conv'"):
        retrograd.explain("residual", branch="conv")
