"""retrograd train --amp: the GPT and image jobs under autocast, fp16 loss scaling with its
skipped steps (which skip the scheduler's step too), resuming bit-identically, amp.json and the
report section, and the errors."""

import json

import numpy as np
import pytest

from retrograd.cli import main
from retrograd.training.language_model import LMConfig, train
from retrograd.utils.serialization import load
from tests.browser import check_page, chromium_or_skip
from tests.datasets.test_text import SAMPLE
from tests.training.small_data import small_digits


def _quick(tmp_path, name, **kw):
    options = dict(data=f"text:{SAMPLE}", steps=6, batch_size=4, context=16, n_layer=1,
                   n_head=2, d_model=16, warmup_steps=2, eval_interval=4, progress=False,
                   out=str(tmp_path / name), dropout=0.1)
    options.update(kw)
    return LMConfig(**options)


def _weights(summary):
    return {k: v.detach().numpy().copy() for k, v in summary["model"].state_dict().items()}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_run_resumes_bit_identically(tmp_path, amp):
    full = train(_quick(tmp_path, "full", amp=amp))
    train(_quick(tmp_path, "part", amp=amp), stop_after=3)
    checkpoint = str(tmp_path / "part" / "checkpoint.safetensors")
    assert "amp" in load(checkpoint)
    resumed = train(LMConfig(resume=checkpoint, progress=False))
    a, b = _weights(full), _weights(resumed)
    for key in a:
        assert a[key].dtype == np.float32     # master weights stay float32
        assert np.array_equal(a[key], b[key]), key
    plain = _weights(train(_quick(tmp_path, "plain")))
    assert any(not np.array_equal(plain[k], a[k]) for k in a)   # autocast did change numbers
    record = json.loads((tmp_path / "full" / "amp.json").read_text())
    assert record["dtype"] == amp and [s for s, _ in record["scales"]] == list(range(6))
    assert json.loads((tmp_path / "part" / "amp.json").read_text())["scales"] == \
        record["scales"]


def test_fp16_overflow_skips_the_step_and_the_scheduler_and_backs_off(tmp_path, monkeypatch):
    from retrograd.amp import GradScaler
    real_unscale = GradScaler.unscale_
    calls = []

    def poisoned(self, optimizer):      # the second step's gradients overflow
        calls.append(1)
        if len(calls) == 2:
            next(iter(optimizer.param_groups[0]["params"])).grad.numpy()[...] = np.inf
        return real_unscale(self, optimizer)
    monkeypatch.setattr(GradScaler, "unscale_", poisoned)
    summary = train(_quick(tmp_path, "run", amp="fp16", steps=3, eval_interval=3))
    record = json.loads((tmp_path / "run" / "amp.json").read_text())
    assert [s["step"] for s in record["skipped_steps"]] == [1]
    assert record["skipped_steps"][0]["parameters"] == ["wte.weight"]
    assert [scale for _, scale in record["scales"]] == [65536.0, 65536.0, 32768.0]
    # the scheduler stepped twice (steps 0 and 2), not three times
    state = load(str(tmp_path / "run" / "checkpoint.safetensors"))
    assert state["scheduler"]["last_epoch"] == 2
    assert summary["model"].wte.weight.dtype.name == "float32"


def test_report_has_the_mixed_precision_section(tmp_path):
    train(_quick(tmp_path, "run", amp="fp16", steps=2, eval_interval=2))
    page = (tmp_path / "run" / "report.html").read_text()
    assert "Mixed precision" in page and "Loss scale by step" in page
    assert "Gradients against float16" in page
    chromium = chromium_or_skip()
    result = check_page(tmp_path / "run" / "report.html", chromium=chromium)
    assert not result.broken_images and not result.console_errors


def test_amp_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"--amp must be one of bf16, fp16, got 'fp8'"):
        train(_quick(tmp_path, "bad", amp="fp8"))
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--amp", "fp8", "--quiet"])
    assert exit_.value.code == 2
    assert "--amp: invalid choice: 'fp8' (choose from 'bf16', 'fp16')" in \
        capsys.readouterr().err


def test_image_job_trains_under_amp(tmp_path, monkeypatch):
    from retrograd.training import image
    small_digits(monkeypatch, n_train=64)
    summary = image.train(image.TrainConfig(model="resnet-digits", epochs=1, batch_size=16,
                                            amp="bf16", out=str(tmp_path / "img"),
                                            progress=False, inspect=False))
    assert 0.0 <= summary["test_acc"] <= 1.0
    assert json.loads((tmp_path / "img" / "amp.json").read_text())["dtype"] == "bf16"
