"""retrograd/explain/pool.py: max pooling (windows, argmax, the tie rule, dL/dY routed to the
winners) and average pooling (divisor, shares spread back), with overlapping windows adding
up; seed 002's max-pooling example reproduced."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.pool as pool_example
from retrograd.cli import main
from tests.explain._check import assert_explains, assert_printed_gradients_match_autograd, grad

# seed 002, "max pooling": a 4x4 ramp, pool 2, stride 2, and its upstream gradient
SEED_002_X = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]
SEED_002_DY = [[0.5, -0.5], [1, 0]]


def flat(ex):
    """The example's text with its line breaks undone (sentences wrap at 80 columns)."""
    return " ".join(str(ex).split())


def test_seed_002_max_pooling_example():
    # seed 002, "max pooling": Y = [[6, 8], [14, 16]]; dL/dY = [[0.5, -0.5], [1, 0]] goes to the
    # maxima: 0.5 to the 6 at (1, 1), -0.5 to the 8 at (1, 3), 1 to the 14 at (3, 1), 0 to the
    # 16 at (3, 3), and every other pixel gets 0.
    ex = assert_explains("max_pool2d", values={"X": SEED_002_X, "dY": SEED_002_DY})
    assert ex.printed_outputs()[0].value.squeeze().tolist() == [[6, 8], [14, 16]]
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 0.5, -0.5, 1, 0
    assert grad(ex, "X").squeeze().tolist() == expected.tolist()
    text = str(ex)
    assert "Y[0,0] <- X rows 0..1, cols 0..1: 1 2 5 6 -> max 6 at X[1,1]" in text
    assert "Y[0,1] <- X rows 0..1, cols 2..3: 3 4 7 8 -> max 8 at X[1,3]" in text
    argmax = [s.value for s in ex.steps if s.name == "argmax"][0]
    assert argmax.squeeze().tolist() == [[5, 7], [13, 15]]  # h*W + w, PyTorch's indices


def test_seed_002_input_average_pooled():
    # the same ramp averaged: each 2x2 window's mean, and each pixel gets dL/dY / 4
    ex = assert_explains("avg_pool2d", values={"X": SEED_002_X, "dY": SEED_002_DY})
    assert ex.printed_outputs()[0].value.squeeze().tolist() == [[3.5, 5.5], [11.5, 13.5]]
    assert grad(ex, "X").squeeze().tolist() == [[0.125, 0.125, -0.125, -0.125],
                                                [0.125, 0.125, -0.125, -0.125],
                                                [0.25, 0.25, 0, 0], [0.25, 0.25, 0, 0]]
    assert "Y[0,0] <- X rows 0..1, cols 0..1: (1 + 2 + 5 + 6) / 4 = 3.5" in str(ex)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("options", [
    {}, {"stride": 1}, {"kernel": 3, "stride": 1, "padding": 1},
    {"kernel": 3, "stride": 2, "padding": 1}, {"kernel": 2, "padding": 1},
    {"kernel": 1}, {"kernel": 4}])
def test_pool_options(op, options):
    assert_explains(op, shape=(5, 5) if options.get("kernel") != 4 else (4, 6), **options)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pool_batch_channels_and_a_rectangle(op):
    assert_explains(op, shape=(2, 2, 4, 4), seed=3)
    assert_explains(op, shape=(3, 5), stride=1, seed=4)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_many_windows_list_the_first_plane_only(op):
    ex = assert_explains(op, shape=(2, 3, 4, 4), stride=1)  # 6 planes x 9 windows
    text = str(ex)
    assert "[0, 0] Y[2,2] <-" in text and "[0, 1] Y[0,0] <-" not in text
    assert "(the other 5 (n, c) planes are read through the same windows)" in text


