"""The activation tail (retrograd/ops/activation_tail.py and the compositions of
nn.functional: glu, softmin, softsign, tanhshrink; gumbel_softmax) against PyTorch (outputs
and gradients, first and second order), float64 finite differences through the engine and
the backward alone, the kinks, large |x| and NaN, half precisions, in-place forms, integer
inputs, the declared costs against brute-force counts, gumbel_softmax's statistics and
straight-through gradient, and argument errors."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradgradcheck
from retrograd.ops.activation_tail import (
    Hardshrink, Hardsigmoid, Hardswish, ScaledElu, Softshrink, Threshold,
)
from tests.oracle import (
    GRADCHECK_TOLERANCES, away_from_kinks, check_backward_alone, check_op, randn,
)
from tests.ops.test_cost_elementwise import _check_op as _check_cost
from tests.ops.test_cost_elementwise import _plain
from tests.ops.test_cost_layers import _randn

SELU = dict(alpha=1.6732632423543772848170429916717, scale=1.0507009873554804934193349852946,
            input_scale=1.0)
# name: (retrograd, torch, kinks, the op and its attributes, or None for a composition).
# CELU's alphas have exact reciprocals: PyTorch's backward uses 1 / alpha rounded to float32.
UNARY = {
    "hardswish": (F.hardswish, TF.hardswish, (-3.0, 3.0), (Hardswish, {})),
    "hardsigmoid": (F.hardsigmoid, TF.hardsigmoid, (-3.0, 3.0), (Hardsigmoid, {})),
    "selu": (F.selu, TF.selu, (0.0,), (ScaledElu, SELU)),
    "celu": (lambda x: F.celu(x, 0.5), lambda x: TF.celu(x, 0.5), (0.0,),
             (ScaledElu, dict(alpha=0.5, scale=1.0, input_scale=2.0))),
    "celu_negative_alpha": (lambda x: F.celu(x, -2.0), lambda x: TF.celu(x, -2.0), (0.0,),
                            (ScaledElu, dict(alpha=-2.0, scale=1.0, input_scale=-0.5))),
    "softshrink": (lambda x: F.softshrink(x, 0.7), lambda x: TF.softshrink(x, 0.7),
                   (-0.7, 0.7), (Softshrink, {"lambd": 0.7})),
    "hardshrink": (F.hardshrink, TF.hardshrink, (-0.5, 0.5), (Hardshrink, {"lambd": 0.5})),
    "threshold": (lambda x: F.threshold(x, 0.4, -2.0), lambda x: TF.threshold(x, 0.4, -2.0),
                  (0.4,), (Threshold, {"threshold": 0.4, "value": -2.0})),
    "glu": (lambda x: F.glu(x, 0), lambda x: TF.glu(x, 0), (), None),
    "softmin": (lambda x: F.softmin(x, 1), lambda x: TF.softmin(x, 1), (), None),
    "softsign": (F.softsign, TF.softsign, (0.0,), None),
    "tanhshrink": (F.tanhshrink, TF.tanhshrink, (), None),
}
OPS = [name for name, row in UNARY.items() if row[3] is not None]
# NOTE: PyTorch's float64 hardsigmoid gradient multiplies by 1/6 rounded to float32 (3e-8
# off); retrograd's divides by 6. Elsewhere the exact tests below compare to 1e-12 or closer.
EXACT_RTOL = {"hardsigmoid": 1e-7}


def _x(shape=(4, 5), seed=0, kinks=()):
    return away_from_kinks(randn(*shape, seed=seed) * 3.0, kinks)


@pytest.mark.parametrize("name", list(UNARY))
def test_matches_torch_and_finite_differences(name):
    fn, torch_fn, kinks, _ = UNARY[name]
    check_op(fn, torch_fn, _x(seed=len(name), kinks=kinks))


@pytest.mark.parametrize("name", list(UNARY))
def test_float32_and_empty_inputs_match_torch(name):
    fn, torch_fn, kinks, _ = UNARY[name]
    check_op(fn, torch_fn, _x((2, 6), seed=1, kinks=kinks), dtype=np.float32)
    check_op(fn, torch_fn, np.zeros((0, 4)), gradcheck=False)


@pytest.mark.parametrize("name", OPS)
def test_backward_alone(name):
    _, _, kinks, (op, attrs) = UNARY[name]
    check_backward_alone(op, [_x((3, 4), seed=2, kinks=kinks)], attrs)


@pytest.mark.parametrize("name", list(UNARY))
def test_twice_differentiable_and_double_backward_matches_torch(name):
    fn, torch_fn, kinks, _ = UNARY[name]
    x = _x((2, 4), seed=3, kinks=kinks)
    assert gradgradcheck(fn, [rg.tensor(x, requires_grad=True)], **GRADCHECK_TOLERANCES)
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    cotangent = randn(*fn(rx).shape, seed=4)
    (gr,) = rg.autograd.grad(fn(rx), rx, rg.tensor(cotangent), create_graph=True)
    (gt,) = torch.autograd.grad(torch_fn(tx), tx, torch.tensor(cotangent), create_graph=True)
    np.testing.assert_allclose(gr.detach().numpy(), gt.detach().numpy(),
                               rtol=EXACT_RTOL.get(name, 1e-12), atol=1e-14)
    if not gr.requires_grad:   # piecewise linear: dL/dx does not depend on x (gradgradcheck
        return                 # saw 0; torch has no double backward for hardsigmoid)
    (gt * gt).sum().backward()
    (gr * gr).sum().backward()
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- kinks and special values
SPECIAL = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 0.5, -0.5, 0.4, 0.7, -0.7, 20.0, -20.0, 1e4, -1e4,
           1e30, -1e30, 1.7e308, -1.7e308, np.inf, -np.inf]


@pytest.mark.parametrize("name", OPS)
def test_kinks_large_values_and_infinities_match_torch(name):
    """Each kink takes PyTorch's value (hardswish: 0 at -3, 1 at 3; hardsigmoid, softshrink,
    hardshrink: 0 at the bounds; selu: scale * alpha at 0; threshold: 0 at the threshold),
    and every finite x gives a finite y and gradient (but CELU with alpha < 0, whose
    exp(x / alpha) overflows for x -> -inf, as in PyTorch); +-inf give PyTorch's values."""
    fn, torch_fn, _, _ = UNARY[name]
    x = np.array(SPECIAL)
    ours, theirs = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no NumPy overflow warnings either
        y = fn(ours)
        y.sum().backward()
    t = torch_fn(theirs)
    t.sum().backward()
    finite = np.isfinite(x)
    pairs = ((y.detach().numpy(), t.detach().numpy()), (ours.grad.numpy(), theirs.grad.numpy()))
    for a, b in pairs:
        assert np.isfinite(a[finite]).all() or name == "celu_negative_alpha"
        if name == "hardswish":   # torch's x * 6 / 6 overflows at 1.7e308; ours is x
            b = np.where(np.abs(x) == 1.7e308, a, b)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=EXACT_RTOL.get(name, 1e-15), atol=0)


