"""The compiled norm kernels (retrograd/_numba/norm.py) against the NumPy reference path of
retrograd/ops/norm.py (outputs, every gradient, the saved statistics and the running
statistics, to float32 rounding), NaN/inf and huge/tiny inputs (the NumPy fallback), and
PyTorch in float32."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
from retrograd import _fast
from retrograd.ops.norm import BatchNorm, GroupNorm, LayerNorm

pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                    "pip install -e '.[test,fast]' installs it")

F32 = np.float32

FAMILY = "norm"   # the kernels fixture (conftest.py) gives retrograd._numba.norm




def _reference_path(monkeypatch):
    """From here on compiled("norm") is None: the ops run their NumPy code."""
    monkeypatch.setitem(_fast._MODULES, "norm", None)


def _array(shape, seed, scale=1.0, offset=0.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale + offset).astype(F32)


def _run(op, x, weight, bias, constants=(), needs=(True, True, True), seed=5, **attrs):
    """op.apply on float32 tensors and the backward of a fixed random cotangent: (y, grads
    with None for a missing or not-requiring input, ctx.rstd)."""
    arrays = (x, weight, bias)
    tensors = [None if a is None else rg.tensor(a.copy(), requires_grad=need)
               for a, need in zip(arrays, needs)]
    y = op.apply(*tensors, *constants, **attrs)
    rstd = y.grad_fn.rstd if y.grad_fn is not None else None   # the ctx is the node
    if y.requires_grad:
        y.backward(rg.tensor(_array(y.shape, seed)))
    grads = [None if t is None or not t.requires_grad else t.grad.numpy() for t in tensors]
    return y.detach().numpy(), grads, rstd


def _assert_close(got, expected, what):
    if expected is None:
        assert got is None, f"{what}: unexpected value"
        return
    assert got.shape == expected.shape and got.dtype == expected.dtype, what
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-6 * scale, err_msg=what)


def _compare_paths(monkeypatch, op, x, weight, bias, constants=(), **kwargs):
    """The compiled and the NumPy path agree on y, every gradient and ctx.rstd."""
    fast = _run(op, x, weight, bias, constants, **kwargs)
    _reference_path(monkeypatch)
    reference = _run(op, x, weight, bias, constants, **kwargs)
    _assert_close(fast[0], reference[0], "y")
    for k, (a, b) in enumerate(zip(fast[1], reference[1])):
        _assert_close(a, b, f"gradient {k}")
    _assert_close(fast[2], reference[2], "rstd")


def _params(shape, affine, seed):
    weight = _array(shape, seed, 0.5, 1.0) if affine in ("both", "weight") else None
    bias = _array(shape, seed + 1) if affine in ("both", "bias") else None
    return weight, bias


AFFINE = ["both", "weight", "bias", "none"]
NEEDS = [(True, True, True), (True, False, False), (False, True, True), (False, False, True)]

# (x shape, normalized ndim): M = 1, one row, odd sizes, a large M, two normalized dims
LAYER_NORM_SHAPES = [((5, 1), 1), ((1, 7), 1), ((3, 5, 7), 1), ((2, 3, 4), 2), ((9, 4099), 1),
                     ((64, 256), 1), ((1, 1), 1)]


@pytest.mark.parametrize("shape, ndim", LAYER_NORM_SHAPES)
@pytest.mark.parametrize("affine", AFFINE)
def test_layer_norm_compiled_matches_the_numpy_path(kernels, monkeypatch, shape, ndim, affine):
    x = _array(shape, 1, 3.0, 2.0)
    weight, bias = _params(shape[len(shape) - ndim:], affine, 2)
    _compare_paths(monkeypatch, LayerNorm, x, weight, bias, normalized_ndim=ndim, eps=1e-5)


@pytest.mark.parametrize("needs", NEEDS)
def test_layer_norm_some_inputs_not_requiring_grad(kernels, monkeypatch, needs):
    x, (weight, bias) = _array((6, 10), 3), _params((10,), "both", 4)
    _compare_paths(monkeypatch, LayerNorm, x, weight, bias, needs=needs, normalized_ndim=1)


# (x shape, groups): 1 element per group, one group, one channel per group, odd sizes, N=1
GROUP_NORM_SHAPES = [((2, 4), 4), ((3, 6, 5), 1), ((2, 6, 5), 6), ((1, 6, 3, 5), 3),
                     ((4, 8, 7, 7), 2), ((2, 32, 16, 16), 8)]


@pytest.mark.parametrize("shape, groups", GROUP_NORM_SHAPES)
@pytest.mark.parametrize("affine", AFFINE)
def test_group_norm_compiled_matches_the_numpy_path(kernels, monkeypatch, shape, groups,
                                                    affine):
    x = _array(shape, 5, 2.0, -1.0)
    weight, bias = _params(shape[1:2], affine, 6)
    _compare_paths(monkeypatch, GroupNorm, x, weight, bias, num_groups=groups, eps=1e-5)


@pytest.mark.parametrize("needs", NEEDS)
def test_group_norm_some_inputs_not_requiring_grad(kernels, monkeypatch, needs):
    x, (weight, bias) = _array((3, 6, 4), 7), _params((6,), "both", 8)
    _compare_paths(monkeypatch, GroupNorm, x, weight, bias, needs=needs, num_groups=2)


# 1 value per channel over N and S is impossible in training (M - 1 = 0): N * S >= 2
BATCH_NORM_SHAPES = [(6, 3), (4, 3, 5), (1, 3, 4, 2), (3, 2, 1, 1), (5, 1, 3),
                     (8, 16, 9, 9), (2, 5, 33, 17)]


def _running(channels, seed):
    return _array(channels, seed), np.abs(_array(channels, seed + 1)) + F32(0.5)


@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_compiled_matches_the_numpy_path(kernels, monkeypatch, shape, affine,
                                                    training):
    x = _array(shape, 9, 2.0, 0.5)
    weight, bias = _params(shape[1:2], affine, 10)
    stats = _running(shape[1], 11)
    fast_stats = tuple(s.copy() for s in stats)
    fast = _run(BatchNorm, x, weight, bias, fast_stats, training=training, momentum=0.3)
    _reference_path(monkeypatch)
    reference = _run(BatchNorm, x, weight, bias, stats, training=training, momentum=0.3)
    _assert_close(fast[0], reference[0], "y")
    for k, (a, b) in enumerate(zip(fast[1], reference[1])):
        _assert_close(a, b, f"gradient {k}")
    _assert_close(fast[2], reference[2], "rstd")
    for got, expected in zip(fast_stats, stats):     # running statistics, updated in place
        _assert_close(got, expected, "running statistic")


@pytest.mark.parametrize("needs", NEEDS)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_some_inputs_not_requiring_grad(kernels, monkeypatch, needs, training):
    x, (weight, bias) = _array((4, 3, 5), 12), _params((3,), "both", 13)
    _compare_paths(monkeypatch, BatchNorm, x, weight, bias, _running(3, 14), needs=needs,
                   training=training)


def test_float16_input_runs_the_kernels_in_float32(kernels, monkeypatch):
    x = _array((4, 33), 15).astype(np.float16)
    weight, bias = _params((33,), "both", 16)
    fast = _run(LayerNorm, x, weight, bias, normalized_ndim=1)
    _reference_path(monkeypatch)
    reference = _run(LayerNorm, x, weight, bias, normalized_ndim=1)
    assert fast[0].dtype == reference[0].dtype == np.float16
    np.testing.assert_allclose(fast[0], reference[0], rtol=2e-3, atol=2e-3)
    for a, b in zip(fast[1], reference[1]):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3)


def _spy(monkeypatch, module, name):
    """Count the calls of module.name."""
    calls = []
    original = getattr(module, name)

    def spy(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.mark.parametrize("op, shape, attrs, forward, backward", [
    (LayerNorm, (4, 8), {}, "layer_norm_forward", "layer_norm_backward"),
    (GroupNorm, (2, 4, 3), {"num_groups": 2}, "group_norm_forward", "group_norm_backward"),
    (BatchNorm, (2, 4, 3), {"training": True}, "batch_norm_forward", "batch_norm_backward"),
])
def test_float32_contiguous_inputs_take_the_compiled_kernels(kernels, monkeypatch, op, shape,
                                                             attrs, forward, backward):
    forward_calls, backward_calls = (_spy(monkeypatch, kernels, name)
                                     for name in (forward, backward))
    params = _params(shape[1:2] if op is not LayerNorm else shape[-1:], "both", 17)
    constants = (None, None) if op is BatchNorm else ()
    _run(op, _array(shape, 18), *params, constants, **attrs)
    assert (forward_calls, backward_calls) == ([forward], [backward])
    _run(op, _array(shape, 18).astype(np.float64), *params, constants, **attrs)
    assert (forward_calls, backward_calls) == ([forward], [backward])   # float64: NumPy


def _grouped_cases():
    """(op, x shape, attrs) with one group per (row, sample-and-group, channel)."""
    return [(LayerNorm, (4, 6), {"normalized_ndim": 1}),
            (GroupNorm, (2, 4, 3), {"num_groups": 2}),
            (BatchNorm, (3, 4, 2), {"training": True})]


def _params_for(op, shape):
    return _params(shape[-1:] if op is LayerNorm else shape[1:2], "both", 19)


def _with_values(op, shape, values):
    """x with ``values`` written over the first group of op's layout."""
    x = _array(shape, 20)
    if op is BatchNorm:
        x[:, 0] = values
    else:
        x[0] = values
    return x


