"""The fused normalization ops (retrograd/ops/norm.py): batch_norm, layer_norm, group_norm
against PyTorch (outputs and every gradient, float64 and float32), against finite differences
(through the engine and alone), against their composition from elementary retrograd ops, and
their argument errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.ops.norm import (BatchNorm, GroupNorm, LayerNorm, batch_norm_reference_backward,
                                group_norm_reference_backward, layer_norm_reference_backward)
from tests.oracle import check_backward_alone, check_op, randn


def _params(channels_shape, seed):
    return randn(*channels_shape, seed=seed), randn(*channels_shape, seed=seed + 1)


# ---------------------------------------------------------------- layer norm
# (input shape, normalized_shape): one and two normalized dims, a batch of 1, a sequence,
# a size-1 normalized dim (x_hat = 0), a size-1 batch dim in the middle, no batch dims.
LAYER_NORM_CASES = [
    ((4, 5), (5,)),
    ((2, 3, 4), (4,)),
    ((2, 3, 4), (3, 4)),
    ((1, 6), (6,)),
    ((3, 1), (1,)),
    ((2, 1, 7), (7,)),
    ((6,), (6,)),
]


@pytest.mark.parametrize("shape, normalized", LAYER_NORM_CASES)
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
def test_layer_norm_matches_torch(shape, normalized, affine):
    x = randn(*shape, seed=1)
    w, b = _params(normalized, seed=2)
    if affine == "both":
        check_op(lambda x, w, b: F.layer_norm(x, normalized, w, b),
                 lambda x, w, b: TF.layer_norm(x, normalized, w, b), x, w, b)
    elif affine == "weight":
        check_op(lambda x, w: F.layer_norm(x, normalized, w),
                 lambda x, w: TF.layer_norm(x, normalized, w), x, w)
    else:
        check_op(lambda x: F.layer_norm(x, normalized), lambda x: TF.layer_norm(x, normalized), x)


def test_layer_norm_bias_without_weight_matches_torch():
    x, (_, b) = randn(3, 2, 4, seed=3), _params((2, 4), seed=4)
    check_op(lambda x, b: F.layer_norm(x, (2, 4), None, b),
             lambda x, b: TF.layer_norm(x, (2, 4), None, b), x, b)


@pytest.mark.parametrize("eps", [1e-5, 0.5])
def test_layer_norm_eps_and_float32_match_torch(eps):
    x, (w, b) = randn(4, 3, 16, seed=5), _params((16,), seed=6)
    for dtype in (np.float64, np.float32):
        check_op(lambda x, w, b: F.layer_norm(x, (16,), w, b, eps),
                 lambda x, w, b: TF.layer_norm(x, (16,), w, b, eps), x, w, b, dtype=dtype)


@pytest.mark.parametrize("no_grad", [(0,), (1,), (2,), (1, 2), (0, 2)])
def test_layer_norm_with_some_inputs_not_requiring_grad(no_grad):
    x, (w, b) = randn(3, 5, seed=7), _params((5,), seed=8)
    check_op(lambda x, w, b: F.layer_norm(x, (5,), w, b),
             lambda x, w, b: TF.layer_norm(x, (5,), w, b), x, w, b, no_grad=no_grad)


@pytest.mark.parametrize("shape, normalized", LAYER_NORM_CASES)
def test_layer_norm_backward_alone(shape, normalized):
    x, (w, b) = randn(*shape, seed=9), _params(normalized, seed=10)
    attrs = {"normalized_ndim": len(normalized), "eps": 1e-5}
    check_backward_alone(LayerNorm, [x, w, b], attrs)
    check_backward_alone(LayerNorm, [x, None, None], attrs)


# ---------------------------------------------------------------- batch norm
# input shapes (N, C), (N, C, L), (N, C, H, W), size-1 spatial dims, a batch of 1 with
# spatial dims (more than one value per channel), one channel.
BATCH_NORM_SHAPES = [(6, 3), (4, 3, 5), (2, 3, 4, 5), (3, 2, 1, 1), (1, 3, 4, 2), (5, 1, 3)]


@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_matches_torch(shape, affine):
    x = randn(*shape, seed=11)
    w, b = _params(shape[1:2], seed=12)
    if affine:
        check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                 lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True), x, w, b)
    else:
        check_op(lambda x: F.batch_norm(x, None, None, training=True),
                 lambda x: TF.batch_norm(x, None, None, training=True), x)


@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
def test_batch_norm_eval_matches_torch(shape):
    channels = shape[1]
    x, (w, b) = randn(*shape, seed=13), _params((channels,), seed=14)
    mean, var = randn(channels, seed=15), randn(channels, seed=16, low=0.5)

    def rg_fn(x, w, b):
        return F.batch_norm(x, rg.tensor(mean), rg.tensor(var), w, b, training=False)

    def torch_fn(x, w, b):
        return TF.batch_norm(x, torch.tensor(mean), torch.tensor(var), w, b, training=False)

    check_op(rg_fn, torch_fn, x, w, b)
    check_op(rg_fn, torch_fn, x, w, b, no_grad=(1,))


@pytest.mark.parametrize("no_grad", [(0,), (1,), (2,), (1, 2), (0, 2)])
def test_batch_norm_with_some_inputs_not_requiring_grad(no_grad):
    x, (w, b) = randn(4, 3, 2, seed=17), _params((3,), seed=18)
    check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
             lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True), x, w, b,
             no_grad=no_grad)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_float32_matches_torch(training):
    x, (w, b) = randn(8, 4, 6, 6, seed=19), _params((4,), seed=20)
    mean, var = randn(4, seed=21).astype(np.float32), randn(4, seed=22, low=0.5).astype(np.float32)
    out = check_op(
        lambda x, w, b: F.batch_norm(x, rg.tensor(mean), rg.tensor(var), w, b, training),
        lambda x, w, b: TF.batch_norm(x, torch.tensor(mean), torch.tensor(var), w, b, training),
        x, w, b, dtype=np.float32)
    assert out[0].dtype == rg.float32


class _BatchNormEval(BatchNorm):
    """BatchNorm in eval mode with fixed running statistics bound as attributes: the oracle
    would otherwise perturb them as if they were differentiable inputs."""

    mean, var = randn(4, seed=25), randn(4, seed=26, low=0.5)

    @staticmethod
    def forward(ctx, x, weight, bias):
        return BatchNorm.forward(ctx, x, weight, bias, _BatchNormEval.mean, _BatchNormEval.var,
                                 training=False)

    @staticmethod
    def backward(ctx, grad_out):
        return BatchNorm.backward(ctx, grad_out)[:3]


@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_alone(shape, training):
    shape = (shape[0], 4) + shape[2:]
    x, (w, b) = randn(*shape, seed=23), _params((4,), seed=24)
    if training:  # no running statistics: the op would update them at every call
        attrs = {"training": True, "momentum": 0.1, "eps": 1e-5}
        check_backward_alone(BatchNorm, [x, w, b, None, None], attrs)
        check_backward_alone(BatchNorm, [x, None, None, None, None], attrs)
    else:
        check_backward_alone(_BatchNormEval, [x, w, b])
        check_backward_alone(_BatchNormEval, [x, None, None])


@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batch_norm_running_statistics_match_torch_after_several_steps(momentum, dtype):
    rm, rv = rg.zeros(3, dtype=dtype), rg.ones(3, dtype=dtype)
    tm, tv = torch.zeros(3, dtype=torch.float64 if dtype == np.float64 else torch.float32), None
    tv = torch.ones_like(tm)
    for step in range(4):
        x = (randn(5, 3, 4, seed=30 + step) * (step + 1) + step).astype(dtype)
        F.batch_norm(rg.tensor(x), rm, rv, training=True, momentum=momentum)
        TF.batch_norm(torch.tensor(x), tm, tv, training=True, momentum=momentum)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(rm.numpy(), tm.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(rv.numpy(), tv.numpy(), rtol=tol, atol=tol)
    assert rm.dtype == dtype and rv.dtype == dtype
    assert not np.allclose(rv.numpy(), 1.0)  # the statistics really moved


def test_batch_norm_running_variance_is_unbiased():
    x = np.array([[1.0], [2.0], [4.0]])
    rm, rv = rg.zeros(1, dtype=rg.float64), rg.zeros(1, dtype=rg.float64)
    F.batch_norm(rg.tensor(x), rm, rv, training=True, momentum=1.0)
    assert rm.item() == pytest.approx(x.mean())
    assert rv.item() == pytest.approx(x.var(ddof=1))


def test_batch_norm_updates_only_in_training_and_bumps_versions():
    rm, rv = rg.zeros(2), rg.ones(2)
    x = rg.randn(4, 2)
    F.batch_norm(x, rm, rv, training=False)
    assert rm.numpy().tolist() == [0.0, 0.0] and rv.numpy().tolist() == [1.0, 1.0]
    version = rm._version[0]
    F.batch_norm(x, rm, rv, training=True)
    assert rm._version[0] == version + 1
    assert not np.allclose(rm.numpy(), 0.0)


# ---------------------------------------------------------------- group norm
# (input shape, groups): 1 group (layer norm over C, *), C groups (instance norm), no spatial
# dims, size-1 spatial dims, a batch of 1.
GROUP_NORM_CASES = [
    ((2, 6, 4), 3),
    ((2, 6, 4), 1),
    ((2, 6, 4), 6),
    ((3, 4), 2),
    ((2, 4, 1, 1), 2),
    ((1, 6, 3, 2), 2),
]


@pytest.mark.parametrize("shape, groups", GROUP_NORM_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(shape, groups, affine):
    x, (w, b) = randn(*shape, seed=40), _params(shape[1:2], seed=41)
    if affine:
        check_op(lambda x, w, b: F.group_norm(x, groups, w, b),
                 lambda x, w, b: TF.group_norm(x, groups, w, b), x, w, b)
    else:
        check_op(lambda x: F.group_norm(x, groups), lambda x: TF.group_norm(x, groups), x)


def test_group_norm_float32_matches_torch():
    x, (w, b) = randn(4, 8, 5, 5, seed=42), _params((8,), seed=43)
    check_op(lambda x, w, b: F.group_norm(x, 4, w, b, 1e-3),
             lambda x, w, b: TF.group_norm(x, 4, w, b, 1e-3), x, w, b, dtype=np.float32)


@pytest.mark.parametrize("shape, groups", GROUP_NORM_CASES)
def test_group_norm_backward_alone(shape, groups):
    x, (w, b) = randn(*shape, seed=44), _params(shape[1:2], seed=45)
    check_backward_alone(GroupNorm, [x, w, b], {"num_groups": groups, "eps": 1e-5})


# ---------------------------------------------------------------- fused vs reference
AFFINE = ["both", "weight", "bias", "none"]


def _affine_params(affine, channels_shape, seed):
    """(weight, bias), each an array or None as ``affine`` says."""
    w, b = _params(channels_shape, seed)
    return (w if affine in ("both", "weight") else None, b if affine in ("both", "bias") else None)


def _fast_grads(op, x, weight, bias, constants=(), seed=70, **attrs):
    """Op.apply(x, weight, bias, *constants, **attrs) and the engine's backward of a random
    cotangent: ([dL/dx, dL/dgamma, dL/dbeta] with None for a missing input, the cotangent)."""
    tensors = [None if a is None else rg.tensor(a, requires_grad=True) for a in (x, weight, bias)]
    y = op.apply(*tensors, *constants, **attrs)
    cotangent = randn(*y.shape, seed=seed)
    assert np.unique(cotangent).size == cotangent.size  # every entry differs, unlike ones
    y.backward(rg.tensor(cotangent))
    return [None if t is None else t.grad.numpy() for t in tensors], cotangent


def _assert_same_gradients(fast, reference):
    """Equal to rounding (float64): the kernels sum with einsum, the reference with np.sum.
    (No check for non-zero values: with a size-1 normalized dim x_hat = 0, and dL/dx and
    dL/dgamma are exactly 0.)"""
    for k, (a, b) in enumerate(zip(fast, reference)):
        if b is None:
            assert a is None, f"input {k}: a gradient the reference does not have"
            continue
        assert a.shape == b.shape and a.dtype == b.dtype, f"input {k}: {a.shape} vs {b.shape}"
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"gradient {k}")


@pytest.mark.parametrize("shape, normalized", LAYER_NORM_CASES)
@pytest.mark.parametrize("affine", AFFINE)
def test_layer_norm_backward_equals_the_reference(shape, normalized, affine):
    x, (w, b) = randn(*shape, seed=71), _affine_params(affine, normalized, seed=72)
    attrs = dict(normalized_ndim=len(normalized), eps=1e-5)
    fast, cotangent = _fast_grads(LayerNorm, x, w, b, **attrs)
    _assert_same_gradients(fast, layer_norm_reference_backward(x, w, b, cotangent, **attrs))


@pytest.mark.parametrize("shape", BATCH_NORM_SHAPES)
@pytest.mark.parametrize("affine", AFFINE)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_equals_the_reference(shape, affine, training):
    channels = shape[1]
    x, (w, b) = randn(*shape, seed=73), _affine_params(affine, (channels,), seed=74)
    # eval mode reads the running statistics; training mode gets None (no update to undo)
    stats = ((randn(channels, seed=75), randn(channels, seed=76, low=0.5)) if not training
             else (None, None))
    attrs = dict(training=training, eps=1e-5)
    fast, cotangent = _fast_grads(BatchNorm, x, w, b, stats, momentum=0.1, **attrs)
    reference = batch_norm_reference_backward(x, w, b, *stats, cotangent, **attrs)
    _assert_same_gradients(fast, reference)


@pytest.mark.parametrize("shape, groups", GROUP_NORM_CASES)
@pytest.mark.parametrize("affine", AFFINE)
def test_group_norm_backward_equals_the_reference(shape, groups, affine):
    x, (w, b) = randn(*shape, seed=77), _affine_params(affine, shape[1:2], seed=78)
    attrs = dict(num_groups=groups, eps=1e-5)
    fast, cotangent = _fast_grads(GroupNorm, x, w, b, **attrs)
    _assert_same_gradients(fast, group_norm_reference_backward(x, w, b, cotangent, **attrs))


def _torch_grads(fn, *arrays, seed=79):
    """(every input's gradient from torch autograd, the random cotangent)."""
    leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*leaves)
    cotangent = randn(*y.shape, seed=seed)
    y.backward(torch.tensor(cotangent))
    return [t.grad.numpy() for t in leaves], cotangent


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_reference_matches_torch(training):
    """The references against PyTorch autograd, so that a wrong reference cannot agree with
    a fused kernel that is wrong the same way."""
    x, (w, b) = randn(4, 3, 2, 5, seed=80), _params((3,), seed=81)
    mean, var = randn(3, seed=82), randn(3, seed=83, low=0.5)
    expected, cotangent = _torch_grads(
        lambda x, w, b: TF.batch_norm(x, torch.tensor(mean), torch.tensor(var), w, b, training),
        x, w, b)
    reference = batch_norm_reference_backward(x, w, b, mean, var, cotangent, training=training)
    _assert_same_gradients(reference, expected)


