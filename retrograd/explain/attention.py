"""Worked examples of attention (retrograd/ops/attention.py): scaled dot-product attention, its
softmax backward shown both ways (the full Jacobian of one row, diag(a) - a a^T, and the cheap
row-sum formula that replaces it), and multi-head self-attention as nn.MultiheadAttention
computes it (project, split into heads, attend per head, concatenate, project).

Notation (the brief's; retrograd/ops/attention.py writes P for A and L, S, E for Tq, Tk, d):

    S = Q K^T * scale + M      A = softmax(S) row by row      O = A V
    dL/dV = A^T dL/dO          dL/dA = dL/dO V^T
    r = rowsum(dL/dA * A)      dL/dS = A * (dL/dA - r)
    dL/dQ = dL/dS K * scale    dL/dK = dL/dS^T Q * scale
"""

import math

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError
from retrograd.explain._render import format_number

__all__ = []


def _number_or_none(value):
    """The ``scale`` option: None ("none" on the command line) for 1/sqrt(d), else a number."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "auto")):
        return None
    if isinstance(value, bool):
        raise ExplainError(f"explain attention: scale must be a number or None, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExplainError(f"explain attention: scale must be a number or None, got "
                           f"{value!r}") from None


def _shape(a):
    return "x".join(str(n) for n in np.shape(a))


def _swap(a):
    return np.swapaxes(a, -1, -2)


def _causal_mask(n_queries, n_keys):
    """M: 0 where key j <= query i, -inf where key j comes after query i (top-left aligned,
    as retrograd's and PyTorch's is_causal)."""
    return np.where(np.triu(np.ones((n_queries, n_keys), dtype=bool), 1), -np.inf, 0.0)


def _softmax_rows(scores):
    """exp(S - rowmax(S)) / rowsum(exp(S - rowmax(S))): a masked score (-inf) gets weight 0."""
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _rowsum(grad_a, a):
    """r = rowsum(dL/dA * A): one number per query, kept as a column (..., Tq, 1)."""
    return np.sum(grad_a * a, axis=-1, keepdims=True)


def _sum_to(grad, shape):
    """A gradient of the broadcast batch shape summed back to an input's ``shape``."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True)


def _attend(ex, q, k, v, scale, mask, tag=""):
    """The forward of one attention block, shown: S, A; returns (A, O = A V)."""
    plus_mask = "" if mask is None else " + M"
    scores = q @ _swap(k) * scale + (0.0 if mask is None else mask)
    ex.show(f"S{tag}", scores, f"Q{tag} K{tag}^T * {format_number(scale)}{plus_mask}")
    a = ex.show(f"A{tag}", _softmax_rows(scores),
                f"softmax of each row of S{tag}: exp(S - rowmax) / rowsum(exp(S - rowmax))")
    return a, a @ v


def _scores_backward(ex, v, a, grad_o, record, tag=""):
    """The backward of one attention block down to the scores: ``record(which, value,
    formula)`` receives dL/dV (which = "V"); dL/dA, r and dL/dS are shown. Returns (dL/dA,
    dL/dS)."""
    record("V", _swap(a) @ grad_o, f"A{tag}^T dL/dO{tag}")
    grad_a = ex.show(f"dL/dA{tag}", grad_o @ _swap(v), f"dL/dO{tag} V{tag}^T")
    r = ex.show(f"r{tag}", _rowsum(grad_a, a), f"rowsum(dL/dA{tag} * A{tag}), one per query")
    grad_s = ex.show(f"dL/dS{tag}", a * (grad_a - r), f"A{tag} * (dL/dA{tag} - r{tag})")
    return grad_a, grad_s


def _query_key_backward(q, k, grad_s, scale, record, tag=""):
    """dL/dQ and dL/dK from dL/dS, given to ``record`` (which = "Q", "K")."""
    record("Q", grad_s @ k * scale, f"dL/dS{tag} K{tag} * {format_number(scale)}")
    record("K", _swap(grad_s) @ q * scale, f"dL/dS{tag}^T Q{tag} * {format_number(scale)}")


