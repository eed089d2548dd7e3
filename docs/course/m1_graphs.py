"""Module 1 lab: backpropagation review and computational graphs.

Four parts, each checked against an independent computation:

1. the course's 1-D regression step (w=1, b=0, x=2.1, y=4) by the chain rule by hand, by
   retrograd's autograd and by ``retrograd.explain("regression")``, and its graph drawn with
   every value and gradient (``retrograd.inspect.draw_graph``);
2. a neuron L = (relu(w.x + b) - y)^2 + lam |w|^2 whose weight feeds two branches, alive and
   with a dead ReLU: the gradient of w is the sum of what each branch sends back;
3. the backward graph of a digits MLP's loss, with the gradient norm along every edge;
4. reverse mode against one-evaluation-per-input differentiation: the gradient of the digits
   MLP's loss with respect to all n parameters by one backward pass, and by 2n central
   finite differences, timed, counted and compared entry by entry.

Run from the repository root::

    python docs/course/m1_graphs.py            # full form, writes docs/course/results/
    python docs/course/m1_graphs.py --quick --out /tmp/m1
"""

import shutil
import time

import numpy as np

import _labkit
from _labkit import markdown_table

PAGE = "m1-graphs.md"

# seed 001 (the gradient-descent slides): one step of 1-D regression, L = (w x + b - y)^2
REGRESSION = dict(w=1.0, b=0.0, x=2.1, y=4.0, lr=0.01)
SLIDE_DL_DW = -7.68  # what the slide prints; its own update w = 1.0798 needs -7.98

# the neuron of part 2 (a small synthetic expression: the point is the graph)
NEURON = dict(w=[0.5, -1.0, 2.0], x=[2.0, 1.0, 1.5], y=2.0, lam=0.1)
NEURON_BIASES = {"alive": 0.5, "dead": -4.0}  # w.x = 3: z = 3.5 (ReLU passes), z = -1 (blocked)

FD_STEP = 1e-5  # central differences in float64: error ~ h^2 f''' + eps / h, about 1e-10


def _settings(quick):
    """The sizes of the cost experiment: MLP hidden widths, batch size, timing repeats."""
    if quick:
        return dict(hidden_sizes=(4, 8), batch=64, repeats=3)
    return dict(hidden_sizes=(4, 8, 16, 32, 64), batch=256, repeats=7)


# ----------------------------------------------------------------------------- drawings
def render_drawing(drawing, out, name, dpi=110):
    """Write the drawing's DOT source ``name.dot`` and, when Graphviz's ``dot`` is installed,
    ``name.png``; returns the PNG's file name, or None (and says so) without ``dot``."""
    (out / f"{name}.dot").write_text(drawing.source)
    if shutil.which("dot") is None:
        print(f"  Graphviz's `dot` is not installed: wrote {name}.dot only "
              f"(apt-get install graphviz, then `dot -Tpng {name}.dot -o {name}.png`)")
        return None
    drawing.digraph.attr(dpi=str(dpi))
    drawing.render(str(out / f"{name}.png"))
    return f"{name}.png"


# ----------------------------------------------------------------------------- part 1
def regression_by_hand(w, b, x, y, lr):
    """One gradient-descent step of L = (w x + b - y)^2, by the chain rule in plain floats."""
    f = w * x + b
    r = f - y
    loss = r * r
    dL_dr = 2.0 * r
    dL_dw, dL_db, dL_dx = dL_dr * x, dL_dr * 1.0, dL_dr * w
    w_new, b_new = w - lr * dL_dw, b - lr * dL_db
    return dict(f=f, r=r, L=loss, dL_dr=dL_dr, dL_dw=dL_dw, dL_db=dL_db, dL_dx=dL_dx,
                w_new=w_new, b_new=b_new, L_new=(w_new * x + b_new - y) ** 2)