def test_layer_norm_reference_matches_torch():
    x, (w, b) = randn(2, 5, 3, 4, seed=84), _params((3, 4), seed=85)
    expected, cotangent = _torch_grads(lambda x, w, b: TF.layer_norm(x, (3, 4), w, b, 0.1),
                                       x, w, b)
    reference = layer_norm_reference_backward(x, w, b, cotangent, normalized_ndim=2, eps=0.1)
    _assert_same_gradients(reference, expected)


def test_group_norm_reference_matches_torch():
    x, (w, b) = randn(3, 6, 2, 3, seed=86), _params((6,), seed=87)
    expected, cotangent = _torch_grads(lambda x, w, b: TF.group_norm(x, 3, w, b), x, w, b)
    reference = group_norm_reference_backward(x, w, b, cotangent, num_groups=3)
    _assert_same_gradients(reference, expected)


# ---------------------------------------------------------------- fused vs composed
def _composed_normalize(x, dims, eps):
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, unbiased=False, keepdim=True)
    return (x - mean) / (var + eps).sqrt()


def _composed_layer_norm(x, w, b):
    return _composed_normalize(x, (-2, -1), 1e-5) * w + b


def _composed_batch_norm(x, w, b):
    c = (1, x.shape[1], 1, 1)
    return _composed_normalize(x, (0, 2, 3), 1e-5) * w.reshape(c) + b.reshape(c)