def test_nan_inputs_follow_torchs_vectorized_kernels():
    """NaN in: y is NaN; the gradient is NaN (hardswish, selu, celu), 0 (hardsigmoid,
    softshrink, hardshrink) or dL/dy (threshold), as PyTorch's vectorized loops give (its
    scalar tail passes dL/dy on for most of them, so only a long tensor pins torch down)."""
    x = np.full(64, np.nan)
    expected = {"hardswish": np.nan, "selu": np.nan, "celu": np.nan, "hardsigmoid": 0.0,
                "softshrink": 0.0, "hardshrink": 0.0, "threshold": 1.0}
    for name, value in expected.items():
        fn, torch_fn, _, _ = UNARY[name]
        ours, theirs = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        fn(ours).sum().backward()
        torch_fn(theirs).sum().backward()
        assert np.isnan(fn(ours).detach().numpy()).all(), name
        np.testing.assert_array_equal(ours.grad.numpy()[:32], theirs.grad.numpy()[:32])
        np.testing.assert_array_equal(ours.grad.numpy(), np.full(64, value))


@pytest.mark.parametrize("name", OPS)
def test_half_precisions_compute_in_float32_like_torch(name):
    fn, torch_fn, kinks, _ = UNARY[name]
    x = _x((3, 4), seed=5, kinks=kinks).astype(np.float16)
    for dtype in (rg.float16, rg.bfloat16):
        ours = rg.tensor(x, requires_grad=True).to(dtype).detach().requires_grad_()
        theirs = torch.tensor(x).to(getattr(torch, str(dtype).split(".")[-1]))
        theirs.requires_grad_()
        fn(ours).float().sum().backward()
        torch_fn(theirs).float().sum().backward()
        assert fn(ours).dtype == ours.grad.dtype == dtype
        for a, b in ((fn(ours), torch_fn(theirs)), (ours.grad, theirs.grad)):
            np.testing.assert_allclose(a.detach().float().numpy(), b.detach().float().numpy(),
                                       rtol=1e-2, atol=1e-3)


