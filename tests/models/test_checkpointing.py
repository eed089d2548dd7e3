"""gradient_checkpointing_enable() on the models and nn.TransformerEncoder/Decoder, and
``retrograd train --checkpoint``: same weights as without, less saved memory, no checkpoint
outside training."""

import numpy as np
import pytest

import retrograd as rg
from retrograd import nn, optim
from retrograd.cli import main
from retrograd.inspect.memory import MemoryLedger
from retrograd.models import GPT, VGG, ViT, resnet8
from retrograd.nn import functional as F
from retrograd.utils import checkpoint as checkpoint_module
from retrograd.utils.serialization import load
from tests.datasets.test_text import SAMPLE
from tests.training.small_data import small_digits


def _gpt():
    return GPT(vocab_size=11, context=8, n_layer=3, n_head=2, d_model=16, dropout=0.1)


def _gpt_batch():
    ids = rg.tensor(np.random.default_rng(0).integers(0, 11, size=(4, 8)))
    return ids, lambda out: F.cross_entropy(out.reshape(-1, 11), ids.reshape(-1))


def _images(channels, size):
    rng = np.random.default_rng(1)
    x = rg.tensor(rng.standard_normal((4, channels, size, size)))
    y = rg.tensor(rng.integers(0, 10, size=4))
    return x, lambda out: F.cross_entropy(out, y)


def _encoder():
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
    return nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(16))


def _decoder():
    layer = nn.TransformerDecoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
    return nn.TransformerDecoder(layer, 2)


def _sequences():
    x = rg.tensor(np.random.default_rng(2).standard_normal((3, 5, 16)))
    return x, lambda out: out.square().mean()


class _WithMemory(nn.Module):
    """A decoder called with a fixed memory, for the same five-step harness."""

    def __init__(self):
        super().__init__()
        self.decoder = _decoder()
        self.memory = rg.tensor(np.random.default_rng(3).standard_normal((3, 4, 16)))

    def gradient_checkpointing_enable(self):
        self.decoder.gradient_checkpointing_enable()

    def forward(self, x):
        mask = nn.Transformer.generate_square_subsequent_mask(5)
        return self.decoder(x, self.memory.to(dtype=x.dtype), tgt_mask=mask)


CASES = {
    "gpt": (_gpt, _gpt_batch),
    "vit": (lambda: ViT(8, 4, in_channels=1, d_model=16, depth=2, nhead=2, dropout=0.1),
            lambda: _images(1, 8)),
    "resnet8": (lambda: resnet8(in_channels=1), lambda: _images(1, 8)),
    "vgg": (lambda: VGG([4, "M", 8, 8, "M"], in_channels=1), lambda: _images(1, 8)),
    "encoder": (_encoder, _sequences),
    "decoder": (_WithMemory, _sequences),
}


def _train(case, checkpointing, steps=5):
    """The float64 model after ``steps`` SGD steps (the same seed for both runs), and the
    gradients of its last step."""
    build, batch = CASES[case]
    rg.manual_seed(0)
    model = build().double()
    if checkpointing:
        model.gradient_checkpointing_enable()
    x, loss_of = batch()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        loss_of(model(x)).backward()
        opt.step()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters() if p.grad is not None}
    return model, grads


