"""nn.utils.weight_norm / remove_weight_norm (the hook API) against PyTorch: parameter names
and shapes for every dim, outputs and the gradients of g and v, removal, and the errors."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradcheck
from retrograd.nn.utils.weight_norm import norm_except_dim
from tests.oracle import GRADCHECK_TOLERANCES, randn


def _pair(make_ours, make_theirs):
    """The same layer in both frameworks, float64, with torch's initial values."""
    theirs = make_theirs().double()
    ours = make_ours().double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _weight_norm(module, lib, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return lib.nn.utils.weight_norm(module, **kwargs)


@pytest.mark.parametrize("dim", [0, 1, None, -1, -2])
def test_weight_norm_matches_torch(dim):
    ours, theirs = _pair(lambda: rg.nn.Conv2d(3, 4, 2), lambda: torch.nn.Conv2d(3, 4, 2))
    _weight_norm(ours, rg, dim=dim)
    _weight_norm(theirs, torch, dim=dim)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight_g",
                                                                    "weight_v"]
    assert ours.weight_g.shape == tuple(theirs.weight_g.shape)   # dim=-1 means "no dim"
    x = randn(2, 3, 4, 4, seed=1)
    y, ty = ours(rg.tensor(x)), theirs(torch.tensor(x))
    g = randn(*y.shape, seed=2)
    y.backward(rg.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    for name in ("weight_g", "weight_v", "bias"):
        np.testing.assert_allclose(getattr(ours, name).grad.numpy(),
                                   getattr(theirs, name).grad.numpy(), rtol=1e-10, atol=1e-13)


def test_weight_is_recomputed_before_each_forward_and_is_differentiable():
    layer = _weight_norm(rg.nn.Linear(3, 2).double(), rg)
    with rg.no_grad():
        layer.weight_g.mul_(2.0)
    layer(rg.ones(1, 3, dtype=rg.float64))
    np.testing.assert_allclose(norm_except_dim(layer.weight, 2, 0).detach().numpy(),
                               layer.weight_g.detach().numpy(), rtol=1e-12)
    v = rg.tensor(randn(2, 3, seed=3), requires_grad=True)
    g = rg.tensor(randn(2, 1, seed=4), requires_grad=True)
    assert gradcheck(lambda a, b: a * (b / norm_except_dim(a, 2, 0)), [v, g],
                     **GRADCHECK_TOLERANCES)


def test_remove_weight_norm_restores_a_parameter_holding_the_weight():
    layer = _weight_norm(rg.nn.Linear(3, 2), rg)
    weight = layer.weight.detach().numpy().copy()
    rg.nn.utils.remove_weight_norm(layer)
    assert list(layer.state_dict()) == ["bias", "weight"]
    assert isinstance(layer.weight, rg.nn.Parameter) and not layer._forward_pre_hooks
    np.testing.assert_allclose(layer.weight.detach().numpy(), weight, rtol=1e-6)


def test_warns_as_torch_and_the_errors():
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        layer = rg.nn.utils.weight_norm(rg.nn.Linear(2, 2))
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the same "
                                           "parameter weight"):
        _weight_norm(layer, rg)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in Linear"):
        rg.nn.utils.remove_weight_norm(rg.nn.Linear(2, 2))
    with pytest.raises(AttributeError, match="foo"):
        _weight_norm(rg.nn.Linear(2, 2), rg, name="foo")
    with pytest.raises(IndexError, match="norm_except_dim: dim 2 is out of range"):
        _weight_norm(rg.nn.Linear(2, 2), rg, dim=2)
