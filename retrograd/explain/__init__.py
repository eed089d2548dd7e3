"""Worked examples: a forward and backward pass of one op with small numbers, step by step in
the op's own notation, checked live against retrograd's autograd and finite differences.

``retrograd.explain("conv2d", stride=2, padding=1)`` (or ``retrograd explain conv2d --stride 2
--padding 1`` on the command line) returns the worked example; ``print`` it, or
``.render("markdown" | "latex")``. Every number printed comes from the example's own
arithmetic of the formulas (its modules, one per op family, mirror ``retrograd/ops/``); then
the printed outputs are compared with retrograd's forward, the printed gradients with its
autograd and with central finite differences, and the example says so (``.ok``, ``.checks``).

Inputs are small integers drawn with ``seed`` (readable arithmetic) unless ``values`` gives
them by name (``values={"X": [[1, 2, 3], [4, 5, 6], [7, 8, 9]], "dL/dY": ...}``); ``shape``
sets the main input's shape. ``known_ops()`` lists what can be explained.

Example:
    >>> import retrograd
    >>> ex = retrograd.explain("linear", values={"x": [2, 3], "W": [[1, 2], [0, -1]],
    ...                                          "b": [1, -1], "dL/dY": [0.5, 0.5]})
    >>> ex.ok, ex.gradients["W"].tolist()
    (True, [[1.0, 1.5], [1.0, 1.5]])
"""

import dataclasses
import difflib
import importlib
import sys
import types

from retrograd.explain._example import Example, ExplainError, Option
from retrograd.explain._render import FORMATS

__all__ = ["explain", "known_ops", "families", "explains", "Example", "ExplainError", "Option",
           "FORMATS"]

# the modules of worked examples, one per op family (mirroring retrograd/ops/), loaded on the
# first call: each registers its ops with @explains
_FAMILY_MODULES = ("linear", "conv", "jacobian", "chain_rule", "softmax", "pool", "attention",
                  "activation", "dropout", "shape", "residual", "loss", "recurrent",
                  "embedding", "norm")


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str
    build: object
    family: str
    summary: str
    options: tuple
    aliases: tuple


_REGISTRY = {}


def explains(name, *, family, summary, options=(), aliases=()):
    """Register the decorated ``build(ex, **options)`` as the worked example of op ``name``."""
    def register(build):
        entry = _Entry(name, build, family, summary, tuple(options), tuple(aliases))
        for key in (name, *aliases):
            _REGISTRY[key] = entry
        return build
    return register


def _load():
    for module in _FAMILY_MODULES:
        importlib.import_module(f"retrograd.explain.{module}")


def _entries():
    _load()
    seen = {}
    for entry in _REGISTRY.values():
        seen.setdefault(entry.name, entry)
    return seen


def known_ops():
    """The names ``explain`` takes, sorted (aliases not included)."""
    return sorted(_entries())


def families():
    """{family: [op names]}, for listings."""
    grouped = {}
    for entry in _entries().values():
        grouped.setdefault(entry.family, []).append(entry.name)
    return {family: sorted(names) for family, names in grouped.items()}


def entry(op):
    """The registration of ``op`` (a name or an alias; case, '-' and spaces do not matter)."""
    _load()
    key = str(op).strip().lower().replace("-", "_").replace(" ", "_")
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ExplainError(f"explain: unknown op {op!r}{hint}; known ops: "
                       f"{', '.join(known_ops())}")


def _options(found, given):
    """The op's options with ``given`` applied, each checked against its type and choices."""
    declared = {o.name: o for o in found.options}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        names = ", ".join(declared) or "none"
        raise ExplainError(f"explain {found.name}: unknown option {', '.join(unknown)}; "
                           f"its options: {names}")
    chosen = {}
    for name, option in declared.items():
        value = given.get(name, option.default)
        if option.choices and value not in option.choices:
            raise ExplainError(f"explain {found.name}: {name} must be one of "
                               f"{', '.join(map(str, option.choices))}, got {value!r}")
        if option.type in (int, float) and (isinstance(value, bool)
                                            or not isinstance(value, (int, float))):
            raise ExplainError(f"explain {found.name}: {name} must be a number, got {value!r}")
        chosen[name] = option.type(value)
    return chosen


def explain(op, *, shape=None, seed=0, values=None, **options):
    """The worked example of ``op``, built and checked (``print`` it; ``.ok``; ``.render``).

    shape: the main input's shape (a tuple; fewer dimensions than the op takes are padded with
    leading 1s). seed: the seed of the drawn inputs. values: {input name: nested lists} for the
    user's own numbers (the upstream gradient is "dL/dY", or the name the example prints).
    options: the op's own (``explain("conv2d", stride=2)``); an unknown one is an error that
    lists them."""
    from retrograd.explain._verify import verify

    found = entry(op)
    chosen = _options(found, options)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ExplainError(f"explain {found.name}: seed must be an int >= 0, got {seed!r}")
    ex = Example(found.name, seed=seed, values=values, shape=shape)
    ex.title = found.summary
    found.build(ex, **chosen)
    unused = ex.unused_values()
    if unused:
        raise ExplainError(f"explain {found.name}: values given for {', '.join(unused)}, which "
                           f"it does not take; its inputs: "
                           f"{', '.join([*ex.inputs, *(n for n, _ in ex.upstreams)])}")
    verify(ex)
    return ex


class _CallableModule(types.ModuleType):
    """``retrograd.explain`` is this package; calling it is calling ``explain``."""

    def __call__(self, op, **kwargs):
        return explain(op, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
