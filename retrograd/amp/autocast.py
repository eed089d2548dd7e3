"""autocast: run ops in float16 or bfloat16 where it is safe, float32 where it is not.

``with retrograd.autocast(dtype=retrograd.bfloat16): loss = loss_fn(model(x), y)`` applies the
policy (policy.py) at every op's boundary, through the observer slot: before an op runs, its
floating inputs are cast (differentiably) to the dtype its rule asks for. Nothing is observed
and nothing costs anything while no autocast is on.

How a low-precision op computes. NumPy has float16 and bfloat16 (ml_dtypes) arrays but no fast
kernels for them, and summing in a 8- or 11-bit significand loses what a GPU's tensor cores
keep. So an op that runs in a low dtype does what tensor cores do: its inputs are rounded to
the low dtype (the cast), the op computes in float32 on those rounded values (BLAS, float32
accumulation), and its outputs are rounded to the low dtype. What the op saves for backward
is stored in the low dtype (the inputs it got, the outputs it returned and the float arrays
it keeps as ctx attributes), so memory really shrinks; ops on the float32 list (the norms,
softmax, the losses) keep theirs in float32. Backward does the reverse: gradients, saved
values and those attributes are widened to float32, the op's backward runs, and the engine
rounds each gradient to its input's dtype. Gradients therefore flow back in the dtypes the
forward used, and the parameters, float32 leaves, receive float32 gradients through the casts
(master weights). The cast of a parameter is made once per autocast block and reused
(PyTorch's weight cache), unless the parameter changed.

Which dtype: an explicit ``dtype=`` argument of an op opts it out; float64 tensors are never
cast; otherwise the op's rule: "low" casts its float inputs to the autocast dtype, "float32"
to float32, "promote" to the widest floating dtype among them. Ops that only move data
(views, copies, gathers) run in their inputs' dtype as they are.

``explain(model, *inputs)`` runs a forward under autocast and prints, op by op, the input
dtypes, the compute dtype, the output dtype and why.
"""

import contextlib
import dataclasses
import functools
import warnings

import numpy as np

from retrograd import dtypes as _dt
from retrograd.amp.policy import AutocastPolicy, default_policy, why
from retrograd.autograd.function import Function
from retrograd.autograd.grad_mode import STATE
from retrograd.autograd.observer import OpObserver, kernel_subclass, observe
from retrograd.inspect.render import text_table
from retrograd.tensor import Tensor

__all__ = ["autocast", "explain", "DtypeTrace", "is_autocast_enabled", "get_autocast_dtype"]

_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)
_LOW = _dt.LOW_PRECISION
_STACK = []          # the autocast states entered, innermost last


@dataclasses.dataclass
class _State:
    enabled: bool
    dtype: np.dtype
    policy: AutocastPolicy
    cache: dict = None       # id(parameter) -> (parameter, version, its cast), or None
    trace: list = None       # rows of the dtype trace while explain() records


# the accelerators PyTorch's autocast and GradScaler know: absent here, as on a CPU-only PyTorch
ACCELERATORS = ("cuda", "mps", "xpu", "hpu", "xla", "mtia")


def _accelerator_autocast(device_type, enabled):
    """autocast for an accelerator that is not there: PyTorch without it warns and runs the
    block without autocast; so does retrograd (the block runs in float32 on the CPU)."""
    if device_type not in ACCELERATORS:
        raise ValueError(f"autocast: device_type {device_type!r} is not available: retrograd "
                         f"runs on the CPU (use device_type='cpu' or leave it out)")
    if enabled:
        warnings.warn(f"autocast: device_type {device_type!r} is not available (retrograd runs "
                      f"on the CPU only); this autocast is disabled", UserWarning, stacklevel=3)
    return False


class autocast:
    """Context manager and decorator: ops inside run in ``dtype`` where the policy says so
    (module docstring).

    Args:
        device_type: "cpu" (may be omitted; retrograd runs on the CPU).
        dtype: retrograd.bfloat16 (the default, as PyTorch's CPU autocast) or
            retrograd.float16.
        enabled: False turns autocast off inside an enclosing autocast block.
        cache_enabled: reuse each parameter's cast within the block (default True).
        policy: an AutocastPolicy (default: ``default_policy()``).

    Example:
        >>> import retrograd as rg
        >>> layer = rg.nn.Linear(4, 3)
        >>> with rg.autocast(dtype=rg.bfloat16):
        ...     y = layer(rg.randn(2, 4))
        ...     z = y.softmax(-1)
        >>> y.dtype, z.dtype, layer.weight.dtype
        (retrograd.bfloat16, retrograd.float32, retrograd.float32)
    """

    def __init__(self, device_type="cpu", dtype=None, enabled=True, cache_enabled=True,
                 policy=None):
        if not isinstance(enabled, bool):
            raise TypeError(f"autocast: enabled must be a bool, got {enabled!r}")
        if device_type != "cpu":
            enabled = _accelerator_autocast(device_type, enabled)
        if policy is not None and not isinstance(policy, AutocastPolicy):
            raise TypeError(f"autocast: policy must be an AutocastPolicy, got "
                            f"{type(policy).__name__}")
        self._args = (device_type, dtype, enabled, cache_enabled, policy)
        self.dtype = _low_dtype(dtype)
        self.enabled, self.cache_enabled = enabled, bool(cache_enabled)
        self.policy = policy if policy is not None else default_policy()
        self._exits = []

    def __enter__(self):
        state = _State(self.enabled, self.dtype, self.policy,
                       {} if self.cache_enabled else None)
        _STACK.append(state)
        stack = contextlib.ExitStack()
        if self.enabled and not any(o is _LIVE for o in STATE.observers):
            stack.enter_context(observe(_LIVE))
        self._exits.append(stack)
        return self

    def __exit__(self, *exc):
        self._exits.pop().close()
        _STACK.pop()
        return False

    def __call__(self, function):
        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            with autocast(*self._args):
                return function(*args, **kwargs)
        return wrapped