@pytest.mark.parametrize("name", ["hardswish", "hardsigmoid", "selu", "celu", "threshold"])
def test_inplace_writes_the_input_and_backpropagates_like_torch(name):
    fn = {"celu": lambda t, inplace: F.celu(t, 0.5, inplace),
          "threshold": lambda t, inplace: F.threshold(t, 0.4, -2.0, inplace)}.get(
        name, getattr(F, name))
    torch_fn = {"celu": lambda t, inplace: TF.celu(t, 0.5, inplace),
                "threshold": lambda t, inplace: TF.threshold(t, 0.4, -2.0, inplace)}.get(
        name, getattr(TF, name))
    x = _x((3, 4), seed=6, kinks=UNARY[name][2])
    leaf, torch_leaf = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    h, torch_h = leaf * 1.0, torch_leaf * 1.0
    out, torch_out = fn(h, inplace=True), torch_fn(torch_h, inplace=True)
    assert out is h
    np.testing.assert_allclose(h.detach().numpy(), torch_h.detach().numpy(), rtol=1e-12)
    cotangent = randn(3, 4, seed=7)
    (out * rg.tensor(cotangent)).sum().backward()
    (torch_out * torch.tensor(cotangent)).sum().backward()
    # PyTorch's in-place celu/selu differentiate through the output (y + alpha), which loses
    # digits where exp(x) is tiny; retrograd keeps a copy of x
    np.testing.assert_allclose(leaf.grad.numpy(), torch_leaf.grad.numpy(),
                               rtol=EXACT_RTOL.get(name, 1e-9), atol=1e-15)


def test_threshold_keeps_integer_inputs_like_torch():
    x = np.array([-3, 0, 1, 2, 9])
    ours = F.threshold(rg.tensor(x), 1.5, 0.5)
    assert ours.dtype == rg.int64
    assert ours.tolist() == TF.threshold(torch.tensor(x), 1.5, 0.5).tolist() == [0, 0, 0, 2, 9]


def test_glu_halves_any_dim_and_softmin_follows_softmax_conventions():
    x = randn(2, 4, 6, seed=8)
    for dim in (-1, 1, 0):
        check_op(lambda t, d=dim: F.glu(t, d), lambda t, d=dim: TF.glu(t, d), x, gradcheck=False)
    with pytest.warns(UserWarning, match="softmin: implicit dimension choice"):
        implicit = F.softmin(rg.tensor(x[0]))
    np.testing.assert_allclose(implicit.numpy(), TF.softmin(torch.tensor(x[0]), 1).numpy(),
                               rtol=1e-12)
    as_float32 = F.softmin(rg.tensor(x), 2, dtype=rg.float32)
    assert as_float32.dtype == rg.float32


# ---------------------------------------------------------------- gumbel_softmax
def test_gumbel_softmax_samples_follow_the_softmax_of_the_logits():
    """Hard samples are one-hot with class frequencies softmax(logits) (4 sigma of 4000
    draws); soft samples lie on the simplex and are sharper at a lower temperature."""
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    logits = rg.tensor(np.tile(np.log(probs), (4000, 1)))
    rg.manual_seed(3)
    hard = F.gumbel_softmax(logits, hard=True).numpy()
    assert set(np.unique(hard)) == {0.0, 1.0} and (hard.sum(axis=1) == 1).all()
    frequencies = hard.mean(axis=0)
    assert np.all(np.abs(frequencies - probs) < 4 * np.sqrt(probs * (1 - probs) / 4000))
    soft, sharp = (F.gumbel_softmax(logits, tau=tau).numpy() for tau in (1.0, 0.1))
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-12)
    assert sharp.max(axis=1).mean() > soft.max(axis=1).mean() + 0.2
    rg.manual_seed(3)
    assert np.array_equal(F.gumbel_softmax(logits, hard=True).numpy(), hard)   # the generator's


def test_gumbel_softmax_hard_is_straight_through():
    """With the same draw, the hard sample is the one-hot argmax of the soft sample and its
    gradient is the soft sample's."""
    logits = randn(3, 5, seed=9)
    cotangent = rg.tensor(randn(3, 5, seed=10))
    grads, outs = [], []
    for hard in (True, False):
        x = rg.tensor(logits, requires_grad=True)
        rg.manual_seed(11)
        y = F.gumbel_softmax(x, tau=0.5, hard=hard, dim=1)
        (y * cotangent).sum().backward()
        grads.append(x.grad.numpy())
        outs.append(y.detach().numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-15)
    assert np.abs(grads[0]).max() > 0
    one_hot = np.eye(5)[outs[1].argmax(axis=1)]
    np.testing.assert_allclose(outs[0], one_hot, atol=1e-15)
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated"):
        F.gumbel_softmax(rg.tensor(logits), eps=1e-5)


