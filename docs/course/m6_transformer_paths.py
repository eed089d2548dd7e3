"""Module 6 lab: the gradient's paths through Transformer blocks.

Three parts on the shipped Shakespeare text (character level), each at initialization and,
where it says so, after a short training run:

1. the residual split: in a pre-norm GPT block, x_mid = x + attn(ln_1(x)) and
   y = x_mid + mlp(ln_2(x_mid)), so the gradient at the block's input is
       dL/dx = dL/dy                         (the identity path)
             + J_mlp^T dL/dy                 (the feed-forward path)
             + J_attn^T (dL/dy + J_mlp^T dL/dy)   (the attention path)
   each term computed with ``retrograd.autograd.grad`` (a vector-Jacobian product of the
   branch's output) on tensors caught by forward hooks, and its norm measured;
2. pre-norm against post-norm: character models built on ``nn.TransformerEncoderLayer``
   (``norm_first`` True or False) at several depths, the gradient of every layer's
   parameters at initialization read by a ``GradientMonitor``, and the gradient of the
   residual stream at every layer's input;
3. per head: the gradient of the attention weights A (dL/dA, from
   ``retrograd.inspect.capture_attention``) and the head's slices of the gradients of the
   query, key, value and output projections.

Run from the repository root::

    python docs/course/m6_transformer_paths.py            # full form, docs/course/results/
    python docs/course/m6_transformer_paths.py --quick --out /tmp/m6
"""

import contextlib
import math
import time

import numpy as np

import retrograd as rg
from retrograd import nn, optim
from retrograd.datasets.shakespeare import shakespeare_path
from retrograd.datasets.text import load_text_splits
from retrograd.inspect import GradientMonitor, capture_attention
from retrograd.models.gpt import GPT, GPTConfig
from retrograd.nn import functional as F
from retrograd.training.common import seeded_batches

import _labkit
from _labkit import markdown_table

PAGE = "m6-transformer-paths.md"
FIGURES = ("m6-residual-paths.png", "m6-prenorm-postnorm.png", "m6-head-gradients.png")

CONTEXT = 32
GPT_SHAPE = dict(n_layer=4, n_head=4, d_model=64)   # parts 1 and 3
ENCODER_SHAPE = dict(d_model=64, nhead=4)           # part 2, feed-forward 4 d_model
TRAINING = dict(lr=3e-3, batch_size=16, seed=0)     # AdamW, betas (0.9, 0.95)
PROBE_WINDOWS = 8                                   # validation windows every probe runs
STATES = ("init", "trained")
MATRICES = ("dL/dA", "W_q", "W_k", "W_v", "W_o")    # part 3, per head


def _settings(quick):
    """Training steps of the GPT; depths of part 2."""
    if quick:
        return dict(steps=30, depths=(2, 6, 12))
    return dict(steps=300, depths=(2, 6, 12, 24))


def norm(tensor):
    """The L2 norm of all the entries of a Tensor (or array), in float64."""
    values = tensor.detach().numpy() if hasattr(tensor, "detach") else tensor
    return float(np.linalg.norm(np.asarray(values, dtype=np.float64)))


