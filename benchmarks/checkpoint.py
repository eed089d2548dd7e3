"""What gradient checkpointing saves and costs in a GPT training step: 8 layers x 4 heads,
d_model 256, context 256, batch 8 windows of tiny Shakespeare (the corpus shipped in
retrograd.datasets, character vocabulary), float32, AdamW, 2 threads. Three retrograd modes:
plain, every block checkpointed (``gradient_checkpointing_enable()``), and checkpointed with
the selective policy that keeps the outputs of the linear layers (the matrix products).

Measured for each retrograd mode:
  1. the bytes one step keeps for backward (saved + kept by a policy), from
     ``retrograd.inspect.checkpointing.checkpoint_receipt``, and the recompute FLOPs as a share
     of the forward's;
  2. the tracemalloc peak of one full step (zero_grad, forward, loss, backward, AdamW step)
     above the memory traced when it starts, after a warm-up step, in an untimed run;
  3. the median step time over ``--rounds`` interleaved rounds of ``--steps`` steps, with
     PyTorch's step of the same architecture (TorchGPT of tests/torch_gpt.py, which has no
     dropout), plain and with each block run through ``torch.utils.checkpoint``, in the same
     rounds. PyTorch's memory is not measured (tracemalloc does not see its allocator).

    python benchmarks/checkpoint.py [--rounds 5] [--steps 2]
"""

import os
import sys
import tracemalloc

import _bench  # noqa: E402, F401  (first: it sets the BLAS threads before NumPy loads)

import torch  # noqa: E402
import torch.utils.checkpoint  # noqa: E402

import retrograd as rg  # noqa: E402
from retrograd.inspect.checkpointing import checkpoint_receipt  # noqa: E402
from retrograd.inspect.render import format_bytes  # noqa: E402
from retrograd.models.gpt import GPT, GPTConfig  # noqa: E402
from retrograd.nn import functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.torch_gpt import TorchGPT  # noqa: E402

from _bench import (THREADS, cpu_model, interleaved_medians, rounds_and_steps,  # noqa: E402
                    shakespeare_batch)

CONTEXT, BATCH = 256, 8
SHAPE = dict(context=CONTEXT, n_layer=8, n_head=4, d_model=256, dropout=0.1)
POLICY = {"policy": ["linear"]}
RETROGRAD_MODES = {"plain": None, "checkpointed": {}, "checkpointed+policy": POLICY}


class CheckpointedTorchGPT(TorchGPT):
    """TorchGPT with each block run through torch.utils.checkpoint in training."""

    def forward(self, idx):
        x = self.wte(idx) + self.wpe.weight[:idx.shape[1]]
        for block in self.blocks:
            x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
        return self.head(self.ln_f(x))


def retrograd_model(vocab, checkpointing):
    rg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, **SHAPE))
    if checkpointing is not None:
        model.gradient_checkpointing_enable(checkpointing or None)
    return model


def retrograd_step(model, x, y, vocab):
    x, y = rg.tensor(x), rg.tensor(y)
    optimizer = rg.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1)).backward()
        optimizer.step()
    return step


def torch_step(model_class, x, y, vocab):
    torch.manual_seed(0)
    model = model_class(GPTConfig(vocab_size=vocab, **SHAPE))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1)).backward()
        optimizer.step()
    return step


def receipt_of(model, x, y, vocab):
    return checkpoint_receipt(
        model, rg.tensor(x), target=rg.tensor(y),
        loss_fn=lambda out, t: F.cross_entropy(out.reshape(-1, vocab), t.reshape(-1)))


def traced_peak(step):
    """Bytes tracemalloc sees at the peak of one step above those traced at its start."""
    step()                                           # warm-up: the optimizer state exists
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


def measure_memory(x, y, vocab):
    """{mode: (kept bytes, receipt, traced step peak)} for the retrograd modes."""
    memory = {}
    for mode, checkpointing in RETROGRAD_MODES.items():
        receipt = receipt_of(retrograd_model(vocab, checkpointing), x, y, vocab)
        step = retrograd_step(retrograd_model(vocab, checkpointing), x, y, vocab)
        memory[mode] = (receipt.saved_bytes + receipt.cached_bytes, receipt, traced_peak(step))
    return memory


def print_memory(memory):
    plain_kept, _, plain_peak = memory["plain"]
    print("Memory of one step (retrograd)")
    for mode, (kept, receipt, peak) in memory.items():
        extra = 100 * receipt.recompute_flops / receipt.forward_flops
        print(f"  {mode:>20}: kept {format_bytes(kept):>10} ({plain_kept / kept:.2f}x less; "
              f"saved {format_bytes(receipt.saved_bytes)} + policy "
              f"{format_bytes(receipt.cached_bytes)}), recompute {extra:5.1f}% of forward "
              f"FLOPs, ledger peak {format_bytes(receipt.peak_bytes)}, tracemalloc step peak "
              f"{format_bytes(peak):>10} ({plain_peak / peak:.2f}x less)")


def print_times(times):
    print("Step time (medians)")
    for name, seconds in times.items():
        print(f"  {name:>30}: {1e3 * seconds:8.1f} ms")
    pairs = [("retrograd checkpointed", "retrograd plain"),
             ("retrograd checkpointed+policy", "retrograd plain"),
             ("PyTorch checkpointed", "PyTorch plain"),
             ("retrograd plain", "PyTorch plain"),
             ("retrograd checkpointed", "PyTorch checkpointed")]
    for top, bottom in pairs:
        print(f"  {top + ' / ' + bottom:>52}: {times[top] / times[bottom]:.2f}x")


def print_summary(memory, times):
    kept = memory["plain"][0] / memory["checkpointed"][0]
    peak = memory["plain"][2] / memory["checkpointed"][2]
    slower = times["retrograd checkpointed"] / times["retrograd plain"]
    print("Summary (retrograd, every block checkpointed)")
    for text, ok in ((f"saved-activation bytes reduced {kept:.1f}x (>= 3x", kept >= 3),
                     (f"tracemalloc step peak reduced {peak:.1f}x (>= 2x", peak >= 2),
                     (f"step time {slower:.2f}x plain (<= 1.4x", slower <= 1.4)):
        print(f"  {text}: {'yes' if ok else 'NO'})")


def main():
    args = rounds_and_steps(__doc__)
    torch.set_num_threads(THREADS)
    x, y, vocab = shakespeare_batch(CONTEXT, BATCH)
    print(f"CPU: {cpu_model()}; {THREADS} threads (torch {torch.get_num_threads()})")
    print(f"GPT {SHAPE['n_layer']} layers x {SHAPE['n_head']} heads, d_model "
          f"{SHAPE['d_model']}, batch {BATCH} x {CONTEXT}, vocab {vocab} (tiny Shakespeare), "
          f"float32, AdamW; times are medians of {args.rounds} interleaved rounds of "
          f"{args.steps} steps")
    memory = measure_memory(x, y, vocab)
    print_memory(memory)
    steps = {f"retrograd {mode}": retrograd_step(retrograd_model(vocab, checkpointing), x, y,
                                                 vocab)
             for mode, checkpointing in RETROGRAD_MODES.items()}
    steps["PyTorch plain"] = torch_step(TorchGPT, x, y, vocab)
    steps["PyTorch checkpointed"] = torch_step(CheckpointedTorchGPT, x, y, vocab)
    times = interleaved_medians(steps, args.rounds, args.steps)
    print_times(times)
    print_summary(memory, times)


if __name__ == "__main__":
    main()
