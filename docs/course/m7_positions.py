"""Module 7 lab: positional encodings and embeddings, seen through their gradients.

Two character-level GPTs (retrograd.models.gpt) are trained on the shipped Shakespeare text
with everything equal (seed, initial weights of every shared parameter, batches, optimizer)
except the positional encoding: the GPT's own learned table (``LearnedPositionalEmbedding``,
one trainable row per position) or the fixed sin/cos table (``SinusoidalPositionalEncoding``,
no parameters). The model's context is twice the length of the training windows, so the
learned table has rows that training never reaches.

At every step the lab reads the gradient of the token-embedding table (untied from the output
head, so that the only gradient it receives is the lookup's) and of the learned position
table: which rows received a gradient, and how large it was. It writes:

- ``m7-loss-curves.png``: validation loss of both models over training, and the loss at each
  position of windows twice as long as the training windows;
- ``m7-embedding-gradients.png``: the share of token rows that get a gradient at each step, and
  each character's mean gradient norm against its frequency in the text;
- ``m7-position-tables.png``: the sinusoidal table and the trained learned table, and the
  cosine similarity between the positions of each;
- ``m7-position-gradients.png``: the learned table's gradient and movement per position;
- ``m7-positions.md``: the tables of numbers.

Run from the repository root: ``python docs/course/m7_positions.py`` (``--quick`` for the
reduced form, ``--out DIR`` for another folder).
"""

import time

import numpy as np

import _labkit
from _labkit import markdown_table

SLUG = "m7-positions"
SEED = 0
VARIANTS = ("learned", "sinusoidal")

# The full and the reduced form: the same code path, a smaller model and fewer steps.
FULL = dict(steps=1200, eval_every=100, batch=32, train_len=32, context=64, d_model=64,
            n_layer=2, n_head=4, lr=3e-3, eval_windows=256)
QUICK = dict(steps=60, eval_every=20, batch=16, train_len=16, context=32, d_model=32,
             n_layer=1, n_head=2, lr=3e-3, eval_windows=32)


# ----------------------------------------------------------------------------- data and models
def load_data(settings):
    """(train set, validation set, long validation set, tokenizer, character counts): the
    shipped Shakespeare text cut 90/10, training windows of ``train_len`` characters, and
    validation windows of the full ``context`` (twice as long) for the loss by position."""
    from retrograd.datasets.shakespeare import shakespeare_path
    from retrograd.datasets.text import CharDataset, load_text_splits

    train_set, val_set, tokenizer = load_text_splits(shakespeare_path(), settings["train_len"])
    long_val = CharDataset(val_set.ids, settings["context"], stride=settings["context"])
    counts = np.bincount(train_set.ids, minlength=tokenizer.vocab_size)
    return train_set, val_set, long_val, tokenizer, counts


def build_model(variant, settings, vocab_size, seed=SEED):
    """The lab's GPT with the ``learned`` (the GPT's own) or ``sinusoidal`` positions; the
    token table is not tied to the output head. Both variants draw the same initial weights
    for every other parameter (the sinusoidal one replaces the learned table after it was
    drawn)."""
    import retrograd as rg
    from retrograd import nn
    from retrograd.models.gpt import GPT, GPTConfig

    if variant not in VARIANTS:
        raise ValueError(f"m7 lab: unknown positional encoding {variant!r}; use one of "
                         f"{', '.join(VARIANTS)}")
    rg.manual_seed(seed)
    config = GPTConfig(vocab_size, settings["context"], settings["n_layer"], settings["n_head"],
                       settings["d_model"], dropout=0.0, tie_weights=False)
    model = GPT(config)
    if variant == "sinusoidal":
        model.wpe = nn.SinusoidalPositionalEncoding(settings["d_model"],
                                                    max_len=settings["context"])
    return model


def lm_loss(model, x, y, reduction="mean"):
    """Cross-entropy of the next character over every position of every window."""
    from retrograd.nn import functional as F

    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                           reduction=reduction)


def validation_loss(model, val_set, windows):
    """Mean loss (nats per character) over the first ``windows`` validation windows."""
    import retrograd as rg

    x, y = val_set.get_batch(np.arange(min(windows, len(val_set))))
    with rg.no_grad():
        return lm_loss(model, x, y).item()


