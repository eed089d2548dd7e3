"""The attention mask audit: which queries have every key masked, and why.

``audit_masks`` takes the masks an attention call would get (``attn_mask``,
``key_padding_mask``, ``is_causal``) and combines them exactly as retrograd does: with
``_merged_mask`` of ``nn.functional.multihead_attention`` (MultiheadAttention's convention,
bool True = not allowed, floats added, and its ``is_causal`` hint), then the causal mask of
``ops.attention`` (top-left aligned: key j is masked for query i when j > i). Its result names
every fully masked query row by (batch, head, query) and the masks that cause it, and flags:

- a sample whose key padding mask is True for every key (all its queries are fully masked),
- causal + key padding that masks the first keys (left padding): the first queries see only
  padding,
- float masks holding NaN or +inf (errors: the softmax of such a row is NaN in any
  implementation), and rows whose additive mask is very negative but finite everywhere (not
  masked: such a row attends uniformly to the keys it meant to hide),
- ``is_causal=True`` beside an ``attn_mask`` that is not causal (MultiheadAttention then uses
  one or the other depending on need_weights and key padding, as PyTorch's hint does).

``audit_model`` records the mask of every attention op a forward runs (through the observer
slot) and audits each, naming the module.

Policy (``POLICY``): in retrograd a fully masked row is not an error. Both attention ops
(``ScaledDotProductAttention``, ``MemoryEfficientAttention``) define its softmax, 0 / 0, as a
row of zeros, so its output row is 0 and every gradient through it is exactly 0, never NaN
(PyTorch >= 2.5 ``_safe_softmax`` does the same). The textbook softmax gives NaN there:
``naive_attention`` computes it with NumPy, outside retrograd's ops, so the NaN can be seen.
"""

import math
import types

import numpy as np

from retrograd import dtypes as _dt
from retrograd.autograd.observer import OpObserver, current_module_path, observe
from retrograd.nn.functional.multihead_attention import _merged_mask
from retrograd.ops.attention import (MemoryEfficientAttention, ScaledDotProductAttention,
                                     _causal_blocked)
from retrograd.tensor import Tensor, make_tensor

__all__ = ["audit_masks", "audit_model", "naive_attention", "MaskAudit", "POLICY"]

POLICY = ("retrograd gives a fully masked row (every key masked) an output of 0 and exactly "
          "zero gradients, never NaN; a textbook softmax gives 0 / 0 = NaN there "
          "(see naive_attention)")

# an additive mask at or below this everywhere in a row, but finite, hides nothing: the
# softmax of a row of equal (huge negative) values is uniform
_VERY_NEGATIVE = -1e4


class MaskAudit:
    """What audit_masks found.

    Attributes:
        shape: (batch, heads, L, S) of the scores.
        fully_masked: (n, 3) int array of (batch, head, query) rows with every key masked.
        additive: (batch, heads, L, S) float64: the combined mask as scores to add (0 or -inf
            for bool masks and the causal mask); pass it to ``naive_attention``.
        allowed: (batch, heads, L, S) bool: True where the query may attend to the key.
        counts: dict of rows, fully_masked (rows), nan and posinf (mask entries).
        lines: one readable line per group of fully masked rows.
        warnings, errors: lists of sentences (errors: NaN or +inf in a float mask).
    """

    def __init__(self, shape, additive, sources, warnings, errors):
        self.shape = shape
        self.additive = additive
        self.allowed = additive != -np.inf
        self.fully_masked = np.argwhere(np.all(additive == -np.inf, axis=-1))
        self.counts = {"rows": math.prod(shape[:3]), "fully_masked": len(self.fully_masked),
                       "nan": int(np.isnan(additive).sum()),
                       "posinf": int(np.isposinf(additive).sum())}
        self.lines = _row_lines(self.fully_masked, sources, shape)
        self.warnings, self.errors = warnings, errors

    @property
    def ok(self):
        """True when no row is fully masked and no mask holds NaN or +inf."""
        return not self.errors and self.counts["fully_masked"] == 0

    def __repr__(self):
        return (f"MaskAudit(shape={self.shape}, fully_masked={self.counts['fully_masked']}, "
                f"warnings={len(self.warnings)}, errors={len(self.errors)})")

    def __str__(self):
        b, h, q, s = self.shape
        text = [f"attention mask audit: batch {b}, heads {h}, queries {q}, keys {s}",
                f"fully masked rows: {self.counts['fully_masked']} of {self.counts['rows']}"]
        text += ["  " + line for line in self.lines]
        if self.lines:
            text.append("  policy: " + POLICY)
        for title, items in (("warnings", self.warnings), ("errors", self.errors)):
            text.append(f"{title}: " + ("none" if not items else str(len(items))))
            text += ["  " + item for item in items]
        return "\n".join(text)