def lm_loss(model, x, y):
    """Mean next-character cross-entropy of ``model`` on (x, y)."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


# ----------------------------------------------------------------------------- part 1
def make_gpt(vocab_size):
    """The GPT of parts 1 and 3 (GPT_SHAPE, context CONTEXT), after manual_seed."""
    rg.manual_seed(TRAINING["seed"])
    return GPT(GPTConfig(vocab_size, CONTEXT, **GPT_SHAPE))


def train(model, train_set, steps):
    """``steps`` AdamW steps on Shakespeare windows; returns the training losses."""
    optimizer = optim.AdamW(model.parameters(), lr=TRAINING["lr"], betas=(0.9, 0.95),
                            weight_decay=0.0)
    losses = []
    for x, y in seeded_batches(train_set, TRAINING["batch_size"], steps, TRAINING["seed"]):
        optimizer.zero_grad()
        loss = lm_loss(model, x, y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@contextlib.contextmanager
def caught_block_tensors(model):
    """Forward hooks on every GPT block: yields one dict per block that a forward fills with
    ``x`` (the block's input), ``mid`` (x + attn(ln_1(x)), the input of ln_2), ``attn`` and
    ``mlp`` (the branches' outputs) and ``out`` (the block's output)."""
    caught = [{} for _ in model.blocks]

    def keep(slot, key, from_input):
        def hook(module, args, output):
            slot[key] = args[0] if from_input else output
        return hook

    handles = []
    for block, slot in zip(model.blocks, caught):
        handles += [block.register_forward_hook(keep(slot, "x", True)),
                    block.register_forward_hook(keep(slot, "out", False)),
                    block.ln_2.register_forward_hook(keep(slot, "mid", True)),
                    block.attn.register_forward_hook(keep(slot, "attn", False)),
                    block.mlp.register_forward_hook(keep(slot, "mlp", False))]
    try:
        yield caught
    finally:
        for handle in handles:
            handle.remove()


def residual_paths(model, probe):
    """The three terms of dL/dx at every block's input (module docstring), each a
    vector-Jacobian product by ``retrograd.autograd.grad``; their norms, and the largest
    difference between their sum and autograd's own dL/dx (``max_error``)."""
    with caught_block_tensors(model) as caught:
        loss = lm_loss(model, *probe)
    outputs = [slot["out"] for slot in caught]
    grads = rg.autograd.grad(loss, outputs + [caught[0]["x"]], retain_graph=True)
    at_input = list(grads[len(outputs):]) + list(grads[:len(outputs) - 1])  # dL/dx per block
    rows, error = [], 0.0
    for i, slot in enumerate(caught):
        identity = grads[i]
        (ffn,) = rg.autograd.grad(slot["mlp"], slot["mid"], grad_outputs=identity,
                                  retain_graph=True)
        (attention,) = rg.autograd.grad(slot["attn"], slot["x"], grad_outputs=identity + ffn,
                                        retain_graph=True)
        total = identity + ffn + attention
        error = max(error, float(np.max(np.abs((total - at_input[i]).numpy()))))
        rows.append(dict(block=i, identity=norm(identity), attention=norm(attention),
                         ffn=norm(ffn), total=norm(total),
                         input_rms=norm(slot["x"]) / math.sqrt(slot["x"].numel())))
    return dict(loss=loss.item(), blocks=rows, max_error=error)


# ----------------------------------------------------------------------------- part 2
class EncoderLM(nn.Module):
    """A character language model on retrograd's encoder layers: token and learned position
    embeddings, ``depth`` ``nn.TransformerEncoderLayer`` (GELU, feed-forward 4 d_model, no
    dropout) under a causal mask, pre-norm (``norm_first``, with a final LayerNorm) or
    post-norm, and a linear head. PyTorch's default initialization throughout.

    Shape: (B, T) int64 ids -> (B, T, V) logits.
    """

    def __init__(self, vocab_size, context, depth, norm_first, d_model=64, nhead=4):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.LearnedPositionalEmbedding(context, d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout=0.0,
                                           activation="gelu", batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, depth,
                                             norm=nn.LayerNorm(d_model) if norm_first else None)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, idx):
        mask = nn.Transformer.generate_square_subsequent_mask(idx.shape[1])
        return self.head(self.encoder(self.wpe(self.wte(idx)), mask=mask, is_causal=True))


def make_encoder_lm(vocab_size, depth, norm_first, seed=0):
    """EncoderLM of ENCODER_SHAPE, after manual_seed(seed)."""
    rg.manual_seed(seed)
    return EncoderLM(vocab_size, CONTEXT, depth, norm_first, **ENCODER_SHAPE)


def layer_gradient_norms(gradients, depth):
    """The norm of all the gradients of each encoder layer's parameters, from a StepRecord's
    {parameter name: GradientStats}."""
    return [math.sqrt(sum(s.norm ** 2 for name, s in gradients.items()
                          if name.startswith(f"encoder.layers.{i}.")))
            for i in range(depth)]


def norm_placement(vocab_size, depth, norm_first, probe):
    """One forward and backward of the probe through a fresh EncoderLM: each layer's
    parameter gradient norm (GradientMonitor) and the residual stream's gradient norm at each
    layer's input (autograd.grad on tensors caught by forward hooks)."""
    model = make_encoder_lm(vocab_size, depth, norm_first)
    inputs = {}
    handles = [layer.register_forward_hook(
        lambda module, args, output, i=i: inputs.__setitem__(i, args[0]))
        for i, layer in enumerate(model.encoder.layers)]
    monitor = GradientMonitor(model, every=1)
    try:
        loss = lm_loss(model, *probe)
    finally:
        for handle in handles:
            handle.remove()
    stream = rg.autograd.grad(loss, [inputs[i] for i in range(depth)], retain_graph=True)
    loss.backward()
    record = monitor.record()
    monitor.close()
    return dict(depth=depth, placement="pre-norm" if norm_first else "post-norm",
                loss=loss.item(), layers=layer_gradient_norms(record.gradients, depth),
                stream=[norm(g) for g in stream], flags=len(monitor.flags))


