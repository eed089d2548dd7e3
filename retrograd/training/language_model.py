"""The language-model job: train a character-level GPT on a text file, and sample from it.

``retrograd train --model gpt --data text:PATH`` calls ``train(LMConfig(...))``; without --data
(or with ``--data shakespeare``) it reads the corpus shipped in the package
(``retrograd.datasets.shakespeare``, public domain). Training is
counted in steps (one batch of ``batch_size`` windows of ``context`` characters each). Every
``eval_interval`` steps the job measures the validation loss (mean cross-entropy in nats per
character over every non-overlapping window of the last 10% of the text) and writes, atomically,
a full checkpoint (model, optimizer, scheduler, data-loader position, RNG state, step, history,
the configuration, the model's hyperparameters and the vocabulary) to
``<out>/checkpoint.safetensors``; ``resume=`` continues from it bit-identically. The run folder
also holds ``metrics.json``, ``curves.png`` (training and validation loss per step) and
``report.html``.

``retrograd sample --checkpoint PATH`` calls ``sample(...)``: the prompt followed by ``length``
characters drawn with temperature and top-k, reproducible with a seed.

The step loop, progress bar and run outputs are shared with the sequence job
(``retrograd.training.common``). Under ``mpiexec -n N`` the job trains data-parallel
(training/data_parallel.py): each step's global batch is N x batch_size windows, rank r
training on the r-th batch_size of them, and the validation windows are split among the
ranks.
"""

import dataclasses
import os
import time

import numpy as np

import retrograd as rg
from retrograd import _checks
from retrograd import optim
from retrograd.datasets.shakespeare import NAME as SHAKESPEARE
from retrograd.datasets.shakespeare import shakespeare_path
from retrograd.datasets.text import CharTokenizer, load_text_splits
from retrograd.models.gpt import GPT, GPTConfig
from retrograd.nn import functional as F
from retrograd.training.common import (check_full_batches, check_options, interruptible, job_folder,
                                       make_run_folder, optimizer_step, option_rules, profiling,
                                       read_checkpoint, report_sections, restore_training_state,
                                       resumed_config, save_state, say, train_steps, training_state,
                                       write_step_outputs)
from retrograd.training.checkpointing import plan_line, setup_checkpointing
from retrograd.training.data_parallel import (current_world, parallel_model,
                                              shard, start_line, sum_over_ranks)
from retrograd.training.mixed_precision import forward_context, mixed_precision
from retrograd.training.inspection import AttentionInspection, inspecting
from retrograd.utils.data import DataLoader

__all__ = ["LMConfig", "train", "sample", "evaluate_loss", "load_gpt", "JOB"]

JOB = "language_model"


@dataclasses.dataclass
class LMConfig:
    """Options of ``retrograd train --model gpt --data text:PATH`` (defaults: the brief's
    4 layers, d_model 128, 4 heads, context 128; AdamW with linear warmup and cosine decay;
    the shipped Shakespeare corpus)."""

    data: str = SHAKESPEARE         # "text:PATH", or "shakespeare" (shipped)
    model: str = "gpt"
    steps: int = 2000
    batch_size: int = 32
    context: int = 128
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    dropout: float = 0.0
    tie_weights: bool = True
    lr: float = 2e-3
    min_lr: float = 2e-4            # the cosine decay ends here at the last step
    weight_decay: float = 0.1       # on matrices only (not biases, LayerNorms)
    warmup_steps: int = 100
    grad_clip: float = 1.0          # max global gradient norm (0: no clipping)
    eval_interval: int = 250        # evaluate, log and checkpoint every this many steps
    eval_windows: int = None        # validation windows per evaluation (None: all)
    seed: int = 0
    out: str = None
    resume: str = None
    progress: bool = True
    profile: int = None             # profile this many steps after a warm-up
    inspect: bool = True            # the report's gradient sections (training/inspection.py)
    inspect_attention: int = None   # attention diagnostics every N steps (attention.json)
    checkpoint: bool = None         # activation checkpointing of the GPT blocks (less memory)
    checkpoint_budget: int = None   # plan the checkpointing to fit a step's peak in this
    amp: str = None                 # mixed precision: "bf16" or "fp16"

    def check(self, flags=False):
        """Raise a ValueError for an option out of its range (None, the default, passes);
        ``flags`` names options as retrograd train's (--batch-size) instead of fields."""
        return check_options(self, _RULES, flags)


