"""nn.ConvTranspose1d and nn.ConvTranspose2d against torch.nn: outputs and every gradient with
torch's weights loaded through its state dict, parameter names and shapes, forward's
output_size, the default init (PyTorch's fan for a transposed weight), repr, and errors."""

import math

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import randn, to_torch

# (class name, constructor args, constructor kwargs, input shape, forward's output_size)
LAYERS = [
    ("ConvTranspose2d", (3, 4, 3), {}, (2, 3, 5, 5), None),
    ("ConvTranspose2d", (8, 4, 4), dict(stride=2, padding=1), (2, 8, 5, 6), None),
    ("ConvTranspose2d", (4, 6, (3, 2)), dict(stride=(2, 3), padding=(1, 0),
                                             output_padding=(1, 2), groups=2, bias=False),
     (2, 4, 5, 4), None),
    ("ConvTranspose2d", (4, 4, 3), dict(groups=4, dilation=2, padding=2), (2, 4, 5, 5), None),
    ("ConvTranspose2d", (3, 2, 3), dict(stride=2, padding=1), (2, 3, 4, 4), (8, 7)),
    ("ConvTranspose2d", (3, 2, 3), dict(stride=3), (3, 4, 4), [2, 13, 14]),   # unbatched
    ("ConvTranspose1d", (4, 6, 5), dict(stride=2, padding=2, output_padding=1), (2, 4, 9),
     None),
    ("ConvTranspose1d", (4, 4, 3), dict(groups=2, dilation=3, bias=False), (2, 4, 7), None),
    ("ConvTranspose1d", (2, 3, 4), dict(stride=2), (2, 6), (15,)),                # unbatched
    ("ConvTranspose1d", (2, 3, 4), dict(stride=3), (1, 2, 6), (1, 3, 19)),
]


def _pair(name, args, kwargs, dtype=torch.float64):
    theirs = getattr(torch.nn, name)(*args, **kwargs, dtype=dtype)
    ours = getattr(rg.nn, name)(*args, **kwargs, dtype=rg.float64 if dtype == torch.float64
                                else rg.float32)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("name, args, kwargs, x_shape, output_size", LAYERS)
def test_conv_transpose_layer_matches_torch_output_and_all_gradients(name, args, kwargs,
                                                                     x_shape, output_size):
    ours, theirs = _pair(name, args, kwargs)
    x = randn(*x_shape, seed=1)
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    ry, ty = ours(rx, output_size=output_size), theirs(tx, output_size=output_size)
    assert ry.shape == tuple(ty.shape)
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-13)
    cotangent = randn(*ty.shape, seed=2)
    ry.backward(rg.tensor(cotangent))
    ty.backward(to_torch(cotangent))
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    theirs_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(theirs_params)
    for n, p in ours.named_parameters():
        assert p.shape == tuple(theirs_params[n].shape)
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[n].grad.numpy(), rtol=1e-11,
                                   atol=1e-12, err_msg=n)


@pytest.mark.parametrize("name, args, kwargs, x_shape, output_size", LAYERS)
def test_conv_transpose_layer_repr_and_state_dict_are_torchs(name, args, kwargs, x_shape,
                                                             output_size):
    ours, theirs = _pair(name, args, kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        assert ours.state_dict()[key].shape == tuple(value.shape)


def test_conv_transpose_float32_layer_matches_torch():
    ours, theirs = _pair("ConvTranspose2d", (6, 3, 3), dict(stride=2, padding=1,
                                                            output_padding=1), torch.float32)
    x = randn(2, 6, 8, 8, seed=3).astype(np.float32)
    y = ours(rg.tensor(x))
    assert y.dtype == rg.float32 and ours.weight.shape == (6, 3, 3, 3)
    np.testing.assert_allclose(y.detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)


def test_conv_transpose_gradcheck_through_the_module():
    layer = rg.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1,
                                  dtype=rg.float64)
    x = rg.tensor(randn(1, 2, 3, 3, seed=4), requires_grad=True)
    rg.autograd.gradcheck(lambda t: layer(t), [x], eps=1e-6, atol=1e-7, rtol=1e-5)


