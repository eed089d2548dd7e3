"""retrograd/cli/_common.py: every subcommand reports a bad option value or a bad path in one
line, ``retrograd <command>: ...`` naming the option or the path, with exit code 2 and never a
traceback. The tables below are the sweep: each case is an argv (with {placeholders} for the
files the fixtures make), the exit code and a fragment of the message."""

import os
import subprocess
import sys

import pytest

from retrograd.cli import main
from retrograd.cli._common import message
from retrograd.training.image import TrainConfig
from retrograd.training.image import train as train_image
from retrograd.training.language_model import LMConfig
from retrograd.training.language_model import train as train_lm
from retrograd.utils.serialization import save
from tests.datasets.test_text import SAMPLE

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
NOT_FOR_ROOT = pytest.mark.skipif(AS_ROOT, reason="root reads and writes whatever the modes say")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A real image checkpoint and a real language-model checkpoint (tiny runs)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    train_image(TrainConfig(model="mlp", epochs=1, limit_train=32, progress=False,
                            out=str(folder / "image")))
    train_lm(LMConfig(data=f"text:{SAMPLE}", steps=2, batch_size=2, context=8, n_layer=1,
                      n_head=1, d_model=8, warmup_steps=1, eval_interval=2, progress=False,
                      out=str(folder / "gpt")))
    return {"image": str(folder / "image" / "checkpoint.safetensors"),
            "gpt": str(folder / "gpt" / "checkpoint.safetensors")}


@pytest.fixture
def paths(tmp_path, checkpoints):
    """The {placeholders} of the tables: files and folders that are not what they should be."""
    import retrograd as rg
    files = {"tmp": str(tmp_path), "missing": str(tmp_path / "missing"),
             "dir": str(tmp_path / "dir"), "file": str(tmp_path / "file.txt"),
             "empty": str(tmp_path / "empty.txt"), "binary": str(tmp_path / "binary.txt"),
             "short": str(tmp_path / "short.txt"), "damaged": str(tmp_path / "damaged.safetensors"),
             "statedict": str(tmp_path / "state.safetensors"),
             "list": str(tmp_path / "list.safetensors"),
             "unreadable": str(tmp_path / "unreadable.safetensors"),
             "readonly": str(tmp_path / "readonly"), "sample": SAMPLE, **checkpoints}
    os.mkdir(files["dir"])
    os.mkdir(files["readonly"], 0o555)
    with open(files["file"], "w") as f:
        f.write("a text file, not a checkpoint and not a folder\n")
    open(files["empty"], "w").close()
    with open(files["binary"], "wb") as f:
        f.write(bytes([0x89, 0x50, 0x4E, 0x47, 0xFF, 0xFE, 0x00, 0xC3]) * 64)
    with open(files["short"], "w") as f:
        f.write("too short")
    with open(files["damaged"], "wb") as f:
        f.write(open(checkpoints["image"], "rb").read()[:1000])   # a checkpoint cut short
    save({"weight": rg.ones(2, 2)}, files["statedict"])
    save([1, 2, 3], files["list"])
    save({"weight": rg.ones(2)}, files["unreadable"])
    os.chmod(files["unreadable"], 0)
    return files


def run(argv, paths, capsys):
    """(exit code, stderr) of the command line, placeholders filled in."""
    code = main([arg.format(**paths) for arg in argv.split()])
    captured = capsys.readouterr()
    return code, captured.err


def check(argv, code, fragment, paths, capsys):
    got, err = run(argv, paths, capsys)
    command = argv.split()[0]
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("retrograd ")]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"retrograd {command}: ")
    assert fragment.format(**paths) in lines[0], lines[0]
    assert got == code


