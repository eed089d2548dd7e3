"""cumsum and cumprod (retrograd/ops/scan.py, retrograd/_scan.py): values and gradients
against PyTorch over dims, 0-d, size-1 and empty inputs; cumprod's gradient with zeros in the
input (one, several, leading, trailing, all) by finite differences and against PyTorch; both
alone and twice through the engine; dtypes (integers and bools to int64, dtype=, float16
accumulation); errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
from retrograd.autograd import gradgradcheck
from retrograd.ops.scan import Cumprod, Cumsum
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

CASES = [((6,), 0), ((6,), -1), ((3, 4), 1), ((3, 4), 0), ((2, 3, 4), -2), ((1, 5), 0),
         ((0, 3), 1), ((3, 0), 1), ((), 0), ((), -1)]
NAMES = ["cumsum", "cumprod"]


@pytest.mark.parametrize("shape, dim", CASES, ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_matches_torch(name, shape, dim):
    check_op(lambda x: getattr(rg, name)(x, dim), lambda x: getattr(torch, name)(x, dim),
             randn(*shape) if shape else np.array(1.7))


@pytest.mark.parametrize("name", NAMES)
def test_method_float32_matches_torch(name):
    check_op(lambda x: getattr(x, name)(dim=1), lambda x: getattr(x, name)(dim=1), randn(3, 5),
             dtype=np.float32)


ZEROS = {
    "one": [1.5, -2.0, 0.0, 3.0, 0.5],
    "leading": [0.0, 2.0, -1.5, 0.7],
    "trailing": [1.2, -0.8, 2.0, 0.0],
    "two": [1.3, 0.0, 2.0, 0.0, -0.6],
    "adjacent": [0.9, 0.0, 0.0, 1.7, 2.0],
    "three": [0.0, -1.1, 0.0, 2.0, 0.0, 1.5],
    "all": [0.0, 0.0, 0.0],
}


@pytest.mark.parametrize("values", ZEROS.values(), ids=ZEROS.keys())
def test_cumprod_gradient_with_zeros_matches_torch_and_finite_differences(values):
    check_op(lambda x: rg.cumprod(x, 0), lambda x: torch.cumprod(x, 0), np.array(values))


def test_cumprod_gradient_with_zeros_in_some_lanes_of_a_batch():
    x = randn(4, 3, 6)
    x[0, 1, 2] = x[1, 0, 0] = x[1, 0, 4] = x[3, 2, 5] = x[2, :, 1] = 0.0
    for dim in (2, 0, 1):
        check_op(lambda t, d=dim: rg.cumprod(t, d), lambda t, d=dim: torch.cumprod(t, d), x)


@pytest.mark.parametrize("zeros", [(), (2,), (1, 3)], ids=str)
def test_cumprod_backward_alone(zeros):
    x = randn(3, 5)
    x[:, list(zeros)] = 0.0
    check_backward_alone(Cumprod, [x], {"axis": 1})


@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum_backward_alone(reverse):
    check_backward_alone(Cumsum, [randn(3, 4, 2)], {"axis": 1, "reverse": reverse})


def test_reverse_cumsum_sums_from_the_end():
    y = Cumsum.apply(rg.tensor([1.0, 2.0, 3.0]), axis=0, reverse=True)
    assert y.tolist() == [6.0, 5.0, 3.0]


@pytest.mark.parametrize("zeros", [(), (2,), (0, 3)], ids=str)
def test_cumprod_twice_differentiable(zeros):
    x = randn(2, 5)
    x[:, list(zeros)] = 0.0
    t = rg.tensor(x, requires_grad=True)
    assert gradgradcheck(lambda v: rg.cumprod(v, 1), [t], **GRADCHECK_TOLERANCES)


def test_cumsum_twice_differentiable():
    t = rg.tensor(randn(3, 4), requires_grad=True)
    assert gradgradcheck(lambda v: rg.cumsum(v * v, 1), [t], **GRADCHECK_TOLERANCES)


def test_cumprod_double_backward_matches_torch_with_zeros():
    x = np.array([[1.5, 0.0, 2.0, 0.0, -0.5], [0.3, 1.2, -2.0, 0.7, 1.1]])
    cot = np.random.default_rng(3).standard_normal(x.shape)
    ours = rg.tensor(x, requires_grad=True)
    (g,) = rg.autograd.grad((rg.cumprod(ours, 1) * rg.tensor(cot)).sum(), ours, create_graph=True)
    (g * g).sum().backward()
    theirs = torch.tensor(x, requires_grad=True)
    (h,) = torch.autograd.grad((torch.cumprod(theirs, 1) * torch.tensor(cot)).sum(), theirs,
                               create_graph=True)
    (h * h).sum().backward()
    np.testing.assert_allclose(g.detach().numpy(), h.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("name", NAMES)
def test_integers_and_bools_give_int64_as_torch(name, dtype):
    x = np.array([[1, 0, 3], [2, 2, 1]]).astype(dtype)
    got, want = getattr(rg, name)(rg.tensor(x), 1), getattr(torch, name)(torch.from_numpy(x), 1)
    assert got.dtype == rg.int64 and want.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_dtype_argument_casts_first_and_the_gradient_keeps_the_input_dtype(name):
    x = rg.tensor(randn(2, 3), dtype=rg.float32, requires_grad=True)
    y = getattr(rg, name)(x, 1, dtype=rg.float64)
    assert y.dtype == rg.float64
    y.sum().backward()
    assert x.grad.dtype == rg.float32
    assert getattr(rg, name)(rg.tensor([1, 2]), 0, dtype=rg.float32).dtype == rg.float32


def test_float16_cumsum_accumulates_wide_as_torch():
    x = np.full(3000, 0.1, dtype=np.float16)
    got = rg.cumsum(rg.tensor(x), 0).numpy()
    want = torch.cumsum(torch.from_numpy(x), 0).numpy()
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-3)
    assert got[-1] > 290      # a float16 accumulator would stall at 256


def test_bfloat16_cumprod_keeps_the_dtype():
    y = rg.cumprod(rg.tensor([1.5, 2.0, 0.5], dtype=rg.bfloat16), 0)
    assert y.dtype == rg.bfloat16 and y.float().tolist() == [1.5, 3.0, 1.5]


@pytest.mark.parametrize("name", NAMES)
def test_errors_name_the_op(name):
    with pytest.raises(IndexError, match=rf"{name}: dim 2 is out of range"):
        getattr(rg, name)(rg.ones(2, 3), 2)
    with pytest.raises(TypeError, match=rf"{name}: dim must be an int"):
        getattr(rg, name)(rg.ones(2, 3), None)
    with pytest.raises(TypeError):
        getattr(rg, name)(rg.ones(2, 3))           # dim is required, as in torch
    with pytest.raises(TypeError, match=rf"{name}: input must be a Tensor"):
        getattr(rg, name)([1.0, 2.0], 0)


def test_the_products_gradient_equals_the_masked_one_on_arrays():
    from retrograd.ops.scan import products_gradient
    x = randn(3, 6)
    x[0, 2] = x[1, 0] = x[1, 3] = x[2, 5] = 0.0
    g = randn(3, 6, seed=4)
    ctx = Cumprod.__new__(Cumprod)
    ctx.needs_input_grad = (True,)
    Cumprod.forward(ctx, x, axis=1)
    np.testing.assert_allclose(products_gradient(x, g, 1), Cumprod.backward(ctx, g), rtol=1e-12,
                               atol=1e-15)
