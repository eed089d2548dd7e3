"""The compiled GELU kernels (retrograd/_numba/activation.py, exact and tanh) against the
NumPy reference path of retrograd/ops/activation.py and PyTorch, in float32: outputs, first
and second-order gradients, tails, 0, +-inf, NaN and huge values; and that the compiled path
is the one taken for float32 C-contiguous arrays (not for float64 or strided ones).

Tolerances (float32 throughout):
- exact forward: relative 1e-5 for |x| <= 8, 5e-5 beyond (the left tail's relative error
  grows with x^2, x^2 rounded in float32 inside exp: measured 6e-6 at x = -8, 2e-5 at
  x = -12), absolute 3e-45 (1 + |x|) where Phi(x) is a float32 subnormal (x < -13: both paths round
  Phi to a multiple of 1.4e-45 before the product with x);
- gradients, and the tanh forward: relative 1e-5 plus an absolute 2e-7 (1 + x^2) |g|: where
  gelu'(x) or 0.5 (1 + T) cancel (gelu'(x) = 0 near x = -0.75, T near +-1) both paths carry
  the float32 rounding of Phi and of T, a few 1e-8 times the size of the terms that cancel.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast
from tests._numba.conftest import count_calls

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                    "pip install -e '.[test,fast]' installs it")

# the NumPy reference path warns about the specials (1e30, inf) from its worker threads,
# where np.errstate does not reach
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

F32 = np.float32
APPROXIMATE = ["none", "tanh"]
SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 3.4e38, -3.4e38,
                     1e-30, -1e-30, 1e-45, 12.0, -12.0, 8.0, -8.0, 5.5, -5.5], F32)

FAMILY = "activation"   # the kernels fixture (conftest.py) gives retrograd._numba.activation




@pytest.fixture
def spy(kernels, monkeypatch):
    """Counts the calls of the compiled kernels' entry points."""
    return count_calls(kernels, monkeypatch, ("gelu_forward", "gelu_backward"))


def _values(n=200_001, seed=0):
    """x over [-20, 20], the tails, random normals and the special values."""
    rng = np.random.default_rng(seed)
    return np.concatenate([np.linspace(-20, 20, n), rng.standard_normal(5000) * 3,
                           rng.uniform(-13, -8, 2000), rng.uniform(8, 13, 2000),
                           SPECIALS]).astype(F32)


def _gelu_and_grad(x, g, approximate):
    xt = rg.tensor(x, requires_grad=True)
    y = F.gelu(xt, approximate)
    y.backward(rg.tensor(g))
    return y.detach().numpy(), xt.grad.numpy()


def _both_paths(monkeypatch, fn, *args):
    """fn(*args) on the compiled path, then on the NumPy reference path."""
    got = fn(*args)
    with monkeypatch.context() as m, np.errstate(all="ignore"):
        m.setitem(_fast._MODULES, "activation", None)
        expected = fn(*args)
    return got, expected


def _assert_forward_close(got, expected, x, approximate):
    assert got.dtype == expected.dtype == F32 and got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    special = ~np.isfinite(expected)
    np.testing.assert_array_equal(got[special], expected[special])
    if approximate == "none":
        rtol = np.where(np.abs(x) <= 8, 1e-5, 5e-5)
        atol = 3e-45 * (1 + np.abs(x).astype(np.float64))   # Phi(x) subnormal: x < -13
    else:
        rtol, atol = 1e-5, 1e-7 * (1 + np.abs(x).astype(np.float64))
    ok = np.isfinite(expected)
    err = np.abs(got[ok].astype(np.float64) - expected[ok])
    bound = (rtol if np.isscalar(rtol) else rtol[ok]) * np.abs(expected[ok].astype(np.float64))
    bound = bound + (atol if np.isscalar(atol) else atol[ok])
    assert np.all(err <= bound), (x[ok][np.argmax(err - bound)], np.max(err - bound))