def test_max_pooling_overlapping_windows_add_up():
    # stride 1, kernel 2: the 9 sits in all four windows and wins each, so it collects the sum
    # of the four upstream gradients
    x = [[1, 2, 3], [4, 9, 5], [6, 7, 8]]
    dy = [[0.5, -1], [1, 1]]
    ex = assert_explains("max_pool2d", stride=1, values={"X": x, "dY": dy})
    assert grad(ex, "X").squeeze().tolist() == [[0, 0, 0], [0, 1.5, 0], [0, 0, 0]]
    assert "X[1,1] wins 4 windows: dL/dX = 0.5 - 1 + 1 + 1 = 1.5" in str(ex)
    assert "The windows overlap (stride < kernel)" in str(ex)


def test_max_pooling_ties_go_to_the_first_maximum():
    # retrograd's rule (as PyTorch's): on a tie the first maximum in row-major window order takes
    # the whole gradient; the seed's mask of every maximum would give 1 to each of them and so
    # differ from autograd. The check reports the kinks.
    x = [[2, 2, 0, 1], [2, 2, 1, 0], [3, 1, 5, 5], [1, 3, 0, 5]]
    ex = assert_explains("max_pool2d", values={"X": x, "dY": [[1, 1], [1, 1]]})
    assert grad(ex, "X").squeeze().tolist() == [[1, 0, 0, 1], [0, 0, 0, 0],
                                                [1, 0, 1, 0], [0, 0, 0, 0]]
    text = flat(ex)
    assert "max 2 at X[0,0] (tie of 4: the first wins)" in text
    assert "max 1 at X[0,3] (tie of 2: the first wins)" in text
    assert "max 3 at X[2,0] (tie of 2: the first wins)" in text
    assert "max 5 at X[2,2] (tie of 3: the first wins)" in text
    assert "kinks (left and right derivatives differ" in text
    (check,) = [c for c in ex.checks if c.name == "dL/dX"]
    assert check.kinks > 0


def test_max_pooling_with_ties_across_overlapping_windows():
    # all pixels equal, 3x3 windows at stride 1: each window's first in-input cell wins. The
    # printed gradient is autograd's, but the op is not differentiable there: X[0, 1]'s
    # partial derivative is 0 (raising it wins six windows whose dY sum to 0, lowering it
    # loses two to X[0, 2]) while the first-max rule gives it -0.5; the check says so.
    dy = [[1, 0.5, 0.5], [-0.5, -0.5, -1], [-1, -1, -1]]
    ex = retrograd.explain("max_pool2d", stride=1, kernel=3, padding=1,
                           values={"X": np.ones((3, 3)).tolist(), "dY": dy})
    assert_printed_gradients_match_autograd(ex)
    (check,) = [c for c in ex.checks if c.name == "dL/dX"]
    assert check.max_diff == 0 and check.matches and not check.fd_ok and not ex.ok
    assert "FINITE DIFFERENCES DISAGREE for dL/dX, which equal retrograd's autograd" in flat(ex)
    assert "CHECK FAILED" not in flat(ex) and "MISMATCH" not in flat(ex)
    # windows (0,0), (0,1), (1,0), (1,1) start at X[0,0]; (0,2), (1,2) at X[0,1]; (2,0),
    # (2,1) at X[1,0]; (2,2) at X[1,1]
    assert grad(ex, "X").squeeze().tolist() == [[0.5, -0.5, 0], [-2, -1, 0], [0, 0, 0]]
    assert "X[0,0] wins 4 windows: dL/dX = 1 + 0.5 - 0.5 - 0.5 = 0.5" in flat(ex)


def test_padding_shows_minus_inf_for_max_and_zeros_for_average():
    text = flat(assert_explains("max_pool2d", kernel=3, stride=1, padding=1))
    assert "-inf" in text and "(padding never wins)" in text and "(5 padding)" in text
    text = flat(assert_explains("avg_pool2d", kernel=3, stride=1, padding=1))
    assert "X with 1 zero(s) on each side" in text and "kh*kw = 9 (padding cells count" in text


