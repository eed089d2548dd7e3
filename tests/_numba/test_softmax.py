"""The compiled softmax, log-softmax and cross-entropy kernels (retrograd/_numba/softmax.py)
against the NumPy reference path of retrograd/ops/softmax.py and retrograd/ops/loss.py and
against PyTorch, in float32: outputs and gradients on many shapes, rows of all -inf (zeros /
-inf with a zero gradient, loss inf), rows holding +inf, NaN or +-1e30, and every option of
cross_entropy with class indices (class weights, ignore_index, label smoothing, reductions);
and that the compiled path is the one taken (float32, C-contiguous, last axis) or not.

Tolerances: relative 1e-5 with an absolute 1e-6 times the largest |value| compared (both
paths round exp, the row sums and the log to float32, in different orders: ~1e-7 measured).
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

# the NumPy reference path warns about inf - inf and log(0) on the special rows
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:divide by zero encountered:RuntimeWarning")

F32 = np.float32
ENTRY_POINTS = ("softmax_forward", "softmax_backward", "log_softmax_forward",
                "log_softmax_backward", "cross_entropy_forward", "cross_entropy_backward")

FAMILY = "softmax"   # the kernels fixture (conftest.py) gives retrograd._numba.softmax




@pytest.fixture
def spy(kernels, monkeypatch):
    """Counts the calls of the compiled kernels' entry points."""
    return count_calls(kernels, monkeypatch, ENTRY_POINTS)


def _both_paths(monkeypatch, fn, *args, **kwargs):
    """fn(...) on the compiled path, then on the NumPy reference path."""
    got = fn(*args, **kwargs)
    with monkeypatch.context() as m, np.errstate(all="ignore"):
        m.setitem(_fast._MODULES, "softmax", None)
        expected = fn(*args, **kwargs)
    return got, expected


def _assert_close(got, expected, what, rtol=1e-5, atol=1e-6):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype, what
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=what)
    special = np.isinf(expected)
    np.testing.assert_array_equal(got[special], expected[special], err_msg=what)
    ok = np.isfinite(expected)
    scale = max(1.0, float(np.abs(expected[ok]).max(initial=0.0)))
    np.testing.assert_allclose(got[ok], expected[ok], rtol=rtol, atol=atol * scale,
                               err_msg=what)


