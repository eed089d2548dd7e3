"""clip_grad_norm_ and clip_grad_value_ against torch.nn.utils."""

import math

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.utils  # noqa: F401 - until retrograd.nn imports it
from retrograd.nn.utils import clip_grad_norm_, clip_grad_value_, get_total_norm

SHAPES = [(3, 4), (4,), (2, 2, 2), ()]


def _params(grads, lib, none_at=()):
    """Parameters (zeros) carrying the given gradients; ``none_at`` ones get no gradient."""
    out = []
    for i, g in enumerate(grads):
        if lib is rg:
            p = rg.zeros(*g.shape, dtype=rg.dtypes.from_numpy_dtype(g.dtype), requires_grad=True)
            p.grad = None if i in none_at else rg.tensor(g.copy())
        else:
            p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
            p.grad = None if i in none_at else torch.from_numpy(g.copy())
        out.append(p)
    return out


def _grads(dtype=np.float64, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [np.asarray(rng.standard_normal(s) * scale, dtype=dtype) for s in SHAPES]


def _compare(grads, max_norm, norm_type, none_at=(), rtol=1e-12, **kwargs):
    mine, theirs = _params(grads, rg, none_at), _params(grads, torch, none_at)
    norm = clip_grad_norm_(mine, max_norm, norm_type, **kwargs)
    t_norm = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type, **kwargs)
    assert isinstance(norm, rg.Tensor) and norm.shape == ()
    assert norm.numpy().dtype == t_norm.numpy().dtype
    np.testing.assert_allclose(norm.numpy(), t_norm.numpy(), rtol=rtol)
    for p, tp in zip(mine, theirs):
        if tp.grad is None:
            assert p.grad is None
            continue
        assert p.grad.numpy().dtype == tp.grad.numpy().dtype
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=rtol, atol=1e-300)
    return norm, mine


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.5, 0.5, "inf", 0.0, -math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_matches_torch_float64(norm_type, max_norm):
    norm, params = _compare(_grads(), max_norm, norm_type)
    if max_norm < 1 and norm_type in (2.0, 1.0):  # really clipped: the new total norm is max_norm
        new = get_total_norm([p.grad for p in params], norm_type)
        np.testing.assert_allclose(new.item(), max_norm, rtol=1e-5)


@pytest.mark.parametrize("norm_type", [2.0, math.inf, 1.5])
def test_matches_torch_float32(norm_type):
    _compare(_grads(np.float32), 0.5, norm_type, rtol=1e-5)


def test_mixed_dtypes_and_a_parameter_without_gradient():
    grads = _grads()
    grads[1] = grads[1].astype(np.float32)
    _compare(grads, 0.5, 2.0, none_at=(2,), rtol=1e-6)


def test_zero_gradients_stay_zero():
    grads = [np.zeros(s) for s in SHAPES]
    norm, params = _compare(grads, 1.0, 2.0)
    assert norm.item() == 0.0
    assert all(not p.grad.numpy().any() for p in params)


def test_no_gradients_at_all():
    params = _params(_grads(), rg, none_at=(0, 1, 2, 3))
    norm = clip_grad_norm_(params, 1.0)
    assert norm.item() == 0.0 and norm.dtype == rg.float32
    assert clip_grad_norm_([], 1.0).item() == 0.0


def test_single_tensor_and_generator_inputs():
    g = _grads()[0]
    p = _params([g], rg)[0]
    norm = clip_grad_norm_(p, 1.0)
    np.testing.assert_allclose(norm.item(), np.linalg.norm(g), rtol=1e-12)
    lin = rg.nn.Linear(3, 2)
    lin(rg.randn(4, 3)).sum().backward()
    clip_grad_norm_(lin.parameters(), 1e-3)
    total = get_total_norm([p.grad for p in lin.parameters()])
    np.testing.assert_allclose(total.item(), 1e-3, rtol=1e-3)


@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_nonfinite_norm(bad):
    grads = _grads()
    grads[0][1, 2] = bad
    with pytest.raises(RuntimeError, match="total norm of order 2.0 .* is non-finite"):
        clip_grad_norm_(_params(grads, rg), 1.0, error_if_nonfinite=True)
    # without the error, the gradients are scaled by the non-finite norm, as in torch
    mine, theirs = _params(grads, rg), _params(grads, torch)
    norm = clip_grad_norm_(mine, 1.0)
    t_norm = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    np.testing.assert_equal(norm.numpy(), t_norm.numpy())
    for p, tp in zip(mine, theirs):
        np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())


