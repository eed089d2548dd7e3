"""The project's lint configuration ([tool.ruff] in pyproject.toml: line length 100,
pycodestyle, pyflakes and bugbear) passes on the whole repository; ruff comes from the test
extra."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ruff") is None,
                                reason="ruff not installed: pip install -e '.[test]' installs it")


def _ruff(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_ruff_passes_on_the_repository():
    result = _ruff(".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_configuration_catches_what_it_selects(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\n\nx = 1\n" + "y = " + "1 + " * 30 + "1\n")
    result = _ruff("--config", str(ROOT / "pyproject.toml"), str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert "F401" in result.stdout and "E501" in result.stdout
