"""The losses of retrograd/ops/loss_extra.py (binary_cross_entropy, kl_div, smooth_l1_loss,
huber_loss) and the composed l1_loss, through nn.functional, against PyTorch: values and the
gradients of input and target (and the weights where they have one), every reduction,
broadcasting, float64 finite differences (first and second order, through the engine and the
backward alone), edges (probabilities 0 and 1, zero targets, -inf log-probabilities, kinks
at |d| = beta), declared costs against brute-force counts, and argument errors."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradgradcheck
from retrograd.ops.loss_extra import BinaryCrossEntropy, HuberLoss, KlDiv, SmoothL1Loss
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn
from tests.ops.test_cost_elementwise import _check_op as _check_cost
from tests.ops.test_cost_elementwise import _plain
from tests.ops.test_cost_layers import _randn

REDUCTIONS = ["mean", "sum", "none"]


def _probs(*shape, seed=0, low=0.05):
    """Probabilities in [low, 1 - low] (away from the clamps at 0 and 1)."""
    return np.asarray(low + (1 - 2 * low) * np.random.default_rng(seed).random(shape))


def _torch_quiet(fn):
    """fn with torch's broadcasting and 'mean' warnings silenced (ours are tested apart)."""
    def run(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(*args)
    return run


# ---------------------------------------------------------------- binary_cross_entropy
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 4), ()])
def test_bce_matches_torch_input_and_target_gradients(shape, reduction):
    x, t = _probs(*shape, seed=1), _probs(*shape, seed=2, low=0.0)
    check_op(lambda x, t: F.binary_cross_entropy(x, t, reduction=reduction),
             lambda x, t: TF.binary_cross_entropy(x, t, reduction=reduction), x, t)


@pytest.mark.parametrize("w_shape", [(4,), (3, 1), (3, 4), (1,)])
def test_bce_weight_broadcasts_like_torch(w_shape):
    x, t, w = _probs(3, 4, seed=3), _probs(3, 4, seed=4, low=0.0), _probs(*w_shape, seed=5)
    for reduction in REDUCTIONS:
        check_op(lambda x, t, w: F.binary_cross_entropy(x, t, w, reduction=reduction),
                 lambda x, t, w: TF.binary_cross_entropy(x, t, w, reduction=reduction),
                 x, t, w, no_grad=(2,))


def test_bce_float32_and_hard_targets_match_torch():
    x, t = _probs(5, 6, seed=6, low=1e-3), (_probs(5, 6, seed=7, low=0.0) > 0.5) * 1.0
    check_op(lambda x, t: F.binary_cross_entropy(x, t), lambda x, t: TF.binary_cross_entropy(x, t),
             x, t, dtype=np.float32)
    check_op(lambda x, t: F.binary_cross_entropy(x, t), lambda x, t: TF.binary_cross_entropy(x, t),
             x, t, no_grad=(1,))


def test_bce_at_probabilities_0_and_1_is_clamped_like_torch():
    """log clamped at -100 (loss 100 w at most), x (1 - x) at 1e-12 in dL/dx, dL/dt = -logit(x)
    unclamped (+-inf at 0 and 1): equal to torch's, infinities included."""
    tiny = np.finfo(np.float64).tiny
    x = np.array([0.0, 1.0, 0.0, 1.0, tiny, 1.0 - 2 ** -53, 1e-300, 0.5])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.7, 0.3, 1.0, 0.5])
    ours = [rg.tensor(x, requires_grad=True), rg.tensor(t, requires_grad=True)]
    theirs = [torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)]
    cotangent = randn(8, seed=8)
    F.binary_cross_entropy(*ours, reduction="none").backward(rg.tensor(cotangent))
    loss = TF.binary_cross_entropy(*theirs, reduction="none")
    loss.backward(torch.tensor(cotangent))
    np.testing.assert_allclose(F.binary_cross_entropy(*ours, reduction="none").detach().numpy(),
                               loss.detach().numpy(), rtol=1e-14)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-14)
    assert np.isfinite(ours[0].grad.numpy()).all()


