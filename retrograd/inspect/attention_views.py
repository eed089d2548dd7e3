"""Views of attention: rollout (how much each output position draws on each input token through
all layers), a rank comparison of two relevance maps, and an interactive head view for the run
report. Everything here is a pure function of plain arrays (what the attention capture records
per module: probs A and grad_probs dL/dA, each (heads, L, S) or (samples, heads, L, S)); the
figures are in render.py (plot_attention_grid, plot_neuron_view, plot_rollout_disagreement).

    >>> import numpy as np
    >>> a = np.array([[[1.0, 0.0], [0.5, 0.5]]])            # one layer, one head, (1, 2, 2)
    >>> attention_rollout([a])                              # 0.5 * A + 0.5 * I
    array([[1.  , 0.  ],
           [0.25, 0.75]])
    >>> round(float(rollout_disagreement(a[0], a[0]).overall), 6)
    1.0
"""

import dataclasses
import json

import numpy as np

__all__ = ["rollout", "attention_rollout", "gradient_rollout", "rollout_disagreement",
           "RolloutDisagreement", "head_view_html", "head_view_section"]

_HEAD_FUSIONS = ("mean", "max", "min")


# ----------------------------------------------------------------------------- rollout

def rollout(attentions, gradients=None, method="attention", head_fusion="mean", residual=True):
    """Relevance of input tokens to output positions through every layer.

    ``method="attention"``: attention_rollout(attentions, head_fusion, residual);
    ``method="gradient"``: gradient_rollout(attentions, gradients) (``gradients`` required).
    """
    if method == "attention":
        if gradients is not None:
            raise ValueError("rollout: method='attention' takes no gradients; "
                             "use method='gradient' to weight attention by dL/dA")
        return attention_rollout(attentions, head_fusion=head_fusion, residual=residual)
    if method == "gradient":
        if gradients is None:
            raise ValueError("rollout: method='gradient' needs gradients (dL/dA per layer)")
        return gradient_rollout(attentions, gradients)
    raise ValueError(f"rollout: method must be 'attention' or 'gradient', got {method!r}")


def attention_rollout(attentions, head_fusion="mean", residual=True):
    """Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers").

    Per layer l (first layer first), with A_l the layer's attention probabilities:
        A_l' = fuse_h A_l[h]                    (T, T); fuse: mean (the paper), max or min
        Â_l = 0.5 * A_l' + 0.5 * I              the residual connection (residual=False: A_l')
        Â_l = Â_l / rowsum(Â_l)                 rows sum to 1 again
    R = Â_L @ ... @ Â_2 @ Â_1   (the first layer on the right: R[i, j] is how much output
    position i draws on input token j).

    Args:
        attentions: a list, one per layer in forward order, of (heads, T, T) arrays or of
            (samples, heads, T, T) arrays (every layer the same shape).
    Shape: R is (T, T), or (samples, T, T).
    """
    if head_fusion not in _HEAD_FUSIONS:
        raise ValueError(f"attention_rollout: head_fusion must be one of {_HEAD_FUSIONS}, "
                         f"got {head_fusion!r}")
    layers = _layer_arrays("attention_rollout", "attentions", attentions)
    eye = np.eye(layers[0].shape[-1])
    result = np.broadcast_to(eye, layers[0].shape[:-3] + eye.shape).copy()
    for a in layers:
        fused = getattr(np, head_fusion)(a, axis=-3)
        if residual:
            fused = 0.5 * fused + 0.5 * eye
        sums = fused.sum(axis=-1, keepdims=True)
        fused = np.divide(fused, sums, out=np.zeros_like(fused), where=sums != 0)
        result = fused @ result
    return result


