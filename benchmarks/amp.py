"""What autocast costs and saves in a training step of the GPT case study (retrograd train
--model gpt: 4 layers x 4 heads, d_model 128, context 128, batch 32 windows of the shipped
tiny Shakespeare, AdamW, gradient clipping at 1.0), 2 threads: float32, autocast to bfloat16,
and autocast to float16 with a GradScaler, interleaved for ``--rounds`` rounds.

Printed: the median step times and their ratio to float32's; the bytes one step keeps for
backward (the memory ledger) and their ratio, with what stays float32 listed by op; and
PyTorch's float32 step and CPU autocast (bfloat16) step of the same architecture
(tests/torch_gpt.py) in the same rounds, for scale.

    python benchmarks/amp.py [--rounds 5] [--steps 2]
"""

import os
import sys

import _bench  # noqa: E402, F401  (first: it sets the BLAS threads before NumPy loads)

import torch  # noqa: E402

import retrograd as rg  # noqa: E402
from retrograd.inspect import MemoryLedger  # noqa: E402
from retrograd.inspect.render import format_bytes  # noqa: E402
from retrograd.models.gpt import GPT, GPTConfig  # noqa: E402
from retrograd.nn import functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tests.torch_gpt import TorchGPT  # noqa: E402

from _bench import (THREADS, cpu_model, interleaved_medians, rounds_and_steps,  # noqa: E402
                    shakespeare_batch)

CONTEXT, BATCH = 128, 32
SHAPE = dict(context=CONTEXT, n_layer=4, n_head=4, d_model=128, dropout=0.0)
MODES = {"float32": None, "bfloat16": rg.bfloat16, "float16": rg.float16}


def loss_of(model, x, y, vocab, dtype):
    """The step's loss, the forward under autocast to ``dtype`` (None: float32)."""
    if dtype is None:
        return F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
    with rg.autocast(dtype=dtype):
        return F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))


def retrograd_step(x, y, vocab, dtype):
    rg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, **SHAPE))
    optimizer = rg.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = rg.amp.GradScaler(enabled=dtype == rg.float16)

    def step():
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss_of(model, x, y, vocab, dtype)).backward()
        scaler.unscale_(optimizer)
        rg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
    return model, step


def torch_step(x, y, vocab, autocast):
    torch.manual_seed(0)
    model = TorchGPT(GPTConfig(vocab_size=vocab, **SHAPE))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, vocab),
                                                 y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return step


def saved(x, y, vocab, dtype):
    """The memory ledger's report of one forward (what it keeps for backward)."""
    model, _ = retrograd_step(x, y, vocab, dtype)
    with MemoryLedger(model) as ledger:
        loss_of(model, x, y, vocab, dtype)
        report = ledger.report()
    return report


def float32_rows(report):
    rows = {}
    for value in report.saved:
        if value.dtype == "float32":
            key = (value.op, value.kind)
            rows[key] = rows.get(key, 0) + value.nbytes
    return sorted(rows.items(), key=lambda kv: -kv[1])


def main():
    args = rounds_and_steps(__doc__)
    torch.set_num_threads(THREADS)
    x, y, vocab = shakespeare_batch(CONTEXT, BATCH)
    x, y = rg.tensor(x), rg.tensor(y)
    print(f"CPU: {cpu_model()}; {THREADS} threads")
    print(f"GPT case study: {SHAPE['n_layer']} layers x {SHAPE['n_head']} heads, d_model "
          f"{SHAPE['d_model']}, batch {BATCH} x {CONTEXT}, vocab {vocab}; medians of "
          f"{args.rounds} interleaved rounds of {args.steps} steps")
    reports = {mode: saved(x, y, vocab, dtype) for mode, dtype in MODES.items()}
    base = reports["float32"].saved_bytes
    print("Saved for backward (memory ledger, one forward)")
    for mode, report in reports.items():
        print(f"  {mode:>9}: {format_bytes(report.saved_bytes):>11}  "
              f"({report.saved_bytes / base:.2f}x float32's)")
    print("  what stays float32 under bfloat16 autocast (op, kind: bytes):")
    for (op, kind), nbytes in float32_rows(reports["bfloat16"]):
        print(f"    {op} {kind}: {format_bytes(nbytes)}")
    steps = {f"retrograd {mode}": retrograd_step(x, y, vocab, dtype)[1]
             for mode, dtype in MODES.items()}
    steps["PyTorch float32"] = torch_step(x, y, vocab, False)
    steps["PyTorch autocast bfloat16"] = torch_step(x, y, vocab, True)
    times = interleaved_medians(steps, args.rounds, args.steps)
    print("Step time (medians)")
    for name, seconds in times.items():
        print(f"  {name:>28}: {1e3 * seconds:8.1f} ms  "
              f"({seconds / times['retrograd float32']:.2f}x retrograd float32)")
    bf16 = times["retrograd bfloat16"] / times["retrograd float32"]
    ratio = reports["bfloat16"].saved_bytes / base
    print("Summary (bfloat16 autocast)")
    print(f"  step time {bf16:.2f}x float32 (<= 1.25x: {'yes' if bf16 <= 1.25 else 'NO'})")
    print(f"  saved bytes {ratio:.2f}x float32 (<= 0.6x: {'yes' if ratio <= 0.6 else 'NO'})")


if __name__ == "__main__":
    main()
