"""Module 2 lab: backpropagation in convolutional neural networks.

A small CNN (one 3x3 convolution with 8 filters, ReLU, 2x2 adaptive average pooling, a linear
classifier) is trained on the 8x8 digits. Then, on a batch of test digits and the real
cross-entropy loss, the lab computes the convolution's gradients by the im2col formulas
written out below in NumPy, and compares them with retrograd's autograd:

- dL/dW = dL/dY_2d^T @ X_col: every output position adds its input patch, weighted by the
  gradient of that output, to the filter's gradient (parameter sharing: a sum over positions);
- dL/db = the sum of dL/dY over the batch and the positions;
- dL/dX = col2im(dL/dY_2d @ W_2d): each patch's gradient added back to the pixels it was
  copied from; with stride 2, pixels that no window reads get exactly zero gradient.

The same trained filters are run with four stride/padding settings, so only the geometry
changes. A 4x4 patch of a real digit also goes through ``retrograd.explain("conv2d")``.

Run from the repository root::

    python docs/course/m2_conv_gradients.py            # full form, writes docs/course/results/
    python docs/course/m2_conv_gradients.py --quick --out /tmp/m2
"""

import time

import numpy as np

import _labkit
from _labkit import markdown_table

PAGE = "m2-conv-gradients.md"

FILTERS, KERNEL = 8, 3
GEOMETRIES = ((1, 1), (1, 0), (2, 0), (2, 1))  # (stride, padding); the model trains at (1, 1)
SOBEL = [[1, 0, -1], [2, 0, -2], [1, 0, -1]]  # the explain example's filter: a vertical edge
PATCH_UPSTREAM = [[1.0, -1.0], [0.5, 0.5]]    # dL/dY of the explain example (2x2 output)


def _settings(quick):
    if quick:
        return dict(steps=60, batch=32, lr=0.1, probe=64)
    return dict(steps=600, batch=32, lr=0.1, probe=256)


# ----------------------------------------------------------------------------- im2col by hand
def output_size(size, kernel, stride, padding):
    """floor((size + 2 padding - kernel) / stride) + 1 (dilation 1)."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x, kernel, stride, padding):
    """X_col (N*Ho*Wo, C*k*k): one row per output position (n, ho, wo), one column per kernel
    tap (c, i, j), holding the padded input pixel X_pad[n, c, ho*stride + i, wo*stride + j]."""
    n, c, h, w = x.shape
    ho, wo = output_size(h, kernel, stride, padding), output_size(w, kernel, stride, padding)
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, ho, wo, c, kernel, kernel), dtype=x.dtype)
    for i in range(kernel):
        for j in range(kernel):
            window = padded[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
            cols[:, :, :, :, i, j] = window.transpose(0, 2, 3, 1)
    return cols.reshape(n * ho * wo, c * kernel * kernel)


def col2im(cols, x_shape, kernel, stride, padding):
    """The adjoint of im2col: each entry of cols (N*Ho*Wo, C*k*k) added back to the pixel it
    was copied from; the padding is cropped. Returns (N, C, H, W)."""
    n, c, h, w = x_shape
    ho, wo = output_size(h, kernel, stride, padding), output_size(w, kernel, stride, padding)
    cols = cols.reshape(n, ho, wo, c, kernel, kernel)
    padded = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kernel):
        for j in range(kernel):
            padded[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += \
                cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return padded[:, :, padding:padding + h, padding:padding + w]


def as_rows(y):
    """(N, O, Ho, Wo) -> (N*Ho*Wo, O): one row per output position, as im2col orders them."""
    return y.transpose(0, 2, 3, 1).reshape(-1, y.shape[1])


def conv_forward(x, weight, bias, stride, padding):
    """Y = X_col @ W_2d^T + b, reshaped to (N, O, Ho, Wo)."""
    n, _, h, w = x.shape
    k = weight.shape[-1]
    ho, wo = output_size(h, k, stride, padding), output_size(w, k, stride, padding)
    y = im2col(x, k, stride, padding) @ weight.reshape(len(weight), -1).T + bias
    return y.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)


def weight_gradient(x, grad_y, kernel, stride, padding):
    """dL/dW = dL/dY_2d^T @ X_col, reshaped to (O, C, k, k): a sum over every output
    position of the input patch it read, weighted by that output's gradient."""
    grad_w = as_rows(grad_y).T @ im2col(x, kernel, stride, padding)
    return grad_w.reshape(grad_y.shape[1], x.shape[1], kernel, kernel)


