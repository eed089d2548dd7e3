"""The sequence job: train an encoder-decoder Transformer on an algorithmic task.

``retrograd train --model seq2seq --data reverse`` (or ``--data add``) calls
``train(SeqConfig(...))``. The task's problems are drawn once (``make_task``: n_train training
problems and n_test held-out ones, disjoint). Training is teacher forcing with a causal target
mask and cross-entropy over the answer tokens (padding ignored), AdamW with linear warmup and
cosine decay, counted in steps. Every ``eval_interval`` steps the job decodes the held-out
problems greedily and measures the exact-match accuracy (the whole answer right, up to <eos>),
then writes, atomically, a full checkpoint to ``<out>/checkpoint.safetensors`` (``resume=``
continues from it bit-identically) and ``metrics.json``, ``curves.png`` and ``report.html``.

Under ``mpiexec -n N`` the job trains data-parallel (training/data_parallel.py): each step's
global batch is N x batch_size problems, rank r training on the r-th batch_size of them; the
loss is normalized by the answer tokens of the whole global batch (so the averaged gradient
is the single-process one even when the ranks' batches hold different numbers of padding
tokens), and the held-out problems are split among the ranks.
"""

import dataclasses
import time

import numpy as np

import retrograd as rg
from retrograd import optim
from retrograd.datasets.sequence_tasks import BOS, EOS, PAD, TASKS, VOCAB, decode, make_task
from retrograd.models.seq2seq import Seq2SeqTransformer
from retrograd.nn import functional as F
from retrograd.training.common import (check_full_batches, check_options, interruptible, job_folder,
                                       make_run_folder, optimizer_step, option_rules, profiling,
                                       report_sections, restore_training_state, resumed_config,
                                       save_state, say, train_steps, training_state,
                                       write_step_outputs)
from retrograd.training.data_parallel import (current_world, parallel_model,
                                              shard, start_line, sum_over_ranks)
from retrograd.training.inspection import inspecting
from retrograd.training.mixed_precision import forward_context, mixed_precision
from retrograd.utils.data import DataLoader

__all__ = ["SeqConfig", "train", "exact_match", "JOB", "DEFAULT_STEPS"]

JOB = "sequence"


@dataclasses.dataclass
class SeqConfig:
    """Options of ``retrograd train --model seq2seq --data TASK``."""

    data: str = "reverse"           # a task of retrograd.datasets.sequence_tasks.TASKS
    model: str = "seq2seq"
    steps: int = None               # None: the task's default (DEFAULT_STEPS)
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    grad_clip: float = 1.0
    d_model: int = 64
    nhead: int = 4
    num_layers: int = 2             # encoder layers, and as many decoder layers
    dim_feedforward: int = 256
    dropout: float = 0.0
    n_train: int = 20000
    n_test: int = 1000
    eval_interval: int = 500
    seed: int = 0
    out: str = None
    resume: str = None
    progress: bool = True
    profile: int = None             # profile this many steps after a warm-up
    inspect: bool = True            # the report's gradient sections (training/inspection.py)
    amp: str = None                 # mixed precision: "bf16" or "fp16"

    def check(self, flags=False):
        """Raise a ValueError for an option out of its range (None, the default, passes);
        ``flags`` names options as retrograd train's (--batch-size) instead of fields."""
        return check_options(self, _RULES, flags)


_RULES = option_rules(steps="count", batch_size="count", lr="rate", weight_decay="rate",
                      warmup_steps="count or zero", grad_clip="rate", d_model="count",
                      nhead="count", num_layers="count", dim_feedforward="count",
                      dropout="probability", n_train="count", n_test="count",
                      eval_interval="count", seed="count or zero", profile="count")


# Steps that reach >= 99% held-out exact match with the defaults (reverse: 100% after 1000;
# add: 99.5% after 3000).
DEFAULT_STEPS = {"reverse": 1500, "add": 3000}


def _check(config):
    if config.data not in TASKS:
        raise ValueError(f"train: unknown sequence task {config.data!r}; choose one of: "
                         f"{', '.join(TASKS)}")
    if config.model != "seq2seq":
        raise ValueError(f"train: the sequence tasks train --model seq2seq, got "
                         f"{config.model!r}")


