"""The loss tail composed in nn.functional (margin_ranking_loss, hinge_embedding_loss,
cosine_embedding_loss, triplet_margin_loss, pairwise_distance, soft_margin_loss,
multilabel_soft_margin_loss, poisson_nll_loss, gaussian_nll_loss; multi_margin_loss's op is
tested in tests/ops/test_loss_tail.py) and their modules: against PyTorch (outputs and every
gradient, each reduction), float64 finite differences, the kinks and edge cases (targets
other than +-1, zero vectors, x1 == x2, large margins, targets of 0, zero variances, PyTorch's
variance shapes, broadcasting), module state dicts and reprs, and errors naming the op."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from tests.oracle import check_op, randn

SIGNS = np.array([1.0, -1.0, -1.0, 1.0])


def _both(name, **kwargs):
    """F.name and torch's with the same keyword arguments."""
    return (lambda *a: getattr(F, name)(*a, **kwargs),
            lambda *a: getattr(TF, name)(*a, **kwargs))


def _away(z, margin=0.05):
    """Values nudged away from 0 (for hinge arguments built from them)."""
    return np.where(np.abs(z) < margin, np.copysign(margin, z), z)


# name: (keyword arguments, inputs (arrays), positions without gradients). The inputs keep
# every hinge argument away from its kink (checked by the kink tests below instead).
CASES = {
    "margin_ranking_loss": ({"margin": 0.3}, lambda: (
        randn(4, seed=1), randn(4, seed=1) + _away(randn(4, seed=2)) - 0.3 * SIGNS, SIGNS), ()),
    "hinge_embedding_loss": ({"margin": 1.5}, lambda: (
        _away(np.abs(randn(4, 3, seed=3)) * 2 - 1.5) + 1.5, np.array([1, -1, -1, 0])[:, None]),
        (1,)),
    "cosine_embedding_loss": ({"margin": -0.2}, lambda: (
        randn(4, 5, seed=4), randn(4, 5, seed=5), np.array([1, -1, -1, 0])), ()),
    "triplet_margin_loss": ({"margin": 2.0, "p": 3, "swap": True}, lambda: (
        randn(4, 5, seed=6), randn(4, 5, seed=7), randn(1, 5, seed=8)), ()),
    "pairwise_distance": ({"p": 1.5, "keepdim": True}, lambda: (
        randn(4, 5, seed=9), randn(5, seed=10)), ()),
    "soft_margin_loss": ({}, lambda: (randn(4, 3, seed=11) * 3, np.sign(randn(3, seed=12))),
                         (1,)),
    "multilabel_soft_margin_loss": ({}, lambda: (
        randn(4, 3, seed=13) * 3, (randn(4, 3, seed=14) > 0).astype(float),
        np.abs(randn(3, seed=15))), ()),
    "poisson_nll_loss": ({"full": True}, lambda: (
        randn(4, 3, seed=16), np.array([0.0, 0.5, 1.0, 2.5])[:, None] * np.ones(3) + 0.25),
        ()),
    "poisson_nll_loss_rates": ({"log_input": False, "eps": 1e-3}, lambda: (
        np.abs(randn(4, 3, seed=17)) + 0.1, np.abs(randn(4, 3, seed=18)) * 3), ()),
    "gaussian_nll_loss": ({"full": True}, lambda: (
        randn(4, 3, seed=19), randn(4, 3, seed=20), np.abs(randn(4, seed=21)) + 0.1), ()),
    "gaussian_nll_loss_one_dim_of_1": ({"eps": 0.05}, lambda: (
        randn(4, 3, seed=22), randn(4, 3, seed=23), np.array([[0.2, 0.3, 2.0]])), ()),
}


