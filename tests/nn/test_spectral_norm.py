"""nn.utils.spectral_norm / remove_spectral_norm (the hook API) against PyTorch, with
PyTorch's u and v copied in: buffer names and shapes, outputs, the gradient of weight_orig and
the power iteration over training steps, eval mode, ConvTranspose's dim, and the errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import randn


def _pair(make_ours, make_theirs, **kwargs):
    theirs = torch.nn.utils.spectral_norm(make_theirs().double(), **kwargs)
    ours = rg.nn.utils.spectral_norm(make_ours().double(), **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("make_ours, make_theirs, shape, kwargs", [
    (lambda: rg.nn.Linear(5, 4), lambda: torch.nn.Linear(5, 4), (3, 5), {}),
    (lambda: rg.nn.Conv2d(2, 3, 2), lambda: torch.nn.Conv2d(2, 3, 2), (2, 2, 4, 4),
     dict(n_power_iterations=2)),
    (lambda: rg.nn.ConvTranspose2d(2, 3, 2), lambda: torch.nn.ConvTranspose2d(2, 3, 2),
     (1, 2, 3, 3), {}),                                      # dim 1 by default
])
def test_spectral_norm_matches_torch_over_training_steps_and_in_eval(make_ours, make_theirs,
                                                                     shape, kwargs):
    ours, theirs = _pair(make_ours, make_theirs, **kwargs)
    x = randn(*shape, seed=1)
    for step in range(2):
        y, ty = ours(rg.tensor(x)), theirs(torch.tensor(x))
        (y ** 2).sum().backward()
        (ty ** 2).sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10)
        for name in ("weight_orig", "weight_u", "weight_v"):
            ours_t, theirs_t = getattr(ours, name), getattr(theirs, name)
            a = ours_t.grad if name == "weight_orig" else ours_t
            b = theirs_t.grad if name == "weight_orig" else theirs_t
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name} at step {step}")
    ours.eval()
    theirs.eval()
    u = ours.weight_u.numpy().copy()
    np.testing.assert_allclose(ours(rg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)
    assert np.array_equal(ours.weight_u.numpy(), u)           # eval does not iterate


def test_the_normalized_weight_has_spectral_norm_one():
    layer = rg.nn.utils.spectral_norm(rg.nn.Linear(6, 5).double(), n_power_iterations=30)
    layer(rg.ones(1, 6, dtype=rg.float64))
    sigma = np.linalg.svd(layer.weight.detach().numpy(), compute_uv=False)[0]
    assert abs(sigma - 1.0) < 1e-8


def test_remove_spectral_norm_and_the_errors():
    layer = rg.nn.utils.spectral_norm(rg.nn.Linear(3, 2))
    layer(rg.ones(1, 3))
    weight = layer.weight.detach().numpy().copy()
    rg.nn.utils.remove_spectral_norm(layer)
    assert list(layer.state_dict()) == ["bias", "weight"] and not layer._forward_pre_hooks
    np.testing.assert_allclose(layer.weight.detach().numpy(), weight, rtol=1e-6)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in Linear"):
        rg.nn.utils.remove_spectral_norm(layer)
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive, but got "
                                         "n_power_iterations=0"):
        rg.nn.utils.spectral_norm(rg.nn.Linear(3, 2), n_power_iterations=0)
    twice = rg.nn.utils.spectral_norm(rg.nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks"):
        rg.nn.utils.spectral_norm(twice)
