"""retrograd/explain/__init__.py, _example.py, _verify.py, _render.py and the ``retrograd explain``
command: every registered op explained and checked, the check failing when a formula term is
perturbed, the three formats, and bad input."""

import numpy as np
import pytest

import retrograd
import retrograd.explain.conv as conv_example
import retrograd.explain.linear  # noqa: F401  (registers linear, regression)
from retrograd.cli import main
from retrograd.explain import known_ops
from retrograd.explain._render import format_array, format_number
from tests.explain._check import assert_explains, printed_numbers


@pytest.mark.parametrize("op", known_ops())
@pytest.mark.parametrize("seed", [0, 1])
def test_every_op_explained_with_its_defaults(op, seed):
    """Each family's example, as ``retrograd explain OP --seed S`` shows it: checked against
    autograd and finite differences, its printed gradients equal to autograd's, 80 columns."""
    assert_explains(op, seed=seed)


def test_retrograd_explain_is_callable_and_a_package():
    import retrograd.explain as package

    assert retrograd.explain is package
    assert retrograd.explain("linear").ok and package.explain("linear").ok
    assert "conv2d" in known_ops() and "conv2d" in package.families()["conv"]
    assert repr(retrograd.explain("conv2d")).endswith("ok>")


def test_a_perturbed_formula_term_fails_the_check(monkeypatch):
    """Mutation test: one term of the col2im scatter changed makes the check fail and say
    which printed gradient is wrong (and the command exit 1)."""
    real = conv_example._col2im

    def mutated(*args):
        grad = real(*args)
        grad[0, 0, 1, 1] += 0.25  # one pixel's term
        return grad

    monkeypatch.setattr(conv_example, "_col2im", mutated)
    ex = retrograd.explain("conv2d")
    assert not ex.ok
    failed = [c.name for c in ex.checks if not c.ok]
    assert failed == ["dL/dX (col2im)"]
    assert "CHECK FAILED for dL/dX (col2im)" in str(ex) and "MISMATCH" in str(ex)
    assert main(["explain", "conv2d"]) == 1


def test_a_perturbed_forward_fails_the_output_check(monkeypatch):
    real = conv_example._im2col
    monkeypatch.setattr(conv_example, "_im2col", lambda *a: real(*a) * 1.001)
    ex = retrograd.explain("conv2d")
    assert not ex.ok and not ex.checks[0].ok and ex.checks[0].against == "forward"


def test_finite_differences_report_a_kink():
    # ReLU at y = 0: autograd takes the left derivative 0; the central difference is half the
    # upstream; finite differences cannot judge there, the check counts it and says so
    ex = assert_explains("linear", activation="relu", values={
        "x": [1, 1], "W": [[1, -1], [2, 0]], "b": [0, 1], "dL/dy'": [1, 1]})
    kinks = {c.name: c.kinks for c in ex.checks if c.against == "autograd"}
    assert kinks["dL/dW"] == 2 and "except at 2 kinks (left and right derivatives differ" in str(ex)


def test_number_and_array_formatting():
    assert [format_number(v) for v in (0.1 + 0.2, -1e-20, 1234567.0, np.nan)] == \
        ["0.3", "-1e-20", "1234567", "nan"]
    lines = format_array(np.arange(8.0).reshape(2, 1, 2, 2) - 3.5)
    assert lines[0] == "[0, 0, :, :]" and printed_numbers(lines).tolist() == list(
        np.arange(8.0) - 3.5)
    assert format_array(np.array(2.5)) == ["2.5"]


def test_markdown_and_latex():
    ex = retrograd.explain("conv2d", stride=2, padding=1)
    md = ex.render("markdown")
    assert md.startswith("### `retrograd explain conv2d`") and "```" in md and "**Check**" in md
    tex = ex.render("latex")
    assert r"\begin{bmatrix}" in tex and r"X\_pad" in tex and "All 5 printed" in tex
    assert ex._repr_markdown_() == md
    with pytest.raises(ValueError, match="format must be one of text, markdown, latex"):
        ex.render("html")


def test_bad_input_in_python():
    with pytest.raises(ValueError, match=r"unknown op 'conv3d' \(did you mean conv2d.*known "
                                         r"ops: .*conv2d.*linear"):
        retrograd.explain("conv3d")
    with pytest.raises(ValueError, match=r"explain conv2d: unknown option strde; its options: "
                                         r"stride, padding"):
        retrograd.explain("conv2d", strde=2)
    with pytest.raises(ValueError, match=r"explain conv2d: stride must be a number, got '2'"):
        retrograd.explain("conv2d", stride="2")
    with pytest.raises(ValueError, match=r"explain conv2d: values given for z, which it does "
                                         r"not take; its inputs: X, W, b, dL/dY"):
        retrograd.explain("conv2d", values={"Z": 1})
    with pytest.raises(ValueError, match=r"explain linear: seed must be an int >= 0"):
        retrograd.explain("linear", seed=-1)
    with pytest.raises(ValueError, match=r"explain conv2d: values gives dL/dY the shape "
                                         r"1x2x2x2x2, but the output it is the gradient of has "
                                         r"the shape 1x1x2x2"):
        retrograd.explain("conv2d", values={"dY": np.ones((1, 2, 2, 2, 2)).tolist()})
    ex = retrograd.explain("linear", shape=(4, 2), out_features=1, values={"dY": [1, 2, 3, 4]})
    assert ex.ok and ex.upstreams[0][1].shape == (4, 1)  # equal up to size-1 dimensions


def test_command_prints_and_lists(capsys):
    assert main(["explain", "conv2d", "--stride", "2", "--padding", "1", "--shape", "4x4"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("retrograd explain conv2d:") and "All 5 printed results agree" in out
    assert max(map(len, out.splitlines())) <= 80
    assert main(["explain", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "conv2d" in listing and "regression" in listing
    assert main(["explain", "regression", "--values", "w=1", "--values", "b=0", "--values",
                 "x=2.1", "--values", "y=4", "--format", "markdown"]) == 0
    assert "-7.98" in capsys.readouterr().out
    assert main(["explain", "--seed", "3", "linear", "--out-features", "3",
                 "--format", "latex"]) == 0
    assert r"\begin{bmatrix}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["explain", "conv3d"], "retrograd explain: unknown op 'conv3d' (did you mean conv2d"),
    (["explain", "conv2d", "--shape", "1x1"],
     "retrograd explain conv2d: X's height (dimension 2 of X, shape 1x1x1x1) is 1, smaller"),
    (["explain", "conv2d", "--shape", "4y4"], "retrograd explain conv2d: --shape must be sizes"),
    (["explain", "conv2d", "--values", "X=[[1,2],[3,4]"],
     "retrograd explain conv2d: --values X: '[[1,2],[3,4]' is not a list of numbers"),
    (["explain", "conv2d", "--values", "[[1]]"],
     "retrograd explain conv2d: --values must be NAME=NUMBERS"),
])
def test_command_bad_input_is_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1


def test_command_op_help_lists_its_options(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["explain", "conv2d", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--stride" in out and "--dilation" in out and "--values" in out


def test_the_docs_list_every_op():
    import pathlib

    page = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "explain.md").read_text()
    missing = [op for op in known_ops() if f"`{op}`" not in page]
    assert not missing, f"docs/explain.md does not list {missing}"