def _assert_grad_close(got, expected, x, g):
    assert got.dtype == expected.dtype == F32 and got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    ok = np.isfinite(expected)
    np.testing.assert_array_equal(got[~ok], expected[~ok])
    x64 = np.minimum(np.abs(x[ok].astype(np.float64)), 100.0)
    err = np.abs(got[ok].astype(np.float64) - expected[ok])
    bound = 1e-5 * np.abs(expected[ok]) + 2e-7 * (1 + x64 * x64) * np.abs(g[ok])
    assert np.all(err <= bound), (x[ok][np.argmax(err - bound)], np.max(err - bound))


@pytest.mark.parametrize("approximate", APPROXIMATE)
def test_compiled_gelu_matches_the_reference_path(approximate, spy, monkeypatch):
    x = _values()
    g = np.random.default_rng(1).uniform(0.5, 2.0, x.size).astype(F32)
    (y, dx), (y_ref, dx_ref) = _both_paths(monkeypatch, _gelu_and_grad, x, g, approximate)
    assert spy == {"gelu_forward": 1, "gelu_backward": 1}
    _assert_forward_close(y, y_ref, x, approximate)
    _assert_grad_close(dx, dx_ref, x, g)


@pytest.mark.parametrize("approximate", APPROXIMATE)
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (16383,), (16385,), (65535,), (65536,),
                                   (2, 3, 70001), (256, 1024)])
def test_compiled_gelu_on_many_shapes(approximate, shape, spy, monkeypatch):
    """Serial and parallel kernels, chunk edges (16K) and the serial/parallel switch (64K)."""
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 4).astype(F32)
    g = rng.standard_normal(shape).astype(F32)
    (y, dx), (y_ref, dx_ref) = _both_paths(monkeypatch, _gelu_and_grad, x, g, approximate)
    assert spy["gelu_forward"] == 1 and spy["gelu_backward"] == 1
    _assert_forward_close(y.ravel(), y_ref.ravel(), x.ravel(), approximate)
    _assert_grad_close(dx.ravel(), dx_ref.ravel(), x.ravel(), g.ravel())


@pytest.mark.parametrize("approximate", APPROXIMATE)
def test_compiled_gelu_matches_torch(approximate, kernels):
    """|x| <= 1e4 (and NaN): beyond, PyTorch's float32 formulas overflow (x * (1 + erf)
    near finfo.max, x^3 in the tanh form: its gelu'(1e30) is nan), ours do not."""
    x = _values(n=40_001, seed=2)
    x = x[~(np.abs(x) > 1e4)]
    g = np.random.default_rng(3).standard_normal(x.size).astype(F32)
    y, dx = _gelu_and_grad(x, g, approximate)
    tx = torch.tensor(x, requires_grad=True)
    ty = TF.gelu(tx, approximate=approximate)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    x64 = np.nan_to_num(x.astype(np.float64))
    bound = 1e-5 * np.abs(dx) + 2e-7 * (1 + x64 * x64) * np.abs(g) + 1e-6
    err = np.abs(dx.astype(np.float64) - tx.grad.numpy())
    assert np.array_equal(np.isnan(dx), np.isnan(tx.grad.numpy()))
    assert np.all(err[~np.isnan(err)] <= bound[~np.isnan(err)])


@pytest.mark.parametrize("approximate", APPROXIMATE)
def test_double_backward_through_the_compiled_gelu_grad(approximate, spy, monkeypatch):
    x = (np.random.default_rng(4).standard_normal((64, 33)) * 3).astype(F32)

    def second_order(x):
        rx = rg.tensor(x, requires_grad=True)
        (gr,) = rg.autograd.grad(F.gelu(rx, approximate).sum(), rx, create_graph=True)
        (gr * gr).sum().backward()
        return gr.detach().numpy(), rx.grad.numpy()

    (g1, h1), (g1_ref, h1_ref) = _both_paths(monkeypatch, second_order, x)
    assert spy["gelu_backward"] == 1    # GeluGrad's forward (d/dg is not needed: g = 1s)
    ones = np.ones_like(x)
    _assert_grad_close(g1, g1_ref, x, ones)
    np.testing.assert_allclose(h1, h1_ref, rtol=1e-5, atol=2e-6)
    tx = torch.tensor(x, requires_grad=True)
    (gt,) = torch.autograd.grad(TF.gelu(tx, approximate=approximate).sum(), tx,
                                create_graph=True)
    (gt * gt).sum().backward()
    # gelu''(x) cancels in float32 ((1 - T^2), phi(x) (2 - x^2)): both libraries, the NumPy
    # path included, differ from each other by up to ~2e-5 there
    np.testing.assert_allclose(h1, tx.grad.numpy(), rtol=1e-4, atol=5e-5)


