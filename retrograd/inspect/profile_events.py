"""The rows of a profile: events (one per kernel, region or overhead span) and their averages.

An event's ``self`` time is the time of its own kernel, excluding the events nested inside it;
its ``total`` is self plus the nested events. Every profiled microsecond is the self time of
exactly one event (an op's kernel, an optimizer step, or "[framework overhead]": the time
between kernels), so the self column adds up to the profiled wall time; a record_function
range has a total (its wall time) and no self time.

``EventList.table(sort_by=, row_limit=)`` renders rows like PyTorch's profiler table, with
the phase (forward, backward, recompute, optimizer), the module path of the forward op that
made each row, FLOPs, achieved GFLOP/s and GB/s and the place on the machine's roofline.
"""

import collections

from retrograd.autograd.cost import declared_cost
from retrograd.inspect._calls import as_op_call
from retrograd.inspect.render import format_count, format_time_us, text_table

__all__ = ["FunctionEvent", "FunctionEventAvg", "EventList", "SORT_KEYS", "LEGEND",
           "OVERHEAD"]

OVERHEAD = "[framework overhead]"

LEGEND = ("self: time in the row's own kernel, excluding rows nested in it (self times add "
          "up to the profiled time); total: self plus nested rows (a record_function range: "
          "its wall time); "
          f"{OVERHEAD}: time between kernels (Python of retrograd and of the model), measured "
          "around the kernels, the profiler's own time excluded")

# sort key -> (attribute, descending); PyTorch's names (CPU only) and retrograd's
SORT_KEYS = {
    "self_cpu_time_total": "self_cpu_time_total", "cpu_time_total": "cpu_time_total",
    "cpu_time": "cpu_time", "self_cpu_time": "self_cpu_time", "count": "count",
    "flops": "flops", "cpu_memory_usage": "cpu_memory_usage",
    "self_cpu_memory_usage": "self_cpu_memory_usage", "bytes": "bytes",
    "gflops_per_s": "gflops_per_s", "gbytes_per_s": "gbytes_per_s",
}


class FunctionEvent:
    """One profiled span: a kernel (an op's forward or backward, an optimizer step), a
    record_function range, or framework overhead. Times in nanoseconds since the profile's
    start; ``call`` is the OpCall of an op (None otherwise); ``forward_id`` links a backward
    event to the id of the forward event that made its node."""

    __slots__ = ("id", "name", "op_name", "phase", "module", "start_ns", "total_ns",
                 "self_ns", "call", "forward_id", "memory", "_cost", "uncosted")

    def __init__(self, id, name, phase, module, start_ns, total_ns, self_ns, call=None,
                 forward_id=None, op_name=None, memory=0):
        self.id, self.name, self.phase, self.module = id, name, phase, module
        self.start_ns, self.total_ns, self.self_ns = start_ns, total_ns, self_ns
        if type(call) is tuple:   # a recorder's call_parts
            call = as_op_call(call)
        self.call, self.forward_id, self.op_name = call, forward_id, op_name or name
        self.memory, self._cost, self.uncosted = memory, None, False

    @property
    def end_ns(self):
        return self.start_ns + self.total_ns

    def cost(self):
        """(FLOPs, bytes) of this event from its op's declared cost, or (0, 0)."""
        if self.call is None:
            return 0, 0
        if self._cost is None:
            c = declared_cost(self.call)
            if c is None:   # a user's Function that declares no cost: FLOPs unknown
                self.uncosted = True
                self._cost = (0, 0)
                return self._cost
            if self.phase == "backward":
                self._cost = (c.backward_flops, c.backward_bytes_read + c.backward_bytes_written)
            else:
                self._cost = (c.flops, c.bytes_read + c.bytes_written)
        return self._cost

    def input_shapes(self):
        if self.call is None:
            return []
        return [list(i.shape) for i in self.call.inputs if hasattr(i, "shape")]

    def __repr__(self):
        return (f"<FunctionEvent {self.name} {self.phase} {self.module or ''} "
                f"self={self.self_ns / 1e3:.1f}us>")


