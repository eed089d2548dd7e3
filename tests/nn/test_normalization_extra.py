"""The normalization tail against PyTorch: F.instance_norm and InstanceNorm1d/2d/3d (train
and eval, running statistics), BatchNorm3d, RMSNorm, F.local_response_norm and
LocalResponseNorm, F.normalize: outputs, every gradient, buffers, float64 gradchecks, state
dict names, reprs and the errors, which name the layer."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from tests.nn.test_normalization import _copy_state, _step
from tests.oracle import check_op, randn


# ---------------------------------------------------------------- instance norm
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 2, 3, 2)])
def test_instance_norm_matches_torch(shape):
    x, w, b = randn(*shape, seed=1), randn(shape[1], seed=2), randn(shape[1], seed=3)
    check_op(lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
             lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), x, w, b)
    check_op(F.instance_norm, TF.instance_norm, x)


def test_instance_norm_with_running_statistics_matches_torch_in_train_and_eval():
    x, w, b = randn(3, 2, 4, seed=4), randn(2, seed=5), randn(2, seed=6)
    mean, var = randn(2, seed=7), randn(2, seed=8, low=0.5)
    ours, theirs = [rg.tensor(mean), rg.tensor(var)], [torch.tensor(mean), torch.tensor(var)]
    for use_input_stats in (True, False):
        check_op(lambda x, w, b: F.instance_norm(x, *ours, w, b, use_input_stats, 0.3),
                 lambda x, w, b: TF.instance_norm(x, *theirs, w, b, use_input_stats, 0.3),
                 x, w, b, gradcheck=not use_input_stats)  # a gradcheck would move them
        for a, t in zip(ours, theirs):
            np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=1e-13)


@pytest.mark.parametrize("call, error, match", [
    (lambda x: F.instance_norm(x[:, :, :1]), ValueError, "more than 1 spatial element"),
    (lambda x: F.instance_norm(x, rg.zeros(3)), ValueError, "both be None or neither"),
    (lambda x: F.instance_norm(x, use_input_stats=False), RuntimeError,
     "running_mean and running_var to be defined"),
    (lambda x: F.instance_norm(x, weight=rg.ones(4)), ValueError,
     r"instance_norm: weight of shape \(4,\) does not match the 3 channels"),
])
def test_instance_norm_argument_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(rg.randn(2, 3, 4))


@pytest.mark.parametrize("name, shape", [("InstanceNorm1d", (3, 2, 5)),
                                         ("InstanceNorm2d", (2, 2, 3, 3)),
                                         ("InstanceNorm3d", (2, 2, 2, 2, 3))])
def test_instance_norm_layers_with_running_stats_match_torch_in_training_then_eval(name, shape):
    ours = getattr(rg.nn, name)(2, affine=True, track_running_stats=True, dtype=rg.float64)
    theirs = getattr(torch.nn, name)(2, affine=True, track_running_stats=True,
                                     dtype=torch.float64)
    assert repr(ours) == repr(theirs)
    _copy_state(ours, theirs)
    for step in range(2):
        _step(ours, theirs, randn(*shape, seed=10 + step) * (step + 1) + step, seed=step)
    assert ours.num_batches_tracked.item() == 0   # as PyTorch's: never counted
    ours.eval()
    theirs.eval()
    _step(ours, theirs, randn(*shape, seed=20), seed=21)
    _step(ours, theirs, randn(*shape[1:], seed=22), seed=23)   # unbatched


def test_instance_norm_defaults_state_and_unbatched_input_match_torch():
    ours, theirs = rg.nn.InstanceNorm2d(3, dtype=rg.float64), torch.nn.InstanceNorm2d(3)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == []
    ours.eval()
    theirs.eval()
    _step(ours, theirs, randn(3, 4, 4, seed=24), seed=25)   # eval, no stats: input stats
    momentum_none = rg.nn.InstanceNorm1d(2, track_running_stats=True, momentum=None)
    momentum_none(rg.randn(2, 2, 5))
    assert np.all(momentum_none.running_mean.numpy() == 0)   # None is 0, as PyTorch


def test_instance_norm_layer_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"InstanceNorm2d: expected 3D or 4D input \(got 2D"):
        rg.nn.InstanceNorm2d(3)(rg.randn(3, 4))
    with pytest.raises(ValueError, match=r"InstanceNorm1d\(3, .*affine=True.*dim=1 to match "
                                         r"num_features \(3\), but got: 4"):
        rg.nn.InstanceNorm1d(3, affine=True)(rg.randn(2, 4, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        assert rg.nn.InstanceNorm1d(3)(rg.randn(2, 4, 5)).shape == (2, 4, 5)


# ---------------------------------------------------------------- batch norm 3d
def test_batch_norm3d_matches_torch_in_training_then_eval():
    ours, theirs = rg.nn.BatchNorm3d(2, dtype=rg.float64), torch.nn.BatchNorm3d(2).double()
    assert repr(ours) == repr(theirs)
    _copy_state(ours, theirs)
    for step in range(2):
        _step(ours, theirs, randn(2, 2, 2, 3, 2, seed=30 + step) + step, seed=step)
    ours.eval()
    theirs.eval()
    _step(ours, theirs, randn(2, 2, 2, 3, 2, seed=32), seed=33)
    with pytest.raises(ValueError, match=r"BatchNorm3d: expected 5D input \(got 4D"):
        ours(rg.randn(2, 2, 3, 3, dtype=rg.float64))


# ---------------------------------------------------------------- rms norm layer
def test_rms_norm_layer_matches_torch():
    ours = rg.nn.RMSNorm((2, 3), eps=1e-5, dtype=rg.float64)
    theirs = torch.nn.RMSNorm((2, 3), eps=1e-5, dtype=torch.float64)
    assert repr(ours) == repr(theirs) and repr(rg.nn.RMSNorm(4)) == repr(torch.nn.RMSNorm(4))
    _copy_state(ours, theirs)
    _step(ours, theirs, randn(4, 2, 3, seed=40), seed=41)
    plain = rg.nn.RMSNorm(3, elementwise_affine=False)
    assert plain.weight is None and list(plain.state_dict()) == []
    with pytest.raises(ValueError, match=r"RMSNorm\(\(2, 3\), eps=1e-05.*normalized_shape"):
        ours(rg.randn(2, 3, 2, dtype=rg.float64))


# ---------------------------------------------------------------- local response norm
@pytest.mark.parametrize("shape, size", [((2, 5, 4), 3), ((1, 4, 2, 3), 2), ((1, 3, 2, 1, 2), 5)])
def test_local_response_norm_matches_torch(shape, size):
    x = randn(*shape, seed=50)
    check_op(lambda x: F.local_response_norm(x, size, 0.5, 0.6, 1.5),
             lambda x: TF.local_response_norm(x, size, 0.5, 0.6, 1.5), x)


def test_local_response_norm_layer_and_errors():
    ours = rg.nn.LocalResponseNorm(3, alpha=0.1)
    assert repr(ours) == repr(torch.nn.LocalResponseNorm(3, alpha=0.1))
    x = randn(2, 4, 3, seed=51).astype(np.float32)
    np.testing.assert_allclose(ours(rg.tensor(x)).numpy(),
                               torch.nn.LocalResponseNorm(3, alpha=0.1)(torch.tensor(x)).numpy(),
                               rtol=1e-6)
    assert F.local_response_norm(rg.randn(0, 3, 2), 2).shape == (0, 3, 2)
    with pytest.raises(ValueError, match=r"LocalResponseNorm\(3, .*Expected 3D or higher .*got 2"):
        ours(rg.randn(2, 4))
    with pytest.raises(ValueError, match="local_response_norm: size"):
        F.local_response_norm(rg.randn(2, 3, 4), 0)


# ---------------------------------------------------------------- normalize
@pytest.mark.parametrize("p, dim", [(2.0, 1), (1.0, 0), (float("inf"), -1), (3.0, (0, 1))])
def test_normalize_matches_torch(p, dim):
    check_op(lambda x: F.normalize(x, p, dim), lambda x: TF.normalize(x, p, dim),
             randn(3, 4, seed=60))


def test_normalize_of_zero_rows_matches_torch():
    x = randn(3, 4, seed=61)
    x[1] = 0.0
    for p in (2.0, 1.0):
        check_op(lambda x: F.normalize(x, p), lambda x: TF.normalize(x, p), x, gradcheck=False)


def test_normalize_out_and_errors():
    x = rg.tensor([[3.0, 4.0]])
    out = rg.zeros(1, 2)
    assert F.normalize(x, out=out) is out and out.tolist() == [[0.6000000238418579,
                                                                0.800000011920929]]
    with pytest.raises(RuntimeError, match="normalize: .*out=.*requires grad"):
        F.normalize(rg.randn(1, 2, requires_grad=True), out=rg.zeros(1, 2))
    with pytest.raises(TypeError, match="normalize: expected a floating-point input"):
        F.normalize(rg.tensor([[1, 2]]))