def _name(case):
    return case.split("_rates")[0].split("_one_dim")[0]


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch_for_each_reduction(case):
    kwargs, make, no_grad = CASES[case]
    name, inputs = _name(case), make()
    reductions = ("none",) if name == "pairwise_distance" else ("none", "mean", "sum")
    for reduction in reductions:
        extra = {} if name == "pairwise_distance" else {"reduction": reduction}
        fn, torch_fn = _both(name, **kwargs, **extra)
        check_op(fn, torch_fn, *inputs, no_grad=no_grad, gradcheck=reduction == "none")
    fn, torch_fn = _both(name, **kwargs)
    check_op(fn, torch_fn, *inputs, no_grad=no_grad, dtype=np.float32, gradcheck=False)


# ---------------------------------------------------------------- kinks and edge cases
def test_hinges_pass_the_gradient_at_their_kink_like_torch():
    """clamp_min(., 0) passes dL/dy where its argument is exactly 0 (PyTorch's clamp)."""
    x1, x2 = np.array([1.0, 2.0, 0.5]), np.array([1.0, 1.0, 0.5])
    check_op(*_both("margin_ranking_loss", margin=1.0, reduction="sum"), x1, x2,
             np.array([1.0, 1.0, -1.0]), gradcheck=False, rtol=1e-15, atol=0)
    check_op(*_both("hinge_embedding_loss", margin=2.0, reduction="none"),
             np.array([2.0, 1.0, 3.0]), np.array([-1.0, -1.0, 1.0]), no_grad=(1,),
             gradcheck=False, rtol=1e-15, atol=0)


def test_degenerate_vectors_match_torch():
    """cosine_embedding_loss of zero vectors (the 1e-12 keeps it finite), pairwise and
    triplet distances of equal points (eps keeps the norm's gradient defined), a 0-d target
    with 1-D inputs, and an unbatched triplet."""
    zeros, ones = np.zeros((2, 4)), np.ones((2, 4))
    check_op(*_both("cosine_embedding_loss"), zeros, ones, np.array([1, -1]), gradcheck=False)
    check_op(*_both("cosine_embedding_loss", margin=0.5), randn(4, seed=1), randn(4, seed=2),
             np.array(-1))
    for p in (2, 1, np.inf):
        check_op(*_both("pairwise_distance", p=p), ones, ones, gradcheck=False)
    check_op(*_both("triplet_margin_loss", reduction="none"), randn(5, seed=3),
             randn(5, seed=4), randn(5, seed=5))


def test_soft_margin_loss_is_finite_where_torch_overflows():
    x, y = np.array([50.0, -50.0, 1000.0, -1000.0]), np.array([1.0, 1.0, 1.0, 1.0])
    check_op(*_both("soft_margin_loss", reduction="none"), x[:2], y[:2], no_grad=(1,),
             gradcheck=False)
    ours = rg.tensor(x, requires_grad=True)
    loss = F.soft_margin_loss(ours, rg.tensor(y), reduction="none")
    loss.sum().backward()
    assert loss.tolist()[2:] == [0.0, 1000.0]   # torch: inf at -1000, and a NaN gradient
    assert ours.grad.tolist()[2:] == [0.0, -1.0]


def test_poisson_full_gives_a_zero_target_no_nan_gradient():
    """The Stirling term is 0 for t <= 1; its target gradient there is 0 (PyTorch's masked
    0 * log(0) makes it NaN at t = 0); elsewhere both gradients equal torch's."""
    x, t = randn(5, seed=6), np.array([0.0, 0.5, 1.0, 1.5, 4.0])
    ours = [rg.tensor(a, requires_grad=True) for a in (x, t)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, t)]
    F.poisson_nll_loss(*ours, full=True, reduction="sum").backward()
    TF.poisson_nll_loss(*theirs, full=True, reduction="sum").backward()
    np.testing.assert_allclose(ours[0].grad.numpy(), theirs[0].grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours[1].grad.numpy()[1:], theirs[1].grad.numpy()[1:], rtol=1e-12)
    assert np.isnan(theirs[1].grad.numpy()[0]) and ours[1].grad.numpy()[0] == -x[0]


