"""Module 3 lab: pooling and normalization layers.

Four parts on the 8x8 digits, each checked against an independent computation:

1. pooling's backward on conv feature maps: max pooling routes each window's gradient to its
   argmax only (the fraction of input positions that receive any gradient is measured),
   average pooling spreads it evenly; both written out in NumPy and compared with autograd;
2. the normalization backward dL/dx = gamma rstd (g - mean(g) - x_hat mean(g x_hat)) over the
   axes A that are normalized: batch norm (A = N, H, W), layer norm (C, H, W) and group norm
   (a group's channels, H, W), against autograd;
3. scale invariance: a convolution followed by a normalization, its weight scaled by 0.1 to
   100: the gradient with respect to the images stays put while dL/dW shrinks as 1/scale;
4. a small CNN (four 3x3 convolutions, two max pools) trained with no normalization, with
   BatchNorm and with GroupNorm, watched by ``retrograd.inspect.GradientMonitor``.

Run from the repository root::

    python docs/course/m3_pool_norm.py            # full form, writes docs/course/results/
    python docs/course/m3_pool_norm.py --quick --out /tmp/m3
"""

import time

import numpy as np

import _labkit
from _labkit import markdown_table

PAGE = "m3-pool-norm.md"

CHANNELS, GROUPS, EPS = 8, 2, 1e-5
# (kind, kernel, stride, padding) of the pooling part
POOLS = (("max", 2, 2, 0), ("max", 3, 2, 1), ("max", 3, 1, 1), ("avg", 2, 2, 0),
         ("avg", 3, 1, 1))
SCALES = (0.1, 1.0, 10.0, 100.0)
NORMS = ("none", "batch", "layer", "group")
TRAINED = ("none", "batch", "group")


def _settings(quick):
    if quick:
        return dict(steps=20, every=5, batch=32, lr=0.05, probe=32)
    return dict(steps=300, every=10, batch=32, lr=0.05, probe=128)


# ----------------------------------------------------------------------------- data
def probe_digits(count):
    """The first ``count`` training digits as float64 (N, 1, 8, 8) and their labels."""
    from retrograd.datasets import Digits

    train = Digits(train=True)
    return train.data[:count].astype(np.float64)[:, None], train.targets[:count]


def conv_features(images, seed=0):
    """Pre-activation feature maps (N, 8, 8, 8) of a seeded Conv2d(1, 8, 3, padding=1)."""
    import retrograd as rg
    from retrograd import nn

    rg.manual_seed(seed)
    conv = nn.Conv2d(1, CHANNELS, 3, padding=1).double()
    with rg.no_grad():
        return conv(rg.tensor(images)).numpy().copy()


def seeded_head(in_features, seed):
    """A Linear(in_features, 10) in float64 made after ``manual_seed(seed)``: the rest of the
    network above the layer studied, so that the loss is a real classification loss."""
    import retrograd as rg
    from retrograd import nn

    rg.manual_seed(seed)
    return nn.Linear(in_features, 10).double()


# ----------------------------------------------------------------------------- pooling by hand
def _windows(size, kernel, stride, padding):
    return (size + 2 * padding - kernel) // stride + 1


def max_pool_backward(x, grad_y, kernel, stride, padding):
    """dL/dX of max pooling: each window's dL/dY goes to the position of its maximum (the
    first one in row-major order on a tie; padding is -inf and never wins); other positions
    get nothing from that window. Windows that overlap add up."""
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2),
                    constant_values=-np.inf)
    grad_x = np.zeros_like(padded)
    rows, cols = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    for i in range(grad_y.shape[2]):
        for j in range(grad_y.shape[3]):
            window = padded[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel]
            winner = window.reshape(n, c, -1).argmax(axis=2)
            di, dj = np.divmod(winner, kernel)
            grad_x[rows, cols, i * stride + di, j * stride + dj] += grad_y[:, :, i, j]
    return grad_x[:, :, padding:padding + h, padding:padding + w]


