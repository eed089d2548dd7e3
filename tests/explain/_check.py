"""What every worked example must satisfy, checked from the outside: the example's own
verification passed, and every gradient *as printed* (the text a learner reads) equals
retrograd's autograd to the printed precision, so the printout cannot drift from the code."""

import re

import numpy as np

import retrograd
from retrograd.explain._render import DIGITS, WIDTH, _display, format_array

NUMBER = re.compile(r"-?(?:\d+\.?\d*(?:e[+-]?\d+)?|nan|inf)")


def printed_numbers(lines):
    """The numbers of an array as printed by format_array, in row-major order: slice labels
    ("[0, 1, :, :]") start a matrix, "columns a-b:" labels start a block of its columns."""
    slices, blocks, rows = [], [], []

    def close_block():
        if rows:
            blocks.append(np.array(rows))
            rows.clear()

    def close_slice():
        close_block()
        if blocks:
            slices.append(np.hstack(blocks).ravel())
            blocks.clear()

    for line in lines:
        text = line.strip()
        if text.endswith(":, :]"):
            close_slice()
        elif text.startswith("columns "):
            close_block()
        else:
            rows.append([float(n) for n in NUMBER.findall(text)])
    close_slice()
    return np.concatenate(slices) if slices else np.array([])


def autograd_gradients(ex):
    """{input name: retrograd's autograd gradient} from the example's reference run."""
    fn, names = ex.reference_fn
    return {name: (leaf.grad.numpy() if leaf is not None and leaf.grad is not None else None)
            for name, leaf in zip(names, ex._leaves)}


def assert_printed_gradients_match_autograd(ex, text=None):
    text = ex.render("text") if text is None else text
    grads = autograd_gradients(ex)
    assert ex.printed_gradients(), f"{ex.op}: no gradient printed"
    for step in ex.printed_gradients():
        lines = format_array(step.value)
        block = "\n".join(lines)
        assert block in text or all(line in text for line in lines), \
            f"{ex.op}: {step.name} not printed as recorded"
        printed = printed_numbers(lines)
        reference = grads[step.of]
        reference = np.zeros_like(step.value) if reference is None else reference
        expected = _display(reference).ravel()
        assert printed.shape == expected.shape, (ex.op, step.name, printed, expected)
        scale = max(1.0, float(np.abs(expected).max(initial=0)))
        np.testing.assert_allclose(printed, expected, rtol=10.0 ** (1 - DIGITS),
                                   atol=10.0 ** (1 - DIGITS) * scale,
                                   err_msg=f"{ex.op}: printed {step.name} != autograd")


def assert_explains(op, **kwargs):
    """Build ``op``'s example, check it passed, that its printed gradients are autograd's, that
    it fits 80 columns and that it renders in every format; returns it."""
    ex = retrograd.explain(op, **kwargs)
    text = ex.render("text")
    assert ex.ok, text
    assert "All " in text and "CHECK FAILED" not in text
    assert_printed_gradients_match_autograd(ex, text)
    too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_wide, f"{op}: lines wider than {WIDTH} columns: {too_wide}"
    for fmt in ("markdown", "latex"):
        assert ex.render(fmt).strip()
    return ex


def grad(ex, name):
    """The printed gradient of input ``name`` (the last one printed for it)."""
    return ex.gradients[name]
