"""Attention capture: the logits, weights and their gradients of every attention call, per head.

``with capture_attention() as rec:`` around a forward (and its backward) records each call of
the attention ops (``ScaledDotProductAttention``, ``MemoryEfficientAttention``), whatever layer
makes it: ``nn.MultiheadAttention``, ``F.scaled_dot_product_attention``,
``F.memory_efficient_attention``, GPT's and ViT's blocks, encoder and decoder self- and
cross-attention. It watches through the observer slot (``autograd/observer.py``), so models
and layers know nothing of it, and it costs nothing outside the block.

For one call, with one batch element and one head (notation of ``retrograd.ops.attention``):

    S = Q K^T * scale + M       the logits (L, S); masked entries are -inf
    A = softmax(S)              the probabilities (L, S), *before* dropout
    O = (A * R) V               R: the dropout mask (0 or 1 / (1 - p)), R = 1 without dropout

and after backward, with dO = dL/dO (L, Ev):

    dL/dA = (dO V^T) * R  (+ dL/dA_out when the weights output itself got a gradient)
    dL/dS = A * (dL/dA - rowsum(dL/dA * A))  (+ A * dL/dlse for the blocked op's lse output)

dL/dS is the gradient that reaches the logits (the softmax Jacobian diag(a) - a a^T per row
applied to dL/dA); a fully masked row has A = 0, hence dL/dS = 0.

Which batch entries are samples and which are heads: the scores' batch dims (the broadcast
batch dims of q, k and the mask) are read as (samples, heads...): none -> 1 sample, 1 head;
one -> that many samples, 1 head; two or more -> dim 0 is the sample, the others flattened
(row-major) are the heads. So (N, H, L, S) is N samples of H heads, and grouped-query
attention's (N, Hkv, G, L, S) gives query head h = kv * G + g, as the layer numbers them.

Cost, while capturing, for the selected samples x heads (n of them, L queries, S keys, head
dim E, value dim Ev): forward Q K^T again (2 n L S E) and, for ``MemoryEfficientAttention``
which never holds A, the softmax too (about 5 n L S); backward dO V^T (2 n L S Ev) and a few
n L S elementwise terms. Memory: the four stored (n, L, S) arrays, plus the selected slices
of v kept from forward to backward (n S Ev). Nothing of the unselected heads is computed.
"""

import dataclasses
import math
import weakref

import numpy as np

from retrograd.autograd.observer import OpObserver, observe
from retrograd.inspect.render import format_bytes, text_table
from retrograd.ops.attention import MemoryEfficientAttention, ScaledDotProductAttention
from retrograd.tensor import Tensor

__all__ = ["capture_attention", "AttentionCapture", "AttentionRecord", "HeadDiagnostics",
           "AttentionDiagnostics", "attention_diagnostics"]

_OPS = (ScaledDotProductAttention, MemoryEfficientAttention)