def test_bce_backward_alone_and_twice_differentiable_like_torch():
    x, t, w = _probs(3, 4, seed=9, low=0.1), _probs(3, 4, seed=10), _probs(4, seed=11)
    check_backward_alone(BinaryCrossEntropy, [x, t, None])   # (w has no gradient, by design)
    inputs = [rg.tensor(x, requires_grad=True), rg.tensor(t, requires_grad=True)]
    assert gradgradcheck(lambda x, t: F.binary_cross_entropy(x, t, rg.tensor(w)), inputs,
                         **GRADCHECK_TOLERANCES)
    rx, rt = (rg.tensor(a, requires_grad=True) for a in (x, t))
    tx, tt = (torch.tensor(a, requires_grad=True) for a in (x, t))
    gr = rg.autograd.grad(F.binary_cross_entropy(rx, rt), [rx, rt], create_graph=True)
    gt = torch.autograd.grad(TF.binary_cross_entropy(tx, tt), [tx, tt], create_graph=True)
    sum(g.sum() * k for k, g in enumerate(gr, 1)).backward()
    sum(g.sum() * k for k, g in enumerate(gt, 1)).backward()
    for a, b in ((rx, tx), (rt, tt)):  # torch adds its 1e-12 to x and 1 - x here: ~1e-11
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-9)


