"""Worked examples of max and average pooling (retrograd/ops/pool.py): the window each output
reads, its max and argmax or its mean and 1/divisor share, then dL/dX by routing (max) or
spreading (average) dL/dY back through the same windows; where windows overlap
(stride < kernel) a pixel adds up what every window it belongs to sends back.

Notation of ops/pool.py: X:(N, C, H, W), kernel (kh, kw) = (k, k), stride s, padding p on
both sides, Y:(N, C, Ho, Wo); window (ho, wo) covers the rows ho*s - p + i, i = 0..k-1, and
the columns alike; Ho = floor((H + 2*p - k) / s) + 1.
"""

import numpy as np

from retrograd.explain import Option, explains
from retrograd.explain._example import ExplainError
from retrograd.explain._render import format_number

__all__ = []

# windows listed one per line up to this many; beyond it only the first (n, c) plane's
MAX_LISTED_WINDOWS = 32

_OPTIONS = (Option("kernel", int, 2, "window size k (a k x k window)"),
            Option("stride", int, 0, "step of the window (0: the kernel size, as PyTorch)"),
            Option("padding", int, 0, "cells added on each side (at most half the kernel)"))


def _shape_text(shape):
    return "x".join(map(str, shape))


def _check_options(op, kernel, stride, padding):
    """The stride to use (0 means the kernel's); ExplainError naming a bad option."""
    for name, value, least in (("kernel", kernel, 1), ("stride", stride, 0),
                               ("padding", padding, 0)):
        if value < least:
            raise ExplainError(f"explain {op}: {name} must be >= {least}, got {value}")
    if 2 * padding > kernel:
        raise ExplainError(f"explain {op}: padding {padding} must be at most half the kernel "
                           f"{kernel} (a window must hold at least one cell of X)")
    return stride or kernel


def _check_fits(op, x, kernel, padding):
    for axis, name in ((2, "height"), (3, "width")):
        if x.shape[axis] + 2 * padding < kernel:
            padded = f" ({x.shape[axis] + 2 * padding} padded)" if padding else ""
            raise ExplainError(
                f"explain {op}: X's {name} (dimension {axis} of X, shape "
                f"{_shape_text(x.shape)}) is {x.shape[axis]}{padded}, smaller than the "
                f"kernel {kernel}")


def _output_size(size, kernel, stride, padding):
    """Ho = floor((H + 2*p - k) / s) + 1"""
    return (size + 2 * padding - kernel) // stride + 1


def _windows(x_shape, kernel, stride, padding):
    """(n, c, ho, wo, rows, cols) of every window, rows and columns in X's coordinates
    (negative or >= the size: padding)."""
    n, c, h, w = x_shape
    out_h, out_w = (_output_size(size, kernel, stride, padding) for size in (h, w))
    for plane in np.ndindex(n, c):
        for ho in range(out_h):
            for wo in range(out_w):
                rows = ho * stride - padding + np.arange(kernel)
                cols = wo * stride - padding + np.arange(kernel)
                yield (*plane, ho, wo, rows, cols)


def _inside(indices, size):
    return indices[(indices >= 0) & (indices < size)]


def _listed(windows, planes):
    """The windows to print: all of them when few, else those of the first plane."""
    if len(windows) <= MAX_LISTED_WINDOWS:
        return windows
    return [window for window in windows if window[:2] == (0, 0)]


def _label(n, c, planes):
    """How a line names a plane: nothing for a single (n, c) plane."""
    return f"[{n}, {c}] " if planes > 1 else ""


def _window_head(window, x_shape, planes):
    """'Y[0,1] <- X rows 0..1, cols 2..3' (and how many padding cells the window holds)."""
    n, c, ho, wo, rows, cols = window
    held = len(_inside(rows, x_shape[2])) * len(_inside(cols, x_shape[3]))
    pads = rows.size * cols.size - held
    padding = f" ({pads} padding)" if pads else ""
    return (f"{_label(n, c, planes)}Y[{ho},{wo}] <- X rows {rows[0]}..{rows[-1]}, "
            f"cols {cols[0]}..{cols[-1]}{padding}")


