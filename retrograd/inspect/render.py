"""Rendering shared by the tools: aligned text tables, human-readable quantities (bytes,
times, FLOPs) and the tools' figures (matplotlib, drawn off-screen to PNG: heatmap overlays,
gradient flow, layer x step heatmaps, ratios over steps, histograms, depth profiles). Pages
are in report.py.

    >>> print(text_table([["conv1", "1.5 ms"], ["fc", "20.0 us"]], ["Name", "Self"]))
    Name      Self
    -----  -------
    conv1   1.5 ms
    fc     20.0 us
    >>> format_bytes(3 * 2**20), format_time_us(1500.0), format_count(2.5e9)
    ('3.00 MiB', '1.500 ms', '2.50 G')
"""

import numpy as np

__all__ = ["text_table", "format_bytes", "format_time_us", "format_count",
           "plot_heatmap_overlays", "plot_layer_gradients", "plot_layer_heatmap",
           "plot_step_ratios", "plot_histograms", "plot_depth_profiles",
           "plot_attention_grid", "plot_neuron_view", "plot_rollout_disagreement"]


def text_table(rows, header, left=1):
    """Rows of strings under ``header``: the first ``left`` columns left-aligned, the others
    right-aligned, with a rule under the header."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def format_bytes(n):
    """Bytes in B, KiB, MiB or GiB."""
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def format_time_us(us):
    """A time given in microseconds, in s, ms or us."""
    if abs(us) >= 1e6:
        return f"{us / 1e6:.3f} s"
    if abs(us) >= 1e3:
        return f"{us / 1e3:.3f} ms"
    return f"{us:.1f} us"


def format_count(n):
    """A count with a k, M, G or T suffix."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


# ----------------------------------------------------------------------------- heatmap overlays

def plot_heatmap_overlays(images, heatmaps, path, titles=None, columns=8, alpha=0.7,
                          cmap="jet"):
    """Images with heatmaps drawn over them (attribution maps, Grad-CAM), written to ``path``
    (PNG). Returns False when matplotlib (the 'train' extra) is missing.

    A column per image: the image on top, then a row per heatmap drawn over it (``heatmaps``:
    an (N, H, W) array, or a dict of them whose names label the rows); past ``columns`` images
    the grid goes on below. Images are (N, H, W) or (N, C, H, W) with 1 or 3 channels, each
    stretched to its own range of values; each heatmap is divided by its largest |value| (a
    signed map shows its magnitude) and drawn with ``cmap``, each pixel's opacity rising from
    alpha / 4 (value 0, so the image shows through) to ``alpha`` (value 1). Pixels are drawn
    as blocks (no smoothing), so a small image (8x8 digits) shows what each pixel got; a
    colour bar gives the scale. ``titles``: one per image, or None.
    """
    from retrograd.inspect.report import _pyplot
    from retrograd.utils.serialization import atomic_write

    plt = _pyplot()
    if plt is None:
        return False
    pictures = _display_images(images)
    maps = heatmaps if isinstance(heatmaps, dict) else {"heatmap": heatmaps}
    maps = {name: _unit_heatmaps(name, m, pictures.shape[:3]) for name, m in maps.items()}
    if titles is not None and len(titles) != len(pictures):
        raise ValueError(f"plot_heatmap_overlays: {len(titles)} titles for {len(pictures)} "
                         f"images")
    columns = max(1, min(columns, len(pictures)))
    per_block = 1 + len(maps)
    blocks = -(-len(pictures) // columns)
    fig, axes = plt.subplots(blocks * per_block, columns, squeeze=False, layout="constrained",
                             figsize=(1.6 * columns + 1.0, 1.6 * blocks * per_block))
    shown = None
    for i, picture in enumerate(pictures):
        block, column = divmod(i, columns)
        top = block * per_block
        axes[top, column].imshow(picture, cmap="gray", interpolation="nearest")
        if titles is not None:
            axes[top, column].set_title(titles[i], fontsize=8)
        for row, m in enumerate(maps.values(), start=top + 1):
            axes[row, column].imshow(picture, cmap="gray", interpolation="nearest")
            shown = axes[row, column].imshow(m[i], cmap=cmap, vmin=0.0, vmax=1.0,
                                             alpha=alpha * (0.25 + 0.75 * m[i]),
                                             interpolation="nearest")
    for block in range(blocks):
        for row, name in enumerate(["image"] + list(maps)):
            axes[block * per_block + row, 0].set_ylabel(name, fontsize=8)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if (i // columns) // per_block * columns + i % columns >= len(pictures):
            ax.set_axis_off()                       # the empty cells of a last, short block
    if shown is not None:
        scale = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0.0, 1.0))
        fig.colorbar(scale, ax=axes, shrink=0.6, pad=0.02, label="relative attribution")
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100), owner="render")
    finally:
        plt.close(fig)
    return True


