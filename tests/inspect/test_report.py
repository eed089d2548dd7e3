"""retrograd/inspect/report.py: the curves and HTML page of epoch- and step-based runs."""

import os

import pytest

from retrograd.inspect import report

EPOCHS = [dict(epoch=e, step=10 * e, train_loss=1.0 / e, train_acc=0.5 + 0.1 * e,
               test_loss=1.2 / e, test_acc=0.45 + 0.1 * e, samples_per_s=1234.5, seconds=2.0,
               lr=0.1) for e in (1, 2, 3)]
STEPS = [dict(step=s, train_loss=3.0 - s / 100, val_loss=3.1 - s / 100, test_exact_match=s / 300)
         for s in (100, 200, 300)]
CONFIG = dict(model="resnet_digits", lr=0.1, epochs=3)


def _files(folder):
    return sorted(os.listdir(folder))


def test_epoch_report_embeds_the_curves_and_lists_every_epoch(tmp_path):
    pytest.importorskip("matplotlib")
    path = report.write_run_report(str(tmp_path), dict(config=CONFIG, info=dict(name="digits"),
                                                       history=EPOCHS))
    page = open(path, encoding="utf-8").read()
    assert _files(tmp_path) == ["curves.png", "report.html"]       # no temporary file left
    assert "data:image/png;base64," in page
    assert "resnet_digits on digits: final test accuracy <b>0.75</b> after 3 epochs" in page
    assert page.count("<tr>") == 1 + len(EPOCHS) + 1 + len(CONFIG)  # two headers, the rows
    assert "<td>1234</td>" in page        # floats: four significant digits


def test_numbers_keep_four_significant_digits_and_large_ones_get_separators():
    assert (report._fmt(0.333333), report._fmt(1234.5), report._fmt(123456.7)) == \
        ("0.3333", "1234", "123,457")


def test_step_report_names_the_last_evaluations(tmp_path):
    pytest.importorskip("matplotlib")
    metrics = dict(config=CONFIG, info={}, history=STEPS)
    path = report.write_step_report(str(tmp_path), metrics, ("val_loss", "test_exact_match"),
                                    "reverse task")
    page = open(path, encoding="utf-8").read()
    assert "reverse task: val_loss <b>0.1</b>, test_exact_match <b>1</b> after 300 steps" in page
    assert "data:image/png;base64," in page
    assert _files(tmp_path) == ["curves.png", "report.html"]


def test_reports_without_matplotlib_still_write_the_page(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_pyplot", lambda: None)
    assert not report.plot_curves(EPOCHS, str(tmp_path / "c.png"))
    path = report.write_run_report(str(tmp_path), dict(config=CONFIG, info=dict(name="digits"),
                                                       history=EPOCHS))
    assert "<img" not in open(path, encoding="utf-8").read()
    assert _files(tmp_path) == ["report.html"]


def test_an_empty_history_gives_a_page_without_numbers(tmp_path):
    path = report.write_step_report(str(tmp_path), dict(config=CONFIG, info={}, history=[]),
                                    ("val_loss",), "gpt")
    assert "gpt: n/a after 0 steps" in open(path, encoding="utf-8").read()


def test_values_are_escaped(tmp_path):
    config = dict(model="<script>", lr=0.1)
    path = report.write_run_report(str(tmp_path), dict(config=config, info=dict(name="a&b"),
                                                       history=[]))
    page = open(path, encoding="utf-8").read()
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&amp;b" in page
