"""retrograd.inspect.checkpointing: the receipt's bytes and FLOPs against a direct count, the
dry run of a policy, and the planner's predicted peak against the measured one."""

import numpy as np
import pytest

import retrograd as rg
from retrograd import nn
from retrograd.inspect import FlopCounter
from retrograd.inspect.checkpointing import (checkpoint_dry_run, checkpoint_receipt,
                                             plan_checkpoints)
from retrograd.models import GPT, resnet8
from retrograd.nn import functional as F
from retrograd.utils.checkpoint import checkpoint


def _mlp(depth=4, width=32):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers)


def test_receipt_bytes_and_flops_match_a_direct_count():
    model = _mlp()
    x = rg.randn(16, 32)
    receipt = checkpoint_receipt(lambda t: checkpoint(model, t), x, model=model)
    activation = 16 * 32 * 4
    # kept: the checkpoint's input; dropped: the 4 Tanh outputs (the Linears save x, kept,
    # and the Tanh outputs before them; the last Tanh saves its output)
    assert receipt.saved_bytes == activation
    assert receipt.dropped_bytes == 4 * activation
    assert receipt.without_checkpointing_bytes == 5 * activation
    with FlopCounter() as counter:
        model(x)
    # the recompute ran the model's forward once more; the step's forward also summed it
    assert receipt.recompute_flops == counter.total_flops("forward")
    assert receipt.forward_flops == counter.total_flops("forward") + 16 * 32 - 1
    text = str(receipt)
    assert "Saved for backward" in text and "5.00x less kept" in text


def test_receipt_without_checkpointing_drops_nothing():
    model = _mlp(depth=2)
    receipt = checkpoint_receipt(model, rg.randn(4, 32))
    assert receipt.dropped_bytes == 0 and receipt.recompute_flops == 0
    assert receipt.without_checkpointing_bytes == receipt.saved_bytes > 0


def test_dry_run_rows_and_totals():
    block = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8))
    x = rg.randn(4, 8)
    run = checkpoint_dry_run(block, x, policy=["linear"])
    assert [(r.op, r.module, r.kept) for r in run.rows] == [
        ("Linear", "0", True), ("Gelu", "1", False), ("Linear", "2", True)]
    with FlopCounter() as counter:
        block(x)
    by_op = counter.by_op("forward")
    assert run.skipped_flops == by_op["Linear"] and run.recompute_flops == by_op["Gelu"]
    assert run.kept_bytes == 4 * 32 * 4 + 4 * 8 * 4      # the two Linear outputs, float32
    assert "keep output" in str(run) and "recompute" in str(run)
    nothing = checkpoint_dry_run(block, x)
    assert not any(r.kept for r in nothing.rows) and nothing.kept_bytes == 0


def _gpt_step():
    rg.manual_seed(0)
    model = GPT(vocab_size=17, context=32, n_layer=6, n_head=2, d_model=32, dropout=0.1)
    ids = rg.tensor(np.random.default_rng(0).integers(0, 17, size=(4, 32)))

    def loss_fn(out, target):
        return F.cross_entropy(out.reshape(-1, 17), target.reshape(-1))
    return model, ids, loss_fn


def test_planner_predicts_the_measured_peak_within_20_percent_for_two_budgets():
    model, ids, loss_fn = _gpt_step()
    sqrt_plan = plan_checkpoints(model, ids, target=ids, loss_fn=loss_fn)
    assert sqrt_plan.segments == [(0, 2, True), (2, 4, True), (4, 6, True)]   # sqrt(6) ~ 2
    plain, every = sqrt_plan.plain_peak, sqrt_plan.every_block_peak
    assert every < plain
    for budget in (int(0.8 * plain), int(every + 0.25 * (plain - every))):
        plan = plan_checkpoints(model, ids, budget, target=ids, loss_fn=loss_fn)
        assert plan.measured_peak <= budget * 1.05
        assert abs(plan.predicted_peak - plan.measured_peak) <= 0.2 * plan.measured_peak, plan
        assert 0 < plan.checkpointed_blocks < 6
        assert "Predicted peak" in str(plan) and "Measured peak" in str(plan)
    # a looser budget checkpoints fewer blocks (less recompute)
    loose = plan_checkpoints(model, ids, int(0.95 * plain), target=ids, loss_fn=loss_fn)
    assert loose.checkpointed_blocks <= plan.checkpointed_blocks
    assert model.gradient_checkpointing and model._checkpoint_segments == loose.segments


def test_planner_leaves_the_model_state_as_it_was():
    model = resnet8(in_channels=1)
    x = rg.randn(4, 1, 8, 8)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    rng = rg.random.get_rng_state()
    plan_checkpoints(model, x)
    after = model.state_dict()
    for name, value in before.items():      # running statistics included
        assert np.array_equal(value, after[name].numpy()), name
    assert rg.random.get_rng_state() == rng
    assert all(p.grad is None for p in model.parameters())


def test_planner_bad_input():
    model, ids, loss_fn = _gpt_step()
    parameters = sum(p.numpy().nbytes for p in model.parameters() if not p.requires_grad) + \
        sum(p.detach().numpy().nbytes for p in model.parameters())
    with pytest.raises(ValueError, match=rf"budget_bytes=1000 .* below the memory of the "
                                         rf"model's parameters alone, {parameters} bytes"):
        plan_checkpoints(model, ids, 1000, target=ids, loss_fn=loss_fn)
    with pytest.raises(ValueError, match=r"no plan fits budget_bytes=.*lowest predicted peak"):
        plan_checkpoints(model, ids, parameters + 1, target=ids, loss_fn=loss_fn)
    with pytest.raises(TypeError, match=r"Sequential has no gradient_checkpointing_enable"):
        plan_checkpoints(_mlp(), rg.randn(2, 32))
    with pytest.raises(ValueError, match=r"budget_bytes"):
        plan_checkpoints(model, ids, -5)
