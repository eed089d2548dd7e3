"""nn.init against torch.nn.init: the gain table exactly, and every random initializer by its
statistics on large tensors (tolerances are 5 standard errors of the sample size)."""

import math

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.nn import init

N_ROWS, N_COLS = 500, 400            # 200,000 samples per statistical check
SIGMAS = 5.0                         # tolerance in standard errors


def _fans(shape):
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    return fan_in, fan_out


def check_uniform(values, bound):
    n = values.size
    assert values.min() >= -bound and values.max() <= bound
    assert values.max() > bound * (1 - 100 / n) and values.min() < -bound * (1 - 100 / n)
    assert abs(values.mean()) < SIGMAS * bound / math.sqrt(3 * n)
    var_se = math.sqrt(4 / 45) * bound ** 2 / math.sqrt(n)
    assert abs(values.var() - bound ** 2 / 3) < SIGMAS * var_se


def check_normal(values, mean, std):
    n = values.size
    assert abs(values.mean() - mean) < SIGMAS * std / math.sqrt(n)
    assert abs(values.std() / std - 1) < SIGMAS * math.sqrt(1 / (2 * n))
    # a normal has 68.27% of its mass within one std (a uniform of that std: 57.7%)
    inside = np.mean(np.abs(values - mean) < std)
    assert abs(inside - 0.6827) < SIGMAS * math.sqrt(0.6827 * 0.3173 / n)


# ---------------------------------------------------------------- gain
@pytest.mark.parametrize("nonlinearity, param", [
    ("linear", None), ("conv1d", None), ("conv2d", None), ("conv3d", None),
    ("conv_transpose1d", None), ("conv_transpose2d", None), ("conv_transpose3d", None),
    ("sigmoid", None), ("tanh", None), ("relu", None), ("selu", None),
    ("leaky_relu", None), ("leaky_relu", 0), ("leaky_relu", 0.2), ("leaky_relu", 3),
    ("leaky_relu", math.sqrt(5)),
])
def test_calculate_gain_matches_torch(nonlinearity, param):
    expected = torch.nn.init.calculate_gain(nonlinearity, param)
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize("nonlinearity, param, match", [
    ("softplus", None, "unsupported nonlinearity 'softplus'"),
    ("leaky_relu", True, "negative_slope True is not a number"),
    ("leaky_relu", "0.1", "negative_slope '0.1' is not a number"),
])
def test_calculate_gain_errors_like_torch(nonlinearity, param, match):
    with pytest.raises(ValueError, match=match):
        init.calculate_gain(nonlinearity, param)
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(nonlinearity, param)


# ---------------------------------------------------------------- fans
@pytest.mark.parametrize("shape", [(5, 3), (8, 3, 3, 3), (4, 2, 5), (1, 1)])
def test_fan_in_and_fan_out_match_torch(shape):
    assert init._calculate_fan_in_and_fan_out(rg.empty(*shape)) == _fans(shape)


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match=r"at least 2 dims, got shape \(5,\)"):
        init.xavier_uniform_(rg.empty(5))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_normal_(rg.empty(3, 3), mode="fan_avg")


# ---------------------------------------------------------------- fan-based initializers
SHAPES = [(N_ROWS, N_COLS), (200, 25, 4, 10)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("leaky_relu", 0.0), ("leaky_relu", math.sqrt(5)),
                                             ("relu", 0.0), ("tanh", 0.0)])
def test_kaiming_uniform_bound(shape, mode, nonlinearity, a):
    fan = _fans(shape)[0 if mode == "fan_in" else 1]
    bound = math.sqrt(3.0) * torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    w = init.kaiming_uniform_(rg.empty(*shape, dtype=rg.float64), a=a, mode=mode,
                              nonlinearity=nonlinearity)
    check_uniform(w.numpy(), bound)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("leaky_relu", 0.1), ("relu", 0.0)])
def test_kaiming_normal_std(shape, mode, nonlinearity, a):
    fan = _fans(shape)[0 if mode == "fan_in" else 1]
    std = torch.nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    w = init.kaiming_normal_(rg.empty(*shape, dtype=rg.float64), a=a, mode=mode,
                             nonlinearity=nonlinearity)
    check_normal(w.numpy(), 0.0, std)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, 5.0 / 3])
def test_xavier_uniform_bound(shape, gain):
    fan_in, fan_out = _fans(shape)
    w = init.xavier_uniform_(rg.empty(*shape, dtype=rg.float64), gain=gain)
    check_uniform(w.numpy(), gain * math.sqrt(6.0 / (fan_in + fan_out)))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0)])