def bias_gradient(grad_y):
    """dL/db = dL/dY summed over the batch and the output positions (O,)."""
    return grad_y.sum(axis=(0, 2, 3))


def input_gradient(grad_y, weight, x_shape, stride, padding):
    """dL/dX = col2im(dL/dY_2d @ W_2d): each output's gradient sent back, through the filter,
    to the pixels of the patch it read."""
    cols = as_rows(grad_y) @ weight.reshape(len(weight), -1)
    return col2im(cols, x_shape, weight.shape[-1], stride, padding)


def coverage(height, width, kernel, stride, padding):
    """How many windows read each pixel of an (height, width) image: col2im of ones."""
    shape = (1, 1, height, width)
    ones = np.ones((output_size(height, kernel, stride, padding)
                    * output_size(width, kernel, stride, padding), kernel * kernel))
    return col2im(ones, shape, kernel, stride, padding)[0, 0]


def position_contributions(x, grad_y, kernel, stride, padding, filter_index):
    """Parameter sharing made visible: for one filter, the (Ho, Wo, C*k*k) contributions of
    each output position to dL/dW (summed over the batch); their sum is that filter's dL/dW."""
    n, _, ho, wo = grad_y.shape
    cols = im2col(x, kernel, stride, padding).reshape(n, ho, wo, -1)
    return np.einsum("nhw,nhwk->hwk", grad_y[:, filter_index], cols)


# ----------------------------------------------------------------------------- the model
def build_model(seed=0):
    """Conv2d(1, 8, 3) and Linear(32, 10), initialized after ``manual_seed(seed)``."""
    import retrograd as rg
    from retrograd import nn

    rg.manual_seed(seed)
    return nn.ModuleDict(dict(conv=nn.Conv2d(1, FILTERS, KERNEL, stride=1, padding=1),
                              head=nn.Linear(FILTERS * 4, 10)))


def run_model(model, x, stride, padding):
    """(conv output Y, logits): conv with the given geometry, ReLU, 2x2 adaptive average
    pooling, the linear head."""
    from retrograd.nn import functional as F

    conv = model["conv"]
    y = F.conv2d(x, conv.weight, conv.bias, stride=stride, padding=padding)
    pooled = F.adaptive_avg_pool2d(F.relu(y), 2)
    return y, model["head"](pooled.flatten(1))


