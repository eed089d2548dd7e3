"""The Module 4 lab (docs/course/m4_depth.py): its reduced form runs in time, writes readable
figures and a results page, and its numbers agree with computations made here without it:
gradient norms recomputed from ``.grad``, the first training loss recomputed from the model."""

import math

import numpy as np
import pytest

import retrograd as rg
from retrograd.nn import functional as F
from retrograd.training.common import seeded_batches
from retrograd.training.depth_experiment import build_network
from retrograd.training.image import load_image_data
from retrograd.utils.data import DataLoader
from tests.course._lab import assert_outputs, assert_page, lab_fixture, load_lab

FIGURES = ["m4-gradient-profiles.png", "m4-first-over-last.png", "m4-training.png"]

lab = lab_fixture("m4_depth")


@pytest.fixture(scope="module")
def digits():
    train_set, test_set, _ = load_image_data("digits")
    return train_set, test_set


def _row(result, network, seed=0):
    return next(r for r in result["init"] if r["network"] == network and r["seed"] == seed)


def _layer_rms(model, prefix):
    """RMS of all the gradients of the parameters named ``prefix.*``, from ``.grad``."""
    grads = [p.grad.numpy().astype(np.float64) for name, p in model.named_parameters()
             if name.rpartition(".")[0] == prefix]
    return math.sqrt(sum(float(np.sum(g * g)) for g in grads) / sum(g.size for g in grads))


def test_outputs_are_readable(lab):
    result, out = lab
    text = assert_outputs(out, FIGURES, "m4-depth.md")
    for name in ("plain-56", "residual-56", "plain-20", "residual-20"):
        assert f"| {name} |" in text
    for figure in FIGURES:
        assert f"({figure})" in text


@pytest.mark.parametrize("network, first, last", [("plain-56", "features.0", "fc"),
                                                  ("residual-56", "conv1", "fc"),
                                                  ("plain-8", "features.0", "fc")])
def test_gradients_at_init_match_grad(lab, digits, network, first, last):
    # the monitor's first and last layer RMS, recomputed from .grad of the same network on
    # the same batch (the first 32 training digits, in order)
    result, _ = lab
    row = _row(result, network)
    x, y = next(iter(DataLoader(digits[0], batch_size=result["settings"]["init_batch"])))
    architecture, depth = network.split("-")
    rg.manual_seed(0)
    model = build_network(architecture, int(depth), batch_norm=False)
    F.cross_entropy(model(x), y).backward()
    assert row["first"] == pytest.approx(_layer_rms(model, first), rel=1e-4)
    assert row["last"] == pytest.approx(_layer_rms(model, last), rel=1e-4)
    assert row["layers"][0] == first and row["layers"][-1] == last


def test_shortcuts_keep_the_first_layers_gradient(lab):
    # the plain stacks lose a constant factor per layer (docs/depth-experiment.md: 9e-4,
    # 2e-9, 2e-26 of the last layer's gradient at 8, 20, 56 layers); the residual ones keep
    # the first layer within a decade of the last at every depth
    summary = {s["network"]: s for s in lab[0]["summary"]}
    plain = [summary[f"plain-{d}"]["ratio"] for d in (8, 20, 56)]
    residual = [summary[f"residual-{d}"]["ratio"] for d in (8, 20, 56)]
    assert plain[0] > 1e3 * plain[1] > 1e3 * 1e3 * plain[2]
    assert plain[2] < 1e-20
    assert all(0.1 < r < 10 for r in residual)
    assert _row(lab[0], "residual-56")["first"] > 1e20 * _row(lab[0], "plain-56")["first"]
    assert summary["plain-56"]["flags"] > 0 and summary["residual-56"]["flags"] == 0


def test_first_training_loss_matches_the_model(lab, digits):
    # the loss at step 0 is the fresh network's cross-entropy on the first shuffled batch
    result, _ = lab
    for run, architecture in zip(result["training"], ("plain", "residual")):
        rg.manual_seed(0)
        model = build_network(architecture, 20, batch_norm=False)
        x, y = next(seeded_batches(digits[0], 32, 1, 0))
        assert run["losses"][0] == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-4)
        assert len(run["losses"]) == result["settings"]["steps"]


def test_residual_network_learns_where_the_plain_one_cannot(lab):
    plain, residual = lab[0]["training"]
    assert plain["network"] == "plain-20" and residual["network"] == "residual-20"
    assert abs(plain["final_loss"] - math.log(10)) < 0.1     # stuck at chance
    assert residual["final_loss"] < plain["final_loss"] - 0.5
    assert residual["test_acc"] > plain["test_acc"] + 0.2
    assert max(plain["first_layer_rms"]) < 1e-8 < min(residual["first_layer_rms"])


def test_bad_depth_is_refused():
    with pytest.raises(SystemExit):
        load_lab("m4_depth").main(["--quick", "--train-depth", "21"])


def test_page_links_every_figure_and_gives_the_command(lab):
    page = assert_page("m4_depth", lab[1], FIGURES)
    assert "../depth-experiment.md" in page and "../gradient-flow.md" in page