# ----------------------------------------------------------------------------- part 3
def head_slices(model, head):
    """Row (or column) ranges of head ``head`` in each projection: GPT's qkv output is
    (3, heads, head dim) flattened, proj's input (heads, head dim)."""
    width = model.config.d_model
    size = width // model.config.n_head
    rows = slice(head * size, (head + 1) * size)
    return dict(W_q=rows, W_k=slice(width + rows.start, width + rows.stop),
                W_v=slice(2 * width + rows.start, 2 * width + rows.stop), W_o=rows)


def head_gradients(model, probe):
    """One forward and backward of the probe under capture_attention: per layer and head,
    |dL/dA| over the probe and the norms of the head's slices of dL/dW_q, dL/dW_k, dL/dW_v
    (rows of the qkv projection) and dL/dW_o (columns of the output projection)."""
    model.zero_grad()                   # the last training step's gradients are still there
    with capture_attention() as rec:
        lm_loss(model, *probe).backward()
    rows = []
    for layer, block in enumerate(model.blocks):
        record = rec[f"blocks.{layer}.attn"][0]
        qkv = block.attn.qkv.weight.grad.numpy()
        proj = block.attn.proj.weight.grad.numpy()
        for head in range(model.config.n_head):
            parts = head_slices(model, head)
            rows.append({"layer": layer, "head": head,
                         "dL/dA": norm(record.grad_probs[:, head]),
                         "W_q": norm(qkv[parts["W_q"]]), "W_k": norm(qkv[parts["W_k"]]),
                         "W_v": norm(qkv[parts["W_v"]]), "W_o": norm(proj[:, parts["W_o"]])})
    model.zero_grad()
    return rows


# ----------------------------------------------------------------------------- figures
PATH_TERMS = (("identity", "identity path", "tab:grey"), ("attention", "attention path",
                                                             "tab:orange"),
              ("ffn", "feed-forward path", "tab:green"), ("total", "dL/dx (their sum)",
                                                          "tab:blue"))


def plot_paths(paths, path):
    """Part 1: the norm of each term of dL/dx per block, at initialization and trained."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True, layout="constrained")
    for ax, state in zip(axes, STATES):
        blocks = paths[state]["blocks"]
        x = np.arange(len(blocks))
        for k, (key, label, colour) in enumerate(PATH_TERMS):
            ax.bar(x + (k - 1.5) * 0.2, [b[key] for b in blocks], width=0.2, color=colour,
                   label=label)
        ax.set_xticks(x, [f"block {b['block']}" for b in blocks])
        ax.set_yscale("log")
        ax.set(title=f"{state}: loss {paths[state]['loss']:.2f}",
               xlabel="block (0: next to the embeddings)")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("norm of the term of dL/dx at the block's input")
    axes[1].legend(fontsize=9, loc="upper right")
    fig.suptitle("The gradient at each GPT block's input, split by path (Shakespeare probe)")
    _labkit.save_figure(fig, path, dpi=100)


def plot_norm_placement(runs, path):
    """Part 2: per-layer parameter gradient and stream gradient, and the last layer's
    parameter gradient against depth, pre-norm solid, post-norm dashed."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 6), layout="constrained")
    depths = sorted({r["depth"] for r in runs})
    colour = dict(zip(depths, plt.get_cmap("tab10").colors))
    for r in runs:
        style = "-" if r["placement"] == "pre-norm" else "--"
        label = f"{r['placement']}, {r['depth']} layers"
        for ax, key in ((axes[0], "layers"), (axes[1], "stream")):
            ax.plot(np.arange(r["depth"]), r[key], style, marker="o", markersize=3,
                    color=colour[r["depth"]], label=label)
    for placement, style in (("pre-norm", "-"), ("post-norm", "--")):
        last = [next(r["layers"][-1] for r in runs
                     if r["depth"] == d and r["placement"] == placement) for d in depths]
        axes[2].plot(depths, last, style, marker="o", color="black", label=placement)
        if placement == "pre-norm":
            guide = [last[0] * math.sqrt(depths[0] / d) for d in depths]
            axes[2].plot(depths, guide, ":", color="grey", label="pre-norm at 2 layers x "
                         "sqrt(2 / depth)")
    axes[0].set(xlabel="layer (0: next to the embeddings)",
                ylabel="norm of the layer's parameter gradient",
                title="Each layer's parameter gradient at initialization")
    axes[1].set(xlabel="layer (0: next to the embeddings)",
                ylabel="norm of dL/dx at the layer's input",
                title="The residual stream's gradient")
    axes[2].set(xlabel="depth (layers)", ylabel="norm of the last layer's parameter gradient",
                title="The last layer against depth")
    axes[2].set_xscale("log", base=2)
    axes[2].set_xticks(depths, [str(d) for d in depths])
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(depths), fontsize=9)
    axes[2].legend(fontsize=9)
    fig.suptitle("Pre-norm (solid) and post-norm (dashed) encoder layers at initialization, "
                 "one Shakespeare batch")
    _labkit.save_figure(fig, path, dpi=100)


