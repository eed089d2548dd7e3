"""Module 9 lab: debugging three broken models with retrograd's tools.

Each case plants one realistic bug in a small model trained on real data, shows its symptom,
finds it with a tool that names the layer, and trains the fixed model beside it:

1. **A cut branch** (digits CNN): the forward keeps a detached copy of its features for a
   plot, and by mistake passes that copy on, so ``conv1`` and ``conv2`` never learn. Symptom:
   a loss that falls, but not far. Tools: ``GradientMonitor`` (those layers have no gradient
   and an update:data ratio of exactly 0) and ``saliency`` (no gradient reaches the input).
2. **A missing eps** (digits CNN): a hand-written per-map standardization divides by the
   map's std, which is 0 for a map the ReLU zeroed. Symptom: the loss is NaN. Tools: ``lint``
   (flags the division before anything runs) and the NaN/Inf guard (stops at the op).
3. **A mask of the wrong convention** (GPT on Shakespeare): block 1's attention builds its
   causal mask as ``nn.MultiheadAttention`` wants it (True = hide) and passes it to
   ``scaled_dot_product_attention`` (True = attend), so every position reads the future.
   Symptom: a validation loss too good to be true, and gibberish when sampling. Tools:
   ``audit_model`` (a fully masked query in ``blocks.1.attn``) and ``capture_attention`` (the
   attention weight on future keys, per layer and head).

Last, the profiler shows where the healthy GPT's training step spends its time, by module
and phase. Outputs: ``m9-loss-curves.png``, ``m9-gradient-flow.png``, ``m9-saliency.png``,
``m9-attention-maps.png`` and ``m9-debugging.md``.

Run from the repository root: ``python docs/course/m9_debugging.py`` (``--quick`` for the
reduced form, ``--out DIR`` for another folder).
"""

import os
import time

import numpy as np

import retrograd as rg
from retrograd import nn
from retrograd.models.gpt import CausalSelfAttention
from retrograd.nn import functional as F

import _labkit
from _labkit import markdown_table

SLUG = "m9-debugging"
SEED = 0
CNN_CASES = ("healthy", "cut branch", "no eps")

FULL = dict(cnn_steps=300, cnn_batch=64, cnn_lr=0.05, every=25, gpt_steps=600, gpt_batch=16,
            context=64, d_model=64, n_layer=2, n_head=4, gpt_lr=3e-3, eval_every=50,
            eval_windows=128, sample_length=160)
QUICK = dict(cnn_steps=40, cnn_batch=64, cnn_lr=0.05, every=10, gpt_steps=60, gpt_batch=16,
             context=32, d_model=32, n_layer=2, n_head=2, gpt_lr=3e-3, eval_every=20,
             eval_windows=32, sample_length=60)


# ============================================================================ the digits CNN
class MapStandardize(nn.Module):
    """Standardizes each feature map over its H x W values: (h - mean) / (std + eps).

    ``eps=None`` is case 2's planted bug: the division by the std has no eps, and a map that
    a ReLU zeroed has std 0, so it computes 0 / 0."""

    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, h):
        centred = h - h.mean(dim=(2, 3), keepdim=True)
        spread = h.std(dim=(2, 3), keepdim=True)
        if self.eps is None:
            return centred / spread
        return centred / (spread + self.eps)


class DigitsCNN(nn.Module):
    """conv1 -> ReLU -> conv2 (stride 2) -> ReLU -> norm -> conv3 (stride 2) -> ReLU -> fc, on
    1 x 8 x 8 digits. The forward keeps ``features``, a detached copy of the normalized maps,
    for plotting. ``cut_branch=True`` is case 1's planted bug: the detached copy, not the
    maps, goes on to conv3, so no gradient reaches conv1 and conv2."""

    def __init__(self, cut_branch=False, eps=1e-5):
        super().__init__()
        self.cut_branch = cut_branch
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.norm = MapStandardize(eps)
        self.conv3 = nn.Conv2d(32, 32, 3, stride=2, padding=1)
        self.fc = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        h = self.norm(h)
        self.features = h.detach()            # kept to draw the maps later
        if self.cut_branch:
            h = self.features                 # the planted bug: the detached copy goes on
        return self.fc(F.relu(self.conv3(h)).flatten(1))


