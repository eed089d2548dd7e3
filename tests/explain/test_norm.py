"""retrograd/explain/norm.py: batch, layer and group normalization, forward (mu, var, rstd,
x_hat, y) and backward (dL/dgamma, dL/dbeta, dL/dx_hat and the three terms of dL/dx), with
seed 002's batch-norm example computed (its own backward sketch prints nothing)."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.norm as norm_example
from retrograd.cli import main
from tests.explain._check import assert_explains, grad


def flat(ex):
    """The example's text with its line breaks undone (sentences wrap at 80 columns)."""
    return " ".join(str(ex).split())


def shown(ex, name):
    """The value of the step ``name`` as the example recorded it."""
    return [s.value for s in ex.steps if s.name == name][0]


SEED_002 = {"x": [[1], [2], [3], [4]], "gamma": [1], "beta": [0],
            "dy": [[0.1], [0.2], [-0.1], [0.3]]}


def test_seed_002_batch_normalization_example():
    # seed 002, "batch normalization": x = [1, 2, 3, 4] as a batch of 4 samples of one feature,
    # gamma = 1, beta = 0, epsilon = 1e-4, dy = [0.1, 0.2, -0.1, 0.3]. Its backward sketch reads
    # x and epsilon, which are not in its scope, so it prints nothing; the values are computed
    # here. mu = 2.5, var = 1.25 (biased), x_hat = (x - 2.5) / sqrt(1.2501).
    ex = assert_explains("batch_norm", eps=1e-4, values=SEED_002)
    x = np.array([1.0, 2.0, 3.0, 4.0])
    dy = np.array([0.1, 0.2, -0.1, 0.3])
    sigma = np.sqrt(1.25 + 1e-4)
    x_hat = (x - 2.5) / sigma
    assert shown(ex, "mu").tolist() == [2.5]
    assert shown(ex, "var").tolist() == [1.25]
    assert shown(ex, "rstd")[0] == pytest.approx(1 / sigma)
    np.testing.assert_allclose(shown(ex, "x_hat").ravel(), x_hat)
    np.testing.assert_allclose(ex.printed_outputs()[0].value.ravel(), x_hat)  # gamma 1, beta 0
    assert grad(ex, "beta").tolist() == pytest.approx([0.5])
    # sum(dy * x_hat) = (0.1*-1.5 + 0.2*-0.5 - 0.1*0.5 + 0.3*1.5) / sigma = 0.15 / sigma
    assert grad(ex, "gamma").tolist() == pytest.approx([0.15 / sigma])
    assert grad(ex, "gamma")[0] == pytest.approx(0.134158, abs=1e-6)
    # dL/dx by the long chain rule through var and mu (the route the seed's sketch takes)...
    d_x_hat = dy * 1.0
    d_var = np.sum(d_x_hat * (x - 2.5)) * -0.5 * sigma ** -3
    d_mu = -np.sum(d_x_hat) / sigma + d_var * np.mean(-2 * (x - 2.5))
    long_form = d_x_hat / sigma + d_var * 2 * (x - 2.5) / 4 + d_mu / 4
    # ...equals the compact form the example prints, term by term
    compact = (4 * d_x_hat - d_x_hat.sum() - x_hat * np.sum(d_x_hat * x_hat)) / (4 * sigma)
    np.testing.assert_allclose(long_form, compact)
    np.testing.assert_allclose(grad(ex, "x").ravel(), compact)
    np.testing.assert_allclose(grad(ex, "x").ravel(), [0.017885, 0.080494, -0.21465, 0.11627],
                               atol=1e-5)
    np.testing.assert_allclose(shown(ex, "term 1").ravel(), dy / sigma)
    np.testing.assert_allclose(shown(ex, "term 2").ravel(), np.full(4, -0.125 / sigma))
    np.testing.assert_allclose(shown(ex, "term 3").ravel(),
                               -x_hat * np.mean(dy * x_hat) / sigma)