def avg_pool_backward(grad_y, x_shape, kernel, stride, padding):
    """dL/dX of average pooling (padding counted in the divisor, PyTorch's default): each
    window's dL/dY is split equally, dL/dY / k^2, over its k^2 positions."""
    n, c, h, w = x_shape
    grad_x = np.zeros((n, c, h + 2 * padding, w + 2 * padding))
    for i in range(grad_y.shape[2]):
        for j in range(grad_y.shape[3]):
            grad_x[:, :, i * stride:i * stride + kernel, j * stride:j * stride + kernel] += \
                grad_y[:, :, i, j, None, None] / kernel ** 2
    return grad_x[:, :, padding:padding + h, padding:padding + w]


def pool_case(features, labels, kind, kernel, stride, padding):
    """One pooling layer on the feature maps, a seeded linear head, cross-entropy: autograd's
    dL/dX against the hand backward, and how many input positions get any gradient."""
    import retrograd as rg
    from retrograd.nn import functional as F

    x = rg.tensor(features, requires_grad=True)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    y = pool(x, kernel, stride=stride, padding=padding)
    y.retain_grad()
    head = seeded_head(y[0].numel(), seed=1)
    F.cross_entropy(head(y.flatten(1)), rg.tensor(labels)).backward()
    grad_y, grad_x = y.grad.numpy(), x.grad.numpy()
    if kind == "max":
        hand = max_pool_backward(features, grad_y, kernel, stride, padding)
    else:
        hand = avg_pool_backward(grad_y, features.shape, kernel, stride, padding)
    receives = grad_x != 0
    wins = _window_wins(features, kernel, stride, padding) if kind == "max" else None
    return dict(kind=kind, kernel=kernel, stride=stride, padding=padding,
                output=tuple(y.shape[2:]), windows=int(np.prod(y.shape[2:])),
                fraction_with_gradient=float(receives.mean()),
                max_diff=float(np.max(np.abs(hand - grad_x))),
                multiple_wins=None if wins is None else float((wins > 1).mean()),
                grad_x=grad_x, grad_y_sum=float(grad_y.sum()), grad_x_sum=float(grad_x.sum()))


def _window_wins(features, kernel, stride, padding):
    """How many windows each input position wins (max pooling), by routing ones."""
    n, c, h, w = features.shape
    ones = np.ones((n, c, _windows(h, kernel, stride, padding),
                    _windows(w, kernel, stride, padding)))
    return max_pool_backward(features, ones, kernel, stride, padding)