_RULES = option_rules(steps="count", batch_size="count", context="count", n_layer="count",
                      n_head="count", d_model="count", dropout="probability", lr="rate",
                      min_lr="rate", weight_decay="rate", warmup_steps="count or zero",
                      grad_clip="rate", eval_interval="count", eval_windows="count",
                      seed="count or zero", profile="count", inspect_attention="count",
                      checkpoint_budget="count")


def text_path(spec):
    """'text:PATH' -> PATH; 'shakespeare' (or None) -> the shipped corpus's path."""
    if spec is None or spec == SHAKESPEARE:
        return shakespeare_path()
    name, _, path = spec.partition(":")
    if name != "text" or not path:
        raise ValueError(f"train: the gpt model reads a text file, give --data text:PATH or "
                         f"--data {SHAKESPEARE} (the shipped corpus) (got {spec!r})")
    return path


def _flat_cross_entropy(logits, y):
    """The language model's loss: cross-entropy over every position of every window."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _param_groups(model, weight_decay):
    """Decay the matrices (Linear and Embedding weights); not the biases and LayerNorms."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return [dict(params=decay, weight_decay=weight_decay),
            dict(params=no_decay, weight_decay=0.0)]


class _Run:
    """Everything a language-model run holds, built from its configuration; ``world``: this
    process's place in a data-parallel run (training/data_parallel.py)."""

    def __init__(self, config, world):
        self.config, self.world = config, world
        rg.manual_seed(config.seed)
        self.path = text_path(config.data)
        self.train_set, self.val_set, self.tokenizer = load_text_splits(self.path, config.context)
        self.model_config = GPTConfig(self.tokenizer.vocab_size, config.context, config.n_layer,
                                      config.n_head, config.d_model, config.dropout,
                                      config.tie_weights)
        self.model = GPT(self.model_config)
        self.checkpoint_plan = setup_checkpointing(self.model, "gpt", config, self.train_set,
                                                   _flat_cross_entropy)
        self.amp = mixed_precision(config, self.model)
        self.loader = DataLoader(self.train_set, batch_size=config.batch_size, shuffle=True,
                                 drop_last=True)
        check_full_batches(self.loader, f"training windows of {config.context} characters in "
                                        f"{self.path!r}")
        self.optimizer = optim.AdamW(_param_groups(self.model, config.weight_decay),
                                     lr=config.lr, betas=(0.9, 0.99))
        self.scheduler = optim.lr_scheduler.LinearWarmup(
            self.optimizer, warmup_steps=config.warmup_steps, start_factor=0.0,
            total_steps=max(config.steps, config.warmup_steps + 1), eta_min=config.min_lr)
        self.step, self.history, self.checkpoint = 0, [], None
        self.attention_inspection = None   # --inspect-attention (set by train)
        self.loss_sum, self.loss_count, self.tokens = 0.0, 0, 0
        self.parallel_model = parallel_model(self.model, world)  # what training steps call

    def state(self):
        return {"job": JOB, **training_state(self),
                "running": [self.loss_sum, self.loss_count, self.tokens],
                "model_config": self.model_config.as_dict(), "vocab": self.tokenizer.chars}

    def restore(self, state):
        restore_training_state(self, state)
        self.loss_sum, self.loss_count, self.tokens = state["running"]
        if state["vocab"] != self.tokenizer.chars:
            raise ValueError(f"train: the checkpoint's vocabulary differs from {self.path!r}'s; "
                             f"resume with the text it was trained on")