def test_batch_norm_steps_in_the_docstring_order():
    ex = assert_explains("batch_norm")
    names = [s.name for s in ex.steps if s.kind in ("value", "output", "gradient")]
    assert names == ["mu", "var", "rstd", "x_hat", "y", "dL/dy", "dL/dgamma", "dL/dbeta",
                     "g = dL/dx_hat", "mean(g, A)", "mean(g * x_hat, A)", "term 1", "term 2",
                     "term 3", "dL/dx"]
    total = shown(ex, "term 1") + shown(ex, "term 2") + shown(ex, "term 3")
    np.testing.assert_array_equal(total, grad(ex, "x"))
    assert "(1 / (M sigma)) (M g - sum(g, A) - x_hat sum(g * x_hat, A))" in flat(ex)


@pytest.mark.parametrize("shape", [(4, 2), (3, 1), (2, 2, 2, 2), (3, 2, 3), (2, 3, 1, 2)])
def test_batch_norm_shapes(shape):
    ex = assert_explains("batch_norm", shape=shape, seed=2)
    channels = shape[1]
    assert shown(ex, "mu").shape == (channels,) and grad(ex, "gamma").shape == (channels,)


def test_batch_norm_4d_statistics_run_over_batch_height_and_width():
    x = np.arange(16.0).reshape(2, 2, 2, 2)  # channel 0: 0-3 and 8-11, channel 1: 4-7, 12-15
    ex = assert_explains("batch_norm", values={"x": x.tolist()}, eps=1e-3)
    assert shown(ex, "mu").tolist() == [5.5, 9.5]
    # deviations +-2.5, +-3.5, +-4.5, +-5.5: (6.25 + 12.25 + 20.25 + 30.25) / 4
    assert shown(ex, "var").tolist() == [17.25, 17.25]
    assert "A = (N, H, W), M = 8 values per channel" in flat(ex)


@pytest.mark.parametrize("eps", [1e-5, 1e-2, 0.5])
def test_batch_norm_eps(eps):
    ex = assert_explains("batch_norm", eps=eps)
    np.testing.assert_allclose(shown(ex, "rstd"), 1 / np.sqrt(shown(ex, "var") + eps))


@pytest.mark.parametrize("shape, dims", [((2, 4), 1), ((4,), 1), ((2, 3, 4), 1),
                                         ((2, 2, 3), 2), ((3, 2), 2)])
def test_layer_norm_shapes(shape, dims):
    ex = assert_explains("layer_norm", shape=shape, dims=dims, seed=5)
    assert grad(ex, "gamma").shape == shape[len(shape) - dims:]
    assert shown(ex, "mu").shape == shape[:len(shape) - dims]


def test_layer_norm_normalizes_each_row():
    ex = assert_explains("layer_norm", values={"x": [[1, 3], [2, 6]], "gamma": [1, 1],
                                               "beta": [0, 0]}, eps=0.0)
    assert shown(ex, "mu").tolist() == [2, 4]
    assert ex.printed_outputs()[0].value.tolist() == [[-1, 1], [-1, 1]]


@pytest.mark.parametrize("shape, groups", [((1, 4, 3), 2), ((2, 4), 2), ((2, 6, 2, 2), 3),
                                           ((2, 4, 3), 1), ((1, 4, 3), 4), ((3, 6, 2), 2)])
def test_group_norm_groups(shape, groups):
    ex = assert_explains("group_norm", shape=shape, groups=groups, seed=6)
    assert shown(ex, "mu").shape == (shape[0], groups)
    assert grad(ex, "gamma").shape == (shape[1],)


def test_group_norm_statistics_are_per_sample_and_group():
    x = [[[1, 3], [5, 7], [0, 0], [2, 2]]]  # group 0: 1, 3, 5, 7; group 1: 0, 0, 2, 2
    ex = assert_explains("group_norm", groups=2, values={"x": x})
    assert shown(ex, "mu").tolist() == [[4, 1]]  # (N, G)
    assert shown(ex, "var").tolist() == [[5, 1]]
    assert "G = 2 groups of C/G = 2" in flat(ex) and "A = (C/G, L), M = 4 values" in flat(ex)