def gradient_rollout(attentions, gradients):
    """Gradient-weighted rollout (Chefer, Gur & Wolf 2021, "Generic Attention-model
    Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers", eqs. 5-6, the
    self-attention rule).

    Per layer l (first layer first), with A_l the attention probabilities and dL/dA_l the
    gradient of the explained score with respect to them:
        Ā_l = mean_h max(dL/dA_l[h] * A_l[h], 0)     (T, T): E_h[(grad A ⊙ A)^+]
        R   = R + Ā_l @ R                             R starts at I
    so R = (I + Ā_L) @ ... @ (I + Ā_1). Rows are not normalized (the paper does not, for
    self-attention); the identity part carries each token's own relevance, so compare maps
    by rank (rollout_disagreement) or subtract I to see what attention added.

    Args:
        attentions, gradients: lists, one per layer in forward order, of (heads, T, T) or
            (samples, heads, T, T) arrays; gradients[l] has the shape of attentions[l].
    Shape: R is (T, T), or (samples, T, T).
    """
    layers = _layer_arrays("gradient_rollout", "attentions", attentions)
    grads = _layer_arrays("gradient_rollout", "gradients", gradients)
    if len(grads) != len(layers) or grads[0].shape != layers[0].shape:
        raise ValueError(f"gradient_rollout: {len(grads)} gradients of shape {grads[0].shape} "
                         f"for {len(layers)} attention maps of shape {layers[0].shape}; "
                         f"expected one gradient per layer, each the shape of its attention")
    eye = np.eye(layers[0].shape[-1])
    result = np.broadcast_to(eye, layers[0].shape[:-3] + eye.shape).copy()
    for a, grad in zip(layers, grads):
        weighted = np.maximum(grad * a, 0.0).mean(axis=-3)
        result = result + weighted @ result
    return result


def _layer_arrays(op, name, arrays):
    """``arrays`` as float64 arrays, checked: a non-empty list, one shape, (..., heads, T, T)."""
    if isinstance(arrays, np.ndarray) or not len(arrays):
        raise ValueError(f"{op}: {name} must be a non-empty list of per-layer arrays "
                         f"(heads, T, T) or (samples, heads, T, T)")
    layers = [np.asarray(a, dtype=np.float64) for a in arrays]
    shape = layers[0].shape
    for i, a in enumerate(layers):
        if a.shape != shape or a.ndim not in (3, 4) or a.shape[-1] != a.shape[-2]:
            raise ValueError(f"{op}: {name}[{i}] has shape {a.shape}; expected every layer "
                             f"(heads, T, T) or (samples, heads, T, T) like {name}[0] {shape}")
    return layers


# ----------------------------------------------------------------------------- disagreement

@dataclasses.dataclass(frozen=True)
class RolloutDisagreement:
    """Spearman rank correlations between two relevance maps of shape (..., L, S).

    per_row: (..., L), one per query row (NaN where a row is constant in either map: ranks
    say nothing there). overall: one number, the maps flattened (all entries ranked together).
    mean_row: the mean of the defined per-row correlations."""

    per_row: np.ndarray
    overall: float
    mean_row: float


