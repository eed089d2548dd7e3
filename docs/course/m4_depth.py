"""Module 4 lab: residual connections and the gradient in very deep CNNs.

Two parts on the digits (scikit-learn's 8x8 images, shipped with retrograd), with the
networks of the depth experiment (``retrograd.training.depth_experiment.build_network``:
``PlainCNN`` and the CIFAR-style ``ResNet``, without batch norm unless ``--batch-norm``):

1. the gradient at initialization: one forward and backward of a fixed batch through plain
   and residual networks of 8, 20 and 56 layers, each layer's gradient RMS read by a
   ``GradientMonitor``; the first layer's RMS over the last layer's, as the depth grows;
2. a short training run of a plain network and of the residual network of the same depth
   (SGD with momentum, the depth experiment's settings): their loss curves, and the first
   layer's gradient recorded by the monitor along the way.

docs/depth-experiment.md is the full study (with and without batch norm, 300 steps each).

Run from the repository root::

    python docs/course/m4_depth.py            # full form, writes docs/course/results/
    python docs/course/m4_depth.py --quick --out /tmp/m4
"""

import math
import time

import numpy as np

import retrograd as rg
from retrograd import optim
from retrograd.inspect import GradientMonitor, render
from retrograd.nn import functional as F
from retrograd.training.common import seeded_batches
from retrograd.training.depth_experiment import ARCHITECTURES, DEPTHS, DepthConfig, build_network
from retrograd.training.image import evaluate, load_image_data
from retrograd.utils.data import DataLoader

import _labkit
from _labkit import markdown_table

PAGE = "m4-depth.md"
FIGURES = ("m4-gradient-profiles.png", "m4-first-over-last.png", "m4-training.png")

# the depth experiment's training settings (SGD, momentum 0.9): lr 0.05, batch 32
EXPERIMENT = DepthConfig(progress=False)


def _parse(argv):
    parser = _labkit.lab_parser(__doc__.splitlines()[0], threads=True, quick_help="the reduced "
                                "form: one seed, a smaller batch, 40 training steps")
    parser.add_argument("--train-depth", type=int, default=20,
                        help="depth of the two trained networks, 6n + 2 (default: %(default)s)")
    parser.add_argument("--batch-norm", action="store_true",
                        help="batch norm after every convolution, in both parts")
    args = parser.parse_args(argv)
    if args.train_depth < 8 or (args.train_depth - 2) % 6:
        parser.error(f"--train-depth {args.train_depth} is not 6n + 2 with n >= 1 (8, 20, 56, "
                     f"...): the residual network needs it")
    return args


def _settings(quick):
    """Seeds and batch size of part 1; steps and monitor interval of part 2."""
    if quick:
        return dict(seeds=(0,), init_batch=32, steps=40, every=10)
    return dict(seeds=(0, 1, 2), init_batch=64, steps=EXPERIMENT.steps, every=EXPERIMENT.every)


def network_name(architecture, depth, batch_norm):
    """The depth experiment's name of a network: plain-20, residual-56-bn, ..."""
    return f"{architecture}-{depth}{'-bn' if batch_norm else ''}"


def first_batch(dataset, size):
    """The first ``size`` samples of ``dataset`` in order, as one (x, y) batch."""
    return next(iter(DataLoader(dataset, batch_size=size)))


# ----------------------------------------------------------------------------- part 1
def gradients_at_init(architecture, depth, batch_norm, seed, batch):
    """One forward and backward of ``batch`` through a fresh network (``manual_seed(seed)``
    before it is built), recorded by a GradientMonitor: every layer's gradient RMS, input
    side first, the first over the last, and the monitor's flags."""
    rg.manual_seed(seed)
    model = build_network(architecture, depth, batch_norm)
    monitor = GradientMonitor(model, every=1)
    x, y = batch
    F.cross_entropy(model(x), y).backward()
    record = monitor.record()
    monitor.close()
    layers = monitor.flow.layer_gradients(record)
    rms = [stats.rms for stats in layers.values()]
    return dict(network=network_name(architecture, depth, batch_norm),
                architecture=architecture, depth=depth, seed=seed, layers=list(layers),
                rms=rms, first=rms[0], last=rms[-1], first_over_last=rms[0] / rms[-1],
                flags=len(monitor.flags))


def init_part(train_set, settings, batch_norm):
    """Part 1 for every depth, architecture and seed; returns the rows."""
    batch = first_batch(train_set, settings["init_batch"])
    return [gradients_at_init(architecture, depth, batch_norm, seed, batch)
            for depth in DEPTHS for architecture in ARCHITECTURES for seed in settings["seeds"]]


