"""MultiMarginLoss (retrograd/ops/loss_tail.py) through nn.functional.multi_margin_loss:
against PyTorch (outputs and input gradients, p = 1 and 2, class weights, every reduction,
one-sample and empty inputs), float64 finite differences through the engine and the backward
alone, PyTorch's convention at the hinge (z = 0 is inactive), the refusal of a second
derivative, the declared cost against brute-force counts, and argument errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.ops.loss_tail import MultiMarginLoss
from tests.oracle import check_backward_alone, check_op, randn
from tests.ops.test_cost_elementwise import _check_op as _check_cost
from tests.ops.test_cost_elementwise import _plain
from tests.ops.test_cost_layers import _randn

TARGET = np.array([0, 4, 2, 2])
MARGIN = 0.7


def _scores(seed=0):
    """(4, 5) scores whose hinge arguments z = margin - x[t] + x[i] stay away from 0."""
    x = randn(4, 5, seed=seed)
    z = MARGIN - x[np.arange(4), TARGET][:, None] + x
    assert np.abs(z).min() > 1e-3
    return x


@pytest.mark.parametrize("p", [1, 2])
def test_matches_torch_for_every_reduction_and_weights(p):
    x, weight = _scores(), np.abs(randn(5, seed=1)) + 0.5
    for reduction in ("none", "mean", "sum"):
        for w in (None, weight):
            check_op(lambda s, w=w, r=reduction: F.multi_margin_loss(
                         s, rg.tensor(TARGET), p, MARGIN, None if w is None else rg.tensor(w),
                         reduction=r),
                     lambda s, w=w, r=reduction: TF.multi_margin_loss(
                         s, torch.tensor(TARGET), p, MARGIN,
                         None if w is None else torch.tensor(w), reduction=r),
                     x, gradcheck=reduction == "mean")
    check_op(lambda s: F.multi_margin_loss(s, rg.tensor(TARGET), p),
             lambda s: TF.multi_margin_loss(s, torch.tensor(TARGET), p), x.astype(np.float32),
             dtype=np.float32)


def _composed(x, target, p, weight):
    """The loss of the docstring composed of retrograd's differentiable ops (gather, clamp,
    where, pow, sum): the fused op must agree with it away from the hinge (at z = 0 clamp
    would pass the gradient, PyTorch's kernel does not, which is one reason for the op)."""
    z = MARGIN - x.gather(1, target.reshape(-1, 1)) + x
    others = np.arange(x.shape[1]) != target.numpy()[:, None]
    hinge = z.clamp(min=0.0).where(rg.tensor(others), 0.0) ** p
    scale = (weight[target] if weight is not None else rg.ones(x.shape[0])) / x.shape[1]
    return hinge.sum(1) * scale


@pytest.mark.parametrize("p", [1, 2])
def test_fused_op_equals_the_composition(p):
    x, target, weight = _scores(4), rg.tensor(TARGET), rg.tensor(np.abs(randn(5, seed=5)))
    cotangent = rg.tensor(randn(4, seed=6))
    grads = []
    for loss_fn in (lambda s: F.multi_margin_loss(s, target, p, MARGIN, weight, reduction="none"),
                    lambda s: _composed(s, target, p, weight)):
        s = rg.tensor(x, requires_grad=True)
        loss = loss_fn(s)
        (loss * cotangent).sum().backward()
        grads.append((loss.detach().numpy(), s.grad.numpy()))
    for fused, composed in zip(*grads):
        np.testing.assert_allclose(fused, composed, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("p", [1, 2])
def test_backward_alone(p):
    check_backward_alone(MultiMarginLoss, [_scores(2), TARGET, None], {"p": p, "margin": MARGIN})


def test_one_sample_and_empty_inputs_have_torchs_shapes():
    x = randn(5, seed=3)
    for target in (np.array(2), np.array([2])):
        check_op(lambda s, t=target: F.multi_margin_loss(s, rg.tensor(t), reduction="none"),
                 lambda s, t=target: TF.multi_margin_loss(s, torch.tensor(t), reduction="none"),
                 x)
    empty = rg.zeros(0, 3, requires_grad=True)
    target = rg.tensor(np.zeros(0, dtype=np.int64))
    assert F.multi_margin_loss(empty, target, reduction="none").shape == (0,)
    assert F.multi_margin_loss(empty, target, reduction="sum").item() == 0.0
    assert np.isnan(F.multi_margin_loss(empty, target).item())   # 0 / 0, as any empty mean


def test_hinge_at_zero_is_inactive_like_torch():
    """z = margin - x[t] + x[i] = 0 exactly: no loss and no gradient from class i."""
    x = np.array([[1.0, 0.0, 2.0, -5.0], [0.5, 0.5, 0.5, 0.5]])
    target = np.array([0, 3])
    for p in (1, 2):
        out = check_op(lambda s: F.multi_margin_loss(s, rg.tensor(target), p, reduction="none"),
                       lambda s: TF.multi_margin_loss(s, torch.tensor(target), p,
                                                      reduction="none"),
                       x, gradcheck=False, rtol=1e-15, atol=0)
        # row 0: only z = 2 is active, z = 0 is not; row 1: three hinges of z = 1, over C = 4
        assert out[0].tolist() == [2.0 ** p / 4, 0.75]


def test_second_derivative_is_refused_by_name():
    x = rg.tensor(_scores(), requires_grad=True)
    (grad,) = rg.autograd.grad(F.multi_margin_loss(x, rg.tensor(TARGET), 2), x,
                               create_graph=True)
    with pytest.raises(RuntimeError, match="MultiMarginLoss"):
        grad.sum().backward()


def test_bad_arguments_name_the_op():
    x, target = rg.randn(3, 4), rg.tensor([0, 1, 3])
    with pytest.raises(ValueError, match=r"multi_margin_loss: only p == 1 and p == 2 "
                                         r"supported, got p=3"):
        F.multi_margin_loss(x, target, p=3)
    with pytest.raises(RuntimeError, match=r"multi_margin_loss: target out of range: class "
                                           r"index 4 for 4 classes"):
        F.multi_margin_loss(x, rg.tensor([0, 1, 4]))
    with pytest.raises(RuntimeError, match=r"multi_margin_loss: target tensor should be 1-D "
                                           r"with size equal to the number of input samples: "
                                           r"expected target of shape \(3,\), got \(2,\)"):
        F.multi_margin_loss(x, rg.tensor([0, 1]))
    with pytest.raises(TypeError, match="multi_margin_loss: expected class-index targets of "
                                        "dtype int64, got dtype retrograd.float32"):
        F.multi_margin_loss(x, rg.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(RuntimeError, match=r"multi_margin_loss: expected a non-empty vector or "
                                           r"matrix .* got input of shape \(2, 3, 4\)"):
        F.multi_margin_loss(rg.randn(2, 3, 4), target)
    with pytest.raises(ValueError, match=r"multi_margin_loss: weight must be one-dimensional "
                                         r"with one weight per class: expected \(4,\), got "
                                         r"shape \(3,\)"):
        F.multi_margin_loss(x, target, weight=rg.ones(3))
    with pytest.raises(RuntimeError, match="multi_margin_loss: the loss is not differentiable "
                                           "with respect to weight"):
        F.multi_margin_loss(x, target, weight=rg.ones(4, requires_grad=True))


# ---------------------------------------------------------------- declared cost
def _reference(p, weighted):
    """The forward and dL/dx of the docstring, on counted arrays (w[t] / C is a constant)."""
    def parts(x, t, w):
        rows, c = np.arange(x.shape[0]), x.shape[1]
        z = (MARGIN - x[rows, t])[:, None] + x
        active = _plain(z) > 0
        active[rows, t] = False
        scale = (_plain(w)[t] if weighted else np.ones(len(t))) / c
        return rows, z, active, scale

    def forward(x, t, w):
        _, z, active, scale = parts(x, t, w)
        hinge = np.where(active, z, 0.0)
        return (hinge * hinge if p == 2 else hinge).sum(axis=1) * scale

    def grad(g, x, t, w, y):
        rows, _, active, scale = parts(_plain(x), _plain(t), w)
        coefficient = (g * scale)[:, None]
        if p == 2:
            z = (MARGIN - x[rows, _plain(t)])[:, None] + x
            grad_x = np.where(active, 2.0 * z * coefficient, 0.0)
        else:
            grad_x = np.where(active, coefficient, 0.0)
        grad_x[rows, _plain(t)] = -grad_x.sum(axis=1)
        return grad_x
    return forward, grad


@pytest.mark.parametrize("need", [True, False])
@pytest.mark.parametrize("p, weighted", [(1, False), (2, True)])
def test_declared_cost_equals_brute_force_counts(p, weighted, need):
    x, target = _randn(3, 5), np.array([0, 4, 2])
    weight = np.abs(_randn(5)) + 0.5 if weighted else None
    forward, grad = _reference(p, weighted)
    _check_cost(MultiMarginLoss, (x, target, weight), (need,), {0: grad}, forward,
                {"p": p, "margin": MARGIN})
