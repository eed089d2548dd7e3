"""BatchNormRelu, the fused batch norm + ReLU (ops/norm.py): the same outputs, gradients and
running statistics as BatchNorm followed by Relu, PyTorch's relu(batch_norm(...)), a float64
gradcheck, and its use by nn.Sequential for a BatchNorm layer followed by a ReLU layer."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import nn
from retrograd.ops.norm import BatchNormRelu
from tests.oracle import check_backward_alone, check_op, randn

SHAPES = [(4, 3), (2, 5, 7), (3, 4, 5, 6), (1, 2, 1, 9)]


def _fused(training):
    return lambda x, w, b: F.batch_norm_relu(x, None, None, w, b, training=True) \
        if training else F.batch_norm_relu(x, rg.zeros(x.shape[1], dtype=x.dtype) + 0.5,
                                            rg.ones(x.shape[1], dtype=x.dtype) * 2.0, w, b)


def _torch(training):
    return lambda x, w, b: TF.relu(TF.batch_norm(x, None, None, w, b, training=True)) \
        if training else TF.relu(TF.batch_norm(x, torch.zeros(x.shape[1], dtype=x.dtype) + 0.5,
                                               torch.ones(x.shape[1], dtype=x.dtype) * 2.0,
                                               w, b))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_relu_matches_torch_relu_of_batch_norm(shape, dtype, training):
    check_op(_fused(training), _torch(training), randn(*shape, seed=3), randn(shape[1], seed=4),
             randn(shape[1], seed=5), dtype=dtype)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_fused_op_equals_batch_norm_then_relu_bit_for_bit(affine, training):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 5, 5)).astype(np.float32)
    w, b = (rng.standard_normal(3).astype(np.float32) for _ in range(2))
    g = rng.standard_normal(x.shape).astype(np.float32)

    def run(fused):
        tx = rg.tensor(x, requires_grad=True)
        tw, tb = ((rg.tensor(w, requires_grad=True), rg.tensor(b, requires_grad=True))
                  if affine else (None, None))
        mean, var = rg.zeros(3), rg.ones(3)
        args = (tx, mean, var, tw, tb, training, 0.1, 1e-5)
        out = F.batch_norm_relu(*args) if fused else F.relu(F.batch_norm(*args))
        out.backward(rg.tensor(g))
        grads = [t.grad.numpy() for t in (tx, tw, tb) if t is not None]
        return [out.detach().numpy(), mean.numpy(), var.numpy()] + grads

    for got, expected in zip(run(True), run(False)):
        assert np.array_equal(got, expected)


def test_without_affine_the_saved_x_hat_is_not_overwritten_by_the_relu():
    x = rg.tensor(randn(6, 2, 3, seed=7), requires_grad=True)
    out = F.batch_norm_relu(x, None, None, training=True)
    x_hat, _, z = out.grad_fn.saved_tensors
    assert (x_hat < 0).any() and not (z < 0).any()


def test_backward_alone_against_central_differences():
    rng = np.random.default_rng(8)
    arrays = [rng.standard_normal((5, 3, 4)), rng.standard_normal(3), rng.standard_normal(3),
              None, None]
    check_backward_alone(BatchNormRelu, arrays, {"training": True})


def _pair_net(hook=None):
    rg.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                        nn.Linear(4 * 9, 3))
    if hook is not None:
        hook(net)
    return net


@pytest.mark.parametrize("train", [True, False])
def test_sequential_fuses_batch_norm_and_relu_with_the_same_results(train):
    x = rg.tensor(randn(6, 2, 5, 5, seed=9).astype(np.float32))
    runs = []
    for hook in (None, lambda net: net[2].register_forward_hook(lambda *a: None)):
        net = _pair_net(hook)
        net.train(train)
        out = net(x)
        out.sum().backward()
        runs.append((out.detach().numpy(), net[0].weight.grad.numpy(), net[1].weight.grad.numpy(),
                     net[1].running_mean.numpy(), int(net[1].num_batches_tracked.item())))
    fused, plain = runs       # the forward hook on the ReLU turns the fusion off
    for got, expected in zip(fused, plain):
        assert np.array_equal(got, expected)


def test_sequential_takes_the_fused_op_only_without_hooks_or_overrides():
    x = rg.tensor(randn(4, 2, 5, 5, seed=10).astype(np.float32))

    def ops_of(net):
        names, node = [], net(x).grad_fn
        while node is not None:
            names.append(type(node).__name__)
            node = node.next_functions[0][0] if node.next_functions else None
        return names

    assert ops_of(_pair_net()) == ["Linear", "Reshape", "BatchNormRelu", "Conv2d"]
    hooked = _pair_net(lambda net: net[1].register_forward_pre_hook(lambda *a: None))
    assert ops_of(hooked) == ["Linear", "Reshape", "Relu", "BatchNorm", "Conv2d"]

    class Shifted(nn.BatchNorm2d):
        def forward(self, input):  # noqa: A002
            return super().forward(input) + 1.0

    net = _pair_net()
    net[1] = Shifted(4)
    assert "BatchNormRelu" not in ops_of(net)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_relu_inside_the_kernel_keeps_nan_and_makes_negative_zero_zero(dtype):
    """The compiled forward applies the ReLU as it writes y: NaN stays NaN (a NaN weight) and
    -0 becomes +0 (weight 0, bias -0), as np.maximum does in the separate ops."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 4, 4)).astype(dtype)
    w = np.array([np.nan, 0.0, 1.5], np.float32).astype(dtype)
    b = np.array([0.1, -0.0, -0.2], np.float32).astype(dtype)
    outs = []
    for fused in (True, False):
        args = (rg.tensor(x), None, None, rg.tensor(w), rg.tensor(b), True, 0.1, 1e-5)
        out = F.batch_norm_relu(*args) if fused else F.relu(F.batch_norm(*args))
        outs.append(out.numpy())
    assert np.array_equal(outs[0], outs[1], equal_nan=True)
    assert np.isnan(outs[0][:, 0]).all()
    if dtype == np.float32:   # (float16's np.maximum keeps -0: a zero's sign, not a value)
        assert not np.signbit(outs[0][:, 1]).any()
        assert np.array_equal(np.signbit(outs[0]), np.signbit(outs[1]))
