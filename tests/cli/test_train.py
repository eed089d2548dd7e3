"""retrograd/cli/train.py: ``retrograd train``."""

from retrograd.cli import main


def test_train_writes_a_run_folder(tmp_path):
    code = main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run"),
                 "--batch-size", "64"])
    assert code == 0
    assert (tmp_path / "run" / "report.html").exists()


def test_bad_data_spec_exits_with_a_message(capsys):
    assert main(["train", "--data", "mnist", "--quiet"]) == 2
    assert "mnist needs a directory" in capsys.readouterr().err


def test_an_option_of_another_job_exits_with_a_message(capsys):
    assert main(["train", "--steps", "3", "--quiet"]) == 2
    assert "--steps does not apply to this job (image)" in capsys.readouterr().err
