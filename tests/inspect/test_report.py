"""retrograd/inspect/report.py: report pages made of sections, and the curves and page of
epoch- and step-based runs."""

import base64
import os
import re

import pytest

from retrograd.inspect import report
from retrograd.inspect.report import Report, Section
from tests.inspect._png import tiny_png

EPOCHS = [dict(epoch=e, step=10 * e, train_loss=1.0 / e, train_acc=0.5 + 0.1 * e,
               test_loss=1.2 / e, test_acc=0.45 + 0.1 * e, samples_per_s=1234.5, seconds=2.0,
               lr=0.1) for e in (1, 2, 3)]
STEPS = [dict(step=s, train_loss=3.0 - s / 100, val_loss=3.1 - s / 100, test_exact_match=s / 300)
         for s in (100, 200, 300)]
CONFIG = dict(model="resnet_digits", lr=0.1, epochs=3)


def _files(folder):
    return sorted(os.listdir(folder))


def _titles(page):
    """The section titles of a page, in page order."""
    return re.findall(r"<h2>(.*?)</h2>", page)


def _anchors(page):
    return re.findall(r'<section id="([^"]*)">', page)


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
    page = open(path, encoding="utf-8").read()
    assert "<img" not in page
    assert _files(tmp_path) == ["report.html"]
    assert "No figure: matplotlib (the 'train' extra) is not installed" in page


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


# ----------------------------------------------------------------------------- run pages

def test_run_page_sections_are_curves_epochs_tools_then_configuration(tmp_path):
    pytest.importorskip("matplotlib")
    tools = [Section.html("Gradient flow", "<p>flow</p>"), Section.table("Timing", [dict(a=1)])]
    path = report.write_run_report(str(tmp_path), dict(config=CONFIG, info=dict(name="digits"),
                                                       history=EPOCHS), sections=tools)
    page = open(path, encoding="utf-8").read()
    assert _titles(page) == ["Curves", "Epochs", "Gradient flow", "Timing", "Configuration"]
    assert _anchors(page) == ["curves", "epochs", "gradient-flow", "timing", "configuration"]
    assert page.count("<img") == 1 and "<p>flow</p>" in page


