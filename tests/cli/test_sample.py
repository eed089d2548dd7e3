"""retrograd/cli/sample.py: ``retrograd sample`` (sampling from a trained GPT is tested with
the language-model job, in tests/training/test_language_model.py; its errors are in
test_common.py's tables)."""

import os
import subprocess
import sys

import pytest

from retrograd.cli import main
from retrograd.training.language_model import LMConfig, train
from tests.datasets.test_text import SAMPLE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_a_missing_checkpoint_exits_with_a_message(tmp_path, capsys):
    missing = str(tmp_path / "missing.safetensors")
    assert main(["sample", "--checkpoint", missing]) == 2
    err = capsys.readouterr().err
    assert err.startswith("retrograd sample: ") and "missing.safetensors" in err


@pytest.mark.skipif(os.name != "posix", reason="a closed pipe is EPIPE on POSIX")
def test_a_reader_that_stops_early_is_no_error(tmp_path):
    # retrograd sample | head: the reader may go before the text is printed
    train(LMConfig(data=f"text:{SAMPLE}", steps=1, batch_size=2, context=8, n_layer=1,
                   n_head=1, d_model=8, warmup_steps=0, eval_interval=1, progress=False,
                   out=str(tmp_path / "gpt")))
    proc = subprocess.Popen([sys.executable, "-m", "retrograd.cli", "sample", "--checkpoint",
                             str(tmp_path / "gpt" / "checkpoint.safetensors"), "--length", "20"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()   # the reader is gone before anything was written
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait() == 1 and err == ""
