"""training/inspection.py: the gradient sections of ``retrograd train``'s report (on by
default): what they hold, that they leave training untouched, the DOT fallback without
Graphviz, the language-model job, and the page in a browser."""

import json

import numpy as np
import pytest

from retrograd.cli import main
from retrograd.inspect import graph
from retrograd.training import language_model
from retrograd.training.image import TrainConfig, train
from tests.browser import check_page, chromium_or_skip
from tests.datasets.test_text import SAMPLE

SECTIONS = ("Gradient flow at step", "Gradient norm by layer and step", "Update:data ratio",
            "Activations at step", "Gradient flags",
            "The graph of the first training step (modules collapsed)",
            "Attribution: saliency and Grad-CAM")


def _run(tmp_path, name, epochs=1, **kw):
    return train(TrainConfig(data="digits", model="resnet-digits", epochs=epochs,
                             batch_size=32, limit_train=192, progress=False,
                             out=str(tmp_path / name), **kw))


def _weights(summary):
    return {k: v.numpy().copy() for k, v in summary["model"].state_dict().items()}


def test_the_report_has_the_gradient_sections_and_gradients_json(tmp_path):
    _run(tmp_path, "run")
    page = (tmp_path / "run" / "report.html").read_text()
    for title in SECTIONS:
        assert f"<h2>{title}" in page, title
    assert "<svg" in page or "The DOT source" in page
    flow = json.loads((tmp_path / "run" / "gradients.json").read_text())
    assert flow["every"] == 50 and [r["step"] for r in flow["records"]] == [0]
    assert flow["layers"][0] == "conv1" and flow["layers"][-1] == "fc"


def test_inspection_leaves_training_bit_identical(tmp_path):
    inspected = _weights(_run(tmp_path, "on", epochs=2))
    plain = _weights(_run(tmp_path, "off", epochs=2, inspect=False))
    assert inspected.keys() == plain.keys()
    for key in plain:
        assert np.array_equal(inspected[key], plain[key]), key
    assert "Gradient flow" not in (tmp_path / "off" / "report.html").read_text()
    assert not (tmp_path / "off" / "gradients.json").exists()


def test_an_unfinished_run_says_the_sections_come_with_the_final_report(tmp_path):
    train(TrainConfig(data="digits", model="resnet-digits", epochs=3, limit_train=96,
                      progress=False, out=str(tmp_path / "part")), stop_after=1)
    page = (tmp_path / "part" / "report.html").read_text()
    assert "drawn with the run's final report" in page and "Gradient flow at" not in page


def test_without_graphviz_the_report_shows_the_dot_source(tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    _run(tmp_path, "nodot")
    page = (tmp_path / "nodot" / "report.html").read_text()
    assert "apt-get install graphviz" in page and "digraph" in page and "<svg" not in page


def test_the_cli_turns_the_sections_off(tmp_path):
    code = main(["train", "--epochs", "1", "--no-inspect", "--quiet", "--out",
                 str(tmp_path / "cli")])
    assert code == 0
    assert "Gradient flow" not in (tmp_path / "cli" / "report.html").read_text()


def test_the_language_model_report_has_the_gradient_flow_and_the_graph(tmp_path):
    language_model.train(language_model.LMConfig(
        data=f"text:{SAMPLE}", steps=4, batch_size=4, context=16, n_layer=2, n_head=2,
        d_model=16, eval_interval=4, progress=False, out=str(tmp_path / "lm")))
    page = (tmp_path / "lm" / "report.html").read_text()
    assert "Gradient flow at step" in page and "The graph of the first training step" in page
    assert "Attribution" not in page
    assert "blocks.0" in page and "blocks.1" in page          # one collapsed box per block


def test_the_report_with_gradient_sections_loads_in_a_browser(tmp_path):
    chromium = chromium_or_skip()
    _run(tmp_path, "page")
    page = check_page(tmp_path / "page" / "report.html", chromium=chromium)
    assert page.console_errors == [] and page.broken_images == [] and page.images >= 6


@pytest.mark.parametrize("flag", ["--inspect", "--no-inspect"])
def test_inspect_applies_to_every_job(flag, tmp_path):
    code = main(["train", "--data", f"text:{SAMPLE}", "--steps", "2", "--context", "8",
                 "--batch-size", "2", "--eval-interval", "2", flag, "--quiet", "--out",
                 str(tmp_path / flag)])
    assert code == 0