def _one_row_jacobian(ex, a, grad_a):
    """dL/dS of the last query (of the first batch element) through the softmax Jacobian
    J = diag(a) - a a^T, the matrix that A * (dL/dA - r) never builds."""
    index = (0,) * (a.ndim - 2) + (a.shape[-2] - 1,)
    label = f"[{', '.join(map(str, index))}]"
    ex.say(f"What A * (dL/dA - r) replaces, for one row (query {index[-1]}): the softmax's "
           f"Jacobian dA_j/dS_k = a_j (1[j = k] - a_k), a Tk x Tk matrix per row.")
    row = ex.show("a", a[index], f"A{label}, the weights of that query")
    grad_row = ex.show("dL/da", grad_a[index], f"dL/dA{label}")
    jacobian = ex.show("J", np.diag(row) - np.outer(row, row), "diag(a) - a a^T")
    ex.show("J dL/da", jacobian @ grad_row,
            f"the row dL/dS{label} above (J is symmetric: J^T = J)")
    ex.say("Row by row, J dL/da = a * dL/da - a (a . dL/da) = a * (dL/da - r): the cheap "
           "formula needs one dot product per row instead of a Tk x Tk matrix.")


def _check_attention_shapes(q, k, v):
    for name, value, what in (("Q", q, "(..., Tq, d)"), ("K", k, "(..., Tk, d)"),
                              ("V", v, "(..., Tk, dv)")):
        if value.ndim < 2:
            raise ExplainError(f"explain attention: {name} must have at least 2 dimensions "
                               f"{what}, got shape {_shape(value)}")
    if q.shape[-1] != k.shape[-1]:
        raise ExplainError(
            f"explain attention: Q's head dim d (last dimension of Q, shape {_shape(q)}) is "
            f"{q.shape[-1]} but K's (last dimension of K, shape {_shape(k)}) is "
            f"{k.shape[-1]}; Q K^T needs them equal")
    if k.shape[-2] != v.shape[-2]:
        raise ExplainError(
            f"explain attention: K has {k.shape[-2]} keys (dimension -2 of K, shape "
            f"{_shape(k)}) but V has {v.shape[-2]} (dimension -2 of V, shape {_shape(v)}); "
            f"each key needs one value")
    try:
        np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ExplainError(f"explain attention: the batch dims of Q ({_shape(q)}), K "
                           f"({_shape(k)}) and V ({_shape(v)}) do not broadcast") from None


def _float_input(ex, name, shape, doc, **kwargs):
    return ex.input(name, shape, integer=False, low=-1, high=1, doc=doc, **kwargs)


@explains("attention", family="attention", aliases=("scaled_dot_product_attention", "sdpa"),
          summary="scaled dot-product attention O = softmax(Q K^T * scale) V",
          options=(Option("causal", bool, False, "mask key j for query i when j > i"),
                   Option("scale", _number_or_none, None,
                          "factor on the scores; none means 1/sqrt(d)")))
def attention(ex, causal, scale):
    from retrograd.nn import functional as F

    q = _float_input(ex, "Q", (3, 2), "queries (..., Tq, d)", primary=True, max_ndim=4)
    k = _float_input(ex, "K", q.shape, "keys (..., Tk, d)", max_ndim=4)
    v = _float_input(ex, "V", k.shape, "values (..., Tk, dv)", max_ndim=4)
    _check_attention_shapes(q, k, v)
    d = q.shape[-1]
    given_scale = scale is not None
    scale = scale if given_scale else 1.0 / math.sqrt(d)
    (out_shape,) = ex.reference(
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale),
        "Q", "K", "V")
    ex.say(f"scale = {format_number(scale)} (given)" if given_scale else
           f"scale = 1/sqrt(d) = 1/sqrt({d}) = {format_number(scale)}")

    ex.section("Forward")
    mask = None
    if causal:
        mask = ex.show("M", _causal_mask(q.shape[-2], k.shape[-2]),
                       "causal mask: -inf where key j comes after query i")
    a, out = _attend(ex, q, k, v, scale, mask)
    ex.output("O", out, "A V")

    ex.section("Backward")
    grad_o = ex.upstream(out_shape, "dL/dO", aliases=("dY", "dO", "dattn"))

    def record(which, value, formula):
        source = {"Q": q, "K": k, "V": v}[which]
        if value.shape != source.shape:
            formula += f", summed over the batch dims {which} was broadcast along"
        ex.gradient(which, _sum_to(value, source.shape), formula)

    grad_a, grad_s = _scores_backward(ex, v, a, grad_o, record)
    ex.say("r is also rowsum(dL/dO * O) (FlashAttention's D), the cheaper form "
           "retrograd's op uses.")
    _one_row_jacobian(ex, a, grad_a)
    if causal:
        ex.say("Masked entries (M = -inf) have A = 0, so dL/dS = A * (dL/dA - r) = 0 there: "
               "no gradient reaches a masked score, hence none reaches Q or K through it.")
    _query_key_backward(q, k, grad_s, scale, record)