def loss_by_position(model, long_val, windows):
    """The mean loss at each position 0..context-1 of ``windows`` long validation windows."""
    import retrograd as rg
    from retrograd.nn import functional as F

    x, y = long_val.get_batch(np.arange(min(windows, len(long_val))))
    with rg.no_grad():
        logits = model(x)
        per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                    reduction="none")
    return per_token.numpy().reshape(x.shape).mean(axis=0)


# ----------------------------------------------------------------------------- training
def row_norms(gradient):
    """The L2 norm of each row of a (rows, D) gradient array."""
    return np.sqrt(np.sum(np.asarray(gradient, dtype=np.float64) ** 2, axis=1))


def position_table(model):
    """A copy of the model's position table: the learned weight or the fixed sin/cos buffer."""
    table = model.wpe.weight.detach() if hasattr(model.wpe, "weight") else model.wpe.pe
    return table.numpy().copy()


def train_variant(variant, settings, data):
    """Train one variant; returns what the lab reads from it at each step."""
    from retrograd import optim
    from retrograd.training.common import seeded_batches

    train_set, val_set, long_val, tokenizer, _ = data
    model = build_model(variant, settings, tokenizer.vocab_size)
    learned = variant == "learned"
    initial_table = position_table(model) if learned else None
    optimizer = optim.AdamW(model.parameters(), lr=settings["lr"], betas=(0.9, 0.99),
                            weight_decay=0.0)
    log = dict(val=[], train=[], token_row_norms=[], position_row_norms=[], time=0.0)
    start = time.perf_counter()
    for step, (x, y) in enumerate(seeded_batches(train_set, settings["batch"],
                                                 settings["steps"], SEED)):
        if step % settings["eval_every"] == 0:
            log["val"].append((step, validation_loss(model, val_set, settings["eval_windows"])))
        optimizer.zero_grad()
        loss = lm_loss(model, x, y)
        loss.backward()
        log["train"].append(loss.item())
        log["token_row_norms"].append(row_norms(model.wte.weight.grad.numpy()))
        if learned:
            log["position_row_norms"].append(row_norms(model.wpe.weight.grad.numpy()))
        optimizer.step()
    log["val"].append((settings["steps"], validation_loss(model, val_set,
                                                          settings["eval_windows"])))
    log["time"] = time.perf_counter() - start
    log["by_position"] = loss_by_position(model, long_val, settings["eval_windows"])
    log["table"] = position_table(model)
    log["initial_table"] = initial_table
    log["position_parameters"] = sum(p.numel() for p in model.wpe.parameters())
    log["token_row_norms"] = np.array(log["token_row_norms"])
    log["position_row_norms"] = np.array(log["position_row_norms"]) if learned else None
    log["model"] = model
    return log


# ----------------------------------------------------------------------------- findings
def embedding_findings(log, counts, chars):
    """Per step: the share of token rows with a nonzero gradient; per character: its count in
    the training text, the share of steps it got a gradient and its mean gradient norm."""
    norms = log["token_row_norms"]                       # (steps, V)
    received = norms > 0
    per_char = [dict(char=chars[i], count=int(counts[i]), steps_with_gradient=
                     float(received[:, i].mean()), mean_norm=float(norms[:, i].mean()))
                for i in range(len(chars))]
    present = counts > 0
    slope = np.polyfit(np.log10(counts[present & (norms.mean(0) > 0)]),
                       np.log10(norms.mean(0)[present & (norms.mean(0) > 0)]), 1)[0]
    return dict(row_norms=norms, rows_with_gradient=received.mean(axis=1),
                rows_reached_so_far=np.logical_or.accumulate(received, axis=0).mean(axis=1),
                per_char=per_char,
                never=[chars[i] for i in np.flatnonzero(~received.any(axis=0))],
                log_log_slope=float(slope))


def position_findings(log, settings):
    """For the learned table: the largest gradient any row beyond the training length ever
    got, how far those rows moved from their initial values, and the rows' mean gradient."""
    cut = settings["train_len"]
    norms = log["position_row_norms"]
    moved = row_norms(log["table"] - log["initial_table"])
    return dict(max_gradient_beyond=float(norms[:, cut:].max()),
                max_moved_beyond=float(moved[cut:].max()),
                min_moved_within=float(moved[:cut].min()),
                mean_gradient=norms.mean(axis=0), moved=moved)