# ----------------------------------------------------------------------------- norms by hand
def _norm_layout(kind, shape):
    """(reshaped shape, axes normalized over) for batch, layer and group norm of (N, C, H, W)."""
    n, c, h, w = shape
    if kind == "batch":
        return shape, (0, 2, 3)
    if kind == "layer":
        return shape, (1, 2, 3)
    return (n, GROUPS, c // GROUPS, h, w), (2, 3, 4)


def normalization_backward(kind, x, grad_y, gamma, eps=EPS):
    """dL/dx, dL/dgamma, dL/dbeta of y = gamma x_hat + beta, x_hat = (x - mean_A) rstd,
    rstd = 1 / sqrt(var_A + eps), A the normalized axes:
        dL/dx_hat = dL/dy gamma
        dL/dx = rstd (dL/dx_hat - mean_A(dL/dx_hat) - x_hat mean_A(dL/dx_hat x_hat))
    gamma broadcasts as the layer's weight: (1, C, 1, 1) per channel for batch and group norm,
    (1, C, H, W) elementwise for layer norm."""
    shape, axes = _norm_layout(kind, x.shape)
    xs = x.reshape(shape)
    mean = xs.mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt(xs.var(axis=axes, keepdims=True) + eps)
    x_hat = ((xs - mean) * rstd).reshape(x.shape)
    g_hat = (grad_y * gamma).reshape(shape)
    xh = x_hat.reshape(shape)
    grad_x = rstd * (g_hat - g_hat.mean(axis=axes, keepdims=True)
                     - xh * (g_hat * xh).mean(axis=axes, keepdims=True))
    param_axes = (0, 2, 3) if kind != "layer" else (0,)
    return dict(grad_x=grad_x.reshape(x.shape),
                grad_gamma=(grad_y * x_hat).sum(axis=param_axes),
                grad_beta=grad_y.sum(axis=param_axes))


def make_norm(kind, seed=2):
    """The normalization layer (float64), its weight and bias drawn around 1 and 0 so that
    the formula's gamma is not all ones; None for "none"."""
    import retrograd as rg
    from retrograd import nn

    if kind == "none":
        return None
    layer = {"batch": lambda: nn.BatchNorm2d(CHANNELS, eps=EPS),
             "layer": lambda: nn.LayerNorm([CHANNELS, 8, 8], eps=EPS),
             "group": lambda: nn.GroupNorm(GROUPS, CHANNELS, eps=EPS)}[kind]().double()
    rng = np.random.default_rng(seed)
    with rg.no_grad():
        for p, centre in ((layer.weight, 1.0), (layer.bias, 0.0)):
            p.detach().numpy()[...] = centre + 0.5 * rng.standard_normal(p.shape)
    return layer


def _gamma(layer, kind):
    weight = layer.weight.detach().numpy()
    return weight[None] if kind == "layer" else weight[None, :, None, None]


def norm_case(features, labels, kind):
    """The layer's autograd gradients against normalization_backward on real feature maps."""
    import retrograd as rg
    from retrograd.nn import functional as F

    layer = make_norm(kind)
    x = rg.tensor(features, requires_grad=True)
    y = layer(x)
    y.retain_grad()
    head = seeded_head(y[0].numel(), seed=1)
    F.cross_entropy(head(F.relu(y).flatten(1)), rg.tensor(labels)).backward()
    hand = normalization_backward(kind, features, y.grad.numpy(), _gamma(layer, kind))
    auto = dict(grad_x=x.grad.numpy(), grad_gamma=layer.weight.grad.numpy(),
                grad_beta=layer.bias.grad.numpy())
    axes = {"batch": "N, H, W (per channel)", "layer": "C, H, W (per image)",
            "group": f"C/{GROUPS}, H, W (per image and group of {CHANNELS // GROUPS} channels)"}
    return dict(kind=kind, axes=axes[kind],
                diff={k: float(np.max(np.abs(hand[k] - auto[k]))) for k in hand},
                grad_x_norm=float(np.linalg.norm(auto["grad_x"])))


# ----------------------------------------------------------------------------- scale
def scale_case(images, labels, kind, scale):
    """conv (weight a W, no bias) -> normalization -> ReLU -> seeded head -> cross-entropy:
    the norms of dL/dx (x the images) and of dL/d(a W)."""
    import retrograd as rg
    from retrograd import nn
    from retrograd.nn import functional as F

    rg.manual_seed(0)
    conv = nn.Conv2d(1, CHANNELS, 3, padding=1, bias=False).double()
    weight = rg.tensor(conv.weight.detach().numpy() * scale, requires_grad=True)
    x = rg.tensor(images, requires_grad=True)
    z = F.conv2d(x, weight, padding=1)
    norm = make_norm(kind)
    y = z if norm is None else norm(z)
    head = seeded_head(y[0].numel(), seed=1)
    loss = F.cross_entropy(head(F.relu(y).flatten(1)), rg.tensor(labels))
    loss.backward()
    return dict(kind=kind, scale=scale, loss=loss.item(),
                grad_x=float(np.linalg.norm(x.grad.numpy())),
                grad_w=float(np.linalg.norm(weight.grad.numpy())))


def scale_table(images, labels):
    rows = [scale_case(images, labels, kind, scale) for kind in NORMS for scale in SCALES]
    for row in rows:
        base = next(r for r in rows if r["kind"] == row["kind"] and r["scale"] == 1.0)
        row["grad_x_ratio"] = row["grad_x"] / base["grad_x"]
        row["grad_w_ratio"] = row["grad_w"] / base["grad_w"]
    return rows


# ----------------------------------------------------------------------------- training
def build_cnn(norm):
    """conv-[norm]-ReLU x2, max pool, conv-[norm]-ReLU x2, max pool, global average, linear;
    widths 8, 8, 16, 16; ``norm`` is "none", "batch" (BatchNorm2d) or "group" (GroupNorm, 4
    groups). Convolutions followed by a normalization have no bias (it would be removed)."""
    from retrograd import nn

    layers, channels = [], 1
    for width, pool_after in ((8, False), (8, True), (16, False), (16, True)):
        layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=norm == "none"))
        if norm == "batch":
            layers.append(nn.BatchNorm2d(width))
        elif norm == "group":
            layers.append(nn.GroupNorm(4, width))
        layers.append(nn.ReLU())
        if pool_after:
            layers.append(nn.MaxPool2d(2))
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]
    return nn.Sequential(*layers)


