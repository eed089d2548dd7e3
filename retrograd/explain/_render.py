"""A worked example as text for an 80-column terminal, as Markdown (readable on GitHub) or as
LaTeX (for slides and notes): the same steps, the same numbers.

Numbers are printed with up to 5 significant digits, integers without a decimal point, so that
the course's examples read as they do on paper (w = 1.0798, Y = [[3, 4], [6, 7]]). Arrays print
with their leading size-1 dimensions dropped (a 1x1x4x4 image prints as its 4x4 matrix); an
array of three or more dimensions prints one matrix per leading index, labelled.
"""

import textwrap

import numpy as np

__all__ = ["FORMATS", "format_array", "format_number", "render"]

FORMATS = ("text", "markdown", "latex")
WIDTH = 80
DIGITS = 5


def format_number(v):
    """``v`` with up to 5 significant digits; integers without a point; no '-0'.

    Example:
        >>> [format_number(v) for v in (3.0, -7.98, 1.0798, 0.000491994, -0.0, 2.5e-12, 1e8)]
        ['3', '-7.98', '1.0798', '0.00049199', '0', '2.5e-12', '1e+08']
    """
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if v == round(v) and abs(v) < 1e7:
        return str(int(round(v)))
    text = f"{v:.{DIGITS}g}"
    return "0" if text in ("-0", "0") else text


def _display(a):
    """``a`` without its leading size-1 dimensions (at least 0-d)."""
    a = np.asarray(a)
    while a.ndim > 1 and a.shape[0] == 1:
        a = a[0]
    return a


def _cells(a):
    return np.vectorize(format_number, otypes=[object])(a) if a.size else np.array([], object)


