"""GradientMonitor: its numbers against a direct computation from .grad, module outputs and
the parameters around the optimizer's step; the vanishing-gradient flag on a plain 56-layer CNN
and not on its residual twin; figures, report sections, JSON and bad input."""

import contextlib
import json

import numpy as np
import pytest

import retrograd as rg
from retrograd import nn, optim
from retrograd.autograd.grad_mode import STATE
from retrograd.datasets import Digits
from retrograd.inspect import GradientFlow, GradientMonitor, Report
from retrograd.inspect.gradient_flow import (HISTOGRAM_EDGES, ActivationStats, GradientFlag,
                                             GradientStats, StepRecord, find_flags)
from retrograd.models import PlainCNN
from retrograd.nn import functional as F
from tests.browser import check_page, find_chromium

RTOL = 1e-12      # the monitor and the direct computation both work in float64


@pytest.fixture(scope="module")
def digits():
    """The digits training images, normalized as `retrograd train` does, (N, 1, 8, 8)."""
    data = Digits(train=True)
    images = (data.data - data.data.mean()) / data.data.std()
    return images[:, None].astype(np.float32), data.targets


def _batch(digits, seed, size=16):
    images, labels = digits
    rows = np.random.default_rng(seed).choice(len(images), size, replace=False)
    return rg.tensor(images[rows]), rg.tensor(labels[rows])