def test_bce_errors():
    x = rg.tensor([0.2, 0.7])
    for bad, name in (([1.5, 0.2], "input"), ([-0.1, 0.2], "input"), ([float("nan"), 0.2],
                                                                      "input")):
        with pytest.raises(RuntimeError, match=f"binary_cross_entropy: all elements of {name} "
                                               "should be between 0 and 1"):
            F.binary_cross_entropy(rg.tensor(bad), x)
    with pytest.raises(RuntimeError, match=r"all elements of target should be between 0 and 1, "
                                           r"got 2.0 at index \(1,\)"):
        F.binary_cross_entropy(x, rg.tensor([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy: using a target size \(1, 2\) "
                                         r"that is different to the input size \(2,\)"):
        F.binary_cross_entropy(x, rg.tensor([[0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"weight of shape \(3,\) cannot be broadcast to the "
                                         r"input shape \(2,\)"):
        F.binary_cross_entropy(x, x, weight=rg.ones(3))
    with pytest.raises(RuntimeError, match="binary_cross_entropy: the loss is not "
                                           "differentiable with respect to weight"):
        F.binary_cross_entropy(x, x, weight=rg.ones(2, requires_grad=True))
    with pytest.raises(TypeError, match="binary_cross_entropy: expected a floating-point input"):
        F.binary_cross_entropy(rg.tensor([0, 1]), x)
    assert F.binary_cross_entropy(x, rg.tensor([0, 1])).item() == pytest.approx(
        TF.binary_cross_entropy(torch.tensor([0.2, 0.7]), torch.tensor([0.0, 1.0])).item())
    assert np.isnan(F.binary_cross_entropy(rg.zeros(0, 3), rg.zeros(0, 3)).item())


# ---------------------------------------------------------------- kl_div
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "none", "mean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shapes", [((3, 5), (3, 5)), ((2, 3, 4), (2, 3, 4)), ((3, 5), (5,)),
                                    ((5,), (3, 5)), ((), ())])
def test_kl_div_matches_torch_input_and_target_gradients(shapes, log_target, reduction):
    x = np.asarray(np.log(_probs(*shapes[0], seed=12)))
    t = _probs(*shapes[1], seed=13)
    t = np.asarray(np.log(t)) if log_target else t

    def ours(x, t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return F.kl_div(x, t, reduction=reduction, log_target=log_target)

    check_op(ours, _torch_quiet(lambda x, t: TF.kl_div(x, t, reduction=reduction,
                                                        log_target=log_target)), x, t)


def test_kl_div_float32_and_softmax_pipeline_match_torch():
    logits, t = randn(4, 6, seed=14), _probs(4, 6, seed=15)
    t = t / t.sum(1, keepdims=True)
    check_op(lambda z, t: F.kl_div(F.log_softmax(z, 1), t, reduction="batchmean"),
             lambda z, t: TF.kl_div(TF.log_softmax(z, 1), t, reduction="batchmean"), logits, t,
             dtype=np.float32)


def test_kl_div_zero_target_contributes_zero_even_at_minus_inf():
    """t = 0 contributes 0 (torch agrees where x is finite; at x = -inf torch's 0 * -inf is
    NaN, retrograd's 0 is the limit); dL/dx = -t = 0 there; with log_target, exp(t) = 0."""
    x = np.array([-1.0, -np.inf, -2.0, -0.5])
    t = np.array([0.5, 0.0, 0.0, 0.5])
    check_op(lambda x, t: F.kl_div(x, t, reduction="none"),
             lambda x, t: TF.kl_div(x, t, reduction="none"), x[[0, 2, 3]], t[[0, 2, 3]],
             no_grad=(1,), gradcheck=False)
    xt = rg.tensor(x, requires_grad=True, dtype=rg.float64)
    loss = F.kl_div(xt, rg.tensor(t, dtype=rg.float64), reduction="sum")
    loss.backward()
    expected = np.sum(t[[0, 3]] * (np.log(t[[0, 3]]) - x[[0, 3]]))
    assert loss.item() == pytest.approx(expected, rel=1e-15)
    assert xt.grad.tolist() == [-0.5, -0.0, -0.0, -0.5]
    log_t = rg.tensor([np.log(0.5), -np.inf, -np.inf, np.log(0.5)], requires_grad=True,
                      dtype=rg.float64)
    xt.grad = None
    loss = F.kl_div(xt, log_t, reduction="sum", log_target=True)
    loss.backward()
    assert loss.item() == pytest.approx(expected, rel=1e-15)
    assert xt.grad.tolist() == [-0.5, -0.0, -0.0, -0.5]
    assert log_t.grad.numpy()[1:3].tolist() == [0.0, 0.0]
    # without log_target the target gradient at t = 0 is the one-sided limit -inf
    tt = rg.tensor(t, requires_grad=True, dtype=rg.float64)
    F.kl_div(rg.tensor(x[[0, 0, 2, 3]], dtype=rg.float64), tt, reduction="sum").backward()
    assert tt.grad.numpy()[1] == -np.inf


def test_kl_div_backward_alone_and_twice_differentiable():
    x, t = np.log(_probs(3, 4, seed=16)), _probs(3, 4, seed=17)
    for log_target, target in ((False, t), (True, np.log(t))):
        check_backward_alone(KlDiv, [x, target], {"log_target": log_target})
        inputs = [rg.tensor(x, requires_grad=True), rg.tensor(target, requires_grad=True)]
        assert gradgradcheck(lambda a, b: F.kl_div(a, b, reduction="sum", log_target=log_target),
                             inputs, **GRADCHECK_TOLERANCES)


def test_kl_div_reductions_warnings_and_errors():
    x, t = rg.tensor(np.log(_probs(2, 3, seed=18))), rg.tensor(_probs(2, 3, seed=19))
    with pytest.warns(UserWarning, match="kl_div: reduction 'mean' divides the total loss by "
                                         "both the batch size and the support size"):
        mean = F.kl_div(x, t)
    assert mean.item() == pytest.approx(F.kl_div(x, t, reduction="sum").item() / 6, rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batchmean = F.kl_div(x, t, reduction="batchmean")
        with pytest.warns(DeprecationWarning):
            legacy = F.kl_div(x, t, size_average=False)
    assert batchmean.item() == pytest.approx(mean.item() * 3, rel=1e-6)
    assert legacy.item() == pytest.approx(batchmean.item() * 2, rel=1e-6)
    scalar = F.kl_div(rg.tensor(-1.0), rg.tensor(0.5), reduction="batchmean")   # 0-d: the sum
    assert scalar.item() == pytest.approx(0.5 * (np.log(0.5) + 1.0))
    with pytest.raises(ValueError, match="kl_div: reduction must be 'none', 'batchmean', 'sum' or "
                                         "'mean', got 'avg'"):
        F.kl_div(x, t, reduction="avg")
    with pytest.raises(TypeError, match="kl_div: expected a floating-point target, got dtype "
                                        "retrograd.int64"):
        F.kl_div(x, rg.tensor([[1, 0, 0], [0, 1, 0]]), reduction="sum")
    with pytest.raises(ValueError, match=r"kl_div: the input of shape \(2, 3\) and the target of "
                                         r"shape \(4,\) cannot be broadcast together"):
        F.kl_div(x, rg.ones(4), reduction="sum")


# ---------------------------------------------------------------- smooth_l1, huber, l1
def _pair(shapes, seed):
    """input and target whose differences stay away from the kinks |d| in {0, 0.5, 1, 2}."""
    x = np.asarray(randn(*shapes[0], seed=seed) * 2.0)
    t = np.asarray(randn(*shapes[1], seed=seed + 1) * 2.0)
    d = x - t
    for kink in (0.0, 0.5, 1.0, 2.0):
        for sign in (1.0, -1.0):
            close = np.abs(d - sign * kink) < 0.05
            x = np.where(close, x + 0.1, x)
            d = x - t
    return x, t


POINTWISE = {
    "smooth_l1": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r),
                  lambda x, t, r: TF.smooth_l1_loss(x, t, reduction=r)),
    "smooth_l1_beta": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.5),
                       lambda x, t, r: TF.smooth_l1_loss(x, t, reduction=r, beta=0.5)),
    "smooth_l1_beta0": (lambda x, t, r: F.smooth_l1_loss(x, t, reduction=r, beta=0.0),
                        lambda x, t, r: TF.smooth_l1_loss(x, t, reduction=r, beta=0.0)),
    "huber": (lambda x, t, r: F.huber_loss(x, t, reduction=r),
              lambda x, t, r: TF.huber_loss(x, t, reduction=r)),
    "huber_delta": (lambda x, t, r: F.huber_loss(x, t, reduction=r, delta=2.0),
                    lambda x, t, r: TF.huber_loss(x, t, reduction=r, delta=2.0)),
    "l1": (lambda x, t, r: F.l1_loss(x, t, reduction=r),
           lambda x, t, r: TF.l1_loss(x, t, reduction=r)),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shapes", [((7,), (7,)), ((3, 4), (3, 4)), ((2, 3, 4), (2, 3, 4)),
                                    ((), ()), ((3, 4), (4,)), ((4,), (3, 4))])
@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_losses_match_torch(name, shapes, reduction):
    ours, theirs = POINTWISE[name]

    def run_ours(x, t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return ours(x, t, reduction)

    check_op(run_ours, _torch_quiet(lambda x, t: theirs(x, t, reduction)), *_pair(shapes, 20))


@pytest.mark.parametrize("name", list(POINTWISE))
def test_pointwise_losses_float32_kinks_and_infinities_match_torch(name):
    ours, theirs = POINTWISE[name]
    check_op(lambda x, t: ours(x, t, "mean"), lambda x, t: theirs(x, t, "mean"),
             *_pair(((5, 6), (5, 6)), 21), dtype=np.float32)
    d = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 1e30, -1e30, 1.7e308, np.inf, -np.inf])
    check_op(lambda x, t: ours(x, t, "none"), lambda x, t: theirs(x, t, "none"),
             d, np.zeros_like(d), gradcheck=False, rtol=1e-15, atol=0)