def _check_heads(x, heads):
    if heads < 1:
        raise ExplainError(f"explain multi_head_attention: heads must be >= 1, got {heads}")
    if x.shape[-1] % heads:
        raise ExplainError(
            f"explain multi_head_attention: E = {x.shape[-1]} (the last dimension of x, shape "
            f"{_shape(x)}) is not divisible by heads = {heads}; each head takes E / heads "
            f"features")


def _check_parameter(x, name, value, shape):
    if value.shape != shape:
        raise ExplainError(
            f"explain multi_head_attention: {name} must have the shape {_shape(np.empty(shape))} "
            f"(E = {x.shape[-1]}, the last dimension of x, shape {_shape(x)}), got "
            f"{_shape(value)}")


def _mha_inputs(ex, heads, bias):
    """x, the four projection weights and (with ``bias``) the four biases, checked."""
    x = _float_input(ex, "x", (2, 4), "tokens (T, E): query, key and value at once",
                     primary=True)
    _check_heads(x, heads)
    e = x.shape[-1]
    weights = {}
    for name, what in (("Wq", "query"), ("Wk", "key"), ("Wv", "value"), ("Wo", "output")):
        weights[name] = _float_input(ex, name, (e, e), f"{what} projection (E, E)")
        _check_parameter(x, name, weights[name], (e, e))
    biases = {}
    for name, what in (("bq", "query"), ("bk", "key"), ("bv", "value"), ("bo", "output")):
        if bias:
            biases[name] = _float_input(ex, name, (e,), f"{what} bias (E,)")
            _check_parameter(x, name, biases[name], (e,))
    return x, weights, biases


def _mha_reference(ex, heads, causal, bias):
    """Run F.multi_head_attention_forward (what nn.MultiheadAttention calls) with separate
    projection weights on the example's inputs; returns the output's shape."""
    from retrograd import cat
    from retrograd.nn import functional as F

    def reference(x, wq, wk, wv, wo, *biases):
        in_bias, out_bias = (cat(list(biases[:3])), biases[3]) if biases else (None, None)
        out, _ = F.multi_head_attention_forward(
            x, x, x, x.shape[-1], heads, None, in_bias, None, None, False, 0.0, wo, out_bias,
            training=False, need_weights=False, use_separate_proj_weight=True,
            q_proj_weight=wq, k_proj_weight=wk, v_proj_weight=wv, is_causal=causal)
        return out

    names = ("x", "Wq", "Wk", "Wv", "Wo") + (("bq", "bk", "bv", "bo") if bias else ())
    (out_shape,) = ex.reference(reference, *names)
    return out_shape


def _projection(ex, x, weights, biases, which):
    """Q, K or V = x W^T (+ b), shown."""
    w, b = weights[f"W{which.lower()}"], biases.get(f"b{which.lower()}")
    value = x @ w.T + (0.0 if b is None else b)
    plus = "" if b is None else f" + b{which.lower()}"
    return ex.show(which, value, f"x W{which.lower()}^T{plus}")


def _head_columns(h, d):
    return slice(h * d, (h + 1) * d)


def _mha_forward(ex, x, weights, biases, heads, causal):
    """Projections, heads, per-head attention, concatenation, output projection; returns
    (Q, K, V, [A_h], C, scale)."""
    d = x.shape[-1] // heads
    scale = 1.0 / math.sqrt(d)
    ex.section("Forward: projections")
    q, k, v = (_projection(ex, x, weights, biases, which) for which in "QKV")
    mask = None
    if causal:
        mask = ex.show("M", _causal_mask(x.shape[0], x.shape[0]),
                       "causal mask: -inf where key j comes after query i")
    weights_per_head, outs = [], []
    for h in range(heads):
        cols = _head_columns(h, d)
        ex.section(f"Forward: head {h} (columns {cols.start}-{cols.stop - 1})")
        q_h, k_h, v_h = (ex.show(f"{name}_{h}", m[:, cols], f"{name}[:, {cols.start}:"
                                 f"{cols.stop}]") for name, m in (("Q", q), ("K", k), ("V", v)))
        a_h, o_h = _attend(ex, q_h, k_h, v_h, scale, mask, tag=f"_{h}")
        weights_per_head.append(a_h)
        outs.append(ex.show(f"O_{h}", o_h, f"A_{h} V_{h}"))
    ex.section("Forward: concatenation and output projection")
    c = ex.show("C", np.concatenate(outs, axis=1),
                "concat(" + ", ".join(f"O_{h}" for h in range(heads)) + "), side by side")
    plus = "" if "bo" not in biases else " + bo"
    ex.output("Y", c @ weights["Wo"].T + biases.get("bo", 0.0), f"C Wo^T{plus}")
    return q, k, v, weights_per_head, c, scale


