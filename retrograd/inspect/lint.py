"""A lint for numerically unstable patterns in a recorded computation.

``lint`` looks at the ops of a computation and flags the patterns that turn into NaN, Inf or
lost precision on some inputs, each with the op, its module, the user's line and the stable
rewrite. It works in one of two ways:

- ``lint(output)``: walks the backward graph of ``output`` (from ``output.grad_fn``). Nodes
  know their op, the nodes of their inputs and their module, but not the Python numbers
  passed to the op (an eps, a fill value) nor, unless the graph was made under anomaly mode
  (``rg.autograd.detect_anomaly()``), the user's line. The patterns that need constants are
  then skipped (the report says which).
- ``lint(fn, *args, **kwargs)``: runs ``fn(*args, **kwargs)`` under an observer that records
  every op call (its op, input tensors by identity, constants, attributes, dtypes, module and
  the user's line: the first stack frame outside the retrograd package), then checks every
  call, with grad mode on or off. This is the full check.

The patterns (``PATTERNS``; each is a small function of one op call):

====================  ==========================================  ============================
name                  what is unstable                            stable rewrite
====================  ==========================================  ============================
log_of_softmax        ``log(softmax(x))``: softmax underflows to  ``log_softmax(x)``
                      0 and log gives -inf (also log(sigmoid))
exp_unbounded         ``exp`` of a Linear/MatMul/Conv output (or  subtract the max first, or
                      a sum or scaling of one): overflows to inf  use softmax / logsumexp
div_by_reduction      division by a sum/mean/norm/var/std (or     add eps, or clamp_min(eps)
                      its sqrt) with no eps: 0 gives inf or NaN
eps_below_tiny        an eps (added, clamped to, or an ``eps``    an eps >= finfo(dtype).tiny
                      argument) below ``finfo(dtype).tiny``: it
                      is subnormal or rounds to 0 in that dtype
                      (norm ops: float32, which they compute in)
neg_inf_mask_fp16     -inf (or finfo(float32).min, which is -inf  a boolean mask through
                      in float16) put into float16 scores by      scaled_dot_product_attention,
                      masked_fill / where / add: a fully masked   finfo(float16).min, or the
                      row or a later add gives NaN                scores in float32
====================  ==========================================  ============================

Example:
    >>> import retrograd as rg
    >>> import retrograd.nn.functional as F
    >>> from retrograd.inspect.lint import lint
    >>> x = rg.randn(4, 10, requires_grad=True)
    >>> report = lint(lambda: F.softmax(x, dim=-1).log())
    >>> [(f.pattern, f.op) for f in report]
    [('log_of_softmax', 'Log')]
    >>> report[0].rewrite
    'log_softmax(x) (one op: x - logsumexp(x))'
    >>> len(lint(lambda: F.log_softmax(x, dim=-1)))
    0
"""

import functools
import inspect as _pyinspect
import math
import os
import sys
from typing import Callable, NamedTuple

import numpy as np

from retrograd import _checks
from retrograd.autograd.function import AccumulateGrad, Function
from retrograd.autograd.observer import ObserverBlock
from retrograd.inspect.render import text_table
from retrograd.tensor import Tensor