def test_an_encoder_decoder_round_trip_matches_torch():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
                                 torch.nn.ConvTranspose2d(8, 3, 3, stride=2, padding=1,
                                                          output_padding=1)).double()
    ours = rg.nn.Sequential(rg.nn.Conv2d(3, 8, 3, stride=2, padding=1), rg.nn.ReLU(),
                            rg.nn.ConvTranspose2d(8, 3, 3, stride=2, padding=1,
                                                  output_padding=1)).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = randn(2, 3, 8, 8, seed=5)
    loss_t = ((theirs(to_torch(x)) - to_torch(x)) ** 2).mean()
    loss_r = ((ours(rg.tensor(x)) - rg.tensor(x)) ** 2).mean()
    loss_t.backward()
    loss_r.backward()
    assert np.isclose(loss_r.item(), loss_t.item(), rtol=1e-12)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=name)


# ---------------------------------------------------------------------------- init
@pytest.mark.parametrize("name, args, fan_in", [
    # PyTorch's fan_in of a transposed weight (Ci, Co/g, *k) is weight.shape[1] * prod(k)
    ("ConvTranspose2d", (64, 32, 3), 288), ("ConvTranspose2d", (32, 64, 4, 2, 1, 0, 4), 256),
    ("ConvTranspose1d", (2000, 16, 7), 112),
])
def test_conv_transpose_default_init_is_uniform_with_bound_one_over_sqrt_fan_in(name, args,
                                                                                fan_in):
    layer = getattr(rg.nn, name)(*args, dtype=rg.float64)
    bound = 1 / math.sqrt(fan_in)
    for values in (layer.weight.detach().numpy().ravel(), layer.bias.detach().numpy()):
        n = values.size
        assert values.min() >= -bound and values.max() <= bound
        assert values.max() > bound * (1 - 20 / n) and values.min() < -bound * (1 - 20 / n)
        assert abs(values.mean()) < 5 * bound / math.sqrt(3 * n)
    theirs = getattr(torch.nn, name)(*args)
    assert tuple(theirs.weight.shape) == layer.weight.shape
    assert theirs.weight.abs().max().item() <= bound


# ---------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, call, error, message", [
    (lambda: rg.nn.ConvTranspose2d(3, 8, 3), lambda m: m(rg.ones(2, 4, 5, 5)), RuntimeError,
     r"^ConvTranspose2d\(3, 8, kernel_size=\(3, 3\), stride=\(1, 1\)\): weight of size "
     r"\(3, 8, 3, 3\) \(in_channels first\) expects input with 3 channels, but got input of "
     r"shape \(2, 4, 5, 5\)$"),
    (lambda: rg.nn.ConvTranspose2d(3, 8, 3, stride=2), lambda m: m(rg.ones(1, 3, 4, 4),
                                                                   output_size=(11, 9)),
     ValueError, r"requested an output size of \(11, 9\), but valid sizes range from \(9, 9\) "
                 r"to \(10, 10\) \(for an input of \(4, 4\)\)"),
    (lambda: rg.nn.ConvTranspose2d(3, 8, 3, stride=2), lambda m: m(rg.ones(1, 3, 4, 4),
                                                                   output_size=(9,)),
     ValueError, r"for 4D input, output_size must have 2 or 4 ints"),
    (lambda: rg.nn.ConvTranspose2d(3, 8, 3, output_padding=1), lambda m: m(rg.ones(1, 3, 4, 4)),
     RuntimeError, "output padding must be smaller than either stride or dilation"),
    (lambda: rg.nn.ConvTranspose1d(3, 8, 3), lambda m: m(rg.ones(1, 3, 4, 4)), ValueError,
     r"expected a 2-D \(unbatched\) or 3-D \(batched\) input"),
])
def test_conv_transpose_layer_errors_name_the_layer(make, call, error, message):
    with pytest.raises(error, match=message):
        call(make())


@pytest.mark.parametrize("make, message", [
    (lambda: rg.nn.ConvTranspose2d(3, 8, 3, groups=2), "in_channels=3 must be divisible by "
                                                       "groups=2"),
    (lambda: rg.nn.ConvTranspose2d(4, 6, 3, padding="same"), "padding='same' is not supported"),
    (lambda: rg.nn.ConvTranspose2d(4, 6, 3, padding_mode="reflect"),
     'only "zeros" padding mode is supported'),
    (lambda: rg.nn.ConvTranspose2d(4, 6, 3, output_padding=-1), "output_padding must be >= 0"),
])
def test_conv_transpose_layer_constructor_errors(make, message):
    with pytest.raises(ValueError, match=message):
        make()