def audit_masks(attn_mask=None, key_padding_mask=None, is_causal=False, *, batch=None, heads=None,
                query_len=None, key_len=None, need_weights=True, convention="mha"):
    """Combine the masks of one attention call as retrograd does, and audit the result.

    Args:
        attn_mask: None, or a bool or float mask (Tensor or array) of shape (L, S),
            (batch * heads, L, S), or broadcastable to (batch, heads, L, S).
        key_padding_mask: None or (batch, S), True = padding (convention "mha" only).
        is_causal: the causal mask (key j masked for query i when j > i); with an attn_mask,
            MultiheadAttention's hint rule applies (see need_weights).
        batch, heads, query_len, key_len: the sizes, inferred from the masks where they can
            be (heads from a 4-D attn_mask, else 1; query_len defaults to key_len:
            self-attention).
        need_weights: MultiheadAttention's argument; it decides the is_causal hint.
        convention: "mha" (MultiheadAttention: bool True = not allowed) or "sdpa"
            (scaled_dot_product_attention: bool True = take part; no key_padding_mask, and
            is_causal only without attn_mask).
    Returns a MaskAudit.

    Example:
        >>> import numpy as np
        >>> padding = np.array([[False] * 5, [True, True, True, False, False]])
        >>> audit = audit_masks(key_padding_mask=padding, is_causal=True)
        >>> audit.fully_masked.tolist()
        [[1, 0, 0], [1, 0, 1], [1, 0, 2]]
        >>> print(audit.lines[0])
        batch 1, query 0..2: every key is masked (causal + key padding of keys 0..2)
    """
    attn, padding = _as_array(attn_mask), _as_array(key_padding_mask)
    shape = _shape(attn, padding, is_causal, batch, heads, query_len, key_len)
    if convention == "sdpa":
        return _audit_sdpa(attn, padding, is_causal, shape)
    if convention != "mha":
        raise ValueError(f"audit_masks: convention must be 'mha' or 'sdpa', got {convention!r}")
    return _audit_mha(attn, padding, is_causal, need_weights, shape)


def _as_array(mask):
    if mask is None:
        return None
    if isinstance(mask, Tensor):
        mask = mask.detach().numpy()
    mask = np.asarray(mask)
    if mask.dtype != np.bool_ and not np.issubdtype(mask.dtype, np.floating):
        raise TypeError(f"audit_masks: masks must be bool or floating-point, got dtype "
                        f"{mask.dtype} (shape {mask.shape})")
    return mask