def _logits(shape, seed, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(F32)


def _with_special_rows(x):
    """Rows of x (last axis, x 2-D with >= 8 rows and >= 4 columns) made special."""
    x = x.copy()
    x[0] = -np.inf                                 # all -inf
    x[1, ::2] = -np.inf                            # some -inf
    x[2, 1] = np.inf                               # +inf
    x[3, 2] = np.nan                               # NaN
    x[4, 0], x[4, 1] = 1e30, -1e30                 # huge
    x[5] = 1e30                                    # all huge, equal
    x[6] = 0.0
    x[7] *= 1e-30                                  # tiny
    return x


def _softmax_and_grad(fn, x, g, dim=-1):
    xt = rg.tensor(x, requires_grad=True)
    y = fn(xt, dim)
    y.backward(rg.tensor(g))
    return y.detach().numpy(), xt.grad.numpy()


FUNCTIONS = [(F.softmax, "softmax"), (F.log_softmax, "log_softmax")]


@pytest.mark.parametrize("fn, name", FUNCTIONS)
@pytest.mark.parametrize("shape", [(1,), (5,), (1, 1), (3, 5), (8, 17), (7, 1000), (4096, 1000),
                                   (2, 3, 17), (64, 1025), (3, 70000)])
def test_compiled_softmax_matches_the_reference_path(fn, name, shape, spy, monkeypatch):
    x = _logits(shape, seed=sum(shape))
    g = _logits(shape, seed=1, scale=1.0)
    (y, dx), (y_ref, dx_ref) = _both_paths(monkeypatch, _softmax_and_grad, fn, x, g)
    assert spy[f"{name}_forward"] == 1 and spy[f"{name}_backward"] == 1
    _assert_close(y, y_ref, f"{name} y")
    _assert_close(dx, dx_ref, f"{name} dL/dx")


@pytest.mark.parametrize("fn, name", FUNCTIONS)
@pytest.mark.parametrize("columns", [4, 16, 33, 1000])
def test_compiled_softmax_special_rows(fn, name, columns, spy, monkeypatch):
    """all -inf rows: softmax 0 and log-softmax -inf with a zero gradient; +inf and NaN rows:
    the reference's NaN pattern; 1e30: the max-shift keeps exp finite."""
    x = _with_special_rows(_logits((9, columns), seed=columns))
    g = _logits((9, columns), seed=2, scale=1.0)
    (y, dx), (y_ref, dx_ref) = _both_paths(monkeypatch, _softmax_and_grad, fn, x, g)
    assert spy[f"{name}_forward"] == 1
    _assert_close(y, y_ref, f"{name} y")
    _assert_close(dx, dx_ref, f"{name} dL/dx")
    if name == "softmax":
        assert np.all(y[0] == 0) and np.all(dx[0] == 0)
    else:
        assert np.all(y[0] == -np.inf) and np.all(dx[0] == 0)


@pytest.mark.parametrize("fn, name", FUNCTIONS)
def test_compiled_softmax_row_max_sees_every_nan_and_inf(fn, name, spy, monkeypatch):
    """The row max is taken on integer order keys (retrograd/_numba/softmax.py): a NaN with
    its sign bit set orders below -inf there and is caught by the magnitude test alone; a
    NaN past the first 16 values, -inf beside finite values, and -0.0 beside 0.0 come out
    as on the reference path."""
    x = _logits((6, 40), seed=3)
    x[0, 25] = -np.nan                             # sign bit set
    x[1, 39] = np.nan
    x[2, :39] = -np.inf                            # one finite value
    x[3, :20], x[3, 20:] = -0.0, 0.0
    x[4, 7] = -np.inf
    x[5, :] = -3.0e38
    assert np.signbit(x[0, 25])
    g = _logits((6, 40), seed=4, scale=1.0)
    (y, dx), (y_ref, dx_ref) = _both_paths(monkeypatch, _softmax_and_grad, fn, x, g)
    assert spy[f"{name}_forward"] == 1
    _assert_close(y, y_ref, f"{name} y")
    _assert_close(dx, dx_ref, f"{name} dL/dx")
    assert np.isnan(y[0]).any() and np.isnan(y[1]).any()


@pytest.mark.parametrize("fn, torch_fn", [(F.softmax, TF.softmax),
                                          (F.log_softmax, TF.log_softmax)])
@pytest.mark.parametrize("shape", [(3, 5), (4096, 1000), (2, 3, 70)])
def test_compiled_softmax_matches_torch(fn, torch_fn, shape, kernels):
    x = _logits(shape, seed=3, scale=5.0)
    g = _logits(shape, seed=4, scale=1.0)
    y, dx = _softmax_and_grad(fn, x, g)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch_fn(tx, -1)
    ty.backward(torch.tensor(g))
    _assert_close(y, ty.detach().numpy(), "y")
    _assert_close(dx, tx.grad.numpy(), "dL/dx")


@pytest.mark.parametrize("fn, name", FUNCTIONS)
def test_other_axes_dtypes_and_layouts_take_the_numpy_path(fn, name, spy):
    x = _logits((6, 7, 5), seed=5)
    _softmax_and_grad(fn, x, np.ones_like(x), dim=1)                       # not the last axis
    _softmax_and_grad(fn, x.astype(np.float64), np.ones(x.shape), dim=-1)  # float64
    xt = rg.tensor(x, requires_grad=True)
    fn(xt.transpose(0, 2), -1).sum().backward()                            # a strided view
    assert spy[f"{name}_forward"] == 0 and spy[f"{name}_backward"] == 0
    fn(xt, 2).sum().backward()             # axis 2 is the last; dL/dy broadcast: copied
    assert spy[f"{name}_forward"] == 1 and spy[f"{name}_backward"] == 1


# ---------------------------------------------------------------- cross-entropy

def _cross_entropy(x, t, weight=None, **options):
    xt = rg.tensor(x, requires_grad=True)
    w = rg.tensor(weight) if weight is not None else None
    loss = F.cross_entropy(xt, rg.tensor(t), weight=w, **options)
    (loss.sum() if options.get("reduction") == "none" else loss).backward()
    return loss.detach().numpy(), xt.grad.numpy()


def _torch_cross_entropy(x, t, weight=None, **options):
    xt = torch.tensor(x, requires_grad=True)
    w = torch.tensor(weight) if weight is not None else None
    loss = TF.cross_entropy(xt, torch.tensor(t), weight=w, **options)
    (loss.sum() if options.get("reduction") == "none" else loss).backward()
    return loss.detach().numpy(), xt.grad.numpy()


def _targets(shape, classes, seed, ignored=True):
    t = np.random.default_rng(seed).integers(0, classes, shape)
    if ignored:
        t.reshape(-1)[::3] = -100
    return t


CASES = [((4096, 1000), 1), ((7, 5), 1), ((3, 40), 1), ((2, 5, 3, 4), 1), ((6,), 0),
         ((64, 17), 1)]


@pytest.mark.parametrize("shape, class_axis", CASES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_compiled_cross_entropy_matches_the_reference_path_and_torch(
        shape, class_axis, weighted, label_smoothing, reduction, spy, monkeypatch):
    classes = shape[class_axis]
    sample_shape = shape[:class_axis] + shape[class_axis + 1:]
    x = _logits(shape, seed=classes)
    t = _targets(sample_shape, classes, seed=1)
    weight = np.random.default_rng(2).uniform(0.2, 2.0, classes).astype(F32) \
        if weighted else None
    options = {"reduction": reduction, "label_smoothing": label_smoothing}
    (loss, dx), (loss_ref, dx_ref) = _both_paths(monkeypatch, _cross_entropy, x, t, weight,
                                                 **options)
    assert spy["cross_entropy_forward"] == 1 and spy["cross_entropy_backward"] == 1
    _assert_close(loss, loss_ref, "loss")
    _assert_close(dx, dx_ref, "dL/dx", atol=1e-7)
    loss_torch, dx_torch = _torch_cross_entropy(x, t, weight, **options)
    _assert_close(loss, loss_torch, "loss vs torch")
    _assert_close(dx, dx_torch, "dL/dx vs torch", atol=1e-7)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_compiled_cross_entropy_special_rows(weighted, label_smoothing, reduction, spy,
                                             monkeypatch):
    """all -inf rows (loss inf, zero gradient; 0 when ignored), +inf, NaN and 1e30 rows,
    and an ignore_index other than -100."""
    x = _with_special_rows(_logits((12, 9), seed=6))
    t = np.array([3, 1, 4, 0, 5, 8, 2, 6, 7, 1, 0, 3])
    weight = np.random.default_rng(3).uniform(0.2, 2.0, 9).astype(F32) if weighted else None
    for ignore_index, t_case in [(-100, t), (7, np.where(np.arange(12) % 4 == 0, 7, t))]:
        options = {"reduction": reduction, "label_smoothing": label_smoothing,
                   "ignore_index": ignore_index}
        (loss, dx), (loss_ref, dx_ref) = _both_paths(monkeypatch, _cross_entropy, x, t_case,
                                                     weight, **options)
        _assert_close(loss, loss_ref, f"loss ignore_index={ignore_index}")
        _assert_close(dx, dx_ref, f"dL/dx ignore_index={ignore_index}", atol=1e-7)
    assert spy["cross_entropy_forward"] == 2 and spy["cross_entropy_backward"] == 2


def test_compiled_cross_entropy_all_targets_ignored(spy, monkeypatch):
    x = _logits((5, 4), seed=7)
    t = np.full(5, -100)
    (loss, dx), (loss_ref, dx_ref) = _both_paths(monkeypatch, _cross_entropy, x, t)
    assert np.isnan(loss) and np.isnan(loss_ref)              # 0 / 0, as PyTorch
    assert np.all(dx == 0) and np.all(dx_ref == 0)
    assert spy["cross_entropy_forward"] == 1


def test_cross_entropy_float64_and_float64_weights_take_the_numpy_path(spy):
    x = _logits((6, 5), seed=8).astype(np.float64)
    t = _targets(6, 5, seed=9, ignored=False)
    _cross_entropy(x, t, np.linspace(0.5, 1.5, 5))
    assert spy["cross_entropy_forward"] == 0 and spy["cross_entropy_backward"] == 0
