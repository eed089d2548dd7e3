"""Worked examples of token embeddings and positional encodings (retrograd/ops/embedding.py,
retrograd/nn/embedding.py): the row lookup y = E[ids] and its gradient, a scatter-add in which
repeated ids accumulate; the fixed sinusoidal table added to the tokens, which passes the
gradient through and takes none; and a learned position table, whose rows receive dL/dy summed
over the batch."""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError

__all__ = []

_BASE = 10000.0  # the frequency base of "Attention is all you need"


def _shape_text(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def _at_least(op, **sizes):
    for name, value in sizes.items():
        if value < 1:
            raise ExplainError(f"explain {op}: {name} must be >= 1, got {value}")


def _token_ids(ex, table, shape, repeat):
    """The ids (B, T) in [0, V), V = the rows of E; drawn ones get a repeated id when
    ``repeat`` (so the accumulation shows), an id out of range names the vocabulary size."""
    vocab = table.shape[0]
    try:
        ids = ex.index_input("ids", shape, vocab, aliases=("index", "indices", "input"),
                             doc="token ids (B, T)")
    except ExplainError as error:
        if "must be in" not in str(error):
            raise
        raise ExplainError(f"{error}: E (shape {_shape_text(table.shape)}) has V = {vocab} "
                           f"rows, so an id is 0..{vocab - 1}") from None
    drawn = ex.inputs["ids"].source != "given"
    if drawn and repeat and ids.size > 1 and vocab > 1 and np.unique(ids).size == ids.size:
        ids.flat[-1] = ids.flat[0]  # in place: the example's input is this array
    return ids


def _scatter_rows(grad_rows, ids, vocab):
    """dL/dE:(V, D): row v is the sum of the rows of dL/dy at the positions where ids == v."""
    grad = np.zeros((vocab, grad_rows.shape[-1]))
    for position, v in enumerate(ids.reshape(-1)):
        grad[v] += grad_rows.reshape(-1, grad_rows.shape[-1])[position]
    return grad


def _say_repeats(ex, ids):
    """One sentence per id that occurs more than once: which token positions it sums."""
    flat = ids.reshape(-1)
    for v in np.unique(flat):
        where = np.flatnonzero(flat == v)
        if where.size > 1:
            terms = " + ".join(f"dL/dy[{k}]" for k in where)
            ex.say(f"id {v} occurs {where.size} times (tokens {', '.join(map(str, where))}, "
                   f"in reading order): row {v} of dL/dE = {terms}.")
    if np.unique(flat).size == flat.size:
        ex.say("No id repeats here; a repeated id would receive the sum of its rows.")


@explains("embedding", family="embedding", aliases=("embed", "lookup"),
          summary="embedding lookup y = E[ids]; dL/dE is a scatter-add of the rows of dL/dy, "
                  "repeated ids accumulating",
          options=(Option("vocab", int, 4, "rows V of E (when E is not given)"),
                   Option("dim", int, 3, "columns D of E (when E is not given)"),
                   Option("tokens", int, 3, "ids per sequence T (when ids are not given)"),
                   Option("batch", int, 1, "sequences B (when ids are not given)"),
                   Option("repeat", bool, True, "make one drawn id repeat")))
def embedding(ex, vocab, dim, tokens, batch, repeat):
    from retrograd.nn import functional as F

    _at_least("embedding", vocab=vocab, dim=dim, tokens=tokens, batch=batch)
    table = ex.input("E", (vocab, dim), primary=True, integer=False, low=-1, high=1,
                     aliases=("W", "weight"), doc="the table (V, D), one row per token id")
    ids = _token_ids(ex, table, (batch, tokens), repeat)
    (out_shape,) = ex.reference(lambda table, ids: F.embedding(ids, table), "E", "ids")
    ex.section("Forward")
    ex.say("Each id selects one row of E: a lookup, no arithmetic.")
    ex.output("y", table[ids], "E[ids]  (ids' shape + (D,))")

    ex.section("Backward")
    g = ex.upstream(out_shape, "dL/dy", aliases=("dY", "dy"))
    ex.say("Row ids[k] of E became token k's y, so dL/dy[k] flows back to that row only. "
           "Rows no id selected get 0; a repeated id gets the sum of its tokens' dL/dy "
           "(added, never overwritten).")
    ex.show("count", np.bincount(ids.reshape(-1), minlength=table.shape[0]),
            "how many times each id 0..V-1 occurs")
    _say_repeats(ex, ids)
    ex.gradient("E", _scatter_rows(g, ids, table.shape[0]),
                "zeros (V, D); for every token k: row ids[k] += dL/dy[k]")


def _frequencies(d_model):
    """omega_i = 10000^(-2i / D) for the even columns 2i = 0, 2, ... < D."""
    return _BASE ** (-np.arange(0, d_model, 2) / d_model)


def _sinusoidal(length, d_model, omega):
    """PE:(T, D): PE[pos, 2i] = sin(pos omega_i), PE[pos, 2i+1] = cos(pos omega_i)."""
    angles = np.arange(length)[:, None] * omega
    table = np.zeros((length, d_model))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, :d_model // 2])
    return angles, table


def _tokens(ex, default):
    """X: (T, D) or (B, T, D) token embeddings."""
    x = ex.input("X", default, primary=True, max_ndim=3, integer=False, low=-1, high=1,
                 aliases=("x",), doc="token embeddings (T, D) or (B, T, D)")
    if x.ndim < 2:
        raise ExplainError(f"explain {ex.op}: X has shape {_shape_text(x.shape)}; it must be "
                           f"(T, D) or (B, T, D): a row of D features per position")
    return x


@explains("positional_encoding", family="embedding",
          aliases=("sinusoidal", "sinusoidal_positional_encoding", "pe"),
          summary="fixed sinusoidal positions added to the tokens, y = X + PE: the gradient "
                  "passes to X unchanged, PE (a constant) gets none")
def positional_encoding(ex):
    from retrograd import nn

    x = _tokens(ex, (3, 4))
    length, d_model = x.shape[-2:]

    def reference(x):
        layer = nn.SinusoidalPositionalEncoding(d_model, max_len=length, dtype=x.dtype)
        return layer(x)

    (out_shape,) = ex.reference(reference, "X")
    ex.section("Forward")
    ex.say(f"Column pair (2i, 2i+1) turns at the frequency omega_i; D = {d_model}, positions "
           f"pos = 0..{length - 1}.")
    omega = ex.show("omega", _frequencies(d_model), "10000^(-2i / D) for 2i = 0, 2, ...")
    angles, table = _sinusoidal(length, d_model, omega)
    ex.show("pos omega", angles, "pos * omega_i (row pos, column i)")
    ex.say("PE[pos, 2i] = sin(pos omega_i) and PE[pos, 2i+1] = cos(pos omega_i)"
           + (" (D is odd: the last column is a sin without its cos)." if d_model % 2 else "."))
    ex.show("PE", table, "sin and cos of pos omega, interleaved")
    batched = " (the same PE for every sequence)" if x.ndim == 3 else ""
    ex.output("y", x + table, "X + PE" + batched)

    ex.section("Backward")
    g = ex.upstream(out_shape, "dL/dy", aliases=("dY",))
    ex.say("y = X + PE, so dy/dX is the identity. PE is a fixed table, not a parameter "
           "(a buffer, not in the state dict): it gets no gradient and never changes.")
    ex.gradient("X", g.copy(), "dL/dy")


@explains("learned_positional", family="embedding",
          aliases=("learned_positional_embedding", "learned_position"),
          summary="a learned position table P added to the tokens, y = X + P[:T]; dL/dP[t] is "
                  "dL/dy at position t summed over the batch",
          options=(Option("max_len", int, 5, "rows of P, the longest sequence (when P is "
                                                 "not given)"),))
def learned_positional(ex, max_len):
    from retrograd import nn

    _at_least("learned_positional", max_len=max_len)
    x = _tokens(ex, (2, 3, 2))
    length, d_model = x.shape[-2:]
    positions = ex.input("P", (max_len, d_model), integer=False, low=-1, high=1,
                         aliases=("weight", "W"), doc="learned table (T_max, D)")
    if positions.shape[1] != d_model or positions.shape[0] < length:
        raise ExplainError(f"explain learned_positional: P has shape "
                           f"{_shape_text(positions.shape)}, but X (shape "
                           f"{_shape_text(x.shape)}) needs at least T = {length} rows of "
                           f"D = {d_model} (--max-len sets the rows of a drawn P)")

    def reference(x, table):
        layer = nn.LearnedPositionalEmbedding(table.shape[0], d_model, dtype=table.dtype)
        del layer.weight  # the example's P in place of the layer's own parameter
        layer.weight = table
        return layer(x)

    (out_shape,) = ex.reference(reference, "X", "P")
    ex.section("Forward")
    used = ex.show("P[:T]", positions[:length], f"the first T = {length} rows")
    batched = " (the same rows for every sequence)" if x.ndim == 3 else ""
    ex.output("y", x + used, "X + P[:T]" + batched)

    ex.section("Backward")
    g = ex.upstream(out_shape, "dL/dy", aliases=("dY",))
    ex.gradient("X", g.copy(), "dL/dy")
    ex.say("Row t of P was added to position t of every sequence, so it receives the sum "
           "of their dL/dy; rows t >= T were not used and get 0.")
    summed = g.sum(axis=0) if x.ndim == 3 else g
    if x.ndim == 3:
        terms = [f"dL/dy[{b}]" for b in range(x.shape[0])]
        ex.show("sum_b dL/dy[b]", summed, " + ".join(terms) if len(terms) <= 3
                else f"over the B = {len(terms)} sequences")
    grad = np.zeros_like(positions)
    grad[:length] = summed
    ex.gradient("P", grad, "sum_b dL/dy[b, t] for t < T, 0 for t >= T")