@dataclasses.dataclass(eq=False, repr=False)
class AttentionRecord:
    """One attention call, for the selected samples and heads. Arrays are (samples, heads, L,
    S) in the call's compute dtype; the gradient fields are set by a backward through the call
    inside the block (several backwards add up, as ``.grad`` does). Reading ``grad_probs`` or
    ``grad_logits`` inside the block before such a backward raises a RuntimeError; after the
    block they are None when no backward ran inside it.

    module_path: the module whose forward made the call (None outside every module).
    call_index: the how-many-th call of that module path in the block (0, 1, ...).
    logits: S = Q K^T * scale + M, -inf where masked. probs: A = softmax(S), before dropout.
    grad_probs: dL/dA. grad_logits: dL/dS.
    q_grad_norm, k_grad_norm, v_grad_norm: (samples, heads) Frobenius norms of dL/dq, dL/dk,
    dL/dv over the (L, E) or (S, E) slice each head reads (heads that share a key or value,
    as in grouped-query attention, report the shared gradient).
    samples, heads: the indices (into the call's samples and heads) of dims 0 and 1.
    """

    module_path: str
    call_index: int
    logits: np.ndarray
    probs: np.ndarray
    grad_probs: np.ndarray = None
    grad_logits: np.ndarray = None
    q_grad_norm: np.ndarray = None
    k_grad_norm: np.ndarray = None
    v_grad_norm: np.ndarray = None
    samples: tuple = ()
    heads: tuple = ()
    op: str = ""

    def arrays(self):
        """The stored arrays (None fields left out)."""
        fields = (self.logits, self.probs, _stored(self, "grad_probs"),
                  _stored(self, "grad_logits"), self.q_grad_norm, self.k_grad_norm,
                  self.v_grad_norm)
        return [a for a in fields if a is not None]

    def __repr__(self):
        shape = None if self.probs is None else tuple(self.probs.shape)
        backward = _stored(self, "grad_probs") is not None
        return (f"AttentionRecord({self.module_path!r}, call {self.call_index}, {self.op}, "
                f"probs {shape}, backward={'yes' if backward else 'no'})")

    @property
    def nbytes(self):
        return sum(a.nbytes for a in self.arrays())

    def diagnostics(self, **kwargs):
        """attention_diagnostics(self, **kwargs)."""
        return attention_diagnostics(self, **kwargs)


def _gradient_field(name):
    """A property over the record's ``_<name>``: raises while the capture that made the record
    is open and no backward through its call has run yet (the value would be unknown)."""
    key = "_" + name

    def get(self):
        value = self.__dict__.get(key)
        if value is None and self.__dict__.get("_awaiting_backward", False):
            raise RuntimeError(f"capture_attention: no backward has run for "
                               f"{self.module_path!r} (call {self.call_index}) yet: {name} is "
                               f"known after backward")
        return value

    def set(self, value):
        self.__dict__[key] = value

    return property(get, set, doc=f"{name} (see AttentionRecord)")


AttentionRecord.grad_probs = _gradient_field("grad_probs")
AttentionRecord.grad_logits = _gradient_field("grad_logits")


def _stored(record, name):
    """A record's gradient field as stored, None when unknown (never raises)."""
    if isinstance(record, AttentionRecord):
        return record.__dict__.get("_" + name)
    return getattr(record, name, None)


