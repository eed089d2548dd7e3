"""The report of a training run: curves (PNG) and a self-contained HTML page, for epoch-based
runs (image classification: loss and accuracy per epoch) and step-based runs (language models
and sequence tasks: losses and other evaluations every so many steps). Every file is written
to a temporary name and renamed, so an interrupted run never leaves a half-written report."""

import base64
import html
import os

__all__ = ["plot_curves", "plot_step_curves", "write_run_report", "write_step_report"]

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:70em}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
          "padding:.25em .6em;text-align:right}th{background:#f3f3f3}img{max-width:100%}")


def _pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib (the 'train' extra) is
    missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save_figure(plt, fig, axes, path):
    """Grid and legend on every axis, then the figure written to ``path`` atomically."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=100)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


def plot_curves(history, path):
    """Loss and accuracy per epoch, train and test, side by side; written to ``path`` (PNG).
    Returns False when matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return False
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        ax_loss.plot(epochs, [h[key] for h in history], marker="o", label=label)
    for key, label in (("train_acc", "train"), ("test_acc", "test")):
        ax_acc.plot(epochs, [h[key] for h in history], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    _save_figure(plt, fig, (ax_loss, ax_acc), path)
    return True


def plot_step_curves(history, val_keys, path):
    """The training loss and the ``val_keys`` ending in "loss" per step in one panel, every
    other evaluation in a panel of its own; written to ``path`` (PNG). Returns False when
    matplotlib is missing."""
    plt = _pyplot()
    if plt is None:
        return False
    steps = [h["step"] for h in history]
    losses = ["train_loss"] + [k for k in val_keys if k.endswith("loss")]
    panels = [k for k in val_keys if not k.endswith("loss")]
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(5 * (1 + len(panels)), 3.8),
                             squeeze=False)
    for key in losses:
        axes[0, 0].plot(steps, [h[key] for h in history], marker="o", label=key.replace("_", " "))
    axes[0, 0].set(xlabel="step", ylabel="cross-entropy (nats/token)", title="loss")
    for ax, key in zip(axes[0, 1:], panels):
        ax.plot(steps, [h[key] for h in history], marker="o", label=key.replace("_", " "))
        ax.set(xlabel="step", title=key.replace("_", " "))
    _save_figure(plt, fig, axes[0], path)
    return True


def _table(rows, columns):
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return html.escape(str(value))


def _embedded_png(path, alt):
    """An <img> holding the PNG at ``path`` itself (base64), so the page stands alone."""
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _write_page(out, summary, image, table_title, history, columns, config):
    """report.html: a one-line summary (HTML), the curves, the history table and the run's
    configuration; returns its path."""
    config_rows = [dict(option=k, value=v) for k, v in config.items()]
    page = (f'<!doctype html>\n<html><head><meta charset="utf-8"><title>retrograd run report'
            f"</title>\n<style>{_STYLE}</style></head><body>\n<h1>retrograd training run</h1>\n"
            f"<p>{summary}</p>\n{image}\n<h2>{table_title}</h2>{_table(history, columns)}\n"
            f'<h2>Configuration</h2>{_table(config_rows, ["option", "value"])}\n</body></html>\n')
    path = os.path.join(out, "report.html")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(path + ".tmp", path)
    return path


def write_run_report(out, metrics):
    """curves.png and report.html of an epoch-based run (metrics: config, info, history with
    one row per epoch)."""
    history = metrics["history"]
    png = os.path.join(out, "curves.png")
    image = (_embedded_png(png, "loss and accuracy curves")
             if history and plot_curves(history, png) else "")
    summary = (f"{html.escape(str(metrics['config'].get('model')))} on "
               f"{html.escape(str(metrics['info'].get('name')))}: final test accuracy "
               f"<b>{_fmt(history[-1]['test_acc']) if history else 'n/a'}</b> after "
               f"{len(history)} epochs.")
    columns = ["epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc",
               "samples_per_s", "seconds", "lr"]
    return _write_page(out, summary, image, "Epochs", history, columns, metrics["config"])


def write_step_report(out, metrics, val_keys, title):
    """curves.png and report.html of a step-based run (metrics: config, info, history with
    one row per evaluation); the summary names ``title`` and the last values of ``val_keys``."""
    history = metrics["history"]
    png = os.path.join(out, "curves.png")
    image = (_embedded_png(png, "training curves")
             if history and plot_step_curves(history, val_keys, png) else "")
    last = ", ".join(f"{k} <b>{_fmt(history[-1][k])}</b>" for k in val_keys) if history else "n/a"
    summary = f"{html.escape(title)}: {last} after {history[-1]['step'] if history else 0} steps."
    columns = list(history[0]) if history else []
    return _write_page(out, summary, image, "Evaluations", history, columns, metrics["config"])