def test_avg_pool_count_include_pad_false_divides_by_the_cells_inside():
    x = [[1, 2], [3, 4]]
    ex = assert_explains("avg_pool2d", kernel=2, stride=1, padding=1, count_include_pad=False,
                         values={"X": x, "dY": np.ones((3, 3)).tolist()})
    divisor = [s.value for s in ex.steps if s.name == "divisor"][0]
    assert divisor.tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    assert ex.printed_outputs()[0].value.squeeze().tolist() == [
        [1, 1.5, 2], [2, 2.5, 3], [3, 3.5, 4]]
    # each pixel is in four windows: 1/1 + 1/2 + 1/2 + 1/4
    assert grad(ex, "X").squeeze().tolist() == [[2.25, 2.25], [2.25, 2.25]]
    counted = assert_explains("avg_pool2d", kernel=2, stride=1, padding=1,
                              values={"X": x, "dY": np.ones((3, 3)).tolist()})
    assert grad(counted, "X").squeeze().tolist() == [[1, 1], [1, 1]]
    assert "windows per pixel" in str(counted)


def test_a_misrouted_gradient_fails_the_check(monkeypatch):
    real = pool_example._route

    def mutated(g, winners, x_shape):
        grad_x = real(g, winners, x_shape)
        return np.roll(grad_x, 1, axis=3)  # every gradient one pixel to the right

    monkeypatch.setattr(pool_example, "_route", mutated)
    ex = retrograd.explain("max_pool2d", values={"X": SEED_002_X, "dY": SEED_002_DY})
    assert not ex.ok
    assert [c.name for c in ex.checks if not c.ok] == ["dL/dX"]
    assert "CHECK FAILED for dL/dX" in str(ex)


def test_a_wrong_share_fails_the_check(monkeypatch):
    real = pool_example._spread
    monkeypatch.setattr(pool_example, "_spread",
                        lambda share, *rest: real(share * 1.25, *rest))  # 1/(k*k) -> 1.25/(k*k)
    ex = retrograd.explain("avg_pool2d", stride=1)
    assert not ex.ok and [c.name for c in ex.checks if not c.ok] == ["dL/dX"]


def test_bad_input_names_the_dimension():
    with pytest.raises(ValueError, match=r"explain max_pool2d: X's height \(dimension 2 of X, "
                                         r"shape 1x1x3x3\) is 3, smaller than the kernel 4"):
        retrograd.explain("max_pool2d", shape=(3, 3), kernel=4)
    with pytest.raises(ValueError, match=r"explain avg_pool2d: X's width \(dimension 3 of X, "
                                         r"shape 1x1x4x2\) is 2 \(4 padded\), smaller than the "
                                         r"kernel 5"):
        retrograd.explain("avg_pool2d", shape=(4, 2), kernel=5, padding=1)
    with pytest.raises(ValueError, match=r"explain max_pool2d: padding 2 must be at most half "
                                         r"the kernel 3"):
        retrograd.explain("max_pool2d", kernel=3, padding=2)
    with pytest.raises(ValueError, match=r"explain avg_pool2d: stride must be >= 0, got -1"):
        retrograd.explain("avg_pool2d", stride=-1)
    with pytest.raises(ValueError, match=r"explain max_pool2d: kernel must be >= 1, got 0"):
        retrograd.explain("max_pool2d", kernel=0)
    with pytest.raises(ValueError, match=r"explain max_pool2d: values gives dL/dY the shape 1x3, "
                                         r"but the output .* has the shape 1x1x2x2"):
        retrograd.explain("max_pool2d", values={"dY": [[1, 2, 3]]})


def test_command_line(capsys):
    assert main(["explain", "max_pool2d", "--shape", "4x4", "--stride", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("retrograd explain max_pool2d:") and "All 2 printed" in out
    assert max(map(len, out.splitlines())) <= 80
    assert main(["explain", "avg_pool2d", "--padding", "1", "--count-include-pad", "false"]) == 0
    assert "count_include_pad=False" in capsys.readouterr().out
    assert main(["explain", "maxpool", "--kernel", "9"]) == 2
    assert "X's height (dimension 2 of X" in capsys.readouterr().err