def test_xavier_normal_std(shape, gain):
    fan_in, fan_out = _fans(shape)
    w = init.xavier_normal_(rg.empty(*shape, dtype=rg.float64), gain=gain)
    check_normal(w.numpy(), 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def test_the_statistical_checks_can_fail():
    # a uniform with the right variance is not a normal, and a 1% wider bound is caught
    w = init.uniform_(rg.empty(N_ROWS, N_COLS, dtype=rg.float64), -math.sqrt(3), math.sqrt(3))
    with pytest.raises(AssertionError):
        check_normal(w.numpy(), 0.0, 1.0)
    with pytest.raises(AssertionError):
        check_uniform(w.numpy() * 1.01, math.sqrt(3))
    with pytest.raises(AssertionError):
        check_uniform(w.numpy(), math.sqrt(3) * 1.01)


@pytest.mark.parametrize("fn", [init.kaiming_uniform_, init.kaiming_normal_])
def test_kaiming_on_a_zero_element_tensor_is_a_no_op_like_torch(fn):
    w = rg.empty(0, 3)
    with pytest.warns(UserWarning, match="zero-element"):
        assert fn(w) is w


# ---------------------------------------------------------------- plain initializers
def test_uniform_and_normal():
    check_uniform(init.uniform_(rg.empty(N_ROWS, N_COLS, dtype=rg.float64), -2.0, 2.0).numpy(),
                  2.0)
    check_normal(init.normal_(rg.empty(N_ROWS, N_COLS, dtype=rg.float64), 3.0, 0.5).numpy(),
                 3.0, 0.5)
    w = init.uniform_(rg.empty(N_ROWS, N_COLS, dtype=rg.float64), 1.0, 3.0).numpy()
    check_uniform(w - 2.0, 1.0)


@pytest.mark.parametrize("fn, args, expected", [
    (init.constant_, (0.25,), np.full((3, 4), 0.25)),
    (init.ones_, (), np.ones((3, 4))),
    (init.zeros_, (), np.zeros((3, 4))),
    (init.eye_, (), np.eye(3, 4)),
])
def test_deterministic_initializers(fn, args, expected):
    w = rg.nn.Parameter(rg.empty(3, 4))
    assert fn(w, *args) is w
    np.testing.assert_array_equal(w.detach().numpy(), expected)
    assert w.dtype == rg.float32


def test_eye_needs_a_matrix():
    with pytest.raises(ValueError, match=r"eye_: expects a 2-D tensor, got shape \(2, 2, 2\)"):
        init.eye_(rg.empty(2, 2, 2))


# ---------------------------------------------------------------- trunc_normal_
def _truncated_moments(mean, std, a, b):
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    shift = (pdf(alpha) - pdf(beta)) / z
    var = 1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - shift ** 2
    return mean + std * shift, std * math.sqrt(var)


@pytest.mark.parametrize("mean, std, a, b", [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04),
                                             (1.0, 2.0, 0.0, 5.0), (0.0, 1.0, 2.5, 3.0)])
def test_trunc_normal_stays_in_range_with_the_right_moments(mean, std, a, b):
    w = init.trunc_normal_(rg.empty(N_ROWS, N_COLS, dtype=rg.float64), mean, std, a, b).numpy()
    assert w.min() >= a and w.max() <= b
    expected_mean, expected_std = _truncated_moments(mean, std, a, b)
    n = w.size
    assert abs(w.mean() - expected_mean) < SIGMAS * expected_std / math.sqrt(n)
    # the standard error of a sample std is sqrt((kurtosis - 1) / (4 n)) relative; a truncated
    # normal has kurtosis <= 3, so the normal's sqrt(1 / (2 n)) bounds it
    assert abs(w.std() / expected_std - 1) < SIGMAS * math.sqrt(1 / (2 * n))


def test_trunc_normal_matches_torch_moments():
    ours = init.trunc_normal_(rg.empty(N_ROWS, N_COLS, dtype=rg.float64), 0.5, 1.0, -1.0, 1.5)
    torch.manual_seed(0)
    theirs = torch.nn.init.trunc_normal_(torch.empty(N_ROWS, N_COLS, dtype=torch.float64),
                                         0.5, 1.0, -1.0, 1.5)
    n, std = N_ROWS * N_COLS, theirs.std().item()
    # two independent samples: the standard error of a difference is sqrt(2) times one's
    assert abs(ours.numpy().mean() - theirs.mean().item()) < SIGMAS * math.sqrt(2 / n) * std
    assert abs(ours.numpy().std() / std - 1) < SIGMAS * math.sqrt(2 / (2 * n))