def regression_lab(out):
    """Part 1: the course's regression step three ways, and its graph drawn."""
    import retrograd as rg

    p = REGRESSION
    hand = regression_by_hand(**p)
    w, b, x = (rg.tensor(p[k], dtype=rg.float64, requires_grad=True) for k in ("w", "b", "x"))
    y = rg.tensor(p["y"], dtype=rg.float64)
    with rg.inspect.record_graph() as recording:
        f = w * x + b
        r = f - y
        loss = r * r
        loss.backward()
    drawing = rg.inspect.draw_graph(loss, params=dict(w=w, b=b, x=x, f=f, r=r, L=loss),
                                    recording=recording, rankdir="LR")
    figure = render_drawing(drawing, out, "m1-regression-graph", dpi=130)
    worked = rg.explain("regression", lr=p["lr"],
                        values={k: p[k] for k in ("w", "b", "x", "y")})
    autograd = dict(L=loss.item(), dL_dw=w.grad.item(), dL_db=b.grad.item(),
                    dL_dx=x.grad.item())
    return dict(hand=hand, autograd=autograd, explain_ok=worked.ok,
                explain={k: float(v) for k, v in worked.gradients.items()},
                slide_dL_dw=SLIDE_DL_DW, figure=figure, drawing_rows=drawing.table())


# ----------------------------------------------------------------------------- part 2
def neuron_by_hand(w, x, b, y, lam):
    """L = (relu(w.x + b) - y)^2 + lam sum(w^2) by hand: the gradient of w from each branch."""
    w, x = np.asarray(w, float), np.asarray(x, float)
    z = float(w @ x + b)
    a = max(z, 0.0)
    r = a - y
    dL_da = 2.0 * r
    dL_dz = dL_da * (1.0 if z > 0 else 0.0)  # ReLU' is 0 at and below 0 (PyTorch's convention)
    data_branch = dL_dz * x
    penalty_branch = 2.0 * lam * w
    return dict(z=z, a=a, L=r * r + lam * float(w @ w), dL_dz=dL_dz,
                dL_dw_data=data_branch, dL_dw_penalty=penalty_branch,
                dL_dw=data_branch + penalty_branch, dL_db=dL_dz)


def neuron_lab(out):
    """Part 2: the neuron with a shared weight, alive and dead, drawn and checked by hand."""
    import retrograd as rg

    results = {}
    for state, bias in NEURON_BIASES.items():
        w = rg.tensor(NEURON["w"], dtype=rg.float64, requires_grad=True)
        b = rg.tensor(bias, dtype=rg.float64, requires_grad=True)
        x = rg.tensor(NEURON["x"], dtype=rg.float64)
        with rg.inspect.record_graph() as recording:
            z = (w * x).sum() + b
            a = z.relu()
            penalty = NEURON["lam"] * (w ** 2).sum()
            loss = (a - NEURON["y"]) ** 2 + penalty
            loss.backward()
        drawing = rg.inspect.draw_graph(
            loss, params=dict(w=w, b=b, z=z, a=a, penalty=penalty, L=loss),
            recording=recording, rankdir="LR")
        hand = neuron_by_hand(NEURON["w"], NEURON["x"], bias, NEURON["y"], NEURON["lam"])
        results[state] = dict(
            bias=bias, hand=hand, autograd_dL_dw=w.grad.numpy().copy(),
            autograd_dL_db=b.grad.item(), L=loss.item(),
            figure=render_drawing(drawing, out, f"m1-neuron-{state}-graph"))
    return results


# ----------------------------------------------------------------------------- data, model
def digits_batch(batch):
    """The first ``batch`` training digits as float64 (N, 1, 8, 8) and their labels."""
    import retrograd as rg
    from retrograd.datasets import Digits

    train = Digits(train=True)
    images = train.data[:batch].astype(np.float64)[:, None]
    return rg.tensor(images), rg.tensor(train.targets[:batch])


def digits_mlp(hidden, seed=0):
    """``MLP(64, [hidden], 10)`` in float64, initialized after ``manual_seed(seed)``."""
    import retrograd as rg
    from retrograd.models.mlp import MLP

    rg.manual_seed(seed)
    return MLP(64, [hidden], 10).double()