@pytest.mark.parametrize("case", sorted(CASES))
def test_five_sgd_steps_are_identical_with_and_without_checkpointing(case, monkeypatch):
    calls = []
    real = checkpoint_module.checkpoint
    monkeypatch.setattr(checkpoint_module, "checkpoint",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    plain, plain_grads = _train(case, False)
    assert not calls
    checkpointed, grads = _train(case, True)
    assert calls   # the blocks did go through checkpoint
    assert plain_grads.keys() == grads.keys() and grads
    for name in grads:
        assert np.array_equal(plain_grads[name], grads[name]), name
    plain_state, state = plain.state_dict(), checkpointed.state_dict()
    assert plain_state.keys() == state.keys()
    for name in state:   # weights, and batch norm's running stats and num_batches_tracked
        assert np.array_equal(plain_state[name].numpy(), state[name].numpy()), name


def test_batch_norm_counts_each_batch_once():
    model, _ = _train("resnet8", True)
    assert int(model.bn1.num_batches_tracked) == 5
    assert int(model.layers[0][0].bn1.num_batches_tracked) == 5


def test_checkpointing_keeps_fewer_saved_activation_bytes_in_gpt():
    ids, loss_of = _gpt_batch()

    def saved_bytes(checkpointing):
        rg.manual_seed(0)
        model = GPT(vocab_size=11, context=8, n_layer=4, n_head=2, d_model=32)
        if checkpointing:
            model.gradient_checkpointing_enable()
        with MemoryLedger(model) as ledger:
            loss_of(model(ids)).backward()
        return ledger.report().saved_bytes

    plain, checkpointed = saved_bytes(False), saved_bytes(True)
    assert checkpointed < plain / 2, (plain, checkpointed)


@pytest.mark.parametrize("case", sorted(CASES))
def test_eval_mode_and_no_grad_do_not_checkpoint(case, monkeypatch):
    build, batch = CASES[case]
    model = build()
    model.gradient_checkpointing_enable()
    x, _ = batch()
    x = x.float() if x.dtype == rg.float64 else x
    monkeypatch.setattr(checkpoint_module, "checkpoint",
                        lambda *a, **k: pytest.fail("checkpoint was called"))
    model.eval()
    model(x)
    model.train()
    with rg.no_grad():
        model(x)


def test_disable_turns_it_off_everywhere_and_kwargs_reach_checkpoint(monkeypatch):
    model = ViT(8, 4, in_channels=1, d_model=16, depth=2, nhead=2)
    model.gradient_checkpointing_enable({"preserve_rng_state": False})
    assert model.blocks.gradient_checkpointing
    seen = []
    real = checkpoint_module.checkpoint
    monkeypatch.setattr(checkpoint_module, "checkpoint",
                        lambda *a, **k: seen.append(k["preserve_rng_state"]) or real(*a, **k))
    model(rg.randn(2, 1, 8, 8)).sum().backward()
    assert seen == [False, False]
    model.gradient_checkpointing_disable()
    assert not model.gradient_checkpointing and not model.blocks.gradient_checkpointing
    model(rg.randn(2, 1, 8, 8)).sum().backward()
    assert len(seen) == 2


def test_reentrant_checkpointing_is_refused():
    with pytest.raises(checkpoint_module.CheckpointError, match="use_reentrant=True"):
        _gpt().gradient_checkpointing_enable({"use_reentrant": True})


# ----------------------------------------------------------------------- retrograd train
def _spy(monkeypatch):
    calls = []
    real = checkpoint_module.checkpoint
    monkeypatch.setattr(checkpoint_module, "checkpoint",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def _weights(out):
    return load(str(out / "checkpoint.safetensors"))["model"]


def _same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k


def _train_with_and_without_checkpoint(tmp_path, monkeypatch, argv):
    """``retrograd <argv>`` plain, then with --checkpoint: checkpoint is called only in the
    second run, and the two runs end with the same weights."""
    calls = _spy(monkeypatch)
    assert main(argv + [str(tmp_path / "plain")]) == 0
    assert not calls
    assert main(argv + [str(tmp_path / "checkpointed"), "--checkpoint"]) == 0
    assert calls
    _same_weights(_weights(tmp_path / "plain"), _weights(tmp_path / "checkpointed"))


@pytest.mark.parametrize("model", ["resnet-digits", "vit"])
def test_train_checkpoint_gives_the_weights_of_a_run_without(tmp_path, monkeypatch, model):
    small_digits(monkeypatch)
    argv = ["train", "--model", model, "--epochs", "1", "--batch-size", "16", "--no-inspect",
            "--quiet", "--out"]
    _train_with_and_without_checkpoint(tmp_path, monkeypatch, argv)


def test_train_gpt_checkpoint_gives_the_weights_of_a_run_without(tmp_path, monkeypatch):
    argv = ["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--steps", "2",
            "--batch-size", "2", "--context", "8", "--eval-interval", "2", "--no-inspect",
            "--quiet", "--out"]
    _train_with_and_without_checkpoint(tmp_path, monkeypatch, argv)


def test_train_checkpoint_on_a_model_without_blocks_exits_with_a_message(tmp_path, capsys,
                                                                          monkeypatch):
    small_digits(monkeypatch)
    out = tmp_path / "run"
    assert main(["train", "--model", "mlp", "--epochs", "1", "--checkpoint", "--quiet",
                 "--out", str(out)]) == 2
    assert "--checkpoint does not apply to model mlp" in capsys.readouterr().err
    assert not out.exists()


def test_checkpoint_is_not_an_option_of_the_sequence_job(capsys):
    assert main(["train", "--model", "seq2seq", "--checkpoint", "--quiet"]) == 2
    assert "--checkpoint does not apply" in capsys.readouterr().err


def test_train_gpt_checkpoint_budget_plans_and_keeps_the_weights(tmp_path, monkeypatch,
                                                                   capsys):
    argv = ["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--steps", "2",
            "--batch-size", "4", "--context", "16", "--eval-interval", "2", "--no-inspect",
            "--out"]
    assert main(argv + [str(tmp_path / "plain"), "--quiet"]) == 0
    calls = _spy(monkeypatch)
    # a budget between "every block checkpointed" and "none": some blocks are checkpointed
    from retrograd.inspect.checkpointing import plan_checkpoints
    rg.manual_seed(0)
    model = GPT(vocab_size=30, context=16)
    ids = rg.tensor(np.random.default_rng(0).integers(0, 30, size=(4, 16)))
    probe = plan_checkpoints(model, ids)
    budget = (probe.plain_peak + probe.every_block_peak) // 2
    assert main(argv + [str(tmp_path / "planned"), "--checkpoint-budget", str(budget)]) == 0
    printed = capsys.readouterr().out
    assert "checkpoint plan:" in printed and "blocks checkpointed" in printed
    assert calls
    _same_weights(_weights(tmp_path / "plain"), _weights(tmp_path / "planned"))


def test_train_checkpoint_budget_bad_input(tmp_path, capsys):
    argv = ["train", "--model", "gpt", "--data", f"text:{SAMPLE}", "--steps", "1",
            "--batch-size", "2", "--context", "8", "--quiet", "--out", str(tmp_path / "r")]
    assert main(argv + ["--checkpoint-budget", "1000"]) == 2
    assert "below the memory of the model's parameters alone" in capsys.readouterr().err
    assert main(argv + ["--checkpoint-budget", "0"]) == 2
    assert "--checkpoint-budget must be an int >= 1, got 0" in capsys.readouterr().err
    assert main(argv + ["--checkpoint-budget", "10000000", "--no-checkpoint"]) == 2
    assert "give one of them" in capsys.readouterr().err