def build_cnn(case, seed=SEED):
    """The digits CNN of one case: ``healthy``, ``cut branch`` or ``no eps``."""
    if case not in CNN_CASES:
        raise ValueError(f"m9 lab: unknown CNN case {case!r}; use one of {', '.join(CNN_CASES)}")
    rg.manual_seed(seed)
    return DigitsCNN(cut_branch=case == "cut branch", eps=None if case == "no eps" else 1e-5)


def load_digits():
    """(train x, train y, test x, test y): the shipped digits, standardized with the training
    set's mean and std, as (N, 1, 8, 8) float32 Tensors and int64 labels."""
    from retrograd.datasets.digits import Digits

    train, test = Digits(train=True), Digits(train=False)
    mean, std = float(train.data.mean()), float(train.data.std())

    def images(data):
        return rg.tensor(((data - mean) / std)[:, None].astype(np.float32))

    return (images(train.data), rg.tensor(np.asarray(train.targets)), images(test.data),
            rg.tensor(np.asarray(test.targets)))


def digit_batches(count, batch, steps, seed=SEED):
    """``steps`` index arrays of ``batch`` training images, drawn without replacement."""
    rng = np.random.default_rng(seed)
    return [rng.choice(count, batch, replace=False) for _ in range(steps)]


def accuracy(model, x, y):
    with rg.no_grad():
        return float((model(x).numpy().argmax(axis=1) == y.numpy()).mean())


def train_cnn(case, settings, digits):
    """Train one CNN case under a GradientMonitor; stops at the first non-finite loss."""
    from retrograd.inspect import GradientMonitor

    train_x, train_y, test_x, test_y = digits
    model = build_cnn(case)
    optimizer = rg.optim.SGD(model.parameters(), lr=settings["cnn_lr"], momentum=0.9)
    monitor = GradientMonitor(model, every=settings["every"])
    losses = []
    for indices in digit_batches(len(train_y), settings["cnn_batch"], settings["cnn_steps"]):
        picked = rg.tensor(indices)
        with monitor.step():
            optimizer.zero_grad()
            loss = F.cross_entropy(model(train_x[picked]), train_y[picked])
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
        if not np.isfinite(losses[-1]):
            break
    monitor.close()
    return dict(model=model, monitor=monitor, losses=losses,
                test_accuracy=accuracy(model, test_x, test_y))


def gradient_flow(monitor):
    """From the monitor's last record: each layer's gradient RMS (None: no gradient), its
    largest update:data ratio, and the layers that ran without any gradient."""
    record = monitor.records[-1]
    layer_stats = monitor.flow.layer_gradients(record)
    rms = {layer: (layer_stats[layer].rms if layer in layer_stats else None)
           for layer in monitor.flow.layers}
    updates = {}
    for name, ratio in record.updates.items():
        layer = name.rpartition(".")[0]
        if ratio is not None:
            updates[layer] = max(ratio, updates.get(layer, 0.0))
    return dict(rms=rms, updates=updates, flags=[str(f) for f in monitor.flags],
                without_gradient=[layer for layer, value in rms.items() if value is None],
                not_updated=[layer for layer, value in updates.items() if value == 0.0])


def saliency_or_error(model, x):
    """The saliency maps of ``x`` (predicted class), or the error saliency raised."""
    from retrograd.inspect import saliency

    try:
        return saliency(model, x).numpy(), None
    except RuntimeError as error:
        return None, str(error)


def lint_findings(model, x):
    """lint's findings on one forward: (pattern, op, module, file:line) per finding."""
    from retrograd.inspect import lint

    return [(f.pattern, f.op, f.module, str(f.line) if f.line else "line unknown")
            for f in lint(model, x)]


def nan_guard_report(model, x, y):
    """Run one forward and backward under the NaN/Inf guard; returns where it stopped (op,
    phase, module, file:line, the message's first line) or None when nothing was found."""
    from retrograd.autograd import AnomalyError
    from retrograd.inspect import nan_guard

    try:
        with np.errstate(all="ignore"), nan_guard():
            F.cross_entropy(model(x), y).backward()
    except AnomalyError as error:
        site = (f"{os.path.basename(error.site.filename)}:{error.site.lineno}"
                if error.site else "unknown")
        return dict(op=error.op, phase=error.phase, module=error.module_path, site=site,
                    message=str(error).splitlines()[0])
    finally:
        model.zero_grad()
    return None