def test_step_page_takes_tool_sections_too(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_pyplot", lambda: None)
    metrics = dict(config=CONFIG, info={}, history=STEPS)
    path = report.write_step_report(str(tmp_path), metrics, ("val_loss",), "gpt",
                                    sections=[Section.figure("Attention", tiny_png(), "heads")])
    page = open(path, encoding="utf-8").read()
    assert _titles(page) == ["Curves", "Evaluations", "Attention", "Configuration"]
    assert page.count("<img") == 1 and 'alt="heads"' in page
    assert "<th>test_exact_match</th>" in page


def test_an_empty_history_has_no_curves_section_and_says_there_is_no_data(tmp_path):
    path = report.write_run_report(str(tmp_path), dict(config=CONFIG, info=dict(name="digits"),
                                                       history=[]))
    page = open(path, encoding="utf-8").read()
    assert _titles(page) == ["Epochs", "Configuration"]
    assert "No data yet." in page and _files(tmp_path) == ["report.html"]


# ----------------------------------------------------------------------------- sections

def test_sections_keep_their_order_and_get_unique_anchors_from_their_titles():
    page = Report("run", summary_html="<b>0.9</b>")
    added = [page.add_table("Epochs", [dict(epoch=1)]), page.add_html("Notes & caveats", "<p/>"),
             page.add_figure("Epochs", tiny_png(), "again"), page.add(Section("", "<p/>")),
             page.add(Section("Loss", "<p/>", anchor="Grad Flow"))]
    assert [s.anchor for s in added] == ["epochs", "notes-caveats", "epochs-2", "section",
                                         "grad-flow"]
    assert page.sections == added
    html = page.render()
    assert _anchors(html) == ["epochs", "notes-caveats", "epochs-2", "section", "grad-flow"]
    assert html.index("<h1>run</h1>") < html.index("<p><b>0.9</b></p>") < html.index("<nav>")
    assert html.index("<nav>") < html.index('<section id="epochs">')


def test_only_sections_can_be_added(tmp_path):
    with pytest.raises(TypeError, match="report: expected a Section .*got str"):
        report.write_run_report(str(tmp_path), dict(config=CONFIG, info={}, history=[]),
                                sections=["<p>not a section</p>"])


def test_a_page_with_fewer_than_three_sections_has_no_contents_line():
    page = Report("run")
    page.add_html("One", "<p>1</p>")
    page.add_html("Two", "<p>2</p>")
    assert "<nav>" not in page.render()
    page.add_html("Three", "<p>3</p>")
    links = re.findall(r'<a href="#([^"]*)">', page.render())
    assert links == ["one", "two", "three"]


def test_a_table_section_lists_rows_under_the_given_or_first_seen_columns():
    rows = [dict(step=1, loss=0.123456), dict(step=2, acc=0.5, loss=2e5)]
    body = Section.table("t", rows).body
    assert re.findall(r"<th>(.*?)</th>", body) == ["step", "loss", "acc"]
    assert "<tr><td>1</td><td>0.1235</td><td></td></tr>" in body     # a missing key: empty
    assert "<tr><td>2</td><td>200,000</td><td>0.5</td></tr>" in body
    chosen = Section.table("t", rows, ["loss"]).body
    assert re.findall(r"<th>(.*?)</th>", chosen) == ["loss"] and "<td>1</td>" not in chosen
    assert Section.table("t", iter(rows)).body == body                # any iterable of rows
    assert Section.table("t", [], ["a"]).body == "<p>No data yet.</p>"


def test_a_figure_given_as_bytes_or_as_a_path_embeds_the_same_png(tmp_path):
    png = tiny_png()
    (tmp_path / "f.png").write_bytes(png)
    from_bytes = Section.figure("f", png, "a figure")
    assert Section.figure("f", str(tmp_path / "f.png"), "a figure") == from_bytes
    assert Section.figure("f", tmp_path / "f.png", "a figure") == from_bytes       # a Path
    data = re.fullmatch(r'<img alt="a figure" src="data:image/png;base64,([^"]+)">',
                        from_bytes.body).group(1)
    assert base64.b64decode(data) == png


def test_a_figure_that_is_missing_or_not_a_png_names_the_section_and_the_file(tmp_path):
    missing = re.escape(f"report: figure 'f': no file {tmp_path / 'none.png'}")
    with pytest.raises(FileNotFoundError, match=missing):
        Section.figure("f", str(tmp_path / "none.png"), "x")
    (tmp_path / "f.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a png")
    with pytest.raises(ValueError, match=r"report: figure 'f': .*f\.jpg is not a PNG"):
        Section.figure("f", str(tmp_path / "f.jpg"), "x")
    with pytest.raises(ValueError, match="report: figure 'f': the bytes given is not a PNG"):
        Section.figure("f", b"GIF89a", "x")
    with pytest.raises(TypeError, match="report: figure 'f': expected PNG bytes or a path, "
                                        "got int"):
        Section.figure("f", 3, "x")


def test_titles_cells_and_alt_text_are_escaped_and_html_sections_are_kept():
    page = Report("<run> & co")
    page.add_table("a<b", [{"<k>": "x&y"}])
    page.add_figure('say "hi"', tiny_png(), 'a "quoted" <alt>')
    page.add_html("raw", "<p><i>kept</i></p>")
    html = page.render()
    assert "<title>&lt;run&gt; &amp; co</title>" in html and "<h1>&lt;run&gt; &amp; co</h1>" in html
    assert "<h2>a&lt;b</h2>" in html and '<a href="#a-b">a&lt;b</a>' in html
    assert "<th>&lt;k&gt;</th>" in html and "<td>x&amp;y</td>" in html
    assert 'alt="a &quot;quoted&quot; &lt;alt&gt;"' in html
    assert "<h2>say &quot;hi&quot;</h2>" in html and "<p><i>kept</i></p>" in html
    assert "<run>" not in html and "<k>" not in html and "<alt>" not in html


def test_write_replaces_the_page_in_one_step_and_leaves_no_temporary_file(tmp_path,
                                                                         monkeypatch):
    path = str(tmp_path / "report.html")
    first = Report("first")
    assert first.write(path) == path
    assert _files(tmp_path) == ["report.html"]

    def interrupted(src, dst):
        raise OSError(f"disk full while renaming {src}")

    monkeypatch.setattr(report.os, "replace", interrupted)
    with pytest.raises(OSError, match="disk full"):
        Report("second").write(path)
    assert open(path, encoding="utf-8").read() == first.render()     # the old page, whole
    assert _files(tmp_path) == ["report.html"]
    monkeypatch.undo()
    Report("second").write(path)
    assert "<h1>second</h1>" in open(path, encoding="utf-8").read()
