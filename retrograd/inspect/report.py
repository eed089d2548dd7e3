"""The report of a training run: a self-contained HTML page (report.html) made of titled
sections, and the curves (curves.png) of epoch-based runs (image classification: loss and
accuracy per epoch) and step-based runs (language models and sequence tasks: losses and other
evaluations every so many steps). Every file is written to a temporary name and renamed, so an
interrupted run never leaves a half-written report.

A page is a heading, a one-line summary, then its sections in the order they were added. A
section is a figure (a PNG, embedded as base64 so the page stays one file), a table (one row per
dict) or HTML written by the caller. Each gets an anchor made from its title, and a page with
three or more sections opens with a line of links to them. Text is escaped; the summary and an
HTML section are the caller's HTML and are kept as they are.

    >>> import os, tempfile
    >>> report = Report("retrograd training run", summary_html="mlp on digits: <b>0.97</b>")
    >>> report.add_table("Epochs", [dict(epoch=1, loss=0.52), dict(epoch=2, loss=0.31)]).anchor
    'epochs'
    >>> report.add_html("Notes & caveats", "<p>Warm-up ended at step 100.</p>").anchor
    'notes-caveats'
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     page = open(report.write(os.path.join(folder, "report.html")), encoding="utf-8").read()
    >>> '<h2>Notes &amp; caveats</h2>' in page and page.index("Epochs") < page.index("Notes")
    True

A tool that observes a training run adds its part to the run's report by passing sections,
e.g. ``write_run_report(out, metrics, sections=[Section.figure("Gradient flow", png, alt)])``.
"""

import base64
import dataclasses
import os
import re
from html import escape

from retrograd.utils.serialization import atomic_write

__all__ = ["Report", "Section", "plot_curves", "plot_step_curves", "write_run_report",
           "write_step_report"]

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:70em}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
          "padding:.25em .6em;text-align:right}th{background:#f3f3f3}img{max-width:100%}"
          "nav{margin:1em 0}nav a{margin-right:1em}h2{margin-top:1.5em}")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_CONTENTS_FROM = 3          # sections on a page before it gets a line of links to them

_RUN_HEADING = "retrograd training run"

_EPOCH_COLUMNS = ["epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc",
                  "samples_per_s", "seconds", "lr"]


# ----------------------------------------------------------------------------- sections and pages