def summarize_init(rows):
    """One row per network: seed 0's first and last RMS, and the first/last ratio's
    geometric mean, smallest and largest over the seeds."""
    summary = []
    for name in dict.fromkeys(r["network"] for r in rows):
        runs = [r for r in rows if r["network"] == name]
        ratios = [r["first_over_last"] for r in runs]
        summary.append(dict(network=name, layers=len(runs[0]["layers"]), first=runs[0]["first"],
                            last=runs[0]["last"],
                            ratio=math.exp(np.mean(np.log(ratios))), low=min(ratios),
                            high=max(ratios), flags=runs[0]["flags"]))
    return summary


# ----------------------------------------------------------------------------- part 2
def train_network(architecture, depth, batch_norm, data, steps, every, seed=EXPERIMENT.seed):
    """Train one network as the depth experiment does (SGD, momentum 0.9, its lr and batch
    size, batches drawn after ``manual_seed(seed)``) under a GradientMonitor recording every
    ``every`` steps; returns the per-step losses, the first layer's gradient RMS at the
    recorded steps, and the test loss and accuracy."""
    train_set, test_set = data
    rg.manual_seed(seed)
    model = build_network(architecture, depth, batch_norm)
    optimizer = optim.SGD(model.parameters(), lr=EXPERIMENT.lr, momentum=0.9)
    monitor = GradientMonitor(model, every=every)
    losses, start = [], time.perf_counter()
    for x, y in seeded_batches(train_set, EXPERIMENT.batch_size, steps, seed):
        with monitor.step():
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
    monitor.close()
    flow = monitor.flow
    first_layer = [next(iter(flow.layer_gradients(r).values())).rms for r in flow.records]
    test_loss, test_acc = evaluate(model, test_set)
    tail = losses[-max(1, len(losses) // 10):]
    return dict(network=network_name(architecture, depth, batch_norm), losses=losses,
                monitored_steps=flow.steps, first_layer_rms=first_layer,
                final_loss=float(np.mean(tail)), test_loss=test_loss, test_acc=test_acc,
                diverged=not bool(np.all(np.isfinite(losses))),
                seconds=time.perf_counter() - start)


# ----------------------------------------------------------------------------- figures
def plot_profiles(rows, path):
    """Seed 0's gradient RMS per layer against relative depth, one panel per architecture
    (render.plot_depth_profiles, the depth experiment's figure)."""
    titles = {"plain": "plain: no shortcuts", "residual": "residual: identity shortcuts"}
    panels = {titles[a]: {r["network"]: r["rms"] for r in rows
                          if r["architecture"] == a and r["seed"] == rows[0]["seed"]}
              for a in ARCHITECTURES}
    render.plot_depth_profiles(panels, str(path), title="Gradient RMS of every layer at "
                               "initialization (one batch of digits)")


def plot_first_over_last(rows, path):
    """The first layer's gradient RMS over the last layer's against depth, each seed a
    point, the geometric mean a line."""
    plt = _labkit.pyplot()
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    for architecture, colour in zip(ARCHITECTURES, ("tab:red", "tab:blue")):
        runs = [r for r in rows if r["architecture"] == architecture]
        ax.scatter([r["depth"] for r in runs], [r["first_over_last"] for r in runs],
                   color=colour, alpha=0.6, s=25)
        means = [math.exp(np.mean([math.log(r["first_over_last"]) for r in runs
                                   if r["depth"] == d])) for d in DEPTHS]
        ax.plot(DEPTHS, means, color=colour, marker="o", label=architecture)
    ax.axhline(1.0, color="grey", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(DEPTHS)
    ax.set(xlabel="depth (layers)", ylabel="first layer's gradient RMS / last layer's",
           title="How much of the gradient reaches the first layer at initialization")
    ax.grid(alpha=0.3, which="major")
    ax.legend()
    _labkit.save_figure(fig, path, dpi=100)


def plot_training(runs, path):
    """Loss per step (and its moving average) of the trained networks; the first layer's
    gradient RMS at the monitor's steps."""
    plt = _labkit.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    for run, colour in zip(runs, ("tab:red", "tab:blue")):
        losses = np.asarray(run["losses"])
        window = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        left.plot(losses, color=colour, alpha=0.25, linewidth=0.8)
        left.plot(np.arange(window - 1, len(losses)), smooth, color=colour, label=run["network"])
        right.plot(run["monitored_steps"], run["first_layer_rms"], color=colour, marker="o",
                   label=run["network"])
    left.axhline(math.log(10), color="grey", linestyle=":", linewidth=1, label="ln 10 (chance)")
    left.set(xlabel="step", ylabel="training loss (cross-entropy)",
             title="Training loss (faint: each step; line: moving average)")
    right.set_yscale("log")
    right.set(xlabel="step", ylabel="gradient RMS of the first layer",
              title="The first layer's gradient during training")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    _labkit.save_figure(fig, path, dpi=100)


# ----------------------------------------------------------------------------- results page
def write_results(out, summary, runs, settings, args, seconds):
    """The results page: the settings, the two tables, the figures."""
    init_rows = [[s["network"], s["layers"], f"{s['first']:.2e}", f"{s['last']:.2e}",
                  f"{s['ratio']:.2e}", f"{s['low']:.1e} to {s['high']:.1e}", s["flags"]]
                 for s in summary]
    train_rows = [[r["network"], f"{r['losses'][0]:.3f}", f"{r['final_loss']:.3f}",
                   f"{r['first_layer_rms'][0]:.2e}", f"{r['first_layer_rms'][-1]:.2e}",
                   f"{r['test_acc']:.3f}", f"{r['seconds']:.1f}"] for r in runs]
    seeds = ", ".join(map(str, settings["seeds"]))
    text = f"""# Module 4 lab: results

Generated by `{_labkit.command(__file__, args.quick)}` in
{seconds:.0f} s{' (batch norm after every convolution)' if args.batch_norm else ''}.

## Part 1: the gradient at initialization

One forward and backward of the first {settings['init_batch']} training digits through each
network (seeds {seeds}), every layer's gradient RMS read by a `GradientMonitor`. "first" is
the first convolution, "last" the final linear layer (seed {settings['seeds'][0]}); the ratio
is the geometric mean over the seeds, with its range; "flags" counts the monitor's vanishing
and exploding flags (seed {settings['seeds'][0]}).

{markdown_table(["network", "layers", "first RMS", "last RMS", "first / last",
                 "range over seeds", "flags"], init_rows)}

![Gradient RMS per layer at initialization](m4-gradient-profiles.png)

![First over last layer against depth](m4-first-over-last.png)

## Part 2: training a deep plain network and its residual twin

{settings['steps']} SGD steps (lr {EXPERIMENT.lr}, momentum 0.9, batch
{EXPERIMENT.batch_size}, seed {EXPERIMENT.seed}); "final loss" is the mean training loss of
the last tenth of the steps; the first layer's gradient RMS at step 0 and at the last recorded
step (every {settings['every']} steps); test accuracy on the 359 test digits.

{markdown_table(["network", "loss at step 0", "final loss", "first-layer RMS, start",
                 "first-layer RMS, end", "test accuracy", "seconds"], train_rows)}

![Training loss and first-layer gradient](m4-training.png)
"""
    (out / PAGE).write_text(text)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    """Run the lab; returns its numbers: ``init`` (part 1 rows), ``summary`` (one row per
    network), ``training`` (part 2, plain first), ``settings``, ``seconds``."""
    args = _parse(argv)
    out = _labkit.out_folder(args.out)
    settings = _settings(args.quick)
    start = time.perf_counter()
    with _labkit.threads(args.threads):
        train_set, test_set, _ = load_image_data("digits")
        rows = init_part(train_set, settings, args.batch_norm)
        summary = summarize_init(rows)
        runs = [train_network(a, args.train_depth, args.batch_norm, (train_set, test_set),
                              settings["steps"], settings["every"]) for a in ARCHITECTURES]
        plot_profiles(rows, out / FIGURES[0])
        plot_first_over_last(rows, out / FIGURES[1])
        plot_training(runs, out / FIGURES[2])
    seconds = time.perf_counter() - start
    write_results(out, summary, runs, settings, args, seconds)
    for s in summary:
        print(f"{s['network']:>12}: first/last layer gradient at init {s['ratio']:.1e}")
    for r in runs:
        print(f"{r['network']:>12}: loss {r['losses'][0]:.3f} -> {r['final_loss']:.3f}, "
              f"test accuracy {r['test_acc']:.3f}")
    print(f"wrote {PAGE} and {len(FIGURES)} figures to {out} ({seconds:.1f} s)")
    return dict(init=rows, summary=summary, training=runs, settings=settings, seconds=seconds)


if __name__ == "__main__":
    main()