def zero_variance_maps(model, x):
    """How many (image, channel) maps reach the norm with std exactly 0."""
    with rg.no_grad():
        h = F.relu(model.conv2(F.relu(model.conv1(x)))).numpy()
    return int(np.sum(h.std(axis=(2, 3)) == 0))


def run_cnn_cases(settings, digits):
    """Cases 1 and 2: the healthy CNN, the cut branch and the missing eps, with each tool."""
    train_x, train_y, test_x, _ = digits
    first = rg.tensor(digit_batches(len(train_y), settings["cnn_batch"], 1)[0])
    runs = {}
    for case in CNN_CASES:
        probe = build_cnn(case)
        run = dict(lint=lint_findings(probe, train_x[first]),
                   nan_guard=nan_guard_report(probe, train_x[first], train_y[first]),
                   zero_variance_maps=zero_variance_maps(probe, train_x[first]))
        run.update(train_cnn(case, settings, digits))
        run["flow"] = gradient_flow(run["monitor"])
        run["saliency"], run["saliency_error"] = saliency_or_error(run["model"], test_x[:6])
        runs[case] = run
    return runs


# ============================================================================ the GPT
class ExplicitMaskAttention(CausalSelfAttention):
    """The GPT's causal self-attention with its mask built by hand and passed as
    ``attn_mask``, as code ported from ``nn.MultiheadAttention`` does.

    The two conventions of a boolean mask differ: ``nn.MultiheadAttention`` hides the keys
    where the mask is True, ``scaled_dot_product_attention`` attends where it is True.
    ``convention="sdpa"`` passes the keys to keep (correct, the same as ``is_causal=True``);
    ``convention="mha"`` is case 3's planted bug: it passes the keys to hide, so each query
    attends to the later positions only, and the last query to none."""

    def __init__(self, config, convention="sdpa"):
        super().__init__(config)
        if convention not in ("sdpa", "mha"):
            raise ValueError(f"ExplicitMaskAttention: convention must be 'sdpa' or 'mha', got "
                             f"{convention!r}")
        self.convention = convention

    def forward(self, x):
        batch, length, width = x.shape
        head_dim = width // self.n_head
        heads = self.qkv(x).reshape(batch, length, 3, self.n_head, head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = heads.unbind(0)
        future = np.triu(np.ones((length, length), dtype=bool), k=1)   # key after the query
        keep = future if self.convention == "mha" else ~future
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=rg.tensor(keep))
        return self.resid_dropout(self.proj(y.transpose(1, 2).reshape(batch, length, width)))


def build_gpt(case, settings, vocab_size, seed=SEED):
    """The GPT whose block 1 attends through ExplicitMaskAttention: ``healthy`` (the sdpa
    convention) or ``leaky mask`` (the MultiheadAttention convention, the bug)."""
    from retrograd.models.gpt import GPT, GPTConfig

    if case not in ("healthy", "leaky mask"):
        raise ValueError(f"m9 lab: unknown GPT case {case!r}; use 'healthy' or 'leaky mask'")
    rg.manual_seed(seed)
    config = GPTConfig(vocab_size, settings["context"], settings["n_layer"], settings["n_head"],
                       settings["d_model"], dropout=0.0)
    model = GPT(config)
    attention = ExplicitMaskAttention(config, "mha" if case == "leaky mask" else "sdpa")
    attention.load_state_dict(model.blocks[1].attn.state_dict())
    model.blocks[1].attn = attention
    return model


def lm_loss(model, x, y):
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def validation_loss(model, val_set, windows):
    x, y = val_set.get_batch(np.arange(min(windows, len(val_set))))
    with rg.no_grad():
        return lm_loss(model, x, y).item()


def train_gpt(case, settings, text):
    """Train one GPT case; returns its validation curve, model and a sample of its text."""
    from retrograd.training.common import seeded_batches

    train_set, val_set, tokenizer = text
    model = build_gpt(case, settings, tokenizer.vocab_size)
    optimizer = rg.optim.AdamW(model.parameters(), lr=settings["gpt_lr"], betas=(0.9, 0.99),
                               weight_decay=0.0)
    curve = []
    for step, (x, y) in enumerate(seeded_batches(train_set, settings["gpt_batch"],
                                                 settings["gpt_steps"], SEED)):
        if step % settings["eval_every"] == 0:
            curve.append((step, validation_loss(model, val_set, settings["eval_windows"])))
        optimizer.zero_grad()
        lm_loss(model, x, y).backward()
        optimizer.step()
    curve.append((settings["gpt_steps"], validation_loss(model, val_set,
                                                         settings["eval_windows"])))
    prompt = rg.tensor(tokenizer.encode("ROMEO:\n")[None, :])
    generated = model.generate(prompt, settings["sample_length"],
                               generator=np.random.default_rng(SEED))
    return dict(model=model, curve=curve, sample=tokenizer.decode(generated[0]))