@pytest.mark.parametrize("op, attrs", [(SmoothL1Loss, {"beta": 0.7}), (HuberLoss, {"delta": 1.5})])
def test_smooth_l1_and_huber_backward_alone_and_twice_differentiable(op, attrs):
    x, t = _pair(((3, 4), (3, 4)), 22)
    check_backward_alone(op, [x, t], attrs)
    fn = (lambda a, b: F.smooth_l1_loss(a, b, beta=0.7)) if op is SmoothL1Loss else \
        (lambda a, b: F.huber_loss(a, b, delta=1.5))
    inputs = [rg.tensor(x, requires_grad=True), rg.tensor(t, requires_grad=True)]
    assert gradgradcheck(fn, inputs, **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_huber_and_l1_weights_match_torch(reduction):
    x, t = _pair(((3, 4), (3, 4)), 23)
    w = _probs(3, 4, seed=24)
    check_op(lambda x, t, w: F.huber_loss(x, t, reduction, 0.8, weight=w),
             lambda x, t, w: TF.huber_loss(x, t, reduction, 0.8, weight=w), x, t, w)
    check_op(lambda x, t, w: F.l1_loss(x, t, reduction=reduction, weight=w),
             lambda x, t, w: TF.l1_loss(x, t, reduction=reduction, weight=w), x, t, w)


def test_pointwise_loss_warnings_and_errors():
    x = rg.randn(2, 3)
    for fn in (F.smooth_l1_loss, F.huber_loss, F.l1_loss):
        name = fn.__name__
        with pytest.warns(UserWarning, match=rf"{name}: using a target size \(3,\) that is "
                                             rf"different to the input size \(2, 3\)"):
            fn(x, rg.randn(3))
        with pytest.raises(ValueError, match=rf"{name}: the input of shape \(2, 3\) and the "
                                             rf"target of shape \(4,\) cannot be broadcast"):
            fn(x, rg.randn(4))
        with pytest.raises(TypeError, match=f"{name}: target must be a Tensor, got ndarray"):
            fn(x, np.zeros((2, 3)))
        with pytest.raises(TypeError, match=f"{name}: expected a floating-point input"):
            fn(rg.tensor([1, 2]), rg.tensor([1.0, 2.0]))
    assert F.l1_loss(rg.tensor([1.0, 2.0]), rg.tensor([0, 4])).item() == 1.5   # int target
    with pytest.raises(ValueError, match="smooth_l1_loss: beta must be >= 0"):
        F.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(ValueError, match="huber_loss: delta must be > 0, got 0.0"):
        F.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match=r"huber_loss: weights and input must have the same "
                                         r"size, got weight of shape \(3,\)"):
        F.huber_loss(x, x, weight=rg.ones(3))
    with pytest.raises(ValueError, match="l1_loss: reduction must be 'none', 'mean' or 'sum'"):
        F.l1_loss(x, x, reduction="batchmean")
    with pytest.warns(DeprecationWarning):
        assert F.smooth_l1_loss(x, x * 0.0, reduce=False).shape == (2, 3)


