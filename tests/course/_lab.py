"""Running a course lab (docs/course/mN_<slug>.py) in its reduced form, and checking what it
wrote the way a reader would see it: every PNG decodes and is not blank, the results page
exists and has a table, and the lab's page gives its command and links its figures."""

import importlib.util
import pathlib
import re
import sys
import time

import numpy as np
import pytest

COURSE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "course"
QUICK_SECONDS = 20  # issue 20: every lab's reduced form runs in under 20 s
LINK = re.compile(r"\]\(([^)#\s]+)\)")


def load_lab(name):
    """The lab script ``docs/course/<name>.py`` as a module (labs are scripts, not a package;
    the course folder goes on sys.path once, for the ``_labkit`` they import)."""
    if str(COURSE) not in sys.path:
        sys.path.insert(0, str(COURSE))
    path = COURSE / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"course_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_lab(name, out, *extra):
    """Run the lab's ``main(["--quick", "--out", out, *extra])``; returns (its result, the
    seconds it took), after checking it kept to the reduced form's time budget."""
    lab = load_lab(name)
    start = time.perf_counter()
    result = lab.main(["--quick", "--out", str(out), *extra])
    seconds = time.perf_counter() - start
    assert seconds < QUICK_SECONDS, f"{name} --quick took {seconds:.1f} s"
    return result, seconds


def assert_png_readable(path):
    """The PNG decodes and shows something (not one flat colour)."""
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100, path
    assert float(np.std(image[..., :3])) > 0.01, f"{path} is blank"


def assert_outputs(out, figures, results_page):
    """Every expected figure decodes and is not blank; the results page has a Markdown table."""
    out = pathlib.Path(out)
    for figure in figures:
        assert_png_readable(out / figure)
    text = (out / results_page).read_text()
    assert "|---" in text or "| ---" in text, f"{results_page} has no table"
    return text


def lab_fixture(name):
    """A module-scoped fixture ``lab``: the lab's reduced form run once for the test module,
    as (its result, its output folder)."""
    @pytest.fixture(scope="module", name="lab")
    def run_once(tmp_path_factory):
        out = tmp_path_factory.mktemp(name.partition("_")[0])
        result, _ = run_lab(name, out)
        return result, out

    return run_once


def module_fixture(name):
    """A module-scoped fixture ``module``: the lab script loaded once for the test module."""
    @pytest.fixture(scope="module", name="module")
    def loaded():
        return load_lab(name)

    return loaded


def assert_page(name, out, figures=()):
    """The lab's page docs/course/<slug>.md opens with its module's title, gives the command
    that runs the lab, links its results page, every figure the lab wrote to ``out`` (and each
    of ``figures``), and only files that exist. Returns the page's text."""
    slug = name.replace("_", "-")
    page = (COURSE / f"{slug}.md").read_text()
    assert page.startswith(f"# Module {name[1]} lab:"), f"{slug}.md: no title"
    assert f"python docs/course/{name}.py" in page, f"{slug}.md: no command"
    assert f"](results/{slug}.md)" in page, f"{slug}.md does not link its results page"
    written = [path.name for path in sorted(pathlib.Path(out).glob(f"{name[:2]}-*.png"))]
    assert written, f"{name} wrote no figure to {out}"
    for figure in [*written, *figures]:
        assert f"](results/{figure})" in page, f"{slug}.md does not link {figure}"
    for target in LINK.findall(page):
        if "://" not in target:
            assert (COURSE / target).exists(), f"{slug}.md links a missing {target}"
    return page