# ----------------------------------------------------------------------------- part 3
def mlp_graph_lab(out, images, labels):
    """Part 3: the digits MLP's backward graph, one box per op, gradient norms on the edges."""
    import retrograd as rg
    from retrograd.nn import functional as F

    model = digits_mlp(16)
    with rg.inspect.record_graph() as recording:
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
    drawing = rg.inspect.draw_graph(loss, params=model.named_parameters(), recording=recording,
                                    collapse_modules=False, max_values=4)
    edges = [dict(edge=f"{_box_name(drawing, src)} -> {_box_name(drawing, dst)}",
                  norm=float(norm)) for src, dst, norm, _ in drawing.lines]
    grads = {name: float(np.linalg.norm(p.grad.numpy())) for name, p in
             model.named_parameters()}
    return dict(loss=loss.item(), edges=edges, parameter_grad_norms=grads,
                figure=render_drawing(drawing, out, "m1-mlp-graph"))


def _box_name(drawing, box_id):
    """A box's title, with the module that made it for an op box ("Linear in layers.3")."""
    box = next(b for b in drawing.boxes if b.id == box_id)
    return f"{box.title} in {box.cluster}" if box.kind == "op" and box.cluster else box.title


# ----------------------------------------------------------------------------- part 4
def _flat_parameters(model):
    """The model's parameters as NumPy arrays that share their memory (for perturbing)."""
    return [p.detach().numpy() for p in model.parameters()]


def reverse_mode_gradient(model, loss_fn):
    """The gradient of the loss for every parameter, flattened: one forward, one backward."""
    model.zero_grad()
    loss_fn().backward()
    return np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])


def finite_difference_gradient(model, loss_fn, step=FD_STEP):
    """(gradient, evaluations): central differences, two loss evaluations per parameter entry
    (what forward-mode-like differentiation costs: one pass per input direction)."""
    import retrograd as rg

    parts, evaluations = [], 0
    with rg.no_grad():
        for array in _flat_parameters(model):
            flat = array.reshape(-1)  # a view: perturbing it perturbs the model
            grad = np.empty(flat.size)
            for i in range(flat.size):
                kept = flat[i]
                flat[i] = kept + step
                up = loss_fn().item()
                flat[i] = kept - step
                down = loss_fn().item()
                flat[i] = kept
                grad[i] = (up - down) / (2.0 * step)
                evaluations += 2
            parts.append(grad)
    return np.concatenate(parts), evaluations


def _median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cost_row(hidden, images, labels, repeats):
    """Reverse mode against central finite differences for the MLP of one hidden width."""
    import retrograd as rg
    from retrograd.nn import functional as F

    model = digits_mlp(hidden)
    n = sum(p.numel() for p in model.parameters())

    def loss_fn():
        return F.cross_entropy(model(images), labels)

    def forward_only():
        with rg.no_grad():
            loss_fn()

    forward_s = _median_seconds(forward_only, repeats)
    reverse_s = _median_seconds(lambda: reverse_mode_gradient(model, loss_fn), repeats)
    reverse = reverse_mode_gradient(model, loss_fn)
    start = time.perf_counter()
    fd, evaluations = finite_difference_gradient(model, loss_fn)
    fd_s = time.perf_counter() - start
    diff = float(np.max(np.abs(fd - reverse)))
    return dict(hidden=hidden, parameters=n, forward_s=forward_s, reverse_s=reverse_s,
                reverse_passes="1 forward + 1 backward", fd_evaluations=evaluations, fd_s=fd_s,
                max_abs_diff=diff, relative_diff=diff / float(np.max(np.abs(reverse))),
                reverse=reverse, fd=fd)


def cost_lab(settings):
    """Part 4: one row per MLP width, timed on one thread: on a shared machine two BLAS
    threads mostly wait for each other, and the times should count the work."""
    images, labels = digits_batch(settings["batch"])
    with _labkit.threads(1):
        return [cost_row(h, images, labels, settings["repeats"])
                for h in settings["hidden_sizes"]]


