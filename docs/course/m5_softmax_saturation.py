"""Module 5 lab: softmax saturation in scaled dot-product attention.

Two parts, measured with ``retrograd.inspect.capture_attention`` (the scores S, the weights
A = softmax(S), and after backward dL/dA, dL/dS and the per-head norms of dL/dQ, dL/dK):

1. why 1/sqrt(d): for random queries and keys with unit-variance entries, var(q.k) is d
   without the scaling and 1 with it; without it, at growing d, the attention rows turn
   one-hot, the softmax Jacobian diag(a) - a a^T shrinks, and less of dL/dA gets through to
   dL/dS;
2. a real model: a one-layer character-level GPT (``retrograd.models.gpt``) trained briefly
   on the shipped Shakespeare text; then its attention scores multiplied by c = 0.1 ... 100
   (a forward hook multiplies the queries and keys by sqrt(c)). Per head and per attention
   row: the entropy, the Jacobian norm, the share of dL/dA that reaches the scores, and the
   gradient that reaches the queries.

``retrograd explain attention`` and ``retrograd explain softmax`` print the same backward pass
on numbers small enough to follow by hand.

Run from the repository root::

    python docs/course/m5_softmax_saturation.py            # full form, docs/course/results/
    python docs/course/m5_softmax_saturation.py --quick --out /tmp/m5
"""

import contextlib
import math
import time

import numpy as np

import retrograd as rg
from retrograd import optim
from retrograd.datasets.shakespeare import shakespeare_path
from retrograd.datasets.text import load_text_splits
from retrograd.inspect import attention_diagnostics, capture_attention, render
from retrograd.models.gpt import GPT, GPTConfig
from retrograd.nn import functional as F
from retrograd.training.common import seeded_batches

import _labkit
from _labkit import markdown_table

PAGE = "m5-softmax-saturation.md"
FIGURES = ("m5-score-variance.png", "m5-saturation-sweep.png", "m5-entropy-vs-gradient.png",
           "m5-attention-maps.png")

HEAD_DIMS = (4, 8, 16, 32, 64, 128, 256)  # part 1
KEYS = 32                                 # part 1: queries and keys per sample
MODEL = dict(context=32, n_layer=1, n_head=4, d_model=64)  # part 2's GPT
TRAINING = dict(lr=5e-3, batch_size=16, seed=0)            # AdamW, betas (0.9, 0.95)
PROBE_WINDOWS = 8                         # validation windows run through the sweep
MAP_SCALES = (1.0, 10.0, 100.0)           # the scales drawn in the attention maps
LOW, HIGH = 0.1, 0.5                      # row entropy (H / log n) bands compared in part 2


def _settings(quick):
    """Samples of part 1; training steps and the scales c of part 2."""
    if quick:
        return dict(samples=16, steps=40, scales=np.logspace(-1, 2, 7))
    return dict(samples=64, steps=300, scales=np.logspace(-1, 2, 13))


def row_entropy(probs):
    """-sum a log a over the last axis (0 log 0 = 0), in float64."""
    p = np.asarray(probs, dtype=np.float64)
    return -np.sum(p * np.log(np.where(p > 0, p, 1.0)), axis=-1)


def row_norms(x):
    """The L2 norm of every row (last axis) of ``x``, in float64."""
    return np.linalg.norm(np.asarray(x, dtype=np.float64), axis=-1)


# ----------------------------------------------------------------------------- part 1
def random_attention(d, samples, scaled, rng):
    """One attention call on random q, k, v of shape (samples, 1, KEYS, d) with unit-variance
    entries, the loss sum(O * R) for a random R, captured; scale 1/sqrt(d) or 1 (omitted).
    Returns the score variance and the head's mean row statistics."""
    q, k, v, upstream = (rng.standard_normal((samples, 1, KEYS, d)) for _ in range(4))
    query, key, value = (rg.tensor(a, requires_grad=True) for a in (q, k, v))
    with capture_attention() as rec:
        out = F.scaled_dot_product_attention(query, key, value,
                                             scale=1.0 / math.sqrt(d) if scaled else 1.0)
        (out * rg.tensor(upstream)).sum().backward()
    record = rec.records[0]
    head = attention_diagnostics(record)[0]
    passed = row_norms(record.grad_logits) / row_norms(record.grad_probs)
    return dict(d=d, scaled=scaled, variance=float(np.var(record.logits)),
                normalized_entropy=head.normalized_entropy, jacobian_norm=head.jacobian_norm,
                passed=float(np.mean(passed)))


