"""retrograd/cli/sample.py: ``retrograd sample`` (sampling from a trained GPT is tested with
the language-model job, in tests/training/test_language_model.py)."""

from retrograd.cli import main


def test_a_missing_checkpoint_exits_with_a_message(tmp_path, capsys):
    missing = str(tmp_path / "missing.safetensors")
    assert main(["sample", "--checkpoint", missing]) == 2
    err = capsys.readouterr().err
    assert err.startswith("retrograd sample: ") and "missing.safetensors" in err