def weight_layers(model):
    """[(module path, label)] of the convolutions and the linear layer, input side first."""
    from retrograd import nn

    found, convs = [], 0
    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            convs += 1
            found.append((path, f"conv{convs}"))
        elif isinstance(module, nn.Linear):
            found.append((path, "linear"))
    return found


def digits_test_accuracy(model):
    import retrograd as rg
    from retrograd.datasets import Digits

    test = Digits(train=False)
    model.eval()
    with rg.no_grad():
        logits = model(rg.tensor(test.data[:, None]))
    model.train()
    return float(np.mean(logits.numpy().argmax(axis=1) == test.targets))


def train_variant(norm, settings):
    """Train one CNN under a GradientMonitor; the weights' gradient norms per recorded step."""
    import retrograd as rg
    from retrograd.datasets import Digits
    from retrograd.inspect import GradientMonitor
    from retrograd.nn import functional as F
    from retrograd.training.common import seeded_batches

    rg.manual_seed(0)
    model = build_cnn(norm)
    optimizer = rg.optim.SGD(model.parameters(), lr=settings["lr"], momentum=0.9)
    monitor = GradientMonitor(model, every=settings["every"])
    losses = []
    for x, y in seeded_batches(Digits(train=True), settings["batch"], settings["steps"], 0):
        with monitor.step():
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
    monitor.close()
    layers = weight_layers(model)
    norms = {label: [r.gradients[f"{path}.weight"].norm for r in monitor.records]
             for path, label in layers}
    return dict(norm=norm, losses=losses, steps=monitor.flow.steps, weight_grad_norms=norms,
                flags=len(monitor.flags), accuracy=digits_test_accuracy(model))


# ----------------------------------------------------------------------------- figures
def plot_pool_routing(features, cases, path, image=0, channel=0):
    """One feature map and the input gradient each pooling sends back to it."""
    plt = _labkit.pyplot()
    shown = [c for c in cases if (c["kind"], c["kernel"], c["stride"]) in
             (("max", 2, 2), ("max", 3, 1), ("avg", 2, 2))]
    fig, axes = plt.subplots(1, 1 + len(shown), figsize=(4 * (1 + len(shown)), 4.4), dpi=100)
    im = axes[0].imshow(features[image, channel], cmap="viridis")
    fig.colorbar(im, ax=axes[0], fraction=0.046)
    axes[0].set_title(f"conv feature map\n(image {image}, channel {channel})")
    for ax, case in zip(axes[1:], shown):
        grad = case["grad_x"][image, channel]
        limit = float(np.max(np.abs(grad))) or 1.0
        im = ax.imshow(grad, cmap="RdBu_r", vmin=-limit, vmax=limit)
        fig.colorbar(im, ax=ax, fraction=0.046)
        if case["stride"] == case["kernel"]:
            for edge in np.arange(case["kernel"], 8, case["kernel"]) - 0.5:
                ax.axhline(edge, color="grey", lw=0.8)
                ax.axvline(edge, color="grey", lw=0.8)
        share = np.mean(grad != 0)
        ax.set_title(f"dL/dX, {case['kind']} pool {case['kernel']}x{case['kernel']} stride "
                     f"{case['stride']}\n{share:.0%} of this map's pixels get gradient")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Pooling backward: max pooling routes, average pooling spreads")
    _labkit.save_figure(fig, path)