def attention_findings(model, x, y):
    """capture_attention's weights per layer, the share of each head's weight on keys after
    the query, and audit_model's verdict on each attention call's mask."""
    from retrograd.inspect import audit_model, capture_attention

    with capture_attention() as recorder:
        lm_loss(model, x, y).backward()
    model.zero_grad()
    future_share, probs = {}, {}
    for path in recorder.paths():
        weights = recorder[path][0].probs                     # (samples, heads, L, S)
        future = np.triu(np.ones(weights.shape[-2:], dtype=bool), k=1)
        future_share[path] = (weights * future).sum(axis=-1).mean(axis=(0, 2)).tolist()
        probs[path] = weights[0]
    with rg.no_grad():
        audits = [(path, audit.counts["fully_masked"], audit.lines[:1])
                  for path, _, audit in audit_model(model, x)]
    return dict(future_share=future_share, probs=probs, audits=audits)


def profile_step(model, x, y, rows=8):
    """The profiler's rows of one training step of ``model``, by module, op and phase: the
    ``rows`` with the most self time, and the step's wall time."""
    from retrograd.profiler import profile

    with profile(with_flops=False) as prof:
        lm_loss(model, x, y).backward()
    model.zero_grad()
    averages = prof.key_averages(group_by_module=True)
    ranked = sorted(averages, key=lambda r: -r.self_cpu_time_total)
    top = [dict(op=r.key, phase=r.phase, module=r.module or "-", calls=r.count,
                ms=r.self_cpu_time_total / 1e3, flops=r.flops) for r in ranked[:rows]]
    return dict(rows=top, all_rows=[dict(op=r.key, phase=r.phase, module=r.module,
                                         flops=r.flops) for r in averages],
                total_ms=averages.self_cpu_time_total / 1e3)


def run_gpt_cases(settings):
    """Case 3: the leaky mask and the healthy GPT, each trained and inspected."""
    from retrograd.datasets.shakespeare import shakespeare_path
    from retrograd.datasets.text import load_text_splits

    text = load_text_splits(shakespeare_path(), settings["context"])
    probe = text[1].get_batch(np.arange(4))
    runs = {}
    for case in ("healthy", "leaky mask"):
        run = train_gpt(case, settings, text)
        run["attention"] = attention_findings(run["model"], *probe)
        runs[case] = run
    runs["healthy"]["profile"] = profile_step(runs["healthy"]["model"],
                                              *text[0].get_batch(np.arange(
                                                  settings["gpt_batch"]) * 997))
    return runs


# ============================================================================ summary
def summarize(settings, cnn, gpt):
    """The lab's numbers, as the dict main returns."""
    result = dict(settings=settings, cnn={}, gpt={})
    for case, run in cnn.items():
        finite = [i for i, loss in enumerate(run["losses"]) if not np.isfinite(loss)]
        result["cnn"][case] = dict(
            losses=run["losses"], final_loss=run["losses"][-1],
            first_nonfinite_step=finite[0] if finite else None,
            test_accuracy=run["test_accuracy"], lint=run["lint"], nan_guard=run["nan_guard"],
            zero_variance_maps=run["zero_variance_maps"], flow=run["flow"],
            saliency=run["saliency"], saliency_error=run["saliency_error"], model=run["model"])
    for case, run in gpt.items():
        result["gpt"][case] = dict(val_curve=run["curve"], final_val_loss=run["curve"][-1][1],
                                   sample=run["sample"], **run["attention"])
    result["profile"] = gpt["healthy"]["profile"]
    return result