def _composed_group_norm(x, w, b):
    n, c = x.shape[0], x.shape[1]
    y = _composed_normalize(x.reshape(n, 2, -1), -1, 1e-5).reshape(x.shape)
    return y * w.reshape(1, c, 1, 1) + b.reshape(1, c, 1, 1)


@pytest.mark.parametrize("fused, composed, shape, param_shape", [
    (lambda x, w, b: F.layer_norm(x, (3, 4), w, b), _composed_layer_norm, (2, 5, 3, 4), (3, 4)),
    (lambda x, w, b: F.batch_norm(x, None, None, w, b, True), _composed_batch_norm,
     (4, 3, 2, 5), (3,)),
    (lambda x, w, b: F.group_norm(x, 2, w, b), _composed_group_norm, (3, 4, 2, 3), (4,)),
])
def test_fused_norms_equal_their_composition(fused, composed, shape, param_shape):
    arrays = [randn(*shape, seed=50), *_params(param_shape, seed=51)]
    cotangent = rg.tensor(randn(*shape, seed=53))

    def run(fn):
        ts = [rg.tensor(a, requires_grad=True) for a in arrays]
        y = fn(*ts)
        y.backward(cotangent)
        return [y.detach().numpy()] + [t.grad.numpy() for t in ts]

    for got, expected in zip(run(fused), run(composed)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn, name", [
    (lambda x: F.layer_norm(x, (4,)), "LayerNormBackward"),
    (lambda x: F.batch_norm(x, None, None, training=True), "BatchNormBackward"),
    (lambda x: F.group_norm(x, 1), "GroupNormBackward"),
])
def test_norms_are_one_node_and_refuse_double_backward(fn, name):
    x = rg.tensor(randn(3, 2, 4, seed=54), requires_grad=True)
    y = fn(x)
    assert y.grad_fn.name() == name
    (gx,) = rg.autograd.grad((y * y).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=name):
        gx.sum().backward()