def _shape(attn, padding, is_causal, batch, heads, query_len, key_len):
    """(batch, heads, L, S), from the arguments or the masks' shapes."""
    if heads is None:
        heads = attn.shape[1] if attn is not None and attn.ndim == 4 else 1
    if key_len is None:
        key_len = next((m.shape[-1] for m in (padding, attn) if m is not None), None)
    if query_len is None:
        query_len = attn.shape[-2] if attn is not None and attn.ndim >= 2 else key_len
    if batch is None:
        batch = 1
        if padding is not None and padding.ndim == 2:
            batch = padding.shape[0]
        elif attn is not None and attn.ndim == 3:
            batch = max(attn.shape[0] // heads, 1)
        elif attn is not None and attn.ndim == 4:
            batch = attn.shape[0]
    if key_len is None or query_len is None:
        raise ValueError("audit_masks: give query_len and key_len (no mask to read them from)")
    return (batch, heads, query_len, key_len)


def _audit_mha(attn, padding, is_causal, need_weights, shape):
    """MultiheadAttention's combination (its own _merged_mask), then the op's causal mask."""
    b, h, q_len, s_len = shape
    if padding is not None and padding.shape != (b, s_len):
        raise ValueError(f"audit_masks: expected key_padding_mask of shape {(b, s_len)} "
                         f"(batch, S), got {padding.shape}")
    attn3 = None if attn is None else _as_mha_attn_mask(attn, shape)
    layout = types.SimpleNamespace(n=b, num_heads=h)
    dtype = _dt.float32 if _float32(attn, padding) else _dt.float64
    mask, causal = _merged_mask(_tensor(attn3), _tensor(padding), is_causal, need_weights,
                                layout, (q_len, s_len), 0, dtype)
    additive = _additive(None if mask is None else mask.numpy(), causal, shape)
    uses_attn = attn is not None and not causal
    uses_causal = is_causal and (attn is None or causal)
    sources = _sources(attn if uses_attn else None, True, padding, uses_causal, shape)
    warnings = _warnings(padding, uses_causal, shape)
    if is_causal and attn is not None:
        warnings += _hint_warning(attn3, shape, "the causal mask" if causal else "attn_mask")
    errors = _errors({"attn_mask": attn, "key_padding_mask": padding})
    warnings += _very_negative_warning(additive)
    return MaskAudit(shape, additive, sources, warnings, errors)


def _as_mha_attn_mask(attn, shape):
    """attn_mask as (L, S) or (batch * heads, L, S), the shapes _merged_mask takes."""
    b, h, q_len, s_len = shape
    if attn.shape in ((q_len, s_len), (b * h, q_len, s_len)):
        return attn
    try:
        full = np.broadcast_to(attn, shape)
    except ValueError:
        raise ValueError(f"audit_masks: attn_mask of shape {attn.shape} is neither (L, S) = "
                         f"{(q_len, s_len)}, (batch * heads, L, S) = {(b * h, q_len, s_len)} nor "
                         f"broadcastable to (batch, heads, L, S) = {shape}") from None
    return np.ascontiguousarray(full).reshape(b * h, q_len, s_len)


def _float32(*masks):
    return any(m is not None and m.dtype == np.float32 for m in masks)


def _tensor(array):
    if array is None:
        return None
    return make_tensor(array.copy() if array.dtype == np.bool_ else array.astype(np.float64))


def _audit_sdpa(attn, padding, is_causal, shape):
    """scaled_dot_product_attention's masks: one attn_mask (True = take part) or is_causal."""
    if padding is not None:
        raise ValueError("audit_masks: scaled_dot_product_attention takes no key_padding_mask "
                         "(use convention='mha', or fold it into attn_mask)")
    if is_causal and attn is not None:
        raise ValueError("audit_masks: scaled_dot_product_attention does not take attn_mask "
                         "together with is_causal=True")
    if attn is not None:
        _broadcast_check(attn, shape)
    return audit_op_mask(attn, is_causal, shape)


def audit_op_mask(mask, causal, shape, name="attn_mask"):
    """The audit of the mask an attention op receives (bool True = take part, float added,
    broadcastable to ``shape`` = (batch, heads, L, S)) and its causal flag."""
    additive = _additive(mask, causal, shape)
    sources = _sources(mask, False, None, causal, shape, name)
    warnings = _very_negative_warning(additive)
    return MaskAudit(shape, additive, sources, warnings, _errors({name: mask}))


def _broadcast_check(mask, shape):
    try:
        np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"audit_masks: attn_mask of shape {mask.shape} does not broadcast to "
                         f"(batch, heads, L, S) = {shape}") from None


def _additive(mask, causal, shape):
    """The combined mask as float64 scores to add, (batch, heads, L, S), as the op's _scores:
    a bool mask blocks where False, a float mask is added, the causal mask blocks j > i."""
    additive = np.zeros(shape)
    if mask is not None and mask.dtype == np.bool_:
        additive[~np.broadcast_to(mask, shape)] = -np.inf
    elif mask is not None:
        additive += mask
    if causal:
        additive[..., _causal_blocked(shape[2], 0, shape[3])] = -np.inf
    return additive


def _blocking(mask, true_blocks):
    """Where a mask blocks a key: bool True (or False, by convention), float -inf."""
    if mask.dtype == np.bool_:
        return mask if true_blocks else ~mask
    return mask == -np.inf


def _sources(attn, true_blocks, padding, causal, shape, name="attn_mask"):
    """[(label, blocked (batch, heads, L, S) bool, padding-or-None)] of each mask used, to
    explain the fully masked rows."""
    found = []
    if causal:
        found.append(("causal", np.broadcast_to(_causal_blocked(shape[2], 0, shape[3]), shape),
                      None))
    if attn is not None:
        blocked = _blocking(attn, true_blocks)
        if blocked.ndim == 3 and blocked.shape[0] == shape[0] * shape[1]:
            blocked = blocked.reshape(shape)
        found.append((name, np.broadcast_to(blocked, shape), None))
    if padding is not None:
        blocked = _blocking(padding, True)
        found.append(("key padding", np.broadcast_to(blocked[:, None, None, :], shape), blocked))
    return found