def rollout_disagreement(a, b):
    """How far two relevance maps (attention vs gradient rollout, say) rank tokens alike:
    Spearman's rho (Pearson correlation of the ranks, ties given their mean rank) per query row
    and overall; 1: the same order, -1: reversed. Draw them with
    render.plot_rollout_disagreement."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim < 2:
        raise ValueError(f"rollout_disagreement: expected two maps of one shape (..., L, S), "
                         f"got {a.shape} and {b.shape}")
    per_row = _pearson(_ranks(a), _ranks(b))
    overall = float(_pearson(_ranks(a.ravel()), _ranks(b.ravel())))
    defined = per_row[~np.isnan(per_row)]
    mean_row = float(defined.mean()) if defined.size else float("nan")
    return RolloutDisagreement(per_row=per_row, overall=overall, mean_row=mean_row)


def _ranks(x):
    """Ranks 0.. along the last axis, tied values sharing their mean rank."""
    order = np.argsort(x, axis=-1, kind="stable")
    ordered = np.take_along_axis(x, order, axis=-1)
    ranks = np.empty_like(x)
    flat_rows, flat_order = ordered.reshape(-1, x.shape[-1]), order.reshape(-1, x.shape[-1])
    out = ranks.reshape(-1, x.shape[-1])
    for row, (values, where) in enumerate(zip(flat_rows, flat_order)):
        starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
        ends = np.r_[starts[1:], len(values)]
        mean_rank = np.repeat((starts + ends - 1) / 2.0, ends - starts)
        out[row, where] = mean_rank
    return ranks


def _pearson(x, y):
    """Pearson correlation along the last axis; NaN where either side is constant."""
    x = x - x.mean(axis=-1, keepdims=True)
    y = y - y.mean(axis=-1, keepdims=True)
    norm = np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))
    return np.divide((x * y).sum(axis=-1), norm, out=np.full(norm.shape, np.nan),
                     where=norm > 0)


# ----------------------------------------------------------------------------- head view

_HEAD_VIEW_STYLE = """
.rg-hv{font-family:sans-serif;font-size:13px;margin:.5em 0}
.rg-hv-controls{margin-bottom:.5em}
.rg-hv-controls button{margin:0 .2em .2em 0;padding:.15em .6em;border:2px solid;
  border-radius:3px;background:#fff;cursor:pointer;font-size:12px}
.rg-hv-controls button.off{opacity:.35}
.rg-hv svg text{font-size:12px;cursor:default}
.rg-hv-note{color:#555;font-size:12px}
"""

# Builds an SVG per render: query tokens on the left, key tokens on the right, a line from
# every query to every key per selected head with opacity = weight. Hovering a query keeps
# only its lines and shades each key's box by the weight (the mean over the selected heads).
_HEAD_VIEW_SCRIPT = """
(function () {
  const root = document.currentScript.parentElement;
  const data = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
  const NS = 'http://www.w3.org/2000/svg';
  const colours = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b',
                   '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const nHeads = data.attention[0].length;
  const state = {layer: 0, heads: new Set([0]), hover: null};
  const layerSelect = root.querySelector('select');
  const headBox = root.querySelector('.rg-hv-heads');
  const holder = root.querySelector('.rg-hv-figure');
  data.layers.forEach(function (name, i) {
    const option = document.createElement('option');
    option.value = String(i);
    option.textContent = name;
    layerSelect.appendChild(option);
  });
  layerSelect.addEventListener('change', function () {
    state.layer = Number(layerSelect.value);
    draw();
  });
  for (let h = 0; h < nHeads; h++) {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'head ' + h;
    button.style.borderColor = colours[h % colours.length];
    button.addEventListener('click', function () {
      if (state.heads.has(h)) { state.heads.delete(h); } else { state.heads.add(h); }
      draw();
    });
    headBox.appendChild(button);
  }
  function el(name, attributes) {
    const node = document.createElementNS(NS, name);
    for (const key in attributes) { node.setAttribute(key, attributes[key]); }
    return node;
  }
  function draw() {
    headBox.querySelectorAll('button').forEach(function (b, h) {
      b.className = state.heads.has(h) ? '' : 'off';
    });
    const rowH = 20, boxW = 110, gap = 220, top = 8;
    const left = data.tokens, right = data.key_tokens;
    const height = top * 2 + rowH * Math.max(left.length, right.length);
    const svg = el('svg', {width: boxW * 2 + gap, height: height});
    const heads = Array.from(state.heads).sort();
    const maps = heads.map(function (h) { return data.attention[state.layer][h]; });
    const lines = el('g', {});
    svg.appendChild(lines);
    left.forEach(function (token, i) {
      if (state.hover !== null && state.hover !== i) { return; }
      maps.forEach(function (rows, k) {
        rows[i].forEach(function (w, j) {
          if (w <= 0.005) { return; }
          lines.appendChild(el('line', {x1: boxW, y1: top + rowH * (i + 0.5),
            x2: boxW + gap, y2: top + rowH * (j + 0.5), stroke: colours[heads[k] % 10],
            'stroke-width': 2, 'stroke-opacity': w}));
        });
      });
    });
    left.forEach(function (token, i) {
      const g = el('g', {class: 'rg-hv-query'});
      g.appendChild(el('rect', {x: 0, y: top + rowH * i, width: boxW - 4, height: rowH - 2,
        fill: state.hover === i ? '#ddd' : '#fff'}));
      const text = el('text', {x: boxW - 8, y: top + rowH * (i + 0.7), 'text-anchor': 'end'});
      text.textContent = token;
      g.appendChild(text);
      g.addEventListener('mouseenter', function () { state.hover = i; draw(); });
      g.addEventListener('mouseleave', function () { state.hover = null; draw(); });
      svg.appendChild(g);
    });
    const shade = heads.length === 1 ? colours[heads[0] % 10] : '#555';
    right.forEach(function (token, j) {
      let w = 0;
      if (state.hover !== null && maps.length) {
        maps.forEach(function (rows) { w += rows[state.hover][j]; });
        w /= maps.length;
      }
      const box = el('rect', {x: boxW + gap + 4, y: top + rowH * j, width: boxW - 4,
        height: rowH - 2, fill: shade, 'fill-opacity': w});
      const tip = el('title', {});
      tip.textContent = state.hover === null ? token : token + ': ' + w.toFixed(3);
      box.appendChild(tip);
      svg.appendChild(box);
      const text = el('text', {x: boxW + gap + 8, y: top + rowH * (j + 0.7)});
      text.textContent = token;
      svg.appendChild(text);
    });
    holder.replaceChildren(svg);
  }
  draw();
})();
"""


def head_view_html(attentions, tokens, layer_names=None, key_tokens=None, sample=0,
                   digits=3):
    """An interactive view of attention heads as a self-contained HTML fragment (inline style,
    script and data; nothing loaded from outside): choose a layer and heads, hover a query token
    on the left to see its attention weights to the key tokens on the right (lines and shaded
    boxes, opacity = weight). Several views may share a page.

    Args:
        attentions: a list, one per layer, of attention probabilities (heads, L, S), or
            (samples, heads, L, S) of which ``sample`` is shown.
        tokens: the L query tokens (strings); key_tokens: the S key tokens (default: tokens,
            self-attention). layer_names: one per layer (default "layer 0", ...).
        digits: weights are rounded to this many decimals to keep the page small.
    The data sits in a <script type="application/json"> as {"layers": [...], "tokens": [...],
    "key_tokens": [...], "attention": [layer][head][query][key]}.
    """
    maps = _head_view_maps(attentions, sample)
    key_tokens = tokens if key_tokens is None else key_tokens
    layer_names = [f"layer {i}" for i in range(len(maps))] if layer_names is None else layer_names
    _, length, keys = maps[0].shape
    if len(tokens) != length or len(key_tokens) != keys or len(layer_names) != len(maps):
        raise ValueError(f"head_view_html: {len(tokens)} tokens, {len(key_tokens)} key tokens "
                         f"and {len(layer_names)} layer names for {len(maps)} layers of "
                         f"attention (heads, L, S) = {maps[0].shape}")
    data = dict(layers=[str(n) for n in layer_names], tokens=[str(t) for t in tokens],
                key_tokens=[str(t) for t in key_tokens],
                attention=[np.round(m, digits).tolist() for m in maps])
    # "</" inside a <script> would end it early; "<\/" is the same JSON string.
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return (f'<div class="rg-hv"><style>{_HEAD_VIEW_STYLE}</style>'
            f'<div class="rg-hv-controls"><label>Layer <select></select></label> '
            f'<span class="rg-hv-heads"></span></div>'
            f'<p class="rg-hv-note">Hover a token on the left to see where it attends; click '
            f'the heads to show or hide them.</p>'
            f'<div class="rg-hv-figure"></div>'
            f'<script type="application/json">{payload}</script>'
            f'<script>{_HEAD_VIEW_SCRIPT}</script></div>')


def head_view_section(attentions, tokens, layer_names=None, key_tokens=None, sample=0,
                      title="Attention heads"):
    """head_view_html(...) as a report Section.html titled ``title``."""
    from retrograd.inspect.report import Section

    fragment = head_view_html(attentions, tokens, layer_names, key_tokens, sample)
    return Section.html(title, f"<p>{len(attentions)} layers; the weights are attention "
                               f"probabilities (rows sum to 1).</p>{fragment}")


def _head_view_maps(attentions, sample):
    """Per layer (heads, L, S) float64 arrays, the sample ``sample`` taken from 4-d ones."""
    if isinstance(attentions, np.ndarray) or not len(attentions):
        raise ValueError("head_view_html: attentions must be a non-empty list of per-layer "
                         "arrays (heads, L, S) or (samples, heads, L, S)")
    maps = []
    for i, a in enumerate(attentions):
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 4:
            a = a[sample]
        if a.ndim != 3 or (maps and a.shape[1:] != maps[0].shape[1:]):
            raise ValueError(f"head_view_html: attentions[{i}] has shape {np.shape(a)}; "
                             f"expected (heads, L, S) or (samples, heads, L, S), one L and S "
                             f"for every layer")
        maps.append(a)
    return maps