# ---------------------------------------------------------------- half precisions
@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
@pytest.mark.parametrize("name", ["bce", "kl_div", "kl_div_log_target", "smooth_l1", "huber",
                                  "l1"])
def test_losses_keep_low_precision_dtypes_and_stay_close_to_float64(name, dtype):
    fn = {"bce": F.binary_cross_entropy,
          "kl_div": lambda x, t: F.kl_div(x.log(), t, reduction="batchmean"),
          "kl_div_log_target": lambda x, t: F.kl_div(x.log(), t.log(), reduction="sum",
                                                     log_target=True),
          "smooth_l1": lambda x, t: F.smooth_l1_loss(x, t, beta=0.3),
          "huber": lambda x, t: F.huber_loss(x, t, delta=0.3), "l1": F.l1_loss}[name]
    x, t = (rg.tensor(a).to(dtype).requires_grad_() for a in (_probs(3, 4, seed=30),
                                                              _probs(3, 4, seed=31)))
    y = fn(x, t)
    y.float().backward()
    assert y.dtype == x.grad.dtype == t.grad.dtype == dtype
    ref = [rg.tensor(a.detach().float().numpy().astype(np.float64), requires_grad=True)
           for a in (x, t)]
    fn(*ref).backward()
    np.testing.assert_allclose(y.float().item(), fn(*ref).item(), rtol=2e-2)
    for a, b in zip((x, t), ref):
        np.testing.assert_allclose(a.grad.float().numpy(), b.grad.numpy(), rtol=3e-2, atol=2e-2)