@pytest.mark.parametrize("op, shape, attrs", _grouped_cases())
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_propagate_like_the_numpy_path(kernels, monkeypatch, op, shape, attrs,
                                                   special):
    x = _with_values(op, shape, 1.0)
    x.reshape(-1)[0 if op is not BatchNorm else 1] = special
    params = _params_for(op, shape)
    constants = (None, None) if op is BatchNorm else ()
    with np.errstate(all="ignore"):
        fast = _run(op, x, *params, constants, **attrs)
        _reference_path(monkeypatch)
        reference = _run(op, x, *params, constants, **attrs)
    # the forward falls back to the NumPy path whole (the batch's var is not finite): the same
    # bits; the backward runs the kernels, NaN exactly where the reference has NaN
    np.testing.assert_array_equal(fast[0], reference[0])
    assert np.isnan(fast[0]).any()
    for k, (a, b) in enumerate(zip(fast[1], reference[1])):
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"gradient {k}"
        _assert_close(a, b, f"gradient {k}")


def test_batch_norm_eval_keeps_nan_and_inf_where_they_are(kernels, monkeypatch):
    x = _array((3, 4, 5), 22)
    x[0, 1, 2], x[1, 2, 3], x[2, 3, 4] = np.nan, np.inf, -np.inf
    weight, bias = _params((4,), "both", 23)
    fast = _run(BatchNorm, x, weight, bias, _running(4, 24), training=False)
    _reference_path(monkeypatch)
    reference = _run(BatchNorm, x, weight, bias, _running(4, 24), training=False)
    np.testing.assert_array_equal(fast[0], reference[0])    # the same float32 operations
    assert np.isnan(fast[0]).sum() == 1 and np.isinf(fast[0]).sum() == 2
    for k, (a, b) in enumerate(zip(fast[1], reference[1])):
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"gradient {k}"
        _assert_close(a, b, f"gradient {k}")