# ----------------------------------------------------------------------------- figures
def plot_costs(rows, path):
    """Time against number of parameters (log-log), and finite differences against reverse
    mode entry by entry for the largest MLP."""
    import matplotlib.ticker

    plt = _labkit.pyplot()
    n = np.array([r["parameters"] for r in rows])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8), dpi=100)
    left.loglog(n, [r["reverse_s"] * 1e3 for r in rows], "o-",
                label="reverse mode: 1 forward + 1 backward")
    left.loglog(n, [r["fd_s"] * 1e3 for r in rows], "s-",
                label="finite differences: 2n forwards")
    left.loglog(n, [2 * r["parameters"] * r["forward_s"] * 1e3 for r in rows], "k:",
                label="2n x (one forward's time)")
    left.set(xlabel="parameters n (MLP 64-h-10 on digits)", ylabel="time for the gradient (ms)",
             title="Cost of the whole gradient")
    left.set_xticks(n, [str(v) for v in n], minor=False)
    left.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=9)
    last = rows[-1]
    right.scatter(last["reverse"], last["fd"], s=6, alpha=0.6)
    span = [float(last["reverse"].min()), float(last["reverse"].max())]
    right.plot(span, span, "r-", lw=1, label="y = x")
    right.set(xlabel="dL/dtheta by reverse mode (autograd)",
              ylabel="dL/dtheta by central differences",
              title=f"All {last['parameters']} entries (hidden {last['hidden']}); "
                    f"max |diff| {last['max_abs_diff']:.1e}")
    right.legend()
    _labkit.save_figure(fig, path)


# ----------------------------------------------------------------------------- results page
def _vector(v):
    return "[" + ", ".join(f"{x + 0.0:.4g}" for x in np.asarray(v, float)) + "]"  # no -0


def _regression_section(reg):
    hand, auto, expl = reg["hand"], reg["autograd"], reg["explain"]
    rows = [["L", f"{hand['L']:.4g}", f"{auto['L']:.4g}", "", ""],
            ["dL/dw", f"{hand['dL_dw']:.4g}", f"{auto['dL_dw']:.4g}", f"{expl['w']:.4g}",
             f"{reg['slide_dL_dw']:.4g} (misprint)"],
            ["dL/db", f"{hand['dL_db']:.4g}", f"{auto['dL_db']:.4g}", f"{expl['b']:.4g}",
             "-3.8"],
            ["dL/dx", f"{hand['dL_dx']:.4g}", f"{auto['dL_dx']:.4g}", f"{expl['x']:.4g}", ""],
            ["w after the step", f"{hand['w_new']:.5g}", "", "", "1.0798"],
            ["L after the step", f"{hand['L_new']:.5g}", "", "", "2.87"]]
    return ["## 1. The course's regression step",
            "w = 1, b = 0, x = 2.1, y = 4, learning rate 0.01; L = (w x + b - y)^2.", "",
            markdown_table(["quantity", "chain rule by hand", "retrograd autograd",
                            "retrograd.explain", "seed 001's slide"], rows), "",
            f"`retrograd.explain('regression')` checked itself against autograd and finite "
            f"differences: ok = {reg['explain_ok']}.", "",
            "The drawing's boxes:", "", "```", reg["drawing_rows"], "```"]


def _neuron_section(neuron):
    rows = []
    for state, r in neuron.items():
        h = r["hand"]
        rows.append([state, f"{r['bias']:g}", f"{h['z']:.4g}", f"{h['dL_dz'] + 0.0:.4g}",
                     _vector(h["dL_dw_data"]), _vector(h["dL_dw_penalty"]),
                     _vector(h["dL_dw"]), _vector(r["autograd_dL_dw"])])
    return ["## 2. A weight used twice",
            f"L = (relu(w.x + b) - y)^2 + lam |w|^2 with w = {NEURON['w']}, x = {NEURON['x']}, "
            f"y = {NEURON['y']:g}, lam = {NEURON['lam']:g}.", "",
            markdown_table(["ReLU", "b", "z = w.x + b", "dL/dz", "dL/dw via the data branch",
                            "dL/dw via the penalty", "sum (by hand)", "autograd dL/dw"], rows)]