def _small_model():
    """Every kind of leaf the monitor treats apart: conv, batch norm (a constant weight before
    the first step), ReLU (exact zeros), Tanh and Sigmoid (saturation)."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(256, 16), nn.Tanh(), nn.Linear(16, 16),
                          nn.Sigmoid(), nn.Linear(16, 10))
    with rg.no_grad():
        model[4].weight.mul_(6.0)                 # some tanh outputs past 0.97
        model[6].weight.mul_(4.0)                 # some sigmoid outputs past 0.03 / 0.97
    return model


def _capture_outputs(model):
    """{module path: list of the module's outputs}, via forward hooks of the test's own."""
    outputs = {}
    for path, module in model.named_modules():
        if next(module.children(), None) is None:
            module.register_forward_hook(
                lambda m, args, out, path=path: outputs.setdefault(path, []).append(
                    out.detach().numpy().astype(np.float64)))
    return outputs


def _hook_count(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# ----------------------------------------------------------------------------- the numbers

def test_numbers_equal_a_direct_computation_on_the_same_step(digits):
    rg.manual_seed(0)
    model = _small_model()
    outputs = _capture_outputs(model)
    test_hooks = _hook_count(model)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    monitor = GradientMonitor(model, every=2)
    direct = []
    for step in range(3):
        x, y = _batch(digits, step)
        outputs.clear()
        with monitor.step():
            if step == 1:        # not recorded: no hook of the monitor, no observer
                assert _hook_count(model) == test_hooks and STATE.observers == ()
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            grads = {n: p.grad.numpy().astype(np.float64) for n, p in model.named_parameters()}
            before = {n: p.detach().numpy().astype(np.float64)
                      for n, p in model.named_parameters()}
            opt.step()
            after = {n: p.detach().numpy().astype(np.float64)
                     for n, p in model.named_parameters()}
        direct.append((grads, before, after, {p: o[0] for p, o in outputs.items()}))
    assert monitor.flow.steps == [0, 2] and monitor.step_count == 3
    assert _hook_count(model) == test_hooks

    for record, (grads, before, after, outs) in zip(monitor.records, direct[::2]):
        assert set(record.gradients) == set(grads)
        for name, g in grads.items():
            stats = record.gradients[name]
            assert np.abs(g).max() > 0
            np.testing.assert_allclose(stats.norm, np.sqrt(np.sum(g * g)), rtol=RTOL)
            np.testing.assert_allclose(stats.mean_abs, np.abs(g).mean(), rtol=RTOL)
            assert stats.max_abs == np.abs(g).max() and stats.numel == g.size
            scale = before[name].std()
            if scale == 0:       # batch norm's weight (ones) and bias (zeros) at step 0
                assert record.step == 0 and name.startswith("1.") and record.updates[name] is None
            else:
                expected = np.std(after[name] - before[name]) / scale
                assert 1e-5 < expected and record.updates[name] == pytest.approx(expected,
                                                                                 rel=RTOL)
        assert set(record.activations) == set(outs)
        for path, out in outs.items():
            _check_activation(record.activations[path], out)


def _check_activation(stats, out):
    np.testing.assert_allclose(stats.mean, out.mean(), rtol=RTOL)
    np.testing.assert_allclose(stats.std, out.std(), rtol=RTOL)
    assert stats.count == out.size and stats.zero_fraction == np.mean(out == 0)
    if stats.module == "Tanh":
        share = np.mean(np.abs(out) > 0.97)
    elif stats.module == "Sigmoid":
        share = np.mean((out < 0.03) | (out > 0.97))
    else:
        assert stats.saturated_fraction is None
        share = None
    if share is not None:
        assert 0 < share < 1 and stats.saturated_fraction == share
    if stats.module == "ReLU":
        assert 0 < stats.zero_fraction < 1
    nonzero = out[out != 0]
    expected, _ = np.histogram(nonzero, bins=[-np.inf, *HISTOGRAM_EDGES, np.inf])
    assert stats.histogram == tuple(expected) and sum(stats.histogram) == nonzero.size


def test_histogram_bins_hold_their_left_edge_and_zeros_are_apart():
    layer = nn.Linear(1, 5)
    with rg.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(rg.tensor([1.0, -1.0, 0.0, 0.0, 1e4]))     # edges: 1, -1 and 1e4
    monitor = GradientMonitor(layer, every=1)
    layer(rg.ones(2, 1)).sum().backward()
    (stats,) = monitor.record().activations.values()
    counts = dict(enumerate(stats.histogram))
    edges = list(HISTOGRAM_EDGES)
    expected = {edges.index(1.0) + 1: 2, edges.index(-1.0) + 1: 2, len(edges): 2}
    assert {i: c for i, c in counts.items() if c} == expected and stats.zero_fraction == 0.4


def test_record_after_backward_gives_the_same_numbers_as_the_step_block(digits):
    flows = []
    for use_record in (False, True):
        rg.manual_seed(0)
        model = _small_model()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        with GradientMonitor(model, every=2) as monitor:
            for step in range(5):
                x, y = _batch(digits, step)
                with contextlib.nullcontext() if use_record else monitor.step():
                    opt.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    if use_record:
                        monitor.record()
                    opt.step()
                with rg.no_grad():              # an evaluation: not part of the activations
                    model(x[:3])
        flows.append(monitor.flow)
    step_flow, record_flow = flows
    assert record_flow.steps == [0, 2, 4] and record_flow == step_flow
    assert all(r.updates and r.activations for r in record_flow.records)
    assert record_flow.records[0].activations["2"].count == 16 * 4 * 8 * 8


def test_layers_follow_the_forward_order_not_the_registration_order():
    class Reversed(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(8, 2)
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.body = nn.Linear(3, 8)

        def forward(self, x):
            h = self.body(x).relu()
            return self.head(self.attn(h, h, h)[0])

    model = Reversed()
    monitor = GradientMonitor(model, every=1)
    assert monitor.flow.layers == ["head", "attn", "attn.out_proj", "body"]
    with monitor.step():
        model(rg.randn(2, 5, 3)).sum().backward()
    # attention uses out_proj's weights without running it: it goes with its parent
    assert monitor.flow.layers == ["body", "attn", "attn.out_proj", "head"]
    assert list(monitor.flow.parameters)[:2] == ["body.weight", "body.bias"]
    assert list(monitor.flow.parameters)[-2:] == ["head.weight", "head.bias"]


def test_an_error_inside_a_step_leaves_no_hook_and_no_record():
    model = _small_model()
    monitor = GradientMonitor(model, every=1)
    with pytest.raises(KeyError), monitor.step():
        model(rg.randn(2, 1, 8, 8))
        raise KeyError("interrupted")
    assert _hook_count(model) == 0 and STATE.observers == ()
    assert monitor.step_count == 0 and monitor.records == []
    with pytest.raises(RuntimeError, match="do not nest"), monitor.step(), monitor.step():
        pass
    with pytest.raises(RuntimeError, match="one or the other"), monitor.step():
        monitor.record()


# ----------------------------------------------------------------------------- the flags

class _Block(nn.Module):
    """Two conv3x3 with a ReLU between; with ``residual`` the input (or its 1x1 projection
    when the shape changes) is added before the last ReLU."""

    def __init__(self, cin, cout, stride, residual):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.residual = residual
        if residual and (stride != 1 or cin != cout):
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride)
        else:
            self.shortcut = None

    def forward(self, x):
        out = self.conv2(self.relu(self.conv1(x)))
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(out)


def _cnn56(residual, widths=(16, 32, 64)):
    """ResNet-56's layout without normalization: a stem conv, 3 stages of 9 two-conv blocks
    (with or without the shortcuts), pooling and a linear layer; PyTorch's default init."""
    layers, channels = [nn.Conv2d(1, widths[0], 3, padding=1), nn.ReLU()], widths[0]
    for stage, width in enumerate(widths):
        for k in range(9):
            layers.append(_Block(channels, width, 2 if stage and not k else 1, residual))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]
    return nn.Sequential(*layers)