@pytest.mark.parametrize("approximate", APPROXIMATE)
def test_other_dtypes_and_layouts_take_the_numpy_path(approximate, spy):
    x = np.random.default_rng(5).standard_normal((40, 30))
    y, dx = _gelu_and_grad(x, np.ones_like(x), approximate)                 # float64
    assert y.dtype == dx.dtype == np.float64
    assert spy == {"gelu_forward": 0, "gelu_backward": 0}
    xt = rg.tensor(x.astype(F32), requires_grad=True)
    F.gelu(xt.T, approximate).sum().backward()                              # a strided view
    assert spy == {"gelu_forward": 0, "gelu_backward": 0}
    F.gelu(xt, approximate).sum().backward()      # dL/dy a broadcast view: copied, compiled
    assert spy == {"gelu_forward": 1, "gelu_backward": 1}


def test_tanh32_is_within_two_ulps_of_tanh(kernels):
    """fastmath.tanh32 (the tanh-GELU's tanh) against float64 tanh, both sides of the switch
    at |u| = 0.625, the tiny and the saturated range, -0, +-inf and NaN."""
    import numba

    from retrograd._numba.fastmath import tanh32

    @numba.njit
    def run(u, out):
        for i in range(u.size):
            out[i] = tanh32(u[i])

    u = np.concatenate([np.linspace(-12, 12, 400_001), np.logspace(-40, 1.5, 20_000),
                        -np.logspace(-40, 1.5, 20_000), np.linspace(0.62, 0.63, 10_001),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30]]).astype(F32)
    out = np.empty_like(u)
    run(u, out)
    expected = np.tanh(u.astype(np.float64))
    ok = np.isfinite(expected)
    ulp = np.spacing(np.abs(expected[ok]).astype(F32)).astype(np.float64)
    assert np.max(np.abs(out[ok] - expected[ok]) / ulp) <= 2.0
    assert np.isnan(out[-3]) and list(out[-5:-3]) == [1.0, -1.0]
    assert np.signbit(out[-6]) and not np.signbit(out[-7])
    assert list(out[-2:]) == [1.0, -1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_relu_backward_equals_the_product_bit_for_bit(dtype, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((7, 300)).astype(dtype)
    x[0, :4] = [0.0, -0.0, np.nan, -np.inf]
    g = rng.standard_normal(x.shape).astype(dtype)
    g[1, :3] = [np.inf, -np.inf, np.nan]
    g[2, :3] = [np.inf, np.nan, -np.inf]
    x[2, :3] = -1.0                       # inf and NaN gradients of a blocked input: NaN

    def grads(compiled):
        if not compiled:
            monkeypatch.setitem(_fast._MODULES, "activation", None)
        t = rg.tensor(x, requires_grad=True)
        t.relu().backward(rg.tensor(g))
        monkeypatch.undo()
        return t.grad.numpy()

    with np.errstate(invalid="ignore"):
        expected = grads(False)
    got = grads(True)
    assert got.dtype == dtype and np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_relu_forward_equals_np_maximum_bit_for_bit(dtype, kernels, monkeypatch):
    x = np.random.default_rng(4).standard_normal((5, 301)).astype(dtype)
    x[0, :6] = [0.0, -0.0, np.nan, -np.inf, np.inf, -np.nan]
    calls = count_calls(kernels, monkeypatch, ["relu_forward"])
    got = rg.tensor(x).relu().numpy()
    assert calls == {"relu_forward": 1}
    expected = np.maximum(x, 0)
    assert got.dtype == dtype and np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(expected))     # -0 gives +0
    strided = rg.tensor(x)[:, ::2].relu().numpy()                    # a view: NumPy's path
    assert calls == {"relu_forward": 1}
    assert np.array_equal(strided, np.maximum(x[:, ::2], 0), equal_nan=True)