def _graph_section(graph):
    rows = [[e["edge"], f"{e['norm']:.3g}"] for e in graph["edges"]]
    params = [[name, f"{norm:.3g}"] for name, norm in graph["parameter_grad_norms"].items()]
    return ["## 3. Gradient flow through the digits MLP's graph",
            f"MLP 64-16-10 (float64, seed 0), cross-entropy on the first 256 training digits: "
            f"loss {graph['loss']:.4f}.", "",
            markdown_table(["edge (forward direction)", "gradient norm along it"], rows), "",
            markdown_table(["parameter", "norm of dL/dparameter"], params)]


def _cost_section(rows, batch):
    table = [[r["hidden"], r["parameters"], f"{r['forward_s'] * 1e3:.2f}",
              f"{r['reverse_s'] * 1e3:.2f}", f"{r['reverse_s'] / r['forward_s']:.1f}",
              r["fd_evaluations"], f"{r['fd_s'] * 1e3:.0f}", f"{r['fd_s'] / r['reverse_s']:.0f}",
              f"{r['max_abs_diff']:.1e}", f"{r['relative_diff']:.1e}"] for r in rows]
    return ["## 4. Reverse mode against one evaluation per input",
            "The gradient of one scalar loss with respect to all n parameters of an MLP "
            f"64-h-10 (float64, seed 0, cross-entropy on the first {batch} training digits), "
            "on one "
            "thread. Times are medians; this machine is shared, so read the ratios, not the "
            "milliseconds.", "",
            markdown_table(["hidden h", "parameters n", "one forward (ms)",
                            "reverse: forward + backward (ms)", "reverse / forward",
                            "finite-difference forwards (2n)", "finite differences (ms)",
                            "finite differences / reverse", "max abs(FD - reverse)",
                            "relative to max abs(grad)"], table)]


def write_results_page(out, results, seconds, quick):
    form = "--quick" if quick else "full form"
    lines = ["# Module 1 lab results: backpropagation review and computational graphs", "",
             f"Written by `docs/course/m1_graphs.py` ({form}, {seconds:.1f} s on this machine).",
             "", *_regression_section(results["regression"]), "",
             *_neuron_section(results["neuron"]), "", *_graph_section(results["mlp_graph"]),
             "", *_cost_section(results["costs"], results["settings"]["batch"]), ""]
    (out / PAGE).write_text("\n".join(lines))


def _summary(results):
    reg, last = results["regression"], results["costs"][-1]
    return (f"m1: dL/dw = {reg['autograd']['dL_dw']:.4g} (slide: {SLIDE_DL_DW}); "
            f"{last['parameters']} parameters: reverse {last['reverse_s'] * 1e3:.1f} ms, "
            f"{last['fd_evaluations']} finite-difference forwards {last['fd_s']:.2f} s, "
            f"max |diff| {last['max_abs_diff']:.1e}")


def main(argv=None):
    """Run the lab; returns a dict of everything it computed."""
    start = time.perf_counter()
    args = _labkit.parse_args(__doc__.splitlines()[0], argv,
                              quick_help="the reduced form: fewer MLP sizes, a smaller batch")
    out = _labkit.out_folder(args.out)
    settings = _settings(args.quick)
    images, labels = digits_batch(256)
    results = dict(regression=regression_lab(out), neuron=neuron_lab(out),
                   mlp_graph=mlp_graph_lab(out, images, labels), costs=cost_lab(settings),
                   settings=settings, out=str(out))
    plot_costs(results["costs"], out / "m1-reverse-vs-forward.png")
    results["seconds"] = time.perf_counter() - start
    write_results_page(out, results, results["seconds"], args.quick)
    print(_summary(results))
    print(f"m1: wrote {PAGE} and the figures in {out} ({results['seconds']:.1f} s)")
    return results


if __name__ == "__main__":
    main()
