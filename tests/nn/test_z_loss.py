"""F.cross_entropy(..., z_loss=c) and nn.CrossEntropyLoss(z_loss=c) (retrograd's extension,
PaLM's auxiliary loss): cross-entropy + c * logsumexp(logits)^2 per row, against torch's
cross_entropy plus the term written out with torch.logsumexp(...)**2 (outputs and gradients,
float64, random cotangents): reductions, ignore_index, class weights, label smoothing,
(N, C, d) inputs, probability targets; float64 finite differences; z_loss=0 is the plain loss."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradcheck
from tests.oracle import GRADCHECK_TOLERANCES, check_op, randn, to_torch

IGNORE = -100


def _torch_z_loss(x, target, c, reduction, ignore_index=IGNORE, **kwargs):
    """torch's cross-entropy + c * lse^2 over the rows whose target is not ignore_index:
    summed ('sum'), an unweighted mean over those rows ('mean'), or per row ('none', 0 where
    ignored)."""
    loss = TF.cross_entropy(x, target, reduction=reduction, ignore_index=ignore_index, **kwargs)
    z = torch.logsumexp(x, dim=0 if x.ndim == 1 else 1) ** 2
    if not target.dtype.is_floating_point:
        z = torch.where(target != ignore_index, z, torch.zeros_like(z))
        count = (target != ignore_index).sum()
    else:
        count = z.numel()
    if reduction == "none":
        return loss + c * z
    if reduction == "sum":
        return loss + c * z.sum()
    return loss + c * z.sum() / count


def _targets(shape, classes, seed, ignored=True):
    t = np.random.default_rng(seed).integers(0, classes, size=shape)
    if ignored:
        t.flat[1] = IGNORE  # one ignored row (never all of them)
    return t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(6, 5), (3, 5, 4)])
@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1},
                                    {"weight": randn(5, seed=3, low=0.2)}])
def test_cross_entropy_with_z_loss_matches_torch(reduction, shape, kwargs):
    x = randn(*shape, seed=1) * 3  # logits far from 0, so log Z is far from 0 too
    target = _targets(shape[:1] + shape[2:], shape[1], seed=2)
    weight = kwargs.get("weight")
    rest = {k: v for k, v in kwargs.items() if k != "weight"}
    ours = dict(rest, weight=None if weight is None else rg.tensor(weight))
    theirs = dict(rest, weight=None if weight is None else to_torch(weight))
    check_op(lambda x, t: F.cross_entropy(x, t, reduction=reduction, z_loss=0.3, **ours),
             lambda x, t: _torch_z_loss(x, t, 0.3, reduction, **theirs),
             x, target, gradcheck=True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_probability_targets_count_every_row(reduction):
    x = randn(4, 3, 2, seed=4) * 2
    p = np.random.default_rng(5).random((4, 3, 2))
    p /= p.sum(axis=1, keepdims=True)
    check_op(lambda x, p: F.cross_entropy(x, p, reduction=reduction, z_loss=0.05),
             lambda x, p: _torch_z_loss(x, p, 0.05, reduction),
             x, p, gradcheck=True)


def test_one_sample_and_a_custom_ignore_index():
    check_op(lambda x: F.cross_entropy(x, rg.tensor(2), z_loss=0.2),
             lambda x: _torch_z_loss(x, torch.tensor(2), 0.2, "mean"), randn(5, seed=6) * 2)
    target = np.array([0, 3, 3, 1])
    check_op(lambda x: F.cross_entropy(x, rg.tensor(target), ignore_index=3, z_loss=0.2),
             lambda x: _torch_z_loss(x, to_torch(target), 0.2, "mean", ignore_index=3),
             randn(4, 4, seed=7) * 2)


def test_gradcheck_through_the_engine_with_a_random_cotangent():
    x = rg.tensor(randn(5, 4, seed=8) * 2, requires_grad=True)
    target = rg.tensor(_targets((5,), 4, seed=9))
    cotangent = rg.tensor(randn(5, seed=10))
    assert gradcheck(lambda x: F.cross_entropy(x, target, reduction="none", z_loss=0.7)
                     * cotangent, (x,), **GRADCHECK_TOLERANCES)
    assert gradcheck(lambda x: F.cross_entropy(x, target, z_loss=0.7), (x,),
                     **GRADCHECK_TOLERANCES)


def test_the_term_alone_is_the_mean_of_the_squared_log_normalizers():
    """A worked example: z-loss minus the plain loss equals c * mean(lse^2) over the rows not
    ignored; its gradient is 2 c lse softmax(x) / count on those rows, 0 on the ignored one."""
    x = randn(4, 3, seed=11) * 2
    target = np.array([0, IGNORE, 2, 1])
    xr = rg.tensor(x, requires_grad=True)
    plain = F.cross_entropy(xr, rg.tensor(target))
    with_z = F.cross_entropy(xr, rg.tensor(target), z_loss=0.5)
    lse = np.log(np.exp(x).sum(axis=1))
    kept = target != IGNORE
    assert with_z.item() - plain.item() == pytest.approx(0.5 * np.mean(lse[kept] ** 2),
                                                         rel=1e-12)
    (with_z - plain).backward()
    softmax = np.exp(x - lse[:, None])
    expected = 2 * 0.5 * lse[:, None] * softmax * kept[:, None] / kept.sum()
    np.testing.assert_allclose(xr.grad.numpy(), expected, rtol=1e-12, atol=1e-15)


def test_an_ignored_row_whose_square_overflows_stays_out():
    """lse = 1e200 squares to inf; a mask product would give 0 * inf = nan."""
    x = randn(3, 4, seed=12)
    x[1] = 1e200
    target = rg.tensor(np.array([0, IGNORE, 2]))
    loss = F.cross_entropy(rg.tensor(x), target, reduction="sum", z_loss=0.1)
    plain = F.cross_entropy(rg.tensor(x[[0, 2]]), rg.tensor(np.array([0, 2])), reduction="sum")
    lse = np.log(np.exp(x[[0, 2]]).sum(axis=1))
    assert loss.item() == pytest.approx(plain.item() + 0.1 * np.sum(lse ** 2), rel=1e-12)


def test_all_rows_ignored_gives_nan_like_the_plain_loss():
    x = rg.tensor(randn(2, 3, seed=13))
    target = rg.tensor(np.array([IGNORE, IGNORE]))
    assert np.isnan(F.cross_entropy(x, target, z_loss=0.1).item())
    assert F.cross_entropy(x, target, reduction="sum", z_loss=0.1).item() == 0.0


def test_zero_z_loss_is_the_plain_loss_and_bad_values_are_refused():
    x = rg.tensor(randn(3, 4, seed=14))
    target = rg.tensor(np.array([0, 1, 2]))
    assert F.cross_entropy(x, target, z_loss=0.0).item() == F.cross_entropy(x, target).item()
    for bad in (-0.1, float("nan"), float("inf"), "0.1"):
        with pytest.raises(ValueError, match="cross_entropy: z_loss must be a finite number"):
            F.cross_entropy(x, target, z_loss=bad)


def test_cross_entropy_loss_layer_passes_z_loss():
    x = randn(5, 4, seed=15) * 2
    target = _targets((5,), 4, seed=16)
    layer = rg.nn.CrossEntropyLoss(reduction="sum", ignore_index=IGNORE, z_loss=0.25)
    assert rg.nn.CrossEntropyLoss().z_loss == 0.0
    check_op(lambda x, t: layer(x, t), lambda x, t: _torch_z_loss(x, t, 0.25, "sum"),
             x, target, gradcheck=False)
