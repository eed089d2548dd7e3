"""The sequence job: exact-match scoring, the run folder, resume bit-identical to an
uninterrupted run, and the CLI (train --model seq2seq --data reverse)."""

import json

import numpy as np
import pytest

from retrograd.cli import main
from retrograd.datasets.sequence_tasks import EOS, PAD, SequenceDataset
from retrograd.tensor import make_tensor
from retrograd.training.sequence import SeqConfig, exact_match, train
from retrograd.utils.serialization import load


def _quick(tmp_path, name, **kw):
    options = dict(data="reverse", steps=6, batch_size=8, d_model=16, nhead=2, num_layers=1,
                   dim_feedforward=32, n_train=64, n_test=16, warmup_steps=2, eval_interval=4,
                   progress=False, out=str(tmp_path / name))
    options.update(kw)
    return SeqConfig(**options)


class _Oracle:
    """greedy_decode answers from a table: right for the sources listed in ``right``."""

    def __init__(self, dataset, right):
        self.dataset, self.right = dataset, right

    def greedy_decode(self, src, max_len, bos, eos):
        rows = []
        for source in src.numpy():
            i = next(k for k in range(len(self.dataset))
                     if np.array_equal(self.dataset.src[k], source))
            answer = self.dataset.tgt[i, 1:].copy()
            if i not in self.right:
                answer[0] = (answer[0] + 1 - 3) % 10 + 3   # a wrong first digit
            answer[answer == PAD] = EOS
            rows.append(np.pad(answer, (0, max_len - len(answer)), constant_values=EOS))
        return make_tensor(np.array(rows))


def test_exact_match_counts_whole_answers():
    ds = SequenceDataset([("12", "21"), ("345", "543"), ("6789", "9876"), ("10", "01")])
    assert exact_match(_Oracle(ds, {0, 1, 2, 3}), ds, max_len=6) == 1.0
    assert exact_match(_Oracle(ds, {0, 2}), ds, max_len=6, batch_size=3) == 0.5


def test_run_folder_and_metrics(tmp_path):
    summary = train(_quick(tmp_path, "run"))
    out = tmp_path / "run"
    for name in ("checkpoint.safetensors", "metrics.json", "curves.png", "report.html"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert [h["step"] for h in metrics["history"]] == [4, 6]
    assert 0.0 <= summary["test_exact_match"] <= 1.0
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"]
    assert load(str(out / "checkpoint.safetensors"))["job"] == "sequence"


@pytest.mark.parametrize("stop_after", [3, 4])
def test_resume_continues_bit_identically(tmp_path, stop_after):
    uninterrupted = train(_quick(tmp_path, "full", dropout=0.1))
    train(_quick(tmp_path, "part", dropout=0.1), stop_after=stop_after)
    resumed = train(SeqConfig(resume=str(tmp_path / "part" / "checkpoint.safetensors"),
                              progress=False))
    a = uninterrupted["model"].state_dict()
    b = resumed["model"].state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy()), key
    assert [h["train_loss"] for h in uninterrupted["history"]] == \
        [h["train_loss"] for h in resumed["history"]]


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown sequence task 'sort'"):
        train(_quick(tmp_path, "x", data="sort"))
    with pytest.raises(ValueError, match="train --model seq2seq, got 'vit'"):
        train(_quick(tmp_path, "x", model="vit"))


def test_cli_dispatches_to_the_sequence_job(tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert main(["train", "--model", "seq2seq", "--data", "add", "--steps", "2",
                 "--batch-size", "4", "--eval-interval", "2", "--quiet", "--out", out]) == 0
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["config"]["data"] == "add"
    assert main(["train", "--model", "seq2seq", "--data", "digits", "--quiet"]) == 2
    assert "unknown sequence task 'digits'" in capsys.readouterr().err
    assert main(["train", "--data", "reverse", "--context", "8", "--quiet"]) == 2
    assert "--context does not apply" in capsys.readouterr().err
