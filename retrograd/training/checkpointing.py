"""Activation checkpointing in the training jobs: ``--checkpoint`` checkpoints every block of
the model, ``--checkpoint-budget BYTES`` lets retrograd.inspect.plan_checkpoints choose the
segments that fit a step's peak into the budget (measured on the first batch)."""

from retrograd.inspect.checkpointing import plan_checkpoints
from retrograd.inspect.render import format_bytes
from retrograd.utils.data import default_collate

__all__ = ["setup_checkpointing", "plan_line"]


def setup_checkpointing(model, name, config, dataset, loss_fn):
    """Configure ``model``'s checkpointing from ``config.checkpoint`` and
    ``config.checkpoint_budget``; returns the CheckpointPlan (None without a budget).
    ``loss_fn(output, target)`` is the job's loss, planned on the first ``batch_size``
    samples of ``dataset``.

    Example:
        >>> from retrograd.models import build_model
        >>> from retrograd.training.image import TrainConfig
        >>> setup_checkpointing(build_model("mlp", 1, 8, 10), "mlp",
        ...                     TrainConfig(checkpoint=True), None, None)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ValueError: train: --checkpoint does not apply to model mlp (no blocks to checkpoint)...
    """
    budget = config.checkpoint_budget
    if not (config.checkpoint or budget is not None):
        return None
    flag = "--checkpoint-budget" if budget is not None else "--checkpoint"
    if not hasattr(model, "gradient_checkpointing_enable"):
        raise ValueError(f"train: {flag} does not apply to model {name} (no blocks to "
                         f"checkpoint); it works with the resnet models, vgg, vit and gpt")
    if budget is None:
        model.gradient_checkpointing_enable()
        return None
    if config.checkpoint is False:
        raise ValueError("train: --checkpoint-budget plans checkpointing, --no-checkpoint turns "
                         "it off: give one of them")
    x, target = default_collate([dataset[i] for i in range(min(config.batch_size,
                                                                 len(dataset)))])
    try:
        return plan_checkpoints(model, x, budget, target=target, loss_fn=loss_fn)
    except ValueError as e:
        raise ValueError(f"train: --checkpoint-budget {budget}: "
                         f"{str(e).removeprefix('plan_checkpoints: ')}") from None


def plan_line(plan):
    """One progress line about a plan."""
    segments = sum(1 for s in plan.segments if s[2])
    return (f"checkpoint plan: {plan.checkpointed_blocks} of {plan.blocks} blocks checkpointed "
            f"in {segments} segment{'s' if segments != 1 else ''}; peak predicted "
            f"{format_bytes(plan.predicted_peak)}, measured {format_bytes(plan.measured_peak)} "
            f"(budget {format_bytes(plan.budget_bytes)}, {format_bytes(plan.plain_peak)} without)")