def plot_heads(heads, path):
    """Part 3: layer x head maps of |dL/dA| and of each projection's gradient slice, at
    initialization (top) and trained (bottom), one log colour scale per column."""
    plt = _labkit.pyplot()
    import matplotlib.colors

    layers = 1 + max(r["layer"] for r in heads["init"])
    count = 1 + max(r["head"] for r in heads["init"])
    fig, axes = plt.subplots(2, len(MATRICES), figsize=(17, 6.5), layout="constrained")
    for j, key in enumerate(MATRICES):
        grids = {s: np.full((layers, count), np.nan) for s in STATES}
        for state in STATES:
            for r in heads[state]:
                grids[state][r["layer"], r["head"]] = r[key]
        values = np.concatenate([g.ravel() for g in grids.values()])
        scale = matplotlib.colors.LogNorm(max(values.min(), 1e-12), values.max())
        for i, state in enumerate(STATES):
            ax = axes[i, j]
            shown = ax.imshow(grids[state], norm=scale, cmap="viridis", aspect="auto")
            ax.set_xticks(range(count))
            ax.set_yticks(range(layers))
            ax.set(xlabel="head", ylabel=f"{state}\nlayer" if j == 0 else "layer")
            if i == 0:
                ax.set_title(f"|{key}|" if key.startswith("dL") else f"|dL/d{key}| of the head")
        fig.colorbar(shown, ax=axes[:, j], shrink=0.8)
    fig.suptitle("Per-head gradient norms of the GPT's attention (top: initialization, "
                 "bottom: trained)")
    _labkit.save_figure(fig, path, dpi=100)


# ----------------------------------------------------------------------------- results page
def _paths_table(paths):
    return markdown_table(["state", "block", "identity", "attention path", "feed-forward path",
                           "dL/dx", "attention / identity", "feed-forward / identity", "input RMS"],
                          [[state, b["block"], f"{b['identity']:.3e}", f"{b['attention']:.3e}",
                            f"{b['ffn']:.3e}", f"{b['total']:.3e}",
                            f"{b['attention'] / b['identity']:.3f}",
                            f"{b['ffn'] / b['identity']:.3f}", f"{b['input_rms']:.3f}"]
                           for state in STATES for b in paths[state]["blocks"]])


def _placement_table(runs):
    return markdown_table(["layers", "placement", "first layer", "last layer", "first / last",
                           "stream at layer 0", "stream at last layer", "monitor flags"],
                          [[r["depth"], r["placement"], f"{r['layers'][0]:.3f}",
                            f"{r['layers'][-1]:.3f}", f"{r['layers'][0] / r['layers'][-1]:.2f}",
                            f"{r['stream'][0]:.4f}", f"{r['stream'][-1]:.4f}", r["flags"]]
                           for r in runs])


def _column(matrix):
    """A table heading for a MATRICES entry (no '|': it would split a Markdown cell)."""
    return matrix if matrix.startswith("dL") else f"dL/d{matrix}"


def _heads_table(heads):
    return markdown_table(["state", "layer", "head"] + [_column(m) for m in MATRICES],
                          [[state, r["layer"], r["head"]] + [f"{r[m]:.2e}" for m in MATRICES]
                           for state in STATES for r in heads[state]])


