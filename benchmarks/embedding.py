"""The embedding backward's scatter-add: which NumPy strategy is fastest.

dL/dW (V, D) is zeros with the N rows of dL/dy (N, D) added at their token ids (repeated ids
accumulate). Strategies timed, float32, for vocabularies of 65 (characters) to 50k (GPT-2
BPE) and 4k to 64k tokens per batch:

- add.at 2-D:   np.add.at(dW, ids, dY)
- sort+reduceat: argsort the ids, gather the rows in that order, np.add.reduceat over runs
- add.at flat (chunked): np.add.at on the flattened dW with flat indices id * D + column, fed
  in chunks of rows (NumPy's fast path for ufunc.at on 1-D arrays) -- what retrograd uses
- torch: PyTorch's embedding_dense_backward, for reference

    python benchmarks/embedding.py [--dims 64 512] [--repeats 5]
"""

import argparse
import time

import numpy as np


def add_at_2d(ids, rows, vocab):
    out = np.zeros((vocab, rows.shape[1]), dtype=rows.dtype)
    np.add.at(out, ids, rows)
    return out


def sort_reduceat(ids, rows, vocab):
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    out = np.zeros((vocab, rows.shape[1]), dtype=rows.dtype)
    out[sorted_ids[starts]] = np.add.reduceat(np.take(rows, order, axis=0), starts, axis=0)
    return out


def add_at_flat(ids, rows, vocab):
    from retrograd.ops.embedding import embedding_scatter
    return embedding_scatter(rows, ids, vocab)


def _best_ms(fn, args, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch
    torch.set_num_threads(2)

    def torch_backward(ids, rows, vocab):
        return torch.ops.aten.embedding_dense_backward(rows, ids, vocab, -1, False)

    strategies = {"add.at 2-D": add_at_2d, "sort+reduceat": sort_reduceat,
                  "add.at flat": add_at_flat}
    rng = np.random.default_rng(0)
    header = f"{'D':>4} {'V':>6} {'N':>6} | " + " | ".join(f"{k:>13}" for k in strategies)
    print(header + " | " + f"{'torch':>8}   (ms, best of {args.repeats})")
    for dim in args.dims:
        for vocab in (65, 1000, 50257):
            for tokens in (4096, 16384, 65536):
                ids = rng.integers(0, vocab, tokens)
                rows = rng.standard_normal((tokens, dim)).astype(np.float32)
                reference = add_at_2d(ids, rows, vocab)
                cells = []
                for fn in strategies.values():
                    assert np.allclose(fn(ids, rows, vocab), reference, atol=1e-3)
                    cells.append(f"{_best_ms(fn, (ids, rows, vocab), args.repeats):13.1f}")
                t_args = (torch.from_numpy(ids), torch.from_numpy(rows), vocab)
                t_ms = _best_ms(torch_backward, t_args, args.repeats)
                print(f"{dim:>4} {vocab:>6} {tokens:>6} | " + " | ".join(cells) +
                      f" | {t_ms:8.1f}")


if __name__ == "__main__":
    main()