# ============================================================================ figures
def plot_loss_curves(result, path):
    plt = _labkit.pyplot()
    cnn, gpt = result["cnn"], result["gpt"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), dpi=100)
    for case, colour in (("healthy", "tab:green"), ("cut branch", "tab:red")):
        axes[0].plot(cnn[case]["losses"], color=colour, alpha=0.25)
        axes[0].plot(*_smooth(cnn[case]["losses"]), color=colour,
                     label=f"{case} (test accuracy {cnn[case]['test_accuracy']:.1%})")
    axes[0].set(title="1. Cut branch: the loss looks normal", xlabel="step",
                ylabel="training loss (smoothed over 10 steps)", yscale="log")
    axes[1].plot(*_smooth(cnn["healthy"]["losses"]), color="tab:green",
                 label="healthy (eps = 1e-5)")
    nan_step = cnn["no eps"]["first_nonfinite_step"]
    if nan_step is not None:
        axes[1].axvline(nan_step, color="tab:red", lw=3,
                        label=f"no eps: loss is NaN at step {nan_step}")
    axes[1].set(title="2. Missing eps: NaN", xlabel="step", ylabel="training loss",
                yscale="log")
    for case, colour in (("healthy", "tab:green"), ("leaky mask", "tab:red")):
        steps, losses = zip(*gpt[case]["val_curve"])
        axes[2].plot(steps, losses, "o-", color=colour, label=case)
    axes[2].set(title="3. Leaky mask: too good to be true", xlabel="step",
                ylabel="validation loss (nats per character)")
    for ax in axes:
        ax.legend(fontsize=9)
    _labkit.save_figure(fig, path)


def _smooth(values, width=10):
    """(steps, moving average) of a loss curve; the steps are those at each window's end."""
    values = np.asarray(values, dtype=np.float64)
    width = max(1, min(width, len(values) // 4))
    return np.arange(width - 1, len(values)), np.convolve(values, np.ones(width) / width,
                                                          mode="valid")


def plot_gradient_flow(result, path):
    plt = _labkit.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), dpi=100)
    for ax, field, title in ((left, "rms", "Gradient RMS per layer (GradientMonitor)"),
                             (right, "updates", "Update:data ratio per layer")):
        _flow_bars(ax, result["cnn"], field)
        ax.set(title=title, yscale="log", xlabel="layer, input side first")
        ax.legend()
    right.axhline(1e-3, color="grey", ls=":", lw=1)
    _labkit.save_figure(fig, path)


def _flow_bars(ax, cnn, field):
    """Bars of one monitor field for the healthy and the cut-branch CNN; a missing or zero
    value is written where its bar would be."""
    layers = list(cnn["healthy"]["flow"]["rms"])
    positions = np.arange(len(layers))
    values = [cnn[case]["flow"][field] for case in ("healthy", "cut branch")]
    floor = min(v for series in values for v in series.values() if v) / 10
    for offset, case, series, colour in ((-0.2, "healthy", values[0], "tab:green"),
                                         (0.2, "cut branch", values[1], "tab:red")):
        heights = [series.get(layer) or 0.0 for layer in layers]
        ax.bar(positions + offset, heights, width=0.4, color=colour, label=case)
        for x, layer in zip(positions + offset, layers):
            value = series.get(layer)
            if not value:
                ax.text(x, floor * 1.5, "none" if value is None else "0", ha="center",
                        color=colour, fontsize=10, fontweight="bold")
    ax.set_ylim(bottom=floor)
    ax.set_xticks(positions, layers)


def plot_saliency(result, path):
    plt = _labkit.pyplot()
    healthy = result["cnn"]["healthy"]
    images, labels = result["test_images"], result["test_labels"]
    fig, axes = plt.subplots(2, len(images), figsize=(12, 5.2), dpi=100)
    for i, image in enumerate(images):
        axes[0, i].imshow(image[0], cmap="gray_r")
        axes[0, i].set_title(f"label {labels[i]}")
        axes[1, i].imshow(healthy["saliency"][i], cmap="hot")
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("test digit")
    axes[1, 0].set_ylabel("|d score / d pixel|")
    error = result["cnn"]["cut branch"]["saliency_error"]
    verdict = (f"the cut-branch CNN has none: saliency raises\n'{_shorten(error, 90)}'"
               if error else "the cut-branch CNN has maps too")
    fig.suptitle("Saliency of the healthy CNN (predicted class); " + verdict, fontsize=11)
    _labkit.save_figure(fig, path)


def _shorten(text, width):
    text = text.split(" (")[0]
    return text if len(text) <= width else text[:width - 3] + "..."