@dataclasses.dataclass(frozen=True)
class Section:
    """One titled part of a report page. ``body`` is HTML that needs nothing outside the page
    (no file, no network). ``anchor`` is the section's id in the page; Report.add makes it
    from the title when empty, and keeps anchors unique on a page. Build sections with
    Section.figure, Section.table or Section.html."""

    title: str
    body: str
    anchor: str = ""

    @classmethod
    def figure(cls, title, png, alt):
        """A PNG image embedded in the page: ``png`` is its bytes or the path of a PNG file
        (read now); ``alt`` says what it shows, for readers who cannot see it."""
        data = base64.b64encode(_png_bytes(title, png)).decode("ascii")
        return cls(title, f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">')

    @classmethod
    def table(cls, title, rows, columns=None):
        """A table with a row per dict in ``rows`` and a column per key in ``columns`` (default:
        every key, in order of first appearance). Floats keep four significant digits; a key a
        row lacks leaves its cell empty."""
        rows = list(rows)
        if columns is None:
            columns = list(dict.fromkeys(key for row in rows for key in row))
        return cls(title, _table(rows, columns) if rows else "<p>No data yet.</p>")

    @classmethod
    def html(cls, title, html):
        """HTML written by the caller, kept as it is: escape the values put in it, and load
        nothing from outside the page."""
        return cls(title, html)


class Report:
    """A self-contained HTML page: ``title`` as its heading, ``summary_html`` (the caller's
    HTML) as its first line, then the sections in the order they were added."""

    def __init__(self, title, summary_html=""):
        self.title = title
        self.summary_html = summary_html
        self.sections = []

    def add(self, section):
        """Append ``section`` with an anchor unique on this page; returns the section added."""
        if not isinstance(section, Section):
            raise TypeError(f"report: expected a Section (Section.figure, Section.table or "
                            f"Section.html), got {type(section).__name__}")
        taken = {s.anchor for s in self.sections}
        anchor = base = _slug(section.anchor or section.title)
        count = 1
        while anchor in taken:
            count += 1
            anchor = f"{base}-{count}"
        section = dataclasses.replace(section, anchor=anchor)
        self.sections.append(section)
        return section

    def add_figure(self, title, png, alt):
        """Append Section.figure(title, png, alt); returns it."""
        return self.add(Section.figure(title, png, alt))

    def add_table(self, title, rows, columns=None):
        """Append Section.table(title, rows, columns); returns it."""
        return self.add(Section.table(title, rows, columns))

    def add_html(self, title, html):
        """Append Section.html(title, html); returns it."""
        return self.add(Section.html(title, html))

    def render(self):
        """The page as one string of HTML."""
        parts = [f"<h1>{escape(self.title)}</h1>"]
        if self.summary_html:
            parts.append(f"<p>{self.summary_html}</p>")
        if len(self.sections) >= _CONTENTS_FROM:
            links = "".join(f'<a href="#{s.anchor}">{escape(s.title)}</a>' for s in self.sections)
            parts.append(f"<nav>{links}</nav>")
        for s in self.sections:
            parts.append(f'<section id="{s.anchor}"><h2>{escape(s.title)}</h2>\n{s.body}\n'
                         f"</section>")
        body = "\n".join(parts)
        # The empty data: icon keeps the browser from asking for a favicon.ico beside the page.
        return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<link rel="icon" href="data:,"><title>{escape(self.title)}</title>\n'
                f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")

    def write(self, path):
        """The page written to ``path`` through a temporary file and a rename, so a reader
        never sees half a page; returns ``path``."""
        page = self.render().encode("utf-8")
        atomic_write(path, lambda f: f.write(page), owner="report")
        return path


def _png_bytes(title, png):
    """The bytes of ``png`` (bytes, or the path of a file), checked to be a PNG."""
    if isinstance(png, (bytes, bytearray)):
        data, where = bytes(png), "the bytes given"
    elif isinstance(png, (str, os.PathLike)):
        try:
            with open(png, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise FileNotFoundError(f"report: figure {title!r}: no file {os.fspath(png)}") from None
        where = os.fspath(png)
    else:
        raise TypeError(f"report: figure {title!r}: expected PNG bytes or a path, got "
                        f"{type(png).__name__}")
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError(f"report: figure {title!r}: {where} is not a PNG "
                         f"(it starts with {data[:8]!r})")
    return data


def _slug(text):
    """Lowercase letters and digits of ``text`` joined by hyphens: an id and a URL fragment."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())) or "section"


def _table(rows, columns):
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r[c]) if c in r else ''}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return escape(str(value))


# ----------------------------------------------------------------------------- curves

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
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100), owner="report")
    finally:
        plt.close(fig)


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


# ----------------------------------------------------------------------------- run reports

def _add_curves(report, out, history, plot, alt):
    """The "Curves" section: curves.png drawn by plot(path) and embedded, or a line saying why
    there is no figure; nothing before the first evaluation."""
    if not history:
        return
    png = os.path.join(out, "curves.png")
    if plot(png):
        report.add_figure("Curves", png, alt)
    else:
        report.add_html("Curves", "<p>No figure: matplotlib (the 'train' extra) is not "
                                  "installed.</p>")


def _write_run_page(report, out, sections, config):
    """The callers' ``sections``, then the run's configuration, then report.html in ``out``;
    returns its path."""
    for section in sections:
        report.add(section)
    report.add_table("Configuration", [dict(option=k, value=v) for k, v in config.items()],
                     ["option", "value"])
    return report.write(os.path.join(out, "report.html"))


def write_run_report(out, metrics, sections=()):
    """curves.png and report.html of an epoch-based run (metrics: config, info, history with
    one row per epoch). The page: a summary, the curves, the epochs, then ``sections`` (parts
    added by tools, in order), then the configuration. Returns the page's path."""
    history = metrics["history"]
    summary = (f"{escape(str(metrics['config'].get('model')))} on "
               f"{escape(str(metrics['info'].get('name')))}: final test accuracy "
               f"<b>{_fmt(history[-1]['test_acc']) if history else 'n/a'}</b> after "
               f"{len(history)} epochs.")
    report = Report(_RUN_HEADING, summary)
    _add_curves(report, out, history, lambda png: plot_curves(history, png),
                "loss and accuracy curves")
    report.add_table("Epochs", history, _EPOCH_COLUMNS)
    return _write_run_page(report, out, sections, metrics["config"])


def write_step_report(out, metrics, val_keys, title, sections=()):
    """curves.png and report.html of a step-based run (metrics: config, info, history with
    one row per evaluation); the summary names ``title`` and the last values of ``val_keys``.
    The page: the summary, the curves, the evaluations, then ``sections``, then the
    configuration. Returns the page's path."""
    history = metrics["history"]
    last = ", ".join(f"{k} <b>{_fmt(history[-1][k])}</b>" for k in val_keys) if history else "n/a"
    summary = f"{escape(title)}: {last} after {history[-1]['step'] if history else 0} steps."
    report = Report(_RUN_HEADING, summary)
    _add_curves(report, out, history, lambda png: plot_step_curves(history, val_keys, png),
                "training curves")
    report.add_table("Evaluations", history)
    return _write_run_page(report, out, sections, metrics["config"])