class AttentionCapture(OpObserver):
    """The observer behind ``capture_attention``: ``records`` in call order, ``rec[path]``
    (the records of one module path), ``rec[path, call_index]`` (one record), ``nbytes``."""

    def __init__(self, model=None, layers=None, heads=None, samples=None):
        self.records = []
        self._select_layer = _layer_selector(model, layers)
        self._heads = _indices("heads", heads)
        self._samples = _indices("samples", samples)
        self._attrs = None
        self._pending = weakref.WeakKeyDictionary()   # node -> (record, _Call)
        self._counts = {}

    # ------------------------------------------------------------------ the observer
    def before_forward(self, op, inputs, attrs):
        self._attrs = attrs
        return None

    def after_forward(self, op, node, inputs, outputs, module_path):
        attrs, self._attrs = self._attrs or {}, None
        if op not in _OPS or not self._select_layer(module_path):
            return
        call_index = self._counts.get(module_path, 0)
        self._counts[module_path] = call_index + 1
        call = _Call(op, inputs, attrs, outputs, self._samples, self._heads)
        record = AttentionRecord(module_path, call_index, call.logits, call.probs,
                                 samples=tuple(call.samples.tolist()),
                                 heads=tuple(call.heads.tolist()), op=op.__name__)
        record._awaiting_backward = True
        self.records.append(record)
        if node is not None:
            self._pending[node] = (record, call)

    def before_backward(self, node, grad_outputs):
        entry = self._pending.get(node) if isinstance(node, _OPS) else None
        if entry is None:
            return
        record, call = entry
        grad_probs, grad_logits = call.gradients(node, [_raw(g) for g in grad_outputs])
        record.grad_probs = _add(_stored(record, "grad_probs"), grad_probs)
        record.grad_logits = _add(_stored(record, "grad_logits"), grad_logits)

    def after_backward(self, node, grad_outputs, grad_inputs):
        entry = self._pending.get(node) if isinstance(node, _OPS) else None
        if entry is None:
            return
        record, call = entry
        # NOTE: after several backwards the norms are those of the latest one's gradients
        names = ("q_grad_norm", "k_grad_norm", "v_grad_norm")
        for name, grad in zip(names, list(grad_inputs)[:3]):
            if grad is not None:
                setattr(record, name, call.head_norms(_raw(grad)))

    # ------------------------------------------------------------------ access
    def __getitem__(self, key):
        if isinstance(key, tuple):
            path, index = key
            for record in self.records:
                if record.module_path == path and record.call_index == index:
                    return record
            raise KeyError(f"capture_attention: no call {index} of module path {path!r}; "
                           f"recorded: {self.paths()}")
        found = [r for r in self.records if r.module_path == key]
        if not found:
            raise KeyError(f"capture_attention: no attention call recorded at module path "
                           f"{key!r}; recorded: {self.paths()}")
        return found

    def __len__(self):
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def paths(self):
        """The module paths recorded, in first-call order."""
        return list(dict.fromkeys(r.module_path for r in self.records))

    @property
    def nbytes(self):
        """Bytes of every array stored in the records."""
        return sum(r.nbytes for r in self.records)

    def table(self, **kwargs):
        """The diagnostics of every record, one text table each."""
        parts = [f"attention capture: {len(self.records)} calls, "
                 f"{format_bytes(self.nbytes)} stored"]
        parts += [str(attention_diagnostics(r, **kwargs)) for r in self.records]
        return "\n\n".join(parts)


class capture_attention:
    """Context manager: record every attention op call in the block (module docstring).

    Args:
        model: optional Module; lets ``layers`` name modules by object, and checks that named
            paths exist in ``model.named_modules()``.
        layers: None (all), module paths (str) or Modules, or a predicate on the module path.
        heads: None (all) or head indices to store. samples: None (all) or batch indices.

    Example:
        >>> import retrograd as rg
        >>> mha = rg.nn.MultiheadAttention(8, 2, batch_first=True)
        >>> x = rg.randn(3, 4, 8)
        >>> with capture_attention(heads=[1], samples=[0, 2]) as rec:
        ...     mha(x, x, x)[0].sum().backward()
        >>> r = rec[""][0]
        >>> r.probs.shape, r.grad_logits.shape, r.q_grad_norm.shape
        ((2, 1, 4, 4), (2, 1, 4, 4), (2, 1))
        >>> rec.nbytes == 4 * 2 * 4 * 4 * 4 + 3 * 2 * 4
        True
    """

    def __init__(self, model=None, layers=None, heads=None, samples=None):
        self.capture = AttentionCapture(model, layers, heads, samples)
        self._observe = observe(self.capture)

    def __enter__(self):
        self._observe.__enter__()
        return self.capture

    def __exit__(self, *exc):
        self.capture._pending.clear()
        for record in self.capture.records:   # no backward can reach them any more
            record._awaiting_backward = False
        return self._observe.__exit__(*exc)


