"""nn.Conv1d and nn.Conv2d against torch.nn: outputs and every gradient with torch's weights
copied in, parameter names, shapes, default init, repr, and the layers' error messages."""

import math

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import check_op, randn, to_torch

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

# (class name, constructor args, constructor kwargs, input shape)
LAYERS = [
    ("Conv2d", (3, 8, 3), dict(padding=1), (2, 3, 9, 8)),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=2, dilation=(1, 2), groups=2, bias=False),
     (2, 4, 9, 9)),
    ("Conv2d", (4, 8, 3), dict(padding="same", groups=4), (2, 4, 7, 6)),   # depthwise x2
    ("Conv2d", (4, 6, 4), dict(padding="same", dilation=1), (1, 4, 7, 6)),  # even: asymmetric
    ("Conv2d", (3, 5, 1), {}, (2, 3, 6, 6)),
    ("Conv2d", (3, 5, 3), dict(stride=(2, 3), padding="valid"), (3, 10, 11)),  # unbatched
    ("Conv1d", (4, 6, 5), dict(stride=2, padding=2), (2, 4, 17)),
    ("Conv1d", (4, 4, 3), dict(padding="same", groups=4, bias=False), (2, 4, 9)),
    ("Conv1d", (2, 3, 2), dict(dilation=3), (2, 9)),                          # unbatched
]


def _pair(name, args, kwargs, dtype=torch.float64):
    theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=dtype)
    ours = getattr(rg.nn, name)(*args, **kwargs, dtype=rg.float64 if dtype == torch.float64
                                else rg.float32)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("name, args, kwargs, x_shape", LAYERS)
def test_conv_layer_matches_torch_output_and_all_gradients(name, args, kwargs, x_shape):
    ours, theirs = _pair(name, args, kwargs)
    x = randn(*x_shape, seed=1)
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    ry, ty = ours(rx), theirs(tx)
    assert ry.shape == tuple(ty.shape)
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-13)
    cotangent = randn(*ty.shape, seed=2)
    ry.backward(rg.tensor(cotangent))
    ty.backward(to_torch(cotangent))
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-13)
    theirs_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(theirs_params)
    for n, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[n].grad.numpy(), rtol=1e-11,
                                   atol=1e-12, err_msg=n)


@pytest.mark.parametrize("name, args, kwargs, x_shape", LAYERS)
def test_conv_layer_repr_and_state_dict_are_torchs(name, args, kwargs, x_shape):
    ours, theirs = _pair(name, args, kwargs)
    assert repr(ours) == repr(theirs)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for k in ours_sd:
        assert tuple(ours_sd[k].shape) == tuple(theirs_sd[k].shape), k


def test_conv2d_float32_layer_matches_torch():
    ours, theirs = _pair("Conv2d", (8, 16, 3), dict(padding=1, stride=2), dtype=torch.float32)
    # output and input gradient for a random cotangent (check_op), then the parameters'
    (ry,) = check_op(ours, theirs, randn(4, 8, 15, 15, seed=3), dtype=np.float32, rtol=1e-5,
                     atol=1e-5)
    assert ry.dtype == rg.float32 and ours.weight.dtype == rg.float32
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.grad.dtype == rg.float32, name
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-4,
                                   atol=1e-4, err_msg=name)


def test_conv2d_gradcheck_through_the_module():
    layer = rg.nn.Conv2d(2, 3, (3, 2), stride=(2, 1), padding=1, dtype=rg.float64)
    x = rg.tensor(randn(2, 2, 5, 4, seed=4), requires_grad=True)
    assert rg.autograd.gradcheck(layer, [x], atol=1e-7, rtol=1e-6)


def test_small_cnn_matches_torch_end_to_end():
    """conv -> relu -> max pool -> conv (groups) -> avg pool -> adaptive pool -> linear."""
    def build(nn, **kw):
        return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2, **kw), nn.MaxPool2d(2),
                             nn.Conv2d(6, 8, 3, groups=2, **kw), nn.AvgPool2d(2, ceil_mode=True),
                             nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Linear(32, 10, **kw))
    theirs, ours = build(torch.nn, dtype=torch.float64), build(rg.nn, dtype=rg.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = randn(4, 1, 14, 14, seed=5)
    ry = ours(rg.tensor(x))
    ty = theirs(to_torch(x))
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-11, atol=1e-12)
    (ry * ry).sum().backward()
    (ty * ty).sum().backward()
    theirs_params = dict(theirs.named_parameters())
    for n, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[n].grad.numpy(), rtol=1e-10,
                                   atol=1e-12, err_msg=n)


@pytest.mark.parametrize("name, args, kwargs, x_shape", [
    ("Conv2d", (3, 4, 3), dict(padding=1, padding_mode="reflect"), (2, 3, 6, 5)),
    ("Conv2d", (3, 4, 3), dict(padding=(2, 1), stride=2, padding_mode="replicate"),
     (2, 3, 6, 5)),
    ("Conv2d", (3, 4, 4), dict(padding="same", padding_mode="circular"), (2, 3, 6, 5)),
    ("Conv2d", (3, 4, 3), dict(padding=1, padding_mode="reflect"), (3, 6, 5)),   # unbatched
    ("Conv1d", (3, 4, 5), dict(padding=2, dilation=2, padding_mode="circular"), (2, 3, 9)),
    ("Conv1d", (3, 4, 3), dict(padding="same", padding_mode="reflect"), (3, 7)),
])
def test_conv_padding_modes_match_torch(name, args, kwargs, x_shape):
    ours, theirs = _pair(name, args, kwargs)
    assert repr(ours) == repr(theirs)
    assert ours._reversed_padding_repeated_twice == tuple(theirs._reversed_padding_repeated_twice)
    check_op(ours, theirs, randn(*x_shape, seed=11))