def test_norms_keep_float32_end_to_end():
    x = rg.randn(4, 3, 5, requires_grad=True)
    w, b = rg.ones(3, requires_grad=True), rg.zeros(3, requires_grad=True)
    for y in (F.batch_norm(x, None, None, w, b, True), F.group_norm(x, 3, w, b),
              F.layer_norm(x.transpose(1, 2), (3,), w, b)):
        assert y.dtype == rg.float32
        y.sum().backward()
    assert {t.grad.dtype for t in (x, w, b)} == {rg.float32}


@pytest.mark.parametrize("fn, torch_fn", [
    (lambda x: F.layer_norm(x, (5,)), lambda x: TF.layer_norm(x, (5,))),
    (lambda x: F.batch_norm(x, None, None, training=True),
     lambda x: TF.batch_norm(x, None, None, training=True)),
    (lambda x: F.group_norm(x, 1), lambda x: TF.group_norm(x, 1)),
])
def test_norms_of_constant_groups_match_torch(fn, torch_fn):
    # var = 0: x_hat = 0 and rstd = 1 / sqrt(eps), yet dL/dx = rstd (g - mean(g)) is not 0
    out = check_op(fn, torch_fn, np.full((2, 5), 3.0), gradcheck=False, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(out[0].detach().numpy(), 0.0)


@pytest.mark.parametrize("fn", [
    lambda x: F.layer_norm(x, (4,)),
    lambda x: F.batch_norm(x, None, None, training=True),
    lambda x: F.group_norm(x, 1),
])
def test_norm_output_modified_in_place_is_reported(fn):
    # without weight and bias the output is the saved x_hat itself: changing it must not
    # silently change the gradient
    x = rg.randn(3, 2, 4, requires_grad=True)
    y = fn(x)
    z = y * 1.0
    with rg.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        (z + y).sum().backward()


# ---------------------------------------------------------------- errors
def test_batch_norm_training_with_one_value_per_channel_is_refused():
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(rg.randn(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel.*\(1, 3, 1, 1\)"):
        F.batch_norm(rg.randn(1, 3, 1, 1), None, None, training=True)
    # eval mode normalizes with running statistics, so one value is fine
    y = F.batch_norm(rg.randn(1, 3), rg.zeros(3), rg.ones(3), training=False)
    assert y.shape == (1, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"weight": rg.ones(4)}, r"weight of shape \(4,\) does not match the 3 channels .*\(2, 3, 5\)"),
    ({"bias": rg.ones(3, 1)}, r"bias of shape \(3, 1\) does not match the 3 channels"),
    ({"running_mean": rg.zeros(2), "running_var": rg.ones(3)},
     r"running_mean of shape \(2,\) does not match the 3 channels"),
    ({"weight": rg.ones(3, dtype=rg.float64)}, r"weight has dtype retrograd.float64 but the "
                                                r"input has dtype retrograd.float32"),
])
def test_batch_norm_argument_errors(kwargs, match):
    args = {"running_mean": None, "running_var": None, "training": True}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        F.batch_norm(rg.randn(2, 3, 5), **args)