def evaluate_loss(model, dataset, batch_size=64, limit=None):
    """Mean cross-entropy (nats per token) of model over the windows of dataset (the first
    ``limit`` windows when given), in eval mode without a graph.

    Example:
        >>> import numpy as np
        >>> from retrograd.datasets.text import CharDataset
        >>> from retrograd.models.gpt import GPT
        >>> model = GPT(vocab_size=4, context=8, n_layer=1, n_head=1, d_model=8)
        >>> loss = evaluate_loss(model, CharDataset(np.arange(40) % 4, context=8, stride=8))
        >>> round(float(np.log(4)), 3)      # a uniform guess over 4 characters
        1.386
        >>> 1.3 < loss < 1.6                  # a fresh model is close to it
        True
    """
    count = len(dataset) if limit is None else min(limit, len(dataset))
    return _loss_sum(model, dataset, range(count), batch_size) / (count * dataset.context)


def _loss_sum(model, dataset, windows, batch_size=64):
    """The summed cross-entropy of model over the windows ``windows`` (a range) of dataset,
    in eval mode without a graph."""
    was_training = model.training
    model.eval()
    total = 0.0
    with rg.no_grad():
        for begin in range(windows.start, windows.stop, batch_size):
            x, y = dataset.get_batch(np.arange(begin, min(begin + batch_size, windows.stop)))
            logits = model(x)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="sum").item()
    model.train(was_training)
    return total


def _validation_loss(run):
    """evaluate_loss of the run's model on its validation windows; in a data-parallel run
    each rank evaluates its shard of the windows and the sums are added up (alone, the shard
    is every window and the sum its own)."""
    dataset, limit, world = run.val_set, run.config.eval_windows, run.world
    count = len(dataset) if limit is None else min(limit, len(dataset))
    (total,) = sum_over_ranks([_loss_sum(run.model, dataset, shard(count, world))], world)
    return total / (count * dataset.context)


def _train_step(run, x, y):
    run.tokens += x.numel() * run.world.size   # the global batch's
    with forward_context(run):
        loss = _flat_cross_entropy(run.parallel_model(x), y)
    loss = optimizer_step(run, loss)
    if run.attention_inspection is not None:
        run.attention_inspection.after_step(run.step)
    return loss


_ATTENTION_BATCH = 2   # validation windows in --inspect-attention's fixed batch


def _attention_inspection(run, out):
    """--inspect-attention N: an AttentionInspection on the first validation windows."""
    every = run.config.inspect_attention
    if not every or not run.world.writer:   # rank 0's model is every rank's
        return None
    x, y = run.val_set.get_batch(np.arange(min(_ATTENTION_BATCH, len(run.val_set))))

    def make_loss():
        return _flat_cross_entropy(run.model(x), y)

    shown = {"\n": "\\n", " ": "\u2423", "\t": "\\t"}
    tokens = [run.tokenizer.decode([int(i)]) for i in x.numpy()[0]]
    tokens = [shown.get(t, t) for t in tokens]
    return AttentionInspection(run, out, every, make_loss, tokens,
                               say=lambda text: say(run.config, text))


def _log(run, started, val_loss):
    """Append one row to the history; reset the running training loss."""
    seconds = time.perf_counter() - started
    row = dict(step=run.step, train_loss=run.loss_sum / max(run.loss_count, 1),
               val_loss=val_loss, tokens_per_s=run.tokens / max(seconds, 1e-9),
               seconds=seconds, lr=run.scheduler.get_last_lr()[0])
    run.history.append(row)
    run.loss_sum, run.loss_count, run.tokens = 0.0, 0, 0
    return row


