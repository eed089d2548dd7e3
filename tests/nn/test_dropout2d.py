"""Channel dropout: the FeatureDropout op (retrograd/ops/dropout.py), F.dropout1d/2d/3d and
F.feature_dropout (retrograd/nn/functional/feature_dropout.py) and the Dropout1d/2d/3d
layers (retrograd/nn/dropout.py): identity in eval, whole channels zeroed or scaled in
training at rate p, the gradient is the same mask, PyTorch's dimensionality rules and
warnings, and errors."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd.cost import cost_of
from retrograd.ops.dropout import FeatureDropout
from tests.ops.cost_harness import run
from tests.oracle import GRADCHECK_TOLERANCES, randn


def _channels_whole(y, x, scale, channel_axes):
    """Each channel (over the axes after ``channel_axes``) of y is all 0 or all x * scale;
    returns the fraction of channels dropped."""
    ratio = y / x
    flat = ratio.reshape(ratio.shape[:channel_axes] + (-1,))
    dropped = np.all(flat == 0, axis=-1)
    kept = np.all(np.isclose(flat, scale, rtol=1e-6), axis=-1)
    assert np.all(dropped | kept)
    return dropped.mean()


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout2d_zeroes_whole_channels_at_rate_p_and_scales_the_rest(p):
    rg.manual_seed(0)
    x = randn(40, 100, 3, 4, seed=1) + 5.0      # no zeros in x
    y = F.dropout2d(rg.tensor(x), p).numpy()
    fraction = _channels_whole(y, x, 1 / (1 - p), 2)
    assert abs(fraction - p) < 5 * np.sqrt(p * (1 - p) / 4000)


def test_dropout2d_gradient_is_the_mask_times_the_scale():
    rg.manual_seed(1)
    x = rg.tensor(randn(4, 6, 3, 3, seed=2) + 5.0, requires_grad=True)
    y = F.dropout2d(x, 0.4)
    g = randn(4, 6, 3, 3, seed=3)
    y.backward(rg.tensor(g))
    mask = y.detach().numpy() / x.detach().numpy()
    assert set(np.round(np.unique(mask), 6)) <= {0.0, round(1 / 0.6, 6)}
    np.testing.assert_allclose(x.grad.numpy(), g * mask, rtol=1e-12)


def test_feature_dropout_gradcheck_and_double_backward_with_a_fixed_mask():
    def seeded(t):
        rg.manual_seed(2)
        return F.dropout2d(t, 0.5) ** 2

    x = rg.tensor(randn(2, 4, 2, 3, seed=4), requires_grad=True)
    rg.autograd.gradcheck(seeded, [x], **GRADCHECK_TOLERANCES)
    rg.autograd.gradgradcheck(seeded, [x], [rg.tensor(randn(2, 4, 2, 3, seed=5),
                                                      requires_grad=True)],
                              **GRADCHECK_TOLERANCES)


def test_eval_mode_and_p_zero_return_the_input_and_p_one_zeros():
    x = rg.tensor(randn(2, 3, 4, 4, seed=6), requires_grad=True)
    layer = rg.nn.Dropout2d(0.5).eval()
    assert layer(x) is x
    assert F.dropout2d(x, 0.0) is x
    y = F.dropout2d(x, 1.0)
    assert not np.any(y.detach().numpy())
    y.sum().backward()
    assert not np.any(x.grad.numpy())


def test_dropout2d_layer_trains_and_evaluates_as_torch_s():
    ours, theirs = rg.nn.Dropout2d(0.3), torch.nn.Dropout2d(0.3)
    assert repr(ours) == repr(theirs)
    assert repr(rg.nn.Dropout1d(0.1, inplace=True)) == repr(torch.nn.Dropout1d(0.1, True))
    assert repr(rg.nn.Dropout3d()) == repr(torch.nn.Dropout3d())
    x = randn(8, 16, 2, 2, seed=7) + 5.0
    rg.manual_seed(3)
    y = ours(rg.tensor(x)).numpy()
    _channels_whole(y, x, 1 / 0.7, 2)
    np.testing.assert_array_equal(ours.eval()(rg.tensor(x)).numpy(),
                                  theirs.eval()(torch.tensor(x)).numpy())


def test_dropout2d_of_3d_input_warns_and_drops_1d_channels_as_torch():
    x = randn(30, 40, 5, seed=8) + 5.0
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        y = F.dropout2d(rg.tensor(x), 0.5).numpy()
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        theirs = torch.nn.functional.dropout2d(torch.tensor(x), 0.5).numpy()
    # both read (N, C, L): one draw per (n, c), not per (c, h) of an unbatched (C, H, W)
    _channels_whole(y, x, 2.0, 2)
    _channels_whole(theirs, x, 2.0, 2)


def test_dropout2d_of_other_dims_warns_as_torch():
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        y = F.dropout2d(rg.tensor(randn(50, 60, seed=9) + 5.0), 0.5)
    assert y.shape == (50, 60)
    with pytest.warns(UserWarning, match="Received a 5-D input to dropout2d"):
        F.dropout2d(rg.ones(2, 3, 2, 2, 2), 0.5)
    with pytest.warns(UserWarning, match="Received a 3-D input to dropout3d"):
        F.dropout3d(rg.ones(3, 2, 2), 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.dropout2d(rg.ones(2, 3, 2, 2), 0.5)
        F.dropout3d(rg.ones(2, 3, 2, 2), 0.5)


def test_dropout1d_and_dropout3d_take_unbatched_inputs():
    rg.manual_seed(4)
    x = randn(50, 6, seed=10) + 5.0                    # (C, L)
    y = F.dropout1d(rg.tensor(x), 0.5).numpy()
    assert y.shape == x.shape
    _channels_whole(y, x, 2.0, 1)
    x = randn(40, 2, 2, 3, seed=11) + 5.0              # (C, D, H, W)
    _channels_whole(F.dropout3d(rg.tensor(x), 0.5).numpy(), x, 2.0, 1)
    x = randn(3, 40, 2, 2, 3, seed=12) + 5.0           # (N, C, D, H, W)
    _channels_whole(rg.nn.Dropout3d(0.5)(rg.tensor(x)).numpy(), x, 2.0, 2)


def test_inplace_writes_into_the_input():
    rg.manual_seed(5)
    x = rg.tensor(randn(4, 10, 3, seed=13) + 5.0)
    y = F.dropout1d(x, 0.5, inplace=True)
    np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert np.any(x.numpy() == 0)
    x = rg.tensor(randn(10, 3, seed=14) + 5.0)         # unbatched: through a view
    F.dropout1d(x, 0.5, inplace=True)
    assert np.any(x.numpy() == 0)


def test_feature_dropout_mask_is_one_number_per_channel_and_its_cost():
    ctx = FeatureDropout.__new__(FeatureDropout)
    rg.manual_seed(6)
    FeatureDropout.forward(ctx, np.ones((2, 3, 4, 5)), p=0.5)
    assert ctx.mask.shape == (2, 3, 1, 1)
    call, *_ = run(FeatureDropout, [randn(2, 3, 4, seed=15)], (True,), dict(p=0.5),
                   lambda *shape: np.ones(shape))
    assert (cost_of(call).flops, cost_of(call).backward_flops) == (24, 24)


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.dropout1d(rg.ones(4), 0.5), RuntimeError,
     "dropout1d: expected 2D or 3D input, but received a 1D input"),
    (lambda: F.dropout2d(rg.ones(2, 3, 4, 4), 1.5), ValueError,
     "dropout probability has to be between 0 and 1, but got 1.5"),
    (lambda: rg.nn.Dropout2d(-0.1), ValueError, "Dropout2d: dropout probability"),
    (lambda: F.dropout2d(rg.ones(2, 3, 4, 4, dtype=rg.int64), 0.5), TypeError,
     "floating-point input"),
    (lambda: F.feature_dropout(rg.ones(4), 0.5), RuntimeError, "at least 2 dimensions"),
    (lambda: rg.nn.Dropout1d(0.5)(rg.ones(1, 2, 3, 4)), RuntimeError,
     r"^Dropout1d\(p=0.5, inplace=False\): expected 2D or 3D input"),
])
def test_channel_dropout_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