def _display_images(images):
    """(N, H, W) grey or (N, H, W, 3) colour images, each stretched to [0, 1]."""
    pictures = np.asarray(images, dtype=np.float64)
    if pictures.ndim == 4 and pictures.shape[1] == 1:
        pictures = pictures[:, 0]
    elif pictures.ndim == 4 and pictures.shape[1] == 3:
        pictures = pictures.transpose(0, 2, 3, 1)
    elif pictures.ndim != 3:
        raise ValueError(f"plot_heatmap_overlays: expected images (N, H, W) or (N, C, H, W) "
                         f"with 1 or 3 channels, got shape {pictures.shape}")
    axes = tuple(range(1, pictures.ndim))
    low = pictures.min(axis=axes, keepdims=True)
    span = pictures.max(axis=axes, keepdims=True) - low
    return np.divide(pictures - low, span, out=np.zeros_like(pictures), where=span > 0)


def _unit_heatmaps(name, maps, shape):
    """|maps| divided by each map's maximum, checked to be (N, H, W) like the images."""
    size = np.abs(np.asarray(maps, dtype=np.float64))
    if size.shape != tuple(shape):
        raise ValueError(f"plot_heatmap_overlays: heatmap {name!r} has shape {size.shape}, "
                         f"the images are {tuple(shape)}")
    peak = size.reshape(len(size), -1).max(axis=1).reshape(-1, 1, 1)
    return np.divide(size, peak, out=np.zeros_like(size), where=peak > 0)


# ----------------------------------------------------------------------------- gradient flow
# The figures of inspect/gradient_flow.py. Each takes plain lists (layers input side first),
# writes a PNG to ``path`` and returns False when matplotlib (the 'train' extra) is missing.

def plot_layer_gradients(layers, series, path, title="Gradient flow", marked=()):
    """The gradient-flow chart: a point per layer for each of ``series`` ({label: one value per
    layer, None where there is none}), on a log scale, with the layers named in ``marked``
    (flagged ones) shaded red. A value <= 0 cannot be drawn on a log scale and is left out."""
    plt = _flow_pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(max(7.0, 0.16 * len(layers) + 2.5), 4.8),
                           layout="constrained")
    x = range(len(layers))
    for label, values in series.items():
        ax.plot(x, _log_plottable(values), marker="o", markersize=3, label=label)
    marked = set(marked)
    shaded = [i for i, layer in enumerate(layers) if layer in marked]
    for k, i in enumerate(shaded):
        ax.axvspan(i - 0.45, i + 0.45, color="tab:red", alpha=0.15,
                   label="flagged layer" if k == 0 else None)
    ax.set_yscale("log")
    _layer_ticks(ax.set_xticks, ax.set_xticklabels, layers, rotation=90)
    ax.set(xlabel="layer (input side first)", ylabel="|gradient|", title=title)
    ax.grid(alpha=0.3, which="major")
    ax.legend()
    _write_flow_figure(plt, fig, path)
    return True


