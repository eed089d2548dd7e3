"""Im2col and Col2im (retrograd/ops/fold.py) through F.unfold, F.fold, nn.Unfold and nn.Fold:
against PyTorch (outputs and gradients), finite differences (through the engine, alone, and
twice), the compiled col2im against the NumPy one and conv's reference col2im, half
precision, the declared costs against brute-force counts, and the errors."""

import numpy as np
import pytest
import torch

import retrograd as rg
import retrograd.nn.functional as F
from retrograd import _fast
from retrograd.autograd import gradgradcheck
from retrograd.ops import fold as fold_ops
from retrograd.ops.conv import _reference_col2im
from retrograd.ops.fold import Col2im, Im2col, blocks_shape
from tests.flop_count import counted
from tests.ops.cost_harness import check
from tests.oracle import GRADCHECK_TOLERANCES, check_backward_alone, check_op, randn

TF = torch.nn.functional

# (input shape, kernel_size, dilation, padding, stride)
CASES = [
    ((2, 3, 6, 7), 2, 1, 0, 1),
    ((2, 2, 7, 8), (2, 3), (1, 2), (1, 0), (2, 1)),     # everything non-square
    ((1, 2, 5, 5), 3, 1, 4, 2),                         # padding larger than the kernel
    ((2, 2, 5, 6), 2, 1, 0, 3),                         # stride > kernel: pixels in no block
    ((3, 4, 5), 1, 1, 0, 1),                            # unbatched, 1x1 blocks
]


@pytest.mark.parametrize("shape, k, d, p, s", CASES)
def test_unfold_and_fold_match_torch_and_finite_differences(shape, k, d, p, s):
    cols = check_op(lambda x: F.unfold(x, k, d, p, s), lambda x: TF.unfold(x, k, d, p, s),
                    randn(*shape, seed=1))[0]
    size = shape[-2:]
    check_op(lambda c: F.fold(c, size, k, d, p, s), lambda c: TF.fold(c, size, k, d, p, s),
             randn(*cols.shape, seed=2))


def test_fold_and_unfold_are_twice_differentiable():
    x = rg.tensor(randn(1, 2, 5, 4, seed=3), requires_grad=True)
    c = rg.tensor(randn(1, 8, 20, seed=4), requires_grad=True)
    assert gradgradcheck(lambda t: F.unfold(t, 2, 2, 1, 1) ** 2, [x], **GRADCHECK_TOLERANCES)
    assert gradgradcheck(lambda t: F.fold(t, (5, 4), 2, 2, 1, 1) ** 2, [c],
                         **GRADCHECK_TOLERANCES)