# Bad values of numeric options: usage errors (PyTorch's optimizers refuse the same lr and
# weight decay values, with "Invalid learning rate: -0.1"; a zero-epoch or zero-step run is
# refused rather than run, and nan/inf would poison every step).
TRAIN_OPTIONS = [
    ("train --epochs 0", "--epochs must be an int >= 1, got 0"),
    ("train --epochs -3", "--epochs must be an int >= 1, got -3"),
    ("train --batch-size 0", "--batch-size must be an int >= 1, got 0"),
    ("train --batch-size -1", "--batch-size must be an int >= 1, got -1"),
    ("train --lr -0.1", "--lr must be a finite number >= 0.0, got -0.1"),
    ("train --lr nan", "--lr must be a finite number >= 0.0, got nan"),
    ("train --lr inf", "--lr must be a finite number >= 0.0, got inf"),
    ("train --weight-decay -1", "--weight-decay must be a finite number >= 0.0, got -1.0"),
    ("train --weight-decay nan", "--weight-decay must be a finite number >= 0.0, got nan"),
    ("train --seed -1", "--seed must be an int >= 0, got -1"),
    ("train --model gpt --data text:{sample} --steps 0", "--steps must be an int >= 1, got 0"),
    ("train --model gpt --data text:{sample} --steps -5", "--steps must be an int >= 1, got -5"),
    ("train --model gpt --data text:{sample} --context 0", "--context must be an int >= 1, got 0"),
    ("train --model gpt --data text:{sample} --eval-interval 0",
     "--eval-interval must be an int >= 1, got 0"),
    ("train --model gpt --data text:{sample} --batch-size 0",
     "--batch-size must be an int >= 1, got 0"),
    ("train --model gpt --data text:{sample} --lr inf", "--lr must be a finite number >= 0.0"),
    ("train --model gpt --data text:{sample} --weight-decay -0.5",
     "--weight-decay must be a finite number >= 0.0, got -0.5"),
    ("train --model gpt --data text:{sample} --context 8 --batch-size 1000000 --out {tmp}/run",
     "batch_size 1000000 is larger than the"),    # no full batch: used to wait forever
    ("train --data reverse --steps 0", "--steps must be an int >= 1, got 0"),
    ("train --data reverse --eval-interval 0", "--eval-interval must be an int >= 1, got 0"),
    ("train --data reverse --batch-size 0", "--batch-size must be an int >= 1, got 0"),
    ("train --data reverse --lr nan", "--lr must be a finite number >= 0.0, got nan"),
    ("train --resume {image} --epochs 0", "--epochs must be an int >= 1, got 0"),
]


@pytest.mark.parametrize("argv, fragment", TRAIN_OPTIONS, ids=[a for a, _ in TRAIN_OPTIONS])
def test_train_option_values(argv, fragment, paths, capsys):
    check(argv + " --quiet", 2, fragment, paths, capsys)


SAMPLE_OPTIONS = [
    ("sample --checkpoint {gpt} --length -1", "length must be a non-negative int, got -1"),
    ("sample --checkpoint {gpt} --temperature 0", "temperature must be > 0, got 0.0"),
    ("sample --checkpoint {gpt} --temperature nan", "temperature must be > 0, got nan"),
    ("sample --checkpoint {gpt} --top-k 0", "top_k must be a positive int or None, got 0"),
    ("sample --checkpoint {gpt} --seed -1", "seed must be a non-negative int, got -1"),
    ("sample --checkpoint {gpt} --prompt @@", "characters '@' are not in the vocabulary"),
    ("sample --checkpoint {gpt} --prompt abcdefghijk", "the prompt has 11 characters, longer "
                                                       "than the model's context of 8"),
]


@pytest.mark.parametrize("argv, fragment", SAMPLE_OPTIONS, ids=[a for a, _ in SAMPLE_OPTIONS])
def test_sample_option_values(argv, fragment, paths, capsys):
    check(argv, 2, fragment, paths, capsys)


