"""The depth experiment (the course's Module 4, "gradient behaviour in very deep CNNs"): plain
and residual CNNs of several depths, with and without batch norm, trained on the digits with
a GradientMonitor, so that what depth does to the gradient is seen rather than told.

``retrograd experiment depth`` runs it (cli/experiment.py); ``run_depth_experiment(config)``
is the same from Python. For each network it records the gradient RMS of every layer at
initialization and every ``every`` steps, the monitor's flags, and the final train loss and
test accuracy; the run folder gets ``results.json``, one gradient-flow JSON per network and
``report.html``: the summary table, the gradient at initialization by relative depth (one
line per network), and each 56-layer network's gradient heatmap over training.
docs/depth-experiment.md has the findings.
"""

import dataclasses
import json
import os
import time

import numpy as np

import retrograd as rg
from retrograd import optim
from retrograd.inspect import GradientMonitor, render
from retrograd.inspect.report import Report, Section
from retrograd.models import PlainCNN
from retrograd.models.resnet import BasicBlock, ResNet
from retrograd.nn import functional as F
from retrograd.training.common import check_options, option_rules, say, seeded_batches
from retrograd.training.image import load_image_data
from retrograd.utils.data import DataLoader
from retrograd.utils.serialization import atomic_write

__all__ = ["DepthConfig", "run_depth_experiment", "build_network", "DEPTHS"]

DEPTHS = (8, 20, 56)
ARCHITECTURES = ("plain", "residual")


@dataclasses.dataclass
class DepthConfig:
    """The experiment's options: the ``depths`` (each 6n + 2, so that the residual networks
    exist: 8, 20, 56, ...), training ``steps`` per network with SGD (``lr``, momentum 0.9)
    on ``batch_size`` digits, the monitor's ``every``, ``seed``, ``out`` (the run folder;
    default runs/depth-<time>) and ``progress``."""

    depths: tuple = DEPTHS
    steps: int = 300
    batch_size: int = 32
    lr: float = 0.05
    every: int = 25
    seed: int = 0
    out: str = None
    progress: bool = True

    def __post_init__(self):
        self.depths = tuple(self.depths)
        if not self.depths:
            raise ValueError("experiment depth: give at least one depth")
        for depth in self.depths:
            if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
                raise ValueError(f"experiment depth: depth {depth!r} is not 6n + 2 with n >= 1 "
                                 f"(8, 20, 56, ...): the residual network needs it")
        check_options(self, _RULES, owner="experiment depth")


_RULES = option_rules(steps="count", batch_size="count", every="count", lr="rate")


