"""MaxUnpool2d (retrograd/ops/unpool.py) through F.max_unpool1d/2d and the layers: against
PyTorch (values and gradients), finite differences, repeated indices, output sizes, the
declared cost, and the errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.ops.unpool import MaxUnpool2d
from tests.ops.cost_harness import check
from tests.oracle import check_backward_alone, check_op, randn

TF = torch.nn.functional


def _pooled(shape, seed, pool=TF.max_pool2d, **kwargs):
    """max pooling's (values, indices) of a random input, as arrays."""
    y, i = pool(torch.tensor(randn(*shape, seed=seed)), return_indices=True, **kwargs)
    return y.numpy(), i.numpy()


@pytest.mark.parametrize("shape, kwargs, output_size", [
    ((2, 3, 6, 6), dict(kernel_size=2), None),
    ((2, 2, 7, 5), dict(kernel_size=2, stride=2, padding=1), (7, 5)),   # sizes of several
    ((2, 2, 6, 5), dict(kernel_size=2, stride=2, padding=1), (2, 2, 6, 5)),  # with N, C
    ((3, 6, 9), dict(kernel_size=(2, 3), stride=(2, 3)), None),          # unbatched
])
def test_max_unpool2d_matches_torch_and_finite_differences(shape, kwargs, output_size):
    # windows that do not overlap: a repeated index hides all but one value (see below)
    y, i = _pooled(shape, 1, **kwargs)
    check_op(lambda t, idx: F.max_unpool2d(t, idx, output_size=output_size, **kwargs),
             lambda t, idx: TF.max_unpool2d(t, idx, output_size=output_size, **kwargs), y, i)


def test_max_unpool1d_matches_torch_and_finite_differences():
    y, i = _pooled((2, 3, 10), 2, TF.max_pool1d, kernel_size=3)
    check_op(lambda t, idx: F.max_unpool1d(t, idx, 3, output_size=[10]),
             lambda t, idx: TF.max_unpool1d(t, idx, 3, output_size=[10]), y, i)


def test_backward_alone_matches_finite_differences():
    y, i = _pooled((2, 2, 6, 6), 3, kernel_size=2)
    check_backward_alone(MaxUnpool2d, [y, i], dict(output_size=(6, 6)))


def test_repeated_indices_keep_the_last_value_and_all_get_the_gradient_as_torch():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    idx = np.array([[[[0, 0], [3, 3]]]])
    ours, theirs = rg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = F.max_unpool2d(ours, rg.tensor(idx), 2)
    ty = TF.max_unpool2d(theirs, torch.tensor(idx), 2)
    np.testing.assert_array_equal(y.detach().numpy(), ty.detach().numpy())
    g = np.arange(16.0).reshape(1, 1, 4, 4)
    y.backward(rg.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())


def test_layers_round_trip_and_repr():
    pool, unpool = rg.nn.MaxPool2d(2, return_indices=True), rg.nn.MaxUnpool2d(2)
    assert repr(unpool) == repr(torch.nn.MaxUnpool2d(2))
    assert repr(rg.nn.MaxUnpool1d(3, 2)) == repr(torch.nn.MaxUnpool1d(3, 2))
    x = rg.tensor([[[[1.0, 5.0, 2.0], [3.0, 4.0, 8.0], [0.0, 6.0, 7.0]]]])
    y, indices = pool(x)
    out = unpool(y, indices, output_size=x.size())
    assert out.tolist() == [[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]]]
    y1, i1 = rg.nn.MaxPool1d(2, return_indices=True)(x[0])
    assert rg.nn.MaxUnpool1d(2)(y1, i1, output_size=[3]).tolist() == \
        [[[0.0, 5.0, 0.0], [0.0, 4.0, 0.0], [0.0, 6.0, 0.0]]]


@pytest.mark.parametrize("call, error, message", [
    (lambda y, i: F.max_unpool2d(y, i * 10, 2), RuntimeError,
     r"max_unpool2d: found an invalid max index \d+ \(output planes are of size 4x4\)"),
    (lambda y, i: F.max_unpool2d(y, i.int(), 2), RuntimeError, "indices must be int64"),
    (lambda y, i: F.max_unpool2d(y, i[..., :1], 2), RuntimeError,
     r"indices of shape \(1, 1, 2, 1\) must have the input's shape \(1, 1, 2, 2\)"),
    (lambda y, i: F.max_unpool2d(y, i, 2, output_size=(6, 5)), ValueError,
     r"invalid output_size \(6, 5\) \(dim 0 must be between 2 and 6\)"),
    (lambda y, i: F.max_unpool2d(y, i, 2, output_size=(4,)), ValueError,
     "output_size must be 2 or 4 ints"),
    (lambda y, i: F.max_unpool2d(y[0, 0], i[0, 0], 2), ValueError, "expected a 3-D"),
    (lambda y, i: rg.nn.MaxUnpool2d(2)(y, 3), TypeError,
     r"MaxUnpool2d\(kernel_size=\(2, 2\), stride=\(2, 2\), padding=\(0, 0\)\): indices must"),
])
def test_errors_name_the_op_and_the_values(call, error, message):
    y, i = F.max_pool2d(rg.randn(1, 1, 4, 5), 2, return_indices=True)
    with pytest.raises(error, match=message):
        call(y, i)


def test_declared_cost_is_no_arithmetic_and_moves_data():
    y, i = _pooled((1, 2, 4, 4), 4, kernel_size=2)
    cost = check(MaxUnpool2d, (y, i), (True, None), dict(output_size=(4, 4)),
                 lambda args, gemm: TF.max_unpool2d(torch.tensor(np.asarray(args[0])),
                                                    torch.tensor(i), 2).numpy(),
                 lambda gy, gemm: {0: np.take_along_axis(gy.reshape(2, -1), i.reshape(2, -1),
                                                         axis=1).reshape(y.shape)},
                 lambda *shape: np.random.default_rng(5).standard_normal(shape))
    assert (cost.flops, cost.backward_flops) == (0, 0) and MaxUnpool2d.moves_data