def _flags_at_initialization(model, x, y):
    monitor = GradientMonitor(model, every=1)
    F.cross_entropy(model(x), y).backward()
    monitor.record()
    monitor.close()
    return monitor.flow, monitor.flags


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vanishing_gradients_flagged_in_plain_56_layer_cnns_not_in_the_residual_twin(digits,
                                                                                      seed):
    x, y = _batch(digits, 100 + seed)
    for build, first, last in ((lambda: PlainCNN(56, 1, batch_norm=False), "features.0", "fc"),
                               (lambda: _cnn56(residual=False), "0", "31")):
        rg.manual_seed(seed)
        flow, flags = _flags_at_initialization(build(), x, y)
        flagged = {f.layer for f in flags}
        assert {f.kind for f in flags} == {"vanishing"} and {f.step for f in flags} == {0}
        assert first in flagged and last not in flagged and len(flagged) >= len(flow.layers) // 2
        assert "step 0" in flags[0].message and f"layer {first}:" in flags[0].message

    rg.manual_seed(seed)
    flow, flags = _flags_at_initialization(_cnn56(residual=True), x, y)
    assert flags == [] and len(flow.layers) == 58     # stem, 54 convs, fc, 2 projections


def _layers(*rms):
    return [(f"l{i}", GradientStats(r, r, r, 1)) for i, r in enumerate(rms)]


def test_the_flag_rules_on_chosen_gradients():
    (flag,) = find_flags(3, _layers(1e-7, 1e-3, 2e-3, 1e-3))
    assert (flag.kind, flag.step, flag.layer, flag.reference_layer) == ("vanishing", 3, "l0",
                                                                        "l2")
    assert flag.ratio == pytest.approx(5e-5) and "below 0.0001" in str(flag)
    assert find_flags(0, _layers(2e-7, 1e-3)) == []                # 2e-4 of the next: kept
    (flag,) = find_flags(0, _layers(10.0, 1e-4, 1e-3))
    assert (flag.kind, flag.layer, flag.reference_layer) == ("exploding", "l0", "l1")
    # a flagged (dead or vanishing) layer is no reference: the layers before it are fine
    assert [f.layer for f in find_flags(0, _layers(1e-3, 0.0, 1e-3))] == ["l1"]
    assert [f.layer for f in find_flags(0, _layers(1e-3, 1e-9, 1e-3))] == ["l1"]
    (flag,) = find_flags(0, _layers(float("inf"), 1e-3))
    assert flag.kind == "exploding" and "not finite" in flag.message
    assert find_flags(0, _layers(0.0)) == []


