"""F.channel_shuffle and nn.ChannelShuffle against PyTorch: values, gradients (a reshape and a
transpose: also twice differentiable), integer inputs, and the errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradgradcheck
from tests.oracle import GRADCHECK_TOLERANCES, check_op, randn

TF = torch.nn.functional


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 2), 3), ((2, 4, 5), 2), ((1, 5, 2), 1)])
def test_channel_shuffle_matches_torch_and_finite_differences(shape, groups):
    check_op(lambda x: F.channel_shuffle(x, groups), lambda x: TF.channel_shuffle(x, groups),
             randn(*shape, seed=1))


def test_twice_differentiable_and_integer_inputs():
    x = rg.tensor(randn(1, 4, 3, seed=2), requires_grad=True)
    assert gradgradcheck(lambda t: F.channel_shuffle(t, 2) ** 2, [x], **GRADCHECK_TOLERANCES)
    ids = np.arange(12).reshape(1, 6, 2)
    np.testing.assert_array_equal(F.channel_shuffle(rg.tensor(ids), 3).numpy(),
                                  TF.channel_shuffle(torch.tensor(ids), 3).numpy())


def test_layer_matches_torch_and_its_repr():
    layer = rg.nn.ChannelShuffle(2)
    assert repr(layer) == repr(torch.nn.ChannelShuffle(2)) and not layer.state_dict()
    x = randn(2, 4, 3, 3, seed=3)
    np.testing.assert_array_equal(layer(rg.tensor(x)).numpy(),
                                  torch.nn.ChannelShuffle(2)(torch.tensor(x)).numpy())


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.channel_shuffle(rg.randn(2, 5, 3), 2), RuntimeError,
     "channel_shuffle: the number of channels must be divisible by groups, got 5 channels"),
    (lambda: F.channel_shuffle(rg.randn(2, 4), 2), RuntimeError, r"more than 2 dims.*\(2, 4\)"),
    (lambda: F.channel_shuffle(rg.randn(2, 4, 3), 0), RuntimeError,
     "must be positive, got groups=0"),
    (lambda: F.channel_shuffle(rg.randn(2, 4, 3), 2.0), TypeError, "groups must be an int"),
    (lambda: rg.nn.ChannelShuffle(3)(rg.randn(2, 4, 3)), RuntimeError,
     r"ChannelShuffle\(groups=3\): the number of channels"),
])
def test_errors_name_the_op_and_the_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()