def variance_part(samples, seed=0):
    """Part 1 at every head dimension, with and without the scaling (one draw per pair)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in HEAD_DIMS:
        state = rng.bit_generator.state
        for scaled in (True, False):          # the same q, k, v for both
            rng.bit_generator.state = state
            rows.append(random_attention(d, samples, scaled, rng))
    return rows


# ----------------------------------------------------------------------------- part 2
def lm_loss(model, x, y):
    """Mean next-character cross-entropy of ``model`` on (x, y)."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def train_gpt(train_set, vocab_size, steps):
    """A one-layer GPT (MODEL) trained for ``steps`` AdamW steps on Shakespeare windows;
    returns the model and its training losses."""
    rg.manual_seed(TRAINING["seed"])
    model = GPT(GPTConfig(vocab_size, **MODEL))
    optimizer = optim.AdamW(model.parameters(), lr=TRAINING["lr"], betas=(0.9, 0.95),
                            weight_decay=0.0)
    losses = []
    for x, y in seeded_batches(train_set, TRAINING["batch_size"], steps, TRAINING["seed"]):
        optimizer.zero_grad()
        loss = lm_loss(model, x, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return model, losses


@contextlib.contextmanager
def scaled_scores(model, c):
    """Inside the block, every attention score of the GPT ``model`` is multiplied by ``c``: a
    forward hook on each block's qkv projection multiplies its query and key parts by
    sqrt(c) (S = (sqrt(c) q)(sqrt(c) k)^T / sqrt(d) = c q k^T / sqrt(d)). Yields a list that
    receives each hooked projection output, which keeps its gradient (``.grad`` after
    backward: dL/dq, dL/dk, dL/dv of the scaled q and k, the tensors attention reads)."""
    width = model.config.d_model
    factor = np.ones(3 * width, dtype=np.float32)
    factor[:2 * width] = math.sqrt(c)
    factor = rg.tensor(factor)
    outputs = []

    def hook(module, args, output):
        scaled = output * factor
        scaled.retain_grad()
        outputs.append(scaled)
        return scaled

    handles = [block.attn.qkv.register_forward_hook(hook) for block in model.blocks]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def query_row_gradients(qkv_grad, n_head):
    """|dL/dq| of every query row, (samples, heads, L), from the qkv projection's output
    gradient (samples, L, 3 D): GPT splits it as (L, 3, heads, head dim)."""
    samples, length, width3 = qkv_grad.shape
    parts = qkv_grad.reshape(samples, length, 3, n_head, width3 // (3 * n_head))
    return row_norms(parts[:, :, 0]).transpose(0, 2, 1)


def probe_at_scale(model, probe, c):
    """One forward and backward of the probe batch with the scores multiplied by ``c``,
    captured: per head (mean over the probe) and per attention row (queries with at least
    two keys to choose from) statistics."""
    model.zero_grad()
    with scaled_scores(model, c) as outputs, capture_attention() as rec:
        lm_loss(model, *probe).backward()
    model.zero_grad()
    record = rec.records[0]
    heads = attention_diagnostics(record)
    keys = np.isfinite(record.logits).sum(axis=-1)
    rows = keys > 1
    dq = query_row_gradients(outputs[0].grad.numpy(), model.config.n_head)
    passed = row_norms(record.grad_logits) / np.maximum(row_norms(record.grad_probs), 1e-30)
    normalized = row_entropy(record.probs) / np.log(np.maximum(keys, 2))
    return dict(c=float(c), probs=record.probs,
                heads=[dict(head=h.head, entropy=h.entropy,
                            normalized_entropy=h.normalized_entropy,
                            jacobian_norm=h.jacobian_norm, max_prob=h.max_prob,
                            saturated=h.saturated_fraction, logit_std=h.logit_std,
                            passed=float(np.mean(passed[:, i][rows[:, i]])),
                            q_grad=float(np.sqrt(np.sum(record.q_grad_norm[:, i] ** 2))),
                            k_grad=float(np.sqrt(np.sum(record.k_grad_norm[:, i] ** 2))))
                       for i, h in enumerate(heads)],
                rows=dict(normalized_entropy=normalized[rows], passed=passed[rows],
                          q_grad=dq[rows]))


def sweep(model, probe, scales):
    """probe_at_scale at every scale c."""
    return [probe_at_scale(model, probe, c) for c in scales]


def mean_over_heads(point, key):
    return float(np.mean([h[key] for h in point["heads"]]))


def band_medians(points):
    """Median |dL/dq| and share of dL/dA passed of the rows with H / log n below LOW and above
    HIGH, pooled over every scale."""
    pooled = {k: np.concatenate([p["rows"][k] for p in points])
              for k in ("normalized_entropy", "passed", "q_grad")}
    low = pooled["normalized_entropy"] < LOW
    high = pooled["normalized_entropy"] > HIGH
    return dict(low_rows=int(low.sum()), high_rows=int(high.sum()),
                low_q_grad=float(np.median(pooled["q_grad"][low])),
                high_q_grad=float(np.median(pooled["q_grad"][high])),
                low_passed=float(np.median(pooled["passed"][low])),
                high_passed=float(np.median(pooled["passed"][high])))


# ----------------------------------------------------------------------------- figures
def plot_variance(rows, path):
    """Part 1: score variance, row entropy and Jacobian norm against d, with and without
    1/sqrt(d)."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    panels = (("variance", "var(S) over all scores", "Score variance", True),
              ("normalized_entropy", "mean row entropy H / log n (1 = uniform)",
               "Attention row entropy", False),
              ("jacobian_norm", "mean ||diag(a) - a a^T||_F per row", "Softmax Jacobian norm",
               False))
    for ax, (key, ylabel, title, log) in zip(axes, panels):
        for scaled, colour, label in ((True, "tab:blue", "S = q.k / sqrt(d)"),
                                      (False, "tab:red", "S = q.k (no scaling)")):
            runs = [r for r in rows if r["scaled"] == scaled]
            ax.plot([r["d"] for r in runs], [r[key] for r in runs], marker="o", color=colour,
                    label=label)
        if key == "variance":
            ax.plot(HEAD_DIMS, HEAD_DIMS, color="grey", linestyle=":", label="d")
        ax.set_xscale("log", base=2)
        if log:
            ax.set_yscale("log", base=2)
        ax.set(xlabel="head dimension d", ylabel=ylabel, title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle(f"Random q, k, v with unit-variance entries, {KEYS} keys per query")
    _labkit.save_figure(fig, path, dpi=100)


def plot_sweep(points, path):
    """Part 2: per-head entropy and Jacobian norm, and the mean gradients relative to c = 1,
    against c."""
    plt = _labkit.pyplot()
    scales = [p["c"] for p in points]
    heads = len(points[0]["heads"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    for key, ax, ylabel in (("normalized_entropy", axes[0], "row entropy H / log n"),
                            ("jacobian_norm", axes[1], "mean softmax Jacobian norm")):
        for h in range(heads):
            ax.plot(scales, [p["heads"][h][key] for p in points], marker="o", markersize=3,
                    label=f"head {h}")
        ax.set(ylabel=ylabel)
    one = int(np.argmin([abs(math.log(c)) for c in scales]))
    for key, label in (("passed", "|dL/dS| / |dL/dA| per row"), ("q_grad", "|dL/dQ|"),
                       ("k_grad", "|dL/dK|")):
        values = np.array([mean_over_heads(p, key) for p in points])
        axes[2].plot(scales, values / values[one], marker="o", label=label)
    axes[2].set_yscale("log")
    axes[2].set(ylabel="mean over heads, relative to c = 1")
    titles = ("Attention entropy", "Softmax Jacobian", "Gradient through the softmax")
    for ax, title in zip(axes, titles):
        ax.set_xscale("log")
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set(xlabel="score scale c (S = c q k^T / sqrt(d))", title=title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    fig.suptitle("A one-layer GPT on Shakespeare: its attention scores multiplied by c")
    _labkit.save_figure(fig, path, dpi=100)


def plot_rows(points, path):
    """Part 2, every attention row at every c: its entropy against the share of dL/dA that
    reaches the scores, and against the gradient that reaches its query."""
    plt = _labkit.pyplot()
    import matplotlib.colors

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
    norm = matplotlib.colors.LogNorm(points[0]["c"], points[-1]["c"])
    for ax, key, ylabel in ((axes[0], "passed", "|dL/dS| / |dL/dA| of the row"),
                            (axes[1], "q_grad", "|dL/dq| of the row's query")):
        for p in points:
            rows = p["rows"]
            shown = ax.scatter(rows["normalized_entropy"], np.maximum(rows[key], 1e-12),
                               c=np.full(len(rows[key]), p["c"]), cmap="viridis", norm=norm,
                               s=4, alpha=0.5)
        ax.set_yscale("log")
        ax.set(xlabel="row entropy H / log n (0: one-hot, 1: uniform)", ylabel=ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_title("Share of the gradient that gets through the softmax")
    axes[1].set_title("Gradient that reaches the query")
    fig.colorbar(shown, ax=axes, label="score scale c")
    fig.suptitle("Every attention row of the probe, at every scale c (values below 1e-12 drawn "
                 "at 1e-12)")
    _labkit.save_figure(fig, path, dpi=100)


def plot_maps(points, tokens, path):
    """The first probe window's attention weights at c = 1, 10, 100, every head
    (render.plot_attention_grid)."""
    chosen = [min(points, key=lambda p: abs(math.log(p["c"] / c))) for c in MAP_SCALES]
    maps = [p["probs"][0] for p in chosen]
    render.plot_attention_grid(maps, str(path), tokens=tokens,
                               layer_names=[f"c = {p['c']:g}" for p in chosen],
                               title="Attention weights of one Shakespeare window",
                               label="attention weight")


def _readable(text):
    """Characters as tick labels: a space as a middle dot, a newline as an arrow."""
    return [{" ": "\u00b7", "\n": "\u21b5"}.get(ch, ch) for ch in text]


# ----------------------------------------------------------------------------- results page
def _variance_table(rows):
    by = {(r["d"], r["scaled"]): r for r in rows}
    return markdown_table(["d", "var(q.k)", "var(q.k / sqrt d)", "H / log n, unscaled",
                           "H / log n, scaled", "Jacobian, unscaled", "Jacobian, scaled",
                           "dL/dS share, unscaled", "dL/dS share, scaled"],
                          [[d, f"{by[d, False]['variance']:.1f}", f"{by[d, True]['variance']:.3f}",
                            f"{by[d, False]['normalized_entropy']:.3f}",
                            f"{by[d, True]['normalized_entropy']:.3f}",
                            f"{by[d, False]['jacobian_norm']:.3f}",
                            f"{by[d, True]['jacobian_norm']:.3f}",
                            f"{by[d, False]['passed']:.3f}", f"{by[d, True]['passed']:.3f}"]
                           for d in HEAD_DIMS])


def _sweep_table(points):
    return markdown_table(["c", "logit std", "H / log n", "saturated rows", "Jacobian norm",
                           "dL/dS share", "dL/dQ", "dL/dK"],
                          [[f"{p['c']:.3g}", f"{mean_over_heads(p, 'logit_std'):.2f}",
                            f"{mean_over_heads(p, 'normalized_entropy'):.3f}",
                            f"{mean_over_heads(p, 'saturated'):.2f}",
                            f"{mean_over_heads(p, 'jacobian_norm'):.4f}",
                            f"{mean_over_heads(p, 'passed'):.4f}",
                            f"{mean_over_heads(p, 'q_grad'):.2e}",
                            f"{mean_over_heads(p, 'k_grad'):.2e}"] for p in points])


def _head_table(points):
    chosen = [min(points, key=lambda p: abs(math.log(p["c"] / c))) for c in (1.0, 100.0)]
    return markdown_table(["c", "head", "H / log n", "largest weight", "Jacobian norm",
                           "dL/dS share", "dL/dQ", "dL/dK"],
                          [[f"{p['c']:g}", h["head"], f"{h['normalized_entropy']:.3f}",
                            f"{h['max_prob']:.3f}", f"{h['jacobian_norm']:.4f}",
                            f"{h['passed']:.4f}",
                            f"{h['q_grad']:.2e}", f"{h['k_grad']:.2e}"]
                           for p in chosen for h in p["heads"]])


def write_results(out, variance, training, points, bands, settings, quick, seconds):
    """The results page: both parts' tables and the figures."""
    losses = training["losses"]
    text = f"""# Module 5 lab: results

Generated by `{_labkit.command(__file__, quick)}` in
{seconds:.0f} s.

## Part 1: why the scores are divided by sqrt(d)

Random q, k, v with independent N(0, 1) entries, {settings['samples']} samples of {KEYS}
queries and {KEYS} keys each, the loss sum(O * R) with a random R. "dL/dS share" is the mean
over rows of |dL/dS| / |dL/dA|: how much of the gradient at the weights gets through the
softmax to the scores. With and without the scaling the draws are the same.

{_variance_table(variance)}

![Score variance, entropy and Jacobian against d](m5-score-variance.png)

## Part 2: a GPT on Shakespeare with its scores multiplied by c

A one-layer GPT ({MODEL['n_head']} heads, d_model {MODEL['d_model']}, head dimension
{MODEL['d_model'] // MODEL['n_head']}, context {MODEL['context']}) trained for
{settings['steps']} AdamW steps (lr {TRAINING['lr']}, batch {TRAINING['batch_size']}, seed
{TRAINING['seed']}) on the shipped Shakespeare text: training loss {losses[0]:.3f} at the
first step, {np.mean(losses[-10:]):.3f} over the last 10. Then {PROBE_WINDOWS} validation
windows run forward and backward with every score multiplied by c. Means over the four heads
(and over the probe's rows); "saturated rows" is the share of rows whose largest weight is
above 0.99; dL/dQ and dL/dK are norms over the probe, per head.

{_sweep_table(points)}

Per head at c = 1 and c = 100:

{_head_table(points)}

Every row (query) with at least two keys, pooled over all c: {bands['low_rows']} rows have
H / log n < {LOW}, {bands['high_rows']} rows have H / log n > {HIGH}.

{markdown_table(["rows", "median dL/dS share", "median dL/dq of the row"],
                [[f"H / log n < {LOW}", f"{bands['low_passed']:.2e}",
                  f"{bands['low_q_grad']:.2e}"],
                 [f"H / log n > {HIGH}", f"{bands['high_passed']:.2e}",
                  f"{bands['high_q_grad']:.2e}"]])}

![Entropy, Jacobian and gradients against c](m5-saturation-sweep.png)

![Row entropy against the gradient](m5-entropy-vs-gradient.png)

![Attention maps at c = 1, 10, 100](m5-attention-maps.png)
"""
    (out / PAGE).write_text(text)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    """Run the lab; returns its numbers: ``variance`` (part 1 rows), ``training`` (the
    model, its losses, the probe batch and its text), ``sweep`` (part 2, one point per c),
    ``bands``, ``settings``, ``seconds``."""
    args = _labkit.parse_args(__doc__.splitlines()[0], argv, threads=True, quick_help="the "
                              "reduced form: fewer samples, 40 training steps, 7 scales")
    out = _labkit.out_folder(args.out)
    settings = _settings(args.quick)
    start = time.perf_counter()
    with _labkit.threads(args.threads):
        variance = variance_part(settings["samples"])
        train_set, val_set, tokenizer = load_text_splits(shakespeare_path(), MODEL["context"])
        model, losses = train_gpt(train_set, tokenizer.vocab_size, settings["steps"])
        probe = val_set.get_batch(np.arange(PROBE_WINDOWS))
        points = sweep(model, probe, settings["scales"])
        bands = band_medians(points)
        text = tokenizer.decode(probe[0][0])
        plot_variance(variance, out / FIGURES[0])
        plot_sweep(points, out / FIGURES[1])
        plot_rows(points, out / FIGURES[2])
        plot_maps(points, _readable(text), out / FIGURES[3])
    seconds = time.perf_counter() - start
    training = dict(model=model, losses=losses, probe=probe, text=text)
    write_results(out, variance, training, points, bands, settings, args.quick, seconds)
    for r in variance:
        if r["d"] in (HEAD_DIMS[0], HEAD_DIMS[-1]):
            print(f"d = {r['d']:>3} {'scaled  ' if r['scaled'] else 'unscaled'}: var(S) "
                  f"{r['variance']:8.2f}, H/log n {r['normalized_entropy']:.3f}")
    for p in points:
        print(f"c = {p['c']:7.3g}: H/log n {mean_over_heads(p, 'normalized_entropy'):.3f}, "
              f"Jacobian {mean_over_heads(p, 'jacobian_norm'):.4f}, dL/dS share "
              f"{mean_over_heads(p, 'passed'):.4f}")
    print(f"wrote {PAGE} and {len(FIGURES)} figures to {out} ({seconds:.1f} s)")
    return dict(variance=variance, training=training, sweep=points, bands=bands,
                settings=settings, seconds=seconds)


if __name__ == "__main__":
    main()