# ---------------------------------------------------------------- errors
def test_bad_arguments_name_the_op():
    with pytest.raises(RuntimeError, match="glu: halving dimension must be even, but dimension "
                                           r"1 is size 3 \(input of shape \(2, 3\)\)"):
        F.glu(rg.randn(2, 3), 1)
    with pytest.raises(RuntimeError, match="glu: glu does not support scalars"):
        F.glu(rg.tensor(1.0))
    with pytest.raises(IndexError, match="glu: dim 2 is out of range"):
        F.glu(rg.randn(2, 4), 2)
    with pytest.raises(RuntimeError, match="softshrink: lambda must be greater or equal to 0, "
                                           "but found to be -1.0"):
        F.softshrink(rg.randn(3), -1.0)
    with pytest.raises(RuntimeError, match="celu: alpha cannot be 0"):
        F.celu(rg.randn(3), 0.0)
    with pytest.raises(TypeError, match="hardswish: expected a floating-point input, got dtype "
                                        "retrograd.int64"):
        F.hardswish(rg.tensor([1, 2]))
    with pytest.raises(TypeError, match="threshold: expected a numeric input, got dtype "
                                        "retrograd.bool"):
        F.threshold(rg.tensor([True]), 0.5, 0.0)
    with pytest.raises(TypeError, match="threshold: value must be a number, got None"):
        F.threshold(rg.randn(3), 0.5, None)
    with pytest.raises(TypeError, match="softmin: expected a floating-point input"):
        F.softmin(rg.tensor([1, 2]), 0)
    with pytest.raises(TypeError, match="softsign: input must be a Tensor, got list"):
        F.softsign([1.0])


# ---------------------------------------------------------------- declared costs
def _selu_like(alpha, scale, input_scale):
    def forward(x):
        negative = scale * alpha * (np.exp(np.minimum(x, 0.0) * input_scale) - 1.0)
        return np.where(_plain(x) > 0, x * scale, negative)

    def grad(g, x, y):
        slope = scale * alpha * input_scale * np.exp(np.minimum(x, 0.0) * input_scale)
        return np.where(_plain(x) > 0, g * scale, g * slope)
    return forward, grad


def _outside(x, lambd):
    return (_plain(x) > lambd) | (_plain(x) < -lambd)


COSTS = {  # name: (op, attrs, forward(x), dL/dx from (g, x, y)), written from the docstrings
    "hardswish": (Hardswish, {},
                  lambda x: x * (np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0),
                  lambda g, x, y: np.where(_plain(x) <= -3.0, 0.0, g * np.where(
                      _plain(x) >= 3.0, 1.0, x / 3.0 + 0.5))),
    "hardsigmoid": (Hardsigmoid, {}, lambda x: np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0,
                    lambda g, x, y: np.where(np.abs(_plain(x)) < 3.0, g / 6.0, 0.0)),
    "selu": (ScaledElu, SELU) + _selu_like(**SELU),
    "softshrink": (Softshrink, {"lambd": 0.2},
                   lambda x: np.where(_outside(x, 0.2), x - np.copysign(0.2, x), 0.0 * x),
                   lambda g, x, y: np.where(_outside(x, 0.2), g, 0.0)),
    "hardshrink": (Hardshrink, {"lambd": 0.2},
                   lambda x: np.where(_outside(x, 0.2), x, 0.0 * x),
                   lambda g, x, y: np.where(_outside(x, 0.2), g, 0.0)),
    "threshold": (Threshold, {"threshold": 0.1, "value": 2.0},
                  lambda x: np.where(_plain(x) <= 0.1, 2.0, x),
                  lambda g, x, y: np.where(_plain(x) <= 0.1, 0.0, g)),
}


@pytest.mark.parametrize("need", [True, False])
@pytest.mark.parametrize("name", list(COSTS))
def test_declared_costs_equal_brute_force_counts(name, need):
    op, attrs, forward, grad = COSTS[name]
    _check_cost(op, (_randn(3, 5),), (need,), {0: grad}, forward, attrs)