def is_autocast_enabled():
    """True inside an enabled autocast block."""
    return bool(_STACK) and _STACK[-1].enabled


def get_autocast_dtype():
    """The dtype of the innermost autocast block (bfloat16 outside any)."""
    return _dt.from_numpy_dtype(_STACK[-1].dtype if _STACK else _dt.bfloat16.np)


def _low_dtype(dtype):
    if dtype is None:
        return np.dtype(_dt.as_numpy_dtype(_dt.bfloat16))
    try:
        np_dtype = np.dtype(_dt.as_numpy_dtype(dtype))
    except (TypeError, ValueError, KeyError):
        np_dtype = None
    if np_dtype not in _LOW:
        raise TypeError(f"autocast: dtype must be retrograd.bfloat16 or retrograd.float16 (a "
                        f"low-precision floating dtype), got {dtype!r}")
    return np_dtype


# ------------------------------------------------------------------------ the op boundary
class _Observer(OpObserver):
    """Applies the policy before each op; ``fixed``: a state of its own (a checkpoint's
    recompute replays the autocast state of its first forward), else the innermost block."""

    watches_backward = False
    replayed_by_checkpoint = True

    def __init__(self, fixed=None):
        self.fixed, self.store, self.row = fixed, None, None

    def state(self):
        return self.fixed if self.fixed is not None else (_STACK[-1] if _STACK else None)

    @property
    def casts_inputs(self):
        """True while it casts (nn.functional's dtype checks then let mixed floats pass)."""
        state = self.state()
        return state is not None and state.enabled

    def replay_observer(self):
        """An observer that applies the current state again (for a checkpoint's recompute)."""
        state = self.state()
        return _Observer(dataclasses.replace(state, cache=None, trace=None))

    def before_forward(self, op, inputs, attrs):
        self.store = self.row = None
        state = self.state()
        if state is None or not state.enabled:
            return None
        scope = STATE.module_scope
        path = scope.path if scope is not None else None
        target, store, reason = _decide(op, inputs, attrs, state, path)
        if state.trace is not None:
            self.row = [op.__name__, path or "", _dtypes_text(inputs), None, None, reason]
        if target is None:
            return None
        cast = tuple(_cast(t, target, state) for t in inputs)
        if store in _LOW and op.moves_data is None:
            self.store = store
        return cast

    def kernel_class(self, op):
        """The op (or the class another observer runs in its place) computing in float32 and
        storing in the low dtype, when its inputs are low."""
        return _wide_kernel(op, self.store) if self.store is not None else None

    def after_forward(self, op, node, inputs, outputs, module_path):
        row, self.row = self.row, None
        if row is not None:
            out = outputs if type(outputs) is tuple else (outputs,)
            row[3] = "float32" if self.store is not None else _first_float(inputs)
            row[4] = _dtypes_text(out)
            self.state().trace.append(row)


_LIVE = _Observer()


def _decide(op, inputs, attrs, state, path):
    """(dtype to cast floating inputs to or None, dtype the op's results are stored in,
    reason) for one op call."""
    if attrs.get("dtype") is not None:
        return None, None, "explicit dtype="
    floats = [t._data.dtype for t in inputs if isinstance(t, Tensor)
              and _dt.is_floating(t._data.dtype)]
    if not floats:
        return None, None, "no floating inputs"
    if op.moves_data is not None:
        return None, None, "moves data"
    rule = state.policy.rule(op.__name__, path)
    if rule == "low":
        target = state.dtype
    elif rule == "float32":
        target = _FLOAT32
    else:
        target = functools.reduce(_dt.result_type, floats)
    store = _FLOAT64 if all(d == _FLOAT64 for d in floats) else target
    return target, store, why(rule)