def summarize(logs, settings, data):
    """The numbers of the lab, as a dict (what main returns)."""
    _, _, _, tokenizer, counts = data
    learned, sinusoidal = logs["learned"], logs["sinusoidal"]
    cut = settings["train_len"]
    result = dict(settings=settings, vocab_size=tokenizer.vocab_size, counts=counts,
                  chars=tokenizer.chars, variants={})
    for name, log in logs.items():
        result["variants"][name] = dict(
            final_val_loss=log["val"][-1][1], best_val_loss=min(v for _, v in log["val"]),
            val_curve=log["val"], train_losses=log["train"],
            loss_within=float(log["by_position"][:cut].mean()),
            loss_beyond=float(log["by_position"][cut:].mean()),
            by_position=log["by_position"], position_parameters=log["position_parameters"],
            seconds=log["time"], table=log["table"])
    result["embedding"] = embedding_findings(learned, counts, tokenizer.chars)
    result["positions"] = position_findings(learned, settings)
    result["learned_initial_table"] = learned["initial_table"]
    result["sinusoidal_requires_grad"] = bool(sinusoidal["model"].wpe.pe.requires_grad)
    result["sinusoidal_grad"] = sinusoidal["model"].wpe.pe.grad
    result["same_token_gradients"] = bool(np.array_equal(learned["token_row_norms"] > 0,
                                                         sinusoidal["token_row_norms"] > 0))
    result["scales"] = dict(token_row=float(row_norms(learned["model"].wte.weight.detach().numpy())
                                            .mean()),
                            learned_initial_row=float(row_norms(learned["initial_table"])
                                                      .mean()),
                            sinusoidal_row=float(row_norms(sinusoidal["table"]).mean()))
    return result


# ----------------------------------------------------------------------------- figures
def char_name(char):
    """A character as the figures and tables show it: 'e', space, newline."""
    return {" ": "space", "\n": "newline"}.get(char, repr(char))


def cosine_similarity(table):
    """(P, P) cosine similarity between the rows (positions) of a (P, D) table."""
    unit = table / np.maximum(row_norms(table)[:, None], 1e-12)
    return unit @ unit.T


