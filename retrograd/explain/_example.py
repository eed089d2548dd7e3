"""The worked example: what a family function builds, step by step, and what is checked.

A family function (one per op, in the module of its op family) receives an ``Example`` and the
op's options. It draws or takes the inputs (``ex.input``), runs retrograd's own op once on them
(``ex.reference``: this is the op whose gradients are then checked, and a shape that does not
fit fails here with the op's own message), draws the upstream gradient (``ex.upstream``), and
then does the forward and backward arithmetic of the op's docstring derivation itself, with
NumPy, showing each quantity (``ex.show``), the outputs (``ex.output``) and every gradient it
derives (``ex.gradient``). Nothing printed is read back from autograd: ``_verify`` compares the
printed outputs and gradients with retrograd's forward and autograd, and each gradient with
central finite differences of the same op, after the family function returns.
"""

import dataclasses
import re

import numpy as np

__all__ = ["Example", "ExplainError", "Option", "Step", "UPSTREAM_LEVELS"]

# what a drawn upstream gradient dL/dY is made of: short numbers that keep the arithmetic
# readable, like the course's examples (0.5, -0.5, 1, 0)
UPSTREAM_LEVELS = (-1.0, -0.5, 0.5, 1.0)


class ExplainError(ValueError):
    """A request ``explain`` cannot fulfil: an unknown op, an option or a shape that does not fit
    the op (the message names the op, the input and the dimension)."""


@dataclasses.dataclass(frozen=True)
class Option:
    """An option of one op's example: ``--name`` on the command line, ``name=`` in Python."""
    name: str
    type: type
    default: object
    help: str
    choices: tuple = ()


@dataclasses.dataclass
class Step:
    """One line of the worked example.

    kind: "section" (a heading), "text" (a sentence), "value" (a quantity with its formula),
    "output" (the op's output, checked against retrograd's forward) or "gradient" (a derived
    gradient, checked against autograd and finite differences). ``latex`` is the formula in
    LaTeX where the plain one would read poorly there.
    """
    kind: str
    name: str = ""
    formula: str = ""
    value: object = None
    latex: str = ""
    of: str = ""  # for a gradient: the input it is the gradient of
    note: str = ""  # for an input: what it is and where its values come from


@dataclasses.dataclass
class Input:
    name: str
    value: np.ndarray
    differentiable: bool
    source: str  # "given" (from values=) or "drawn (seed N)"
    doc: str
    draw: tuple = None  # (low, high, integer) of a drawn input


