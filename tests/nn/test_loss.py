"""Loss layers (retrograd/nn/loss.py) against torch.nn: outputs, input gradients, buffers
(weight, pos_weight) in the state dict, defaults, repr and the deprecated reduction flags."""

import warnings

import numpy as np
import pytest
import torch

import retrograd as rg
from tests.oracle import randn


def _compare(ours, theirs, x, target, target_grad=False):
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    rt = rg.tensor(target, requires_grad=target_grad)
    tt = torch.tensor(target, requires_grad=target_grad)
    ry, ty = ours(rx, rt), theirs(tx, tt)
    c = np.random.default_rng(0).standard_normal(tuple(ty.shape))
    ry.backward(rg.tensor(c))
    ty.backward(torch.tensor(c))
    np.testing.assert_allclose(ry.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    if target_grad:
        np.testing.assert_allclose(rt.grad.numpy(), tt.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)


def _weight_pair(weight):
    if weight is None:
        return None, None
    return rg.tensor(weight), torch.tensor(weight)


@pytest.mark.parametrize("kwargs", [
    {}, {"reduction": "sum"}, {"reduction": "none"}, {"label_smoothing": 0.2},
    {"ignore_index": 1}, {"weight": randn(4, seed=1, low=0.2), "label_smoothing": 0.1},
])
@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3)])
def test_cross_entropy_loss_matches_torch(kwargs, shape):
    kwargs = dict(kwargs)
    rw, tw = _weight_pair(kwargs.pop("weight", None))
    target = np.random.default_rng(2).integers(0, 4, size=shape[:1] + shape[2:])
    _compare(rg.nn.CrossEntropyLoss(rw, **kwargs), torch.nn.CrossEntropyLoss(tw, **kwargs),
             randn(*shape, seed=3), target)


def test_cross_entropy_loss_with_probability_targets_matches_torch():
    p = np.random.default_rng(4).random((5, 3)) + 0.1
    p /= p.sum(1, keepdims=True)
    _compare(rg.nn.CrossEntropyLoss(label_smoothing=0.1), torch.nn.CrossEntropyLoss(
        label_smoothing=0.1), randn(5, 3, seed=5), p, target_grad=True)


@pytest.mark.parametrize("kwargs", [{}, {"reduction": "none"}, {"ignore_index": 0},
                                    {"weight": randn(3, seed=6, low=0.2)}])
def test_nll_loss_layer_matches_torch(kwargs):
    kwargs = dict(kwargs)
    rw, tw = _weight_pair(kwargs.pop("weight", None))
    target = np.array([0, 2, 1, 0, 2])
    _compare(rg.nn.NLLLoss(rw, **kwargs), torch.nn.NLLLoss(tw, **kwargs), randn(5, 3, seed=7),
             target)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_layer_matches_torch(reduction):
    _compare(rg.nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction),
             randn(4, 3, seed=8), randn(4, 3, seed=9), target_grad=True)


@pytest.mark.parametrize("weight, pos_weight", [(None, None), (randn(3, seed=10, low=0.1), None),
                                                (None, randn(3, seed=11, low=0.1)),
                                                (randn(4, 1, seed=12, low=0.1),
                                                 randn(3, seed=13, low=0.1))])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_with_logits_loss_layer_matches_torch(weight, pos_weight, reduction):
    rw, tw = _weight_pair(weight)
    rpw, tpw = _weight_pair(pos_weight)
    target = np.random.default_rng(14).random((4, 3))
    _compare(rg.nn.BCEWithLogitsLoss(rw, reduction=reduction, pos_weight=rpw),
             torch.nn.BCEWithLogitsLoss(tw, reduction=reduction, pos_weight=tpw),
             randn(4, 3, seed=15) * 3, target, target_grad=True)


def test_loss_weights_are_buffers_and_move_with_the_module():
    loss = rg.nn.CrossEntropyLoss(weight=rg.ones(3, dtype=rg.float32))
    assert [n for n, _ in loss.named_buffers()] == ["weight"]
    assert list(loss.parameters()) == []
    loss.double()
    assert loss.weight.dtype == rg.float64
    bce = rg.nn.BCEWithLogitsLoss(pos_weight=rg.ones(2))
    assert list(bce.state_dict()) == list(torch.nn.BCEWithLogitsLoss(
        pos_weight=torch.ones(2)).state_dict()) == ["pos_weight"]