def test_group_norm_with_one_group_per_channel_pair_equals_layer_norm_on_the_pairs():
    # one sample, 2 groups of 2 channels of a single position: each group is a row of 2 values
    x = [[1.0, 2.5, -1.0, 0.5]]
    dy = [[0.5, -1.0, 1.0, 0.5]]
    group = assert_explains("group_norm", groups=2, values={
        "x": x, "gamma": [1, 1, 1, 1], "beta": [0, 0, 0, 0], "dy": dy})
    layer = assert_explains("layer_norm", values={
        "x": np.reshape(x, (2, 2)).tolist(), "gamma": [1, 1], "beta": [0, 0],
        "dy": np.reshape(dy, (2, 2)).tolist()})
    np.testing.assert_allclose(grad(group, "x").ravel(), grad(layer, "x").ravel())


@pytest.mark.parametrize("term", [0, 1, 2])
@pytest.mark.parametrize("op", ["batch_norm", "layer_norm", "group_norm"])
def test_a_perturbed_term_of_dL_dx_fails_the_check(monkeypatch, op, term):
    """Mutation test: one of the three terms of dL/dx scaled by 1.01 makes the check fail for
    dL/dx alone (and the command exit 1)."""
    real = norm_example._grad_x_terms

    def mutated(*args):
        terms = list(real(*args))
        terms[term] = terms[term] * 1.01
        return tuple(terms)

    monkeypatch.setattr(norm_example, "_grad_x_terms", mutated)
    ex = retrograd.explain(op, seed=1)
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dx"]
    assert "CHECK FAILED for dL/dx" in str(ex)
    assert main(["explain", op, "--seed", "1"]) == 1


def test_bad_input():
    with pytest.raises(ValueError, match=r"explain group_norm: groups=3 does not divide the 4 "
                                         r"channels of x \(dimension 1 of x, shape 1x4x3\)"):
        retrograd.explain("group_norm", groups=3)
    with pytest.raises(ValueError, match=r"explain group_norm: groups must be >= 1, got 0"):
        retrograd.explain("group_norm", groups=0)
    with pytest.raises(ValueError, match=r"explain batch_norm: x has shape 4, but batch norm "
                                         r"needs \(N, C\) or \(N, C, H, W\): a batch of 4 "
                                         r"samples of one feature is written"):
        retrograd.explain("batch_norm", values={"x": [1, 2, 3, 4]})
    with pytest.raises(ValueError, match=r"explain batch_norm: x \(shape 1x3\) has 1 value per "
                                         r"channel"):
        retrograd.explain("batch_norm", shape=(1, 3))
    with pytest.raises(ValueError, match=r"explain batch_norm: gamma has shape 3, but x \(shape "
                                         r"4x2\) needs one value per channel: shape 2"):
        retrograd.explain("batch_norm", values={"gamma": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"explain layer_norm: dims must be between 1 and the 2 "
                                         r"dimension\(s\) of x \(shape 2x4\), got 3"):
        retrograd.explain("layer_norm", dims=3)
    with pytest.raises(ValueError, match=r"explain layer_norm: beta has shape 3, but x"):
        retrograd.explain("layer_norm", values={"beta": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"explain batch_norm: eps must be a finite number >= 0, "
                                         r"got -1"):
        retrograd.explain("batch_norm", eps=-1.0)
    with pytest.raises(ValueError, match=r"explain layer_norm: values gives dL/dy the shape "
                                         r"1x8, but the output .* has the shape 2x4"):
        retrograd.explain("layer_norm", values={"dy": [list(range(8))]})


def test_command_line(capsys):
    assert main(["explain", "batch_norm", "--values", "x=[[1],[2],[3],[4]]", "--eps",
                 "1e-4"]) == 0
    out = capsys.readouterr().out
    assert "mu = mean(x, A) = [2.5]" in out and "All 4 printed results agree" in out
    assert max(map(len, out.splitlines())) <= 80
    assert main(["explain", "groupnorm", "--groups", "4", "--shape", "2x4x2"]) == 0
    assert "G = 4 groups" in capsys.readouterr().out
    assert main(["explain", "gn", "--groups", "3"]) == 2
    assert "groups=3 does not divide the 4 channels" in capsys.readouterr().err
