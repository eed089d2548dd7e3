"""Transformer encoder training step: retrograd against PyTorch (CPU, float32, 2 threads).

1. One training step (forward, MSE loss, backward, AdamW step) of a 2-layer pre-norm
   TransformerEncoder (d_model 128, 4 heads, FFN 512, ReLU, dropout 0, batch_first) on a batch
   of 32 sequences of 64 tokens with a causal mask, with a final LayerNorm. Both models start
   from the same weights (PyTorch's state dict loaded into retrograd) and run in the same
   process, in alternating blocks of steps (rounds), so that both see the same machine load;
   the ratio is the median of the rounds' ratios of median step times. Blocks rather than
   step-by-step alternation: each library's BLAS/OpenMP threads keep spinning for a while
   after a call and would steal the two cores from the other library's threads.
   Target: retrograd / torch <= 1.5.
2. Attention alone (benchmarks/attention.py): forward + backward at B=32, H=4, T=64, D=32,
   causal, against PyTorch; and the activation memory (bytes saved for backward, tracemalloc
   peak) of the standard against the memory-efficient op at T = 256, 1024 and 4096.

    python benchmarks/transformer.py [--repeats 30] [--rounds 5] [--profile]

--profile also runs pyinstrument (pip install pyinstrument) over 10 retrograd steps and prints
the call tree, to find overhead in the layer code.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

D_MODEL, HEADS, FFN, SEQ, BATCH, LAYERS = 128, 4, 512, 64, 32, 2


def _torch_model(torch):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(D_MODEL, HEADS, FFN, dropout=0.0,
                                             batch_first=True, norm_first=True)
    return torch.nn.TransformerEncoder(layer, LAYERS, norm=torch.nn.LayerNorm(D_MODEL),
                                       enable_nested_tensor=False)


def _rg_model(rg, state):
    layer = rg.nn.TransformerEncoderLayer(D_MODEL, HEADS, FFN, dropout=0.0, batch_first=True,
                                          norm_first=True)
    model = rg.nn.TransformerEncoder(layer, LAYERS, norm=rg.nn.LayerNorm(D_MODEL))
    model.load_state_dict(state)
    return model


def _step_runner(lib, model, opt, x, target, mask):
    loss_fn = lib.nn.functional.mse_loss

    def step():
        start, cpu_start = time.perf_counter(), time.process_time()
        opt.zero_grad()
        out = model(x, mask=mask, is_causal=True)
        loss = loss_fn(out, target)
        loss.backward()
        opt.step()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        return wall, cpu, float(loss.item())
    return step


def training_step(repeats, rounds=5):
    import torch

    import retrograd as rg

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32)
    target = rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32)
    t_model = _torch_model(torch)
    r_model = _rg_model(rg, {k: v.detach().numpy().copy() for k, v in
                             t_model.state_dict().items()})
    runners = {
        "retrograd": _step_runner(rg, r_model, rg.optim.AdamW(r_model.parameters(), lr=1e-4),
                                  rg.tensor(x), rg.tensor(target),
                                  rg.nn.Transformer.generate_square_subsequent_mask(SEQ)),
        "torch": _step_runner(torch, t_model, torch.optim.AdamW(t_model.parameters(), lr=1e-4),
                              torch.tensor(x), torch.tensor(target),
                              torch.nn.Transformer.generate_square_subsequent_mask(SEQ)),
    }
    runs = {name: [] for name in runners}
    ratios = []
    per_round = max(1, repeats // rounds)
    for _ in range(rounds):
        medians = {}
        for name, run in runners.items():
            for _ in range(2):  # warm-up, and time for the other library's threads to idle
                run()
            results = [run() for _ in range(per_round)]
            runs[name] += results
            medians[name] = statistics.median(r[0] for r in results)
        ratios.append(medians["retrograd"] / medians["torch"])
    print(f"training step (forward, backward, AdamW), {LAYERS}-layer pre-norm encoder, float32, "
          f"d_model={D_MODEL} heads={HEADS} ffn={FFN} seq={SEQ} batch={BATCH}, causal, torch "
          f"threads 2: median of {rounds} rounds x {per_round} steps (ms; CPU time = process "
          f"time, all threads)")
    print(f"  {'':10s} {'wall':>8s} {'CPU time':>9s}   last loss")
    wall, cpu = {}, {}
    for name, results in runs.items():
        wall[name] = statistics.median(r[0] for r in results) * 1e3
        cpu[name] = statistics.median(r[1] for r in results) * 1e3
        print(f"  {name:10s} {wall[name]:8.2f} {cpu[name]:9.2f}   {results[-1][2]:.6f}")
    ratio = statistics.median(ratios)
    print(f"  ratio retrograd / torch, wall time: {ratio:.2f} (median of the rounds' ratios "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; target <= 1.5); CPU time: "
          f"{cpu['retrograd'] / cpu['torch']:.2f}")
    return ratio


def attention_alone(repeats, lengths=(256, 1024, 4096)):
    """benchmarks/attention.py's two parts: speed at B=32, H=4, T=64, D=32 and the activation
    memory of the standard and memory-efficient ops at each of ``lengths``."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import attention

    print()
    attention.speed(repeats, threads=2, shape=(32, 4, 64, 32))
    attention.memory(lengths, block_size=128)


def profile(steps=10):
    from pyinstrument import Profiler

    import retrograd as rg

    rng = np.random.default_rng(0)
    layer = rg.nn.TransformerEncoderLayer(D_MODEL, HEADS, FFN, dropout=0.0, batch_first=True,
                                          norm_first=True)
    model = rg.nn.TransformerEncoder(layer, LAYERS, norm=rg.nn.LayerNorm(D_MODEL))
    opt = rg.optim.AdamW(model.parameters(), lr=1e-4)
    x = rg.tensor(rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32))
    target = rg.tensor(rng.standard_normal((BATCH, SEQ, D_MODEL)).astype(np.float32))
    mask = rg.nn.Transformer.generate_square_subsequent_mask(SEQ)
    step = _step_runner(rg, model, opt, x, target, mask)
    step()
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(steps):
        step()
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    training_step(args.repeats, args.rounds)
    attention_alone(args.repeats)
    if args.profile:
        profile()


if __name__ == "__main__":
    main()
