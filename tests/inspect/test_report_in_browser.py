"""Report pages opened in a real browser (headless Chromium, see tests/browser.py): they load
without console errors and every image decodes. The checker itself is shown to catch a broken
image, a console.error and an uncaught exception."""

import os

import pytest

from retrograd.inspect import report
from retrograd.inspect.report import Section
from tests.browser import Browser, BrowserError, PageCheck, chromium_or_skip
from tests.inspect._png import tiny_png
from tests.inspect.test_report import CONFIG, EPOCHS, STEPS


@pytest.fixture(scope="module")
def browser():
    with Browser(chromium_or_skip()) as opened:
        yield opened


def _tool_sections(tmp_path):
    """One section of each kind, figures given both as bytes and as a path."""
    (tmp_path / "flow.png").write_bytes(tiny_png(8, 6))
    return [Section.figure("Gradient flow", str(tmp_path / "flow.png"), "gradient norms"),
            Section.figure("Attention", tiny_png(5, 5), "attention weights"),
            Section.table("Profile", [dict(op="conv2d", ms=1.5), dict(op="relu", ms=0.25)]),
            Section.html("Memory", "<p>peak <b>12 MB</b></p>")]


def test_an_epoch_run_report_loads_cleanly_and_every_image_decodes(tmp_path, browser):
    pytest.importorskip("matplotlib")
    path = report.write_run_report(str(tmp_path), dict(config=CONFIG, info=dict(name="digits"),
                                                       history=EPOCHS),
                                   sections=_tool_sections(tmp_path))
    check = browser.check(path)
    assert check == PageCheck(title="retrograd training run", images=3, broken_images=[],
                              console_errors=[])


def test_a_step_run_report_loads_cleanly_and_every_image_decodes(tmp_path, browser):
    pytest.importorskip("matplotlib")
    metrics = dict(config=CONFIG, info={}, history=STEPS)
    path = report.write_step_report(str(tmp_path), metrics, ("val_loss", "test_exact_match"),
                                    "reverse task", sections=_tool_sections(tmp_path))
    assert browser.check(path) == PageCheck(title="retrograd training run", images=3,
                                            broken_images=[], console_errors=[])


# ----------------------------------------------------------------------------- the checker

def _page(tmp_path, body, name="page.html"):
    path = tmp_path / name
    path.write_text(f'<!doctype html><html><head><meta charset="utf-8"><link rel="icon" '
                    f'href="data:,"><title>t</title></head><body>{body}</body></html>')
    return str(path)


def test_the_checker_reports_a_broken_image(tmp_path, browser):
    good = Section.figure("g", tiny_png(), "good").body
    bad = '<img alt="bad" src="data:image/png;base64,AAAA">'
    check = browser.check(_page(tmp_path, good + bad))
    assert (check.images, check.broken_images, check.console_errors) == (2, ["bad"], [])


def test_the_checker_reports_console_errors_and_uncaught_exceptions(tmp_path, browser):
    check = browser.check(_page(tmp_path, "<script>console.error('boom', 42)</script>"))
    assert check.console_errors == ["console.error: boom 42"]
    check = browser.check(_page(tmp_path, "<script>throw new TypeError('kaput')</script>"))
    assert len(check.console_errors) == 1
    assert check.console_errors[0].startswith("uncaught: TypeError: kaput")
    check = browser.check(_page(tmp_path, '<script src="missing.js"></script>'))
    assert len(check.console_errors) == 1 and "missing.js" in check.console_errors[0]
    check = browser.check(_page(tmp_path, "<script>console.log('fine')</script>"))
    assert check.console_errors == []                        # only errors are collected


def test_the_checker_fails_with_a_message_rather_than_hanging(tmp_path, browser):
    with pytest.raises(BrowserError, match="cannot open .*absent.html: net::ERR_FILE_NOT_FOUND"):
        browser.check(str(tmp_path / "absent.html"))
    with pytest.raises(BrowserError, match="gave no .* in time"):
        browser.check(_page(tmp_path, "<p>slow</p>"), timeout=0.0)
    with pytest.raises(BrowserError, match="cannot start /nonexistent/chromium"), \
            Browser("/nonexistent/chromium"):
        pass
    with pytest.raises(BrowserError, match=r"/bin/false exited .*Browser\.getVersion"), \
            Browser("/bin/false"):
        pass
    assert os.listdir(tmp_path) == ["page.html"]
