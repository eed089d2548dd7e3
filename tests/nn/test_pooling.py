"""The pooling layers against torch.nn: outputs, input gradients, repr, no parameters."""

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import randn, to_torch

# (class name, constructor args, constructor kwargs, input shape)
LAYERS = [
    ("MaxPool2d", (2,), {}, (2, 3, 8, 7)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1, dilation=1, ceil_mode=True), (2, 3, 8, 7)),
    ("MaxPool2d", ((2, 3),), dict(stride=(1, 2), dilation=(2, 1)), (3, 8, 9)),  # unbatched
    ("AvgPool2d", (2,), {}, (2, 3, 8, 7)),
    ("AvgPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False),
     (2, 3, 8, 7)),
    ("AvgPool2d", ((3, 2),), dict(padding=(1, 0), divisor_override=5), (2, 3, 8, 7)),
    ("AdaptiveAvgPool2d", ((1, 1),), {}, (2, 3, 8, 7)),
    ("AdaptiveAvgPool2d", ((None, 3),), {}, (2, 3, 5, 7)),
    ("AdaptiveAvgPool2d", (4,), {}, (3, 6, 9)),
    ("MaxPool1d", (3,), dict(stride=2, padding=1), (2, 3, 11)),
    ("AvgPool1d", (4,), dict(stride=3, ceil_mode=True), (2, 3, 11)),
    ("AdaptiveAvgPool1d", (5,), {}, (3, 12)),
]


@pytest.mark.parametrize("name, args, kwargs, x_shape", LAYERS)
def test_pooling_layer_matches_torch(name, args, kwargs, x_shape):
    ours, theirs = getattr(rg.nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.parameters()) == [] and list(ours.state_dict()) == []
    x = randn(*x_shape, seed=1)
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    ry, ty = ours(rx), theirs(tx)
    assert ry.shape == tuple(ty.shape)
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    cotangent = randn(*ty.shape, seed=2)
    ry.backward(rg.tensor(cotangent))
    ty.backward(to_torch(cotangent))
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, x_shape", [("MaxPool2d", (2, 3, 8, 8)), ("MaxPool1d", (3, 9))])
def test_max_pool_layer_returns_torchs_indices(name, x_shape):
    x = randn(*x_shape, seed=3)
    (ry, ri) = getattr(rg.nn, name)(2, return_indices=True)(rg.tensor(x))
    (ty, ti) = getattr(torch.nn, name)(2, return_indices=True)(to_torch(x))
    np.testing.assert_array_equal(ry.numpy(), ty.numpy())
    np.testing.assert_array_equal(ri.numpy(), ti.numpy())
    assert ri.dtype == rg.int64


def test_pooling_layers_keep_float32():
    x = rg.tensor(randn(2, 3, 8, 8).astype(np.float32), requires_grad=True)
    for layer in (rg.nn.MaxPool2d(2), rg.nn.AvgPool2d(2), rg.nn.AdaptiveAvgPool2d(3)):
        y = layer(x)
        y.sum().backward()
        assert y.dtype == rg.float32 and x.grad.dtype == rg.float32


def test_pooling_layer_errors_come_from_the_functional_op_and_name_the_layer():
    with pytest.raises(ValueError, match=r"^MaxPool2d\(kernel_size=3, stride=3, padding=2, "
                                         r"dilation=1, ceil_mode=False\): padding \(2, 2\) must "
                                         r"be at most half"):
        rg.nn.MaxPool2d(3, padding=2)(rg.zeros(1, 1, 6, 6))
    with pytest.raises(ValueError, match=r"^AvgPool2d\(kernel_size=4, stride=4, padding=0\): "
                                         r"output size \(0, 0\) is too small"):
        rg.nn.AvgPool2d(4)(rg.zeros(1, 1, 3, 3))
