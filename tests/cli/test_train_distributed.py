"""``mpiexec -n N retrograd train``: data-parallel training jobs (retrograd/cli/train.py,
retrograd/training/data_parallel.py).

Two launches carry the MPI checks (each costs the processes' start-up plus the work):
``fault`` (2 processes) checks the tools under data parallelism, then kills rank 1 in the
middle of epoch 2 of an image run; ``three`` (3 processes) resumes that run's checkpoint and
trains a GPT and a seq2seq model, which must equal single-process runs with a 3x batch.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import retrograd.distributed as dist
from retrograd.cli import main
from retrograd.cli import train as train_command
from retrograd.distributed import process_group
from retrograd.models import build_model
from retrograd.training.image import evaluate, load_image_data
from retrograd.training.sequence import SeqConfig
from retrograd.training.sequence import train as train_sequence
from retrograd.utils.serialization import load
from tests.datasets.test_text import SAMPLE
from tests.distributed._mpi import ROOT, needs_mpi, run_mpi

TIMEOUT = 4   # --timeout of the faulty run; the grace period is then max(1, 4 / 2) = 2 s


# ----------------------------------------------------------------------------- alone
def test_alone_nothing_of_mpi_is_touched(tmp_path, monkeypatch):
    """Without a launcher, retrograd train never reaches retrograd's only way into mpi4py."""
    def no_mpi():
        raise AssertionError("retrograd train imported MPI without a launcher")

    monkeypatch.setattr(process_group, "_mpi", no_mpi)
    code = main(["train", "--model", "mlp", "--epochs", "1", "--batch-size", "256", "--quiet",
                 "--no-inspect", "--out", str(tmp_path / "run"), "--timeout", "5"])
    assert code == 0 and not dist.is_initialized()