__all__ = ["lint", "LintFinding", "LintReport", "LintPattern", "SourceLine", "PATTERNS"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_NO_LINE = ("line unknown: record under rg.autograd.detect_anomaly(), or run "
            "lint(fn, *args) to see lines")


# ----------------------------------------------------------------------------- results

class SourceLine(NamedTuple):
    """Where the user's code ran an op: a file name and a line number."""

    filename: str
    lineno: int

    def __str__(self):
        return f"{os.path.basename(self.filename)}:{self.lineno}"


class LintFinding(NamedTuple):
    """One unstable pattern: its name, the op that completes it (``"Log"``), the module path
    (``"blocks.0.attn"``; ``""`` the outermost module; None outside every module), the
    user's line (a SourceLine, or None when not known), what is wrong, and the rewrite."""

    pattern: str
    op: str
    module: object
    line: object
    message: str
    rewrite: str


class LintReport(list):
    """The findings of ``lint`` (a list of LintFinding, empty when clean), printable as a
    table. ``ops_checked``: how many op calls were looked at; ``unchecked``: the patterns that
    could not be checked (they need constants that a backward graph does not keep)."""

    def __init__(self, findings=(), ops_checked=0, unchecked=()):
        super().__init__(findings)
        self.ops_checked, self.unchecked = ops_checked, tuple(unchecked)

    def __str__(self):
        head = f"lint: {len(self)} finding(s) in {self.ops_checked} op calls"
        lines = [head]
        if self:
            rows = [[f.pattern, f.op, _module_text(f.module),
                     str(f.line) if f.line else "unknown", f.rewrite] for f in self]
            lines.append(text_table(rows, ["pattern", "op", "module", "line", "rewrite"],
                                    left=5))
            lines += [f"[{k}] {f.message}" for k, f in enumerate(self)]
            if any(f.line is None for f in self):
                lines.append(_NO_LINE)
        if self.unchecked:
            lines.append(f"not checked (they need the op's constants: run lint(fn, *args)): "
                         f"{', '.join(self.unchecked)}")
        return "\n".join(lines)

    def __repr__(self):
        return f"<LintReport: {len(self)} finding(s) in {self.ops_checked} op calls>"


def _module_text(path):
    if path is None:
        return "-"
    return path if path else "(outermost)"


# ----------------------------------------------------------------------------- op calls

class _Leaf(NamedTuple):
    """A tensor input that no recorded op made (data, a parameter); array None if unknown."""

    dtype: object
    array: object


class _Call:
    """One op call as the patterns see it. ``inputs`` holds, per input of the op: the _Call
    that made it, a _Leaf, a constant (a Python number, an array), or _UNKNOWN (graph mode:
    an input that needs no gradient). ``named``: inputs and attributes by forward's argument
    names, when constants are known (else None)."""

    __slots__ = ("op", "moves_data", "inputs", "named", "dtype", "array", "module", "line")

    def __init__(self, op, inputs, named, dtype, module, line, array=None):
        self.op, self.moves_data = op.__name__, bool(op.moves_data)
        self.inputs, self.named, self.dtype = inputs, named, dtype
        self.module, self.line, self.array = module, line, array


_UNKNOWN = object()


def _source(value):
    """The call that made ``value``, looking through ops that only move data (reshape,
    permute, cast, indexing); None for leaves, constants and unknown inputs."""
    while isinstance(value, _Call) and value.moves_data and value.inputs:
        value = value.inputs[0]
    return value if isinstance(value, _Call) else None


def _tensor_dtype(value):
    if isinstance(value, (_Call, _Leaf)):
        return value.dtype
    return None


def _values(value):
    """The array of a tensor input or constant, when known (else None)."""
    if isinstance(value, (_Call, _Leaf)):
        return value.array
    if isinstance(value, (int, float, np.ndarray, np.generic)) and not isinstance(value, bool):
        return np.asarray(value)
    return None


def _first_float_dtype(call):
    for value in call.inputs:
        dtype = _tensor_dtype(value)
        if dtype is not None and np.issubdtype(dtype, np.floating):
            return np.dtype(dtype)
    return call.dtype


# ----------------------------------------------------------------------------- patterns

class LintPattern(NamedTuple):
    """A pattern: its name, the op names it looks at, what is unstable, the stable rewrite,
    ``check(call) -> (message, rewrite) or None`` and whether it needs the op's constants
    (then it runs only under ``lint(fn, *args)``)."""

    name: str
    ops: tuple
    unstable: str
    rewrite: str
    check: Callable
    needs_constants: bool = False


_LOG_OF = {"Softmax": ("softmax", "log_softmax(x) (one op: x - logsumexp(x))"),
           "Sigmoid": ("sigmoid", "binary_cross_entropy_with_logits(x, target) for a loss, "
                                  "else minimum(x, 0) - log(1 + exp(-abs(x)))")}


def _check_log_softmax(call):
    made_by = _source(call.inputs[0])
    if made_by is None or made_by.op not in _LOG_OF:
        return None
    name, rewrite = _LOG_OF[made_by.op]
    return (f"log of {name}: {name} underflows to 0 for large negative logits and log(0) "
            f"is -inf (and its gradient NaN)"), rewrite


_AFFINE = frozenset({"Linear", "MatMul", "Conv1d", "Conv2d"})
_PASS_ON = frozenset({"Add", "Mul", "Div", "Neg", "Sub"})   # unbounded if an input is
_SHIFTS = frozenset({"MaxDim", "Amax", "LogSumExp", "Maximum"})


def _unbounded_source(value, depth=0):
    """The affine op (Linear, MatMul, Conv) that ``value`` comes from through sums, scalings
    and negations only, with no max or logsumexp subtracted on the way; else None."""
    made_by = _source(value)
    if made_by is None or depth > 12:
        return None
    if made_by.op in _AFFINE:
        return made_by.op
    if made_by.op not in _PASS_ON or _subtracts_shift(made_by):
        return None
    for value in made_by.inputs:
        found = _unbounded_source(value, depth + 1)
        if found is not None:
            return found
    return None


def _subtracts_shift(call):
    subtracted = _source(call.inputs[1]) if call.op == "Sub" else None
    return subtracted is not None and subtracted.op in _SHIFTS


def _check_exp_unbounded(call):
    affine = _unbounded_source(call.inputs[0])
    if affine is None:
        return None
    limit = math.log(float(np.finfo(_first_float_dtype(call)).max))
    return (f"exp of an unbounded input (made by {affine}, with no max subtracted): it "
            f"overflows to inf above {limit:.1f}"), \
        "subtract the max first (x - x.amax(dim, keepdim=True)), or use softmax / logsumexp"


_REDUCTIONS = frozenset({"Sum", "Mean", "Norm", "Var", "Std"})
_ROOTS = frozenset({"Sqrt", "PowScalar"})


def _check_div_by_reduction(call):
    divisor = _source(call.inputs[1])
    if divisor is not None and divisor.op in _ROOTS:
        divisor = _source(divisor.inputs[0])
    if divisor is None or divisor.op not in _REDUCTIONS:
        return None
    reduced = _source(divisor.inputs[0])
    if reduced is not None and reduced.op == "Exp":
        return None   # a sum of exps: >= 1 after a max shift; else exp_unbounded flags it
    return (f"division by a {divisor.op} with no eps: it is 0 for an all-zero (or constant) "
            f"input, and the division gives inf or NaN"), \
        f"add an eps to the divisor ({divisor.op.lower()}(...) + eps), or clamp_min(eps)"


def _suggested_eps(dtype):
    return f"{10.0 ** math.ceil(math.log10(np.finfo(dtype).tiny)):.0e}"


_NORMS = frozenset({"LayerNorm", "GroupNorm", "BatchNorm", "BatchNormRelu", "RMSNorm"})


def _eps_dtype(call):
    """The dtype the op adds its eps in: its first floating input's, except that the norm
    ops compute float16 (and other 16-bit) inputs in float32 (ops/norm.py)."""
    dtype = _first_float_dtype(call)
    if dtype is None or not np.issubdtype(dtype, np.floating):
        return None
    if call.op in _NORMS and np.dtype(dtype).itemsize < 4:
        return np.dtype(np.float32)
    return np.dtype(dtype)


def _small_eps(call):
    """The first eps constant of ``call`` that is positive but below the tiny of the dtype
    it is added in, with that dtype; else None."""
    dtype = _eps_dtype(call)
    if dtype is None:
        return None
    tiny = np.finfo(dtype).tiny
    named = call.named or {}
    candidates = [named.get("eps"), named.get("lo")]
    if call.op == "Add":
        candidates += [v for v in call.inputs if _is_number(v)]
    for value in candidates:
        if _is_number(value) and 0 < float(value) < tiny:
            return float(value), dtype
    return None


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) \
        and not isinstance(value, bool)