def _say_listed(ex, windows, planes, lines):
    """One line per listed window, and a note when the other planes are left out."""
    listed = _listed(windows, planes)
    for window in listed:
        ex.say(lines(window))
    if len(listed) < len(windows):
        ex.say(f"(the other {planes - 1} (n, c) planes are read through the same windows)")


def _setup(ex, op, kernel, stride, padding, distinct=False):
    """X and the resolved stride. With ``distinct`` a drawn X holds distinct integers in each
    (n, c) plane, centred on 0 (a tie in a max pool is then the user's own choice)."""
    stride = _check_options(op, kernel, stride, padding)
    if distinct:
        x = ex.input("X", (1, 1, 4, 4), primary=True, integer=False, low=0, high=1,
                     doc="input (N, C, H, W)")
        if ex.inputs["X"].source != "given":
            x = ex.inputs["X"].value = _distinct_ranks(x)
            ex.inputs["X"].doc = "input (N, C, H, W), distinct in each plane"
    else:
        x = ex.input("X", (1, 1, 4, 4), primary=True, doc="input (N, C, H, W)")
    _check_fits(op, x, kernel, padding)
    return x, stride


def _distinct_ranks(u):
    """Each (n, c) plane of ``u`` replaced by the ranks of its values (a stable sort breaks
    ties), shifted to be centred on 0: distinct, readable integers in a random order."""
    planes = u.reshape(u.shape[0] * u.shape[1], -1)
    ranks = np.argsort(np.argsort(planes, axis=1, kind="stable"), axis=1, kind="stable")
    return (ranks - planes.shape[1] // 2).reshape(u.shape).astype(np.float64)


def _say_size(ex, x, out_shape, kernel, stride, padding):
    sizes = [f"{name} = floor(({size} + 2*{padding} - {kernel}) / {stride}) + 1 = {out}"
             for name, size, out in (("Ho", x.shape[2], out_shape[2]),
                                     ("Wo", x.shape[3], out_shape[3]))]
    ex.say(f"kernel k = {kernel}, stride s = {stride}, padding p = {padding}; "
           f"Ho = floor((H + 2*p - k) / s) + 1: {sizes[0]}, {sizes[1]}."
           + (" The windows overlap (stride < kernel)." if stride < kernel else ""))


def _signed_sum(parts):
    """'0.5 + 0.5 - 1' for [0.5, 0.5, -1]."""
    text = format_number(parts[0])
    for part in parts[1:]:
        text += f" - {format_number(-part)}" if part < 0 else f" + {format_number(part)}"
    return text


# -- max pooling ------------------------------------------------------------------------------
def _max_windows(x, windows):
    """{window (n, c, ho, wo): (max, (h, w) of the first max in row-major window order)};
    padding cells never win (they are -inf)."""
    winners = {}
    for n, c, ho, wo, rows, cols in windows:
        rows_in, cols_in = _inside(rows, x.shape[2]), _inside(cols, x.shape[3])
        cells = x[n, c][np.ix_(rows_in, cols_in)]
        first = int(np.argmax(cells))  # np.argmax returns the first maximum
        h, w = rows_in[first // cols_in.size], cols_in[first % cols_in.size]
        ties = int(np.sum(cells == cells.flat[first]))
        winners[(n, c, ho, wo)] = (cells.flat[first], (int(h), int(w)), ties, cells)
    return winners


def _route(g, winners, x_shape):
    """dL/dX[n, c, h, w] = sum of dL/dY[n, c, ho, wo] over the windows whose argmax is (h, w)."""
    grad = np.zeros(x_shape)
    for (n, c, ho, wo), (_, (h, w), _, _) in winners.items():
        grad[n, c, h, w] += g[n, c, ho, wo]
    return grad


def _max_line(window, winner, x_shape, planes):
    value, (h, w), ties, cells = winner
    numbers = " ".join(format_number(v) for v in cells.ravel())
    tie = f" (tie of {ties}: the first wins)" if ties > 1 else ""
    return (f"{_window_head(window, x_shape, planes)}: {numbers} -> max "
            f"{format_number(value)} at X[{h},{w}]{tie}")


def _say_routes(ex, g, winners, planes):
    """Which pixel each dL/dY goes to, and the pixels that won several windows."""
    received = {}
    for (n, c, ho, wo), (_, (h, w), _, _) in winners.items():
        received.setdefault((n, c, h, w), []).append(g[n, c, ho, wo])
    for (n, c, h, w), parts in received.items():
        if len(parts) > 1:
            total = _signed_sum(parts)
            ex.say(f"{_label(n, c, planes)}X[{h},{w}] wins {len(parts)} windows: dL/dX = "
                   f"{total} = {format_number(sum(parts))}")


@explains("max_pool2d", family="pool", aliases=("maxpool", "max_pool", "max_pooling"),
          summary="2-D max pooling: each window's max, its gradient routed to the argmax",
          options=_OPTIONS)
def max_pool2d(ex, kernel, stride, padding):
    from retrograd.nn import functional as F

    x, stride = _setup(ex, "max_pool2d", kernel, stride, padding, distinct=True)
    (out_shape,) = ex.reference(
        lambda x: F.max_pool2d(x, kernel, stride=stride, padding=padding), "X")
    _say_size(ex, x, out_shape, kernel, stride, padding)
    planes = x.shape[0] * x.shape[1]
    windows = list(_windows(x.shape, kernel, stride, padding))
    winners = _max_windows(x, windows)

    ex.section("Forward")
    if padding:
        ex.show("X_pad", np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2),
                                constant_values=-np.inf),
                f"X with {padding} cell(s) of -inf on each side (padding never wins)")
    ex.say("Each output reads its window and keeps the max; the argmax is where it was "
           "(on a tie, the first in row-major window order, as in PyTorch).")
    _say_listed(ex, windows, planes,
                lambda wi: _max_line(wi, winners[wi[:4]], x.shape, planes))
    argmax = np.zeros(out_shape)
    y = np.zeros(out_shape)
    for (n, c, ho, wo), (value, (h, w), _, _) in winners.items():
        y[n, c, ho, wo], argmax[n, c, ho, wo] = value, h * x.shape[3] + w
    ex.show("argmax", argmax, "h*W + w of each window's max (PyTorch's return_indices)")
    ex.output("Y", y, "max of X over each window")

    ex.section("Backward")
    g = ex.upstream(out_shape)
    ex.say("The max passes dL/dY[ho, wo] to the one pixel that won window (ho, wo); every "
           "other pixel of the window gets 0.")
    _say_routes(ex, g, winners, planes)
    ex.gradient("X", _route(g, winners, x.shape),
                "sum of dL/dY over the windows whose argmax is (h, w); 0 elsewhere")
    if any(tie > 1 for _, _, tie, _ in winners.values()):
        ex.say("At a tie the max has a kink: raising the winner raises Y, lowering it hands "
               "the max to the other tied pixel, so Y has no derivative there; the printed "
               "gradient follows the first-max rule retrograd and PyTorch use, and finite "
               "differences count those pixels as kinks.")
        if stride < kernel:
            ex.say("Where tied pixels share overlapping windows, a pixel can even have a "
                   "partial derivative that differs from the first-max rule's value: the op "
                   "is not differentiable there, and finite differences say so.")