# Paths: missing, a directory where a file belongs (or the reverse), damaged, of another kind,
# unreadable.
PATHS = [
    ("train --out {file}", "cannot use '{file}' as the run folder: it is a file, not a directory"),
    ("train --out {file}/run", "cannot use '{file}/run' as the run folder: '{file}' is a file, "
                               "not a directory"),
    ("train --out {file}/a/b", "'{file}' is a file, not a directory"),
    pytest.param("train --out {readonly}/run", "cannot write the run folder '{readonly}/run': "
                                               "permission denied in '{readonly}'",
                 marks=NOT_FOR_ROOT),
    ("train --resume {missing}", "load: no such file: '{missing}'"),
    ("train --resume {dir}", "load: '{dir}' is a directory, not a file"),
    ("train --resume {damaged}", "load: cannot read '{damaged}': "),
    ("train --resume {file}", "load: cannot read '{file}': "),
    ("train --resume {empty}", "load: cannot read '{empty}': the file is 0 bytes long"),
    ("train --resume {statedict}", "'{statedict}' is not a checkpoint written by retrograd train "
                                   "(it holds the entries ['weight'])"),
    ("train --resume {list}", "'{list}' is not a checkpoint written by retrograd train (it holds "
                              "a list)"),
    pytest.param("train --resume {unreadable}", "load: cannot open '{unreadable}': permission "
                                                "denied", marks=NOT_FOR_ROOT),
    ("train --resume {image} --out {file}", "cannot use '{file}' as the run folder"),
    ("train --resume {gpt} --out {file}/run", "'{file}' is a file, not a directory"),
    ("train --data mnist:{missing}", "'{missing}'"),
    ("train --data mnist:{file}", "'{file}'"),
    ("train --data mnist:{dir}", "MNIST: cannot find train-images-idx3-ubyte"),
    ("train --data fashion-mnist:{missing}", "'{missing}'"),
    ("train --data cifar10:{missing}", "'{missing}'"),
    ("train --data mnist", "mnist needs a directory"),
    ("train --data digits:{dir}", "the digits data is shipped with retrograd and takes no "
                                  "directory"),
    ("train --data imagenet:{dir}", "unknown data set 'imagenet:{dir}'"),
    ("train --model gpt --data text:{missing}", "text data: no such file '{missing}'"),
    ("train --model gpt --data text:{dir}", "text data: '{dir}' is a directory"),
    ("train --model gpt --data text:{empty}", "text data: '{empty}' is empty"),
    ("train --model gpt --data text:{short}", "'{short}' has 9 characters, too few"),
    ("train --model gpt --data text:{binary}", "text data: '{binary}' is not UTF-8 text"),
    ("sample --checkpoint {missing}", "load: no such file: '{missing}'"),
    ("sample --checkpoint {dir}", "load: '{dir}' is a directory, not a file"),
    ("sample --checkpoint {damaged}", "load: cannot read '{damaged}': "),
    ("sample --checkpoint {file}", "load: cannot read '{file}': "),
    ("sample --checkpoint {statedict}", "'{statedict}' is not a checkpoint written by retrograd "
                                        "train"),
    ("sample --checkpoint {list}", "'{list}' is not a checkpoint written by retrograd train"),
    ("sample --checkpoint {image}", "'{image}' is not a language-model checkpoint"),
    pytest.param("sample --checkpoint {unreadable}", "load: cannot open '{unreadable}': "
                                                     "permission denied", marks=NOT_FOR_ROOT),
]


def _id(case):
    return (case.values if hasattr(case, "values") else case)[0]


@pytest.mark.parametrize("argv, fragment", PATHS, ids=[_id(case) for case in PATHS])
def test_paths(argv, fragment, paths, capsys):
    check(argv + (" --quiet" if argv.startswith("train") else ""), 2, fragment, paths, capsys)


def test_a_bad_path_writes_nothing(paths, capsys):
    check("train --out {file}/run --quiet", 2, "is a file", paths, capsys)
    check("train --resume {statedict} --out {tmp}/new --quiet", 2, "not a checkpoint", paths,
          capsys)
    assert not os.path.exists(os.path.join(paths["tmp"], "new"))


def test_the_console_command_prints_one_line_and_no_traceback(tmp_path):
    # the same through the real command, in its own process: stderr is exactly one line
    (tmp_path / "file").write_text("")
    result = subprocess.run([sys.executable, "-m", "retrograd.cli", "train", "--out",
                             str(tmp_path / "file"), "--quiet"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"retrograd train: cannot use {str(tmp_path / 'file')!r} as the "
                             f"run folder: it is a file, not a directory\n")


def test_message_says_the_command_once_and_names_system_paths():
    assert message("train", ValueError("train: unknown model 'x'")) == "unknown model 'x'"
    assert message("train", ValueError("sample: not train's")) == "sample: not train's"
    assert message("sample", FileNotFoundError("load: no such file: 'x'")) == \
        "load: no such file: 'x'"
    assert message("train", OSError(28, "No space left on device", "runs/a/metrics.json")) == \
        "no space left on device: 'runs/a/metrics.json'"
    assert message("train", OSError(28, "save: cannot write 'a': No space left on device",
                                    "a")) == "save: cannot write 'a': No space left on device"


def test_permission_errors_name_the_path(paths, capsys, monkeypatch):
    # as root nothing is unreadable: make the system say so, as it would to a user
    from retrograd.utils import serialization
    real_access = os.access

    def access(path, mode, **kwargs):
        return False if str(path).startswith(paths["readonly"]) else real_access(path, mode,
                                                                                 **kwargs)

    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(serialization, "open", refuse, raising=False)
    check("train --out {readonly}/run --quiet", 2, "cannot write the run folder "
          "'{readonly}/run': permission denied in '{readonly}'", paths, capsys)
    check("train --resume {statedict} --quiet", 2, "load: cannot open '{statedict}': permission "
          "denied", paths, capsys)
    check("sample --checkpoint {gpt}", 2, "load: cannot open '{gpt}': permission denied", paths,
          capsys)