# ---------------------------------------------------------------- declared costs
NEEDS = [(True, True), (True, False), (False, True), (False, False)]


def _bce(x, t, w=None):
    loss = -(t * np.maximum(np.log(x), -100.0) + (1.0 - t) * np.maximum(np.log(1.0 - x), -100.0))
    return loss * w if w is not None else loss


@pytest.mark.parametrize("needs", NEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_cost_equals_brute_force_counts(needs, weighted):
    x, t = _probs(3, 4, seed=25), _probs(3, 4, seed=26)
    w = _probs(4, seed=27) if weighted else None
    scale = (lambda g, w: g * w) if weighted else (lambda g, w: g)
    grads = {0: lambda g, x, t, w, y: scale(g, w) * (x - t) / np.maximum(x * (1.0 - x),
                                                                         1e-12),
             1: lambda g, x, t, w, y: scale(g, w) * (np.log(1.0 - x) - np.log(x))}
    if weighted and needs[0] and needs[1]:   # the op forms dL/dy * w once for both
        shared = {}

        def once(g, w):
            if "g" not in shared:
                shared["g"] = g * w
            return shared["g"]
        scale = once
    _check_cost(BinaryCrossEntropy, (x, t, w), needs + (False,) if weighted else needs,
                grads, _bce)


@pytest.mark.parametrize("needs", NEEDS)
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_cost_equals_brute_force_counts(needs, log_target):
    x, t = np.log(_probs(3, 4, seed=28)), _probs(4, seed=29)
    if log_target:
        shared = {}

        def scaled(g, t):   # dL/dy * exp(t), formed once for both gradients
            if "s" not in shared:
                shared["s"] = g * np.exp(t)
            return shared["s"]
        forward = lambda x, t: np.where(_plain(np.exp(_plain(t))) == 0, 0.0,  # noqa: E731
                                        np.exp(t) * (t - x))
        grads = {0: lambda g, x, t, y: -scaled(g, t),
                 1: lambda g, x, t, y: np.where(_plain(np.exp(_plain(t))) == 0, 0.0,
                                                scaled(g, t) * (t - x + 1.0))}
    else:
        forward = lambda x, t: np.where(_plain(t) == 0, 0.0, t * np.log(t) - t * x)  # noqa: E731
        grads = {0: lambda g, x, t, y: -(g * t), 1: lambda g, x, t, y: g * (np.log(t) + 1.0 - x)}
    _check_cost(KlDiv, (x, t), needs, grads, forward, {"log_target": log_target})


@pytest.mark.parametrize("needs", NEEDS)
@pytest.mark.parametrize("op", [SmoothL1Loss, HuberLoss])
def test_smooth_l1_and_huber_costs_equal_brute_force_counts(op, needs):
    x, t = _randn(3, 4), _randn(4)
    k = 0.8
    if op is SmoothL1Loss:
        def forward(x, t):
            d = x - t
            return np.where(_plain(np.abs(_plain(d))) < k, (0.5 * d * d) / k, np.abs(d) - 0.5 * k)

        def gradient(g, x, t):
            return g * (np.minimum(np.maximum(x - t, -k), k) / k)
        attrs = {"beta": k}
    else:
        def forward(x, t):
            d = x - t
            return np.where(_plain(np.abs(_plain(d))) < k, 0.5 * d * d, k * (np.abs(d) - 0.5 * k))

        def gradient(g, x, t):
            return g * np.minimum(np.maximum(x - t, -k), k)
        attrs = {"delta": k}
    shared = {}

    def once(g, x, t):
        if "g" not in shared:
            shared["g"] = gradient(g, x, t)
        return shared["g"]
    grads = {0: lambda g, x, t, y: once(g, x, t), 1: lambda g, x, t, y: -once(g, x, t)}
    _check_cost(op, (x, t), needs, grads, forward, attrs)