def plot_attention_maps(result, path):
    plt = _labkit.pyplot()
    gpt = result["gpt"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), dpi=100)
    for ax, case in zip(axes[:2], ("leaky mask", "healthy")):
        image = ax.imshow(gpt[case]["probs"]["blocks.1.attn"][0], cmap="viridis", vmin=0,
                          vmax=1)
        ax.set(title=f"{case}: blocks.1.attn, head 0", xlabel="key position",
               ylabel="query position")
        fig.colorbar(image, ax=ax, label="attention weight")
    labels, positions = [], []
    for case, offset, colour in (("healthy", -0.2, "tab:green"), ("leaky mask", 0.2,
                                                                  "tab:red")):
        shares = gpt[case]["future_share"]
        values = [v for layer in shares for v in shares[layer]]
        labels = [f"{layer.split('.')[1]}.h{h}" for layer in shares
                  for h in range(len(shares[layer]))]
        positions = np.arange(len(values))
        axes[2].bar(positions + offset, values, width=0.4, color=colour, label=case)
        for x, value in zip(positions + offset, values):
            if value >= 0.005:
                axes[2].text(x, value + 0.01, f"{value:.2f}", ha="center", fontsize=8)
    axes[2].set_xticks(positions, labels, fontsize=8)
    axes[2].set(title="Weight on future keys (capture_attention; no bar: 0)",
                xlabel="block.head",
                ylabel="mean weight per query on keys after it", ylim=(0, 1.05))
    axes[2].legend()
    _labkit.save_figure(fig, path)


FIGURES = {"m9-loss-curves.png": plot_loss_curves,
           "m9-gradient-flow.png": plot_gradient_flow,
           "m9-saliency.png": plot_saliency,
           "m9-attention-maps.png": plot_attention_maps}


# ============================================================================ results page
def _cell(value):
    return "none" if value is None else (f"{value:.3g}" if isinstance(value, float) else value)


def _case_one(cnn):
    healthy, cut = cnn["healthy"], cnn["cut branch"]
    layers = list(healthy["flow"]["rms"])
    return [
        "## 1. A cut branch (digits CNN)",
        markdown_table(["run", "final training loss", "test accuracy",
                        "layers without gradient (GradientMonitor)",
                        "layers with update:data ratio 0", "saliency"],
                       [[case, f"{run['final_loss']:.4f}", f"{run['test_accuracy']:.1%}",
                         ", ".join(run["flow"]["without_gradient"]) or "none",
                         ", ".join(run["flow"]["not_updated"]) or "none",
                         "error: " + run["saliency_error"] if run["saliency_error"]
                         else "maps computed"]
                        for case, run in (("healthy", healthy), ("cut branch", cut))]),
        "Gradient RMS and update:data ratio per layer at the monitor's last record:",
        markdown_table(["layer", "RMS, healthy", "RMS, cut branch", "update ratio, healthy",
                        "update ratio, cut branch"],
                       [[layer, _cell(healthy["flow"]["rms"][layer]),
                         _cell(cut["flow"]["rms"][layer]),
                         _cell(healthy["flow"]["updates"].get(layer)),
                         _cell(cut["flow"]["updates"].get(layer))] for layer in layers]),
        f"GradientMonitor's vanishing/exploding flags: {len(cut['flow']['flags'])} for the cut "
        f"branch, {len(healthy['flow']['flags'])} for the healthy model.",
    ]


def _case_two(cnn):
    broken, healthy = cnn["no eps"], cnn["healthy"]
    guard = broken["nan_guard"] or {}
    return [
        "## 2. A missing eps (digits CNN)",
        markdown_table(["run", "first NaN loss at step", "maps with std 0 in the first batch",
                        "lint findings", "NaN/Inf guard"],
                       [[case, _cell(run["first_nonfinite_step"]), run["zero_variance_maps"],
                         "; ".join(f"{p} at {op} in module '{m}' ({line})"
                                   for p, op, m, line in run["lint"]) or "none",
                         (f"stopped at {run['nan_guard']['op']} ({run['nan_guard']['phase']}) "
                          f"in module '{run['nan_guard']['module']}', "
                          f"{run['nan_guard']['site']}") if run["nan_guard"] else "nothing"]
                        for case, run in (("no eps", broken), ("healthy", healthy))]),
        "The guard's message: `" + guard.get("message", "none") + "`",
    ]


