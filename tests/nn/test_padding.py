"""The padding layers (retrograd/nn/padding.py) against torch.nn: every class in 1-D, 2-D and
3-D with an int and a tuple padding, outputs and gradients, repr, and their errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import randn, to_torch

# (class name, constructor args, input shape)
LAYERS = [
    ("ZeroPad1d", (2,), (2, 3, 5)), ("ZeroPad2d", ((1, 2, 0, 3),), (2, 3, 4, 5)),
    ("ZeroPad3d", (1,), (1, 2, 3, 4, 5)),
    ("ConstantPad1d", ((1, 2), 3.5), (2, 3, 5)), ("ConstantPad2d", (2, -1.0), (3, 4, 5)),
    ("ConstantPad3d", ((1, 0, 0, 2, 1, 1), 0.5), (1, 2, 3, 4, 5)),
    ("ReflectionPad1d", ((3, 1),), (2, 3, 5)), ("ReflectionPad2d", (2,), (2, 3, 4, 5)),
    ("ReflectionPad2d", ((1, 3, 2, 0),), (3, 4, 5)),
    ("ReflectionPad3d", ((1, 2, 0, 1, 2, 2),), (1, 2, 3, 4, 5)),
    ("ReplicationPad1d", ((4, 0),), (2, 3, 5)), ("ReplicationPad2d", (3,), (2, 3, 4, 5)),
    ("ReplicationPad3d", (1,), (2, 3, 4, 5)),
    ("CircularPad1d", ((2, 1),), (2, 3, 5)), ("CircularPad2d", ((1, 2, 3, 4),), (2, 3, 4, 5)),
    ("CircularPad3d", (1,), (1, 2, 3, 4, 5)),
    ("ZeroPad2d", ((1, 2),), (2, 3, 4, 5)),        # a short tuple pads the last dim only
]


@pytest.mark.parametrize("name, args, x_shape", LAYERS)
def test_padding_layer_matches_torch(name, args, x_shape):
    ours, theirs = getattr(rg.nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    x = randn(*x_shape, seed=1)
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    ry, ty = ours(rx), theirs(tx)
    np.testing.assert_array_equal(ry.detach().numpy(), ty.detach().numpy())
    cotangent = randn(*ty.shape, seed=2)
    ry.backward(rg.tensor(cotangent))
    ty.backward(to_torch(cotangent))
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-14, atol=1e-15)
    assert list(ours.state_dict()) == []


def test_padding_layer_errors_name_the_layer():
    with pytest.raises(RuntimeError, match=r"^ReflectionPad1d\(\(5, 5\)\): reflect padding "
                                           r"size should be less than"):
        rg.nn.ReflectionPad1d(5)(rg.ones(2, 3, 5))
    with pytest.raises(ValueError, match=r"CircularPad2d\(\(1, 1, 1, 1\)\): expected 3D or 4D "
                                         r"input \(got 5D input"):
        rg.nn.CircularPad2d(1)(rg.ones(1, 2, 3, 4, 5))
    with pytest.raises(TypeError, match="ZeroPad2d: padding must be an int or a tuple of 4"):
        rg.nn.ZeroPad2d(1.5)