@pytest.mark.parametrize("op, shape, attrs", _grouped_cases())
@pytest.mark.parametrize("scale, eps", [(1e20, 1e-5), (1e-20, 1e-5), (1e-20, 0.0),
                                        (1e18, 1e-5), (3e-21, 1e-45)])
def test_huge_and_tiny_values_normalize_like_the_numpy_path(kernels, monkeypatch, op, shape,
                                                            attrs, scale, eps):
    x = _array(shape, 21, scale, 0.0)
    params = _params_for(op, shape)
    constants = (None, None) if op is BatchNorm else ()
    fast = _run(op, x, *params, constants, eps=eps, **attrs)
    _reference_path(monkeypatch)
    reference = _run(op, x, *params, constants, eps=eps, **attrs)
    assert np.isfinite(fast[0]).all()
    _assert_close(fast[0], reference[0], "y")
    for k, (a, b) in enumerate(zip(fast[1], reference[1])):
        _assert_close(a, b, f"gradient {k}")


def test_constant_groups_give_zero_x_hat(kernels, monkeypatch):
    x = np.full((3, 5), 7.25, F32)
    fast = _run(LayerNorm, x, None, None, normalized_ndim=1)
    assert np.array_equal(fast[0], np.zeros_like(x))
    _reference_path(monkeypatch)
    reference = _run(LayerNorm, x, None, None, normalized_ndim=1)
    _assert_close(fast[1][0], reference[1][0], "dL/dx")     # rstd * (g - mean(g)): not 0


# ---------------------------------------------------------------- x saved, x_hat rebuilt
def _node(op, x, params, attrs, needs=(False, True, True)):
    """op.apply on x and the params with the given requires_grad: (x, params, y) tensors."""
    tensors = [rg.tensor(a, requires_grad=need) for a, need in zip((x, *params), needs)]
    constants = (None, None) if op is BatchNorm else ()
    return tensors[0], tensors[1:], op.apply(*tensors, *constants, **attrs)


@pytest.mark.parametrize("op, shape, attrs", _grouped_cases())
def test_with_an_affine_map_the_input_is_saved_not_an_x_hat_array(kernels, op, shape, attrs):
    x, _, y = _node(op, _array(shape, 30), _params_for(op, shape), attrs)
    saved_input, _ = y.grad_fn.saved_tensors
    assert saved_input is x.numpy() and y.grad_fn.from_x


