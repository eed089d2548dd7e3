"""F.lp_pool1d/2d and nn.LPPool1d/2d (PyTorch's composition of avg_pool, sign, relu and pow)
against PyTorch: values and gradients, p = inf, a window whose sum is 0, and the layers."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import check_op, randn

TF = torch.nn.functional


@pytest.mark.parametrize("name, shape, args, kwargs", [
    ("lp_pool2d", (2, 3, 6, 7), (2.0, 3), dict(stride=2)),
    ("lp_pool2d", (2, 2, 5, 5), (1.5, (2, 3)), dict(ceil_mode=True)),
    ("lp_pool2d", (3, 4, 4), (float("inf"), 2), {}),                  # unbatched, max of |x|
    ("lp_pool1d", (2, 3, 9), (3.0, 3), dict(stride=2)),
    ("lp_pool1d", (2, 7), (-float("inf"), 2), {}),
])
def test_lp_pool_matches_torch_and_finite_differences(name, shape, args, kwargs):
    x = randn(*shape, seed=1, low=0.2)     # p-th powers of positive values: no NaN
    check_op(lambda t: getattr(F, name)(t, *args, **kwargs),
             lambda t: getattr(TF, name)(t, *args, **kwargs), x)


def test_a_window_summing_to_zero_gets_torchs_zero_gradient():
    x = np.zeros((1, 1, 2, 4))
    x[0, 0, :, 2:] = [[1.0, 2.0], [-0.5, 3.0]]
    ours, theirs = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.lp_pool2d(ours, 2, 2).sum().backward()
    TF.lp_pool2d(theirs, 2, 2).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_layers_match_torch_and_their_repr():
    for ours, theirs, shape in [(rg.nn.LPPool2d(2, 3, stride=2), torch.nn.LPPool2d(2, 3, 2),
                                 (1, 2, 7, 7)),
                                (rg.nn.LPPool1d(1.5, 2), torch.nn.LPPool1d(1.5, 2), (2, 5))]:
        assert repr(ours) == repr(theirs)
        x = randn(*shape, seed=2, low=0.1)
        np.testing.assert_allclose(ours(rg.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(),
                                   rtol=1e-12)


def test_errors_name_the_function():
    with pytest.raises(ValueError, match="lp_pool2d: kernel_size must be"):
        F.lp_pool2d(rg.randn(1, 1, 4, 4), 2, 0)
    with pytest.raises(ValueError, match=r"lp_pool1d: output size \(1, 0\) is too small"):
        F.lp_pool1d(rg.randn(1, 1, 2), 2, 3)