def test_gaussian_variance_rules_and_the_clamp_follow_torch():
    """var: a number, the input's shape without its last dim, 0-d for a 1-D input, zeros
    (clamped to eps in value, unclamped in gradient), a float64 var promoting the result."""
    x, t = randn(4, 3, seed=7), randn(4, 3, seed=8)
    check_op(lambda a, b: F.gaussian_nll_loss(a, b, 0.5), lambda a, b: TF.gaussian_nll_loss(
        a, b, 0.5), x, t)
    check_op(*_both("gaussian_nll_loss", reduction="none"), x, t,
             np.array([0.0, 1e-9, 1.0, 2.0]), gradcheck=False)
    check_op(*_both("gaussian_nll_loss"), x[0], t[0], np.array(0.7))
    ours = F.gaussian_nll_loss(rg.randn(2, 3), rg.randn(2, 3), rg.ones(2, 3, dtype=rg.float64))
    assert ours.dtype == rg.float64
    for bad in (np.ones(3), np.ones((1, 1)), np.ones((4, 3, 1))):
        with pytest.raises(ValueError, match=r"gaussian_nll_loss: var is of incorrect size"):
            F.gaussian_nll_loss(rg.tensor(x), rg.tensor(t), rg.tensor(bad))
        with pytest.raises(ValueError):
            TF.gaussian_nll_loss(torch.tensor(x), torch.tensor(t), torch.tensor(bad))
    for bad in (-1.0, rg.tensor([[0.5], [-0.1], [1.0], [1.0]])):
        with pytest.raises(ValueError, match="gaussian_nll_loss: var has negative entry"):
            F.gaussian_nll_loss(rg.tensor(x), rg.tensor(t), bad)


def test_multilabel_shapes_and_weight_gradient():
    for shape in ((4,), (2, 3, 4)):
        x, y = randn(*shape, seed=9), (randn(*shape, seed=10) > 0).astype(float)
        check_op(*_both("multilabel_soft_margin_loss", reduction="none"), x, y,
                 np.abs(randn(4, seed=11)), gradcheck=False)
    with pytest.raises(IndexError, match="multilabel_soft_margin_loss: expected an input with "
                                         "a class dim"):
        F.multilabel_soft_margin_loss(rg.tensor(1.0), rg.tensor(1.0))


# ---------------------------------------------------------------- modules
MODULES = [
    ("MarginRankingLoss", {"margin": 0.3}, 3), ("HingeEmbeddingLoss", {"margin": 1.5}, 2),
    ("CosineEmbeddingLoss", {"margin": -0.2}, 3),
    ("TripletMarginLoss", {"margin": 2.0, "p": 3, "swap": True, "reduction": "sum"}, 3),
    ("PairwiseDistance", {"p": 1.5, "keepdim": True}, 2), ("SoftMarginLoss", {}, 2),
    ("MultiLabelSoftMarginLoss", {"weight": np.abs(randn(3, seed=15))}, 2),
    ("MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": np.abs(randn(3, seed=15))}, 2),
    ("PoissonNLLLoss", {"full": True, "reduction": "none"}, 2),
    ("GaussianNLLLoss", {"full": True}, 3),
]


def _module_inputs(name):
    """(inputs, positions without gradients)."""
    if name == "MultiMarginLoss":
        return (randn(4, 3, seed=1), np.array([0, 2, 1, 1])), ()
    if name == "MultiLabelSoftMarginLoss":
        return (randn(4, 3, seed=1), (randn(4, 3, seed=2) > 0).astype(float)), ()
    case = {"MarginRankingLoss": "margin_ranking_loss",
            "HingeEmbeddingLoss": "hinge_embedding_loss",
            "CosineEmbeddingLoss": "cosine_embedding_loss",
            "TripletMarginLoss": "triplet_margin_loss", "PairwiseDistance": "pairwise_distance",
            "SoftMarginLoss": "soft_margin_loss", "PoissonNLLLoss": "poisson_nll_loss",
            "GaussianNLLLoss": "gaussian_nll_loss"}[name]
    return CASES[case][1](), CASES[case][2]