def _row_lines(rows, sources, shape):
    """One line per run of consecutive fully masked queries with the same cause; heads are
    named only when they differ."""
    fully = np.zeros(shape[:3], dtype=bool)
    fully[tuple(rows.T)] = True
    lines = []
    for b in range(shape[0]):
        same = all(np.array_equal(fully[b, 0], fully[b, h]) for h in range(shape[1]))
        for h in ([0] if same else range(shape[1])):
            where = f"batch {b}" + ("" if same else f", head {h}")
            for first, last, cause in _runs(np.flatnonzero(fully[b, h]), b, h, sources):
                span = str(first) if first == last else f"{first}..{last}"
                lines.append(f"{where}, query {span}: every key is masked ({cause})")
    return lines


def _runs(queries, b, h, sources):
    """(first, last, cause) of each run of consecutive queries with the same cause."""
    runs = []
    for i in queries:
        cause = _cause(b, h, i, sources)
        if runs and runs[-1][1] == i - 1 and runs[-1][2] == cause:
            runs[-1] = (runs[-1][0], i, cause)
        else:
            runs.append((i, i, cause))
    return runs


def _cause(b, h, i, sources):
    """The mask that blocks every key of row (b, h, i) alone, else those that block at least
    one, joined by '+'."""
    alone = [source for source in sources if source[1][b, h, i].all()]
    parts = [_label(source, b) for source in (alone[-1:] or sources) if source[1][b, h, i].any()]
    return " + ".join(parts) if parts else "no keys"


def _label(source, b):
    label, _, padding = source
    if padding is None:
        return label
    return label + " of keys " + _spans(np.flatnonzero(padding[b]))


def _spans(indices):
    """'0..4, 7' for [0, 1, 2, 3, 4, 7]."""
    spans = []
    for i in indices:
        if spans and spans[-1][1] == i - 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == z else f"{a}..{z}" for a, z in spans)


def _warnings(padding, causal, shape):
    """Samples padded out entirely, and left padding under the causal mask."""
    found = []
    if padding is None:
        return found
    blocked = _blocking(padding, True)
    for b in range(shape[0]):
        if blocked[b].all():
            found.append(f"batch {b}: key_padding_mask masks every key: every query of this "
                         f"sample is fully masked (an empty or padded-out sample?)")
            continue
        leading = int(np.argmin(blocked[b]))  # the number of padded keys before the first real
        if causal and leading > 0 and shape[2] > 0:
            last = min(leading, shape[2]) - 1
            found.append(f"batch {b}: causal + key padding of keys 0..{leading - 1} masks "
                         f"every key of queries 0..{last}: left padding under a causal mask "
                         f"(pad on the right instead)")
    return found


def _hint_warning(attn3, shape, used):
    """is_causal=True beside an attn_mask (L, S) or (batch * heads, L, S) that differs from
    the causal mask."""
    blocked = _blocking(attn3, True)
    if blocked.ndim == 3:
        blocked = blocked.reshape(shape)
    causal = _causal_blocked(shape[2], 0, shape[3])
    if np.array_equal(np.broadcast_to(blocked, shape), np.broadcast_to(causal, shape)):
        return []
    return [f"is_causal=True with an attn_mask that is not the causal mask: is_causal is a "
            f"hint, and MultiheadAttention uses the causal mask when need_weights=False, no "
            f"key padding and attn_mask needs no gradient, attn_mask otherwise (audited: "
            f"{used})"]


def _errors(masks):
    found = []
    for name, mask in masks.items():
        if mask is None or mask.dtype == np.bool_:
            continue
        for what, bad in (("NaN", np.isnan(mask)), ("+inf", np.isposinf(mask))):
            if bad.any():
                found.append(f"{name} holds {what} at {int(bad.sum())} entries (first at index "
                             f"{tuple(int(i) for i in np.argwhere(bad)[0])}): the softmax of "
                             f"its rows is NaN (use -inf to mask, never NaN or +inf)")
    return found


