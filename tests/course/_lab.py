"""Running a course lab (docs/course/mN_<slug>.py) in its reduced form, and checking what it
wrote the way a reader would see it: every PNG decodes and is not blank, the results page
exists and has a table."""

import importlib.util
import pathlib
import time

import numpy as np

COURSE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "course"
QUICK_SECONDS = 20  # issue 20: every lab's reduced form runs in under 20 s


def load_lab(name):
    """The lab script ``docs/course/<name>.py`` as a module (labs are scripts, not a package)."""
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
