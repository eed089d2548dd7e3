"""training/profiling.py: ``retrograd train --profile N`` and profile_model."""

import json

import pytest

from retrograd.training import language_model
from retrograd.training.image import TrainConfig, train
from retrograd.training.profiling import WARMUP_STEPS, profile_model
from tests.browser import check_page, chromium_or_skip
from tests.datasets.test_text import SAMPLE


def _image_run(tmp_path, profile, limit_train=192):
    return train(TrainConfig(data="digits", model="resnet-digits", epochs=1, batch_size=32,
                             limit_train=limit_train, progress=False, profile=profile,
                             out=str(tmp_path / "run")))


def test_train_profile_writes_the_table_trace_and_a_report_section(tmp_path):
    _image_run(tmp_path, profile=2)
    run = tmp_path / "run"
    table = (run / "profile.txt").read_text()
    assert "retrograd profile of 2 training steps" in table
    assert "Legend: self:" in table and "[framework overhead]" in table
    assert "By module x op x phase" in table and "Conv2dBackward" in table
    trace = json.loads((run / "trace.json").read_text())
    names = {e["name"] for e in trace["traceEvents"] if e["ph"] == "X"}
    assert {"Conv2d", "Conv2dBackward", "SGD.step"} <= names
    steps = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["name"] == "SGD.step"]
    assert len(steps) == 2   # the profiled steps only: warm-up steps are not recorded
    page = (run / "report.html").read_text()
    assert "Profile: where 2 training steps spent their time" in page
    memory = (run / "memory.txt").read_text()
    assert "retrograd memory ledger of one training step" in memory
    assert "Conv2d" in memory and "Peak:" in memory
    assert "Memory: one training step kept" in page


def test_the_report_with_a_profile_loads_in_a_browser(tmp_path):
    chromium = chromium_or_skip()
    _image_run(tmp_path, profile=1)
    page = check_page(tmp_path / "run" / "report.html", chromium=chromium)
    assert page.console_errors == [] and page.broken_images == [] and page.images >= 1


def test_a_run_too_short_for_the_profile_says_so(tmp_path, capsys):
    steps = 192 // 32
    config = TrainConfig(data="digits", model="resnet-digits", epochs=1, batch_size=32,
                         limit_train=192, progress=True, profile=steps,
                         out=str(tmp_path / "run"))
    train(config)
    out = capsys.readouterr()
    assert f"--profile {steps}: the run ended before {WARMUP_STEPS} warm-up" in out.out + out.err
    assert not (tmp_path / "run" / "profile.txt").exists()


def test_language_model_runs_profile_too(tmp_path):
    language_model.train(language_model.LMConfig(
        data=f"text:{SAMPLE}", steps=6, batch_size=4, context=16, n_layer=1, n_head=2,
        d_model=16, eval_interval=6, progress=False, profile=2, out=str(tmp_path / "lm")))
    table = (tmp_path / "lm" / "profile.txt").read_text()
    assert "MemoryEfficientAttention" in table or "ScaledDotProductAttention" in table
    assert "AdamW.step" in table


def test_profile_model_records_every_phase_of_one_step():
    prof = profile_model("resnet8", batch_size=4, steps=1, warmup=1)
    phases = {r.phase for r in prof.key_averages()}
    assert {"forward", "backward", "optimizer"} <= phases
    modules = {r.module for r in prof.key_averages(group_by_module=True)
               if r.key == "Conv2dBackward"}
    assert "layers.1.0.conv2" in modules


def test_profile_model_rejects_an_unknown_model():
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        profile_model("resnet9")