# ---------------------------------------------------------------------------- init
@pytest.mark.parametrize("name, args, fan_in", [
    ("Conv2d", (64, 64, 3), 576), ("Conv2d", (32, 64, 3, 1, 1, 1, 4), 72),
    ("Conv1d", (16, 2000, 7), 112),
])
def test_conv_default_init_is_uniform_with_bound_one_over_sqrt_fan_in(name, args, fan_in):
    layer = getattr(rg.nn, name)(*args, dtype=rg.float64)
    bound = 1 / math.sqrt(fan_in)
    for values in (layer.weight.detach().numpy().ravel(), layer.bias.detach().numpy()):
        n = values.size
        assert values.min() >= -bound and values.max() <= bound
        assert values.max() > bound * (1 - 20 / n) and values.min() < -bound * (1 - 20 / n)
        assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
        var_tolerance = 5 * math.sqrt(4 / 45) * bound ** 2 / math.sqrt(n)
        assert abs(values.var() - bound ** 2 / 3) < var_tolerance


def test_conv_init_is_reproducible_under_manual_seed_and_float32_by_default():
    rg.manual_seed(7)
    a = rg.nn.Conv2d(3, 4, 3)
    rg.manual_seed(7)
    b = rg.nn.Conv2d(3, 4, 3)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    assert a.weight.dtype == rg.float32 and a.weight.shape == (4, 3, 3, 3)


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, x_shape, dtype, error, message", [
    (lambda: rg.nn.Conv2d(3, 8, 3), (2, 4, 8, 8), np.float32, ValueError,
     r"^Conv2d\(3, 8, kernel_size=\(3, 3\), stride=\(1, 1\)\): expected input with 3 "
     r"channels \(weight shape \(8, 3, 3, 3\), groups=1\), got input of shape \(2, 4, 8, 8\)$"),
    (lambda: rg.nn.Conv2d(3, 8, 3), (4, 8, 8), np.float32, ValueError,
     r"expected input with 3 channels \(weight shape \(8, 3, 3, 3\), groups=1\), got input of "
     r"shape \(4, 8, 8\)"),
    (lambda: rg.nn.Conv2d(3, 8, 3), (8, 8), np.float32, ValueError,
     r"Conv2d\(3, 8, .*\): expected a 3-D \(unbatched\) or 4-D \(batched\) input, got input "
     r"of shape \(8, 8\)"),
    (lambda: rg.nn.Conv1d(3, 8, 3), (2, 3, 8, 8), np.float32, ValueError,
     r"Conv1d\(3, 8, kernel_size=\(3,\), stride=\(1,\)\): expected a 2-D \(unbatched\) or "
     r"3-D \(batched\) input"),
    (lambda: rg.nn.Conv2d(3, 8, 3), (2, 3, 8, 8), np.float64, TypeError,
     r"^Conv2d\(3, 8, kernel_size=\(3, 3\), stride=\(1, 1\)\): expected floating input, weight "
     r"\(and bias\) of one dtype, got input dtype retrograd.float64, weight dtype "
     r"retrograd.float32, bias dtype retrograd.float32 \(input of shape \(2, 3, 8, 8\)\); "
     r"convert one of them$"),
    (lambda: rg.nn.Conv2d(3, 8, 5), (2, 3, 4, 4), np.float32, ValueError,
     r"^Conv2d\(3, 8, kernel_size=\(5, 5\), stride=\(1, 1\)\): kernel size \(5, 5\) "
     r"\(dilated: \(5, 5\)\) is larger than the padded input \(4, 4\)"),
])
def test_conv_layer_input_errors_name_the_layer_and_the_shapes(make, x_shape, dtype, error,
                                                               message):
    layer = make()
    with pytest.raises(error, match=message):
        layer(rg.tensor(np.zeros(x_shape, dtype=dtype)))


@pytest.mark.parametrize("make, message", [
    (lambda: rg.nn.Conv2d(3, 8, 3, groups=2), r"Conv2d: in_channels=3 must be divisible by "
                                               r"groups=2"),
    (lambda: rg.nn.Conv2d(4, 6, 3, groups=4), r"Conv2d: out_channels=6 must be divisible by "
                                               r"groups=4"),
    (lambda: rg.nn.Conv2d(4, 6, 3, groups=0), r"groups must be an int >= 1"),
    (lambda: rg.nn.Conv2d(4, 6, 3, stride=2, padding="same"),
     r"padding='same' is not supported for strided convolutions"),
    (lambda: rg.nn.Conv2d(4, 6, 3, padding="full"),
     r"Conv2d: padding must be 'valid' or 'same', got 'full'"),
    (lambda: rg.nn.Conv2d(4, 6, (3, 3, 3)), r"kernel_size must be an int or a tuple of 2 ints"),
    (lambda: rg.nn.Conv2d(4, 6, 0), r"kernel_size must be >= 1"),
    (lambda: rg.nn.Conv2d(4, 6, 3, padding_mode="wrap"),
     r"padding_mode must be one of \('zeros', 'reflect', 'replicate', 'circular'\), but got "
     r"padding_mode='wrap'"),
])
def test_conv_layer_constructor_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
