"""The loss ops (retrograd/ops/loss.py) through nn.functional: cross_entropy (fused with
log-softmax; class-index and class-probability targets), nll_loss, mse_loss and
binary_cross_entropy_with_logits, against PyTorch, finite differences, their composition from
elementary retrograd ops, and their argument errors."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradcheck, gradgradcheck
from retrograd.ops.loss import (
    BinaryCrossEntropyWithLogits, CrossEntropy, CrossEntropyProbs, NllLoss,
)
from tests.oracle import check_backward_alone, check_op, randn


def _targets(shape, classes, seed, ignore=()):
    """Random class indices; the flat positions in ``ignore`` are set to -100."""
    t = np.random.default_rng(seed).integers(0, classes, size=shape)
    t.flat[list(ignore)] = -100
    return t


def _probs(shape, seed, axis=1):
    p = np.random.default_rng(seed).random(shape) + 0.05
    return p / p.sum(axis=axis, keepdims=True)


def _ce_pair(target, **kwargs):
    """cross_entropy in both frameworks, with the target (and weight) as constants."""
    weight = kwargs.pop("weight", None)
    rg_w = rg.tensor(weight) if weight is not None else None
    torch_w = torch.tensor(weight) if weight is not None else None
    return (lambda x: F.cross_entropy(x, rg.tensor(target), rg_w, **kwargs),
            lambda x: TF.cross_entropy(x, torch.tensor(target), torch_w, **kwargs))


# ---------------------------------------------------------------- cross_entropy, class indices
# (input shape, ignored flat positions): (N, C), (N, C, d1), (N, C, d1, d2), one unbatched
# sample (C,), a batch of 1, a single class, some targets ignored.
CE_SHAPES = [
    ((5, 4), ()),
    ((3, 4, 5), ()),
    ((2, 3, 2, 2), ()),
    ((4,), ()),
    ((1, 6), ()),
    ((3, 1), ()),
    ((6, 4), (1, 4)),
    ((2, 3, 4), (0, 5, 6)),
]


@pytest.mark.parametrize("shape, ignore", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(shape, ignore, reduction):
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    target = _targets(target_shape, classes, seed=1, ignore=ignore)
    check_op(*_ce_pair(target, reduction=reduction), randn(*shape, seed=2))


@pytest.mark.parametrize("shape, ignore", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_label_smoothing_with_class_weights_matches_torch(shape, ignore, reduction):
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    target = _targets(target_shape, classes, seed=3, ignore=ignore)
    weight = randn(classes, seed=4, low=0.2)
    for smoothing in (0.0, 0.25, 1.0):
        check_op(*_ce_pair(target, weight=weight, reduction=reduction,
                           label_smoothing=smoothing), randn(*shape, seed=5))


@pytest.mark.parametrize("ignore_index", [-100, 2])
def test_cross_entropy_custom_ignore_index_matches_torch(ignore_index):
    target = np.array([0, 2, 1, 2, 3])
    check_op(*_ce_pair(target, ignore_index=ignore_index, label_smoothing=0.1),
             randn(5, 4, seed=6))


@pytest.mark.parametrize("smoothing", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_all_targets_ignored_gives_nan_mean_like_torch(smoothing, weighted):
    target = np.full(4, -100)
    weight = randn(3, seed=7, low=0.2) if weighted else None
    out = check_op(*_ce_pair(target, weight=weight, label_smoothing=smoothing),
                   randn(4, 3, seed=8), gradcheck=False)
    assert np.isnan(out[0].item())
    # 'sum' and 'none' give zeros, not nan
    check_op(*_ce_pair(target, weight=weight, reduction="sum", label_smoothing=smoothing),
             randn(4, 3, seed=8))


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_large_logits_are_stable(reduction, smoothing):
    x = randn(6, 5, seed=9) * 1e4
    target = _targets((6,), 5, seed=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warnings from NumPy
        out = check_op(*_ce_pair(target, reduction=reduction, label_smoothing=smoothing), x,
                       gradcheck=False, rtol=1e-9, atol=1e-7)
    assert np.all(np.isfinite(out[0].detach().numpy()))


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_float32_matches_torch(smoothing):
    target = _targets((16, 3), 10, seed=11, ignore=(2,))
    weight = randn(10, seed=12, low=0.2).astype(np.float32)
    out = check_op(*_ce_pair(target, weight=weight, label_smoothing=smoothing),
                   randn(16, 10, 3, seed=13), dtype=np.float32)
    assert out[0].dtype == rg.float32


def test_cross_entropy_uint8_targets_match_torch():
    target = np.array([1, 0, 2], dtype=np.uint8)
    check_op(*_ce_pair(target), randn(3, 3, seed=14))


class _WeightedCrossEntropy(CrossEntropy):
    """CrossEntropy with class weights bound as an attribute: the oracle would otherwise
    perturb them as a differentiable input."""

    weight = randn(4, seed=15, low=0.2)

    @staticmethod
    def forward(ctx, x, target, **attrs):
        return CrossEntropy.forward(ctx, x, target, _WeightedCrossEntropy.weight, **attrs)

    @staticmethod
    def backward(ctx, grad_out):
        return CrossEntropy.backward(ctx, grad_out)[:2]


@pytest.mark.parametrize("shape, target", [
    ((5, 4), _targets((5,), 4, seed=16, ignore=(2,))),
    ((2, 4, 3), _targets((2, 3), 4, seed=17, ignore=(0,))),
    ((4,), np.array(1)),
])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_backward_alone(shape, target, reduction, smoothing):
    attrs = {"reduction": reduction, "label_smoothing": smoothing}
    x = randn(*shape, seed=18)
    check_backward_alone(CrossEntropy, [x, target, None], attrs)
    check_backward_alone(_WeightedCrossEntropy, [x, target], attrs)


# ---------------------------------------------------------------- cross_entropy, probabilities
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2), (2, 3, 2, 2), (4,), (1, 3)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_probability_targets_match_torch(shape, reduction, smoothing):
    axis = 0 if len(shape) == 1 else 1
    x, p = randn(*shape, seed=20), _probs(shape, seed=21, axis=axis)
    w = randn(shape[axis], seed=22, low=0.2)
    kwargs = {"reduction": reduction, "label_smoothing": smoothing}
    check_op(lambda x, p, w: F.cross_entropy(x, p, w, **kwargs),
             lambda x, p, w: TF.cross_entropy(x, p, w, **kwargs), x, p, w)
    check_op(lambda x, p: F.cross_entropy(x, p, **kwargs),
             lambda x, p: TF.cross_entropy(x, p, **kwargs), x, p, no_grad=(1,))


def test_cross_entropy_probability_targets_float32_and_large_logits():
    x, p = randn(6, 5, seed=23) * 1e4, _probs((6, 5), seed=24)
    check_op(lambda x, p: F.cross_entropy(x, p), lambda x, p: TF.cross_entropy(x, p), x, p,
             dtype=np.float32, gradcheck=False)


@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 2), (3,)])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_cross_entropy_probs_backward_alone(shape, reduction):
    axis = 0 if len(shape) == 1 else 1
    arrays = [randn(*shape, seed=25), _probs(shape, seed=26, axis=axis),
              randn(shape[axis], seed=27, low=0.2)]
    check_backward_alone(CrossEntropyProbs, arrays, {"reduction": reduction,
                                                     "label_smoothing": 0.1})


# ---------------------------------------------------------------- fused vs composed
def _composed_cross_entropy(x, target, weight, smoothing):
    """-sum(q * log_softmax(x)) / sum(w_t), q built as a constant: elementary ops only."""
    n, c = x.shape
    valid = target != -100
    onehot = np.zeros((n, c))
    onehot[np.arange(n)[valid], target[valid]] = 1.0
    q = weight * ((1 - smoothing) * onehot + smoothing / c) * valid[:, None]
    normalizer = (weight[np.where(valid, target, 0)] * valid).sum()
    return -(x.log_softmax(1) * rg.tensor(q)).sum() / float(normalizer)


@pytest.mark.parametrize("smoothing", [0.0, 0.15])
def test_cross_entropy_equals_its_composition(smoothing):
    x = randn(7, 5, seed=30)
    target = _targets((7,), 5, seed=31, ignore=(3,))
    weight = randn(5, seed=32, low=0.2)

    def run(fn):
        xt = rg.tensor(x, requires_grad=True)
        y = fn(xt)
        y.backward(rg.tensor(1.7))
        return y.detach().numpy(), xt.grad.numpy()

    fused = run(lambda x: F.cross_entropy(x, rg.tensor(target), rg.tensor(weight),
                                          label_smoothing=smoothing))
    composed = run(lambda x: _composed_cross_entropy(x, target, weight, smoothing))
    for got, expected in zip(fused, composed):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    if smoothing == 0.0:  # and the other composition: log_softmax then nll_loss
        nll = run(lambda x: F.nll_loss(F.log_softmax(x, 1), rg.tensor(target), rg.tensor(weight)))
        for got, expected in zip(fused, nll):
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_cross_entropy_is_one_node_and_refuses_double_backward():
    x = rg.tensor(randn(3, 4, seed=33), requires_grad=True)
    loss = F.cross_entropy(x, rg.tensor([0, 3, 1]))
    assert loss.grad_fn.name() == "CrossEntropyBackward"
    assert [n.name() for n, _ in loss.grad_fn.next_functions if n is not None] == ["AccumulateGrad"]
    (gx,) = rg.autograd.grad(loss, x, create_graph=True)
    with pytest.raises(RuntimeError, match="CrossEntropyBackward"):
        (gx * gx).sum().backward()


# ---------------------------------------------------------------- nll_loss
@pytest.mark.parametrize("shape, ignore", CE_SHAPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(shape, ignore, reduction, weighted):
    classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else shape[:1] + shape[2:]
    target = _targets(target_shape, classes, seed=40, ignore=ignore)
    weight = randn(classes, seed=41, low=0.2) if weighted else None
    rg_w = rg.tensor(weight) if weighted else None
    torch_w = torch.tensor(weight) if weighted else None
    check_op(lambda x: F.nll_loss(x, rg.tensor(target), rg_w, reduction=reduction),
             lambda x: TF.nll_loss(x, torch.tensor(target), torch_w, reduction=reduction),
             randn(*shape, seed=42))


def test_nll_loss_all_ignored_and_float32_match_torch():
    target = np.full(3, -100)
    out = check_op(lambda x: F.nll_loss(x, rg.tensor(target)),
                   lambda x: TF.nll_loss(x, torch.tensor(target)), randn(3, 4, seed=43),
                   gradcheck=False)
    assert np.isnan(out[0].item())
    target = _targets((8,), 5, seed=44)
    check_op(lambda x: F.nll_loss(x, rg.tensor(target)),
             lambda x: TF.nll_loss(x, torch.tensor(target)), randn(8, 5, seed=45),
             dtype=np.float32)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_backward_alone_and_twice_differentiable(reduction):
    target = _targets((3, 2), 4, seed=46, ignore=(1,))
    x = randn(3, 4, 2, seed=47)
    check_backward_alone(NllLoss, [x, target, None], {"reduction": reduction})
    xt = rg.tensor(x, requires_grad=True)
    assert gradgradcheck(lambda x: F.nll_loss(x, rg.tensor(target), reduction=reduction), [xt],
                         atol=1e-7, rtol=1e-6)


def test_log_softmax_then_nll_loss_double_backward_matches_torch():
    # the composed cross-entropy is twice differentiable, the fused one is not
    x, target = randn(4, 3, seed=48), np.array([2, 0, 1, 1])
    rx, tx = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (gr,) = rg.autograd.grad(F.nll_loss(F.log_softmax(rx, 1), rg.tensor(target)), rx,
                             create_graph=True)
    (gt,) = torch.autograd.grad(TF.nll_loss(TF.log_softmax(tx, 1), torch.tensor(target)), tx,
                                create_graph=True)
    (gr * gr).sum().backward()
    (gt * gt).sum().backward()
    np.testing.assert_allclose(rx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- mse_loss
@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 1, 3), ()])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(shape, reduction):
    check_op(lambda a, b: F.mse_loss(a, b, reduction=reduction),
             lambda a, b: TF.mse_loss(a, b, reduction=reduction),
             np.asarray(randn(*shape, seed=50)), np.asarray(randn(*shape, seed=51)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_weight_matches_torch(reduction):
    weight = np.abs(randn(3, 4, seed=58)) + 0.1
    check_op(lambda a, b, w: F.mse_loss(a, b, reduction=reduction, weight=w),
             lambda a, b, w: TF.mse_loss(a, b, reduction=reduction, weight=w),
             randn(3, 4, seed=56), randn(3, 4, seed=57), weight)
    with pytest.raises(ValueError, match=r"mse_loss: weights and input must have the same "
                                         r"size, got weight of shape \(4,\)"):
        F.mse_loss(rg.randn(3, 4), rg.randn(3, 4), weight=rg.ones(4))


def test_mse_loss_float32_and_twice_differentiable():
    check_op(F.mse_loss, TF.mse_loss, randn(4, 3, seed=52), randn(4, 3, seed=53),
             dtype=np.float32)
    a, b = (rg.tensor(randn(3, 2, seed=s), requires_grad=True) for s in (54, 55))
    assert gradgradcheck(F.mse_loss, [a, b], atol=1e-7, rtol=1e-6)


@pytest.mark.filterwarnings("ignore:Using a target size:UserWarning")  # torch's own warning
def test_mse_loss_broadcasting_warns_like_torch():
    with pytest.warns(UserWarning, match=r"target size \(3,\) that is different from the input "
                                         r"size \(3, 1\)"):
        out = check_op(F.mse_loss, lambda a, b: TF.mse_loss(a, b), randn(3, 1, seed=56),
                       randn(3, seed=57))
    assert out[0].shape == ()


# ---------------------------------------------------------------- BCE with logits
def _bce_inputs(shape, seed):
    return (np.asarray(randn(*shape, seed=seed) * 3),
            np.asarray(np.random.default_rng(seed + 1).random(shape)))


@pytest.mark.parametrize("shape", [(6,), (4, 3), (2, 3, 2), ()])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_torch(shape, reduction):
    x, t = _bce_inputs(shape, seed=60)
    check_op(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
             lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction=reduction), x, t)


@pytest.mark.parametrize("weight_shape, pos_weight_shape", [
    ((4, 3), (3,)), ((3,), (3,)), ((4, 1), (1,)), (None, (3,)), ((4, 3), None),
])
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_with_logits_weights_match_torch(weight_shape, pos_weight_shape, reduction):
    x, t = _bce_inputs((4, 3), seed=61)
    w = randn(*weight_shape, seed=62, low=0.1) if weight_shape else None
    pw = randn(*pos_weight_shape, seed=63, low=0.1) if pos_weight_shape else None

    def wrap(fn, as_tensor):
        def run(x, t):
            return fn(x, t, as_tensor(w) if w is not None else None,
                      pos_weight=as_tensor(pw) if pw is not None else None, reduction=reduction)
        return run

    check_op(wrap(F.binary_cross_entropy_with_logits, rg.tensor),
             wrap(TF.binary_cross_entropy_with_logits, torch.tensor), x, t)


def test_bce_with_logits_weight_gradients_against_finite_differences():
    # PyTorch refuses gradients for weight and pos_weight; retrograd gives them
    x, t = _bce_inputs((4, 3), seed=64)
    arrays = [x, t, randn(4, 3, seed=65, low=0.1), randn(3, seed=66, low=0.1)]
    inputs = [rg.tensor(a, requires_grad=True) for a in arrays]
    assert gradcheck(lambda x, t, w, pw: F.binary_cross_entropy_with_logits(
        x, t, w, pos_weight=pw, reduction="sum"), inputs, atol=1e-7, rtol=1e-6)
    check_backward_alone(BinaryCrossEntropyWithLogits, arrays)
    check_backward_alone(BinaryCrossEntropyWithLogits, [x, t, None, None])


def test_bce_with_logits_large_logits_are_stable():
    x = np.array([-1e4, -50.0, 50.0, 1e4, 1e4, -1e4])
    t = np.array([0.0, 1.0, 0.0, 1.0, 0.3, 0.7])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float64, np.float32):
            out = check_op(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="none"),
                           lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction="none"),
                           x, t, dtype=dtype, gradcheck=False, rtol=1e-6, atol=1e-6)
            assert np.all(np.isfinite(out[0].detach().numpy()))


def test_bce_with_logits_at_zero_is_exact():
    # the closed form sigmoid(x) - t holds at the kink-free point x = 0 (no |x| subgradient)
    x = rg.tensor([0.0, 0.0], requires_grad=True)
    F.binary_cross_entropy_with_logits(x, rg.tensor([1.0, 0.0]), reduction="sum").backward()
    assert x.grad.numpy().tolist() == [-0.5, 0.5]


def test_bce_with_logits_equals_its_composition_away_from_zero():
    x, t = _bce_inputs((5, 4), seed=67)
    x = np.where(np.abs(x) < 0.1, 0.5, x)

    def composed(x, t):
        sp = (-x).relu() + (1.0 + (-x.abs()).exp()).log()
        return ((1.0 - t) * x + sp).mean()

    def run(fn):
        ts = [rg.tensor(a, requires_grad=True) for a in (x, t)]
        y = fn(*ts)
        y.backward()
        return [y.detach().numpy()] + [a.grad.numpy() for a in ts]

    for got, expected in zip(run(F.binary_cross_entropy_with_logits), run(composed)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_bce_with_logits_integer_targets_are_cast():
    y = F.binary_cross_entropy_with_logits(rg.zeros(2), rg.tensor([1, 0]))
    assert y.item() == pytest.approx(np.log(2.0))


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("target, match", [
    (np.zeros((4, 2), dtype=np.int64), r"expected target of shape \(4,\) \(class indices\) for "
                                       r"input of shape \(4, 5\), got target of shape \(4, 2\)"),
    (np.zeros((3,), dtype=np.int64), r"expected target of shape \(4,\) .*got target of shape "
                                     r"\(3,\)"),
    (np.zeros((4,), dtype=np.float64), r"class-probability targets must have the input's shape "
                                       r"\(4, 5\), got target of shape \(4,\)"),
    (np.zeros((4,), dtype=np.int32), r"expected class-index targets of dtype int64 .* shape "
                                     r"\(4,\).*input of shape \(4, 5\); got target of dtype "
                                     r"retrograd.int32 and shape \(4,\)"),
    (np.zeros((4,), dtype=bool), r"got target of dtype retrograd.bool and shape \(4,\)"),
])
def test_cross_entropy_target_errors_name_both_shapes(target, match):
    with pytest.raises((TypeError, ValueError), match=match):
        F.cross_entropy(rg.randn(4, 5), rg.tensor(target))


@pytest.mark.parametrize("target", [[0, 5, 1], [-1, 0, 1], [0, 1, -7]])
def test_cross_entropy_class_index_out_of_range(target):
    bad = [t for t in target if t not in (0, 1)][0]
    with pytest.raises(IndexError, match=rf"target class index {bad} is out of range for 5 "
                                         r"classes"):
        F.cross_entropy(rg.randn(3, 5), rg.tensor(target))
    with pytest.raises(IndexError, match="out of range"):
        F.nll_loss(rg.randn(3, 5), rg.tensor(target))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"weight": rg.ones(4)}, ValueError, r"weight of shape \(4,\) does not match the 5 classes"),
    ({"reduction": "avg"}, ValueError, r"reduction must be 'none', 'mean' or 'sum', got 'avg'"),
    ({"label_smoothing": 1.5}, ValueError, r"cross_entropy: label_smoothing has to be between 0 "
                                           r"and 1, but got 1.5"),
    ({"weight": rg.ones(5, requires_grad=True)}, RuntimeError, r"not differentiable with "
                                                               r"respect to weight"),
])
def test_cross_entropy_argument_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        F.cross_entropy(rg.randn(3, 5), rg.tensor([0, 1, 2]), **kwargs)


def test_cross_entropy_probability_target_refuses_ignore_index():
    with pytest.raises(ValueError, match="ignore_index=1 is not supported for class-probability"):
        F.cross_entropy(rg.randn(3, 5), rg.tensor(_probs((3, 5), seed=70)), ignore_index=1)


def test_loss_input_errors():
    with pytest.raises(TypeError, match=r"cross_entropy: expected a floating-point input, got "
                                        r"dtype retrograd.int64"):
        F.cross_entropy(rg.tensor([[1, 2]]), rg.tensor([0]))
    with pytest.raises(ValueError, match=r"cross_entropy: expected an input of shape \(C,\), "
                                         r"\(N, C\) or \(N, C, d1, ...\), got shape \(\)"):
        F.cross_entropy(rg.tensor(1.0), rg.tensor(0))
    with pytest.raises(TypeError, match=r"nll_loss: expected class-index targets \(int64\), got "
                                        r"target of dtype retrograd.float32"):
        F.nll_loss(rg.randn(3, 2), rg.randn(3, 2))
    with pytest.raises(ValueError, match=r"target size \(3,\) must be the same as input size "
                                         r"\(3, 1\)"):
        F.binary_cross_entropy_with_logits(rg.randn(3, 1), rg.rand(3))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) cannot be broadcast to the "
                                         r"input shape \(3, 3\)"):
        F.binary_cross_entropy_with_logits(rg.randn(3, 3), rg.rand(3, 3), pos_weight=rg.ones(2))


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
def test_losses_keep_low_precision_dtypes(dtype):
    x = rg.tensor(randn(4, 6, 5, seed=80)).to(dtype).requires_grad_()
    target = rg.tensor(_targets((4, 5), 6, seed=81))
    probs = rg.tensor(_probs((4, 6, 5), seed=82)).to(dtype)
    for loss in (F.cross_entropy(x, target, label_smoothing=0.1), F.cross_entropy(x, probs),
                 F.nll_loss(x, target), F.binary_cross_entropy_with_logits(x, probs),
                 F.mse_loss(x, probs)):
        assert loss.dtype == dtype
        x.grad = None
        loss.backward()
        assert x.grad.dtype == dtype
