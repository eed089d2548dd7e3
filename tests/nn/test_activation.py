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
    ("SiLU", {}), ("Mish", {}), ("Softplus", {}), ("Softplus", {"beta": 2, "threshold": 1.5}),
    ("ELU", {}), ("ELU", {"alpha": 0.4}), ("Hardtanh", {}), ("Hardtanh", {"min_val": -2,
                                                                          "max_val": 0.5}),
    ("ReLU6", {}), ("LogSigmoid", {}),
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
                                          ("LeakyReLU", {"negative_slope": 0.3, "inplace": True}),
                                          ("SiLU", {"inplace": True}), ("Mish", {"inplace": True}),
                                          ("ELU", {"alpha": 0.5, "inplace": True}),
                                          ("Hardtanh", {"min_val": -0.5, "inplace": True}),
                                          ("ReLU6", {"inplace": True})])
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


@pytest.mark.parametrize("num_parameters, init", [(1, 0.25), (3, -0.1)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_prelu_layer_matches_torch_with_its_weight_gradient(num_parameters, init, dtype):
    torch_dtype = torch.float64 if dtype == np.float64 else torch.float32
    ours = rg.nn.PReLU(num_parameters, init, dtype=rg.float64 if dtype == np.float64 else None)
    theirs = torch.nn.PReLU(num_parameters, init, dtype=torch_dtype)
    assert repr(ours) == repr(theirs)
    assert [n for n, _ in ours.named_parameters()] == ["weight"] == list(theirs.state_dict())
    np.testing.assert_array_equal(ours.weight.detach().numpy(), theirs.weight.detach().numpy())
    ours.load_state_dict({"weight": randn(num_parameters, seed=4)})
    theirs.load_state_dict({"weight": torch.tensor(randn(num_parameters, seed=4))})
    x = away_from_kinks(randn(2, 3, 5, seed=5)).astype(dtype)
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    c = randn(2, 3, 5, seed=6).astype(dtype)
    ours(rx).backward(rg.tensor(c))
    theirs(tx).backward(torch.tensor(c))
    tol = {"rtol": 1e-10} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}
    np.testing.assert_allclose(ours(rx).detach().numpy(), theirs(tx).detach().numpy(), **tol)
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), **tol)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), **tol)
    assert ours.weight.dtype == dtype


def test_prelu_layer_trains_its_slopes():
    layer = rg.nn.PReLU(2)
    opt = rg.optim.SGD(layer.parameters(), lr=0.5)
    x = rg.tensor([[-1.0, -2.0], [-3.0, 4.0]])
    loss = (layer(x) - rg.tensor([[-0.5, -1.0], [-1.5, 4.0]])).pow(2).sum()
    loss.backward()
    opt.step()
    assert layer.weight.grad.shape == (2,) and (layer.weight.detach().numpy() != 0.25).all()
    with pytest.raises(ValueError, match="PReLU: num_parameters must be a positive int"):
        rg.nn.PReLU(0)


def test_hardtanh_layer_bounds_and_deprecated_names_like_torch():
    with pytest.warns(FutureWarning) as record:
        ours = rg.nn.Hardtanh(min_value=-3.0, max_value=2.0)
    assert [str(w.message) for w in record] == [
        f"Hardtanh: keyword argument `{old}` is deprecated and renamed to `{new}`"
        for old, new in (("min_value", "min_val"), ("max_value", "max_val"))]
    with pytest.warns(FutureWarning):
        theirs = torch.nn.Hardtanh(min_value=-3.0, max_value=2.0)
    assert repr(ours) == repr(theirs) == "Hardtanh(min_val=-3.0, max_val=2.0)"
    with pytest.raises(ValueError, match=r"Hardtanh: max_val \(1.0\) must be greater than "
                                         r"min_val \(1.0\)"):
        rg.nn.Hardtanh(1.0, 1.0)
    assert isinstance(rg.nn.ReLU6(), rg.nn.Hardtanh)
    assert (rg.nn.ReLU6().min_val, rg.nn.ReLU6().max_val) == (0.0, 6.0)
