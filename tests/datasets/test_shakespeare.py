"""retrograd/datasets/shakespeare.py: the corpus shipped in the package (its text, the README
beside it naming the source and license, pyproject's package data), and ``retrograd train
--model gpt`` training on it with no --data."""

import hashlib
import json
import os
import tomllib

import pytest

from retrograd.cli import main
from retrograd.datasets import load_shakespeare, shakespeare_path
from retrograd.training.language_model import LMConfig, text_path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHA256 = "8256a020fbc19d31e553583a6c8c0fbaccb3e3f8104c876f2f6921068a52dc7c"


def test_loader_returns_the_text_of_the_shipped_file():
    text = load_shakespeare()
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert text.endswith("Bushy, Green.\n\nServant:\nWhat, are they dead?\n")
    assert len(text) == 399862 and len(set(text)) == 63 and text.isascii()
    with open(shakespeare_path(), "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == SHA256
    assert data.decode("ascii") == text


def test_readme_beside_the_file_names_source_license_and_checksum():
    folder = os.path.dirname(shakespeare_path())
    with open(os.path.join(folder, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    for fact in ("karpathy/char-rnn", "data/tinyshakespeare/input.txt", "public domain",
                 "399862", SHA256):
        assert fact in readme, fact


def test_pyproject_ships_the_corpus_as_package_data():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        setuptools = tomllib.load(f)["tool"]["setuptools"]
    assert "data/*.txt" in setuptools["package-data"]["retrograd.datasets"]
    assert shakespeare_path().endswith(os.path.join("retrograd", "datasets", "data",
                                                    "shakespeare.txt"))


@pytest.mark.parametrize("spec", [None, "shakespeare"])
def test_the_gpt_job_defaults_to_the_shipped_corpus(spec):
    assert LMConfig().data == "shakespeare"
    assert text_path(spec) == shakespeare_path()
    assert text_path("text:/some/file.txt") == "/some/file.txt"


@pytest.mark.parametrize("choice", [["--model", "gpt"], ["--data", "shakespeare"],
                                    ["--model", "gpt", "--data", "shakespeare"]])
def test_retrograd_train_gpt_runs_with_no_data(tmp_path, choice):
    out = str(tmp_path / "run")
    assert main(["train", *choice, "--steps", "2", "--batch-size", "2", "--context", "8",
                 "--eval-interval", "2", "--quiet", "--no-inspect", "--out", out]) == 0
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    assert metrics["config"]["data"] == "shakespeare"
    assert metrics["config"]["model"] == "gpt"
    assert os.path.exists(os.path.join(out, "checkpoint.safetensors"))
