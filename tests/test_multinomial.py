"""multinomial (retrograd/_sampling.py): shapes and dtype, frequencies against the
probabilities over many seeded draws (with replacement; without replacement the first and the
second draw), no repeats without replacement, zero weights, unnormalized weights,
reproducibility by seed and by generator, and PyTorch's errors."""

import numpy as np
import pytest

import retrograd as rg

P = np.array([0.1, 0.2, 0.3, 0.4, 0.0])


def _frequencies(draws, categories):
    return np.bincount(draws.ravel(), minlength=categories) / draws.size


def test_shapes_and_dtype():
    rg.manual_seed(0)
    one = rg.multinomial(rg.tensor(P), 3)
    two = rg.multinomial(rg.tensor(np.stack([P, P[::-1]])), 4, replacement=True)
    assert one.shape == (3,) and two.shape == (2, 4)
    assert one.dtype == two.dtype == rg.int64 and not two.requires_grad
    assert rg.tensor(P).multinomial(2).shape == (2,)
    assert rg.multinomial(rg.zeros(0, 3), 2).shape == (0, 2)


def test_with_replacement_frequencies_match_the_probabilities():
    rg.manual_seed(1)
    n = 200_000
    draws = rg.multinomial(rg.tensor(P * 7.0), n, replacement=True).numpy()   # unnormalized
    freq = _frequencies(draws, len(P))
    # 5 standard errors (sqrt(p (1 - p) / n) <= 0.0011): a failure is not chance
    np.testing.assert_allclose(freq, P, atol=5 * 0.0011)
    assert freq[4] == 0                       # a zero weight is never drawn


def test_each_row_draws_from_its_own_weights():
    rg.manual_seed(2)
    rows = np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 2.0]])
    draws = rg.multinomial(rg.tensor(rows), 5000, replacement=True).numpy()
    assert set(draws[0]) == {1} and set(draws[1]) <= {0, 2} and set(draws[2]) == {2}
    assert abs((draws[1] == 0).mean() - 0.5) < 0.03


def test_without_replacement_never_repeats_and_follows_sequential_draws():
    rg.manual_seed(3)
    rows = 40_000
    weights = np.tile(P[:4], (rows, 1))
    draws = rg.multinomial(rg.tensor(weights), 4).numpy()
    assert all(len(set(row)) == 4 for row in draws[:2000])
    assert (np.sort(draws, axis=1) == np.arange(4)).all()       # every row a permutation
    p = P[:4]
    np.testing.assert_allclose(_frequencies(draws[:, 0], 4), p, atol=5 * 0.0025)
    # the second draw: P(j) = sum over i != j of p_i * p_j / (1 - p_i)
    second = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(4) if i != j)
                       for j in range(4)])
    np.testing.assert_allclose(_frequencies(draws[:, 1], 4), second, atol=5 * 0.0025)


def test_without_replacement_zero_weights_come_last_in_index_order():
    rg.manual_seed(4)
    draws = rg.multinomial(rg.tensor([0.0, 1.0, 0.0, 0.0, 2.0]), 5).tolist()
    assert sorted(draws[:2]) == [1, 4] and draws[2:] == [0, 2, 3]


@pytest.mark.parametrize("dtype", [rg.float16, rg.float32, rg.float64, rg.bfloat16])
def test_floating_dtypes_are_accepted(dtype):
    rg.manual_seed(5)
    draws = rg.multinomial(rg.tensor([1.0, 0.0, 3.0], dtype=dtype), 50, True)
    assert set(draws.tolist()) <= {0, 2}


def test_draws_are_reproducible_by_seed_and_by_generator():
    rg.manual_seed(7)
    a = rg.multinomial(rg.tensor(P), 3).tolist()
    b = rg.multinomial(rg.tensor(P), 1000, True).tolist()
    rg.manual_seed(7)
    assert rg.multinomial(rg.tensor(P), 3).tolist() == a
    assert rg.multinomial(rg.tensor(P), 1000, True).tolist() == b
    g = rg.Generator().manual_seed(11)
    c = rg.multinomial(rg.tensor(P), 1000, True, generator=g).tolist()
    rg.manual_seed(0)                         # the global stream does not matter
    assert rg.multinomial(rg.tensor(P), 1000, True,
                          generator=rg.Generator().manual_seed(11)).tolist() == c
    assert c != b


@pytest.mark.parametrize("weights, num, replacement, error, message", [
    ([0.5, -0.1], 1, False, RuntimeError, r"multinomial: probability tensor contains either inf, "
                                           r"nan or element < 0 \(found -0.1"),
    ([0.5, float("nan")], 1, False, RuntimeError, "contains either inf, nan or element < 0"),
    ([0.5, float("inf")], 1, True, RuntimeError, "contains either inf, nan or element < 0"),
    ([0.0, 0.0], 1, True, RuntimeError, "invalid multinomial distribution \\(sum of "
                                        "probabilities <= 0\\)"),
    ([[1.0, 0.0], [0.0, 0.0]], 1, True, RuntimeError, "<= 0\\) in row 1 of input of shape"),
    ([0.5, 0.5], 3, False, RuntimeError, "multinomial: cannot sample num_samples = 3 > 2 "
                                         "categories .* without replacement"),
    ([0.5, 0.5], 0, True, RuntimeError, "cannot sample num_samples <= 0 samples, got 0"),
    ([0.5, 0.5], 1.0, True, TypeError, "multinomial: num_samples must be an int"),
    ([[[0.5]]], 1, True, RuntimeError, r"prob_dist must be 1 or 2 dim, got shape \(1, 1, 1\)"),
    ([1, 2], 1, True, RuntimeError, "only supports floating-point dtypes for input, got "
                                    "retrograd.int64"),
])
def test_errors_as_torch(weights, num, replacement, error, message):
    with pytest.raises(error, match=message):
        rg.multinomial(rg.tensor(weights), num, replacement)


def test_a_generator_of_another_kind_is_refused():
    with pytest.raises(TypeError, match="multinomial: generator must be a retrograd.Generator"):
        rg.multinomial(rg.tensor(P), 1, generator=np.random.default_rng(0))
