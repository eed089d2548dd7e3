"""Rendering shared by the tools: aligned text tables and human-readable quantities (bytes,
times, FLOPs). Pages and figures are in report.py.

    >>> print(text_table([["conv1", "1.5 ms"], ["fc", "20.0 us"]], ["Name", "Self"]))
    Name      Self
    -----  -------
    conv1   1.5 ms
    fc     20.0 us
    >>> format_bytes(3 * 2**20), format_time_us(1500.0), format_count(2.5e9)
    ('3.00 MiB', '1.500 ms', '2.50 G')
"""

__all__ = ["text_table", "format_bytes", "format_time_us", "format_count"]


def text_table(rows, header, left=1):
    """Rows of strings under ``header``: the first ``left`` columns left-aligned, the others
    right-aligned, with a rule under the header."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def format_bytes(n):
    """Bytes in B, KiB, MiB or GiB."""
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


def format_time_us(us):
    """A time given in microseconds, in s, ms or us."""
    if abs(us) >= 1e6:
        return f"{us / 1e6:.3f} s"
    if abs(us) >= 1e3:
        return f"{us / 1e3:.3f} ms"
    return f"{us:.1f} us"


def format_count(n):
    """A count with a k, M, G or T suffix."""
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"