def _mha_head_backward(ex, q, k, v, a_h, grad_c, h, d, scale):
    """One head's backward from its slice of dL/dC; returns (dL/dQ_h, dL/dK_h, dL/dV_h)."""
    cols = _head_columns(h, d)
    ex.section(f"Backward: head {h}")
    grad_o = ex.show(f"dL/dO_{h}", grad_c[:, cols], f"dL/dC[:, {cols.start}:{cols.stop}]")
    found = {}

    def record(which, value, formula):
        found[which] = ex.show(f"dL/d{which}_{h}", value, formula)

    tag = f"_{h}"
    _, grad_s = _scores_backward(ex, v[:, cols], a_h, grad_o, record, tag)
    _query_key_backward(q[:, cols], k[:, cols], grad_s, scale, record, tag)
    return found["Q"], found["K"], found["V"]


def _mha_backward(ex, x, weights, biases, forward, heads, out_shape):
    q, k, v, weights_per_head, c, scale = forward
    d = x.shape[-1] // heads
    ex.section("Backward: output projection")
    grad_y = ex.upstream(out_shape, "dL/dY", aliases=("dY",))
    ex.gradient("Wo", grad_y.T @ c, "dL/dY^T C")
    if biases:
        ex.gradient("bo", grad_y.sum(axis=0), "sum over tokens of dL/dY")
    grad_c = ex.show("dL/dC", grad_y @ weights["Wo"], "dL/dY Wo")
    per_head = [_mha_head_backward(ex, q, k, v, weights_per_head[h], grad_c, h, d, scale)
                for h in range(heads)]
    ex.section("Backward: heads merged, input projections")
    parts = ", ".join(f"dL/d{{0}}_{h}" for h in range(heads))
    merged = {}
    for i, which in enumerate("QKV"):
        name = which.lower()
        merged[which] = ex.show(f"dL/d{which}", np.concatenate([g[i] for g in per_head], axis=1),
                                f"concat({parts.format(which)})")
        ex.gradient(f"W{name}", merged[which].T @ x, f"dL/d{which}^T x")
        if biases:
            ex.gradient(f"b{name}", merged[which].sum(axis=0), f"sum over tokens of dL/d{which}")
    ex.section("Backward: x, through its three paths")
    paths = [ex.show(f"dL/dx via {which}", merged[which] @ weights[f"W{which.lower()}"],
                     f"dL/d{which} W{which.lower()}") for which in "QKV"]
    ex.gradient("x", paths[0] + paths[1] + paths[2],
                "dL/dx via Q + via K + via V: x is the query, the key and the value")


@explains("multi_head_attention", family="attention", aliases=("mha", "multihead_attention"),
          summary="multi-head self-attention Y = concat_h(softmax(Q_h K_h^T / sqrt(d)) V_h) "
                  "Wo^T, as nn.MultiheadAttention",
          options=(Option("heads", int, 2, "number of heads (must divide E)"),
                   Option("causal", bool, False, "mask key j for query i when j > i"),
                   Option("bias", bool, False, "biases on the four projections "
                                               "(nn.MultiheadAttention's default has them)")))
def multi_head_attention(ex, heads, causal, bias):
    x, weights, biases = _mha_inputs(ex, heads, bias)
    out_shape = _mha_reference(ex, heads, causal, bias)
    e = x.shape[-1]
    plural = "s" if heads > 1 else ""
    ex.say(f"Self-attention: x is the query, the key and the value. {heads} head{plural} of "
           f"d = E / heads = {e}/{heads} = {e // heads} features each; scale = 1/sqrt(d) = "
           f"{format_number(1.0 / math.sqrt(e // heads))}. The reference is "
           f"F.multi_head_attention_forward with separate projection weights (what "
           f"nn.MultiheadAttention computes), in float64.")
    forward = _mha_forward(ex, x, weights, biases, heads, causal)
    _mha_backward(ex, x, weights, biases, forward, heads, out_shape)