def test_batch_norm_eval_needs_running_statistics():
    with pytest.raises(ValueError, match="running_mean and running_var must be given"):
        F.batch_norm(rg.randn(2, 3), None, None, training=False)


def test_norms_refuse_inputs_that_are_too_small_or_not_floating():
    with pytest.raises(ValueError, match=r"batch_norm: expected an input with at least 2 dims, "
                                         r"got input of shape \(3,\)"):
        F.batch_norm(rg.randn(3), None, None, training=True)
    with pytest.raises(TypeError, match=r"group_norm: expected a floating-point input, got "
                                        r"dtype retrograd.int64"):
        F.group_norm(rg.tensor([[1, 2]]), 1)


@pytest.mark.parametrize("shape, normalized, match", [
    ((2, 3, 4), (3,), r"normalized_shape \(3,\) does not match the last 1 dims of the input of "
                      r"shape \(2, 3, 4\)"),
    ((2, 3, 4), (2, 4), r"normalized_shape \(2, 4\) does not match the last 2 dims"),
    ((4,), (2, 4), r"layer_norm: expected an input with at least 2 dims, got input of shape"),
    ((2, 3), (0,), r"normalized_shape must be a positive int"),
])
def test_layer_norm_normalized_shape_errors(shape, normalized, match):
    with pytest.raises(ValueError, match=match):
        F.layer_norm(rg.randn(*shape), normalized)


