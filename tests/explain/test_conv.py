"""retrograd/explain/conv.py: im2col, the GEMM, dL/dW, and dL/dX by col2im and as a full
convolution with the flipped kernel; seed 002's convolution example with its misprints
corrected."""

import pytest

import retrograd
from retrograd.explain._render import WIDTH
from tests.explain._check import assert_explains, grad

SEED_002 = {"X": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "K": [[1, 0], [-1, 1]], "b": 1,
            "dY": [[0.5, -0.5], [1, 0]]}


def test_seed_002_convolution_example_corrected():
    # seed 002, "convolution": its own sums give Y = [[3, 4], [6, 7]] (it prints
    # [[3, 3], [-1, -1]]), and the full convolution of dY with the flipped kernel gives
    # dL/dX = [[0.5, -0.5, 0], [0.5, 1, -0.5], [-1, 1, 0]] (it prints an "approximate"
    # [[0.5, -0.5, -0.5], [0, 1.5, 0], [1, 0, 0]]). dL/dK = [[3.5, 4.5], [6.5, 7.5]], dL/db = 1.
    ex = assert_explains("conv2d", values=SEED_002)
    assert ex.printed_outputs()[0].value.squeeze().tolist() == [[3, 4], [6, 7]]
    corrected = [[0.5, -0.5, 0], [0.5, 1, -0.5], [-1, 1, 0]]
    for step in ex.printed_gradients():
        if step.of == "X":
            assert step.value.squeeze().tolist() == corrected
    assert grad(ex, "W").squeeze().tolist() == [[3.5, 4.5], [6.5, 7.5]]
    assert grad(ex, "b").tolist() == [1.0]


def test_stride_2_padding_1_on_a_4x4_input_fits_80_columns():
    # what a new user types first (issue 20): readable on an 80-column terminal
    ex = assert_explains("conv2d", stride=2, padding=1, shape=(4, 4))
    text = str(ex)
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert "X_pad" in text and "X_col" in text and "W flipped" in text
    assert [s.name for s in ex.printed_gradients()] == [
        "dL/db", "dL/dW", "dL/dX (col2im)", "dL/dX (full convolution)"]


@pytest.mark.parametrize("options", [
    {}, {"stride": 2}, {"padding": 2}, {"dilation": 2}, {"stride": 3, "padding": 1},
    {"stride": 2, "dilation": 2, "padding": 1}, {"kernel": 2, "out_channels": 2},
    {"kernel": 1}])
def test_conv2d_options(options):
    assert_explains("conv2d", shape=(5, 5), **options)


def test_conv2d_batch_and_channels():
    assert_explains("conv2d", shape=(2, 2, 4, 4), out_channels=2, kernel=2, seed=3)


def test_conv2d_bad_shapes_name_the_dimension():
    with pytest.raises(ValueError, match=r"explain conv2d: X's height \(dimension 2 of X, "
                                         r"shape 1x1x2x4\) is 2, smaller than the kernel's"):
        retrograd.explain("conv2d", shape=(2, 4))
    with pytest.raises(ValueError, match=r"explain conv2d: W has 2 input channels"):
        retrograd.explain("conv2d", shape=(1, 3, 4, 4), values={"W": [[[[1]], [[2]]]]})
    with pytest.raises(ValueError, match=r"explain conv2d: stride must be >= 1, got 0"):
        retrograd.explain("conv2d", stride=0)
    with pytest.raises(ValueError, match=r"explain conv2d: --shape gives X 5 dimensions"):
        retrograd.explain("conv2d", shape=(1, 1, 1, 4, 4))