# ---------------------------------------------------------------------- one call
class _Call:
    """The selected slices of one attention call: logits and probabilities at forward; what
    backward needs to form dL/dA and dL/dS (v's slices, the dropout mask's place)."""

    def __init__(self, op, inputs, attrs, outputs, samples, heads):
        q, k, v = (_raw(t) for t in inputs[:3])
        mask = _raw(inputs[3]) if len(inputs) > 3 else _raw(attrs.get("mask"))
        self.scale = float(attrs.get("scale", 1.0))
        causal = bool(attrs.get("causal", False))
        # the scores' and the output's batch dims together
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2],
                                    mask.shape[:-2] if mask is not None else ())
        self.batch, self.grid = tuple(batch), _grid(batch)
        self.samples = _check_range("samples", samples, self.grid[0])
        self.heads = _check_range("heads", heads, self.grid[1])
        self.v = self.select(v)
        logits = self.select(q) @ np.swapaxes(self.select(k), -1, -2)
        logits *= self.scale
        if mask is not None:
            mask = self.select(mask)
            if mask.dtype == np.bool_:
                logits = np.where(mask, logits, -np.inf)
            else:
                logits = logits + mask
        if causal:
            n_queries, n_keys = logits.shape[-2:]
            blocked = np.arange(n_keys) > np.arange(n_queries)[:, None]
            logits = np.where(blocked, -np.inf, logits)
        self.logits = logits
        if op is ScaledDotProductAttention:   # the op's own weights, (.., L, S)
            self.probs = self.select(_raw(outputs[1]))
        else:                                 # the blocked op never holds them: recompute
            self.probs = _softmax(logits)

    def select(self, x):
        """x (broadcastable to the call's batch dims + its own last two) at the selected
        samples and heads: (samples, heads, *x.shape[-2:]), a copy of those slices only."""
        batch = self.batch
        x = np.broadcast_to(x, batch + x.shape[-2:])
        if len(batch) == 1:    # (samples, L, S): one head per sample
            x = x[:, None]
        elif not batch:        # (L, S): one sample, one head
            x = x[None, None]
        head_index = np.unravel_index(self.heads, batch[1:] if len(batch) >= 2 else (1,))
        index = (self.samples[:, None],) + tuple(h[None, :] for h in head_index)
        return np.array(x[index])

    def gradients(self, node, grad_outputs):
        """(dL/dA, dL/dS) from the node's output gradients (module docstring)."""
        grad_out = grad_outputs[0] if grad_outputs else None
        extra = grad_outputs[1] if len(grad_outputs) > 1 else None
        if grad_out is not None:
            grad_probs = self.select(grad_out) @ np.swapaxes(self.v, -1, -2)
        else:
            grad_probs = np.zeros_like(self.probs)
        dropout = getattr(node, "dropout", None)
        if dropout is not None:   # O = (A * R) V: dL/dA = (dO V^T) * R
            grad_probs *= self.select(dropout)
        lse_grad = None
        if extra is not None and isinstance(node, ScaledDotProductAttention):
            grad_probs += self.select(extra)   # the weights output's gradient
        elif extra is not None:
            lse_grad = self.select(extra[..., None])
        a = self.probs
        grad_logits = a * (grad_probs - np.sum(grad_probs * a, axis=-1, keepdims=True))
        if lse_grad is not None:   # d lse / dS = A
            grad_logits += a * lse_grad
        return grad_probs, grad_logits

    def head_norms(self, grad):
        """(samples, heads) Frobenius norms of ``grad`` over its last two dims."""
        return np.sqrt(np.sum(self.select(grad) ** 2, axis=(-2, -1)))


def _grid(batch):
    """(number of samples, number of heads) of the scores' batch dims."""
    if len(batch) == 0:
        return 1, 1
    return batch[0], math.prod(batch[1:])


def _softmax(logits):
    """Row softmax with fully masked rows (all -inf) as 0, the ops' convention."""
    row_max = np.max(logits, axis=-1, keepdims=True, initial=-np.inf)
    row_max = np.where(row_max == -np.inf, 0.0, row_max)
    e = np.exp(logits - row_max)
    total = np.sum(e, axis=-1, keepdims=True)
    return e / np.where(total == 0.0, 1.0, total)


def _raw(value):
    return value._data if isinstance(value, Tensor) else value


def _add(total, value):
    return value if total is None else total + value