def test_layer_norm_weight_shape_error():
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) does not match normalized_shape "
                                         r"\(4,\)"):
        F.layer_norm(rg.randn(2, 4), (4,), rg.ones(3))


@pytest.mark.parametrize("groups, match", [
    (4, r"the number of channels 6 \(input of shape \(2, 6, 3\)\) must be divisible by "
        r"num_groups=4"),
    (0, r"num_groups must be a positive int"),
])
def test_group_norm_channels_not_divisible_by_groups(groups, match):
    with pytest.raises(ValueError, match=match):
        F.group_norm(rg.randn(2, 6, 3), groups)


def test_group_norm_weight_shape_error():
    with pytest.raises(ValueError, match=r"group_norm: weight of shape \(3,\) does not match the "
                                         r"6 channels"):
        F.group_norm(rg.randn(2, 6, 3), 2, rg.ones(3))


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
def test_norms_keep_low_precision_dtypes(dtype):
    x = rg.tensor(randn(4, 6, 5, seed=60)).to(dtype).requires_grad_()
    w = rg.ones(6, dtype=dtype, requires_grad=True)
    for y in (F.batch_norm(x, None, None, w, w, True),
              F.batch_norm(x, rg.zeros(6), rg.ones(6), w, w, False),
              F.group_norm(x, 2, w, w), F.layer_norm(x, (5,))):
        assert y.dtype == dtype
        y.float().sum().backward()
    assert x.grad.dtype == dtype and w.grad.dtype == dtype
