"""The attention lab: attention-logit growth in a small GPT at a high learning rate, and its cure
by QK-norm (Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer training
instabilities"), reproduced on a CPU in minutes.

For each seed, two character-level GPTs are trained on the shipped Shakespeare corpus with
everything equal (initial weights of the shared parameters, batches, AdamW at a constant high
learning rate without warmup, no weight decay, no gradient clipping) except ``qk_norm``: the
*unstable* variant (plain attention) and the *qk_norm* variant (a LayerNorm of each head's
queries and keys before their dot product). Every ``every`` steps the lab runs a fixed
validation batch through an AttentionMonitor (inspect/attention_monitor.py: a forward and
backward under ``capture_attention``, with the parameters' ``.grad``, the RNG state and the
model's mode put back after it) and records, per layer and head, the largest |logit| and the
mean normalized entropy H / log n of the attention rows, and the validation loss.

A run is flagged when the monitor warns, by its fixed rules, the same for every model
(logit growth: a head's max |logit| above 50, or 10 times its first record's and above 5;
entropy collapse; saturation); the flag names the first warning's layer, head and step.
docs/attention-lab.md has the measurements.

``retrograd experiment attention`` runs it (cli/experiment.py); ``run_attention_lab(config)``
is the same from Python. The run folder gets ``results.json`` and ``report.html``.
"""

import dataclasses
import json
import os
import time

import numpy as np

import retrograd as rg
from retrograd import optim
from retrograd.datasets.shakespeare import shakespeare_path
from retrograd.datasets.text import load_text_splits
from retrograd.inspect.attention_monitor import AttentionMonitor
from retrograd.inspect.report import Report, Section
from retrograd.models.gpt import GPT, GPTConfig
from retrograd.nn import functional as F
from retrograd.training.common import check_options, option_rules, say, seeded_batches
from retrograd.utils.serialization import atomic_write

__all__ = ["AttentionLabConfig", "run_attention_lab", "VARIANTS"]

VARIANTS = ("unstable", "qk_norm")


@dataclasses.dataclass
class AttentionLabConfig:
    """The lab's options: ``seeds``; ``steps`` of AdamW (``lr`` constant, no warmup, betas
    (0.9, 0.95), ``weight_decay``) on ``batch_size`` windows of ``context`` characters; the GPT's
    ``n_layer``, ``n_head``, ``d_model``; attention and validation loss recorded every
    ``every`` steps on ``probe_windows`` fixed validation windows (loss over ``eval_windows``);
    ``out`` (the
    run folder, default runs/attention-<time>) and ``progress``."""

    seeds: tuple = (0, 1, 2)
    steps: int = 400
    lr: float = 3e-2
    weight_decay: float = 0.0
    batch_size: int = 16
    context: int = 64
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    every: int = 25
    probe_windows: int = 8
    eval_windows: int = 256
    out: str = None
    progress: bool = True

    def __post_init__(self):
        self.seeds = tuple(self.seeds)
        if not self.seeds or any(not isinstance(s, int) or s < 0 for s in self.seeds):
            raise ValueError(f"experiment attention: seeds must be ints >= 0, got "
                             f"{list(self.seeds)!r}")
        check_options(self, _RULES, owner="experiment attention")


_RULES = option_rules(steps="count", batch_size="count", context="count", n_layer="count",
                      n_head="count", d_model="count", every="count", probe_windows="count",
                      eval_windows="count", lr="rate", weight_decay="rate")