@pytest.mark.parametrize("op, shape, attrs", _grouped_cases())
def test_an_in_place_change_of_the_saved_input_is_caught(kernels, op, shape, attrs):
    x, _, y = _node(op, _array(shape, 31), _params_for(op, shape), attrs)
    x.add_(1.0)      # x does not require grad; dL/dgamma needs x_hat, rebuilt from x
    with pytest.raises(RuntimeError, match="in-place"):
        y.backward(rg.tensor(_array(y.shape, 32)))


@pytest.mark.parametrize("name, shape", [("layer_norm", (7, 1000)), ("group_norm", (3, 4, 96)),
                                         ("batch_norm", (5, 6, 77))])
def test_x_hat_rebuilt_in_the_backward_has_the_forwards_bits(kernels, name, shape):
    """The backward kernels rebuild mu by the forward's own loop and x_hat = (x - mu) * rstd
    by its two float32 operations (_normalized, kept out of the sums' reassociation): every
    gradient equals, bit for bit, the one computed from x_hat stored as an array."""
    x = _array(shape, 34, 3.0, 1.5)
    channels = shape[1]
    weight, bias = _params((channels,) if name != "layer_norm" else shape[-1:], "both", 35)
    forward, backward = (getattr(kernels, f"{name}_{way}") for way in ("forward", "backward"))
    _, mean, _, rstd = forward(x, weight, bias, 1e-5, x.shape)
    # x_hat by NumPy's float32 operations, per channel (batch norm) or per row and group
    group = (1, -1, 1) if name == "batch_norm" else shape[:-1] + (1,)
    stored = (x - mean.reshape(group)) * rstd.reshape(group)
    extra = {"batch_norm": (True,), "group_norm": (channels,), "layer_norm": ()}[name]
    grad = _array(shape, 36)
    rebuilt = backward(grad, x, weight, rstd, *extra, True, from_x=True)
    from_stored = backward(grad, stored, weight, rstd, *extra, True)
    for got, expected in zip(rebuilt, from_stored):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("op, shape, attrs", _grouped_cases())
def test_a_gradient_the_kernels_do_not_take_rebuilds_x_hat_in_numpy(kernels, monkeypatch, op,
                                                                    shape, attrs):
    """A broadcast output gradient (y.sum().backward()) is not contiguous: the NumPy backward
    runs, from x_hat rebuilt out of the saved x, and matches the NumPy path throughout."""
    params = _params_for(op, shape)

    def grads():
        x, weights, y = _node(op, _array(shape, 37), params, attrs, (True, True, True))
        y.sum().backward()
        return [t.grad.numpy() for t in (x, *weights)]
    fast = grads()
    _reference_path(monkeypatch)
    for k, (a, b) in enumerate(zip(fast, grads())):
        _assert_close(a, b, f"gradient {k}")


# ---------------------------------------------------------------- PyTorch, float32
def _torch_grads(fn, x, weight, bias, seed=5):
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    y = fn(*tensors)
    y.backward(torch.tensor(_array(tuple(y.shape), seed)))
    return y.detach().numpy(), [t.grad.numpy() for t in tensors]


def _assert_matches_torch(ours, theirs):
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(ours[1], theirs[1]):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * scale)


def test_layer_norm_matches_torch_float32(kernels):
    x, (weight, bias) = _array((32, 5, 96), 22, 2.0, 1.0), _params((96,), "both", 23)
    ours = _run(LayerNorm, x, weight, bias, normalized_ndim=1)
    _assert_matches_torch(ours, _torch_grads(lambda x, w, b: TF.layer_norm(x, (96,), w, b),
                                             x, weight, bias))


def test_group_norm_matches_torch_float32(kernels):
    x, (weight, bias) = _array((4, 12, 7, 9), 24, 2.0, 1.0), _params((12,), "both", 25)
    ours = _run(GroupNorm, x, weight, bias, num_groups=3)
    _assert_matches_torch(ours, _torch_grads(lambda x, w, b: TF.group_norm(x, 3, w, b),
                                             x, weight, bias))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch_float32(kernels, training):
    x, (weight, bias) = _array((16, 8, 9, 7), 26, 2.0, 1.0), _params((8,), "both", 27)
    mean, var = _running(8, 28)
    ours_stats = (mean.copy(), var.copy())
    ours = _run(BatchNorm, x, weight, bias, ours_stats, training=training)
    theirs_stats = (torch.tensor(mean), torch.tensor(var))
    theirs = _torch_grads(lambda x, w, b: TF.batch_norm(x, *theirs_stats, w, b, training),
                          x, weight, bias)
    _assert_matches_torch(ours, theirs)
    for got, expected in zip(ours_stats, theirs_stats):
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-6)
