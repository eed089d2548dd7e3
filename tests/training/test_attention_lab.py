"""training/attention_lab.py and ``retrograd experiment attention``: a tiny run's results,
flags and report (in a browser), and its option errors."""

import json

import numpy as np
import pytest

from retrograd.cli import main
from retrograd.training.attention_lab import AttentionLabConfig, run_attention_lab
from tests.browser import check_page, chromium_or_skip


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("attention") / "run"
    # 12 steps at the lab's learning rate: the plain model's logits already grow tenfold
    config = AttentionLabConfig(seeds=(0,), steps=12, every=4, n_layer=2, n_head=2, d_model=32,
                                context=32, batch_size=8, probe_windows=4, eval_windows=32,
                                out=str(out), progress=False)
    return run_attention_lab(config), out


def test_the_lab_writes_results_with_per_head_probes_and_named_flags(tiny_run):
    rows, out = tiny_run
    document = json.loads((out / "results.json").read_text())
    results = document["results"]
    assert [(r["seed"], r["variant"]) for r in results] == [(0, "unstable"), (0, "qk_norm")]
    for r in results:
        assert [p["step"] for p in r["probes"]] == [0, 4, 8, 12]
        assert [c["step"] for c in r["val_curve"]] == [0, 4, 8, 12]
        for probe in r["probes"]:
            assert len(probe["layers"]) == 2
            for layer in probe["layers"]:
                assert len(layer["max_abs_logit"]) == 2 and len(layer["normalized_entropy"]) == 2
                assert all(0.0 <= e <= 1.0 + 1e-9 for e in layer["normalized_entropy"])
        assert np.isfinite(r["final_val_loss"])
    unstable, cured = results
    assert unstable["flagged"] and not cured["flagged"]       # the monitor's fixed rules
    flag = unstable["flag"]
    assert flag["kind"] == "logit growth" and flag["step"] in (4, 8, 12)
    assert flag["layer"] in (0, 1) and flag["head"] in (0, 1)
    assert (f"layer {flag['layer']} head {flag['head']}" in flag["message"]
            and f"at step {flag['step']}" in flag["message"])
    probe = next(p for p in unstable["probes"] if p["step"] == flag["step"])
    assert probe["layers"][flag["layer"]]["max_abs_logit"][flag["head"]] == flag["value"]
    page = (out / "report.html").read_text()
    assert "Max |attention logit| over heads, per step" in page and "Validation loss" in page


def test_the_lab_report_loads_in_a_browser(tiny_run):
    chromium = chromium_or_skip()
    page = check_page(tiny_run[1] / "report.html", chromium=chromium)
    assert page.console_errors == [] and page.broken_images == [] and page.images == 3


def test_the_cli_runs_the_lab(tmp_path):
    out = tmp_path / "cli"
    assert main(["experiment", "attention", "--seeds", "1", "--steps", "2", "--out", str(out),
                 "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert [(r["seed"], r["variant"]) for r in results] == [(1, "unstable"), (1, "qk_norm")]
    assert (out / "report.html").exists()


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "steps must be an int >= 1"),
    (["--seeds", "-1"], "seeds must be ints >= 0"),
])
def test_bad_options_are_one_line_errors(argv, message, capsys):
    assert main(["experiment", "attention", *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("retrograd experiment: ") and message in err
    assert len(err.strip().splitlines()) == 1