# ----------------------------------------------------------------------------- output

def _short_run(digits, steps=5, every=2):
    rg.manual_seed(0)
    model = _small_model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    monitor = GradientMonitor(model, every=every)
    for step in range(steps):
        x, y = _batch(digits, step)
        with monitor.step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    return monitor


def test_figures_are_pngs_and_sections_fill_a_report(digits, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    monitor = _short_run(digits)
    figures = monitor.save_plots(tmp_path)
    assert [path.rsplit("/", 1)[1] for path, _ in figures.values()] == [
        "gradient_flow.png", "gradient_norms.png", "update_ratio.png", "activations.png"]
    for path, alt in figures.values():
        pixels = matplotlib.image.imread(path, format="png")
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 300 and alt
        assert pixels[..., :3].std() > 0.05                 # not a blank image
    sections = monitor.sections()
    assert [s.title for s in sections] == list(figures) + ["Gradient flags"]
    assert all("data:image/png;base64," in s.body for s in sections[:4])
    assert "No vanishing or exploding gradient at the 3 recorded steps" in sections[4].body
    report = Report("run")
    for section in sections:
        report.add(section)
    page = report.write(str(tmp_path / "report.html"))
    assert open(page, encoding="utf-8").read().count("<img") == 4
    if find_chromium() is not None:          # what a reader sees: every figure decodes
        check = check_page(page, chromium=find_chromium())
        assert (check.images, check.broken_images, check.console_errors) == (4, [], [])


def test_flags_table_and_missing_matplotlib(digits, monkeypatch):
    rg.manual_seed(0)
    flow, flags = _flags_at_initialization(PlainCNN(12, 1, width=4, batch_norm=False),
                                           *_batch(digits, 0))
    assert flags
    (row,) = [r for r in flow.flag_rows() if r["layer"] == "features.0"]
    assert row["kind"] == "vanishing" and row["first step"] == 0 and row["worst ratio"] < 1e-4
    monkeypatch.setattr("retrograd.inspect.report._pyplot", lambda: None)
    assert flow.save_plots("/nonexistent") is False
    note, table = flow.sections()
    assert "matplotlib" in note.body and "<table>" in table.body
    assert "features.0" in table.body and "vanishing" in table.body


def test_json_round_trips(digits, tmp_path):
    monitor = _short_run(digits)
    path = monitor.save_json(str(tmp_path / "flow.json"))
    loaded = GradientFlow.load_json(path)
    assert loaded == monitor.flow and loaded.records[0].updates["1.weight"] is None
    assert len(loaded.records) == 3 and loaded.records[1].activations

    # not finite numbers are strings, so the file stays strict JSON
    flow = GradientFlow("Net", 1, ["a"], {"a.weight": (2,)},
                        [StepRecord(0, {"a.weight": GradientStats(float("inf"), 1.0, 2.0, 2)},
                                    {"a.weight": None},
                                    {"a": ActivationStats("ReLU", 4, float("-inf"), 0.0, 0.5,
                                                          None, (0,) * 51)})],
                        [GradientFlag("exploding", 0, "a", float("inf"))])
    flow.save_json(str(tmp_path / "inf.json"))
    text = (tmp_path / "inf.json").read_text()
    json.loads(text, parse_constant=lambda token: pytest.fail(f"non-JSON token {token}"))
    assert GradientFlow.load_json(str(tmp_path / "inf.json")) == flow

    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a gradient-flow record"):
        GradientFlow.load_json(str(tmp_path / "other.json"))


# ----------------------------------------------------------------------------- bad input

def test_bad_input_gives_clear_errors():
    class Stateless(nn.Module):
        def forward(self, x):
            return x.relu()

    with pytest.raises(ValueError, match="the model Stateless has no parameters"):
        GradientMonitor(Stateless())
    for every in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="every .* must be a positive int"):
            GradientMonitor(nn.Linear(2, 2), every=every)
    with pytest.raises(TypeError, match="model must be a Module"):
        GradientMonitor(lambda x: x)