def train(config, stop_after=None):
    """Train as configured (or resume); returns the run's summary dict (out, steps, history,
    val_loss, model, tokenizer).

    ``stop_after`` ends this call after that many steps (the schedule still spans
    ``config.steps``), leaving a checkpoint to resume from, as an interruption would.
    """
    config, resumed = resumed_config(config.check(), JOB, LMConfig, "language-model")
    config.check()
    world = current_world()
    config, out = job_folder(config, "text", world)
    run = _Run(config, world)
    if resumed is not None:
        run.restore(resumed)
    make_run_folder(out, world.writer)
    run.attention_inspection = _attention_inspection(run, out)
    say(config, f"retrograd train: gpt on {run.path} ({len(run.train_set.ids):,} train / "
                f"{len(run.val_set.ids):,} validation characters, vocabulary "
                f"{run.tokenizer.vocab_size}), {_parameter_count(run):,} parameters -> {out}")
    if world.parallel:
        say(config, start_line(world, config.batch_size))
    if run.checkpoint_plan is not None:
        say(config, plan_line(run.checkpoint_plan))

    def evaluate_and_save(run, started):
        val_loss = _validation_loss(run)
        row = _log(run, started, val_loss)
        _checkpoint(run, out)
        say(config, f"\nstep {run.step}/{config.steps}: train loss {row['train_loss']:.4f} "
                    f"| val loss {val_loss:.4f} | {row['tokens_per_s']:,.0f} tok/s")

    with interruptible(run, out), profiling(run, out), inspecting(run, out):
        train_steps(run, _train_step, evaluate_and_save, lambda run: _checkpoint(run, out),
                    stop_after, describe=lambda run, loss: (
                        f"loss={loss:.4f} lr={run.scheduler.get_last_lr()[0]:.2e}"))
    val = run.history[-1]["val_loss"] if run.history else None
    if run.step == config.steps:
        say(config, f"done: validation loss {val:.4f} nats/char after {run.step} steps; "
                    f"checkpoint, metrics.json, curves.png and report.html in {out}")
    return dict(out=out, steps=run.step, history=run.history, val_loss=val, model=run.model,
                tokenizer=run.tokenizer)


def _parameter_count(run):
    return sum(p.numel() for p in run.model.parameters())


def _checkpoint(run, out):
    """The checkpoint and the run outputs (rank 0 alone writes them)."""
    if not run.world.writer:
        return
    save_state(run, out)
    info = dict(name=os.path.basename(run.path), vocab_size=run.tokenizer.vocab_size,
                parameters=_parameter_count(run))
    write_step_outputs(out, run.config, info, run.history, ("val_loss",),
                       title=f"gpt on {info['name']}",
                       sections=report_sections(run, run.step == run.config.steps, out))


# ----------------------------------------------------------------------------- sampling
def load_gpt(checkpoint):
    """(model in eval mode, tokenizer) from a language-model checkpoint."""
    state = read_checkpoint(checkpoint, owner="sample")
    if state.get("job") != JOB:
        raise ValueError(f"sample: {checkpoint!r} is not a language-model checkpoint (written "
                         f"by retrograd train --model gpt)")
    model = GPT(GPTConfig(**state["model_config"]))
    model.load_state_dict(state["model"])
    return model.eval(), CharTokenizer(state["vocab"])


def sample(checkpoint, prompt=None, length=500, temperature=1.0, top_k=None, seed=0):
    """The prompt followed by ``length`` sampled characters, from a checkpoint's GPT.

    The prompt defaults to a newline (or the vocabulary's first character); it must use only
    characters of the training text and fit in the model's context. The same seed gives the
    same text.
    """
    model, tokenizer = load_gpt(checkpoint)
    if prompt is None:
        prompt = "\n" if "\n" in tokenizer.chars else tokenizer.chars[0]
    if not prompt:
        raise ValueError("sample: the prompt is empty")
    ids = tokenizer.encode(prompt)
    if len(ids) > model.config.context:
        raise ValueError(f"sample: the prompt has {len(ids)} characters, longer than the "
                         f"model's context of {model.config.context}")
    length = _checks.non_negative_int("sample", "length", length)
    seed = _checks.non_negative_int("sample", "seed", seed)
    generator = np.random.Generator(np.random.PCG64(seed))
    out = model.generate(ids[None, :], length, temperature=temperature, top_k=top_k,
                         generator=generator)
    return tokenizer.decode(out[0])
