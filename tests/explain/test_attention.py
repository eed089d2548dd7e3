"""retrograd/explain/attention.py: scaled dot-product attention (the causal mask, the scale,
batch dims, the one-row softmax Jacobian beside the row-sum formula) and multi-head
self-attention (1, 2 and 4 heads, biases, the three paths into dL/dx); seed 002's attention
example with the gradients its sketch cannot compute."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.attention as attention_example
from retrograd.cli import main
from retrograd.explain._render import format_array
from tests.explain._check import assert_explains, grad, printed_numbers

# seed 002, "scaled dot-product attention": Q = K = V = I (2x2), dattn = dL/dO
SEED_002 = {"Q": [[1, 0], [0, 1]], "K": [[1, 0], [0, 1]], "V": [[1, 0], [0, 1]],
            "dattn": [[0.1, 0.2], [-0.1, 0.3]]}


def _step(ex, name):
    """The value of the (last) shown step called ``name``."""
    found = [s.value for s in ex.steps if s.name == name]
    assert found, f"{ex.op}: no step {name!r}"
    return found[-1]


def _words(text):
    """The text with its line wrapping undone."""
    return " ".join(text.split())


def test_seed_002_attention_example_with_its_missing_gradients():
    # seed 002, "scaled dot-product attention": its backward sketch reads Q, which its cache
    # (scores, weights, K, V) does not hold, so it cannot run. With Q, K and V as three inputs
    # holding the same I, softmax([1/sqrt 2, 0]) = [0.66976, 0.33024] and:
    ex = assert_explains("attention", values=SEED_002)
    np.testing.assert_allclose(ex.printed_outputs()[0].value,
                               [[0.6697615493, 0.3302384507], [0.3302384507, 0.6697615493]],
                               rtol=1e-9)
    np.testing.assert_allclose(grad(ex, "Q"), [[-0.0156398597, 0.0156398597],
                                               [-0.0625594386, 0.0625594386]], rtol=1e-8)
    np.testing.assert_allclose(grad(ex, "K"), [[-0.0156398597, -0.0625594386],
                                               [0.0156398597, 0.0625594386]], rtol=1e-8)
    np.testing.assert_allclose(grad(ex, "V"), [[0.0339523099, 0.2330238451],
                                               [-0.0339523099, 0.2669761549]], rtol=1e-8)
    np.testing.assert_allclose(_step(ex, "r"), [[0.1330238451], [0.1679046197]], rtol=1e-8)
    assert "dL/dO = the gradient from above (given)" in str(ex)


@pytest.mark.parametrize("options", [
    {}, {"causal": True}, {"scale": 0.5}, {"scale": 0.0}, {"causal": True, "scale": 2.0},
    {"seed": 3, "shape": (2, 2)}, {"seed": 4, "shape": (4, 3), "causal": True}])
def test_attention_options(options):
    assert_explains("attention", **options)


@pytest.mark.parametrize("shape", [(2, 3, 2), (2, 2, 2, 2)])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_batch_dims(shape, causal):
    ex = assert_explains("attention", shape=shape, causal=causal)
    assert grad(ex, "Q").shape == shape
    assert ("[1, :, :]" if len(shape) == 3 else "[1, 1, :, :]") in str(ex)


def test_attention_more_keys_than_queries_and_broadcast_keys():
    # Tq = 2, Tk = 3, dv = 1: the causal mask is top-left aligned (query 0 sees key 0)
    ex = assert_explains("attention", causal=True, values={
        "Q": [[0.5, -1], [1, 0.25]], "K": [[1, 0], [0, 1], [-1, 1]], "V": [[1], [2], [3]]})
    assert np.isinf(_step(ex, "M")).tolist() == [[False, True, True], [False, False, True]]
    # K and V without the batch dim of Q: broadcast, their gradients summed over it
    ex = assert_explains("attention", values={
        "Q": [[[0.5, -1], [1, 0.25]], [[0, 1], [-0.5, 0.5]]], "K": [[1, 0], [0, 1]],
        "V": [[1, -1], [2, 0]]})
    assert grad(ex, "K").shape == (2, 2) and "summed over the batch dims" in str(ex)


def test_causal_masked_scores_get_zero_weight_and_zero_gradient():
    ex = assert_explains("attention", causal=True, seed=2)
    masked = np.isinf(_step(ex, "M"))
    assert masked.sum() == 3  # 3 queries, 3 keys: the strict upper triangle
    assert np.all(_step(ex, "A")[masked] == 0) and np.all(_step(ex, "dL/dS")[masked] == 0)
    assert np.all(np.isneginf(_step(ex, "S")[masked]))
    assert "no gradient reaches a masked score" in _words(str(ex))


def test_the_printed_one_row_jacobian_is_diag_a_minus_a_a_transposed():
    ex = assert_explains("attention", seed=5)
    a, jacobian = _step(ex, "a"), _step(ex, "J")
    np.testing.assert_array_equal(a, _step(ex, "A")[-1])  # the last query's row
    np.testing.assert_array_equal(jacobian, np.diag(a) - np.outer(a, a))
    printed = printed_numbers(format_array(jacobian))
    assert all(line in str(ex) for line in format_array(jacobian))
    np.testing.assert_allclose(printed, (np.diag(a) - np.outer(a, a)).ravel(), rtol=1e-4,
                               atol=1e-5)
    # the full Jacobian and the row-sum formula give the same row of dL/dS
    np.testing.assert_allclose(_step(ex, "J dL/da"), _step(ex, "dL/dS")[-1], atol=1e-15)
    np.testing.assert_array_equal(_step(ex, "dL/da"), _step(ex, "dL/dA")[-1])


def test_a_perturbed_rowsum_term_fails_dq_and_dk(monkeypatch):
    real = attention_example._rowsum
    monkeypatch.setattr(attention_example, "_rowsum", lambda g, a: real(g, a) + 0.1)
    ex = retrograd.explain("attention")
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dQ", "dL/dK"]
    assert "CHECK FAILED for dL/dQ, dL/dK" in str(ex)
    ex = retrograd.explain("mha")
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dWq", "dL/dWk", "dL/dx"]


@pytest.mark.parametrize("options", [
    {}, {"heads": 1}, {"heads": 4}, {"causal": True}, {"bias": True},
    {"heads": 4, "causal": True, "bias": True}, {"shape": (3, 4), "causal": True, "seed": 2},
    {"shape": (2, 6), "heads": 3}])
def test_multi_head_attention_options(options):
    assert_explains("multi_head_attention", **options)


def test_multi_head_attention_shows_heads_and_the_three_paths_into_x():
    ex = assert_explains("mha", causal=True)
    text = str(ex)
    for name in ("Q_0", "K_1", "S_0", "A_1", "O_1", "C", "dL/dC", "dL/dO_0", "dL/dA_1",
                 "dL/dS_0", "dL/dQ_1", "dL/dK_0", "dL/dV_1", "dL/dQ", "dL/dK", "dL/dV"):
        _step(ex, name)
    q, c = _step(ex, "Q"), _step(ex, "C")
    np.testing.assert_array_equal(_step(ex, "Q_1"), q[:, 2:4])
    np.testing.assert_array_equal(c[:, 0:2], _step(ex, "O_0"))
    paths = [_step(ex, f"dL/dx via {which}") for which in "QKV"]
    np.testing.assert_allclose(grad(ex, "x"), sum(paths), atol=1e-15)
    assert [s.name for s in ex.printed_gradients()] == [
        "dL/dWo", "dL/dWq", "dL/dWk", "dL/dWv", "dL/dx"]
    assert "2 heads of d = E / heads = 4/2 = 2" in _words(text)


def test_multi_head_attention_with_four_heads_of_one_feature():
    ex = assert_explains("mha", heads=4)
    assert _step(ex, "Q_3").shape == (2, 1) and _step(ex, "S_3").shape == (2, 2)


def test_bad_input_names_the_numbers_and_dimensions():
    with pytest.raises(ValueError, match=r"explain multi_head_attention: E = 4 \(the last "
                                         r"dimension of x, shape 2x4\) is not divisible by "
                                         r"heads = 3"):
        retrograd.explain("mha", heads=3)
    with pytest.raises(ValueError, match=r"explain multi_head_attention: heads must be >= 1, "
                                         r"got 0"):
        retrograd.explain("mha", heads=0)
    with pytest.raises(ValueError, match=r"explain multi_head_attention: Wk must have the "
                                         r"shape 4x4 \(E = 4, .*got 4x3"):
        retrograd.explain("mha", values={"Wk": np.ones((4, 3)).tolist()})
    with pytest.raises(ValueError, match=r"explain attention: Q's head dim d \(last dimension "
                                         r"of Q, shape 2x3\) is 3 but K's \(last dimension of "
                                         r"K, shape 2x2\) is 2"):
        retrograd.explain("attention", values={"Q": np.ones((2, 3)).tolist(),
                                               "K": np.ones((2, 2)).tolist()})
    with pytest.raises(ValueError, match=r"explain attention: K has 3 keys \(dimension -2 of "
                                         r"K, shape 3x2\) but V has 2"):
        retrograd.explain("attention", values={"K": np.ones((3, 2)).tolist(),
                                               "V": np.ones((2, 2)).tolist()})
    with pytest.raises(ValueError, match=r"explain attention: Q must have at least 2 "
                                         r"dimensions \(\.\.\., Tq, d\), got shape 3"):
        retrograd.explain("attention", values={"Q": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"explain attention: the batch dims of Q \(2x3x2\), "
                                         r"K \(3x3x2\)"):
        retrograd.explain("attention", shape=(2, 3, 2), values={"K": np.ones((3, 3, 2)).tolist(),
                                                               "V": np.ones((3, 3, 2)).tolist()})
    with pytest.raises(ValueError, match=r"explain attention: scale must be a number or None, "
                                         r"got 'big'"):
        retrograd.explain("attention", scale="big")


def test_command_line(capsys):
    assert main(["explain", "sdpa", "--causal", "true", "--scale", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "scale = 0.5 (given)" in out and "M = causal mask" in out
    assert main(["explain", "attention", "--scale", "none", "--shape", "2x2"]) == 0
    assert "scale = 1/sqrt(d) = 1/sqrt(2) = 0.70711" in capsys.readouterr().out
    assert main(["explain", "mha", "--heads", "4", "--bias", "true"]) == 0
    out = capsys.readouterr().out
    assert "dL/dbq" in out and max(map(len, out.splitlines())) <= 80