def _check_eps_below_tiny(call):
    found = _small_eps(call)
    if found is None:
        return None
    eps, dtype = found
    tiny = np.finfo(dtype).tiny
    becomes = "0" if np.asarray(eps, dtype=dtype) == 0 else "a subnormal"
    return (f"eps {eps:g} is below finfo({dtype}).tiny = {tiny:.3g}: in {dtype} it is "
            f"{becomes}, so it no longer keeps the result away from 0"), \
        f"an eps >= finfo({dtype}).tiny, e.g. {_suggested_eps(dtype)}"


_FLOAT16_MAX = float(np.finfo(np.float16).max)


def _below_float16(array):
    """True if ``array`` holds -inf or a value that overflows to -inf in float16."""
    if array is None or array.dtype.kind != "f" or array.size == 0:
        return False
    return bool(np.nanmin(array.astype(np.float64, copy=False)) < -_FLOAT16_MAX)


def _mask_values(call):
    """The values the op puts into the scores: masked_fill's value, where's branches, an
    add's or a sub's other operand."""
    if call.op == "MaskedFill":
        return [(call.named or {}).get("value")]
    if call.op == "Where":
        return list(call.inputs[1:])
    return list(call.inputs)


def _check_neg_inf_mask(call):
    if call.dtype is None or np.dtype(call.dtype) != np.float16:
        return None
    if not any(_below_float16(_values(v)) for v in _mask_values(call)):
        return None
    return ("-inf (or a value below float16's range, such as finfo(float32).min, which "
            "becomes -inf) meets float16 scores: a fully masked row gives NaN in softmax "
            "(-inf - -inf), and so does a later add of the other infinity"), \
        ("pass a boolean mask: scaled_dot_product_attention(attn_mask=bool), or "
         "masked_fill(mask, finfo(float16).min), or compute the scores in float32")