@pytest.mark.parametrize("op, shape, attrs", [
    (Im2col, (2, 2, 5, 6), dict(kernel_size=(2, 3), dilation=(2, 1), padding=(1, 2),
                                stride=(1, 2))),
    (Col2im, (2, 12, 20), dict(output_size=(5, 6), kernel_size=(2, 3), dilation=(2, 1),
                               padding=(1, 2), stride=(1, 2))),
])
def test_backward_alone_matches_finite_differences(op, shape, attrs):
    check_backward_alone(op, [randn(*shape, seed=5)], attrs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_col2im_equals_numpy_and_conv_reference(monkeypatch, dtype):
    attrs = dict(kernel_size=(3, 2), dilation=(1, 2), padding=(2, 1), stride=(2, 1))
    size = (6, 7)
    ho, wo = blocks_shape(size, **attrs)
    cols = randn(2, 3 * 6, ho * wo, seed=6).astype(dtype)
    # the compiled kernel runs wherever Numba is installed (the 'fast' extra)
    assert (fold_ops.compiled_for("conv", cols) is not None) == _fast.enabled()
    compiled = fold_ops.col2im(cols, size, **attrs)
    monkeypatch.setattr(fold_ops, "compiled_for", lambda *a, **k: None)
    numpy_path = fold_ops.col2im(cols, size, **attrs)
    # conv's reference col2im on (C, kh, kw, N, Ho, Wo) columns, then the padding cut away
    ref = _reference_col2im(cols.reshape(2, 3, 3, 2, ho, wo).transpose(1, 2, 3, 0, 4, 5),
                            (2, 3, 10, 9), attrs["stride"], attrs["dilation"])[:, :, 2:8, 1:8]
    np.testing.assert_allclose(numpy_path, ref, rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(compiled, ref, rtol=1e-6 if dtype == np.float32 else 1e-13)
    assert compiled.dtype == numpy_path.dtype == dtype


@pytest.mark.parametrize("dtype", [rg.float16, rg.bfloat16])
def test_half_precision_keeps_its_dtype_and_matches_torch(dtype):
    x = randn(2, 3, 6, 6, seed=7).astype(np.float32)
    tdtype = getattr(torch, str(dtype).split(".")[-1])
    cols = F.unfold(rg.tensor(x).to(dtype), 3, padding=1)
    folded = F.fold(cols, 6, 3, padding=1)
    expected = TF.fold(TF.unfold(torch.tensor(x).to(tdtype), 3, padding=1), 6, 3, padding=1)
    assert cols.dtype == folded.dtype == dtype
    np.testing.assert_allclose(folded.float().numpy(), expected.float().numpy(), rtol=2e-2,
                               atol=5e-2)


def test_unfold_output_is_a_new_array_and_zero_batch_works():
    x = rg.randn(1, 2, 3, 3)
    cols = F.unfold(x, 1)
    cols[0, 0, 0] = 100.0
    assert x[0, 0, 0, 0].item() != 100.0
    assert F.unfold(rg.randn(0, 2, 4, 4), 2).shape == (0, 8, 9)
    assert F.fold(rg.randn(0, 8, 9), 4, 2).shape == (0, 2, 4, 4)


def test_fold_of_unfold_counts_the_blocks_covering_each_pixel():
    counts = F.fold(F.unfold(rg.ones(1, 1, 3, 4), 2), (3, 4), 2)[0, 0]
    assert counts.tolist() == [[1, 2, 2, 1], [2, 4, 4, 2], [1, 2, 2, 1]]


def test_layers_match_torch_and_their_repr():
    unfold, fold = rg.nn.Unfold((2, 3), padding=1), rg.nn.Fold(5, 2, stride=2, padding=1)
    assert repr(unfold) == repr(torch.nn.Unfold((2, 3), padding=1))
    assert repr(fold) == repr(torch.nn.Fold(5, 2, stride=2, padding=1))
    x = randn(2, 3, 4, 5, seed=8)
    np.testing.assert_allclose(unfold(rg.tensor(x)).numpy(),
                               torch.nn.Unfold((2, 3), padding=1)(torch.tensor(x)).numpy())
    c = randn(2, 12, 9, seed=9)
    np.testing.assert_allclose(fold(rg.tensor(c)).numpy(),
                               torch.nn.Fold(5, 2, stride=2, padding=1)(torch.tensor(c)).numpy())
    assert list(unfold.state_dict()) == list(fold.state_dict()) == []


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.unfold(rg.randn(3, 4), 2), RuntimeError, r"unfold: expected a \(C, H, W\)"),
    (lambda: F.unfold(rg.randn(2, 0, 4, 4), 2), RuntimeError, r"shape \(2, 0, 4, 4\)"),
    (lambda: F.unfold(rg.randn(1, 1, 5, 6), 7), RuntimeError,
     r"unfold: input of shape \(1, 1, 5, 6\) gives \(-1, 0\) sliding blocks"),
    (lambda: F.unfold(rg.randn(1, 1, 5, 6), 0), ValueError, "unfold: kernel_size must be >= 1"),
    (lambda: F.unfold(rg.randn(1, 1, 5, 6), 2, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: F.unfold(rg.randn(1, 1, 5, 6), (2, 2, 2)), ValueError, "tuple of 2 ints"),
    (lambda: F.unfold(rg.ones(1, 1, 3, 3, dtype=rg.int64), 2), TypeError, "floating input"),
    (lambda: F.fold(rg.randn(2, 13, 20), (5, 6), 2), RuntimeError,
     r"C\*kh\*kw dimension \(13\) must be divisible"),
    (lambda: F.fold(rg.randn(2, 12, 20), (5, 7), 2), RuntimeError,
     r"has 20 blocks, but output_size \(5, 7\) .* has 4 \* 6 = 24"),
    (lambda: F.fold(rg.randn(2, 3, 4, 5), (5, 7), 2), RuntimeError, r"fold: expected a"),
    (lambda: rg.nn.Fold(4, 2)(rg.randn(1, 4, 8)), RuntimeError,
     r"Fold\(output_size=4, kernel_size=2, dilation=1, padding=0, stride=1\): input"),
])
def test_errors_name_the_op_and_the_shapes(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("needs", [(True,), (False,)])
def test_declared_costs_equal_brute_force_counts(needs):
    attrs = dict(kernel_size=(2, 3), dilation=(1, 2), padding=(1, 1), stride=(2, 1))
    x = randn(2, 2, 5, 6, seed=10)
    ho, wo = blocks_shape((5, 6), **attrs)

    def col2im_counted(cols):
        """Each column entry added into its pixel, one offset (i, j) at a time."""
        blocks = cols.reshape(2, 2, 2, 3, ho, wo)
        y_pad = counted(np.zeros((2, 2, 7, 8)))
        for i in range(2):
            for j in range(3):
                y_pad[:, :, i: i + 2 * (ho - 1) + 1: 2, 2 * j: 2 * j + wo] += blocks[:, :, i, j]
        return y_pad[:, :, 1:6, 1:7]

    cost = check(Im2col, (x,), needs, attrs,
                 lambda args, gemm: fold_ops.im2col(np.asarray(args[0]), **attrs),
                 lambda gy, gemm: {0: col2im_counted(gy)}, _randn)
    assert cost.flops == 0
    cols = randn(2, 12, ho * wo, seed=11)
    cost = check(Col2im, (cols,), needs, dict(output_size=(5, 6), **attrs),
                 lambda args, gemm: col2im_counted(args[0]),
                 lambda gy, gemm: {0: fold_ops.im2col(np.asarray(gy), **attrs)}, _randn)
    assert cost.flops == cols.size and cost.backward_flops == 0


def _randn(*shape):
    return np.random.default_rng(12).standard_normal(shape)
