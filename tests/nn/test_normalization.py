"""Normalization layers (retrograd/nn/normalization.py) against torch.nn: the same state,
then outputs, input gradients, parameter gradients and buffers compared in training and eval
mode over several steps; names, defaults, repr and errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import randn


def _copy_state(ours, theirs, seed=0):
    """Give torch's module random parameters, then load its state dict into ours."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape))))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _step(ours, theirs, x, seed):
    """One forward and backward with the same input and cotangent; compares everything."""
    rx = rg.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    ry, ty = ours(rx), theirs(tx)
    c = np.random.default_rng(seed).standard_normal(tuple(ty.shape))
    ry.backward(rg.tensor(c))
    ty.backward(torch.tensor(c))
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-10)
    _compare_state(ours, theirs)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(dict(ours.named_parameters())[name].grad.numpy(),
                                   p.grad.numpy(), rtol=1e-9, atol=1e-10, err_msg=name)


def _compare_state(ours, theirs):
    mine = ours.state_dict()
    assert list(mine) == list(theirs.state_dict())
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(mine[key].numpy(), value.numpy(), rtol=1e-12, atol=1e-14,
                                   err_msg=key)
        assert mine[key].dtype == value.numpy().dtype, key


BATCH_NORM_CASES = [
    ("BatchNorm1d", (6, 3)),
    ("BatchNorm1d", (4, 3, 5)),
    ("BatchNorm2d", (4, 3, 2, 5)),
    ("BatchNorm2d", (2, 3, 1, 1)),
]


@pytest.mark.parametrize("name, shape", BATCH_NORM_CASES)
@pytest.mark.parametrize("momentum", [0.1, None, 0.6])
def test_batch_norm_layers_match_torch_in_training_then_eval(name, shape, momentum):
    ours = getattr(rg.nn, name)(shape[1], momentum=momentum, dtype=rg.float64)
    theirs = getattr(torch.nn, name)(shape[1], momentum=momentum, dtype=torch.float64)
    _copy_state(ours, theirs)
    for step in range(3):
        _step(ours, theirs, randn(*shape, seed=10 + step) * (step + 1) + step, seed=step)
        ours.zero_grad()
        theirs.zero_grad()
    assert ours.num_batches_tracked.item() == 3
    ours.eval()
    theirs.eval()
    _step(ours, theirs, randn(*shape, seed=20), seed=21)


@pytest.mark.parametrize("affine, track, bias", [(False, True, True), (True, False, True),
                                                (False, False, True), (True, True, False)])