def plot_loss_curves(result, path):
    plt = _labkit.pyplot()
    cut = result["settings"]["train_len"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    for name, colour in zip(VARIANTS, ("tab:blue", "tab:orange")):
        variant = result["variants"][name]
        steps, losses = zip(*variant["val_curve"])
        left.plot(steps, losses, "o-", color=colour, label=f"{name}: validation")
        left.plot(_smooth(variant["train_losses"]), color=colour, alpha=0.35,
                  label=f"{name}: training (smoothed)")
        right.plot(variant["by_position"], color=colour, label=name)
    left.set(title="Same seed, same batches: loss over training", xlabel="step",
             ylabel="cross-entropy (nats per character)")
    left.legend()
    right.axvline(cut - 0.5, color="grey", ls="--", label=f"training windows end ({cut})")
    right.set(title="Loss by position in windows twice the training length",
              xlabel="position in the window", ylabel="mean cross-entropy")
    right.legend()
    _labkit.save_figure(fig, path)


def _smooth(values, width=20):
    values = np.asarray(values, dtype=np.float64)
    width = max(1, min(width, len(values) // 4))
    return np.convolve(values, np.ones(width) / width, mode="valid")


def plot_embedding_gradients(result, path):
    plt = _labkit.pyplot()
    emb = result["embedding"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    per_step = 100 * emb["rows_with_gradient"]
    left.plot(per_step, color="tab:blue", label="rows with a gradient in this step")
    left.plot(100 * emb["rows_reached_so_far"], color="tab:green",
              label="rows that got a gradient in some step so far")
    left.axhline(per_step.mean(), color="tab:blue", ls="--", lw=1,
                 label=f"mean per step: {per_step.mean():.0f}%")
    left.set(title="Token-embedding rows that receive a gradient",
             xlabel="step", ylabel=f"% of the {result['vocab_size']} rows", ylim=(0, 105))
    left.legend(loc="lower right")
    _plot_norm_by_frequency(right, fig, emb)
    _labkit.save_figure(fig, path)


def _plot_norm_by_frequency(ax, fig, emb):
    """Mean gradient norm of each character's row against its count, log-log; characters
    whose row never got a gradient sit on the floor line."""
    rows = [c for c in emb["per_char"] if c["count"] > 0]
    counts = np.array([c["count"] for c in rows])
    norms = np.array([c["mean_norm"] for c in rows])
    floor = norms[norms > 0].min() / 10
    shown = np.where(norms > 0, norms, floor)
    share = np.array([c["steps_with_gradient"] for c in rows])
    points = ax.scatter(counts, shown, c=share, cmap="viridis", vmin=0, vmax=1,
                        edgecolors="black", linewidths=0.3)
    if (norms == 0).any():
        ax.axhline(floor, color="grey", ls=":", lw=1)
        ax.text(counts.max(), floor * 1.3, "never received a gradient", ha="right",
                va="bottom", fontsize=9, color="grey")
    by_count = sorted(rows, key=lambda c: c["count"])
    for rank, c in enumerate(by_count[:2] + by_count[-2:]):
        offset = (-28, 6) if rank >= 2 else (6, 6)
        ax.annotate(char_name(c["char"]), (c["count"], max(c["mean_norm"], floor)),
                    textcoords="offset points", xytext=offset, fontsize=9)
    ax.set_ylim(floor / 2, shown.max() * 4)            # room for the labels at the top
    ax.set(xscale="log", yscale="log", xlabel="count of the character in the training text",
           ylabel="mean gradient norm of its row per step",
           title=f"Rare characters: small, rare gradients (log-log slope "
                 f"{emb['log_log_slope']:.2f})")
    fig.colorbar(points, ax=ax, label="share of steps with a gradient")


def plot_position_tables(result, path):
    plt = _labkit.pyplot()
    cut = result["settings"]["train_len"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), dpi=100)
    for column, name in enumerate(VARIANTS):
        table = result["variants"][name]["table"]
        image = axes[0, column].imshow(table, aspect="auto", cmap="RdBu_r",
                                       vmin=-np.abs(table).max(), vmax=np.abs(table).max())
        fig.colorbar(image, ax=axes[0, column])
        when = "after training" if name == "learned" else "fixed"
        axes[0, column].set(title=f"{name} table ({when})", xlabel="dimension",
                            ylabel="position")
        similarity = axes[1, column].imshow(cosine_similarity(table), cmap="RdBu_r",
                                            vmin=-1, vmax=1)
        fig.colorbar(similarity, ax=axes[1, column])
        axes[1, column].set(title=f"{name}: cosine similarity of positions",
                            xlabel="position", ylabel="position")
    axes[0, 0].axhline(cut - 0.5, color="black", ls="--")
    axes[0, 0].text(1, cut + 1, "rows never trained", va="top", fontsize=9)
    _labkit.save_figure(fig, path)


def plot_position_gradients(result, path):
    plt = _labkit.pyplot()
    cut = result["settings"]["train_len"]
    positions = result["positions"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    left.bar(np.arange(len(positions["mean_gradient"])), positions["mean_gradient"],
             color="tab:blue")
    left.set(title="Learned table: mean gradient norm of each row", xlabel="position",
             ylabel="mean ||dL/dW_pos[t]|| per step")
    right.bar(np.arange(len(positions["moved"])), positions["moved"], color="tab:green")
    right.set(title="Learned table: how far each row moved in training", xlabel="position",
              ylabel="||W_pos[t] after - before||")
    for ax in (left, right):
        ax.axvline(cut - 0.5, color="grey", ls="--", label=f"longest training window ({cut})")
        ax.legend()
    _labkit.save_figure(fig, path)


FIGURES = {"m7-loss-curves.png": plot_loss_curves,
           "m7-embedding-gradients.png": plot_embedding_gradients,
           "m7-position-tables.png": plot_position_tables,
           "m7-position-gradients.png": plot_position_gradients}


# ----------------------------------------------------------------------------- results page
def results_page(result, command, seconds):
    s = result["settings"]
    cut = s["train_len"]
    variants = result["variants"]
    emb, pos, scales = result["embedding"], result["positions"], result["scales"]
    chars = sorted((c for c in emb["per_char"] if c["count"] > 0), key=lambda c: -c["count"])
    shown = chars[:5] + chars[-5:]
    parts = [
        "# Module 7 lab results: positional encodings and embeddings",
        f"Generated by `{command}` in {seconds:.0f} s. GPT with {s['n_layer']} block(s), "
        f"d_model {s['d_model']}, {s['n_head']} heads, context {s['context']}, untied token "
        f"table of {result['vocab_size']} characters; {s['steps']} AdamW steps (lr {s['lr']}, "
        f"no weight decay) on batches of {s['batch']} windows of {cut} characters of the "
        f"shipped Shakespeare text; validation loss over {s['eval_windows']} held-out windows.",
        "## Learned vs fixed positions",
        markdown_table(
            ["positions", "trainable position parameters", "final validation loss",
             "best validation loss", f"loss at positions 0-{cut - 1}",
             f"loss at positions {cut}-{s['context'] - 1} (never trained)"],
            [[name, v["position_parameters"], f"{v['final_val_loss']:.4f}",
              f"{v['best_val_loss']:.4f}", f"{v['loss_within']:.4f}",
              f"{v['loss_beyond']:.4f}"]
             for name, v in variants.items()]),
        "## Where the position tables get gradient",
        markdown_table(["quantity", "value"], [
            ["sinusoidal table: requires_grad", result["sinusoidal_requires_grad"]],
            ["sinusoidal table: .grad after training", result["sinusoidal_grad"]],
            [f"learned table: largest row gradient norm at positions >= {cut}, any step",
             f"{pos['max_gradient_beyond']:.3g}"],
            [f"learned table: largest movement of a row at positions >= {cut}",
             f"{pos['max_moved_beyond']:.3g}"],
            [f"learned table: smallest movement of a row at positions < {cut}",
             f"{pos['min_moved_within']:.3g}"]]),
        "## The token table's gradient",
        markdown_table(["quantity", "value"], [
            ["mean share of token rows with a nonzero gradient per step",
             f"{100 * emb['rows_with_gradient'].mean():.1f}%"],
            ["smallest share in one step", f"{100 * emb['rows_with_gradient'].min():.1f}%"],
            ["characters whose row never got a gradient",
             ", ".join(char_name(c) for c in emb["never"]) or "none"],
            ["slope of log(mean gradient norm) against log(count)",
             f"{emb['log_log_slope']:.2f}"],
            ["same rows with gradient in both variants, every step",
             result["same_token_gradients"]]]),
        "The five most frequent and the five rarest characters of the training text:",
        markdown_table(["character", "count in training text", "steps with a gradient",
                        "mean gradient norm per step"],
                       [[char_name(c["char"]), c["count"], f"{100 * c['steps_with_gradient']:.1f}%",
                         f"{c['mean_norm']:.3g}"] for c in shown]),
        "## Scale of the vectors that are added",
        markdown_table(["vector", "mean L2 norm"], [
            ["token embedding row (after training)", f"{scales['token_row']:.3f}"],
            ["learned position row (at initialization, N(0, 0.02^2))",
             f"{scales['learned_initial_row']:.3f}"],
            ["sinusoidal position row (fixed)", f"{scales['sinusoidal_row']:.3f}"]]),
    ]
    return _labkit.paragraphs(parts)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    """Run the lab; returns the dict of its numbers (see summarize)."""
    args = _labkit.parse_args("Module 7 lab: learned vs fixed positional encodings and the "
                              "gradient of embeddings.", argv, threads=True)
    started = time.perf_counter()
    with _labkit.threads(args.threads):
        return run(args, started)


def run(args, started):
    """The lab's body: train, summarize, draw, write the results page."""
    settings = dict(QUICK if args.quick else FULL)
    out = _labkit.out_folder(args.out)
    data = load_data(settings)
    logs = {variant: train_variant(variant, settings, data) for variant in VARIANTS}
    result = summarize(logs, settings, data)
    _labkit.write_figures(FIGURES, result, out)
    command = _labkit.command(__file__, args.quick)
    seconds = time.perf_counter() - started
    (out / f"{SLUG}.md").write_text(results_page(result, command, seconds))
    for name, variant in result["variants"].items():
        print(f"{name:>10}: validation loss {variant['final_val_loss']:.3f}, beyond the "
              f"training length {variant['loss_beyond']:.3f}")
    print(f"token rows with gradient per step: "
          f"{100 * result['embedding']['rows_with_gradient'].mean():.1f}% on average; "
          f"wrote {len(FIGURES)} figures and {SLUG}.md to {out} in {seconds:.1f} s")
    result["seconds"] = seconds
    return result


if __name__ == "__main__":
    main()