def _indices(label, values):
    if values is None:
        return None
    array = np.asarray(list(values) if not np.isscalar(values) else [values])
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"capture_attention: {label} must be integer indices, got {values!r}")
    return array.astype(np.intp)


def _check_range(label, chosen, size):
    if chosen is None:
        return np.arange(size)
    if chosen.size and (chosen.min() < -size or chosen.max() >= size):
        raise IndexError(f"capture_attention: {label} {chosen.tolist()} out of range for a "
                         f"call with {size} {label}")
    return chosen % size if size else chosen


def _layer_selector(model, layers):
    """A predicate on module paths from ``layers`` (see capture_attention)."""
    if layers is None:
        return lambda path: True
    if callable(layers) and not hasattr(layers, "named_modules"):
        return layers
    if isinstance(layers, str) or hasattr(layers, "named_modules"):
        layers = [layers]
    named = dict(model.named_modules()) if model is not None else None
    paths = set()
    for layer in layers:
        if isinstance(layer, str):
            if named is not None and layer not in named:
                raise KeyError(f"capture_attention: the model has no module at path {layer!r}")
            paths.add(layer)
            continue
        if named is None:
            raise TypeError("capture_attention: pass model= to select layers by Module")
        found = [path for path, module in named.items() if module is layer]
        if not found:
            raise KeyError(f"capture_attention: {type(layer).__name__} is not a module of the "
                           f"model")
        paths.update(found)
    return paths.__contains__


# ---------------------------------------------------------------------- diagnostics
@dataclasses.dataclass(frozen=True)
class HeadDiagnostics:
    """Summary of one head over the record's samples and its rows (queries) that have at
    least one unmasked key; a row's n_keys counts its finite logits.

    entropy: mean row entropy H = -sum a log a (nats). normalized_entropy: mean of
    H / log(n_keys) over rows with n_keys > 1 (1 = uniform). max_prob: mean of the row's
    largest weight. saturated_fraction: fraction of rows with largest weight > 0.99.
    logit_std, logit_max: over the unmasked (finite) logits. jacobian_norm: mean over rows of
    the Frobenius norm of the softmax Jacobian diag(a) - a a^T, i.e.
    sqrt(sum a^2 - 2 sum a^3 + (sum a^2)^2). importance: sum |A * dL/dA| (None before
    backward). dead: importance <= dead_threshold * the largest importance among the
    record's heads. uniform: normalized_entropy > 0.99.
    """

    head: int
    entropy: float
    normalized_entropy: float
    max_prob: float
    saturated_fraction: float
    logit_std: float
    logit_max: float
    jacobian_norm: float
    importance: float
    dead: bool
    uniform: bool


@dataclasses.dataclass(frozen=True)
class AttentionDiagnostics:
    """The HeadDiagnostics of one record; ``str()`` (or ``table()``) is a text table."""

    module_path: str
    call_index: int
    heads: tuple

    def __iter__(self):
        return iter(self.heads)

    def __len__(self):
        return len(self.heads)

    def __getitem__(self, i):
        return self.heads[i]

    def table(self):
        header = ["head", "H", "H/log n", "max p", "sat", "logit std", "logit max", "|J|_F",
                  "importance", "flags"]
        rows = []
        for d in self.heads:
            flags = " ".join(name for name, on in (("dead", d.dead), ("uniform", d.uniform))
                             if on)
            importance = "-" if d.importance is None else f"{d.importance:.4g}"
            rows.append([str(d.head), f"{d.entropy:.3f}", f"{d.normalized_entropy:.3f}",
                         f"{d.max_prob:.3f}", f"{d.saturated_fraction:.2f}",
                         f"{d.logit_std:.3g}", f"{d.logit_max:.3g}", f"{d.jacobian_norm:.3f}",
                         importance, flags])
        title = f"attention {self.module_path!r} call {self.call_index}"
        return title + "\n" + text_table(rows, header)

    def __str__(self):
        return self.table()


