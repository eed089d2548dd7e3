"""ConstantPad, IndexPad and IndexPadBackward (retrograd/ops/padding.py) through F.pad: against
PyTorch (outputs and gradients, every mode, 1-D to 3-D, asymmetric and negative pads, values),
against finite differences (through the engine, alone, and twice for double backward),
against np.pad, and PyTorch's errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd.autograd.cost import cost_of
from retrograd.ops.padding import ConstantPad, IndexPad, IndexPadBackward, pad_index
from tests.ops.cost_harness import run
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn


def _pad(pad, mode="constant", value=None):
    return (lambda x: F.pad(x, pad, mode, value),
            lambda x: torch.nn.functional.pad(x, pad, mode, value))


PAD_CASES = [
    # (input shape, pad, mode, value)
    ((2, 3, 5), (2, 3), "constant", None),
    ((2, 3, 5), (2, 3), "constant", 1.5),                 # value=
    ((2, 3, 4, 5), (1, 2, 3, 0), "constant", -2.0),
    ((2, 3, 4, 5), (-1, 2, 1, -2), "constant", 0.5),      # negative pads crop
    ((2, 3, 4, 5), (-2, -3, 0, 0), "constant", None),     # crop only
    ((2, 3, 4, 5), (1, 1, 1, 1, 1, 1, 1, 1), "constant", 3.0),   # every dim, batch too
    ((5,), (0, 4), "constant", None),                     # 1-D input
    ((2, 3, 5), (4, 4), "reflect", None),                 # pad = size - 1: the largest
    ((2, 3, 5), (1, 3), "reflect", None),                 # asymmetric
    ((3, 5), (2, 1), "reflect", None),                    # unbatched (C, W)
    ((2, 3, 4, 5), (2, 3, 3, 1), "reflect", None),
    ((2, 3, 4, 5), (-1, 4, 2, -3), "reflect", None),      # crop on one side, reflect other
    ((2, 3, 4, 5), (0, 0, 3, 3), "reflect", 0),           # value 0 is allowed
    ((1, 2, 3, 4, 5), (1, 2, 0, 3, 2, 2), "reflect", None),    # 3-D
    ((2, 3, 5), (3, 7), "replicate", None),               # pads larger than the size
    ((2, 3, 4, 5), (2, -1, 0, 3), "replicate", None),
    ((3, 4, 5), (1, 2, 3, 4), "replicate", None),         # unbatched (C, H, W)
    ((2, 1, 2, 3, 4), (1, 1, 2, 0, 0, 1), "replicate", None),
    ((2, 3, 5), (5, 5), "circular", None),                # pad = size: wraps once
    ((2, 3, 4, 5), (1, 2, 3, 1), "circular", None),
    ((2, 3, 4, 5), (-1, 2, 2, -1), "circular", None),     # crop, then wrap the rest
    ((1, 2, 3, 4, 5), (1, 0, 2, 1, 3, 3), "circular", None),
    ((2, 1, 1), (0, 0), "reflect", None),                 # no padding at all
]


@pytest.mark.parametrize("shape, pad, mode, value", PAD_CASES)
def test_pad_matches_torch_and_finite_differences(shape, pad, mode, value):
    rg_fn, torch_fn = _pad(pad, mode, value)
    check_op(rg_fn, torch_fn, randn(*shape, seed=1))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_float32_matches_torch_and_stays_float32(mode):
    rg_fn, torch_fn = _pad((2, 1, 3, 2), mode)
    out = check_op(rg_fn, torch_fn, randn(2, 3, 4, 5, seed=2), dtype=np.float32)
    assert out[0].dtype == rg.float32


def test_reflect_at_the_borders_copies_mirror_images_and_sums_their_gradients():
    x = rg.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    y = F.pad(x, (2, 2), mode="reflect")
    assert y.tolist() == [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]]
    y.backward(rg.tensor([[1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0]]))
    # x[0] is copied to positions 2 and 6, x[1] to 1, 3, 5, x[2] to 0 and 4
    assert x.grad.tolist() == [[1000100.0, 101010.0, 10001.0]]


@pytest.mark.parametrize("mode, reference", [("reflect", "reflect"), ("replicate", "edge"),
                                             ("circular", "wrap")])
def test_index_pad_equals_np_pad(mode, reference):
    x = randn(2, 3, 6, 7, seed=3)
    pads = ((0, 0), (0, 0), (3, 1), (2, 5))
    got = IndexPad.forward(IndexPad.__new__(IndexPad), x, pads=pads[2:], mode=mode)
    np.testing.assert_array_equal(got, np.pad(x, pads, mode=reference))


@pytest.mark.parametrize("size, before, after, mode, expected", [
    (4, 3, 3, "reflect", [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]),
    (5, -5, 3, "reflect", [3, 2, 1]),                     # PyTorch's rule past a crop
    (4, 2, -1, "replicate", [0, 0, 0, 1, 2]),
    (5, -1, 2, "circular", [1, 2, 3, 4, 1, 2]),           # wraps the cropped part
    (5, 2, -1, "circular", [2, 3, 0, 1, 2, 3]),
    (5, -4, -1, "circular", []),
])
def test_pad_index(size, before, after, mode, expected):
    assert pad_index(size, before, after, mode).tolist() == expected


@pytest.mark.parametrize("pad, mode", [((2, -1, 1, 3), "constant"), ((2, 1, 1, 3), "reflect"),
                                       ((3, 0, -1, 2), "replicate"),
                                       ((1, 2, 2, -1), "circular")])
def test_pad_double_backward_matches_finite_differences(pad, mode):
    x = rg.tensor(randn(2, 2, 4, 5, seed=4), requires_grad=True)
    g = rg.tensor(randn(*F.pad(x, pad, mode).shape, seed=5), requires_grad=True)
    rg.autograd.gradgradcheck(lambda t: F.pad(t, pad, mode) ** 2, [x], [g],
                              **GRADCHECK_TOLERANCES)


def test_pad_double_backward_runs_the_adjoint_ops():
    x = rg.tensor(randn(1, 1, 3, 4, seed=6), requires_grad=True)
    y = F.pad(x, (2, 1, 1, 1), mode="reflect")
    (grad,) = rg.autograd.grad(y, x, rg.tensor(randn(1, 1, 5, 7, seed=7), requires_grad=True),
                               create_graph=True)
    assert grad.grad_fn.name() == "IndexPadBackwardBackward"
    y = F.pad(x, (-1, 1), value=2.0)
    (grad,) = rg.autograd.grad(y, x, rg.ones(*y.shape, requires_grad=True),
                               create_graph=True)
    assert grad.grad_fn.name() == "ConstantPadBackward"
    assert grad.tolist() == [[[[0.0, 1.0, 1.0, 1.0]] * 3]]


@pytest.mark.parametrize("op, arrays, attrs", [
    (ConstantPad, [randn(2, 3, 4, seed=8)], dict(pads=((1, -1), (-2, 3)), value=0.7)),
    (IndexPad, [randn(2, 3, 4, seed=9)], dict(pads=((2, 1), (3, -1)), mode="reflect")),
    (IndexPad, [randn(2, 3, 4, seed=10)], dict(pads=((5, 0), (0, 2)), mode="replicate")),
    (IndexPad, [randn(2, 3, 4, seed=11)], dict(pads=((-1, 2), (4, 4)), mode="circular")),
    (IndexPadBackward, [randn(2, 6, 6, seed=12)],
     dict(pads=((2, 1), (3, -1)), mode="reflect", shape=(2, 3, 4))),
])
def test_pad_ops_backward_alone_match_finite_differences(op, arrays, attrs):
    check_backward_alone(op, arrays, attrs)


def test_pad_of_integers_and_bools_matches_torch():
    ints = np.arange(12).reshape(1, 3, 4)
    for mode, value in (("constant", 1.7), ("constant", -1.7), ("reflect", None),
                        ("replicate", None), ("circular", None)):
        got = F.pad(rg.tensor(ints), (2, 1), mode, value)
        expected = torch.nn.functional.pad(torch.tensor(ints), (2, 1), mode, value)
        assert got.dtype == rg.int64
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    flags = np.array([[True, False]])
    np.testing.assert_array_equal(F.pad(rg.tensor(flags), (1, 1), value=1).numpy(),
                                  [[True, True, False, True]])


def test_pad_of_an_empty_batch_and_to_an_empty_dimension():
    x = rg.zeros(0, 2, 3, requires_grad=True)
    empty = F.pad(x, (1, 1), mode="reflect")
    assert empty.shape == (0, 2, 5)
    empty.sum().backward()
    assert x.grad.shape == (0, 2, 3)
    assert F.pad(rg.ones(2, 3), (-2, -1)).shape == (2, 0)
    assert F.pad(rg.ones(2, 5), (-4, -1), mode="circular").shape == (2, 0)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: F.pad(x, (1,)), RuntimeError, "divisible by 2"),
    (lambda x: F.pad(x, (1,) * 8), RuntimeError, "padding length 8 and input of dimension 3"),
    (lambda x: F.pad(x, (1.5, 2)), TypeError, "tuple of ints"),
    (lambda x: F.pad(x, 1), TypeError, "tuple of ints"),
    (lambda x: F.pad(x, (1, 1), mode="wrap"), NotImplementedError, "'wrap'"),
    (lambda x: F.pad(x, (1, 1), mode="reflect", value=2.0), RuntimeError,
     "doesn't take in value"),
    (lambda x: F.pad(x, (5, 0), mode="reflect"), RuntimeError,
     r"padding \(5, 0\) at dimension 2 of input \(2, 3, 5\)"),
    (lambda x: F.pad(x, (1, 1, 3, 3), mode="reflect"), RuntimeError,
     r"padding \(3, 3\) at dimension 1"),
    (lambda x: F.pad(x, (6, 0), mode="circular"), RuntimeError, "wrapping around more than once"),
    (lambda x: F.pad(x, (3, -3), mode="circular"), RuntimeError, r"\(2 elements after"),
    (lambda x: F.pad(x, (-5, 0), mode="replicate"), RuntimeError, "empty"),
    (lambda x: F.pad(x, (-3, -3)), RuntimeError, "negative"),
    (lambda x: F.pad(x, (1, 1) * 3, mode="reflect"), NotImplementedError,
     "padding size 6 is not supported for 3D input"),
    (lambda x: F.pad(x[0, 0], (1, 1), mode="replicate"), NotImplementedError,
     "padding size 2 is not supported for 1D input"),
    (lambda x: F.pad(x[:, :0], (1, 1), mode="reflect"), RuntimeError, "non-zero dimensions"),
    (lambda x: F.pad(x.numpy(), (1, 1)), TypeError, "input must be a Tensor"),
])
def test_pad_errors_name_the_problem(call, error, message):
    with pytest.raises(error, match=message):
        call(rg.ones(2, 3, 5))


@pytest.mark.parametrize("pad, mode", [((1,), "constant"), ((5, 0), "reflect"),
                                       ((6, 0), "circular"), ((1, 1) * 3, "reflect"),
                                       ((-3, -3), "constant"), ((1, 1), "wrap")])
def test_pad_errors_agree_with_torch_on_what_is_invalid(pad, mode):
    with pytest.raises((RuntimeError, NotImplementedError)):
        torch.nn.functional.pad(torch.ones(2, 3, 5), pad, mode)
    with pytest.raises((RuntimeError, NotImplementedError)):
        F.pad(rg.ones(2, 3, 5), pad, mode)


def _normal(*shape):
    return np.random.default_rng(0).standard_normal(shape)


def test_pad_costs():
    call, *_ = run(IndexPad, [randn(2, 3, 4, seed=13)], (True,),
                   dict(pads=((1, 2), (3, 0)), mode="reflect"), _normal)
    cost = cost_of(call)
    assert (cost.flops, cost.backward_flops) == (0, 2 * 6 * 7 - 2 * 3 * 4)
    call, *_ = run(IndexPadBackward, [randn(2, 6, 7, seed=14)], (True,),
                   dict(pads=((1, 2), (3, 0)), mode="reflect", shape=(2, 3, 4)),
                   _normal)
    assert (cost_of(call).flops, cost_of(call).backward_flops) == (2 * 6 * 7 - 2 * 3 * 4, 0)
    call, *_ = run(ConstantPad, [randn(2, 3, 4, seed=15)], (True,),
                   dict(pads=((1, 2),), value=1.0), _normal)
    assert (cost_of(call).flops, cost_of(call).backward_flops) == (0, 0)
