"""retrograd/explain/chain_rule.py: the vector chain rule and the total derivative (seed 003):
a hidden unit's gradient is the sum over the outputs it reaches; a last-layer weight's is not."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.chain_rule as chain_rule_example
from tests.explain._check import assert_explains

VALUES = {"x": [1, 2], "W1": [[1, 1], [-1, 2]], "b1": [0, 1], "W2": [[2, -1], [1, 1]],
          "b2": [0, 0], "t": [1, 2]}


def test_total_derivative_sums_the_paths_through_every_output():
    ex = assert_explains("chain_rule", values=VALUES)
    steps = {s.name: s.value for s in ex.steps}
    x, W1, b1 = np.array(VALUES["x"]), np.array(VALUES["W1"]), np.array(VALUES["b1"])
    W2, t = np.array(VALUES["W2"]), np.array(VALUES["t"])
    h = np.maximum(W1 @ x + b1, 0)   # [3, 4]
    y = W2 @ h                        # [2, 7]
    dy = y - t                        # [1, 5]
    paths = dy[:, None] * W2          # terms dL/dy_k * W2[k, i]
    np.testing.assert_array_equal(steps["dL/dy_k * W2[k, i]"], paths)
    np.testing.assert_array_equal(steps["dL/dh"], W2.T @ dy)
    assert steps["dL/dh"].tolist() == [7.0, 4.0]
    assert ex.gradients["W2"].tolist() == np.outer(dy, h).tolist()
    assert ex.printed_outputs()[0].value == pytest.approx(0.5 * np.sum(dy ** 2))


@pytest.mark.parametrize("options", [{"hidden": 3}, {"outputs": 1}, {"shape": (3,)}])
def test_chain_rule_options(options):
    assert_explains("chain_rule", **options)


def test_mutation_of_one_path_fails_the_check(monkeypatch):
    real_outer = np.outer
    calls = []

    def outer_with_a_wrong_term(a, b):
        calls.append(1)
        result = real_outer(a, b)
        if len(calls) == 2:  # the second outer product: dL/dW1 = dL/ds x^T
            result[0, 0] += 1
        return result

    monkeypatch.setattr(chain_rule_example.np, "outer", outer_with_a_wrong_term)
    ex = retrograd.explain("chain_rule", values=VALUES)
    assert not ex.ok and [c.name for c in ex.checks if not c.ok] == ["dL/dW1"]


def test_chain_rule_bad_input():
    with pytest.raises(ValueError, match=r"explain chain_rule: hidden must be >= 1, got 0"):
        retrograd.explain("chain_rule", hidden=0)
    with pytest.raises(ValueError, match=r"explain chain_rule: .*x 2 dimensions"):
        retrograd.explain("chain_rule", shape=(2, 2))
