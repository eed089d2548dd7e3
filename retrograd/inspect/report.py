"""The report of a training run: loss/accuracy curves (PNG) and a self-contained HTML page."""

import base64
import html
import os

__all__ = ["plot_curves", "write_run_report"]


def plot_curves(history, path):
    """Loss and accuracy per epoch, train and test, side by side; written to ``path`` (PNG).
    Needs matplotlib (the 'train' extra); returns False when it is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, label in (("train_loss", "train"), ("test_loss", "test")):
        ax_loss.plot(epochs, [h[key] for h in history], marker="o", label=label)
    for key, label in (("train_acc", "train"), ("test_acc", "test")):
        ax_acc.plot(epochs, [h[key] for h in history], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=100)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
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


def write_run_report(out, metrics):
    """Write curves.png and report.html (the PNG embedded, so the page stands alone)."""
    history = metrics["history"]
    png = os.path.join(out, "curves.png")
    has_plot = bool(history) and plot_curves(history, png)
    image = ""
    if has_plot:
        with open(png, "rb") as f:
            image = f'<img alt="loss and accuracy curves" src="data:image/png;base64,' \
                    f'{base64.b64encode(f.read()).decode()}">'
    config_rows = [dict(option=k, value=v) for k, v in metrics["config"].items()]
    columns = ["epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc",
               "samples_per_s", "seconds", "lr"]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>retrograd run report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .6em;
text-align:right}}th{{background:#f3f3f3}}img{{max-width:100%}}</style></head><body>
<h1>retrograd training run</h1>
<p>{html.escape(str(metrics['config'].get('model')))} on {html.escape(str(metrics['info'].get('name')))}:
final test accuracy <b>{_fmt(history[-1]['test_acc']) if history else 'n/a'}</b>
after {len(history)} epochs.</p>
{image}
<h2>Epochs</h2>{_table(history, columns)}
<h2>Configuration</h2>{_table(config_rows, ["option", "value"])}
</body></html>
"""
    path = os.path.join(out, "report.html")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(path + ".tmp", path)
    return path
