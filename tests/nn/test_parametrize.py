"""nn.utils.parametrize and nn.utils.parametrizations against PyTorch: the injected class,
state-dict names, values and gradients of weight_norm and spectral_norm (with PyTorch's u, v
copied in), right_inverse on assignment, chaining, caching, removal, copies, and the errors."""

import copy
import pickle

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.nn.utils import parametrizations, parametrize
from tests.oracle import randn


def _torch_values(ours, theirs):
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})


@pytest.mark.parametrize("dim", [0, None])
def test_weight_norm_parametrization_matches_torch(dim):
    theirs = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(3, 4).double(),
                                                         dim=dim)
    ours = parametrizations.weight_norm(rg.nn.Linear(3, 4).double(), dim=dim)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs) and type(ours).__name__ == "ParametrizedLinear"
    _torch_values(ours, theirs)
    x = randn(2, 3, seed=1)
    (ours(rg.tensor(x)) ** 2).sum().backward()
    (theirs(torch.tensor(x)) ** 2).sum().backward()
    for k in ("original0", "original1"):
        np.testing.assert_allclose(getattr(ours.parametrizations.weight, k).grad.numpy(),
                                   getattr(theirs.parametrizations.weight, k).grad.numpy(),
                                   rtol=1e-10)


def test_spectral_norm_parametrization_matches_torch_over_training_steps():
    theirs = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Conv2d(2, 3, 2).double())
    ours = parametrizations.spectral_norm(rg.nn.Conv2d(2, 3, 2).double())
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _torch_values(ours, theirs)
    x = randn(2, 2, 4, 4, seed=2)
    for _ in range(2):
        y, ty = ours(rg.tensor(x)), theirs(torch.tensor(x))
        (y ** 2).sum().backward()
        (ty ** 2).sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10)
        np.testing.assert_allclose(ours.parametrizations.weight.original.grad.numpy(),
                                   theirs.parametrizations.weight.original.grad.numpy(),
                                   rtol=1e-9, atol=1e-12)


class Symmetric(rg.nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(0, 1)

    def right_inverse(self, a):
        return a.triu()


class Scale(rg.nn.Module):
    def forward(self, x):
        return 3.0 * x


def test_assignment_runs_right_inverse_and_chaining_and_caching():
    layer = parametrize.register_parametrization(rg.nn.Linear(3, 3), "weight", Symmetric())
    target = rg.tensor(randn(3, 3, seed=3).astype(np.float32))
    target = target + target.T
    layer.weight = target
    np.testing.assert_allclose(layer.weight.detach().numpy(), target.numpy(), rtol=1e-6)
    parametrize.register_parametrization(layer, "weight", Scale())
    np.testing.assert_allclose(layer.weight.detach().numpy(), 3 * target.numpy(), rtol=1e-6)
    assert len(layer.parametrizations.weight) == 2
    with parametrize.cached():
        assert layer.weight is layer.weight
    assert layer.weight is not layer.weight
    layer(rg.ones(1, 3)).sum().backward()
    assert layer.parametrizations.weight.original.grad is not None


def test_remove_leaves_the_parametrized_value_or_the_original():
    layer = parametrizations.weight_norm(rg.nn.Linear(2, 3))
    weight = layer.weight.detach().numpy().copy()
    parametrize.remove_parametrizations(layer, "weight")
    assert type(layer) is rg.nn.Linear and list(layer.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(layer.weight.detach().numpy(), weight, rtol=1e-6)
    layer = parametrize.register_parametrization(rg.nn.Linear(2, 2), "bias", Scale())
    original = layer.parametrizations.bias.original.detach().numpy().copy()
    parametrize.remove_parametrizations(layer, "bias", leave_parametrized=False)
    assert np.array_equal(layer.bias.detach().numpy(), original)
    assert not parametrize.is_parametrized(layer)
    assert parametrize.type_before_parametrizations(layer) is rg.nn.Linear


def test_deepcopy_works_and_pickling_refuses_as_torch():
    layer = parametrizations.weight_norm(rg.nn.Linear(2, 3))
    twin = copy.deepcopy(layer)
    assert twin.parametrizations.weight.original1 is not layer.parametrizations.weight.original1
    np.testing.assert_array_equal(twin.weight.detach().numpy(), layer.weight.detach().numpy())
    with pytest.raises(RuntimeError, match="only supported through state_dict"):
        pickle.dumps(layer)


def test_errors():
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a "
                                         "parametrized element with name 'foo'"):
        parametrize.register_parametrization(rg.nn.Linear(2, 2), "foo", Scale())

    class Shrink(rg.nn.Module):
        def forward(self, x):
            return x[:1]
    with pytest.raises(ValueError, match="may not change the shape"):
        parametrize.register_parametrization(rg.nn.Linear(2, 2), "weight", Shrink())
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(rg.nn.Linear(2, 2), "weight")
    layer = parametrize.register_parametrization(rg.nn.Linear(2, 2), "weight", Scale())
    with pytest.raises(RuntimeError, match="Scale does not implement right_inverse"):
        layer.weight = rg.zeros(2, 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        parametrizations.spectral_norm(rg.nn.Linear(2, 2), dim=2)