def write_results(out, paths, losses, runs, heads, settings, quick, seconds):
    """The results page: the three parts' tables and the figures."""
    means = {state: {m: float(np.mean([r[m] for r in heads[state]])) for m in MATRICES}
             for state in STATES}
    head_means = markdown_table(["state"] + [f"mean norm of {_column(m)}" for m in MATRICES],
                                [[s] + [f"{means[s][m]:.2e}" for m in MATRICES] for s in STATES])
    text = f"""# Module 6 lab: results

Generated by `{_labkit.command(__file__, quick)}` in
{seconds:.0f} s. Every probe is the first {PROBE_WINDOWS} validation windows of
{CONTEXT} characters of the shipped Shakespeare text.

## Part 1: the three paths of the gradient through a pre-norm block

A GPT with {GPT_SHAPE['n_layer']} blocks, {GPT_SHAPE['n_head']} heads and d_model
{GPT_SHAPE['d_model']}, at initialization and after {settings['steps']} AdamW steps (lr
{TRAINING['lr']}, batch {TRAINING['batch_size']}, seed {TRAINING['seed']}; training loss
{losses[0]:.3f} at the first step, {np.mean(losses[-10:]):.3f} over the last 10). Norms of
the terms of dL/dx at each block's input: the identity path dL/dy, the feed-forward path
J_mlp^T dL/dy, the attention path J_attn^T (dL/dy + J_mlp^T dL/dy), and their sum; "input
RMS" is the root mean square of the block's input x (the residual stream there). The
largest difference between an entry of their sum and autograd's own dL/dx is
{max(paths[s]['max_error'] for s in STATES):.1e}.

{_paths_table(paths)}

![The gradient at each block's input, split by path](m6-residual-paths.png)

## Part 2: pre-norm against post-norm at initialization

Character models of `nn.TransformerEncoderLayer` (d_model {ENCODER_SHAPE['d_model']},
{ENCODER_SHAPE['nhead']} heads, feed-forward {4 * ENCODER_SHAPE['d_model']}, GELU, causal
mask, PyTorch's default initialization, seed 0), one forward and backward of the probe.
"first layer" and "last layer" are the norms of all the gradients of that encoder layer's
parameters (GradientMonitor); "stream" is the norm of dL/dx at the layer's input.

{_placement_table(runs)}

![Pre-norm and post-norm gradients per layer](m6-prenorm-postnorm.png)

## Part 3: per-head gradients of the attention

For each layer and head of the GPT of part 1, norms over the probe: of dL/dA (the gradient
of the attention weights, from `capture_attention`) and of the head's slices of the
projection gradients: its rows of W_q, W_k, W_v and its columns of the output projection
W_o.

{head_means}

{_heads_table(heads)}

![Per-head gradient norms](m6-head-gradients.png)
"""
    (out / PAGE).write_text(text)


# ----------------------------------------------------------------------------- main
def main(argv=None):
    """Run the lab; returns its numbers: ``paths`` and ``heads`` (per state), ``losses``,
    ``placement`` (part 2 runs), the trained ``model``, the ``probe``, ``vocab_size``,
    ``settings``, ``seconds``."""
    args = _labkit.parse_args(__doc__.splitlines()[0], argv, threads=True,
                              quick_help="the reduced form: 30 training steps, depths 2, 6, 12")
    out = _labkit.out_folder(args.out)
    settings = _settings(args.quick)
    start = time.perf_counter()
    with _labkit.threads(args.threads):
        train_set, val_set, tokenizer = load_text_splits(shakespeare_path(), CONTEXT)
        probe = val_set.get_batch(np.arange(PROBE_WINDOWS))
        model = make_gpt(tokenizer.vocab_size)
        paths, heads = {"init": residual_paths(model, probe)}, {"init": head_gradients(model,
                                                                                        probe)}
        losses = train(model, train_set, settings["steps"])
        paths["trained"] = residual_paths(model, probe)
        heads["trained"] = head_gradients(model, probe)
        runs = [norm_placement(tokenizer.vocab_size, depth, norm_first, probe)
                for depth in settings["depths"] for norm_first in (True, False)]
        plot_paths(paths, out / FIGURES[0])
        plot_norm_placement(runs, out / FIGURES[1])
        plot_heads(heads, out / FIGURES[2])
    seconds = time.perf_counter() - start
    write_results(out, paths, losses, runs, heads, settings, args.quick, seconds)
    for state in STATES:
        for b in paths[state]["blocks"]:
            print(f"{state:>7} block {b['block']}: identity {b['identity']:.3e}, attention "
                  f"{b['attention']:.3e}, feed-forward {b['ffn']:.3e}")
    for r in runs:
        print(f"{r['depth']:>3} layers {r['placement']:>9}: parameter gradient first "
              f"{r['layers'][0]:.3f}, last {r['layers'][-1]:.3f}")
    print(f"wrote {PAGE} and {len(FIGURES)} figures to {out} ({seconds:.1f} s)")
    return dict(paths=paths, heads=heads, losses=losses, placement=runs, model=model,
                probe=probe, vocab_size=tokenizer.vocab_size, settings=settings,
                seconds=seconds)


if __name__ == "__main__":
    main()