def test_loss_defaults_match_torch():
    for name in ("CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss"):
        ours, theirs = getattr(rg.nn, name)(), getattr(torch.nn, name)()
        assert ours.reduction == theirs.reduction == "mean"
        assert repr(ours) == repr(theirs)
    ce, tce = rg.nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    assert (ce.ignore_index, ce.label_smoothing) == (tce.ignore_index, tce.label_smoothing)


@pytest.mark.parametrize("size_average, reduce, expected", [
    (None, False, "none"), (False, None, "sum"), (True, True, "mean"), (False, False, "none"),
])
def test_deprecated_reduction_flags_map_like_torch(size_average, reduce, expected):
    with pytest.warns(DeprecationWarning, match="size_average and reduce are deprecated"):
        ours = rg.nn.MSELoss(size_average, reduce)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.nn.MSELoss(size_average, reduce)
    assert ours.reduction == theirs.reduction == expected


def test_loss_layer_errors():
    with pytest.raises(ValueError, match="reduction must be 'none', 'mean' or 'sum', got 'avg'"):
        rg.nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match=r"expected target of shape \(2,\) \(class indices\) for "
                                         r"input of shape \(2, 3\), got target of shape \(3,\)"):
        rg.nn.CrossEntropyLoss()(rg.randn(2, 3), rg.tensor([0, 1, 2]))


# ---------------------------------------------------------------- BCELoss, KLDivLoss, SmoothL1Loss,
# HuberLoss, L1Loss
@pytest.mark.parametrize("weight", [None, randn(3, seed=20, low=0.1), randn(4, 1, seed=21,
                                                                            low=0.1)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_loss_layer_matches_torch(weight, reduction):
    rw, tw = _weight_pair(weight)
    rng = np.random.default_rng(22)
    x, target = 0.05 + 0.9 * rng.random((4, 3)), rng.random((4, 3))
    _compare(rg.nn.BCELoss(rw, reduction=reduction), torch.nn.BCELoss(tw, reduction=reduction),
             x, target, target_grad=True)


@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_loss_layer_matches_torch(reduction, log_target):
    rng = np.random.default_rng(23)
    x = np.log(rng.dirichlet(np.ones(5), size=3))
    target = rng.dirichlet(np.ones(5), size=3)
    target = np.log(target) if log_target else target
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # 'mean' warns, in both libraries
        _compare(rg.nn.KLDivLoss(reduction=reduction, log_target=log_target),
                 torch.nn.KLDivLoss(reduction=reduction, log_target=log_target), x, target,
                 target_grad=True)


@pytest.mark.parametrize("name, kwargs", [
    ("SmoothL1Loss", {}), ("SmoothL1Loss", {"beta": 0.5, "reduction": "sum"}),
    ("SmoothL1Loss", {"beta": 0.0}), ("HuberLoss", {}),
    ("HuberLoss", {"delta": 2.0, "reduction": "none"}), ("L1Loss", {}),
    ("L1Loss", {"reduction": "none"}),
])
def test_regression_loss_layers_match_torch(name, kwargs):
    x = randn(4, 3, seed=24) * 2
    target = randn(4, 3, seed=25) * 2
    _compare(getattr(rg.nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), x, target,
             target_grad=True)


def test_new_loss_layers_defaults_repr_and_buffers_match_torch():
    for name in ("BCELoss", "KLDivLoss", "SmoothL1Loss", "HuberLoss", "L1Loss"):
        ours, theirs = getattr(rg.nn, name)(), getattr(torch.nn, name)()
        assert ours.reduction == theirs.reduction == "mean"
        assert repr(ours) == repr(theirs)
        assert ours.state_dict() == {} and list(ours.parameters()) == []
    assert rg.nn.SmoothL1Loss().beta == torch.nn.SmoothL1Loss().beta == 1.0
    assert rg.nn.HuberLoss().delta == torch.nn.HuberLoss().delta == 1.0
    assert rg.nn.KLDivLoss().log_target is torch.nn.KLDivLoss().log_target is False
    bce = rg.nn.BCELoss(weight=rg.ones(3))
    assert list(bce.state_dict()) == list(torch.nn.BCELoss(weight=torch.ones(3)).state_dict())
    with pytest.warns(DeprecationWarning):
        assert rg.nn.KLDivLoss(size_average=False).reduction == "sum"
    with pytest.raises(ValueError, match="KLDivLoss: reduction must be 'none', 'batchmean', "
                                         "'sum' or 'mean', got 'avg'"):
        rg.nn.KLDivLoss(reduction="avg")
    with pytest.raises(ValueError, match="HuberLoss: reduction must be"):
        rg.nn.HuberLoss(reduction="batchmean")