def test_batch_norm_without_affine_or_running_stats_matches_torch(affine, track, bias):
    ours = rg.nn.BatchNorm2d(3, affine=affine, track_running_stats=track, dtype=rg.float64,
                             bias=bias)
    theirs = torch.nn.BatchNorm2d(3, affine=affine, track_running_stats=track,
                                  dtype=torch.float64, bias=bias)
    assert repr(ours) == repr(theirs)
    _copy_state(ours, theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for training in (True, False):  # without running stats, eval uses the batch statistics
        ours.train(training)
        theirs.train(training)
        _step(ours, theirs, randn(4, 3, 2, 2, seed=30), seed=31)


def test_batch_norm_float32_layer_matches_torch():
    ours, theirs = rg.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    _copy_state(ours, theirs)
    x = randn(8, 4, 3, 3, seed=32).astype(np.float32)
    for _ in range(2):
        y, ty = ours(rg.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-5,
                                   atol=1e-6)
    assert ours.running_mean.dtype == rg.float32 and y.dtype == rg.float32


def test_batch_norm_loads_torch_state_and_reproduces_eval_outputs():
    theirs = torch.nn.BatchNorm1d(5, dtype=torch.float64)
    theirs(torch.randn(16, 5, dtype=torch.float64) * 3 + 1)  # moves the running statistics
    theirs.eval()
    ours = rg.nn.BatchNorm1d(5, dtype=rg.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval()
    x = randn(3, 5, seed=33)
    np.testing.assert_allclose(ours(rg.tensor(x)).detach().numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_batch_norm_defaults_names_and_repr_match_torch():
    ours, theirs = rg.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    np.testing.assert_array_equal(ours.weight.detach().numpy(), 1.0)
    np.testing.assert_array_equal(ours.bias.detach().numpy(), 0.0)
    assert ours.num_batches_tracked.dtype == rg.int64
    assert repr(rg.nn.BatchNorm1d(3, momentum=None, affine=False)) == \
        repr(torch.nn.BatchNorm1d(3, momentum=None, affine=False))


def test_batch_norm_reset_running_stats():
    bn = rg.nn.BatchNorm1d(2)
    bn(rg.randn(4, 2) * 3 + 1)
    bn.reset_running_stats()
    assert bn.running_mean.numpy().tolist() == [0.0, 0.0]
    assert bn.running_var.numpy().tolist() == [1.0, 1.0]
    assert bn.num_batches_tracked.item() == 0


@pytest.mark.parametrize("layer, shape, match", [
    (rg.nn.BatchNorm1d(3), (2, 3, 4, 5), r"BatchNorm1d: expected 2D or 3D input \(got 4D input"),
    (rg.nn.BatchNorm2d(3), (2, 3, 4), r"BatchNorm2d: expected 4D input \(got 3D input"),
    (rg.nn.BatchNorm1d(3), (2, 4), r"weight of shape \(3,\) does not match the 4 channels"),
    (rg.nn.BatchNorm1d(3, affine=False), (2, 4), r"running_mean of shape \(3,\) does not match"),
    (rg.nn.BatchNorm1d(3), (1, 3), r"Expected more than 1 value per channel when training"),
])
def test_batch_norm_layer_errors(layer, shape, match):
    with pytest.raises(ValueError, match=match):
        layer(rg.randn(*shape))


@pytest.mark.parametrize("normalized, shape", [(6, (4, 6)), ((3, 4), (2, 5, 3, 4)), (5, (1, 5))])
@pytest.mark.parametrize("kwargs", [{}, {"elementwise_affine": False}, {"bias": False},
                                    {"eps": 0.1}])
def test_layer_norm_layer_matches_torch(normalized, shape, kwargs):
    ours = rg.nn.LayerNorm(normalized, dtype=rg.float64, **kwargs)
    theirs = torch.nn.LayerNorm(normalized, dtype=torch.float64, **kwargs)
    _copy_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        _step(ours, theirs, randn(*shape, seed=40), seed=41)
        ours.zero_grad()
        theirs.zero_grad()


@pytest.mark.parametrize("groups, channels, shape", [(2, 6, (3, 6, 4, 4)), (1, 4, (2, 4)),
                                                    (4, 4, (1, 4, 3))])
@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"bias": False}])
def test_group_norm_layer_matches_torch(groups, channels, shape, kwargs):
    ours = rg.nn.GroupNorm(groups, channels, dtype=rg.float64, **kwargs)
    theirs = torch.nn.GroupNorm(groups, channels, dtype=torch.float64, **kwargs)
    _copy_state(ours, theirs)
    assert repr(ours) == repr(theirs)
    for training in (True, False):
        ours.train(training)
        theirs.train(training)
        _step(ours, theirs, randn(*shape, seed=50), seed=51)
        ours.zero_grad()
        theirs.zero_grad()


def test_norm_layer_construction_errors():
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(6\) must be divisible by "
                                         r"num_groups \(4\)"):
        rg.nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="BatchNorm2d: num_features must be a positive int"):
        rg.nn.BatchNorm2d(0)
    with pytest.raises(ValueError, match=r"^LayerNorm\(\(4,\), eps=1e-05, elementwise_affine=True, "
                                         r"bias=True\): normalized_shape \(4,\) does not match"):
        rg.nn.LayerNorm(4)(rg.randn(2, 3))


def test_norm_layers_train_a_tiny_model():
    # a smoke test of the layers inside a model: the loss goes down with plain SGD steps
    rg.manual_seed(0)
    model = rg.nn.Sequential(rg.nn.Linear(4, 8), rg.nn.BatchNorm1d(8), rg.nn.ReLU(),
                             rg.nn.Linear(8, 8), rg.nn.LayerNorm(8), rg.nn.GELU(),
                             rg.nn.Linear(8, 3))
    x = rg.randn(32, 4)
    target = x[:, :3].argmax(1)  # a learnable rule
    losses = []
    for _ in range(40):
        loss = rg.nn.functional.cross_entropy(model(x), target)
        model.zero_grad()
        loss.backward()
        with rg.no_grad():
            for p in model.parameters():
                p -= 0.2 * p.grad
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