def test_trunc_normal_errors():
    with pytest.raises(ValueError, match="expected a < b"):
        init.trunc_normal_(rg.empty(3), a=1.0, b=-1.0)
    with pytest.raises(ValueError, match="rejection sampling cannot reach it"):
        init.trunc_normal_(rg.empty(3), a=20.0, b=21.0)


# ---------------------------------------------------------------- orthogonal_
@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (4, 3, 3), (1, 5)])
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal(shape, gain):
    w = init.orthogonal_(rg.empty(*shape, dtype=rg.float64), gain=gain).numpy()
    flat = w.reshape(shape[0], -1)
    rows, cols = flat.shape
    gram = flat @ flat.T if rows <= cols else flat.T @ flat
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_needs_two_dims():
    with pytest.raises(ValueError, match=r"orthogonal_: expects at least 2 dims, got shape"):
        init.orthogonal_(rg.empty(4))


def test_orthogonal_of_an_empty_tensor_is_a_no_op():
    w = rg.empty(0, 4)
    assert init.orthogonal_(w) is w


# ---------------------------------------------------------------- common behaviour
RANDOM_INITS = [
    lambda w: init.uniform_(w, -1, 1), lambda w: init.normal_(w, 0, 1),
    lambda w: init.kaiming_uniform_(w), lambda w: init.kaiming_normal_(w),
    lambda w: init.xavier_uniform_(w), lambda w: init.xavier_normal_(w),
    lambda w: init.trunc_normal_(w), lambda w: init.orthogonal_(w),
]


@pytest.mark.parametrize("fn", RANDOM_INITS)
def test_random_inits_are_reproducible_under_manual_seed(fn):
    rg.manual_seed(7)
    first = fn(rg.empty(5, 4)).numpy().copy()
    second = fn(rg.empty(5, 4)).numpy().copy()
    rg.manual_seed(7)
    again = fn(rg.empty(5, 4)).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)


@pytest.mark.parametrize("fn", RANDOM_INITS + [init.zeros_, lambda w: init.constant_(w, 2.0)])
def test_init_records_no_graph_and_bumps_the_version(fn):
    w = rg.nn.Parameter(rg.empty(5, 4))
    memory_before, version_before = w.detach().numpy(), w._version[0]
    assert fn(w) is w
    assert w.is_leaf and w.grad_fn is None and w.requires_grad and w.grad is None
    assert w._version[0] > version_before
    assert np.shares_memory(w.detach().numpy(), memory_before)  # written in place


def test_init_of_a_saved_tensor_is_caught_by_backward():
    w = rg.nn.Parameter(rg.ones(3, 3))
    y = (w * w).sum()
    init.normal_(w)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


@pytest.mark.parametrize("dtype", [rg.float16, rg.float32, rg.float64, rg.bfloat16])
@pytest.mark.parametrize("fn", RANDOM_INITS)
def test_init_keeps_the_dtype(dtype, fn):
    w = fn(rg.empty(6, 5, dtype=dtype))
    assert w.dtype == dtype
    assert np.all(np.isfinite(w.numpy().astype(np.float64)))


@pytest.mark.parametrize("name, args", [
    ("uniform_", (-0.5, 0.5)), ("normal_", (0.0, 2.0)), ("trunc_normal_", (0.0, 1.0, -1.0, 1.0)),
    ("xavier_uniform_", ()), ("xavier_normal_", ()), ("kaiming_uniform_", ()),
    ("kaiming_normal_", ()), ("orthogonal_", ()),
])
def test_initializers_take_pytorchs_generator_and_draw_from_it(name, args):
    import inspect as _inspect

    assert "generator" in _inspect.signature(getattr(torch.nn.init, name)).parameters
    init = getattr(rg.nn.init, name)

    def draw(seed):
        return init(rg.empty(6, 5), *args, generator=rg.Generator().manual_seed(seed)).numpy()

    rg.manual_seed(0)
    first = draw(3)
    rg.manual_seed(1)                                  # the global stream plays no part
    np.testing.assert_array_equal(draw(3), first)
    assert not np.array_equal(draw(4), first)
    before = rg.random.get_rng_state()
    draw(5)
    assert rg.random.get_rng_state() == before          # nor is it advanced