def plot_layer_heatmap(layers, steps, values, path, title="Gradient norm by layer and step",
                       label="log10 of the gradient norm"):
    """A layer x step heatmap of log10(``values``) (``values[i][j]``: layer i at steps[j];
    None or <= 0 where there is none, drawn blank; NaN or Inf drawn red, with a legend: a
    diverged run shows where it diverged), layers from the top (input side)."""
    plt = _flow_pyplot()
    if plt is None:
        return False
    grid = np.array([_log_plottable(row) for row in values], dtype=np.float64)
    grid = np.log10(grid.reshape(len(layers), len(steps)))
    raw = np.array([[np.nan if v is None else float(v) for v in row] for row in values],
                   dtype=np.float64).reshape(grid.shape)
    broken = np.isinf(raw) | (np.isnan(raw) & np.array([[v is not None for v in row]
                                                         for row in values]).reshape(grid.shape))
    fig, ax = plt.subplots(figsize=(9.0, max(3.5, 0.14 * len(layers) + 1.6)),
                           layout="constrained")
    shown = ax.imshow(np.ma.masked_invalid(np.where(broken, np.nan, grid)), aspect="auto",
                      interpolation="nearest", cmap="viridis")
    fig.colorbar(shown, ax=ax, label=label)
    if broken.any():
        import matplotlib.colors
        import matplotlib.patches

        ax.imshow(np.ma.masked_where(~broken, broken.astype(float)), aspect="auto",
                  interpolation="nearest", cmap=matplotlib.colors.ListedColormap(["tab:red"]))
        ax.legend(handles=[matplotlib.patches.Patch(color="tab:red", label="NaN or Inf")],
                  loc="upper right", fontsize=8)
    _layer_ticks(ax.set_yticks, ax.set_yticklabels, layers, rotation=0)
    columns = range(0, len(steps), max(1, -(-len(steps) // 12)))
    ax.set_xticks(list(columns))
    ax.set_xticklabels([str(steps[j]) for j in columns])
    ax.set(xlabel="step", ylabel="layer (input side at the top)", title=title)
    _write_flow_figure(plt, fig, path)
    return True


def plot_step_ratios(steps, curves, path, guide=1e-3, title="Update:data ratio",
                     ylabel="std(update) / std(parameter)"):
    """A curve per entry of ``curves`` ({name: one value per step, None where there is none},
    input side first) over ``steps`` on a log scale, with a dashed guide line at ``guide``.
    Up to 10 curves get a legend; more are coloured by depth with a colour bar. When no value
    can be drawn (all zero or None) the chart says so."""
    plt = _flow_pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(8.5, 4.8), layout="constrained")
    colours = _depth_colours(plt, len(curves))
    for colour, (name, values) in zip(colours, curves.items()):
        ax.plot(steps, _log_plottable(values), marker="o", markersize=3, color=colour,
                label=name if len(curves) <= 10 else None)
    ax.axhline(guide, color="black", linestyle="--", linewidth=1.2, label=f"{guide:g} (guide)")
    if not any(v is not None and v > 0 for values in curves.values() for v in values):
        ax.text(0.5, 0.5, "nothing to draw: every value is zero or unknown\n(e.g. a learning "
                "rate of 0 at the first warm-up step)", transform=ax.transAxes, ha="center",
                va="center", fontsize=10, color="dimgray")
    if len(curves) > 10:
        _depth_colour_bar(plt, fig, ax, len(curves), "parameter (input side first)")
    ax.set_yscale("log")
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _write_flow_figure(plt, fig, path)
    return True


def plot_scale_history(steps, scales, skipped_steps, path, title="Loss scale by step"):
    """The GradScaler's scale at each step (log scale), the skipped steps marked with red
    crosses at the scale they carried. Returns False without matplotlib."""
    plt = _flow_pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(8.5, 4.0), layout="constrained")
    ax.step(steps, scales, where="post", color="tab:blue", label="scale")
    skipped = set(skipped_steps)
    marks = [(s, v) for s, v in zip(steps, scales) if s in skipped]
    if marks:
        ax.plot(*zip(*marks), "x", color="tab:red", markersize=8,
                label=f"skipped steps ({len(marks)})")
    ax.set_yscale("log", base=2)
    ax.set(xlabel="step", ylabel="loss scale", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _write_flow_figure(plt, fig, path)
    return True


def plot_histograms(edges, histograms, path, zero_shares=None, title="Activations",
                    xlabel="value (symmetric log scale)"):
    """Histograms over the same increasing ``edges`` (symmetric log-spaced, like
    gradient_flow.HISTOGRAM_EDGES), one line per entry of ``histograms`` ({label: counts},
    len(edges) + 1 counts: below the first edge, between edges, from the last edge on; the
    outer two drawn one decade wide), as shares of all values. ``zero_shares`` ({label: share
    of exact zeros}, kept out of the counts) puts that share as a diamond at x = 0."""
    plt = _flow_pyplot()
    if plt is None:
        return False
    edges = np.asarray(edges, dtype=np.float64)
    drawn = np.concatenate([[edges[0] * 10], edges, [edges[-1] * 10]])
    zero_shares = zero_shares or {}
    fig, ax = plt.subplots(figsize=(8.5, 4.8), layout="constrained")
    colours = _depth_colours(plt, len(histograms))
    for colour, (label, counts) in zip(colours, histograms.items()):
        counts = np.asarray(counts, dtype=np.float64)
        zero = zero_shares.get(label)
        nonzero = 1.0 - (zero or 0.0)
        shares = counts * (nonzero / counts.sum()) if counts.sum() > 0 else counts
        legend = label if zero is None else f"{label} (zeros {100 * zero:.0f}%)"
        ax.stairs(shares, drawn, color=colour, linewidth=1.4, label=legend)
        if zero is not None:
            ax.plot([0.0], [zero], marker="D", color=colour, linestyle="none")
    ax.set_xscale("symlog", linthresh=float(np.min(np.abs(edges[edges != 0]))))
    occupied = np.flatnonzero(np.sum([np.asarray(c) for c in histograms.values()], axis=0))
    if occupied.size:                   # the bins that hold values, one more each side, and 0
        low, high = drawn[max(occupied[0] - 1, 0)], drawn[min(occupied[-1] + 2, len(drawn) - 1)]
        ax.set_xlim(min(low, 0.0), max(high, 0.0))
    ax.set(xlabel=xlabel, ylabel="share of values", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _write_flow_figure(plt, fig, path)
    return True


def plot_depth_profiles(panels, path, title="Gradient RMS per layer at initialization"):
    """Side-by-side panels ({panel title: {label: gradient RMS per layer, input side
    first}}) of lines against relative depth (0: the first layer, 1: the last), on one
    shared log scale: networks of different depths on one axis (the depth experiment).
    Lines of the same depth share a colour; labels starting "plain" are solid, others
    dashed."""
    plt = _flow_pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.8), sharey=True,
                             layout="constrained", squeeze=False)
    depths = sorted({_depth_of(label) for curves in panels.values() for label in curves})
    colour = dict(zip(depths, plt.get_cmap("tab10").colors))
    for ax, (panel, curves) in zip(axes[0], panels.items()):
        for label, values in curves.items():
            x = np.linspace(0.0, 1.0, len(values)) if len(values) > 1 else [0.0]
            ax.plot(x, _log_plottable(values), color=colour[_depth_of(label)], label=label,
                    linestyle="-" if label.startswith("plain") else "--", marker="o",
                    markersize=2.5)
        ax.set_yscale("log")
        ax.set(xlabel="relative depth of the layer (0: input side, 1: output)", title=panel)
        ax.grid(alpha=0.3, which="major")
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("gradient RMS")
    fig.suptitle(title)
    _write_flow_figure(plt, fig, path)
    return True


def _depth_of(label):
    """The first number in a network's label ("plain-56-bn" -> 56), or 0."""
    for part in label.split("-"):
        if part.isdigit():
            return int(part)
    return 0


def _flow_pyplot():
    from retrograd.inspect.report import _pyplot

    return _pyplot()


def _log_plottable(values):
    """``values`` as floats for a log axis: nan (drawn as a gap) for None, nan and <= 0."""
    return [float(v) if v is not None and v > 0 else float("nan") for v in values]


def _layer_ticks(set_ticks, set_labels, layers, rotation):
    """Every layer's name as a tick label, or every k-th past 60 layers."""
    shown = range(0, len(layers), max(1, -(-len(layers) // 60)))
    set_ticks(list(shown))
    set_labels([layers[i] for i in shown], rotation=rotation,
               fontsize=8 if len(layers) <= 20 else 6)


def _depth_colours(plt, n):
    if n <= 10:
        return [plt.get_cmap("tab10")(i) for i in range(n)]
    return [plt.get_cmap("viridis")(i / max(1, n - 1)) for i in range(n)]


def _depth_colour_bar(plt, fig, ax, n, label):
    import matplotlib.colors

    scale = plt.cm.ScalarMappable(norm=matplotlib.colors.Normalize(0, n - 1), cmap="viridis")
    fig.colorbar(scale, ax=ax, label=label)


def _write_flow_figure(plt, fig, path):
    from retrograd.utils.serialization import atomic_write

    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100), owner="render")
    finally:
        plt.close(fig)


# ----------------------------------------------------------------------------- attention views
# The figures of inspect/attention_views.py: plain arrays in, a PNG at ``path`` out; each
# returns False when matplotlib (the 'train' extra) is missing.

def plot_attention_grid(maps, path, tokens=None, key_tokens=None, title="Attention weights",
                        layer_names=None, signed=None, label=None):
    """A layer x head grid of (L, S) maps: attention A, its gradient dL/dA, or A * dL/dA.

    ``maps``: (layers, heads, L, S), or a list of per-layer (heads, L, S) arrays. One colour
    scale for the whole grid: viridis from 0 for maps >= 0; a diverging map centred at 0
    (red > 0, blue < 0) when ``signed`` is True, or by default when any value is negative.
    ``tokens`` (L query tokens) and ``key_tokens`` (S, default: tokens) label the axes of the
    left column and the bottom row (small fonts, every k-th past 40 tokens); None: indices.
    """
    plt = _flow_pyplot()
    if plt is None:
        return False
    grid = np.asarray([np.asarray(m, dtype=np.float64) for m in maps])
    if grid.ndim != 4:
        raise ValueError(f"plot_attention_grid: expected maps (layers, heads, L, S), got "
                         f"shape {grid.shape}")
    layers, heads, length, keys = grid.shape
    key_tokens = tokens if key_tokens is None else key_tokens
    names = layer_names or [f"layer {i}" for i in range(layers)]
    signed = bool((grid < 0).any()) if signed is None else signed
    peak = float(np.nanmax(np.abs(grid))) if grid.size else 0.0
    peak = peak if peak > 0 else 1.0
    scale = dict(cmap="RdBu_r", vmin=-peak, vmax=peak) if signed else dict(cmap="viridis",
                                                                          vmin=0.0, vmax=peak)
    cell = max(1.6, min(3.2, 0.13 * max(length, keys)))
    fig, axes = plt.subplots(layers, heads, squeeze=False, layout="constrained",
                             figsize=(cell * heads + 1.6, cell * layers + 0.8))
    shown = None
    for (i, j), ax in np.ndenumerate(axes):
        shown = ax.imshow(grid[i, j], interpolation="nearest", aspect="auto", **scale)
        _token_ticks(ax.set_yticks, ax.set_yticklabels, tokens, length, j == 0)
        _token_ticks(ax.set_xticks, ax.set_xticklabels, key_tokens, keys, i == layers - 1,
                     rotation=90)
        if i == 0:
            ax.set_title(f"head {j}", fontsize=9)
        if j == 0:
            ax.set_ylabel(f"{names[i]}\nquery", fontsize=9)
        if i == layers - 1:
            ax.set_xlabel("key", fontsize=8)
    fig.colorbar(shown, ax=axes, shrink=0.8, pad=0.01, label=label or title)
    fig.suptitle(title)
    _write_flow_figure(plt, fig, path)
    return True


def plot_neuron_view(q, k, query_index, path, tokens=None, key_tokens=None, scale=None,
                     title=None):
    """How one query's attention comes about: the query vector q_i (over the keys k_j, (S, d)),
    the elementwise products q_i * k_j, the logits scale * sum_d(q_i * k_j) and their softmax,
    one row per key. ``q``: (L, d) queries of one head; ``k``: (S, d) keys; ``scale``: default
    1 / sqrt(d). Vectors use a diverging colour scale centred at 0."""
    plt = _flow_pyplot()
    if plt is None:
        return False
    q, k = np.asarray(q, dtype=np.float64), np.asarray(k, dtype=np.float64)
    if q.ndim != 2 or k.ndim != 2 or q.shape[1] != k.shape[1] or not 0 <= query_index < len(q):
        raise ValueError(f"plot_neuron_view: expected q (L, d), k (S, d) and 0 <= query_index "
                         f"< L, got q {q.shape}, k {k.shape}, query_index {query_index}")
    keys, dim = k.shape
    scale = 1.0 / np.sqrt(dim) if scale is None else scale
    query = q[query_index]
    products = query * k
    logits = scale * products.sum(axis=1)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    key_labels = _token_labels(tokens if key_tokens is None else key_tokens, keys)
    query_label = _token_labels(tokens, len(q))[query_index]
    fig = plt.figure(figsize=(min(16.0, 6.0 + 0.25 * dim), 1.6 + 0.3 * keys),
                     layout="constrained")
    panels = fig.add_gridspec(2, 4, height_ratios=[1, max(keys, 1)],
                              width_ratios=[max(dim, 4), max(dim, 4), 6, 6])
    vectors = dict(cmap="RdBu_r", interpolation="nearest", aspect="auto")
    peak = max(float(np.abs(query).max()), float(np.abs(k).max()), 1e-12)
    ax_q = fig.add_subplot(panels[0, 0])
    ax_q.imshow(query[None, :], vmin=-peak, vmax=peak, **vectors)
    ax_q.set_title(f"query q_i (i = {query_index}: {query_label})", fontsize=9)
    ax_q.set_yticks([])
    ax_q.set_xticks([])
    ax_k = fig.add_subplot(panels[1, 0])
    shown = ax_k.imshow(k, vmin=-peak, vmax=peak, **vectors)
    ax_k.set_title("keys k_j", fontsize=9)
    fig.colorbar(shown, ax=[ax_q, ax_k], location="left", shrink=0.6, label="q, k")
    ax_p = fig.add_subplot(panels[1, 1], sharey=ax_k)
    top = max(float(np.abs(products).max()), 1e-12)
    shown = ax_p.imshow(products, vmin=-top, vmax=top, **vectors)
    ax_p.set_title("q_i * k_j (elementwise)", fontsize=9)
    fig.colorbar(shown, ax=ax_p, location="top", shrink=0.8, label="q_i * k_j")
    for ax in (ax_k, ax_p):
        ax.set_xlabel("dimension", fontsize=8)
        ax.tick_params(labelsize=7)
    ax_k.set_yticks(range(keys))
    ax_k.set_yticklabels(key_labels, fontsize=7)
    ax_p.tick_params(labelleft=False)
    rows = np.arange(keys)
    for column, values, name in ((2, logits, f"logit =\n{scale:.3g} * sum(q_i * k_j)"),
                                 (3, probs, "softmax\nof the logits")):
        ax = fig.add_subplot(panels[1, column], sharey=ax_k)
        ax.barh(rows, values, color=np.where(values >= 0, "tab:red", "tab:blue"), height=0.7)
        for row, value in zip(rows, values):
            ax.text(value, row, f" {value:.2f} ", va="center", fontsize=7,
                    ha="left" if value >= 0 else "right")
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelleft=False, labelsize=7)
        low, high = min(values.min(), 0.0), max(values.max(), 0.0)
        ax.set_xlim(low - 0.4 * (high - low + 1e-12), high + 0.4 * (high - low + 1e-12))
    ax_k.set_ylim(keys - 0.5, -0.5)
    fig.suptitle(title or f"Neuron view: query {query_index} ({query_label})")
    _write_flow_figure(plt, fig, path)
    return True


def plot_rollout_disagreement(a, b, path, tokens=None, names=("attention rollout",
                                                              "gradient rollout"),
                              title="Where two relevance maps disagree"):
    """Two relevance maps (L, S) side by side, then where they rank tokens differently: per
    query row, each key's rank in ``a`` minus its rank in ``b`` (ranks scaled to [0, 1]; red:
    ``a`` ranks it higher), and the Spearman correlation of each row (see
    attention_views.rollout_disagreement)."""
    from retrograd.inspect.attention_views import _ranks, rollout_disagreement

    plt = _flow_pyplot()
    if plt is None:
        return False
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"plot_rollout_disagreement: expected maps (L, S), got {a.shape}")
    found = rollout_disagreement(a, b)
    length, keys = a.shape
    spread = max(keys - 1, 1)
    difference = (_ranks(a) - _ranks(b)) / spread
    cell = max(3.0, min(5.0, 0.16 * max(length, keys)))
    fig, axes = plt.subplots(1, 4, figsize=(3 * cell + 2.6, cell + 0.9), layout="constrained",
                             gridspec_kw=dict(width_ratios=[1, 1, 1, 0.35]))
    for ax, values, name in zip(axes, (a, b), names):
        shown = ax.imshow(values, interpolation="nearest", aspect="auto", cmap="viridis")
        fig.colorbar(shown, ax=ax, shrink=0.7)
        ax.set_title(name, fontsize=9)
    shown = axes[2].imshow(difference, interpolation="nearest", aspect="auto", cmap="RdBu_r",
                           vmin=-1.0, vmax=1.0)
    fig.colorbar(shown, ax=axes[2], shrink=0.7, label="rank difference (scaled)")
    axes[2].set_title(f"rank in {names[0]} - rank in {names[1]}", fontsize=9)
    for i, ax in enumerate(axes[:3]):
        _token_ticks(ax.set_yticks, ax.set_yticklabels, tokens, length, i == 0)
        _token_ticks(ax.set_xticks, ax.set_xticklabels, tokens, keys, True, rotation=90)
        ax.set_xlabel("input token", fontsize=8)
    axes[0].set_ylabel("output position", fontsize=9)
    rho = np.nan_to_num(found.per_row, nan=0.0)
    axes[3].barh(np.arange(length), rho, color=np.where(rho >= 0, "tab:green", "tab:red"))
    axes[3].set_ylim(length - 0.5, -0.5)
    axes[3].set_xlim(-1.05, 1.05)
    axes[3].axvline(0.0, color="black", linewidth=0.8)
    axes[3].set_yticks([])
    axes[3].tick_params(labelsize=7)
    axes[3].set_title("Spearman\nper row", fontsize=9)
    fig.suptitle(f"{title}: overall Spearman {found.overall:.2f}, mean per row "
                 f"{found.mean_row:.2f}", fontsize=10)
    _write_flow_figure(plt, fig, path)
    return True


def _token_labels(tokens, n):
    """``tokens`` as strings (checked to be n of them), or the indices 0..n-1."""
    if tokens is None:
        return [str(i) for i in range(n)]
    if len(tokens) != n:
        raise ValueError(f"render: {len(tokens)} token labels for an axis of {n} positions")
    return [str(t) for t in tokens]


def _token_ticks(set_ticks, set_labels, tokens, n, labelled, rotation=0):
    """Every position's token (or index) as a tick label, every k-th past 40; no labels on
    inner panels (``labelled`` False)."""
    shown = list(range(0, n, max(1, -(-n // 40))))
    labels = _token_labels(tokens, n)
    set_ticks(shown)
    set_labels([labels[i] for i in shown] if labelled else [], rotation=rotation,
               fontsize=7 if n <= 20 else 5)