class _Run:
    """Everything a sequence-task run holds; ``world``: this process's place in a
    data-parallel run (training/data_parallel.py)."""

    def __init__(self, config, world):
        _check(config)
        self.config, self.world = config, world
        rg.manual_seed(config.seed)
        self.train_set, self.test_set = make_task(config.data, config.n_train, config.n_test,
                                                  seed=config.seed)
        self.max_len = max(self.train_set.tgt.shape[1], self.test_set.tgt.shape[1])
        self.model = Seq2SeqTransformer(
            len(VOCAB), config.d_model, config.nhead, config.num_layers, config.num_layers,
            config.dim_feedforward, config.dropout,
            max_len=max(self.max_len, self.train_set.src.shape[1], self.test_set.src.shape[1]))
        self.loader = DataLoader(self.train_set, batch_size=config.batch_size, shuffle=True,
                                 drop_last=True)
        check_full_batches(self.loader, f"training problems of {config.data} (n_train)")
        self.optimizer = optim.AdamW(self.model.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        self.scheduler = optim.lr_scheduler.LinearWarmup(
            self.optimizer, warmup_steps=config.warmup_steps, start_factor=0.0,
            total_steps=max(config.steps, config.warmup_steps + 1))
        self.step, self.history, self.loss_sum, self.loss_count = 0, [], 0.0, 0
        self.checkpoint = None  # the last checkpoint this run wrote
        self.amp = mixed_precision(config, self.model)
        self.parallel_model = parallel_model(self.model, world)  # what training steps call

    def state(self):
        return {"job": JOB, **training_state(self), "running": [self.loss_sum, self.loss_count]}

    def restore(self, state):
        restore_training_state(self, state)
        self.loss_sum, self.loss_count = state["running"]


def exact_match(model, dataset, max_len, batch_size=500):
    """The fraction of problems whose greedily decoded answer equals the true one exactly."""
    return _correct(model, dataset, range(len(dataset)), max_len, batch_size) / len(dataset)


def _correct(model, dataset, problems, max_len, batch_size=500):
    """How many of the problems ``problems`` (a range) of dataset the model answers exactly
    (greedy decoding)."""
    correct = 0
    for begin in range(problems.start, problems.stop, batch_size):
        src, tgt = dataset.get_batch(np.arange(begin, min(begin + batch_size, problems.stop)))
        predicted = model.greedy_decode(src, max_len, BOS, EOS).numpy()
        correct += sum(decode(p) == decode(t) for p, t in zip(predicted, tgt.numpy()))
    return correct


def _exact_match(run):
    """exact_match of the run's model on its held-out problems; in a data-parallel run each
    rank decodes its shard of them and the counts are added up (alone, the shard is every
    problem and the sum its own count)."""
    dataset, world = run.test_set, run.world
    mine = _correct(run.model, dataset, shard(len(dataset), world), run.max_len)
    (correct,) = sum_over_ranks([mine], world)
    return correct / len(dataset)


def _train_step(run, src, tgt):
    with forward_context(run):
        logits = run.parallel_model(src, tgt[:, :-1])
        loss = _answer_loss(run, logits.reshape(-1, logits.shape[-1]), tgt[:, 1:].reshape(-1))
    return optimizer_step(run, loss)


def _answer_loss(run, logits, target):
    """Cross-entropy over the answer tokens (padding ignored): their mean over the batch;
    in a data-parallel run, over the global batch:

        loss_r = (sum of rank r's token losses) * N / T,   T = answer tokens of all N ranks

    so that the ranks' average (what DistributedDataParallel's gradient averaging
    differentiates) is sum / T, the global batch's mean token loss."""
    world = run.world
    if not world.parallel:
        return F.cross_entropy(logits, target, ignore_index=PAD)
    (tokens,) = sum_over_ranks([np.count_nonzero(target.numpy() != PAD)], world)
    return F.cross_entropy(logits, target, ignore_index=PAD, reduction="sum") * (
        world.size / tokens)


def train(config, stop_after=None):
    """Train as configured (or resume); returns the run's summary dict (out, steps, history,
    test_exact_match, model). ``stop_after`` ends this call after that many steps, leaving a
    checkpoint to resume from."""
    config, resumed = resumed_config(config.check(), JOB, SeqConfig, "sequence-task")
    _check(config)
    if config.steps is None:
        config = dataclasses.replace(config, steps=DEFAULT_STEPS[config.data])
    world = current_world()
    config.check()
    config, out = job_folder(config, config.data, world)
    run = _Run(config, world)
    if resumed is not None:
        run.restore(resumed)
    make_run_folder(out, world.writer)
    say(config, f"retrograd train: seq2seq on {config.data} ({len(run.train_set)} train / "
                f"{len(run.test_set)} held-out problems), "
                f"{sum(p.numel() for p in run.model.parameters()):,} parameters -> {out}")
    if world.parallel:
        say(config, start_line(world, config.batch_size))
    with interruptible(run, out), profiling(run, out), inspecting(run, out):
        train_steps(run, _train_step, lambda run, started: _evaluate_and_save(run, out, started),
                    lambda run: save_state(run, out), stop_after)
    accuracy = run.history[-1]["test_exact_match"] if run.history else None
    if run.step == config.steps:
        say(config, f"done: held-out exact match {accuracy:.4f} after {run.step} steps; "
                    f"checkpoint, metrics.json, curves.png and report.html in {out}")
    return dict(out=out, steps=run.step, history=run.history, test_exact_match=accuracy,
                model=run.model)


def _evaluate_and_save(run, out, started):
    train_seconds = time.perf_counter() - started
    accuracy = _exact_match(run)
    row = dict(step=run.step, train_loss=run.loss_sum / max(run.loss_count, 1),
               test_exact_match=accuracy, seconds=train_seconds,
               lr=run.scheduler.get_last_lr()[0])
    run.history.append(row)
    run.loss_sum, run.loss_count = 0.0, 0
    save_state(run, out)
    if not run.world.writer:
        return
    info = dict(name=run.config.data, n_train=len(run.train_set), n_test=len(run.test_set))
    write_step_outputs(out, run.config, info, run.history, ("test_exact_match",),
                       title=f"seq2seq on {run.config.data}",
                       sections=report_sections(run, run.step == run.config.steps, out))
    say(run.config, f"\nstep {run.step}/{run.config.steps}: train loss {row['train_loss']:.4f} "
                    f"| held-out exact match {accuracy:.4f}")