def build_network(architecture, depth, batch_norm, in_channels=1, num_classes=10):
    """A ``depth``-layer CNN for 8x8 images, three stages of 16, 32 and 64 channels, with or
    without batch norm: ``plain`` (PlainCNN: ``depth`` 3x3 convs, no shortcuts) or
    ``residual`` (a CIFAR-style ResNet: a stem conv, (depth - 2) / 2 two-conv blocks with
    identity shortcuts, the classifier; depth = 6n + 2)."""
    if architecture == "plain":
        return PlainCNN(depth, in_channels, num_classes, width=16, batch_norm=batch_norm)
    if architecture == "residual":
        return ResNet(BasicBlock, [(depth - 2) // 6] * 3, in_channels=in_channels,
                      num_classes=num_classes, batch_norm=batch_norm)
    raise ValueError(f"experiment depth: unknown architecture {architecture!r}; use "
                     f"{' or '.join(ARCHITECTURES)}")


def _name(architecture, depth, batch_norm):
    return f"{architecture}-{depth}{'-bn' if batch_norm else ''}"


def _accuracy(model, test_set):
    model.eval()
    correct = 0
    with rg.no_grad():
        for x, y in DataLoader(test_set, batch_size=256):
            correct += int((model(x).argmax(dim=1) == y).sum().item())
    model.train()
    return correct / len(test_set)


def _train_one(config, data, architecture, depth, batch_norm):
    """Train one network under a monitor; returns (its result row, its GradientFlow)."""
    train_set, test_set = data
    rg.manual_seed(config.seed)
    model = build_network(architecture, depth, batch_norm)
    optimizer = optim.SGD(model.parameters(), lr=config.lr, momentum=0.9)
    monitor = GradientMonitor(model, every=config.every)
    losses, start = [], time.perf_counter()
    for x, y in seeded_batches(train_set, config.batch_size, config.steps, config.seed):
        with monitor.step():
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
    monitor.close()
    flow = monitor.flow
    at_init = list(flow.layer_gradients(flow.records[0]).values())
    tail = losses[-max(1, len(losses) // 10):]
    row = dict(network=_name(architecture, depth, batch_norm), architecture=architecture,
               depth=depth, batch_norm=batch_norm,
               init_first_over_last=at_init[0].rms / at_init[-1].rms if at_init[-1].rms else None,
               flags_at_init=sum(f.step == 0 for f in flow.flags),
               flags_later=sum(f.step > 0 for f in flow.flags),
               diverged=not np.all(np.isfinite(losses)),
               final_train_loss=float(np.mean(tail)) if np.all(np.isfinite(tail)) else None,
               test_acc=_accuracy(model, test_set),
               seconds=time.perf_counter() - start)
    return row, flow


def run_depth_experiment(config):
    """Run the experiment (see the module docstring); returns the list of result rows."""
    out = config.out or os.path.join("runs", f"depth-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(out, exist_ok=True)
    train_set, test_set, _ = load_image_data("digits")
    rows, flows = [], {}
    for depth in config.depths:
        for architecture in ARCHITECTURES:
            for batch_norm in (False, True):
                row, flow = _train_one(config, (train_set, test_set), architecture, depth,
                                       batch_norm)
                rows.append(row)
                flows[row["network"]] = flow
                flow.save_json(os.path.join(out, f"gradients-{row['network']}.json"))
                say(config, _progress_line(row))
    _write_results(out, config, rows)
    _write_report(out, config, rows, flows)
    say(config, f"done: results.json and report.html in {out}")
    return rows


def _progress_line(row):
    ratio = row["init_first_over_last"]
    return (f"{row['network']:>16}: first/last layer gradient at init "
            f"{'n/a' if ratio is None else f'{ratio:.1e}'}, flags {row['flags_at_init']} at "
            f"init + {row['flags_later']} later, "
            f"{'diverged (NaN/Inf loss), ' if row['diverged'] else ''}test acc "
            f"{row['test_acc']:.4f} ({row['seconds']:.1f} s)")


def _write_results(out, config, rows):
    document = json.dumps({"config": dataclasses.asdict(config), "results": rows},
                          indent=1).encode("utf-8")
    atomic_write(os.path.join(out, "results.json"), lambda f: f.write(document),
                 owner="experiment depth")


def _write_report(out, config, rows, flows):
    report = Report("retrograd depth experiment",
                    f"Plain and residual CNNs of depths {', '.join(map(str, config.depths))} on "
                    f"the digits, with and without batch norm, {config.steps} SGD steps each "
                    f"(lr {config.lr}, batch {config.batch_size}, seed {config.seed}).")
    report.add(Section.table("Results", rows, ["network", "init_first_over_last",
                                               "flags_at_init", "flags_later", "diverged",
                                               "final_train_loss", "test_acc", "seconds"]))
    init_png = os.path.join(out, "gradients-at-init.png")
    panels = {"without batch norm": {}, "with batch norm": {}}
    for name, flow in flows.items():
        panel = panels["with batch norm" if name.endswith("-bn") else "without batch norm"]
        panel[name] = [s.rms for s in flow.layer_gradients(flow.records[0]).values()]
    if render.plot_depth_profiles(panels, init_png):
        report.add(Section.figure("Gradient RMS per layer at initialization, by relative depth",
                                  init_png, "one line per network: the gradient RMS of each "
                                  "layer from the input (0) to the output (1), log scale"))
    deepest = max(config.depths)
    for name, flow in flows.items():
        if name.split("-")[1] == str(deepest):
            figures = os.path.join(out, name)
            os.makedirs(figures, exist_ok=True)
            for section in flow.sections(figures)[:2]:
                report.add(dataclasses.replace(section, title=f"{name}: {section.title}"))
    report.write(os.path.join(out, "report.html"))