def test_clipping_is_in_place_and_bumps_the_version():
    p = _params(_grads(), rg)[0]
    grad, array, version = p.grad, p.grad._data, p.grad._version[0]
    clip_grad_norm_([p], 0.1)
    assert p.grad is grad and p.grad._data is array and p.grad._version[0] == version + 1
    clip_grad_value_([p], 0.01)
    assert p.grad._data is array and p.grad._version[0] == version + 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_value_matches_torch(dtype):
    grads = _grads(dtype, scale=2.0)
    mine, theirs = _params(grads, rg, none_at=(3,)), _params(grads, torch, none_at=(3,))
    assert clip_grad_value_(mine, 1.5) is None
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, tp in zip(mine[:3], theirs[:3]):
        assert p.grad.numpy().dtype == dtype
        np.testing.assert_array_equal(p.grad.numpy(), tp.grad.numpy())
    assert mine[3].grad is None
    assert np.abs(grads[0]).max() > 1.5  # something was clipped


def test_float16_norm_does_not_overflow():
    p = rg.zeros(1000, dtype=rg.float16, requires_grad=True)
    p.grad = rg.full((1000,), 300.0, dtype=rg.float16)  # sum of squares 9e7 > float16 max
    norm = clip_grad_norm_([p], 1.0)
    assert norm.dtype == rg.float16
    np.testing.assert_allclose(float(norm.item()), 300.0 * math.sqrt(1000), rtol=1e-3)
    assert np.isfinite(p.grad.numpy()).all()


def test_non_tensor_is_a_clear_error():
    with pytest.raises(TypeError, match=r"clip_grad_norm_: parameters must hold only Tensors, "
                                        r"but parameters\[0\] is a NumPy array of shape"):
        clip_grad_norm_([np.zeros(2)], 1.0)


@pytest.mark.parametrize("norm_type", [2.0, 3.0], ids=["p=2", "p=3"])
@pytest.mark.parametrize("scale", [1e20, 1e30, 1e-30], ids=str)
def test_float32_norm_at_extreme_scales_matches_float64(scale, norm_type):
    """A sum of squares of float32 1e20s overflows (PyTorch then reports inf and clipping
    sets every gradient to 0); of 1e-30s it underflows. The norm is finite and right."""
    grads = [np.random.default_rng(k).standard_normal(shape).astype(np.float32) * np.float32(
        scale) for k, shape in enumerate([(3, 4), (5,)])]
    params = [rg.zeros(g.shape, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = rg.tensor(g)
    expected = np.sum([np.sum(np.abs(g.astype(np.float64)) ** norm_type)
                       for g in grads]) ** (1 / norm_type) if scale < 1 else scale * np.sum(
        [np.sum(np.abs(g.astype(np.float64) / scale) ** norm_type)
         for g in grads]) ** (1 / norm_type)
    norm = clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    np.testing.assert_allclose(float(norm.item()), expected, rtol=1e-5)
    clipped = np.concatenate([p.grad.numpy().ravel() for p in params]).astype(np.float64)
    np.testing.assert_allclose(np.sum(np.abs(clipped) ** norm_type) ** (1 / norm_type),
                               min(1.0, expected), rtol=1e-4)


@pytest.mark.parametrize("fn, args", [(clip_grad_norm_, (1.0,)), (clip_grad_value_, (1.0,))],
                         ids=["clip_grad_norm_", "clip_grad_value_"])
@pytest.mark.parametrize("given, says", [
    (lambda: rg.nn.Linear(2, 2), "must be a Tensor or an iterable of Tensors, got a Linear "
                                 "module; pass model.parameters()"),
    (lambda: [rg.nn.Linear(2, 2)], "must hold only Tensors, but parameters[0] is a Linear "
                                   "module; pass model.parameters()"),
    (lambda: rg.nn.Linear(2, 2).state_dict(), "got an OrderedDict; a dict iterates over its "
                                              "keys: pass model.parameters()"),
    (lambda: 3.0, "must be a Tensor or an iterable of Tensors, got a float"),
])
def test_a_module_or_a_non_tensor_is_a_clear_error(fn, args, given, says):
    # PyTorch: "'Linear' object is not iterable"
    with pytest.raises(TypeError) as info:
        fn(given(), *args)
    assert str(info.value).startswith(f"{fn.__name__}: parameters ") and says in str(info.value)
