"""F.pixel_shuffle, F.pixel_unshuffle (retrograd/nn/functional/pixel_shuffle.py) and the
PixelShuffle/PixelUnshuffle layers (retrograd/nn/pixelshuffle.py) against PyTorch: outputs
and gradients (they are a reshape and a permute, so the gradient is the inverse
rearrangement), finite differences, leading batch dims, other dtypes, and the errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import GRADCHECK_TOLERANCES, check_op, randn


@pytest.mark.parametrize("shape, factor", [((2, 8, 3, 4), 2), ((1, 9, 2, 2), 3), ((4, 2, 2), 1),
                                           ((2, 3, 12, 2, 3), 2)])
def test_pixel_shuffle_matches_torch(shape, factor):
    check_op(lambda x: F.pixel_shuffle(x, factor),
             lambda x: torch.nn.functional.pixel_shuffle(x, factor), randn(*shape, seed=1))


def test_pixel_shuffle_of_an_empty_batch():
    # (PyTorch's backward of an empty batch fails on a shape check; ours returns zeros)
    x = rg.zeros(0, 4, 2, 2, requires_grad=True)
    y = F.pixel_shuffle(x, 2)
    assert y.shape == tuple(torch.nn.functional.pixel_shuffle(torch.zeros(0, 4, 2, 2), 2).shape)
    y.sum().backward()
    assert x.grad.shape == (0, 4, 2, 2)


@pytest.mark.parametrize("shape, factor", [((2, 2, 6, 4), 2), ((1, 1, 6, 9), 3), ((3, 2, 2), 1),
                                           ((2, 3, 2, 4, 6), 2)])
def test_pixel_unshuffle_matches_torch(shape, factor):
    check_op(lambda x: F.pixel_unshuffle(x, factor),
             lambda x: torch.nn.functional.pixel_unshuffle(x, factor), randn(*shape, seed=2))


def test_pixel_shuffle_places_each_channel_in_its_sub_pixel():
    x = rg.arange(8.0).reshape(1, 8, 1, 1)
    # channels c*4 + i*2 + j go to (c, i, j)
    assert F.pixel_shuffle(x, 2).tolist() == [[[[0.0, 1.0], [2.0, 3.0]], [[4.0, 5.0],
                                                                           [6.0, 7.0]]]]


def test_unshuffle_inverts_shuffle_and_double_backward_works():
    x = rg.tensor(randn(2, 12, 3, 2, seed=3), requires_grad=True)
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).detach().numpy(),
                                  x.detach().numpy())
    g = rg.tensor(randn(2, 3, 6, 4, seed=4), requires_grad=True)
    rg.autograd.gradgradcheck(lambda t: F.pixel_shuffle(t, 2) ** 2, [x], [g],
                              **GRADCHECK_TOLERANCES)


def test_pixel_shuffle_layers_match_torch_and_keep_integer_dtypes():
    assert repr(rg.nn.PixelShuffle(2)) == repr(torch.nn.PixelShuffle(2))
    assert repr(rg.nn.PixelUnshuffle(3)) == repr(torch.nn.PixelUnshuffle(3))
    ints = np.arange(2 * 9 * 2 * 3).reshape(2, 9, 2, 3)
    ours = rg.nn.PixelShuffle(3)(rg.tensor(ints))
    assert ours.dtype == rg.int64
    np.testing.assert_array_equal(ours.numpy(), torch.nn.PixelShuffle(3)(torch.tensor(ints)))
    back = rg.nn.PixelUnshuffle(3)(ours)
    np.testing.assert_array_equal(back.numpy(), ints)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.pixel_shuffle(rg.ones(1, 7, 2, 2), 2), RuntimeError,
     r"input.size\(-3\)=7 is not divisible by 4"),
    (lambda: F.pixel_shuffle(rg.ones(4, 2), 2), RuntimeError,
     "at least 3 dimensions, but got input with 2"),
    (lambda: F.pixel_shuffle(rg.ones(4, 2, 2), 0), RuntimeError, "positive upscale_factor"),
    (lambda: F.pixel_shuffle(rg.ones(4, 2, 2), 2.0), TypeError, "must be an int"),
    (lambda: F.pixel_unshuffle(rg.ones(1, 3, 5, 4), 2), RuntimeError,
     r"height to be divisible by downscale_factor, but input.size\(-2\)=5"),
    (lambda: F.pixel_unshuffle(rg.ones(1, 3, 4, 5), 2), RuntimeError,
     r"width to be divisible by downscale_factor, but input.size\(-1\)=5"),
    (lambda: rg.nn.PixelShuffle(2)(rg.ones(1, 6, 2, 2)), RuntimeError,
     r"^PixelShuffle\(upscale_factor=2\): expects its input's 'channel' dimension"),
])
def test_pixel_shuffle_errors_are_torch_s(call, error, message):
    with pytest.raises(error, match=message):
        call()