def train(model, settings):
    """SGD with momentum on the digits' training split, at stride 1, padding 1; returns the
    losses."""
    import retrograd as rg
    from retrograd.datasets import Digits
    from retrograd.nn import functional as F
    from retrograd.training.common import seeded_batches

    optimizer = rg.optim.SGD(model.parameters(), lr=settings["lr"], momentum=0.9)
    losses = []
    for x, y in seeded_batches(Digits(train=True), settings["batch"], settings["steps"], 0):
        optimizer.zero_grad()
        loss = F.cross_entropy(run_model(model, x, 1, 1)[1], y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def probe_digits(count):
    """The first ``count`` test digits as float64 (N, 1, 8, 8) and their labels."""
    from retrograd.datasets import Digits

    test = Digits(train=False)
    return test.data[:count].astype(np.float64)[:, None], test.targets[:count]


def accuracy(model, images, labels):
    import retrograd as rg

    with rg.no_grad():
        logits = run_model(model, rg.tensor(images.astype(np.float32)), 1, 1)[1]
    return float(np.mean(logits.numpy().argmax(axis=1) == labels))


# ----------------------------------------------------------------------------- gradients
def autograd_gradients(model, images, labels, stride, padding):
    """Autograd's dL/dY, dL/dW, dL/db, dL/dX and Y for one geometry, in float64."""
    import retrograd as rg
    from retrograd.nn import functional as F

    model.zero_grad()
    x = rg.tensor(images, requires_grad=True)
    y, logits = run_model(model, x, stride, padding)
    y.retain_grad()
    loss = F.cross_entropy(logits, rg.tensor(labels))
    loss.backward()
    conv = model["conv"]
    return dict(loss=loss.item(), y=y.detach().numpy().copy(), grad_y=y.grad.numpy().copy(),
                grad_w=conv.weight.grad.numpy().copy(), grad_b=conv.bias.grad.numpy().copy(),
                grad_x=x.grad.numpy().copy())


def compare_geometry(model, images, labels, stride, padding):
    """Hand (im2col) against autograd for one geometry: the max |diff| of each gradient."""
    auto = autograd_gradients(model, images, labels, stride, padding)
    weight = model["conv"].weight.detach().numpy()
    bias = model["conv"].bias.detach().numpy()
    hand = dict(y=conv_forward(images, weight, bias, stride, padding),
                grad_w=weight_gradient(images, auto["grad_y"], KERNEL, stride, padding),
                grad_b=bias_gradient(auto["grad_y"]),
                grad_x=input_gradient(auto["grad_y"], weight, images.shape, stride, padding))
    reads = coverage(8, 8, KERNEL, stride, padding)
    never_zero = np.all(auto["grad_x"][:, 0] == 0, axis=0)
    return dict(stride=stride, padding=padding, output=auto["y"].shape[2:], loss=auto["loss"],
                diff={k: float(np.max(np.abs(hand[k] - auto[k]))) for k in hand},
                coverage=reads, zero_gradient_pixels=never_zero,
                mean_abs_grad_x=np.mean(np.abs(auto["grad_x"][:, 0]), axis=0),
                grad_w=auto["grad_w"], grad_b=auto["grad_b"], grad_y=auto["grad_y"],
                grad_y_sum=auto["grad_y"].sum(axis=(0, 2, 3)), hand_grad_w=hand["grad_w"])


def sharing(model, images, labels):
    """Parameter sharing at stride 1, padding 1 for the filter with the largest gradient."""
    auto = autograd_gradients(model, images, labels, 1, 1)
    norms = np.linalg.norm(auto["grad_w"].reshape(FILTERS, -1), axis=1)
    rows = []
    for o in range(FILTERS):
        parts = position_contributions(images, auto["grad_y"], KERNEL, 1, 1, o)
        part_norms = np.linalg.norm(parts, axis=2)
        total = float(part_norms.sum())  # 0 for a filter whose ReLU never passes
        rows.append(dict(filter=o, grad_norm=float(norms[o]), sum_of_part_norms=total,
                         largest_share=float(part_norms.max()) / total if total else None,
                         diff=float(np.max(np.abs(parts.sum(axis=(0, 1)).reshape(KERNEL, KERNEL)
                                                  - auto["grad_w"][o, 0])))))
    chosen = int(np.argmax(norms))
    parts = position_contributions(images, auto["grad_y"], KERNEL, 1, 1, chosen)
    return dict(rows=rows, chosen=chosen, part_norms=np.linalg.norm(parts, axis=2),
                summed=parts.sum(axis=(0, 1)).reshape(KERNEL, KERNEL),
                autograd=auto["grad_w"][chosen, 0], positions=images.shape[0] * 64)


def explain_patch(images):
    """A 4x4 patch of a real digit (pixel counts 0..16) through ``retrograd.explain`` with a
    vertical-edge filter, stride 2, padding 1; and the same gradients by this lab's formulas."""
    import retrograd

    patch = np.rint(images[0, 0, 2:6, 2:6] * 16)
    values = {"X": patch.tolist(), "W": SOBEL, "b": [0], "dL/dY": PATCH_UPSTREAM}
    ex = retrograd.explain("conv2d", values=values, stride=2, padding=1)
    x, w = patch[None, None], np.array(SOBEL, float)[None, None]
    grad_y = np.array(PATCH_UPSTREAM)[None, None]
    ours = dict(W=weight_gradient(x, grad_y, 3, 2, 1), b=bias_gradient(grad_y),
                X=input_gradient(grad_y, w, x.shape, 2, 1))
    return dict(ok=ex.ok, text=str(ex), patch=patch,
                diff={k: float(np.max(np.abs(ours[k] - np.asarray(ex.gradients[k]))))
                      for k in ours}, ours=ours)


# ----------------------------------------------------------------------------- figures
def _diverging(ax, image, title):
    limit = float(np.max(np.abs(image))) or 1.0
    shown = ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return shown


def plot_filters(weights, grads, path):
    """Row 1: the trained filters; row 2: dL/dW of each on the test batch (own colour scale)."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(2, FILTERS, figsize=(13, 4.2), dpi=100)
    for o in range(FILTERS):
        _diverging(axes[0, o], weights[o, 0], f"filter {o}")
        _diverging(axes[1, o], grads[o, 0], f"dL/dW {o}\nnorm {np.linalg.norm(grads[o]):.2g}")
    fig.suptitle("Trained 3x3 filters (top) and their gradients on a batch of test digits "
                 "(bottom; red > 0, blue < 0)")
    _labkit.save_figure(fig, path)


def plot_sharing(share, path):
    """Parameter sharing: each output position's contribution to one filter's gradient."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), dpi=100)
    shown = axes[0].imshow(share["part_norms"], cmap="viridis")
    fig.colorbar(shown, ax=axes[0], fraction=0.046)
    axes[0].set_title(f"filter {share['chosen']}: each output position's\ncontribution "
                      f"(norm, {share['positions'] // 64} images)", fontsize=10)
    axes[0].set(xlabel="output column wo", ylabel="output row ho")
    diff = np.max(np.abs(share["summed"] - share["autograd"]))
    for ax, image, title in ((axes[1], share["summed"],
                              "sum of the 64 positions'\ncontributions (by hand)"),
                             (axes[2], share["autograd"],
                              f"dL/dW from autograd\nmax |diff| {diff:.1e}")):
        _diverging(ax, image, title)
        for (i, j), value in np.ndenumerate(image):
            ax.text(j, i, f"{value:.4f}", ha="center", va="center", fontsize=10,
                    color="white" if abs(value) > 0.6 * np.max(np.abs(image)) else "black")
    fig.suptitle("One filter, many positions: the filter's gradient is a sum over positions")
    _labkit.save_figure(fig, path)


def plot_input_gradients(rows, path):
    """Top: how many windows read each pixel; bottom: mean |dL/dX| over the batch, pixels with
    zero gradient in every image marked x."""
    plt = _labkit.pyplot()
    fig, axes = plt.subplots(2, len(rows), figsize=(3.3 * len(rows), 7), dpi=100)
    for col, row in enumerate(rows):
        geometry = (f"stride {row['stride']}, padding {row['padding']}\n"
                    f"output {row['output'][0]}x{row['output'][1]}")
        top = axes[0, col]
        top.imshow(row["coverage"], cmap="Greys", vmin=0, vmax=9)
        for (i, j), count in np.ndenumerate(row["coverage"]):
            top.text(j, i, f"{count:.0f}", ha="center", va="center", fontsize=8,
                     color="white" if count > 4 else "black")
        top.set_title(f"{geometry}\nwindows reading each pixel", fontsize=9)
        bottom = axes[1, col]
        shown = bottom.imshow(row["mean_abs_grad_x"], cmap="magma")
        rows_zero, cols_zero = np.nonzero(row["zero_gradient_pixels"])
        bottom.scatter(cols_zero, rows_zero, marker="x", color="cyan", s=40)
        fig.colorbar(shown, ax=bottom, fraction=0.046)
        bottom.set_title(f"mean |dL/dX| over the batch;\nx: dL/dX = 0 in every image "
                         f"({int(row['zero_gradient_pixels'].sum())} pixels)", fontsize=9)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.suptitle("Backprop through stride and padding: the input gradient of the same filters")
    _labkit.save_figure(fig, path)


# ----------------------------------------------------------------------------- results page
def _geometry_section(rows):
    table = [[r["stride"], r["padding"], f"{r['output'][0]}x{r['output'][1]}",
              f"{r['loss']:.4f}", f"{r['diff']['y']:.1e}", f"{r['diff']['grad_w']:.1e}",
              f"{r['diff']['grad_b']:.1e}", f"{r['diff']['grad_x']:.1e}"] for r in rows]
    pixels = [[r["stride"], r["padding"], int((r["coverage"] == 0).sum()),
               int(r["zero_gradient_pixels"].sum()), f"{r['coverage'].min():.0f}",
               f"{r['coverage'].max():.0f}"] for r in rows]
    return ["## Hand (im2col) against autograd",
            "The same trained filters, the real cross-entropy loss on the test batch; max abs "
            "difference between the lab's NumPy formulas and retrograd (float64).", "",
            markdown_table(["stride", "padding", "output Ho x Wo", "loss", "Y", "dL/dW",
                            "dL/db", "dL/dX"], table), "",
            "## Which pixels get a gradient",
            "A pixel's gradient is a sum over the windows that read it; the count comes from "
            "col2im of ones.", "",
            markdown_table(["stride", "padding", "pixels no window reads",
                            "pixels with dL/dX = 0 in every image", "fewest reads",
                            "most reads"], pixels)]


def _bias_section(row):
    table = [[o, f"{row['grad_b'][o]:.6f}", f"{row['grad_y_sum'][o]:.6f}"]
             for o in range(FILTERS)]
    return ["## Bias gradient = sum of dL/dY (stride 1, padding 1)", "",
            markdown_table(["filter", "dL/db (autograd)", "sum of dL/dY over n, ho, wo"],
                           table)]


def _sharing_section(share):
    table = [[r["filter"], f"{r['grad_norm']:.4f}", f"{r['sum_of_part_norms']:.4f}",
              "none (dead filter)" if r["largest_share"] is None else f"{r['largest_share']:.3f}",
              f"{r['diff']:.1e}"] for r in share["rows"]]
    return ["## Parameter sharing (stride 1, padding 1)",
            f"Each filter's gradient is the sum of {share['positions']} contributions (64 "
            f"positions x {share['positions'] // 64} images). When the contributions point in "
            "different directions they cancel: the norm of the sum is smaller than the sum of "
            "the norms.", "",
            markdown_table(["filter", "norm of dL/dW", "sum of the 64 positions' norms",
                            "largest position's share", "max abs(sum - autograd)"], table)]


def _explain_section(patch):
    return ["## A 4x4 patch of a real digit, by `retrograd.explain('conv2d')`",
            "Stride 2, padding 1, a vertical-edge filter; the explain example checks itself, "
            f"ok = {patch['ok']}. This lab's im2col formulas on the same numbers differ from "
            f"its gradients by at most {max(patch['diff'].values()):.1e}.", "", "```text",
            patch["text"], "```"]


def write_results_page(out, results, seconds, quick):
    form = "--quick" if quick else "full form"
    training = results["training"]
    lines = ["# Module 2 lab results: backpropagation in convolutional neural networks", "",
             f"Written by `docs/course/m2_conv_gradients.py` ({form}, {seconds:.1f} s on this "
             f"machine).", "",
             markdown_table(["training steps", "first 10 steps' mean loss",
                             "last 10 steps' mean loss", "test accuracy (stride 1, padding 1)",
                             "test images probed"],
                            [[training["steps"], f"{training['first_loss']:.3f}",
                              f"{training['last_loss']:.3f}", f"{training['accuracy']:.3f}",
                              results["probe"]]]), "",
             *_geometry_section(results["geometries"]), "",
             *_bias_section(results["geometries"][0]), "", *_sharing_section(results["sharing"]),
             "", *_explain_section(results["patch"]), ""]
    (out / PAGE).write_text("\n".join(lines))


def main(argv=None):
    """Run the lab; returns a dict of everything it computed."""
    start = time.perf_counter()
    args = _labkit.parse_args(__doc__.splitlines()[0], argv, quick_help="the reduced form: "
                              "fewer training steps, a smaller test batch")
    out = _labkit.out_folder(args.out)
    settings = _settings(args.quick)
    model = build_model()
    losses = train(model, settings)
    images, labels = probe_digits(settings["probe"])
    training = dict(steps=settings["steps"], first_loss=float(np.mean(losses[:10])),
                    last_loss=float(np.mean(losses[-10:])),
                    accuracy=accuracy(model, images, labels))
    model = model.double()
    geometries = [compare_geometry(model, images, labels, s, p) for s, p in GEOMETRIES]
    results = dict(training=training, probe=len(images), geometries=geometries,
                   sharing=sharing(model, images, labels), patch=explain_patch(images),
                   weights=model["conv"].weight.detach().numpy().copy(), settings=settings)
    plot_filters(results["weights"], geometries[0]["grad_w"], out / "m2-filters.png")
    plot_sharing(results["sharing"], out / "m2-sharing.png")
    plot_input_gradients(geometries, out / "m2-input-gradient.png")
    results["seconds"] = time.perf_counter() - start
    write_results_page(out, results, results["seconds"], args.quick)
    worst = max(max(g["diff"].values()) for g in geometries)
    print(f"m2: test accuracy {training['accuracy']:.3f}; hand vs autograd max |diff| "
          f"{worst:.1e} over {len(geometries)} stride/padding settings; explain ok "
          f"{results['patch']['ok']}")
    print(f"m2: wrote {PAGE} and the figures in {out} ({results['seconds']:.1f} s)")
    return results


if __name__ == "__main__":
    main()
