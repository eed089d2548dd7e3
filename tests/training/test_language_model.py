"""The language-model job: run folder, resume bit-identical to an uninterrupted run, sampling
from a checkpoint (reproducible, errors), and the CLI (train --model gpt, sample)."""

import json

import numpy as np
import pytest

from retrograd.cli import main
from retrograd.training.image import TrainConfig
from retrograd.training.image import train as train_image
from retrograd.training.language_model import LMConfig, load_gpt, sample, train
from retrograd.utils.serialization import load
from tests.datasets.test_text import SAMPLE


def _quick(tmp_path, name, **kw):
    options = dict(data=f"text:{SAMPLE}", steps=6, batch_size=4, context=16, n_layer=1,
                   n_head=2, d_model=16, warmup_steps=2, eval_interval=4, progress=False,
                   out=str(tmp_path / name))
    options.update(kw)
    return LMConfig(**options)


def _weights(summary):
    return {k: v.detach().numpy().copy() for k, v in summary["model"].state_dict().items()}


def test_run_folder_holds_checkpoint_metrics_curves_and_report(tmp_path):
    summary = train(_quick(tmp_path, "run"))
    out = tmp_path / "run"
    for name in ("checkpoint.safetensors", "metrics.json", "curves.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]] == [4, 6]   # every 4 steps, and the last
    assert metrics["info"]["vocab_size"] == 58
    assert summary["val_loss"] == metrics["history"][-1]["val_loss"]
    assert 2.0 < summary["val_loss"] < np.log(58) + 0.2
    assert "<img" in (out / "report.html").read_text()
    state = load(str(out / "checkpoint.safetensors"))
    assert state["job"] == "language_model" and state["step"] == 6 and len(state["vocab"]) == 58


@pytest.mark.parametrize("stop_after", [3, 4])   # between evaluations, and at one
def test_resume_continues_bit_identically(tmp_path, stop_after):
    uninterrupted = train(_quick(tmp_path, "full", dropout=0.1))
    train(_quick(tmp_path, "part", dropout=0.1), stop_after=stop_after)
    checkpoint = str(tmp_path / "part" / "checkpoint.safetensors")
    assert load(checkpoint)["step"] == stop_after
    resumed = train(LMConfig(resume=checkpoint, progress=False))
    a, b = _weights(uninterrupted), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key
    for row_a, row_b in zip(uninterrupted["history"], resumed["history"], strict=True):
        assert (row_a["step"], row_a["train_loss"], row_a["val_loss"]) == \
            (row_b["step"], row_b["train_loss"], row_b["val_loss"])


def test_a_different_seed_gives_different_weights(tmp_path):
    a = _weights(train(_quick(tmp_path, "a", steps=1, seed=0)))
    b = _weights(train(_quick(tmp_path, "b", steps=1, seed=1)))
    assert any(not np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm")
    train(_quick(out, "run", steps=2, eval_interval=2))
    return str(out / "run" / "checkpoint.safetensors")


def test_sampling_is_reproducible_with_a_seed(checkpoint):
    a = sample(checkpoint, prompt="First", length=40, seed=3)
    assert a.startswith("First") and len(a) == 45
    assert a == sample(checkpoint, prompt="First", length=40, seed=3)
    assert a != sample(checkpoint, prompt="First", length=40, seed=4)
    _, tok = load_gpt(checkpoint)
    assert set(a) <= set(tok.chars)


def test_top_k_and_temperature_shape_the_samples(checkpoint):
    greedy = sample(checkpoint, prompt="The", length=30, top_k=1, seed=0)
    assert greedy == sample(checkpoint, prompt="The", length=30, top_k=1, seed=9)
    assert greedy == sample(checkpoint, prompt="The", length=30, temperature=1e-4, seed=5)
    default = sample(checkpoint, length=10)
    assert default.startswith("\n") and len(default) == 11


def test_sampling_errors(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="characters '@' are not in the vocabulary"):
        sample(checkpoint, prompt="hi@", length=5)
    with pytest.raises(ValueError, match="the prompt has 17 characters, longer than the "
                                         "model's context of 16"):
        sample(checkpoint, prompt="a" * 17, length=5)
    with pytest.raises(FileNotFoundError, match="load: no such file: .*missing.safetensors"):
        sample(str(tmp_path / "missing.safetensors"))
    image_run = train_image(TrainConfig(model="mlp", epochs=1, limit_train=32, progress=False,
                                        out=str(tmp_path / "image")))
    with pytest.raises(ValueError, match="is not a language-model checkpoint"):
        sample(f"{image_run['out']}/checkpoint.safetensors")


def test_missing_text_file_and_bad_data_spec(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        train(_quick(tmp_path, "x", data=f"text:{tmp_path}/none.txt"))
    with pytest.raises(ValueError, match="give --data text:PATH"):
        train(_quick(tmp_path, "x", data="digits"))


def test_cli_trains_then_samples(tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert main(["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--steps", "2",
                 "--batch-size", "2", "--context", "8", "--eval-interval", "2", "--quiet",
                 "--out", out]) == 0
    assert (tmp_path / "cli" / "report.html").exists()
    capsys.readouterr()
    checkpoint = f"{out}/checkpoint.safetensors"
    assert main(["sample", "--checkpoint", checkpoint, "--prompt", "To be", "--length", "20",
                 "--top-k", "5", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("To be") and len(text) == 26   # prompt, 20 characters, newline
    assert main(["sample", "--checkpoint", checkpoint, "--prompt", "~"]) == 2
    assert "'~' are not in the vocabulary" in capsys.readouterr().err
    assert main(["train", "--resume", checkpoint, "--quiet"]) == 0   # finished: nothing to do
    assert main(["train", "--resume", checkpoint, "--steps", "9", "--quiet"]) == 2
    assert "--steps: a resumed run keeps the options" in capsys.readouterr().err


def test_cli_rejects_options_of_other_jobs(capsys):
    assert main(["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--epochs", "2"]) == 2
    assert "--epochs does not apply" in capsys.readouterr().err
    assert main(["train", "--model", "gpt", "--data", "text:/no/such/file.txt"]) == 2
    assert "no such file" in capsys.readouterr().err
