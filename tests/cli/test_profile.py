"""retrograd/cli/profile.py: ``retrograd profile --model NAME``."""

import json

import pytest

from retrograd.cli import main


def test_profile_prints_the_table_of_one_training_step(capsys):
    code = main(["profile", "--model", "resnet-digits", "--batch-size", "4", "--warmup", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "retrograd profile: resnet-digits, batch 4, 1 training step" in out
    assert "Legend: self:" in out
    for name in ("Conv2d", "Conv2dBackward", "SGD.step", "[framework overhead]"):
        assert name in out


def test_profile_by_module_and_trace(tmp_path, capsys):
    trace = tmp_path / "trace.json"
    code = main(["profile", "--model", "mlp", "--batch-size", "4", "--warmup", "0",
                 "--by-module", "--trace", str(trace), "--sort-by", "flops"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Module" in out and f"trace: {trace}" in out
    assert json.loads(trace.read_text())["traceEvents"]


def test_profile_memory_prints_the_ledger_with_the_blocks_closed_form(capsys):
    code = main(["profile", "--model", "gpt", "--batch-size", "2", "--warmup", "0",
                 "--memory", "--row-limit", "5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Memory ledger of one training step" in out
    assert "Closed form beside measured" in out and "blocks.0" in out
    assert "optimizer state" in out and "Peak:" in out


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet9"], "unknown model 'resnet9'"),
    (["--model", "mlp", "--sort-by", "cuda_time_total"], "retrograd runs on the CPU"),
    (["--model", "mlp", "--sort-by", "speed"], "unknown sort_by key 'speed'"),
    (["--model", "mlp", "--steps", "0"], "--steps must be an int >= 1"),
    (["--model", "mlp", "--trace", "/nonexistent-dir/t.json", "--warmup", "0"],
     "/nonexistent-dir/t.json"),
])
def test_profile_errors_are_one_line(argv, message, capsys):
    assert main(["profile", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("retrograd profile: ") and message in err
    assert len(err.strip().splitlines()) == 1
