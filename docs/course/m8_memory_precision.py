"""Module 8 lab: memory, compute and precision when training a Transformer.

One character-level GPT (retrograd.models.gpt) on the shipped Shakespeare text, trained five
ways from the same initial weights on the same batches:

- ``float32``: the reference;
- ``float32 + checkpointing``: every block checkpointed (``gradient_checkpointing_enable``,
  retrograd.utils.checkpoint): its activations are recomputed in backward instead of kept;
- ``bfloat16 autocast``: matrix products in bfloat16 (``retrograd.autocast``), no loss scaling;
- ``float16 autocast + GradScaler``: matrix products in float16, the loss scaled so that small
  gradients survive float16 (``retrograd.amp.GradScaler``);
- ``float16 autocast, no scaling``: the same without the scaler.

For each the lab measures, with retrograd's own tools, the bytes kept for backward and the
step's peak (``retrograd.inspect.MemoryLedger``, with the ledger's timeline), the FLOPs of the
forward, backward and recompute phases (``retrograd.profiler.profile``, from the ops' declared
costs), the time per step, the loss curves, and the share of the logits' gradient that flushes
to zero in float16 (and ``retrograd.inspect.gradient_underflow`` for the parameters' gradients
at each loss scale). Last, numerical stability: a softmax written as exp(z) / sum(exp(z))
overflows in float16 at logits above ln(65504) = 11.09; the max-subtracted form does not, and
``retrograd.inspect.lint`` flags the naive one before it runs.

Outputs: ``m8-memory.png``, ``m8-flops-time.png``, ``m8-precision-loss.png``,
``m8-gradient-underflow.png``, ``m8-softmax-overflow.png`` and ``m8-memory-precision.md``.

Run from the repository root: ``python docs/course/m8_memory_precision.py`` (``--quick`` for
the reduced form, ``--out DIR`` for another folder).
"""

import math
import time

import numpy as np

import _labkit
from _labkit import markdown_table

SLUG = "m8-memory-precision"
SEED = 0
FLOAT16_MAX = 65504.0

# name -> (autocast dtype name or None, checkpointing, loss scaling)
CONFIGS = {
    "float32": (None, False, False),
    "float32 + checkpointing": (None, True, False),
    "bfloat16 autocast": ("bfloat16", False, False),
    "float16 autocast + GradScaler": ("float16", False, True),
    "float16 autocast, no scaling": ("float16", False, False),
}

FULL = dict(steps=300, eval_every=50, batch=16, context=64, d_model=64, n_layer=4, n_head=4,
            lr=2e-3, grad_clip=1.0, eval_windows=128)
QUICK = dict(steps=20, eval_every=10, batch=8, context=32, d_model=32, n_layer=2, n_head=2,
             lr=2e-3, grad_clip=1.0, eval_windows=32)
LOGIT_SCALES = (0.5, 1, 1.5, 2, 3, 4, 6, 8, 12, 16)   # the softmax sweep multiplies logits by these


# ----------------------------------------------------------------------------- data and model
def load_data(settings):
    """(train set, validation set, tokenizer) of the shipped Shakespeare text."""
    from retrograd.datasets.shakespeare import shakespeare_path
    from retrograd.datasets.text import load_text_splits

    return load_text_splits(shakespeare_path(), settings["context"])


def build_model(settings, vocab_size, checkpointing=False, seed=SEED):
    """The lab's GPT (tied head, no dropout), the same initial weights for every config."""
    import retrograd as rg
    from retrograd.models.gpt import GPT, GPTConfig

    rg.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size, settings["context"], settings["n_layer"],
                          settings["n_head"], settings["d_model"], dropout=0.0))
    if checkpointing:
        model.gradient_checkpointing_enable()
    return model


def forward_loss(model, x, y, dtype_name):
    """(logits, loss) of a batch, under autocast when ``dtype_name`` is given."""
    import contextlib

    import retrograd as rg
    from retrograd.nn import functional as F

    context = (rg.autocast(dtype=getattr(rg, dtype_name)) if dtype_name
               else contextlib.nullcontext())
    with context:
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    return logits, loss


def validation_loss(model, val_set, windows):
    """Mean loss (nats per character) over the first validation windows, in float32."""
    import retrograd as rg

    x, y = val_set.get_batch(np.arange(min(windows, len(val_set))))
    with rg.no_grad():
        return forward_loss(model, x, y, None)[1].item()


