"""The autocast policy: which ops run in the low precision, which in float32, and which take
the widest dtype of their inputs. It is data: ``print(default_policy())`` shows it, and
``policy.with_rules({...})`` / ``policy.for_module(path, ...)`` make changed copies.

The lists follow PyTorch's CUDA autocast (the practice on the GPUs where mixed precision is
used), mapped onto retrograd's ops:

- low precision ("low"): the matrix products, where the low dtype halves the traffic and the
  float32 accumulation keeps the sums exact enough: linear, matmul, convolutions, the
  attention ops (their q @ k^T and P @ V; the softmax between them stays float32 inside the
  op), and the recurrent cells;
- float32 ("float32"): ops whose result loses too much in a low dtype: softmax,
  log_softmax, logsumexp, the norms, the losses, sum/mean/var/std/norm and other reductions,
  exp, log, pow;
- everything else ("promote"): the widest floating dtype among its inputs (float16 with
  bfloat16 gives float32), like PyTorch's type promotion.

docs/mixed-precision.md says where this differs from PyTorch's CPU lists and why.

    >>> policy = default_policy()
    >>> policy.rule("Linear"), policy.rule("Softmax"), policy.rule("Gelu")
    ('low', 'float32', 'promote')
    >>> head_in_float32 = policy.for_module("head", "float32")
    >>> head_in_float32.rule("Linear", "head"), head_in_float32.rule("Linear", "blocks.0.mlp")
    ('float32', 'low')
"""

import dataclasses

from retrograd.inspect.render import text_table

__all__ = ["AutocastPolicy", "default_policy", "RULES"]

RULES = ("low", "float32", "promote")

_LOW = ("Linear", "MatMul", "Conv1d", "Conv2d", "ScaledDotProductAttention",
        "MemoryEfficientAttention", "RNNStep", "LSTMStep", "GRUStep",
        "Einsum",   # PyTorch's einsum runs as bmm, which is on its low list
        "ConvTranspose1d", "ConvTranspose2d")
_FLOAT32 = ("Softmax", "LogSoftmax", "LogSumExp", "LayerNorm", "BatchNorm", "BatchNormRelu",
            "GroupNorm", "RMSNorm", "CrossEntropy", "CrossEntropyProbs", "NllLoss",
            "BinaryCrossEntropyWithLogits", "Sum", "Mean", "Var", "Std", "Norm", "Exp", "Log",
            "Pow", "PowScalar",
            # PyTorch's float32 list has softplus, kl_div, smooth_l1_loss, huber_loss and the
            # binary cross-entropy (which its CUDA autocast refuses outright)
            "Softplus", "BinaryCrossEntropy", "KlDiv", "SmoothL1Loss", "HuberLoss",
            # and cumsum, cumprod and the matrix norms (here: from the singular values)
            "Cumsum", "Cumprod", "SingularValues",
            # and the tail's acos, asin, cosh, sinh, tan, erfinv, expm1, log10, log2, log1p,
            # prod and cdist
            "Acos", "Asin", "Cosh", "Sinh", "Tan", "Erfinv", "Expm1", "Log10", "Log2", "Log1p",
            "Prod", "Cdist",
            # and multi_margin_loss (the activation tail's ops are on neither list: promote)
            "MultiMarginLoss",
            # and max_unpool2d (unfold, fold, adaptive_max_pool2d are on neither: promote)
            "MaxUnpool2d")

_WHY = {"low": "low list", "float32": "float32 list", "promote": "promoted"}


@dataclasses.dataclass(frozen=True)
class AutocastPolicy:
    """Rules by op name (``rules``; ops not named are "promote") and per-module overrides
    (``modules``: (module path prefix, rule or {op name: rule}), the last match wins)."""

    rules: dict
    modules: tuple = ()

    def rule(self, op_name, module_path=None):
        """The rule for ``op_name`` run inside the module at ``module_path``."""
        rule = self.rules.get(op_name, "promote")
        for prefix, override in self.modules:
            if module_path is not None and _inside(module_path, prefix):
                rule = (override if isinstance(override, str)
                        else override.get(op_name, rule))
        return rule

    def with_rules(self, rules):
        """A copy with ``rules`` ({op name: rule}) changed."""
        return dataclasses.replace(self, rules={**self.rules, **_checked(rules)})

    def for_module(self, path, override):
        """A copy where the ops inside the module at ``path`` (and its children) follow
        ``override``: one rule for all of them, or {op name: rule}."""
        if isinstance(override, str):
            _check_rule(override)
        else:
            override = _checked(override)
        return dataclasses.replace(self, modules=(*self.modules, (path, override)))

    def table(self):
        rows = [[name, rule, _WHY[rule]] for name, rule in sorted(self.rules.items())]
        lines = ["Autocast policy (ops not listed: promote)",
                 text_table(rows, ["Op", "Rule", "Why"], left=3)]
        for prefix, override in self.modules:
            lines.append(f"module {prefix or '(whole model)'!r}: {override}")
        return "\n".join(lines)

    def __str__(self):
        return self.table()


def default_policy():
    """The policy of the module docstring."""
    return AutocastPolicy({**{name: "low" for name in _LOW},
                           **{name: "float32" for name in _FLOAT32}})


def why(rule):
    """The reason a rule is given in the dtype trace."""
    return _WHY[rule]


def _inside(path, prefix):
    return prefix == "" or path == prefix or path.startswith(prefix + ".")


def _check_rule(rule):
    if rule not in RULES:
        raise ValueError(f"AutocastPolicy: a rule is one of {RULES}, got {rule!r}")


def _checked(rules):
    if not isinstance(rules, dict):
        raise TypeError(f"AutocastPolicy: rules must be a dict {{op name: rule}}, got "
                        f"{type(rules).__name__}")
    for name, rule in rules.items():
        if not isinstance(name, str):
            raise TypeError(f"AutocastPolicy: op names are strings, got {name!r}")
        _check_rule(rule)
    return dict(rules)