# -- average pooling --------------------------------------------------------------------------
def _divisors(x_shape, out_shape, kernel, windows, count_include_pad):
    """(Ho, Wo): kh*kw with count_include_pad, else the window's cells inside X."""
    divisor = np.zeros(out_shape[2:])
    for n, c, ho, wo, rows, cols in windows:
        if (n, c) == (0, 0):
            inside = len(_inside(rows, x_shape[2])) * len(_inside(cols, x_shape[3]))
            divisor[ho, wo] = kernel * kernel if count_include_pad else inside
    return divisor


def _window_sum(x, window):
    n, c, _, _, rows, cols = window
    return x[n, c][np.ix_(_inside(rows, x.shape[2]), _inside(cols, x.shape[3]))]


def _avg_line(x, window, divisor, planes):
    cells = _window_sum(x, window)
    total = _signed_sum(cells.ravel())
    mean = cells.sum() / divisor[window[2], window[3]]
    return (f"{_window_head(window, x.shape, planes)}: ({total}) / "
            f"{format_number(divisor[window[2], window[3]])} = {format_number(mean)}")


def _spread(share, x_shape, windows):
    """dL/dx[n, c, h, w] = sum over the windows that contain (h, w) of share[n, c, ho, wo];
    shares of padding cells are dropped."""
    grad = np.zeros(x_shape)
    for n, c, ho, wo, rows, cols in windows:
        rows_in, cols_in = _inside(rows, x_shape[2]), _inside(cols, x_shape[3])
        grad[n, c][np.ix_(rows_in, cols_in)] += share[n, c, ho, wo]
    return grad