# ----------------------------------------------------------------------------- measurements
def measure_memory(model, x, y, dtype_name):
    """One forward and backward under retrograd's MemoryLedger; returns its MemoryReport."""
    from retrograd.inspect import MemoryLedger

    with MemoryLedger(model) as ledger:
        forward_loss(model, x, y, dtype_name)[1].backward()
    model.zero_grad()
    return ledger.report()


def measure_flops(model, x, y, dtype_name):
    """FLOPs per phase (forward, backward, recompute) of one forward and backward, from the
    profiler's events (each op's declared cost, docs/cost-model.md)."""
    from retrograd.profiler import profile

    with profile() as prof:
        forward_loss(model, x, y, dtype_name)[1].backward()
    model.zero_grad()
    flops = {"forward": 0, "backward": 0, "recompute": 0}
    for event in prof.events():
        if event.phase in flops:
            flops[event.phase] += event.cost()[0]
    return flops


def flushed_share(gradient):
    """The share of a float16 gradient's entries that are exactly 0."""
    return float(np.mean(np.asarray(gradient) == 0))


def train_config(name, settings, data):
    """Measure one configuration, then train it; returns its log."""
    from retrograd import optim
    from retrograd.amp import GradScaler
    from retrograd.nn.utils import clip_grad_norm_
    from retrograd.training.common import seeded_batches

    train_set, val_set, tokenizer = data
    dtype_name, checkpointing, scaling = CONFIGS[name]
    model = build_model(settings, tokenizer.vocab_size, checkpointing)
    x0, y0 = train_set.get_batch(np.arange(settings["batch"]) * 997)
    log = dict(memory=measure_memory(model, x0, y0, dtype_name),
               flops=measure_flops(model, x0, y0, dtype_name), loss=[], val=[], times=[],
               logit_grad_zero=[], skipped=[])
    optimizer = optim.AdamW(model.parameters(), lr=settings["lr"], betas=(0.9, 0.99),
                            weight_decay=0.0)
    scaler = GradScaler(enabled=scaling, model=model)
    for step, (x, y) in enumerate(seeded_batches(train_set, settings["batch"],
                                                 settings["steps"], SEED)):
        if step % settings["eval_every"] == 0:
            log["val"].append((step, validation_loss(model, val_set, settings["eval_windows"])))
        started = time.perf_counter()
        optimizer.zero_grad()
        logits, loss = forward_loss(model, x, y, dtype_name)
        logits.retain_grad()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)            # true gradients before clipping them
        clip_grad_norm_(model.parameters(), settings["grad_clip"])
        record = scaler.step(optimizer)
        scaler.update()
        log["times"].append(time.perf_counter() - started)
        log["loss"].append(loss.item())
        log["logit_grad_zero"].append(flushed_share(logits.grad.numpy()))
        if record.skipped:
            log["skipped"].append(step)
    log["val"].append((settings["steps"], validation_loss(model, val_set,
                                                          settings["eval_windows"])))
    log["scale"] = scaler.get_scale() if scaling else 1.0
    log["model"] = model
    return log


def underflow_by_scale(model):
    """What gradient_underflow says about the model's current float32 gradients: the share
    that would flush to zero in float16 at each loss scale 2^0 .. 2^24."""
    from retrograd.inspect import gradient_underflow

    report = gradient_underflow(model, scale=1.0)
    exponents = np.arange(0, 25)
    return exponents, np.array([report.flush_fraction(2.0 ** int(e)) for e in exponents])


# ----------------------------------------------------------------------------- stability
def naive_softmax(z):
    """softmax written from its definition: exp(z) / sum(exp(z)). Unstable."""
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def stable_softmax(z):
    """The same function with the row maximum subtracted first: exp(z - max) <= 1."""
    shifted = z - z.max(dim=-1, keepdim=True).values
    e = shifted.exp()
    return e / e.sum(dim=-1, keepdim=True)


def broken_rows(probabilities):
    """The share of rows that are not a distribution: Inf or NaN in them (an exp overflowed:
    inf / inf), or a sum off 1 by more than 1% (the sum overflowed: every p = e / inf = 0)."""
    values = probabilities.numpy().reshape(-1, probabilities.shape[-1]).astype(np.float64)
    finite = np.isfinite(values).all(axis=1)
    sums = np.where(finite, values.sum(axis=1), np.nan)
    return float(np.mean(~finite | ~(np.abs(sums - 1.0) <= 0.01)))