def attention_diagnostics(record, dead_threshold=1e-3, saturation=0.99, uniform=0.99):
    """Per-head diagnostics of an AttentionRecord (see HeadDiagnostics).

    Example:
        >>> import numpy as np
        >>> logits = np.array([[[[0.0, 0.0], [0.0, -np.inf]]]])   # 1 sample, 1 head, 2 rows
        >>> probs = np.array([[[[0.5, 0.5], [1.0, 0.0]]]])         # row 1 sees one key only
        >>> d = attention_diagnostics(AttentionRecord("attn", 0, logits, probs))[0]
        >>> d.normalized_entropy, d.saturated_fraction, d.uniform   # H/log n: row 0 only
        (1.0, 0.5, True)
    """
    probs = np.asarray(record.probs, dtype=np.float64)
    logits = record.logits
    finite = np.isfinite(logits) if logits is not None else np.ones(probs.shape, bool)
    importance = None
    grad_probs = _stored(record, "grad_probs")
    if grad_probs is not None:
        importance = np.sum(np.abs(probs * grad_probs), axis=(0, 2, 3))
    top = importance.max() if importance is not None and importance.size else 0.0
    heads = []
    for h in range(probs.shape[1]):
        head_logits = None if logits is None else np.asarray(logits[:, h], np.float64)
        stats = _head_stats(probs[:, h], finite[:, h], head_logits, saturation)
        value = None if importance is None else float(importance[h])
        dead = value is not None and value <= dead_threshold * top
        label = record.heads[h] if record.heads else h
        heads.append(HeadDiagnostics(label, *stats, value, bool(dead),
                                     bool(stats[1] > uniform)))
    return AttentionDiagnostics(record.module_path, record.call_index, tuple(heads))


def _head_stats(p, finite, logits, saturation):
    """(entropy, normalized entropy, max prob, saturated fraction, logit std, logit max,
    Jacobian norm) of one head's (samples, L, S) weights."""
    n_keys = finite.sum(axis=-1)
    rows = n_keys > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)
        normalized = entropy / np.log(n_keys)
    wide = n_keys > 1
    row_max = p.max(axis=-1, initial=0.0)
    jacobian = _jacobian_norms(p)
    values = logits[finite] if logits is not None else np.zeros(0)
    return (_mean(entropy[rows]), _mean(normalized[wide]), _mean(row_max[rows]),
            _mean(row_max[rows] > saturation), float(values.std()) if values.size else math.nan,
            float(values.max()) if values.size else math.nan, _mean(jacobian[rows]))


def _jacobian_norms(p):
    """||diag(p) - p p^T||_F of each row of ``p`` (rows summing to 1), without the cancellation
    of sum p^2 - 2 sum p^3 + (sum p^2)^2 on a saturated row. With m the row's largest weight
    and o the others: J_mm = p_m (1 - p_m) = p_m sum(o), and
        ||J||^2 = sum_o p^2 (1 - p)^2 + p_m^2 sum(o)^2          (diagonal)
                + sum(o^2)^2 - sum(o^4) + 2 p_m^2 sum(o^2)      (off-diagonal, p_i^2 p_j^2)
    every term a sum of small nonnegative parts when the row is nearly one-hot."""
    top = p.max(axis=-1, initial=0.0)
    others = p.copy()
    np.put_along_axis(others, np.argmax(p, axis=-1)[..., None], 0.0, axis=-1)
    rest, rest_sq = others.sum(axis=-1), np.sum(others ** 2, axis=-1)
    diagonal = np.sum(others ** 2 * (1.0 - others) ** 2, axis=-1) + (top * rest) ** 2
    off = np.maximum(rest_sq ** 2 - np.sum(others ** 4, axis=-1), 0.0) + 2 * top ** 2 * rest_sq
    return np.sqrt(diagonal + off)


def _mean(values):
    return float(np.mean(values)) if values.size else math.nan