def _case_three(gpt):
    rows = []
    for case in ("leaky mask", "healthy"):
        run = gpt[case]
        audits = "; ".join(f"{path}: {count} fully masked rows"
                           + (f" ({lines[0]})" if lines else "")
                           for path, count, lines in run["audits"])
        shares = ", ".join(f"{path}: " + " ".join(f"{v:.2f}" for v in values)
                           for path, values in run["future_share"].items())
        rows.append([case, f"{run['final_val_loss']:.4f}", shares, audits])
    samples = [f"**{case}**:\n\n```text\n{gpt[case]['sample']}\n```"
               for case in ("leaky mask", "healthy")]
    return ["## 3. A mask of the wrong convention (GPT on Shakespeare)",
            markdown_table(["run", "final validation loss",
                            "weight on future keys per head (capture_attention)",
                            "audit_model"], rows),
            "Text sampled from each model after the prompt `ROMEO:` (seed 0):", *samples]


def _profile_section(profile):
    return ["## Where a healthy GPT step spends its time (profiler)",
            f"One forward and backward of the healthy GPT: {profile['total_ms']:.1f} ms of "
            f"profiled self time. The rows with the most self time:",
            markdown_table(["op", "phase", "module", "calls", "self ms", "MFLOPs"],
                           [[r["op"], r["phase"], r["module"], r["calls"], f"{r['ms']:.2f}",
                             f"{r['flops'] / 1e6:.2f}"] for r in profile["rows"]])]


def results_page(result, command, seconds):
    s = result["settings"]
    parts = [
        "# Module 9 lab results: debugging with retrograd's tools",
        f"Generated by `{command}` in {seconds:.0f} s. Digits CNN: {s['cnn_steps']} SGD steps "
        f"(lr {s['cnn_lr']}, momentum 0.9) on batches of {s['cnn_batch']}, GradientMonitor "
        f"every {s['every']} steps. GPT: {s['n_layer']} blocks, d_model {s['d_model']}, "
        f"{s['n_head']} heads, context {s['context']}; {s['gpt_steps']} AdamW steps (lr "
        f"{s['gpt_lr']}) on batches of {s['gpt_batch']} windows of the shipped Shakespeare "
        f"text. The same seed, weights and batches for each bug and its fix.",
        *_case_one(result["cnn"]), *_case_two(result["cnn"]), *_case_three(result["gpt"]),
        *_profile_section(result["profile"]),
    ]
    return _labkit.paragraphs(parts)


# ============================================================================ main
def main(argv=None):
    """Run the lab; returns the dict of its numbers (see summarize)."""
    args = _labkit.parse_args("Module 9 lab: find a planted bug with retrograd's debugging "
                              "tools.", argv, threads=True)
    started = time.perf_counter()
    with _labkit.threads(args.threads):
        return run(args, started)


def run(args, started):
    """The lab's body: the three cases, the profile, the figures and the results page."""
    settings = dict(QUICK if args.quick else FULL)
    out = _labkit.out_folder(args.out)
    digits = load_digits()
    result = summarize(settings, run_cnn_cases(settings, digits), run_gpt_cases(settings))
    result["test_images"] = digits[2][:6].numpy()
    result["test_labels"] = digits[3][:6].numpy().tolist()
    _labkit.write_figures(FIGURES, result, out)
    command = _labkit.command(__file__, args.quick)
    seconds = time.perf_counter() - started
    (out / f"{SLUG}.md").write_text(results_page(result, command, seconds))
    cnn, gpt = result["cnn"], result["gpt"]
    cut = cnn["cut branch"]
    print(f"1. cut branch: no gradient in {', '.join(cut['flow']['without_gradient'])}; "
          f"test accuracy {cut['test_accuracy']:.1%} "
          f"(healthy {cnn['healthy']['test_accuracy']:.1%})")
    print(f"2. no eps: lint {[f[0] for f in cnn['no eps']['lint']]}, guard stopped at "
          f"{(cnn['no eps']['nan_guard'] or {}).get('op')}")
    print(f"3. leaky mask: validation loss {gpt['leaky mask']['final_val_loss']:.3f} "
          f"(healthy {gpt['healthy']['final_val_loss']:.3f})")
    print(f"wrote {len(FIGURES)} figures and {SLUG}.md to {out} in {seconds:.1f} s")
    result["seconds"] = seconds
    return result


if __name__ == "__main__":
    main()
