"""``retrograd train --inspect-attention N``: attention.json, the report's attention sections
(loading in a browser), warnings printed once, and training left bit-identical."""

import json

import numpy as np
import pytest

from retrograd.cli import main
from retrograd.training.language_model import LMConfig, train
from tests.browser import check_page, chromium_or_skip
from tests.datasets.test_text import SAMPLE
from tests.training.test_language_model import _quick, _weights


def test_the_monitor_leaves_training_bit_identical(tmp_path):
    plain = train(_quick(tmp_path, "plain", dropout=0.1))
    watched = train(_quick(tmp_path, "watched", dropout=0.1, inspect_attention=2))
    a, b = _weights(plain), _weights(watched)
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    assert [h["val_loss"] for h in plain["history"]] == [h["val_loss"] for h in
                                                          watched["history"]]
    data = json.loads((tmp_path / "watched" / "attention.json").read_text())
    assert [r["step"] for r in data["records"]] == [2, 4, 6]
    assert set(data["records"][0]["layers"]) == {"blocks.0.attn"}
    assert len(data["records"][0]["layers"]["blocks.0.attn"]) == 2      # n_head heads
    assert not (tmp_path / "plain" / "attention.json").exists()


def test_warnings_are_printed_once(tmp_path, capsys, monkeypatch):
    from retrograd.inspect import attention_monitor

    monkeypatch.setattr(attention_monitor, "SATURATED_FRACTION", -1.0)   # every head warns
    train(_quick(tmp_path, "warned", inspect_attention=2, progress=True))
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("attention warning: saturation")]
    assert len(lines) == 2                     # two heads, once each (records at 2, 4, 6)
    assert "step 2 in layer 'blocks.0.attn' head 0" in lines[0] and "qk_norm=True" in lines[0]


def test_the_cli_writes_attention_json_and_the_report_sections(tmp_path):
    out = tmp_path / "cli"
    code = main(["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--steps", "4",
                 "--inspect-attention", "2", "--context", "16", "--batch-size", "2",
                 "--eval-interval", "4", "--quiet", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "attention.json").read_text())
    assert [r["step"] for r in data["records"]] == [2, 4] and data["warnings"] == []
    page = (out / "report.html").read_text()
    for title in ("Attention entropy per head", "Max |attention logit| per head",
                  "Attention warnings", "Attention heads at step 4"):
        assert title in page, title
    chromium = chromium_or_skip()
    check = check_page(out / "report.html", chromium=chromium)
    assert check.console_errors == [] and check.broken_images == []


@pytest.mark.parametrize("bad", ["0", "-2"])
def test_the_cli_rejects_a_bad_interval(bad, tmp_path, capsys):
    code = main(["train", "--model", "gpt", "--steps", "2", "--inspect-attention", bad,
                 "--out", str(tmp_path / "bad")])
    assert code == 2 and "--inspect-attention" in capsys.readouterr().err


def test_the_option_is_only_for_the_gpt_job(tmp_path, capsys):
    code = main(["train", "--data", "digits", "--inspect-attention", "2", "--quiet",
                 "--out", str(tmp_path / "img")])
    assert code == 2 and "--inspect-attention does not apply" in capsys.readouterr().err


def test_config_default_is_off():
    assert LMConfig().inspect_attention is None
