"""Upsample, UpsamplingNearest2d, UpsamplingBilinear2d (retrograd/nn/upsampling.py) and the
deprecated F.upsample* against torch.nn: outputs and gradients, repr, stored arguments,
warnings, and errors naming the layer."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import randn, to_torch

# (class name, constructor kwargs, input shape)
LAYERS = [
    ("Upsample", dict(scale_factor=2), (2, 3, 4, 5)),
    ("Upsample", dict(scale_factor=1.5, mode="linear"), (2, 3, 5)),
    ("Upsample", dict(size=(7, 3), mode="bilinear", align_corners=True), (2, 3, 4, 5)),
    ("Upsample", dict(scale_factor=(1.5, 0.5), mode="bilinear"), (2, 3, 4, 6)),
    ("Upsample", dict(scale_factor=1.5, mode="bilinear", recompute_scale_factor=True),
     (2, 3, 4, 5)),
    ("Upsample", dict(size=9, mode="nearest-exact"), (2, 3, 5)),
    ("Upsample", dict(scale_factor=2, mode="bicubic"), (1, 2, 3, 4)),
    ("Upsample", dict(scale_factor=2, mode="trilinear"), (1, 2, 2, 3, 4)),
    ("UpsamplingNearest2d", dict(scale_factor=3), (2, 3, 4, 5)),
    ("UpsamplingNearest2d", dict(size=(5, 7)), (2, 3, 4, 5)),
    ("UpsamplingBilinear2d", dict(scale_factor=2), (2, 3, 4, 5)),
    ("UpsamplingBilinear2d", dict(size=(3, 9)), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("name, kwargs, x_shape", LAYERS)
def test_upsampling_layer_matches_torch(name, kwargs, x_shape):
    ours, theirs = getattr(rg.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ours) == repr(theirs)
    assert (ours.size, ours.scale_factor, ours.mode, ours.align_corners) == \
        (theirs.size, theirs.scale_factor, theirs.mode, theirs.align_corners)
    x = randn(*x_shape, seed=1)
    rx, tx = rg.tensor(x, requires_grad=True), to_torch(x).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch's Upsampling*2d may warn as deprecated
        ry, ty = ours(rx), theirs(tx)
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-12,
                               atol=1e-13)
    cotangent = randn(*ty.shape, seed=2)
    ry.backward(rg.tensor(cotangent))
    ty.backward(to_torch(cotangent))
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-13)


def test_upsampling_bilinear2d_aligns_the_corners():
    x = rg.tensor([[[[0.0, 3.0]]]])
    assert rg.nn.UpsamplingBilinear2d(size=(1, 4))(x).tolist() == [[[[0.0, 1.0, 2.0, 3.0]]]]
    assert rg.nn.Upsample(size=(1, 4), mode="bilinear")(x).tolist() == \
        [[[[0.0, 0.75, 2.25, 3.0]]]]


@pytest.mark.parametrize("name, kwargs", [
    ("upsample", dict(scale_factor=2, mode="bilinear")), ("upsample_nearest", dict(size=(3, 7))),
    ("upsample_bilinear", dict(scale_factor=1.5)),
])
def test_deprecated_functions_warn_and_match_torch(name, kwargs):
    x = randn(1, 2, 3, 4, seed=3)
    with pytest.warns(UserWarning, match=f"nn.functional.{name}` is deprecated"):
        ours = getattr(F, name)(rg.tensor(x), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = getattr(torch.nn.functional, name)(to_torch(x), **kwargs)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)


def test_upsampling_errors_name_the_layer():
    with pytest.raises(NotImplementedError, match=r"^Upsample\(scale_factor=2.0, "
                                                  r"mode='bilinear'\): got 3D input"):
        rg.nn.Upsample(scale_factor=2, mode="bilinear")(rg.ones(1, 2, 3))
    with pytest.raises(ValueError, match=r"^Upsample\(size=3, mode='nearest'\): "
                                         r"align_corners option"):
        rg.nn.Upsample(size=3, align_corners=True)(rg.ones(1, 2, 3))