def test_help_tells_that_the_batch_is_per_process(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "per process: under mpiexec -n N the global batch is N x this" in text
    assert "--sync-bn" in text and "--timeout SECONDS" in text and "default: 1800" in text


@pytest.mark.parametrize("argv, error", [
    (["--timeout", "0"], "--timeout must be a number of seconds > 0, got 0"),
    (["--timeout", "nan"], "--timeout must be a number of seconds > 0, got nan"),
    (["--model", "gpt", "--sync-bn"], "--sync-bn does not apply to this job (language model)"),
    (["--model", "seq2seq", "--sync-bn"], "--sync-bn does not apply to this job (sequence)"),
])
def test_bad_data_parallel_options_exit_with_one_line(argv, error, capsys):
    assert main(["train", *argv, "--quiet"]) == 2
    assert capsys.readouterr().err == f"retrograd train: {error}\n"


def test_a_distributed_error_ends_with_one_line_and_exit_code_1(capsys):
    def lost_rank(config):
        raise dist.DistributedTimeoutError("all_reduce did not complete within 4 s on rank 0 "
                                           "of 2: rank(s) 1 did not answer")

    assert train_command._train(lost_rank, None) == 1
    assert capsys.readouterr().err == ("retrograd train: all_reduce did not complete within "
                                       "4 s on rank 0 of 2: rank(s) 1 did not answer\n")


# ----------------------------------------------------------------------------- 2 processes
FAULT = """
    import hashlib, os, signal, time
    import numpy as np
    import retrograd.distributed as dist
    import retrograd.training.image as image
    import retrograd.training.mixed_precision as mixed_precision
    from retrograd.cli import main

    def digest(model):
        state = model.state_dict()
        return hashlib.sha1(b"".join(np.ascontiguousarray(v.numpy()).tobytes()
                                     for v in state.values())).hexdigest()

    # 1. the tools under data parallelism: --sync-bn, --checkpoint, --profile and --inspect
    # (rank 0), and --amp fp16, whose skip decisions must agree: rank 1's second step
    # overflows, so the averaged gradients hold Inf/NaN on every rank
    dist.init_process_group("mpi")
    rank = dist.get_rank()
    taken = []
    step, backward = mixed_precision.MixedPrecision.step, mixed_precision.MixedPrecision.backward

    def recording_step(self, optimizer, number):
        taken.append(step(self, optimizer, number))
        return taken[-1]

    def overflowing_backward(self, loss):
        backward(self, loss * float("inf") if rank == 1 and len(taken) == 1 else loss)

    mixed_precision.MixedPrecision.step = recording_step
    mixed_precision.MixedPrecision.backward = overflowing_backward
    summary = image.train(image.TrainConfig(
        model="resnet-digits", epochs=1, batch_size=8, limit_train=96, sync_bn=True,
        amp="fp16", checkpoint=True, profile=1, out="tools", progress=False))
    norms = sorted({type(m).__name__ for m in summary["model"].modules()
                    if "Norm" in type(m).__name__})
    print(f"TOOLS {rank} {''.join(str(int(t)) for t in taken)} {digest(summary['model'])} "
          f"{norms}", flush=True)
    mixed_precision.MixedPrecision.step, mixed_precision.MixedPrecision.backward = (step,
                                                                                    backward)

    # 2. BatchNorm without --sync-bn: each rank's last forward moved its own statistics
    summary = image.train(image.TrainConfig(model="resnet-digits", epochs=1, batch_size=8,
                                            limit_train=32, out="batchnorm", progress=False,
                                            inspect=False))
    print(f"BATCHNORM {rank} {digest(summary['model'])}", flush=True)
    dist.destroy_process_group()

    # 3. rank 1 dies in the middle of epoch 2, after epoch 1's checkpoint was written
    if rank == 1:
        optimizer_step = image.optimizer_step

        def dying_step(run, loss):
            if run.epoch == 1 and run.step == len(run.loader) + 3:
                with open("killed_at", "w") as f:
                    f.write(repr(time.time()))
                os.kill(os.getpid(), signal.SIGKILL)
            return optimizer_step(run, loss)

        image.optimizer_step = dying_step
    code = main(["train", "--model", "mlp", "--epochs", "2", "--batch-size", "64",
                 "--no-inspect", "--out", "fault", "--timeout", "{timeout}"])
    with open("killed_at") as f:
        seconds = time.time() - float(f.read())
    print(f"FAULT {rank} {code} {seconds:.1f}", flush=True)
"""


@pytest.fixture(scope="module")
def fault(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fault")
    run = run_mpi(FAULT.replace("{timeout}", str(TIMEOUT)), 2, folder, keep_going=True,
                  linger=TIMEOUT + 4, timeout=240)
    return folder, run


@needs_mpi
def test_the_tools_work_and_the_ranks_agree_under_amp(fault):
    folder, run = fault
    tools = [line.split(" ", 4) for line in run.lines("TOOLS ")]
    assert [t[1] for t in tools] == ["0", "1"], run.output
    (_, _, taken, digest, norms), (_, _, taken_1, digest_1, _) = tools
    # rank 1's overflow skipped the second step on both ranks; every other step was taken
    assert taken == taken_1 == "101111", run.output
    assert digest == digest_1          # the same weights and buffers on both ranks
    assert norms == "['SyncBatchNorm']"
    written = set(os.listdir(folder / "tools"))
    assert {"checkpoint.safetensors", "profile.txt", "trace.json", "memory.txt", "amp.json",
            "gradients.json", "report.html"} <= written, written
    skipped = json.loads((folder / "tools" / "amp.json").read_text())["skipped_steps"]
    assert [s["step"] for s in skipped] == [1]


@needs_mpi
def test_every_rank_evaluates_the_model_rank_0_checkpoints(fault):
    """Without --sync-bn the ranks' BatchNorm statistics differ after training; the job gives
    every rank rank 0's before evaluating, so the evaluation is the checkpoint's."""
    folder, run = fault
    digests = [line.split()[1:] for line in run.lines("BATCHNORM ")]
    assert len(digests) == 2 and digests[0][1] == digests[1][1], run.output
    state = load(str(folder / "batchnorm" / "checkpoint.safetensors"))
    model = build_model("resnet-digits", 1, 8, 10)
    model.load_state_dict(state["model"])
    loss, accuracy = evaluate(model, load_image_data("digits")[1])
    assert state["history"][-1]["test_loss"] == pytest.approx(loss, rel=1e-6)
    assert state["history"][-1]["test_acc"] == accuracy


@needs_mpi
def test_a_killed_rank_ends_the_others_with_an_error_naming_it(fault):
    folder, run = fault
    assert run.returncode != 0 and len(run.lines("FAULT ")) == 1, run.output
    _, rank, code, seconds = run.lines("FAULT ")[0].split()
    assert (rank, code) == ("0", "1")
    assert float(seconds) < TIMEOUT + 15, run.output
    errors = [line for line in run.ranks[0].splitlines() if "did not answer" in line]
    assert errors == [
        f"retrograd train: DistributedDataParallel gradient all_reduce did not complete "
        f"within {TIMEOUT} s on rank 0 of 2: rank(s) 1 did not answer (dead, hung, or stuck "
        f"outside retrograd.distributed); resume from the last checkpoint with: retrograd "
        f"train --resume fault/checkpoint.safetensors"], run.ranks[0]
    assert "Traceback" not in run.ranks[0]
    assert load(str(folder / "fault" / "checkpoint.safetensors"))["epoch"] == 1


@needs_mpi
def test_the_checkpoint_of_2_processes_resumes_alone_without_mpi(fault, tmp_path):
    folder, _ = fault
    checkpoint = str(folder / "fault" / "checkpoint.safetensors")
    program = ("import sys\nfrom retrograd.cli import main\n"
               f"code = main(['train', '--resume', {checkpoint!r}, '--out', 'alone', "
               f"'--quiet'])\nprint(code, 'mpi4py' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          cwd=tmp_path, timeout=240, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.split() == ["0", "False"], done.stderr
    history = json.loads((tmp_path / "alone" / "metrics.json").read_text())["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[0] == load(checkpoint)["history"][0]


# ----------------------------------------------------------------------------- 3 processes
THREE = """
    import os, sys
    import retrograd.distributed as dist
    from retrograd.cli import main
    from retrograd.training.sequence import SeqConfig, train

    checkpoint, text = sys.argv[1], sys.argv[2]
    dist.init_process_group("mpi")
    rank = dist.get_rank()
    dist.destroy_process_group()
    if rank:   # a folder of its own, which must stay empty: only rank 0 writes
        os.makedirs(f"rank{rank}")
        os.chdir(f"rank{rank}")
    codes = [main(["train", "--resume", checkpoint, "--out", "resumed"]),
             main(["train", "--model", "gpt", "--data", f"text:{text}", "--steps", "4",
                   "--eval-interval", "2", "--context", "16", "--batch-size", "1", "--quiet",
                   "--no-inspect", "--checkpoint", "--inspect-attention", "2", "--out",
                   "gpt"])]
    dist.init_process_group("mpi")
    summary = train(SeqConfig(steps=4, eval_interval=2, batch_size=4, n_train=300, n_test=40,
                              out="seq2seq", progress=False, inspect=False))
    dist.destroy_process_group()
    numbers = [(row["train_loss"], row["test_exact_match"]) for row in summary["history"]]
    print(f"THREE {rank} {codes} {numbers}", flush=True)
"""


@pytest.fixture(scope="module")
def three(fault, tmp_path_factory):
    folder = tmp_path_factory.mktemp("three")
    checkpoint = fault[0] / "fault" / "checkpoint.safetensors"
    run = run_mpi(THREE, 3, folder, args=(checkpoint, SAMPLE), timeout=240)
    return folder, run


def _histories(run):
    """{rank: the seq2seq run's (train_loss, test_exact_match) per evaluation, as printed}
    from the THREE lines, after checking the exit codes."""
    histories = {}
    for line in run.lines("THREE "):
        _, rank, rest = line.split(" ", 2)
        codes, history = rest.split("] ", 1)
        assert codes == "[0, 0", run.output
        histories[int(rank)] = history
    assert sorted(histories) == [0, 1, 2], run.output
    return histories


@needs_mpi
def test_a_checkpoint_of_2_processes_resumes_under_3(fault, three):
    folder, run = three
    assert run.returncode == 0, run.output
    _histories(run)
    history = json.loads((folder / "resumed" / "metrics.json").read_text())["history"]
    saved = load(str(fault[0] / "fault" / "checkpoint.safetensors"))
    assert [row["epoch"] for row in history] == [1, 2] and history[0] == saved["history"][0]
    assert history[1]["step"] == saved["step"] + 8     # ceil(ceil(1438 / 3) / 64) steps
    assert run.ranks[0].count("data-parallel on 3 processes (MPI), batch 64 per process, "
                              "global batch 192") == 1


@needs_mpi
def test_only_rank_0_prints_and_writes(three):
    folder, run = three
    for rank in (1, 2):
        assert os.listdir(folder / f"rank{rank}") == []
        assert run.ranks[rank].splitlines()[-1].startswith(f"THREE {rank} ")
        assert len(run.ranks[rank].splitlines()) == 1, run.ranks[rank]
    assert run.ranks[0].count("epoch 2/2: train loss") == 1


@needs_mpi
def test_evaluation_equals_a_single_process_evaluation(three):
    folder, _ = three
    state = load(str(folder / "resumed" / "checkpoint.safetensors"))
    model = build_model("mlp", 1, 8, 10)
    model.load_state_dict(state["model"])     # no "module." prefix
    loss, accuracy = evaluate(model, load_image_data("digits")[1])
    last = state["history"][-1]
    assert last["test_loss"] == pytest.approx(loss, rel=1e-6)
    assert last["test_acc"] == accuracy


@needs_mpi
def test_gpt_on_3_processes_equals_one_process_with_3_times_the_batch(three, tmp_path):
    folder, _ = three
    assert main(["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--steps", "4",
                 "--eval-interval", "2", "--context", "16", "--batch-size", "3", "--quiet",
                 "--no-inspect", "--out", str(tmp_path / "gpt")]) == 0
    parallel, alone = (json.loads((f / "gpt" / "metrics.json").read_text())["history"]
                       for f in (folder, tmp_path))
    assert [row["step"] for row in parallel] == [row["step"] for row in alone] == [2, 4]
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose([r[key] for r in parallel], [r[key] for r in alone],
                                   rtol=1e-5)
    assert parallel[0]["val_loss"] != parallel[1]["val_loss"]   # it trained
    assert (folder / "gpt" / "attention.json").exists()


@needs_mpi
def test_seq2seq_on_3_processes_equals_one_process_with_3_times_the_batch(three, tmp_path):
    _, run = three
    histories = _histories(run)
    assert histories[0] == histories[1] == histories[2]
    alone = train_sequence(SeqConfig(steps=4, eval_interval=2, batch_size=12, n_train=300,
                                     n_test=40, out=str(tmp_path / "seq2seq"), progress=False,
                                     inspect=False))["history"]
    parallel = json.loads((three[0] / "seq2seq" / "metrics.json").read_text())["history"]
    # the loss is the mean over the answer tokens of the global batch, whose ranks' parts
    # hold different numbers of padding tokens: the mean of the ranks' means would differ
    np.testing.assert_allclose([r["train_loss"] for r in parallel],
                               [r["train_loss"] for r in alone], rtol=1e-5)
    assert [r["test_exact_match"] for r in parallel] == [r["test_exact_match"] for r in alone]


ONE_RANK_FAILS = """
    import sys, time
    import retrograd.distributed as dist
    from retrograd.cli import main
    from retrograd.training import image

    rank = int(__import__("os").environ["PMI_RANK"])
    if rank == 1:
        optimizer_step = image.optimizer_step

        def failing_step(run, loss):
            if run.step == 3:
                raise OSError("No space left on device (a disk filled up on rank 1)")
            return optimizer_step(run, loss)

        image.optimizer_step = failing_step
    start = time.monotonic()
    code = main(["train", "--model", "mlp", "--epochs", "1", "--batch-size", "32",
                 "--no-inspect", "--quiet", "--out", "failing", "--timeout", "60"])
    print(f"ENDED {rank} {code} {time.monotonic() - start:.1f}", flush=True)
    sys.exit(code)
"""


@needs_mpi
def test_a_rank_that_fails_ends_the_others_at_once_not_after_the_timeout(tmp_path):
    run = run_mpi(ONE_RANK_FAILS, 2, tmp_path, keep_going=True, timeout=120)
    ended = {int(rank): (int(code), float(seconds)) for _, rank, code, seconds in
             (line.split() for line in run.lines("ENDED "))}
    assert ended.keys() == {0, 1}, run.output
    assert ended[1][0] == 2 and "No space left on device" in run.ranks[1]
    assert ended[0][0] == 1 and ended[0][1] < 30, run.output     # the timeout is 60 s
    assert "rank 1 ended its program with the process group still initialized" in \
        run.ranks[0], run.output