def _cast(value, dtype, state):
    """``value`` cast to ``dtype`` when it is a floating Tensor that autocast may cast (not
    float64); a parameter's cast comes from the block's cache while it is unchanged."""
    if not isinstance(value, Tensor):
        return value
    current = value._data.dtype
    if current == dtype or current == _FLOAT64 or not _dt.is_floating(current):
        return value
    cache = state.cache
    if cache is None or value.grad_fn is not None or not value._requires_grad \
            or not STATE.grad_enabled:
        return value.to(dtype)
    key = (id(value), dtype)
    hit = cache.get(key)
    if hit is not None and hit[0] is value and hit[1] == value._version[0]:
        return hit[2]
    cast = value.to(dtype)
    cache[key] = (value, value._version[0], cast)
    return cast


def _dtypes_text(values):
    names = [_dt.from_numpy_dtype(v._data.dtype).name for v in values if isinstance(v, Tensor)]
    return ", ".join(names) if names else "-"


def _first_float(values):
    for v in values:
        if isinstance(v, Tensor) and _dt.is_floating(v._data.dtype):
            return _dt.from_numpy_dtype(v._data.dtype).name
    return "-"


# ------------------------------------------------------------- computing in float32
@functools.lru_cache(maxsize=None)
def _wide_kernel(op, store):
    """``op`` computing in float32 on its low-precision inputs, its results and saved values
    stored in ``store`` (module docstring)."""

    def forward(ctx, *arrays, **attrs):
        wide = [_widen(a) for a in arrays]
        out = op.forward(ctx, *wide, **attrs)
        narrow = (tuple(_narrow(o, store) for o in out) if type(out) is tuple
                  else _narrow(out, store))
        if ctx._to_save is not None:
            ctx._to_save = _saved_as_stored(ctx._to_save, arrays, wide, out, narrow)
        _narrow_attributes(ctx, store)
        return narrow

    def backward(ctx, *grads):
        _widen_attributes(ctx)
        return op.backward(ctx, *[_widen(g) for g in grads])

    def saved_tensors(ctx):
        return [_widen(v) for v in Function.saved_tensors.fget(ctx)]

    return kernel_subclass(op, forward, backward, saved_tensors=property(saved_tensors),
                           computes_in="float32")


def _widen(value):
    if type(value) is np.ndarray:
        return _dt.convert(value, _FLOAT32) if value.dtype in _LOW else value
    if isinstance(value, Tensor) and value._data.dtype in _LOW:
        return value.float()
    return value


def _narrow(value, store):
    if type(value) is np.ndarray and value.dtype == _FLOAT32:
        return _dt.convert(value, store)
    return value


def _narrow_attributes(ctx, store):
    """The float32 arrays forward kept as ctx attributes (a GELU's tanh, a dropout mask),
    stored in the low dtype too; their names are remembered for backward."""
    names = [name for name, value in vars(ctx).items()
             if type(value) is np.ndarray and value.dtype == _FLOAT32]
    for name in names:
        setattr(ctx, name, _dt.convert(getattr(ctx, name), store))
    ctx._narrowed = names


def _widen_attributes(ctx):
    for name in ctx._narrowed:
        setattr(ctx, name, _widen(getattr(ctx, name)))


def _saved_as_stored(to_save, arrays, wide, out, narrow):
    """What forward saved, with each widened input replaced by the input it was given and
    each float32 output by the stored one (so that memory holds the low dtype)."""
    outs = out if type(out) is tuple else (out,)
    narrows = narrow if type(narrow) is tuple else (narrow,)
    kept = []
    for value in to_save:
        for original, widened in zip(arrays, wide):
            if value is widened:
                value = original
                break
        else:
            for computed, stored in zip(outs, narrows):
                if value is computed:
                    value = stored
                    break
        kept.append(value)
    return tuple(kept)


# ------------------------------------------------------------------------ the dtype trace
def explain(model, *inputs, dtype=None, policy=None, **kwargs):
    """Run ``model(*inputs, **kwargs)`` under autocast and return its DtypeTrace: for each
    op, its input dtypes, the dtype it computed in, its output dtype and why.

    Example:
        >>> import retrograd as rg
        >>> block = rg.nn.Sequential(rg.nn.Linear(4, 8), rg.nn.GELU(), rg.nn.LayerNorm(8))
        >>> print(explain(block, rg.randn(2, 4)))
        Op         Module  Inputs                      Computes  Output    Why
        ---------  ------  --------------------------  --------  --------  ------------
        Linear     0       float32, float32, float32   float32   bfloat16  low list
        Gelu       1       bfloat16                    float32   bfloat16  promoted
        LayerNorm  2       bfloat16, float32, float32  float32   float32   float32 list
    """
    if not callable(model):
        raise TypeError(f"explain: model must be callable (a Module or a function), got "
                        f"{type(model).__name__}")
    block = autocast(dtype=dtype, policy=policy)
    with block:
        _STACK[-1].trace = rows = []
        model(*inputs, **kwargs)
    return DtypeTrace(rows)


@dataclasses.dataclass
class DtypeTrace:
    """The rows of ``explain``: [op, module path, input dtypes, compute dtype, output dtype,
    why]."""

    rows: list

    def __str__(self):
        return text_table(self.rows, ["Op", "Module", "Inputs", "Computes", "Output", "Why"],
                          left=6)