def softmax_sweep(model, val_set, windows):
    """For the trained model's logits on validation windows, multiplied by each of
    LOGIT_SCALES: the share of rows whose naive softmax is broken in float16 and in float32,
    and of the stable softmax in float16; plus lint's findings on each form."""
    import retrograd as rg
    from retrograd.inspect import lint

    x, _ = val_set.get_batch(np.arange(min(windows, len(val_set))))
    with rg.no_grad():
        logits = model(x).detach()
    rows = {"naive float16": [], "naive float32": [], "stable float16": []}
    for scale in LOGIT_SCALES:
        z = logits * scale
        rows["naive float16"].append(broken_rows(naive_softmax(z.half())))
        rows["naive float32"].append(broken_rows(naive_softmax(z)))
        rows["stable float16"].append(broken_rows(stable_softmax(z.half())))
    probe = x[:2]
    findings = {"naive": [f.pattern for f in lint(lambda: naive_softmax(model(probe)))],
                "stable": [f.pattern for f in lint(lambda: stable_softmax(model(probe)))]}
    return dict(scales=list(LOGIT_SCALES), rows=rows, logits=logits.numpy(), lint=findings)


# ----------------------------------------------------------------------------- summary
def summarize(logs, settings, data, stability):
    """The lab's numbers, as the dict main returns."""
    _, _, tokenizer = data
    reference = logs["float32"]
    configs = {}
    for name, log in logs.items():
        report = log["memory"]
        configs[name] = dict(
            saved_bytes=report.saved_bytes, peak_bytes=report.peak_bytes,
            step_peak_bytes=report.step_peak_bytes, resident_bytes=report.resident,
            flops=log["flops"], ms_per_step=1e3 * float(np.median(log["times"])),
            final_val_loss=log["val"][-1][1], val_curve=log["val"], losses=log["loss"],
            max_loss_difference=float(np.max(np.abs(np.subtract(log["loss"],
                                                                reference["loss"])))),
            logit_grad_zero=log["logit_grad_zero"], skipped_steps=log["skipped"],
            loss_scale=log["scale"], timeline=report.timeline)
    exponents, flush = underflow_by_scale(reference["model"])
    return dict(settings=settings, vocab_size=tokenizer.vocab_size, configs=configs,
                underflow=dict(exponents=exponents, flush=flush), stability=stability,
                float32_model=reference["model"])


# ----------------------------------------------------------------------------- figures
COLOURS = dict(zip(CONFIGS, ("tab:blue", "black", "tab:green", "tab:orange", "tab:red")))
SHORT = dict(zip(CONFIGS, ("float32", "float32\ncheckpointed", "bfloat16\nautocast",
                           "float16\n+ GradScaler", "float16\nno scaling")))


def mib(nbytes):
    return nbytes / 2 ** 20


def plot_memory(result, path):
    plt = _labkit.pyplot()
    configs = result["configs"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100,
                                      gridspec_kw=dict(width_ratios=(1.5, 1)))
    for name in ("float32", "float32 + checkpointing", "bfloat16 autocast"):
        timeline = configs[name]["timeline"]
        left.plot([mib(t[3]) for t in timeline], color=COLOURS[name], label=name)
    left.set(title="Memory through one training step (MemoryLedger timeline)",
             xlabel="event (forward ops, then backward nodes; recomputes inside backward)",
             ylabel="MiB held (parameters + saved + in flight)")
    left.legend()
    names = list(configs)
    saved = [mib(configs[n]["saved_bytes"]) for n in names]
    peaks = [mib(configs[n]["step_peak_bytes"]) for n in names]
    positions = np.arange(len(names))
    right.barh(positions + 0.2, saved, height=0.4, color="tab:blue",
               label="kept for backward after forward")
    right.barh(positions - 0.2, peaks, height=0.4, color="tab:grey",
               label="step's peak above the weights")
    right.set_yticks(positions, [SHORT[n] for n in names], fontsize=9)
    right.invert_yaxis()
    right.set(xlabel="MiB", title="Activation memory by configuration")
    right.legend(fontsize=8, loc="lower right")
    _labkit.save_figure(fig, path)


def plot_flops_time(result, path):
    plt = _labkit.pyplot()
    configs = result["configs"]
    names = list(configs)
    positions = np.arange(len(names))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    bottom = np.zeros(len(names))
    for phase, colour in (("forward", "tab:blue"), ("recompute", "tab:purple"),
                          ("backward", "tab:orange")):
        values = np.array([configs[n]["flops"][phase] for n in names]) / 1e6
        left.bar(positions, values, bottom=bottom, color=colour, label=phase)
        bottom += values
    left.set_xticks(positions, [SHORT[n] for n in names], fontsize=9)
    left.set(ylabel="MFLOPs per step (declared costs)",
             title="Compute per training step, by phase")
    left.legend()
    right.bar(positions, [configs[n]["ms_per_step"] for n in names],
              color=[COLOURS[n] for n in names])
    right.set_xticks(positions, [SHORT[n] for n in names], fontsize=9)
    right.set(ylabel="ms per step (median over training)",
              title="Time per step on this CPU (NumPy has no 16-bit kernels)")
    _labkit.save_figure(fig, path)