def _very_negative_warning(additive):
    finite = np.isfinite(additive)
    rows = np.all(additive <= _VERY_NEGATIVE, axis=-1) & np.any(finite, axis=-1)
    if not rows.any():
        return []
    return [f"{int(rows.sum())} rows have an additive mask <= {_VERY_NEGATIVE:g} at every key "
            f"but not -inf: they are not masked, their softmax spreads over the keys meant to "
            f"be hidden (first at (batch, head, query) "
            f"{tuple(int(i) for i in np.argwhere(rows)[0])})"]


# ---------------------------------------------------------------------- the teaching helper

def naive_attention(q, k, v, mask=None, is_causal=False, scale=None):
    """softmax(q k^T * scale + mask) v with the textbook softmax exp(s - max) / sum, in NumPy:
    a fully masked row gives 0 / 0 = NaN here (retrograd's ops give 0). For teaching only;
    retrograd's ops are not involved.

    q:(..., L, E), k:(..., S, E), v:(..., S, Ev) arrays or Tensors; mask None, bool (True =
    take part) or float (added, e.g. ``MaskAudit.additive``); scale default 1 / sqrt(E).

    Example:
        >>> import numpy as np
        >>> q, k, v = np.ones((2, 1)), np.ones((2, 1)), np.array([[1.0], [3.0]])
        >>> keep = np.array([[True, True], [False, False]])  # query 1: every key masked
        >>> naive_attention(q, k, v, keep)
        array([[ 2.],
               [nan]])
    """
    q, k, v = (_as_array(x) for x in (q, k, v))
    mask = _as_array(mask)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None and mask.dtype == np.bool_:
        scores = np.where(mask, scores, -np.inf)
    elif mask is not None:
        scores = scores + mask
    if is_causal:
        scores = np.where(_causal_blocked(scores.shape[-2], 0, scores.shape[-1]), -np.inf, scores)
    with np.errstate(invalid="ignore"):  # -inf - (-inf) is NaN: the point of this helper
        e = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True) @ v


# ---------------------------------------------------------------------- every call of a model

class _MaskRecorder(OpObserver):
    """Keeps (module path, op name, mask, causal, shape) of every attention op call."""

    watches_backward = False

    def __init__(self):
        self.calls = []

    def before_forward(self, op, inputs, attrs):
        if op is ScaledDotProductAttention or op is MemoryEfficientAttention:
            q, k, _, mask = inputs[:4]
            mask = _as_array(mask)
            shape, batch = _op_shape(q.shape, k.shape, None if mask is None else mask.shape)
            if mask is not None:
                mask = np.broadcast_to(mask, batch + shape[2:]).reshape(shape)
            self.calls.append((current_module_path(), op.__name__, mask,
                               bool(attrs.get("causal", False)), shape))


def _op_shape(q_shape, k_shape, mask_shape):
    """((batch, heads, L, S) of an op's scores, its batch dims flattened into two; the batch
    dims themselves)."""
    batch = np.broadcast_shapes(q_shape[:-2], k_shape[:-2],
                                () if mask_shape is None else mask_shape[:-2])
    if len(batch) < 2:
        lead = (batch[0] if batch else 1, 1)
    else:
        lead = (math.prod(batch[:-1]), batch[-1])
    return lead + (q_shape[-2], k_shape[-2]), batch


def audit_model(model, *inputs, **kwargs):
    """Run ``model(*inputs, **kwargs)`` and audit the mask of every attention op it calls.
    Returns [(module path, op name, MaskAudit)] in call order. The masks are those the op
    receives (MultiheadAttention's already merged: bool True = take part, floats added), so
    the causes name "attn_mask" (the merged mask) and "causal".

    Example:
        >>> import numpy as np, retrograd as rg
        >>> _ = rg.manual_seed(0)
        >>> mha = rg.nn.MultiheadAttention(4, 2, batch_first=True)
        >>> x = rg.randn(2, 3, 4)
        >>> padding = rg.tensor(np.array([[False] * 3, [True] * 3]))
        >>> [(path, op, str(a.counts["fully_masked"]))
        ...  for path, op, a in audit_model(mha, x, x, x, key_padding_mask=padding)]
        [('', 'ScaledDotProductAttention', '6')]
    """
    recorder = _MaskRecorder()
    with observe(recorder):
        model(*inputs, **kwargs)
    return [(path, name, audit_op_mask(mask, causal, shape))
            for path, name, mask, causal, shape in recorder.calls]
