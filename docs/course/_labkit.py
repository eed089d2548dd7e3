"""What every course lab script shares: its options (--quick, --out, --threads), the thread
count it runs on, its output folder, the command its results page names, Markdown tables, and
saving figures with matplotlib's Agg backend.

The labs import it as ``_labkit``: run as a script (``python docs/course/m1_graphs.py``) a lab
has this folder as ``sys.path[0]``; pytest's doctest collection of docs/course/ and
``tests/course/_lab.load_lab`` put this folder on ``sys.path`` too.
"""

import argparse
import contextlib
import pathlib

DEFAULT_OUT = pathlib.Path(__file__).resolve().parent / "results"
QUICK_HELP = "the reduced form (a few seconds)"
OUT_HELP = "folder for the figures and the results page (default: %(default)s)"
THREADS_HELP = ("retrograd's BLAS and kernel threads (default: %(default)s: the lab's "
                "matrices are small, and one thread is fastest on a busy machine)")


# ----------------------------------------------------------------------------- options
def lab_parser(description, quick_help=QUICK_HELP, threads=False):
    """The parser of the options every lab has: ``--quick``, ``--out`` (default
    docs/course/results) and, with ``threads``, ``--threads`` (default 1). A lab with options
    of its own adds them to it.

    >>> lab_parser("a lab", threads=True).parse_args(["--quick"]).threads
    1
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=OUT_HELP)
    if threads:
        parser.add_argument("--threads", type=int, default=1, help=THREADS_HELP)
    return parser


def parse_args(description, argv, quick_help=QUICK_HELP, threads=False):
    """The lab's options parsed from ``argv`` (None: the command line); see lab_parser."""
    return lab_parser(description, quick_help, threads).parse_args(argv)


@contextlib.contextmanager
def threads(count):
    """retrograd's thread count set to ``count`` inside the block, put back after."""
    import retrograd as rg

    before = rg.get_num_threads()
    rg.set_num_threads(count)
    try:
        yield
    finally:
        rg.set_num_threads(before)


def out_folder(path):
    """The output folder ``path`` as a Path, created (with its parents) when missing."""
    out = pathlib.Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def command(script, quick):
    """The command that runs the lab ``script`` (its ``__file__``) from the repository root.

    >>> command("/repo/docs/course/m7_positions.py", quick=True)
    'python docs/course/m7_positions.py --quick'
    """
    return f"python docs/course/{pathlib.Path(script).name}" + (" --quick" if quick else "")


# ----------------------------------------------------------------------------- results page
def markdown_table(header, rows):
    """A Markdown table from a header and rows of cells (already formatted).

    >>> print(markdown_table(["d", "var"], [[4, "4.1"]]))
    | d | var |
    |---|---|
    | 4 | 4.1 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def paragraphs(parts):
    """A page from its paragraphs (headings, sentences, tables): blank lines between them, a
    newline at the end.

    >>> paragraphs(["# Title", "Text."])
    '# Title\\n\\nText.\\n'
    """
    return "\n\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- figures
def pyplot():
    """matplotlib.pyplot, drawing with the Agg backend (files only, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path, **options):
    """Write ``fig`` to ``path`` (``fig.savefig(path, **options)``) and close it. A figure
    made without a layout engine (no ``layout="constrained"``) is laid out tight first."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, **options)
    pyplot().close(fig)


def write_figures(figures, result, out):
    """Draw each figure of ``figures``, {file name: plot(result, path)}, into ``out``."""
    for name, plot in figures.items():
        plot(result, out / name)
