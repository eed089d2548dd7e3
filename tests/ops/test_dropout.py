"""Dropout (retrograd/ops/dropout.py and F.dropout): mask statistics, scaling, the same mask
in backward, p = 0 and p = 1, eval mode, reproducibility, dtypes and errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd import gradgradcheck
from retrograd.ops.dropout import Dropout
from tests.oracle import check_backward_alone, check_op, randn


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_statistics(p):
    n = 200_000
    y = F.dropout(rg.ones(n), p)
    kept = y.numpy() != 0
    # the kept fraction is Binomial(n, 1 - p) / n: allow 5 standard deviations
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    # independent draws: neighbours are not correlated
    both = np.mean(kept[1:] & kept[:-1])
    assert abs(both - (1 - p) ** 2) < 5 * np.sqrt((1 - p) ** 2 / n)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
@pytest.mark.parametrize("dtype", [rg.float32, rg.float64])
def test_dropout_scales_survivors_and_backward_uses_the_same_mask(p, dtype):
    x = rg.tensor(randn(50, 40, seed=1, low=0.5), dtype=dtype, requires_grad=True)
    y = F.dropout(x, p)
    c = randn(50, 40, seed=2)
    y.backward(rg.tensor(c, dtype=dtype))
    kept = y.detach().numpy() != 0
    assert 0 < kept.mean() < 1
    scale = 1.0 / (1.0 - p)
    tol = 1e-6 if dtype == rg.float32 else 1e-14
    np.testing.assert_allclose(y.detach().numpy()[kept], x.detach().numpy()[kept] * scale, rtol=tol)
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, c * scale, 0.0), rtol=tol)
    assert y.dtype == dtype and x.grad.dtype == dtype


def test_dropout_expected_value_is_unchanged():
    y = F.dropout(rg.ones(400_000, dtype=rg.float64), 0.3)
    assert y.numpy().mean() == pytest.approx(1.0, abs=5 * np.sqrt(0.3 / 0.7 / 400_000))


def test_dropout_p0_and_eval_return_the_input():
    x = rg.randn(3, 4, requires_grad=True)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.5, training=False) is x
    check_op(lambda x: F.dropout(x, 0.5, training=False),
             lambda x: TF.dropout(x, 0.5, training=False), randn(3, 4, seed=3))
    check_op(lambda x: F.dropout(x, 0.0), lambda x: TF.dropout(x, 0.0), randn(3, 4, seed=4))


def test_dropout_p1_gives_zeros_and_zero_gradients_like_torch():
    check_op(lambda x: F.dropout(x, 1.0), lambda x: TF.dropout(x, 1.0), randn(3, 4, seed=5))
    x = rg.randn(3, 4, requires_grad=True)
    F.dropout(x, 1.0).sum().backward()
    assert not np.any(x.grad.numpy())


def test_dropout_is_reproducible_with_manual_seed():
    rg.manual_seed(7)
    a = F.dropout(rg.ones(100), 0.5).numpy()
    b = F.dropout(rg.ones(100), 0.5).numpy()
    rg.manual_seed(7)
    np.testing.assert_array_equal(F.dropout(rg.ones(100), 0.5).numpy(), a)
    assert not np.array_equal(a, b)


class _SeededDropout(Dropout):
    """Dropout that reseeds before each forward: the same mask at every call, so that finite
    differences compare like with like."""

    @staticmethod
    def forward(ctx, x, p=0.5):
        rg.manual_seed(3)
        return Dropout.forward(ctx, x, p=p)


@pytest.mark.parametrize("p", [0.3, 0.0, 1.0])
def test_dropout_backward_alone_and_twice_differentiable(p):
    x = randn(6, 5, seed=6)
    check_backward_alone(_SeededDropout, [x], {"p": p})
    xt = rg.tensor(x, requires_grad=True)
    assert gradgradcheck(lambda x: _SeededDropout.apply(x, p=p), [xt], atol=1e-7, rtol=1e-6)


def test_dropout_float16_keeps_its_dtype():
    x = rg.ones(8, dtype=rg.float16, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    assert y.dtype == rg.float16 and x.grad.dtype == rg.float16
    assert set(np.unique(y.detach().numpy()).tolist()) <= {0.0, 2.0}


def test_dropout_inplace_writes_into_the_input():
    x = rg.randn(4, 5, requires_grad=True)
    h = x * 1.0
    out = F.dropout(h, 0.5, inplace=True)
    assert out is h
    out.sum().backward()
    kept = out.detach().numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 2.0, 0.0))


@pytest.mark.parametrize("p", [-0.1, 1.5, True, "0.5"])
def test_dropout_probability_errors(p):
    with pytest.raises(ValueError, match="dropout: dropout probability has to be between 0 and "
                                         "1, but got"):
        F.dropout(rg.randn(3), p)


def test_dropout_input_errors():
    with pytest.raises(TypeError, match="dropout: input must be a Tensor, got list"):
        F.dropout([1.0, 2.0], 0.5)
    with pytest.raises(TypeError, match=r"dropout: expected a floating-point input, got dtype "
                                        r"retrograd.int64 \(shape \(3,\)\)"):
        F.dropout(rg.tensor([1, 2, 3]), 0.5)


def test_torch_agrees_on_the_dropout_rule():
    # torch's masks differ from ours, but the rule is the same: y in {0, x / (1 - p)}
    x = torch.ones(1000, dtype=torch.float64)
    values = set(np.unique(TF.dropout(x, 0.2).numpy()).tolist())
    assert values == set(np.unique(F.dropout(rg.ones(1000, dtype=rg.float64), 0.2)
                                   .numpy()).tolist()) == {0.0, 1.25}
