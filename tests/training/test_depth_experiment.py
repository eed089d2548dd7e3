"""training/depth_experiment.py and ``retrograd experiment depth``: the networks it builds,
the results it writes, its report (in a browser), and its errors."""

import json

import matplotlib.image
import numpy as np
import pytest

import retrograd as rg
from retrograd.cli import main
from retrograd.inspect import render
from retrograd.training.depth_experiment import DepthConfig, build_network
from tests.browser import check_page, chromium_or_skip


def _convs(model):
    return [m for m in model.modules() if isinstance(m, rg.nn.Conv2d) and m.kernel_size == (3, 3)]


@pytest.mark.parametrize("depth", [8, 20, 56])
def test_the_networks_have_the_depth_and_normalization_asked_for(depth):
    for batch_norm in (False, True):
        plain = build_network("plain", depth, batch_norm)
        residual = build_network("residual", depth, batch_norm)
        assert len(_convs(plain)) == depth and len(_convs(residual)) == depth - 1   # + fc
        for model in (plain, residual):
            norms = any(isinstance(m, rg.nn.BatchNorm2d) for m in model.modules())
            assert norms == batch_norm
            assert model(rg.zeros(2, 1, 8, 8)).shape == (2, 10)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("depth") / "run"
    code = main(["experiment", "depth", "--depths", "8", "20", "--steps", "6", "--every", "3",
                 "--out", str(out), "--quiet"])
    return code, out


def test_the_experiment_writes_results_gradients_and_a_report(small_run):
    code, out = small_run
    assert code == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert [r["network"] for r in results] == ["plain-8", "plain-8-bn", "residual-8",
                                               "residual-8-bn", "plain-20", "plain-20-bn",
                                               "residual-20", "residual-20-bn"]
    by_name = {r["network"]: r for r in results}
    # the plain 20-layer CNN without normalization: the first layer's gradient is vanishingly
    # small against the last's at initialization, and the monitor flags it; its twins do not
    assert by_name["plain-20"]["init_first_over_last"] < 1e-6
    assert by_name["plain-20"]["flags_at_init"] > 0
    for twin in ("residual-20", "residual-20-bn", "plain-20-bn"):
        assert by_name[twin]["init_first_over_last"] > 1e-2 and by_name[twin]["flags_at_init"] == 0
    flow = json.loads((out / "gradients-plain-20.json").read_text())
    assert flow["every"] == 3 and [r["step"] for r in flow["records"]] == [0, 3]
    assert (out / "gradients-at-init.png").stat().st_size > 0
    page = (out / "report.html").read_text()
    assert "Gradient RMS per layer at initialization" in page
    assert "plain-20: Gradient norm by layer and step" in page


def test_the_experiment_report_loads_in_a_browser(small_run):
    chromium = chromium_or_skip()
    page = check_page(small_run[1] / "report.html", chromium=chromium)
    assert page.console_errors == [] and page.broken_images == [] and page.images >= 5


@pytest.mark.parametrize("argv, message", [
    (["--depths", "10"], "depth 10 is not 6n + 2"),
    (["--depths", "8", "--steps", "0"], "steps must be an int >= 1"),
    (["--depths", "8", "--lr", "-1"], "lr must be a finite number >= 0.0"),
])
def test_bad_options_are_one_line_errors(argv, message, capsys):
    assert main(["experiment", "depth", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("retrograd experiment: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_depth_config_checks_its_options():
    with pytest.raises(ValueError, match="give at least one depth"):
        DepthConfig(depths=())


def test_a_heatmap_draws_non_finite_gradients_in_red(tmp_path):
    path = tmp_path / "heat.png"
    values = [[1.0, float("nan")], [0.1, float("inf")], [None, 2.0]]
    assert render.plot_layer_heatmap(["a", "b", "c"], [0, 10], values, path)
    pixels = matplotlib.image.imread(path)[..., :3]
    red = (pixels[..., 0] > 0.75) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)
    assert red.sum() > 1000          # the two non-finite cells, not a stray pixel
    values[0][1] = values[1][1] = 1.0
    assert render.plot_layer_heatmap(["a", "b", "c"], [0, 10], values, path)
    pixels = matplotlib.image.imread(path)[..., :3]
    assert not ((pixels[..., 0] > 0.75) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)).any()
    assert np.isfinite(pixels).all()