def plot_precision_loss(result, path):
    plt = _labkit.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    reference = np.asarray(result["configs"]["float32"]["losses"])
    for name, config in result["configs"].items():
        style = dict(color=COLOURS[name], ls="--" if "checkpointing" in name else "-")
        left.plot(_smooth(np.asarray(config["losses"]) - reference), label=name, **style)
        steps, losses = zip(*config["val_curve"])
        right.plot(steps, losses, marker="o", label=name, **style)
    left.set(title="Training loss minus float32's, same batches (smoothed)", xlabel="step",
             ylabel="difference (nats)")
    right.set(title="Validation loss (float32 evaluation)", xlabel="step",
              ylabel="cross-entropy (nats)")
    for ax in (left, right):
        ax.legend(fontsize=8)
    _labkit.save_figure(fig, path)


def _smooth(values, width=10):
    values = np.asarray(values, dtype=np.float64)
    width = max(1, min(width, len(values) // 4))
    return np.convolve(values, np.ones(width) / width, mode="valid")


def plot_gradient_underflow(result, path):
    plt = _labkit.pyplot()
    configs = result["configs"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    for name in ("float16 autocast, no scaling", "float16 autocast + GradScaler"):
        left.plot(100 * np.array(configs[name]["logit_grad_zero"]), color=COLOURS[name],
                  label=name)
    left.set(title="dL/dlogits entries that are exactly 0 in float16",
             xlabel="step", ylabel="% of entries")
    left.legend()
    underflow = result["underflow"]
    right.plot(underflow["exponents"], 100 * underflow["flush"], "o-", color="tab:red")
    scale = configs["float16 autocast + GradScaler"]["loss_scale"]
    right.axvline(math.log2(scale), color="tab:orange", ls="--",
                  label=f"GradScaler's scale at the end: 2^{math.log2(scale):.0f}")
    right.set(title="Parameter gradients (float32 run) that flush in float16",
              xlabel="loss scale (log2 S)", ylabel="% of gradient entries flushed to 0")
    right.legend()
    _labkit.save_figure(fig, path)


def plot_softmax_overflow(result, path):
    plt = _labkit.pyplot()
    stability = result["stability"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), dpi=100)
    styles = {"naive float16": ("tab:red", "o-"), "naive float32": ("tab:blue", "s-"),
              "stable float16": ("tab:green", "^--")}
    for name, share in stability["rows"].items():
        colour, style = styles[name]
        left.plot(stability["scales"], 100 * np.array(share), style, color=colour, label=name)
    left.set(xscale="log", title="Softmax rows that come out wrong (Inf/NaN, or all 0)",
             xlabel="logits multiplied by", ylabel="% of rows")
    left.legend()
    maxima = stability["logits"].max(axis=-1).ravel()
    right.hist(maxima, bins=40, color="tab:grey")
    right.axvline(math.log(FLOAT16_MAX), color="tab:red", ls="--",
                  label="ln(65504) = 11.09: exp overflows float16")
    right.set(title="Largest logit per row (trained model, scale 1)", xlabel="max logit",
              ylabel="rows")
    right.legend()
    _labkit.save_figure(fig, path)


FIGURES = {"m8-memory.png": plot_memory, "m8-flops-time.png": plot_flops_time,
           "m8-precision-loss.png": plot_precision_loss,
           "m8-gradient-underflow.png": plot_gradient_underflow,
           "m8-softmax-overflow.png": plot_softmax_overflow}


# ----------------------------------------------------------------------------- results page
def _configuration_rows(configs):
    return [[name, f"{c['saved_bytes']:,}", f"{c['step_peak_bytes']:,}",
             f"{c['flops']['forward'] / 1e6:.1f}", f"{c['flops']['recompute'] / 1e6:.1f}",
             f"{c['flops']['backward'] / 1e6:.1f}", f"{c['ms_per_step']:.1f}",
             f"{c['final_val_loss']:.4f}", f"{c['max_loss_difference']:.2g}",
             len(c["skipped_steps"])] for name, c in configs.items()]


def results_page(result, command, seconds):
    s, configs = result["settings"], result["configs"]
    stability, underflow = result["stability"], result["underflow"]
    plain, checkpointed = configs["float32"], configs["float32 + checkpointing"]
    no_scaling = configs["float16 autocast, no scaling"]
    scaled = configs["float16 autocast + GradScaler"]
    parts = [
        "# Module 8 lab results: memory, compute and precision",
        f"Generated by `{command}` in {seconds:.0f} s. GPT with {s['n_layer']} layers, "
        f"d_model {s['d_model']}, {s['n_head']} heads, context {s['context']}, tied head, "
        f"vocabulary {result['vocab_size']}; {s['steps']} AdamW steps (lr {s['lr']}, gradients "
        f"clipped to norm {s['grad_clip']}) on "
        f"batches of {s['batch']} windows of the shipped Shakespeare text, the same batches "
        f"and initial weights for every configuration. Memory: one step under "
        f"`MemoryLedger`; FLOPs: one step under the profiler; time: median over the "
        f"training steps on this (shared, 2-core) machine.",
        "## Per configuration",
        markdown_table(["configuration", "bytes kept for backward", "step peak (bytes)",
                        "forward MFLOPs", "recompute MFLOPs", "backward MFLOPs", "ms/step",
                        "final validation loss",
                        "largest training-loss difference from float32",
                        "skipped steps"], _configuration_rows(configs)),
        "## Checkpointing",
        markdown_table(["quantity", "value"], [
            ["kept for backward, float32 / checkpointed",
             f"{plain['saved_bytes'] / checkpointed['saved_bytes']:.1f}x less"],
            ["step peak, float32 / checkpointed",
             f"{plain['step_peak_bytes'] / checkpointed['step_peak_bytes']:.1f}x less"],
            ["recompute FLOPs / forward FLOPs",
             f"{checkpointed['flops']['recompute'] / checkpointed['flops']['forward']:.1%}"],
            ["training losses identical to float32's",
             checkpointed["max_loss_difference"] == 0.0]]),
        "## float16 without loss scaling",
        markdown_table(["quantity", "value"], [
            ["dL/dlogits entries exactly 0, first step / last step (no scaling)",
             f"{no_scaling['logit_grad_zero'][0]:.2%} / {no_scaling['logit_grad_zero'][-1]:.2%}"],
            ["the same with the GradScaler, last step",
             f"{scaled['logit_grad_zero'][-1]:.2%}"],
            ["GradScaler's scale at the end", f"{scaled['loss_scale']:g}"],
            ["parameter gradients (float32 run) flushed in float16 at scale 1",
             f"{underflow['flush'][0]:.3%}"],
            ["... at scale 2^16", f"{underflow['flush'][16]:.3%}"]]),
        "## Softmax in float16",
        "Share of rows that come out wrong (Inf or NaN, or probabilities that do not sum to "
        "1) when the trained model's validation logits are multiplied by a factor:",
        markdown_table(["logits x"] + list(stability["rows"]),
                       [[scale] + [f"{stability['rows'][n][i]:.1%}" for n in stability["rows"]]
                        for i, scale in enumerate(stability["scales"])]),
        markdown_table(["form", "lint findings"],
                       [[form, ", ".join(found) or "none"]
                        for form, found in stability["lint"].items()]),
    ]
    return _labkit.paragraphs(parts)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    """Run the lab; returns the dict of its numbers (see summarize)."""
    args = _labkit.parse_args("Module 8 lab: checkpointing, mixed precision and numerical "
                              "stability on a GPT.", argv, threads=True)
    started = time.perf_counter()
    with _labkit.threads(args.threads):
        return run(args, started)


def run(args, started):
    """The lab's body: measure and train each configuration, draw, write the results page."""
    settings = dict(QUICK if args.quick else FULL)
    out = _labkit.out_folder(args.out)
    data = load_data(settings)
    logs = {name: train_config(name, settings, data) for name in CONFIGS}
    stability = softmax_sweep(logs["float32"]["model"], data[1], settings["eval_windows"])
    result = summarize(logs, settings, data, stability)
    _labkit.write_figures(FIGURES, result, out)
    command = _labkit.command(__file__, args.quick)
    seconds = time.perf_counter() - started
    (out / f"{SLUG}.md").write_text(results_page(result, command, seconds))
    for name, config in result["configs"].items():
        print(f"{name:>30}: kept {config['saved_bytes']:>10,} B, "
              f"{config['ms_per_step']:6.1f} ms/step, validation loss "
              f"{config['final_val_loss']:.3f}")
    print(f"wrote {len(FIGURES)} figures and {SLUG}.md to {out} in {seconds:.1f} s")
    result["seconds"] = seconds
    return result


if __name__ == "__main__":
    main()
