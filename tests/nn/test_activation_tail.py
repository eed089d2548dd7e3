"""The activation tail's layers (GLU, Hardswish, Hardsigmoid, SELU, CELU, Softmin, Softsign,
Tanhshrink, Softshrink, Hardshrink, Threshold): PyTorch's constructor arguments, reprs and
attributes, outputs and input gradients equal to the torch layer's, in-place layers, and
errors naming the op."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd import nn
from tests.oracle import away_from_kinks, randn

# (constructor arguments, kwargs): the same for retrograd and torch
LAYERS = [
    ("GLU", (), {}), ("GLU", (0,), {}), ("Hardswish", (), {}), ("Hardswish", (True,), {}),
    ("Hardsigmoid", (), {"inplace": True}), ("SELU", (), {}), ("SELU", (True,), {}),
    ("CELU", (0.5,), {}), ("CELU", (), {"alpha": 2.0, "inplace": True}),
    ("Softmin", (1,), {}), ("Softsign", (), {}), ("Tanhshrink", (), {}),
    ("Softshrink", (), {}), ("Softshrink", (0.3,), {}), ("Hardshrink", (1.5,), {}),
    ("Threshold", (0.1, 20.0), {}), ("Threshold", (0.1, -3.0, True), {}),
]


@pytest.mark.parametrize("name, args, kwargs", LAYERS,
                         ids=[f"{n}{a}{k}" for n, a, k in LAYERS])
def test_layer_matches_torch(name, args, kwargs):
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    x = away_from_kinks(randn(4, 6, seed=1) * 3.0, (-3.0, 3.0, 0.0, 0.1, 0.3, 0.5, 1.5))
    leaf, torch_leaf = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, t = ours(leaf * 1.0), theirs(torch_leaf * 1.0)     # non-leaves: in-place is allowed
    np.testing.assert_allclose(y.detach().numpy(), t.detach().numpy(), rtol=1e-12, atol=1e-15)
    cotangent = randn(*t.shape, seed=2)
    (y * rg.tensor(cotangent)).sum().backward()
    (t * torch.tensor(cotangent)).sum().backward()
    # 1e-7: PyTorch's float64 hardsigmoid gradient uses 1/6 rounded to float32 (the ops'
    # tests compare the rest more tightly)
    np.testing.assert_allclose(leaf.grad.numpy(), torch_leaf.grad.numpy(), rtol=1e-7,
                               atol=1e-15)


def test_attributes_and_implicit_softmin_dim():
    assert (nn.CELU(0.5, True).alpha, nn.CELU(0.5, True).inplace) == (0.5, True)
    assert nn.Threshold(0.1, 20.0).threshold == 0.1 and nn.Softshrink(0.3).lambd == 0.3
    assert nn.GLU().dim == -1 and nn.Softmin().dim is None and nn.Hardswish(True).inplace
    with pytest.warns(UserWarning, match="softmin: implicit dimension choice"):
        y = nn.Softmin()(rg.zeros(2, 4))
    np.testing.assert_allclose(y.numpy(), 0.25)


def test_errors_name_the_op():
    with pytest.raises(RuntimeError, match="glu: halving dimension must be even"):
        nn.GLU()(rg.randn(2, 5))
    with pytest.raises(RuntimeError, match="softshrink: lambda must be greater or equal to 0"):
        nn.Softshrink(-0.5)(rg.randn(3))
    with pytest.raises(RuntimeError, match="celu: alpha cannot be 0"):
        nn.CELU(0.0)(rg.randn(3))
    with pytest.raises(TypeError, match="threshold: threshold must be a number, got 'a'"):
        nn.Threshold("a", 1.0)(rg.randn(3))