PATTERNS = (
    LintPattern("log_of_softmax", ("Log",), "log(softmax(x)) or log(sigmoid(x)): the "
                "probability underflows to 0 and log gives -inf", "log_softmax(x)",
                _check_log_softmax),
    LintPattern("exp_unbounded", ("Exp",), "exp of a Linear/MatMul/Conv output (through "
                "adds, scalings, negations): overflows to inf", "subtract the max first, or "
                "use softmax / logsumexp", _check_exp_unbounded),
    LintPattern("div_by_reduction", ("Div",), "division by a Sum/Mean/Norm/Var/Std (or its "
                "Sqrt) with no eps: inf or NaN when it is 0", "add eps, or clamp_min(eps)",
                _check_div_by_reduction),
    LintPattern("eps_below_tiny", ("Add", "Clamp", "LayerNorm", "GroupNorm", "BatchNorm",
                                   "BatchNormRelu", "RMSNorm"),
                "an eps below finfo(dtype).tiny: subnormal or 0 in that dtype",
                "eps >= finfo(dtype).tiny", _check_eps_below_tiny, needs_constants=True),
    LintPattern("neg_inf_mask_fp16", ("MaskedFill", "Where", "Add", "Sub"), "-inf (or "
                "finfo(float32).min) put into float16 scores: NaN for fully masked rows",
                "boolean mask via scaled_dot_product_attention, finfo(float16).min, or "
                "float32 scores", _check_neg_inf_mask, needs_constants=True),
)


def _findings_of(calls, patterns):
    found, seen = [], set()
    for call in calls:
        for pattern in patterns:
            if call.op not in pattern.ops:
                continue
            result = pattern.check(call)
            key = (pattern.name, call.op, call.module, call.line)
            if result is None or key in seen:
                continue
            seen.add(key)
            message, rewrite = result
            found.append(LintFinding(pattern.name, call.op, call.module, call.line, message,
                                     rewrite))
    return found


# ----------------------------------------------------------------------------- recording

