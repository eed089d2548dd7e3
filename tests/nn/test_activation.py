"""Activation layers (retrograd/nn/activation.py) against torch.nn: outputs and input
gradients, defaults, repr, no parameters, and the inplace flag."""

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import away_from_kinks, randn

LAYERS = [
    ("ReLU", {}), ("LeakyReLU", {}), ("LeakyReLU", {"negative_slope": 0.2}), ("GELU", {}),
    ("GELU", {"approximate": "tanh"}), ("Tanh", {}), ("Sigmoid", {}), ("Softmax", {"dim": 1}),
    ("Softmax", {"dim": -1}), ("LogSoftmax", {"dim": 1}), ("LogSoftmax", {"dim": 0}),
]


@pytest.mark.parametrize("name, kwargs", LAYERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_activation_layers_match_torch(name, kwargs, dtype):
    ours, theirs = getattr(rg.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.parameters()) == [] and ours.state_dict() == {}
    x = away_from_kinks(randn(4, 5, 3, seed=1) * 2).astype(dtype)
    c = randn(4, 5, 3, seed=2).astype(dtype)
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ry, ty = ours(rx), theirs(tx)
    ry.backward(rg.tensor(c))
    ty.backward(torch.tensor(c))
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), **tol)
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), **tol)
    assert ry.dtype == dtype and rx.grad.dtype == dtype


@pytest.mark.parametrize("name, kwargs", [("ReLU", {"inplace": True}),
                                          ("LeakyReLU", {"negative_slope": 0.3, "inplace": True})])
def test_inplace_activation_layers_match_torch(name, kwargs):
    ours, theirs = getattr(rg.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ours) == repr(theirs)
    x = away_from_kinks(randn(3, 4, seed=3))
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    rh, th = rx * 2.0, tx * 2.0
    assert ours(rh) is rh and theirs(th) is th
    (rh * rh).sum().backward()
    (th * th).sum().backward()
    np.testing.assert_allclose(rh.detach().numpy(), th.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def test_activation_layers_inside_a_module_tree():
    model = rg.nn.Sequential(rg.nn.Linear(3, 4), rg.nn.GELU(), rg.nn.Linear(4, 2),
                             rg.nn.LogSoftmax(dim=1))
    y = model(rg.randn(5, 3))
    np.testing.assert_allclose(np.exp(y.detach().numpy()).sum(1), 1.0, rtol=1e-6)
    assert "(1): GELU(approximate='none')" in repr(model)


def test_softmax_layer_without_dim_warns_like_torch():
    with pytest.warns(UserWarning, match="implicit dimension"):
        rg.nn.Softmax()(rg.randn(2, 3))
    assert repr(rg.nn.Softmax()) == repr(torch.nn.Softmax())