class FunctionEventAvg:
    """The events of one key added up: ``count``, times in microseconds (PyTorch's units:
    ``self_cpu_time_total``, ``cpu_time_total``, ``cpu_time`` = average total), ``flops``,
    ``bytes``, and the key's parts: ``key`` (name), ``phase``, ``module``, ``input_shapes``."""

    def __init__(self, key, phase, module, input_shapes):
        self.key, self.phase, self.module, self.input_shapes = key, phase, module, input_shapes
        self.count = 0
        self.self_cpu_time_total = self.cpu_time_total = 0.0
        self.flops = self.bytes = self.cpu_memory_usage = 0
        self.uncosted = False   # some events' ops declare no cost: FLOPs unknown

    def add(self, event):
        self.count += 1
        self.self_cpu_time_total += event.self_ns / 1e3
        self.cpu_time_total += event.total_ns / 1e3
        flops, nbytes = event.cost()
        self.flops += flops
        self.uncosted = self.uncosted or event.uncosted
        self.bytes += nbytes
        self.cpu_memory_usage += event.memory

    @property
    def cpu_time(self):
        return self.cpu_time_total / self.count if self.count else 0.0

    @property
    def self_cpu_time(self):
        return self.self_cpu_time_total / self.count if self.count else 0.0

    @property
    def self_cpu_memory_usage(self):
        return self.cpu_memory_usage

    @property
    def gflops_per_s(self):
        seconds = self.self_cpu_time_total / 1e6
        return self.flops / seconds / 1e9 if seconds > 0 else 0.0

    @property
    def gbytes_per_s(self):
        seconds = self.self_cpu_time_total / 1e6
        return self.bytes / seconds / 1e9 if seconds > 0 else 0.0

    def roofline_fraction(self, peaks):
        """Achieved GFLOP/s over the roofline's bound at this row's arithmetic intensity:
        min(peak GFLOP/s, FLOPs/byte x peak GB/s). None without FLOPs or bytes."""
        if not self.flops or not self.bytes or peaks is None:
            return None
        bound = min(peaks.gflops, self.flops / self.bytes * peaks.gbytes_per_s)
        return self.gflops_per_s / bound

    def __repr__(self):
        return (f"<FunctionEventAvg {self.key} {self.phase} {self.module or ''} "
                f"count={self.count} self={self.self_cpu_time_total:.1f}us>")