def _user_line():
    """The first stack frame outside the retrograd package, as a SourceLine."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return None
    return SourceLine(frame.f_code.co_filename, frame.f_lineno)


@functools.lru_cache(maxsize=None)
def _argument_names(op):
    try:
        parameters = list(_pyinspect.signature(op.forward).parameters)
    except (TypeError, ValueError):
        return ()
    return tuple(parameters[1:])   # without ctx


class _Recorder(ObserverBlock):
    """Records every op call: each output tensor (held, so that its id stays its own) maps
    to its _Call; an input tensor no call made is a _Leaf."""

    watches_backward = False

    def __init__(self):
        self.calls, self._made = [], {}
        self._attrs = None

    def before_forward(self, op, inputs, attrs):
        self._attrs = attrs
        return None

    def after_forward(self, op, node, inputs, outputs, module_path):
        attrs, self._attrs = self._attrs or {}, None
        entries = tuple(self._entry(v) for v in inputs)
        named = dict(zip(_argument_names(op), entries))
        named.update(attrs)
        first = outputs[0] if type(outputs) is tuple else outputs
        call = _Call(op, entries, named, first._data.dtype, module_path, _user_line(),
                     first._data)
        self.calls.append(call)
        for out in outputs if type(outputs) is tuple else (outputs,):
            self._made[id(out)] = (out, call)

    def _entry(self, value):
        if isinstance(value, Tensor):
            made = self._made.get(id(value))
            if made is not None and made[0] is value:
                return made[1]
            return _Leaf(value._data.dtype, value._data)
        return value


def _lint_recorded(fn, args, kwargs):
    with _Recorder() as recorder:
        fn(*args, **kwargs)
    return LintReport(_findings_of(recorder.calls, PATTERNS), len(recorder.calls))


# ----------------------------------------------------------------------------- graph walk

def _graph_calls(root):
    """The _Calls of the graph of ``root`` (a node), inputs before the calls that use them."""
    calls, order, stack, visited = {}, [], [(root, False)], set()
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack += [(n, False) for n, _ in node.next_functions
                  if isinstance(n, Function) and id(n) not in visited]
    for node in order:
        calls[id(node)] = _node_call(node, calls)
    return [calls[id(n)] for n in order]


def _node_call(node, calls):
    meta = getattr(node, "_input_meta", None) or ()
    inputs = []
    for k, (source, _) in enumerate(node.next_functions):
        dtype = meta[k][1] if k < len(meta) and meta[k] is not None else None
        if isinstance(source, AccumulateGrad):
            inputs.append(_Leaf(dtype, None))
        else:   # None: an input that needs no gradient; or a node that is not an op
            inputs.append(calls.get(id(source), _UNKNOWN))
    eps = getattr(node, "eps", None)
    named = {"eps": eps} if _is_number(eps) else None
    site = node.creation_site
    line = SourceLine(site[-1].filename, site[-1].lineno) if site else None
    output_meta = getattr(node, "_output_meta", None)
    dtype = output_meta[0][1] if output_meta else None
    return _Call(type(node), tuple(inputs), named, dtype, node.module_path, line)


def _lint_graph(output):
    if output.grad_fn is None:
        raise ValueError(f"lint: the tensor has no recorded graph (grad_fn is None: it is a "
                         f"leaf, or was made with grad off or from inputs that do not require "
                         f"grad); got {_checks.describe(output)}. Pass the computation "
                         f"instead: lint(fn, *args)")
    calls = _graph_calls(output.grad_fn)
    graph_patterns = [p for p in PATTERNS if not p.needs_constants]
    unchecked = [p.name for p in PATTERNS if p.needs_constants]
    return LintReport(_findings_of(calls, graph_patterns), len(calls), unchecked)


# ----------------------------------------------------------------------------- entry point

def lint(target, *args, **kwargs):
    """Flag numerically unstable patterns (see the module docstring and ``PATTERNS``).

    ``lint(output)``: walk the backward graph of the Tensor ``output``; lines are known when
    the graph was made under ``rg.autograd.detect_anomaly()``, and the patterns that need
    constants are skipped. ``lint(fn, *args, **kwargs)``: run ``fn(*args, **kwargs)``,
    recording every op call, and check them all. Returns a LintReport (empty when clean).
    """
    if isinstance(target, Tensor):
        if args or kwargs:
            raise TypeError("lint: given a Tensor, lint walks its graph and takes no other "
                            "arguments; to run a computation, pass a function: "
                            "lint(fn, *args, **kwargs)")
        return _lint_graph(target)
    if not callable(target):
        raise TypeError(f"lint: expected a Tensor with a recorded graph or a callable that "
                        f"runs the computation, got {_checks.describe(target)}")
    return _lint_recorded(target, args, kwargs)