class Example:
    """The worked example of one op, filled in by the op's family function."""

    def __init__(self, op, *, seed=0, values=None, shape=None):
        self.op = op
        self.title = op
        self.seed = seed
        self.shape = None if shape is None else tuple(int(n) for n in shape)
        self._values = {_key(k): v for k, v in (values or {}).items()}
        self._used_values = set()
        self._rng = np.random.default_rng(seed)
        self.inputs = {}       # name -> Input, in the order drawn
        self.upstreams = []    # (name, array), one per reference output
        self.steps = []
        self.reference_fn = None
        self.reference_outputs = ()
        self.checks = None     # filled by _verify.verify

    # -- inputs -------------------------------------------------------------------------
    def input(self, name, shape, *, low=-3, high=3, integer=True, differentiable=True,
              doc="", aliases=(), primary=False, max_ndim=None):
        """The input ``name``: the user's values if given (``values={name: ...}``, or one of
        ``aliases``), else drawn with the example's seed: integers in [low, high] (readable
        arithmetic), or uniform floats in [low, high) with ``integer=False``. ``primary`` means
        ``shape=`` (``--shape``) sets its shape. A given value or shape with fewer dimensions
        than ``shape`` is padded with leading 1s (a 4x4 image is a 1x1x4x4 batch), unless
        ``max_ndim`` allows it as it is (a batch of vectors where a vector is the default)."""
        shape = tuple(shape)
        room = (0,) * max(len(shape), max_ndim or 0)
        if primary and self.shape is not None:
            shape = self._fit("--shape", name, self.shape, room if max_ndim else shape)
        given = self._given(name, aliases)
        if given is not None:
            value = np.asarray(given, dtype=np.float64)
            value = value.reshape(self._fit("values", name, value.shape,
                                            room if max_ndim else shape))
            source = "given"
        else:
            value = self._draw(shape, low, high, integer)
            source = f"drawn (seed {self.seed})"
        self.inputs[name] = Input(name, value, differentiable, source, doc,
                                  draw=(low, high, integer))
        return value

    def _draw(self, shape, low, high, integer):
        if integer:
            return self._rng.integers(low, high + 1, size=shape).astype(np.float64)
        return np.round(self._rng.uniform(low, high, size=shape), 2)

    def redraw_while(self, dull, *names, attempts=100):
        """Draw the drawn inputs ``names`` again (same shapes and ranges, the same seeded
        stream) while ``dull(*values)`` holds, e.g. while every ReLU is off and every gradient
        would be 0; given values are never changed. Returns the values."""
        values = [self.inputs[name].value for name in names]
        drawn = [name for name in names if self.inputs[name].draw is not None
                 and self.inputs[name].source != "given"]
        for _ in range(attempts if drawn else 0):
            if not dull(*values):
                break
            for name in drawn:
                item = self.inputs[name]
                item.value = self._draw(item.value.shape, *item.draw)
            values = [self.inputs[name].value for name in names]
        return values

    def index_input(self, name, shape, high, *, doc="", aliases=()):
        """An integer input (token ids, class targets) in [0, high): no gradient flows to it."""
        given = self._given(name, aliases)
        if given is not None:
            value = np.asarray(given)
            if not np.issubdtype(value.dtype, np.integer) and not np.all(value == np.round(value)):
                raise ExplainError(f"explain {self.op}: {name} must be integers, got {given!r}")
            value = value.astype(np.int64).reshape(self._fit("values", name, value.shape, shape))
            if value.size and (value.min() < 0 or value.max() >= high):
                raise ExplainError(f"explain {self.op}: {name} must be in [0, {high}), got "
                                   f"{value.tolist()}")
            source = "given"
        else:
            value = self._rng.integers(0, high, size=tuple(shape)).astype(np.int64)
            source = f"drawn (seed {self.seed})"
        self.inputs[name] = Input(name, value, False, source, doc)
        return value

    def upstream(self, shape, name="dL/dY", aliases=("dY",), value=None):
        """The gradient arriving from above for one output of the reference (in the order the
        reference returns them): ``value`` if the example fixes it (1 for a loss), else given,
        else drawn from UPSTREAM_LEVELS."""
        shape, fixed = tuple(shape), value is not None
        given = None if fixed else self._given(name, aliases)
        if value is not None:
            value = np.broadcast_to(np.asarray(value, dtype=np.float64), shape).copy()
        elif given is not None:
            value = self._upstream_shaped(name, np.asarray(given, dtype=np.float64), shape)
        else:
            value = self._rng.choice(UPSTREAM_LEVELS, size=shape)
        self.upstreams.append((name, value))
        where = ("given" if given is not None else "fixed" if fixed
                 else f"drawn with seed {self.seed}")
        self.steps.append(Step("value", name, f"the gradient from above ({where})",
                               value.copy()))
        return value

    def _upstream_shaped(self, name, value, shape):
        """A given upstream gradient in the output's shape: equal up to size-1 dimensions (a
        list of 4 numbers for a 4x1 output), else an error naming both shapes."""
        if [n for n in value.shape if n != 1] != [n for n in shape if n != 1]:
            raise ExplainError(f"explain {self.op}: values gives {name} the shape "
                               f"{_shape(value.shape)}, but the output it is the gradient of "
                               f"has the shape {_shape(shape)}")
        return value.reshape(shape)

    def reference(self, fn, *names):
        """Run retrograd's own op: ``fn`` takes the inputs ``names`` as float64 Tensors (index
        inputs as int64 Tensors) and returns the output Tensor, or a tuple of them. Returns the
        output shapes. An error of the op (a shape that does not fit) becomes an ExplainError
        naming the op."""
        from retrograd.explain._verify import run_reference

        self.reference_fn = (fn, names)
        try:
            self.reference_outputs = run_reference(self, fn, names)
        except (ValueError, TypeError, IndexError) as error:
            text = str(error)
            text = text[len(self.op) + 2:] if text.startswith(f"{self.op}: ") else text
            raise ExplainError(f"explain {self.op}: {text}") from None
        return [out.shape for out in self.reference_outputs]

    # -- steps --------------------------------------------------------------------------
    def section(self, title):
        self.steps.append(Step("section", title))

    def say(self, text):
        self.steps.append(Step("text", formula=text))

    def show(self, name, value, formula="", latex=""):
        """A quantity of the derivation (forward or backward), with the formula it came from."""
        self.steps.append(Step("value", name, formula, np.asarray(value), latex))
        return value

    def output(self, name, value, formula="", latex=""):
        """The op's output, as the example computed it; checked against retrograd's forward
        (the outputs in the order the reference returns them)."""
        self.steps.append(Step("output", name, formula, np.asarray(value, dtype=np.float64),
                               latex))
        return value

    def gradient(self, of, value, formula="", latex="", name=None):
        """The gradient of the loss with respect to the input ``of``, as the example derived it;
        checked against autograd and finite differences."""
        if of not in self.inputs:
            raise KeyError(f"explain {self.op}: gradient of unknown input {of!r}")
        self.steps.append(Step("gradient", name or f"dL/d{of}", formula,
                               np.asarray(value, dtype=np.float64), latex, of=of))
        return value

    # -- what was printed ---------------------------------------------------------------
    def printed_gradients(self):
        return [s for s in self.steps if s.kind == "gradient"]

    def printed_outputs(self):
        return [s for s in self.steps if s.kind == "output"]

    @property
    def ok(self):
        """True when every printed output and gradient matched (after verification)."""
        return self.checks is not None and all(c.ok for c in self.checks)

    @property
    def gradients(self):
        """{input name: the gradient the example derived and printed}."""
        return {s.of: s.value for s in self.printed_gradients()}

    def render(self, format="text"):
        """The example as text (80 columns), Markdown or LaTeX."""
        from retrograd.explain._render import FORMATS, render

        if format not in FORMATS:
            raise ExplainError(f"explain {self.op}: format must be one of "
                               f"{', '.join(FORMATS)}, got {format!r}")
        return render(self, format)

    def __str__(self):
        return self.render("text")

    def __repr__(self):
        verdict = "not checked" if self.checks is None else ("ok" if self.ok else "FAILED")
        return f"<worked example of {self.op}: {len(self.steps)} steps, {verdict}>"

    def _repr_markdown_(self):  # Jupyter shows the Markdown form
        return self.render("markdown")

    def unused_values(self):
        return sorted(set(self._values) - self._used_values)

    def is_given(self, name, aliases=()):
        """Whether ``values=`` gives the input ``name`` (or one of ``aliases``)."""
        return any(_key(key) in self._values for key in (name, *aliases))

    # -- helpers ------------------------------------------------------------------------
    def _given(self, name, aliases):
        for key in (name, *aliases):
            if _key(key) in self._values:
                self._used_values.add(_key(key))
                return self._values[_key(key)]
        return None

    def _fit(self, what, name, got, default):
        """``got`` padded with leading 1s to the number of dimensions of ``default``."""
        got = tuple(got)
        if any(n == 0 for n in default):  # room for up to len(default) dimensions, unpadded
            default = got if len(got) <= len(default) else default
        if len(got) > len(default):
            raise ExplainError(
                f"explain {self.op}: {what} gives {name} {len(got)} dimensions "
                f"{_shape(got)}; {name} has at most {len(default)} here "
                f"(e.g. {_shape(default)})")
        if any(n < 1 for n in got):
            raise ExplainError(f"explain {self.op}: {what} gives {name} the shape "
                               f"{_shape(got)}; every dimension must be >= 1")
        return (1,) * (len(default) - len(got)) + got


def _key(name):
    """Values are looked up by name without spaces or case: 'dL/dY', 'dy' and 'dY' are one."""
    return re.sub(r"\s+", "", str(name)).lower()


def _shape(shape):
    return "x".join(str(n) for n in shape) if shape else "scalar"