class EventList(list):
    """A list of FunctionEventAvg rows (what ``profile.key_averages()`` returns)."""

    def __init__(self, rows=(), peaks=None, wall_us=None, partial=None, with_flops=True):
        super().__init__(rows)
        self.peaks, self.wall_us, self.partial = peaks, wall_us, partial
        self.with_flops = with_flops   # False: no FLOPs, rate or roofline columns

    @property
    def self_cpu_time_total(self):
        return sum(row.self_cpu_time_total for row in self)

    def table(self, sort_by=None, row_limit=100, max_name_column_width=55,
              max_shapes_column_width=60, top_level_events_only=False, header=None):
        """The rows as a text table, sorted by ``sort_by`` (descending; default: in order of
        first appearance; see SORT_KEYS), at most ``row_limit`` rows (-1: all), under a
        one-line legend and over the totals."""
        rows = sorted_rows(self, sort_by)
        shown = rows if row_limit is None or row_limit < 0 else rows[:row_limit]
        total_us = self.self_cpu_time_total
        with_module = any(r.module is not None for r in self)
        with_shapes = any(r.input_shapes is not None for r in self)
        rates = ["FLOPs", "GFLOP/s", "GB/s", "Roofline %"] if self.with_flops else []
        head = (["Name", "Phase"] + (["Module"] if with_module else [])
                + ["Self %", "Self", "Total", "Avg total", "Calls"] + rates
                + (["Input shapes"] if with_shapes else []))
        lines = [_cells(r, total_us, self.peaks, with_module, with_shapes, self.with_flops,
                        max_name_column_width, max_shapes_column_width) for r in shown]
        parts = [header] if header else []
        parts += [f"Legend: {LEGEND}.", text_table(lines, head, left=3 if with_module else 2)]
        parts.append(self._totals(total_us, len(rows) - len(shown)))
        return "\n".join(parts)

    def _totals(self, total_us, hidden):
        overhead = sum(r.self_cpu_time_total for r in self if r.key == OVERHEAD)
        text = (f"Self CPU time total: {format_time_us(total_us)} (kernels and ranges "
                f"{format_time_us(total_us - overhead)}, framework overhead "
                f"{format_time_us(overhead)})")
        if self.wall_us is not None:
            text += f"; wall time of the profiled block: {format_time_us(self.wall_us)}"
        if self.peaks is not None:
            text += (f"\nRoofline peaks (measured on this machine): "
                     f"{self.peaks.gflops:.1f} GFLOP/s, {self.peaks.gbytes_per_s:.1f} GB/s "
                     f"(main memory: rows whose data stayed in cache can exceed 100%)")
        uncosted = sorted({r.key for r in self if r.uncosted})
        if uncosted and self.with_flops:
            text += (f"\nFLOPs unknown (?) for ops that declare no cost: "
                     f"{', '.join(uncosted)} (see docs/cost-model.md to declare one)")
        if hidden > 0:
            text += f"\n({hidden} more rows: raise row_limit to see them)"
        if self.partial:
            text += f"\nPartial profile: the profiled block raised {self.partial}"
        return text

    def __str__(self):
        return self.table()


def sorted_rows(rows, sort_by):
    """The rows sorted by ``sort_by`` (descending), or as they are for None."""
    if sort_by is None:
        return list(rows)
    if sort_by not in SORT_KEYS:
        device = " (retrograd runs on the CPU)" if "cuda" in str(sort_by) else ""
        raise ValueError(f"profile table: unknown sort_by key {sort_by!r}{device}; valid keys: "
                         f"{', '.join(sorted(SORT_KEYS))}")
    return sorted(rows, key=lambda r: getattr(r, SORT_KEYS[sort_by]), reverse=True)


def _cells(row, total_us, peaks, with_module, with_shapes, with_flops, name_width,
           shapes_width):
    share = 100 * row.self_cpu_time_total / total_us if total_us else 0.0
    fraction = row.roofline_fraction(peaks)
    cells = [row.key[:name_width], row.phase or ""]
    if with_module:
        cells.append(row.module if row.module is not None else "-")
    cells += [f"{share:.1f}%", format_time_us(row.self_cpu_time_total),
              format_time_us(row.cpu_time_total), format_time_us(row.cpu_time),
              str(row.count)]
    if with_flops:
        cells += ["?" if row.uncosted else format_count(row.flops) if row.flops else "",
                  f"{row.gflops_per_s:.2f}" if row.flops else "",
                  f"{row.gbytes_per_s:.2f}" if row.bytes else "",
                  f"{100 * fraction:.1f}%" if fraction is not None else ""]
    if with_shapes:
        cells.append(str(row.input_shapes)[:shapes_width] if row.input_shapes else "")
    return cells


def average(events, group_by_input_shape=False, group_by_module=False):
    """The events grouped by name and phase (and module path, input shapes when asked), in
    order of first appearance."""
    rows = collections.OrderedDict()
    for event in events:
        shapes = event.input_shapes() if group_by_input_shape else None
        module = event.module if group_by_module else None
        key = (event.name, event.phase, module, repr(shapes) if shapes is not None else None)
        row = rows.get(key)
        if row is None:
            row = rows[key] = FunctionEventAvg(event.name, event.phase, module, shapes)
        row.add(event)
    return list(rows.values())