def _loss(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _val_loss(model, val_set, windows, batch_size=64):
    count = min(windows, len(val_set))
    total = 0.0
    with rg.no_grad():
        for begin in range(0, count, batch_size):
            x, y = val_set.get_batch(np.arange(begin, min(begin + batch_size, count)))
            total += _loss(model, x, y).item() * len(x)
    return total / count


def _probe(record):
    """An AttentionMonitor record as the lab's probe: per layer, each head's max |logit| and
    mean H / log n."""
    return dict(step=record["step"], layers=[
        dict(module=name, max_abs_logit=[h["max_abs_logit"] for h in heads],
             normalized_entropy=[h["normalized_entropy"] for h in heads])
        for name, heads in record["layers"].items()])


def _train_variant(config, data, seed, qk_norm):
    """Train one variant of one seed; returns its result dict."""
    train_set, val_set, tokenizer = data
    rg.manual_seed(seed)
    model = GPT(GPTConfig(tokenizer.vocab_size, config.context, config.n_layer, config.n_head,
                          config.d_model, 0.0, qk_norm=qk_norm))
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    optimizer = optim.AdamW([dict(params=decay, weight_decay=config.weight_decay),
                             dict(params=rest, weight_decay=0.0)], lr=config.lr,
                            betas=(0.9, 0.95))
    probe = val_set.get_batch(np.arange(min(config.probe_windows, len(val_set))))
    monitor = AttentionMonitor(model, every=config.every, batch=probe)
    curve, losses = [], []
    start = time.perf_counter()

    def record(step):
        monitor.record(step)
        model.eval()
        curve.append(dict(step=step, val_loss=_val_loss(model, val_set, config.eval_windows)))
        model.train()

    record(0)
    batches = seeded_batches(train_set, config.batch_size, config.steps, seed)
    for step, (x, y) in enumerate(batches, 1):
        optimizer.zero_grad()
        loss = _loss(model, x, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % config.every == 0 or step == config.steps:
            record(step)
    probes = [_probe(r) for r in monitor.records]
    flag = _flag(monitor, probes)
    final = curve[-1]["val_loss"]
    peak = max((m, p["step"], i, h) for p in probes for i, layer in enumerate(p["layers"])
               for h, m in enumerate(layer["max_abs_logit"]))
    first = max(m for layer in probes[0]["layers"] for m in layer["max_abs_logit"])
    min_entropy = min(e for p in probes for layer in p["layers"]
                      for e in layer["normalized_entropy"])
    return dict(seed=seed, variant="qk_norm" if qk_norm else "unstable",
                max_logit=peak[0], max_logit_step=peak[1], max_logit_layer=peak[2],
                max_logit_head=peak[3], first_max_logit=first, growth=peak[0] / max(first, 1e-12),
                min_normalized_entropy=min_entropy, flagged=flag is not None, flag=flag,
                final_val_loss=final if np.isfinite(final) else None,
                best_val_loss=min(c["val_loss"] for c in curve),
                max_train_loss_after_100=max(losses[100:], default=None),
                diverged=not bool(np.all(np.isfinite(losses))),
                seconds=time.perf_counter() - start, probes=probes, val_curve=curve,
                train_loss=losses)


def _flag(monitor, probes):
    """The monitor's first warning, with the layer as its index in the probes, or None."""
    if not monitor.warnings:
        return None
    first = monitor.warnings[0]
    names = [layer["module"] for layer in probes[0]["layers"]]
    return dict(layer=names.index(first.layer), module=first.layer, head=first.head,
                step=first.step, kind=first.kind, value=first.value,
                message=f"layer {names.index(first.layer)} head {first.head} ({first.layer}): "
                        f"{first.kind}, {first.detail} at step {first.step}",
                warnings=[w.message for w in monitor.warnings])


def run_attention_lab(config):
    """Run the lab (see the module docstring); returns the list of result dicts (one per seed
    and variant, in seed order, unstable first)."""
    out = config.out or os.path.join("runs", f"attention-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(out, exist_ok=True)
    data = load_text_splits(shakespeare_path(), config.context)
    results = []
    for seed in config.seeds:
        for qk_norm in (False, True):
            row = _train_variant(config, data, seed, qk_norm)
            results.append(row)
            say(config, _progress_line(row))
    _write_results(out, config, results)
    _write_report(out, config, results)
    say(config, f"done: results.json and report.html in {out}")
    return results


_SUMMARY = ("seed", "variant", "first_max_logit", "max_logit", "max_logit_step",
            "max_logit_layer", "max_logit_head", "growth", "min_normalized_entropy", "flagged",
            "final_val_loss", "best_val_loss", "max_train_loss_after_100", "diverged", "seconds")


def _progress_line(row):
    flag = row["flag"]["message"] if row["flagged"] else "not flagged"
    final = "n/a" if row["final_val_loss"] is None else f"{row['final_val_loss']:.3f}"
    return (f"seed {row['seed']} {row['variant']:>8}: max |logit| {row['first_max_logit']:.2f}"
            f" -> {row['max_logit']:.1f}, min H/log n {row['min_normalized_entropy']:.3f}, "
            f"final val loss {final}; {flag} ({row['seconds']:.1f} s)")


def _write_results(out, config, results):
    document = json.dumps({"config": dataclasses.asdict(config), "results": results},
                          indent=1).encode("utf-8")
    atomic_write(os.path.join(out, "results.json"), lambda f: f.write(document),
                 owner="experiment attention")


def _write_report(out, config, results):
    report = Report("retrograd attention lab",
                    f"A {config.n_layer}-layer GPT ({config.n_head} heads, d_model "
                    f"{config.d_model}, context {config.context}) on Shakespeare, "
                    f"{config.steps} AdamW steps at a constant lr {config.lr:g} (no warmup, "
                    f"weight decay {config.weight_decay:g}), batch {config.batch_size}, seeds "
                    f"{', '.join(map(str, config.seeds))}; with and without QK-norm. A run is "
                    f"flagged when the attention monitor warns (logit growth, entropy collapse, "
                    f"saturation: inspect/attention_monitor.py's fixed rules).")
    report.add(Section.table("Results", [{k: r[k] for k in _SUMMARY} for r in results],
                             list(_SUMMARY)))
    flags = [dict(seed=r["seed"], variant=r["variant"], flag=r["flag"]["message"])
             for r in results if r["flagged"]]
    report.add(Section.table("Flags", flags, ["seed", "variant", "flag"]))
    plt = _pyplot()
    if plt is not None:
        for name, title, alt in _figures(out, plt, results):
            report.add(Section.figure(title, name, alt))
    report.write(os.path.join(out, "report.html"))


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


_COLORS = {"unstable": "tab:red", "qk_norm": "tab:blue"}


def _series(row, key):
    """(steps, the largest value over heads) and (steps, the smallest) of a probe field."""
    steps = [p["step"] for p in row["probes"]]
    values = [[v for layer in p["layers"] for v in layer[key]] for p in row["probes"]]
    return steps, [max(v) for v in values], [min(v) for v in values]


def _figures(out, plt, results):
    """Write the three figures; yields (path, title, alt)."""
    seeds = sorted({r["seed"] for r in results})
    styles = {seed: style for seed, style in zip(seeds, ["-", "--", ":", "-."] * len(seeds))}
    panels = [("attention-max-logit.png", "Max |attention logit| over heads, per step",
               "max |logit| of the worst head on the probe batch, log scale, per variant and "
               "seed", "max_abs_logit", 1, True),
              ("attention-entropy.png", "Lowest normalized attention entropy over heads",
               "the smallest mean H/log n over heads, per variant and seed",
               "normalized_entropy", 2, False)]
    for name, title, alt, key, which, log in panels:
        fig, ax = plt.subplots(figsize=(7, 4))
        for row in results:
            steps, top, bottom = _series(row, key)
            ax.plot(steps, top if which == 1 else bottom, styles[row["seed"]],
                    color=_COLORS[row["variant"]], label=f"{row['variant']} seed {row['seed']}")
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("max |logit|" if which == 1 else "min H / log n")
        _finish(plt, fig, ax, os.path.join(out, name))
        yield os.path.join(out, name), title, alt
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in results:
        curve = row["val_curve"]
        ax.plot([c["step"] for c in curve], [c["val_loss"] for c in curve], styles[row["seed"]],
                color=_COLORS[row["variant"]], label=f"{row['variant']} seed {row['seed']}")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/char)")
    path = os.path.join(out, "attention-val-loss.png")
    _finish(plt, fig, ax, path)
    yield path, "Validation loss", "validation loss per step, per variant and seed"


def _finish(plt, fig, ax, path):
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