def _cover_counts(x_shape, windows):
    """(H, W): how many windows read each pixel."""
    counts = np.zeros(x_shape[2:])
    for n, c, _, _, rows, cols in windows:
        if (n, c) == (0, 0):
            counts[np.ix_(_inside(rows, x_shape[2]), _inside(cols, x_shape[3]))] += 1
    return counts


@explains("avg_pool2d", family="pool", aliases=("avgpool", "avg_pool", "average_pooling",
                                                "mean_pool"),
          summary="2-D average pooling: each window's mean, its gradient shared evenly",
          options=_OPTIONS + (
              Option("count_include_pad", bool, True,
                     "divide by k*k (true) or by the window's cells inside X (false)"),))
def avg_pool2d(ex, kernel, stride, padding, count_include_pad):
    from retrograd.nn import functional as F

    x, stride = _setup(ex, "avg_pool2d", kernel, stride, padding)
    (out_shape,) = ex.reference(
        lambda x: F.avg_pool2d(x, kernel, stride=stride, padding=padding,
                               count_include_pad=count_include_pad), "X")
    _say_size(ex, x, out_shape, kernel, stride, padding)
    planes = x.shape[0] * x.shape[1]
    windows = list(_windows(x.shape, kernel, stride, padding))
    divisor = _divisors(x.shape, out_shape, kernel, windows, count_include_pad)

    ex.section("Forward")
    if padding:
        ex.show("X_pad", np.pad(x, ((0, 0), (0, 0), (padding,) * 2, (padding,) * 2)),
                f"X with {padding} zero(s) on each side")
    if not padding or count_include_pad:
        ex.say(f"Each output is the sum of its window over the divisor kh*kw = "
               f"{kernel * kernel}" + (" (padding cells count, as zeros)." if padding else "."))
    else:
        ex.say("count_include_pad=False: each window's sum is divided by the number of its "
               "cells inside X (padding cells do not count).")
        ex.show("divisor", divisor, "cells of each window inside X")
    _say_listed(ex, windows, planes, lambda wi: _avg_line(x, wi, divisor, planes))
    y = np.zeros(out_shape)
    for window in windows:
        n, c, ho, wo = window[:4]
        y[n, c, ho, wo] = _window_sum(x, window).sum() / divisor[ho, wo]
    ex.output("Y", y, "sum of X over each window / divisor")

    ex.section("Backward")
    g = ex.upstream(out_shape)
    share = ex.show("share", g / divisor, "dL/dY / divisor: what each cell of a window gets")
    if stride < kernel:
        ex.show("windows per pixel", _cover_counts(x.shape, windows),
                "how many windows read each pixel of X: overlapping shares add up")
    ex.gradient("X", _spread(share, x.shape, windows),
                "sum of the shares of the windows that contain (h, w)"
                + ("; padding cells' shares dropped" if padding else ""))