def plot_scale(rows, path):
    """||dL/dx|| and ||dL/dW|| against the weight's scale, per normalization, log-log."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), dpi=100)
    for kind in NORMS:
        mine = [r for r in rows if r["kind"] == kind]
        scales = [r["scale"] for r in mine]
        style = "k--" if kind == "none" else "o-"
        axes[0].loglog(scales, [r["grad_x"] for r in mine], style, label=kind)
        axes[1].loglog(scales, [r["grad_w"] for r in mine], style, label=kind)
    base = next(r for r in rows if r["kind"] == "batch" and r["scale"] == 1.0)["grad_w"]
    axes[1].loglog(SCALES, [base / s for s in SCALES], "-", color="grey", lw=7, alpha=0.3,
                   label="slope -1 (batch's value at a = 1, over a)", zorder=0)
    axes[0].set(title="gradient w.r.t. the images x", ylabel="||dL/dx||")
    axes[1].set(title="gradient w.r.t. the conv weight a W", ylabel="||dL/d(aW)||")
    for ax in axes:
        ax.set_xlabel("scale a of the conv weight")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="normalization", fontsize=9)
    fig.suptitle("conv(a W) -> normalization -> ReLU -> linear -> cross-entropy, on digits")
    _labkit.save_figure(fig, path)


def plot_layer_gradients(runs, path):
    """Per-layer weight-gradient norms at the first and the last recorded step."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), dpi=100, sharey=True)
    for ax, index, when in ((axes[0], 0, "first"), (axes[1], -1, "last")):
        for run in runs:
            labels = list(run["weight_grad_norms"])
            values = [run["weight_grad_norms"][label][index] for label in labels]
            ax.semilogy(labels, values, "o-", label=run["norm"])
        ax.set(title=f"step {runs[0]['steps'][index]} ({when} recorded step)",
               xlabel="layer (input side first)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="normalization")
    axes[0].set_ylabel("||dL/dW|| of the layer's weight")
    fig.suptitle("Per-layer gradient norms of the digits CNN (GradientMonitor)")
    _labkit.save_figure(fig, path)


def plot_training(runs, path):
    """Training loss, and the first convolution's gradient norm over the steps."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), dpi=100)
    for run in runs:
        losses = np.asarray(run["losses"])
        window = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        axes[0].plot(np.arange(len(smooth)) + window - 1, smooth, label=run["norm"])
        axes[1].semilogy(run["steps"], run["weight_grad_norms"]["conv1"], "o-", ms=3,
                         label=run["norm"])
    axes[0].set(title="training loss (moving average)", xlabel="step", ylabel="cross-entropy")
    axes[1].set(title="first convolution's gradient norm", xlabel="step",
                ylabel="||dL/dW|| of conv1")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(title="normalization")
    _labkit.save_figure(fig, path)


# ----------------------------------------------------------------------------- results page
def _pool_section(cases):
    rows = [[c["kind"], f"{c['kernel']}x{c['kernel']}", c["stride"], c["padding"],
             f"{c['output'][0]}x{c['output'][1]}", f"{c['fraction_with_gradient']:.4f}",
             "" if c["multiple_wins"] is None else f"{c['multiple_wins']:.4f}",
             f"{c['max_diff']:.1e}"] for c in cases]
    return ["## 1. Pooling backward",
            f"Feature maps of a seeded 3x3 convolution ({CHANNELS} channels) on training "
            "digits; a seeded linear head and cross-entropy above the pooling layer.", "",
            markdown_table(["pool", "window", "stride", "padding", "output",
                            "fraction of input positions with gradient",
                            "fraction winning 2+ windows", "max abs(hand - autograd)"], rows)]


def _norm_section(cases):
    rows = [[c["kind"], c["axes"], f"{c['diff']['grad_x']:.1e}",
             f"{c['diff']['grad_gamma']:.1e}", f"{c['diff']['grad_beta']:.1e}"]
            for c in cases]
    return ["## 2. Normalization backward: one formula, three choices of axes",
            "dL/dx = rstd (g - mean_A(g) - x_hat mean_A(g x_hat)) with g = gamma dL/dy; max "
            "abs difference from autograd on the conv feature maps (float64).", "",
            markdown_table(["normalization", "axes A", "dL/dx", "dL/dgamma", "dL/dbeta"],
                           rows)]


def _scale_section(rows):
    table = [[r["kind"], f"{r['scale']:g}", f"{r['loss']:.4f}", f"{r['grad_x']:.4g}",
              f"{r['grad_x_ratio']:.4f}", f"{r['grad_w']:.4g}", f"{r['grad_w_ratio']:.4g}"]
             for r in rows]
    return ["## 3. Scale invariance",
            "The conv weight multiplied by a; ratios are against a = 1 for the same "
            "normalization.", "",
            markdown_table(["normalization", "a", "loss", "norm of dL/dx", "ratio to a = 1",
                            "norm of dL/d(aW)", "ratio to a = 1"], table)]


def _training_section(runs, settings):
    rows = []
    for run in runs:
        g = run["weight_grad_norms"]
        rows.append([run["norm"], f"{g['conv1'][0]:.2e}", f"{g['linear'][0]:.2e}",
                     f"{g['conv1'][0] / g['linear'][0]:.3g}", f"{g['conv1'][-1]:.2e}",
                     f"{g['linear'][-1]:.2e}", f"{np.mean(run['losses'][:10]):.3f}",
                     f"{np.mean(run['losses'][-10:]):.3f}", f"{run['accuracy']:.3f}",
                     run["flags"]])
    steps = runs[0]["steps"]
    return ["## 4. Training with and without normalization",
            f"{settings['steps']} SGD steps (momentum 0.9, lr {settings['lr']}, batch "
            f"{settings['batch']}, seed 0) on the 1,438 training digits; gradients recorded at "
            f"steps {steps[0]}, {steps[1]}, ..., {steps[-1]}; accuracy on the 359 test digits.",
            "", markdown_table(["normalization", f"conv1 grad norm, step {steps[0]}",
                                f"linear grad norm, step {steps[0]}", "conv1 / linear",
                                f"conv1 grad norm, step {steps[-1]}",
                                f"linear grad norm, step {steps[-1]}", "first 10 losses",
                                "last 10 losses", "test accuracy", "monitor flags"], rows)]


def write_results_page(out, results, seconds, quick):
    form = "--quick" if quick else "full form"
    lines = ["# Module 3 lab results: pooling and normalization layers", "",
             f"Written by `docs/course/m3_pool_norm.py` ({form}, {seconds:.1f} s on this "
             f"machine; probe batch of {results['probe']} digits).", "",
             *_pool_section(results["pools"]), "", *_norm_section(results["norms"]), "",
             *_scale_section(results["scales"]), "",
             *_training_section(results["training"], results["settings"]), ""]
    (out / PAGE).write_text("\n".join(lines))


def main(argv=None):
    """Run the lab; returns a dict of everything it computed."""
    start = time.perf_counter()
    args = _labkit.parse_args(__doc__.splitlines()[0], argv, quick_help="the reduced form: "
                              "fewer training steps, a smaller probe batch")
    out = _labkit.out_folder(args.out)
    settings = _settings(args.quick)
    images, labels = probe_digits(settings["probe"])
    features = conv_features(images)
    results = dict(settings=settings, probe=len(images),
                   pools=[pool_case(features, labels, *p) for p in POOLS],
                   norms=[norm_case(features, labels, k) for k in ("batch", "layer", "group")],
                   scales=scale_table(images, labels),
                   training=[train_variant(norm, settings) for norm in TRAINED])
    plot_pool_routing(features, results["pools"], out / "m3-pool-routing.png")
    plot_scale(results["scales"], out / "m3-norm-scale.png")
    plot_layer_gradients(results["training"], out / "m3-layer-gradients.png")
    plot_training(results["training"], out / "m3-training.png")
    results["seconds"] = time.perf_counter() - start
    write_results_page(out, results, results["seconds"], args.quick)
    runs = {run["norm"]: run for run in results["training"]}
    print("m3: max-pool 2x2 sends gradient to "
          f"{results['pools'][0]['fraction_with_gradient']:.0%} of positions; conv1/linear "
          "gradient at step 0: " + ", ".join(
              f"{k} {r['weight_grad_norms']['conv1'][0] / r['weight_grad_norms']['linear'][0]:.2g}"
              for k, r in runs.items()))
    print(f"m3: wrote {PAGE} and the figures in {out} ({results['seconds']:.1f} s)")
    return results


if __name__ == "__main__":
    main()