def _matrix_lines(a, width=WIDTH - 6):
    """A 0-, 1- or 2-d array as lines of right-aligned columns in brackets; a matrix wider
    than ``width`` prints in blocks of columns, each labelled "columns a-b:"."""
    if a.ndim == 0:
        return [format_number(a)]
    matrix = a[None, :] if a.ndim == 1 else a
    cells = _cells(matrix)
    cell = max((len(c) for c in cells.ravel()), default=0)
    per_block = max(1, (width - 3) // (cell + 2))
    if matrix.shape[1] <= per_block:
        return _bracketed(cells, cell, a.ndim)
    lines = []
    for start in range(0, matrix.shape[1], per_block):
        stop = min(start + per_block, matrix.shape[1])
        lines.append(f"columns {start}-{stop - 1}:")
        lines.extend(_bracketed(cells[:, start:stop], cell, a.ndim))
    return lines


def _bracketed(cells, cell, ndim):
    rows = ["  ".join(c.rjust(cell) for c in row) for row in cells]
    if ndim == 1:
        return ["[" + rows[0] + "]"]
    return [("[[" if i == 0 else " [") + row + ("]]" if i == len(rows) - 1 else "]")
            for i, row in enumerate(rows)]


def format_array(a):
    """The text lines of an array: one matrix, or one labelled matrix per leading index.

    Example:
        >>> print("\\n".join(format_array(np.array([[[[3., 4.], [6., 7.]]]]))))
        [[3  4]
         [6  7]]
    """
    a = _display(a)
    if a.ndim <= 2:
        return _matrix_lines(a)
    lines = []
    for index in np.ndindex(a.shape[:-2]):
        label = "[" + ", ".join(str(i) for i in index) + ", :, :]"
        lines.append(label)
        lines.extend("  " + line for line in _matrix_lines(a[index], WIDTH - 8))
    return lines


def _shape(a):
    shape = np.shape(a)
    return "x".join(str(n) for n in shape) if shape else "scalar"


# -- text -------------------------------------------------------------------------------------
def _wrap(text, indent, hanging=None):
    return textwrap.wrap(text, WIDTH, initial_indent=indent,
                         subsequent_indent=hanging if hanging is not None else indent,
                         break_on_hyphens=False) or [indent]


def _text_value(step):
    """``name = formula = value`` on one line when it fits, else the value below, indented."""
    head = f"{step.name} = {step.formula}" if step.formula else step.name
    lines = format_array(step.value)
    about = f"{_shape(step.value)}; {step.note}" if step.note else _shape(step.value)
    if len(lines) == 1 and len(head) + len(lines[0]) + 5 <= WIDTH:
        line = f"{head} = {lines[0]}" + (f"  ({step.note})" if step.note else "")
        return _wrap(line, "  ", "      ")
    return (_wrap(f"{head}  ({about})", "  ", "      ")
            + ["      " + line for line in lines])


def _input_steps(ex):
    """The inputs, as value steps (printed before the worked steps)."""
    from retrograd.explain._example import Step

    steps = [Step("section", "Inputs")]
    for item in ex.inputs.values():
        what = f"{item.doc}, {item.source}" if item.doc else item.source
        steps.append(Step("value", item.name, "", item.value, "", item.name, what))
    return steps


def _text(ex):
    out = _wrap(f"retrograd explain {ex.op}: {ex.title}", "")
    for step in _input_steps(ex) + ex.steps:
        if step.kind == "section":
            out += ["", step.name]
        elif step.kind == "text":
            out += _wrap(step.formula, "  ")
        else:
            out += _text_value(step)
    return "\n".join(out + [""] + _text_checks(ex)) + "\n"


def _check_line(check):
    if check.against == "forward":
        return f"{check.name}: equals retrograd's forward (max |diff| {check.max_diff:.1e})"
    line = f"{check.name}: equals autograd (max |diff| {check.max_diff:.1e})"
    if check.fd_ok:
        line += f"; finite differences agree (max |diff| {check.fd_diff:.1e})"
        if check.kinks:
            line += (f", except at {check.kinks} kink{'s' if check.kinks > 1 else ''} (left "
                     "and right derivatives differ; retrograd's convention is printed)")
    else:
        line += f"; FINITE DIFFERENCES DISAGREE (max |diff| {check.fd_diff:.1e})"
    if not check.matches:
        line = "MISMATCH " + line.replace("equals", "DIFFERS FROM", 1)
    return line


def _summary(ex):
    if ex.checks is None:
        return "Not checked."
    if ex.ok:
        return (f"All {len(ex.checks)} printed results agree with retrograd's own forward and "
                "autograd, and the gradients with finite differences (float64).")
    wrong = [c.name for c in ex.checks if not c.matches]
    if wrong:
        return f"CHECK FAILED for {', '.join(wrong)}: the worked example and retrograd disagree."
    undecided = ", ".join(c.name for c in ex.checks if not c.ok)
    return (f"FINITE DIFFERENCES DISAGREE for {undecided}, which equal retrograd's autograd: at "
            "this input the op is not differentiable (a tie or a kink where several pieces "
            "meet), or autograd is wrong here.")


def _text_checks(ex):
    out = ["Check"]
    for check in ex.checks or ():
        out += _wrap(_check_line(check), "  ", "      ")
    return out + _wrap(_summary(ex), "  ")


# -- markdown ---------------------------------------------------------------------------------
def _markdown(ex):
    out = [f"### `retrograd explain {ex.op}`: {ex.title}", ""]
    for step in _input_steps(ex) + ex.steps:
        if step.kind == "section":
            out += [f"**{step.name}**", ""]
        elif step.kind == "text":
            out += [step.formula, ""]
        else:
            head = f"`{step.name}`" + (f" = `{step.formula}`" if step.formula else "")
            lines = format_array(step.value)
            if len(lines) == 1:
                out += [f"- {head} = `{lines[0]}`", ""]
            else:
                out += [f"- {head} ({_shape(step.value)})", "", "  ```"]
                out += ["  " + line for line in lines] + ["  ```", ""]
    out += ["**Check**", ""] + [f"- {_check_line(c)}" for c in ex.checks or ()]
    return "\n".join(out + ["", _summary(ex), ""])


# -- LaTeX ------------------------------------------------------------------------------------
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def _latex_text(text):
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def _bmatrix(a):
    a = _display(a)
    if a.ndim == 0:
        return format_number(a)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim == 2:
        rows = [" & ".join(format_number(v) for v in row) for row in a]
        return r"\begin{bmatrix}" + r" \\ ".join(rows) + r"\end{bmatrix}"
    return r",\;".join(rf"\underset{{[{', '.join(map(str, i))}]}}{{{_bmatrix(a[i])}}}"
                       for i in np.ndindex(a.shape[:-2]))


def _latex(ex):
    out = [rf"\subsection*{{\texttt{{retrograd explain {_latex_text(ex.op)}}}: "
           rf"{_latex_text(ex.title)}}}"]
    for step in _input_steps(ex) + ex.steps:
        if step.kind == "section":
            out.append(rf"\paragraph{{{_latex_text(step.name)}}}")
        elif step.kind == "text":
            out.append(_latex_text(step.formula) + r"\par")
        else:
            formula = step.latex or (rf"\texttt{{{_latex_text(step.formula)}}}"
                                     if step.formula else "")
            name = rf"\mathrm{{{_latex_text(step.name)}}}"
            parts = [name] + ([formula] if formula else []) + [_bmatrix(step.value)]
            out.append(r"\[" + " = ".join(parts) + r"\]")
    out.append(r"\paragraph{Check}")
    out += [_latex_text(_check_line(c)) + r"\par" for c in ex.checks or ()]
    out.append(_latex_text(_summary(ex)))
    return "\n".join(out) + "\n"


def render(ex, format="text"):
    """The worked example ``ex`` in ``format`` (one of FORMATS)."""
    return {"text": _text, "markdown": _markdown, "latex": _latex}[format](ex)
