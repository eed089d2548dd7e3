"""AdaptiveMaxPool2d (retrograd/ops/pool.py) through F.adaptive_max_pool1d/2d and the layers:
against PyTorch (values, indices, gradients), finite differences, PyTorch's conventions at
ties and NaN, overlapping windows, the declared cost against brute-force counts, and the
errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.ops.pool import AdaptiveMaxPool2d, adaptive_windows
from tests.flop_count import counted
from tests.ops.cost_harness import check
from tests.oracle import check_backward_alone, check_op, randn

TF = torch.nn.functional
NAN = float("nan")


@pytest.mark.parametrize("shape, size", [
    ((2, 3, 7, 9), (3, 4)),          # overlapping windows of two sizes
    ((2, 2, 6, 8), (3, 2)),          # windows that tile the input
    ((1, 2, 3, 4), (5, 7)),          # output larger than the input: pixels repeat
    ((2, 2, 5, 6), (None, 1)),       # None keeps the input's size
    ((3, 4, 5), 1),                  # unbatched, global max
])
def test_adaptive_max_pool2d_matches_torch_and_finite_differences(shape, size):
    outs = check_op(lambda x: F.adaptive_max_pool2d(x, size, return_indices=True),
                    lambda x: TF.adaptive_max_pool2d(x, size, return_indices=True),
                    randn(*shape, seed=1))
    assert outs[1].dtype == rg.int64 and not outs[1].requires_grad


@pytest.mark.parametrize("shape, size", [((2, 3, 10), 4), ((3, 7), 3)])
def test_adaptive_max_pool1d_matches_torch_and_finite_differences(shape, size):
    check_op(lambda x: F.adaptive_max_pool1d(x, size, True),
             lambda x: TF.adaptive_max_pool1d(x, size, True), randn(*shape, seed=2))


def test_backward_alone_matches_finite_differences():
    check_backward_alone(AdaptiveMaxPool2d, [randn(2, 2, 5, 7, seed=3)],
                         dict(output_size=(3, 4)))


@pytest.mark.parametrize("x", [
    [[1.0, 2.0, 2.0], [2.0, 0.0, 2.0]],                       # ties: the first max wins
    [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],                       # all tied (after a ReLU)
    [[NAN, 2.0, NAN], [2.0, 0.0, 2.0]],                       # the last NaN wins
    [[1.0, float("inf")], [-float("inf"), float("inf")]],
], ids=["ties", "zeros", "nan", "inf"])
def test_ties_nan_and_inf_follow_torch_exactly(x):
    x = np.array([[x]])
    ours = rg.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    y, i = F.adaptive_max_pool2d(ours, (1, 2), return_indices=True)
    ty, ti = TF.adaptive_max_pool2d(theirs, (1, 2), return_indices=True)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    y.backward(rg.tensor([[[[1.5, -2.0]]]]))
    ty.backward(torch.tensor([[[[1.5, -2.0]]]]))
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_a_pixel_winning_overlapping_windows_gets_their_summed_gradient():
    x = rg.tensor([[[[0.0, 9.0, 0.0]]]], requires_grad=True)
    y = F.adaptive_max_pool2d(x, (1, 2))          # windows [0, 2) and [1, 3) share x[1]
    y.backward(rg.tensor([[[[2.0, 3.0]]]]))
    assert x.grad.tolist() == [[[[0.0, 5.0, 0.0]]]]


def test_float32_and_half_keep_their_dtype_and_zero_batch_works():
    for dtype in (rg.float32, rg.float16, rg.bfloat16):
        x = rg.randn(2, 3, 5, 5).to(dtype)
        assert F.adaptive_max_pool2d(x, 2).dtype == dtype
    assert F.adaptive_max_pool2d(rg.randn(0, 2, 4, 3), 2).shape == (0, 2, 2, 2)


def test_layers_match_torch_and_their_repr():
    for ours, theirs, shape in [(rg.nn.AdaptiveMaxPool2d((2, 3), return_indices=True),
                                 torch.nn.AdaptiveMaxPool2d((2, 3), return_indices=True),
                                 (2, 3, 5, 7)),
                                (rg.nn.AdaptiveMaxPool1d(3), torch.nn.AdaptiveMaxPool1d(3),
                                 (2, 3, 8))]:
        assert repr(ours) == repr(theirs)
        x = randn(*shape, seed=4)
        got, want = ours(rg.tensor(x)), theirs(torch.tensor(x))
        got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.adaptive_max_pool2d(rg.randn(3, 5), 2), ValueError,
     r"adaptive_max_pool2d: expected a 3-D \(unbatched\) or 4-D"),
    (lambda: F.adaptive_max_pool2d(rg.randn(1, 2, 0, 3), 2), ValueError, "no element"),
    (lambda: F.adaptive_max_pool2d(rg.randn(1, 2, 4, 3), -1), ValueError,
     "output_size must be a positive int"),
    (lambda: F.adaptive_max_pool1d(rg.randn(1, 2, 4, 3), 2), ValueError,
     "adaptive_max_pool1d: expected a 2-D"),
    (lambda: rg.nn.AdaptiveMaxPool2d(2)(rg.ones(1, 1, 3, 3, dtype=rg.int64)), TypeError,
     r"AdaptiveMaxPool2d\(output_size=2\): expected a floating input"),
])
def test_errors_name_the_op_and_the_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("needs", [(True,), (False,)])
def test_declared_cost_equals_brute_force_counts(needs):
    x = randn(2, 2, 5, 7, seed=5)
    windows = [list(zip(*adaptive_windows(n, size))) for n, size in ((5, 3), (7, 4))]
    n, c = np.ogrid[:2, :2]

    def forward(args, gemm):
        y = np.empty((2, 2, 3, 4))
        for a, (h0, h1) in enumerate(windows[0]):
            for b, (w0, w1) in enumerate(windows[1]):
                y[:, :, a, b] = args[0][:, :, h0:h1, w0:w1].reshape(2, 2, -1).max(axis=-1)
        return y

    def backward(gy, gemm):
        grad = counted(np.zeros(x.shape))
        for a, (h0, h1) in enumerate(windows[0]):
            for b, (w0, w1) in enumerate(windows[1]):
                k = x[:, :, h0:h1, w0:w1].reshape(2, 2, -1).argmax(axis=-1)
                grad[n, c, h0 + k // (w1 - w0), w0 + k % (w1 - w0)] += gy[:, :, a, b]
        return {0: grad}

    check(AdaptiveMaxPool2d, (x,), needs, dict(output_size=(3, 4)), forward, backward,
          lambda *shape: np.random.default_rng(6).standard_normal(shape))