@pytest.mark.parametrize("name, kwargs, arity", MODULES, ids=[m[0] for m in MODULES])
def test_modules_match_torch(name, kwargs, arity):
    weight = kwargs.get("weight")
    ours = getattr(rg.nn, name)(**{**kwargs, **({"weight": rg.tensor(weight)}
                                                if weight is not None else {})})
    theirs = getattr(torch.nn, name)(**{**kwargs, **({"weight": torch.tensor(weight)}
                                                     if weight is not None else {})})
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: rg.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    inputs, no_grad = _module_inputs(name)
    assert len(inputs) == arity
    check_op(ours, theirs, *inputs, no_grad=no_grad, gradcheck=False)


# ---------------------------------------------------------------- errors
def test_bad_inputs_name_the_op():
    a, b = rg.randn(3), rg.randn(3)
    with pytest.raises(RuntimeError, match=r"margin_ranking_loss: all input tensors should have "
                                           r"the same number of dims"):
        F.margin_ranking_loss(a, b.reshape(3, 1), rg.ones(3))
    with pytest.raises(ValueError, match=r"margin_ranking_loss: input1 of shape \(3,\), input2 "
                                         r"of shape \(4,\), target of shape \(3,\) cannot be "
                                         r"broadcast together"):
        F.margin_ranking_loss(a, rg.randn(4), rg.ones(3))
    with pytest.raises(RuntimeError, match="cosine_embedding_loss: 1D target tensor expects 2D "
                                           "input tensors"):
        F.cosine_embedding_loss(rg.randn(3, 4), rg.randn(4), rg.ones(3))
    with pytest.raises(RuntimeError, match="cosine_embedding_loss: 0D or 1D target tensor "
                                           "expected"):
        F.cosine_embedding_loss(rg.randn(3, 4), rg.randn(3, 4), rg.ones(3, 1))
    with pytest.raises(ValueError, match=r"cosine_embedding_loss: the inputs' samples of shape "
                                         r"\(3,\), target of shape \(2,\)"):
        F.cosine_embedding_loss(rg.randn(3, 4), rg.randn(3, 4), rg.ones(2))
    with pytest.raises(ValueError, match="triplet_margin_loss: margin must be greater than 0"):
        F.triplet_margin_loss(a, a, a, margin=0.0)
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater"):
        rg.nn.TripletMarginLoss(margin=-1.0)
    with pytest.raises(RuntimeError, match="triplet_margin_loss: the anchor, positive, and "
                                           "negative tensors are expected to have the same "
                                           "number of dimensions"):
        F.triplet_margin_loss(rg.randn(2, 3), a, rg.randn(2, 3))
    with pytest.raises(ValueError, match=r"pairwise_distance: x1 of shape \(3, 4\) and x2 of "
                                         r"shape \(2, 4\) cannot be broadcast together"):
        F.pairwise_distance(rg.randn(3, 4), rg.randn(2, 4))
    with pytest.raises(RuntimeError, match=r"soft_margin_loss: the loss has the input's shape "
                                           r"\(3, 1\)"):
        F.soft_margin_loss(rg.randn(3, 1), rg.ones(3))
    with pytest.raises(RuntimeError, match="soft_margin_loss: the loss is not differentiable "
                                           "with respect to target"):
        F.soft_margin_loss(a, rg.ones(3, requires_grad=True))
    with pytest.raises(TypeError, match="hinge_embedding_loss: expected a floating-point input, "
                                        "got dtype retrograd.int64"):
        F.hinge_embedding_loss(rg.tensor([1, 2]), rg.tensor([1, -1]))
    with pytest.raises(ValueError, match="poisson_nll_loss: reduction must be"):
        F.poisson_nll_loss(a, b, reduction="batchmean")
    with pytest.raises(ValueError, match="MultiMarginLoss: only p == 1 and p == 2 supported"):
        rg.nn.MultiMarginLoss(p=3)
