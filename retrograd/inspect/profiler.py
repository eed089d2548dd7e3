"""The profiler: where the time of a training step goes, op by op, forward and backward.

PyTorch's surface (``retrograd.profiler`` re-exports it): ``profile(record_shapes=,
profile_memory=, with_flops=, schedule=, on_trace_ready=)`` as a context manager,
``record_function(name)``, ``key_averages()``, ``.table(sort_by=, row_limit=)``,
``export_chrome_trace(path)``, ``schedule(wait=, warmup=, active=, repeat=)`` and ``step()``.
Beyond it:

- every row has a phase (forward, backward, recompute, optimizer) and the module path of the
  forward op that made it, backward rows included (``layers.1.0.conv2``);
  ``key_averages(group_by_module=True)`` groups by module x op x phase;
- FLOPs of every op from its declared cost (autograd/cost.py), achieved GFLOP/s and GB/s, and
  the place on the machine's roofline (roofline.py);
- a "[framework overhead]" row per phase, measured directly: the time between kernels,
  timestamped around each kernel, minus the profiler's own time (timestamped around each of
  its callbacks). Every profiled microsecond is the self time of one row (a record_function
  range has a total but no self time of its own), so the rows add up to the wall time;
- the Chrome/Perfetto trace links each forward slice to its backward slice with flow events
  and carries a memory counter track (trace.py).

How kernels are timed: while profiling, each op runs as a subclass of itself with the same
name and rules whose forward and backward timestamp the op's own kernel (the observer slot's
``kernel_class``); the subclass is made once per op class. With the profiler off nothing of
this runs (the observer slot is empty).

    >>> import retrograd as rg
    >>> model = rg.nn.Sequential(rg.nn.Linear(32, 64), rg.nn.ReLU(), rg.nn.Linear(64, 10))
    >>> x = rg.randn(16, 32)
    >>> with profile(with_flops=True) as prof:
    ...     with record_function("train_step"):
    ...         model(x).sum().backward()
    >>> rows = prof.key_averages(group_by_module=True)
    >>> [(r.key, r.phase, r.module) for r in rows if r.key.startswith("Linear")]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('Linear', 'forward', '0'), ('Linear', 'forward', '2'),
     ('LinearBackward', 'backward', '2'), ('LinearBackward', 'backward', '0')]
    >>> # forward 2*16*64*10 + 16*10 (bias); backward 2 * 2*16*64*10 (dL/dx, dL/dW)
    >>> # + 16*10 - 10 (the adds of dL/db)
    >>> [r.flops for r in rows if r.module == "2"]
    [20640, 41110]
"""

import enum
import itertools
import time

from retrograd import _checks
from retrograd.autograd.observer import OpObserver, kernel_subclass, observe, region
from retrograd.inspect._calls import call_parts
from retrograd.inspect.profile_events import OVERHEAD, EventList, FunctionEvent, average

__all__ = ["profile", "record_function", "schedule", "ProfilerAction", "ProfilerActivity"]

_now = time.perf_counter_ns
_ACTIVE = None            # the recorder whose kernels are being timed, if any
_TIMED = {}               # op class -> its timed subclass
_SERIALS = itertools.count(1)   # recorders' serial numbers (tags of the nodes they record)


class ProfilerActivity(enum.Enum):
    """What to profile: retrograd runs on the CPU only (CUDA exists so that PyTorch code
    asking for it gets profile's clear error, not an AttributeError)."""

    CPU = "cpu"
    CUDA = "cuda"


class ProfilerAction(enum.Enum):
    """What the profiler does at a step of its schedule."""

    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


_RECORDING = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)


def schedule(*, wait, warmup, active, repeat=0, skip_first=0):
    """PyTorch's schedule: skip ``skip_first`` steps, then cycles of ``wait`` idle steps,
    ``warmup`` steps run with the profiler on but discarded, and ``active`` recorded steps,
    the last of which is RECORD_AND_SAVE (``on_trace_ready`` runs after it); ``repeat`` cycles
    (0: until the block ends)."""
    for name, value in (("wait", wait), ("warmup", warmup), ("active", active),
                        ("repeat", repeat), ("skip_first", skip_first)):
        _checks.int_at_least("profiler schedule", name, value, 0)
    if active < 1:
        raise ValueError(f"profiler schedule: active must be >= 1, got {active}")
    cycle = wait + warmup + active

    def action(step):
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if repeat and step >= cycle * repeat:
            return ProfilerAction.NONE
        position = step % cycle
        if position < wait:
            return ProfilerAction.NONE
        if position < wait + warmup:
            return ProfilerAction.WARMUP
        return (ProfilerAction.RECORD_AND_SAVE if position == cycle - 1
                else ProfilerAction.RECORD)

    return action


def _timed_class(op):
    """The subclass of ``op`` whose forward and backward timestamp the kernel."""
    timed = _TIMED.get(op)
    if timed is not None:
        return timed
    forward, backward = op.forward, op.backward

    def timed_forward(ctx, *args, **kwargs):
        recorder = _ACTIVE
        if recorder is None:
            return forward(ctx, *args, **kwargs)
        start = recorder.kernel_begins()
        try:
            return forward(ctx, *args, **kwargs)
        finally:
            recorder.kernel_ends(start)

    def timed_backward(ctx, *grads):
        recorder = _ACTIVE
        if recorder is None:
            return backward(ctx, *grads)
        phases = recorder.phases
        phases.append("backward")     # ops run by a backward (create_graph) are backward work
        start = recorder.kernel_begins("backward")
        result = None
        try:
            result = backward(ctx, *grads)
            return result
        finally:
            recorder.kernel_ends(start)
            phases.pop()
            recorder.record_backward(ctx, result)

    timed = kernel_subclass(op, timed_forward, timed_backward)
    _TIMED[op] = timed
    return timed


class _Recorder(OpObserver):
    """The observer that times kernels and records events (see the module docstring). Its
    callbacks run for every op, so they do the least they can: timestamps, the op's shapes
    (FLOPs are computed from them when a table is made), and appends."""

    def __init__(self, profile_memory):
        self.profile_memory = profile_memory
        self.serial = next(_SERIALS)   # a node recorded here is tagged (serial, record index)
        # One tuple per event: FunctionEvent's arguments, with the op call as an index into
        # calls (each distinct call once: a training loop repeats the same calls) and the op
        # class as an index into ops. Records of numbers and strings only are left alone by
        # the garbage collector: thousands of them slow no collection down.
        self.records = []
        self.ops, self._op_index = [], {}
        self.calls, self._call_index = [], {}
        self._events = None
        self.origin = _now()
        self._last_end = self.origin   # end of the last kernel at depth 0
        self._own = 0                  # the profiler's own time since then
        self._nested = [0]             # per kernel depth: time of the kernels nested in it
        self._pending = None           # (start, total, self) of the kernel that just ended
        self._attrs = None             # attributes of the op being run
        self._ranges = []              # open record_function ranges and regions
        self.phases = ["forward"]      # the phase stack: regions and backward kernels push
        self._overhead = {}            # phase -> [first gap's start, total ns]
        self.live_saved = 0            # bytes kept for backward by recorded nodes
        self.memory_samples = []       # (time ns, live saved bytes)

    # ---- the kernel clock ----
    def kernel_begins(self, phase=None):
        t = _now()
        nested = self._nested
        if len(nested) == 1:
            gap = t - self._last_end - self._own
            if gap > 0:
                phase = phase or self.phases[-1]
                spent = self._overhead.get(phase)
                if spent is None:
                    self._overhead[phase] = [self._last_end - self.origin, gap]
                else:
                    spent[1] += gap
        nested.append(0)
        return _now()

    def kernel_ends(self, start):
        t = _now()
        nested = self._nested
        inner = nested.pop()
        total = t - start
        nested[-1] += total
        self._pending = (start - self.origin, total, total - inner)
        if len(nested) == 1:
            self._own = 0
            self._last_end = _now()

    # ---- observer callbacks (their own time is excluded from every row) ----
    def kernel_class(self, op):
        timed = _TIMED.get(op)
        return timed if timed is not None else _timed_class(op)

    def before_forward(self, op, inputs, attrs):
        self._attrs = attrs
        self._pending = None

    def after_forward(self, op, node, inputs, outputs, module_path):
        entered = _now()
        pending = self._pending
        if pending is not None:
            self._pending = None
            index = self._op_index.get(op)
            if index is None:
                index = self._op_index[op] = len(self.ops)
                self.ops.append(op)
            call = call_parts(index, inputs, self._attrs, outputs, node)
            records = self.records
            memory = 0
            if node is not None:
                node._profile_event = (self.serial, len(records))
                if self.profile_memory:
                    memory = sum(o._data.nbytes for o in outputs) \
                        if type(outputs) is tuple else outputs._data.nbytes
                    if call[5]:
                        self._sample_memory(call[5])
            records.append((op.__name__, self.phases[-1], module_path, pending[0], pending[1],
                            pending[2], self._call_id(call), None, None, memory))
        self._own += _now() - entered

    def _call_id(self, call):
        """The index of ``call`` in calls (added when new; a call whose attributes cannot be
        hashed is added each time)."""
        attrs = call[2]
        key = call if attrs is None else call[:2] + (tuple(attrs.items()),) + call[3:]
        try:
            found = self._call_index.get(key)
        except TypeError:
            key = found = None
        if found is None:
            found = len(self.calls)
            self.calls.append(call)
            if key is not None:
                self._call_index[key] = found
        return found

    watches_backward = False   # backward kernels are timed and recorded by timed_backward

    def record_backward(self, node, result):
        """Record the backward kernel of ``node`` that just ended (``result``: what it
        returned, None if it raised)."""
        entered = _now()
        pending = self._pending
        if pending is not None:
            self._pending = None
            self._record_backward(node, pending, result)
        self._own += _now() - entered

    def _record_backward(self, node, pending, result):
        tag = getattr(node, "_profile_event", None)
        # a node recorded by another recording (a forward profiled apart) links to nothing here
        forward_id = tag[1] if tag is not None and tag[0] == self.serial else None
        if forward_id is not None:   # the name and module path are made with the table
            forward = self.records[forward_id]
            call, name, op_name, module = forward[6], None, forward[0], forward[2]
        else:
            call, name, module = None, node.name(), node.module_path
            op_name = name
        memory = 0
        if self.profile_memory:
            grads = result if type(result) is tuple else (result,)
            memory = sum(g.nbytes for g in grads if g is not None and hasattr(g, "nbytes"))
            saved = self.calls[call][5] if call is not None else 0
            if saved:
                self._sample_memory(-saved)   # the engine frees them after this backward
        self.records.append((name, "backward", module, pending[0], pending[1], pending[2], call,
                             forward_id, op_name, memory))

    def _sample_memory(self, delta):
        self.live_saved += delta
        self.memory_samples.append((_now() - self.origin, self.live_saved))

    # ---- ranges: record_function and regions ----
    def begin_region(self, name, phase):
        if phase == "optimizer":   # an optimizer step is a kernel of its own
            start = self.kernel_begins("optimizer")
            self._ranges.append(_Range(name, phase, None))
            self._ranges[-1].kernel_start = start
            self.phases.append(phase)
            return
        entered = _now()
        self._ranges.append(_Range(name, phase, entered - self.origin))
        if phase is not None:
            self.phases.append(phase)
        self._own += _now() - entered

    def end_region(self, name, phase):
        if not self._ranges or self._ranges[-1].name != name:
            open_names = [r.name for r in self._ranges]
            raise RuntimeError(f"record_function: {name!r} ended while {open_names} were open "
                               f"(ranges must end innermost first)")
        opened = self._ranges.pop()
        if phase is not None:
            self.phases.pop()
        if phase == "optimizer":
            self.kernel_ends(opened.kernel_start)
            start, total, own = self._pending
            self._pending = None
            self.records.append((name, "optimizer", None, start, total, own))
            return
        entered = _now()
        total = entered - self.origin - opened.start_ns
        self.records.append((name, phase or "user", None, opened.start_ns, total, 0))
        self._own += _now() - entered

    def finish(self):
        """Count the tail after the last kernel, add the overhead rows; returns the names of
        the ranges left open."""
        self.kernel_begins()
        self._nested.pop()
        self.wall_ns = _now() - self.origin
        for phase, (start, spent) in self._overhead.items():
            self.records.append((OVERHEAD, phase, None, start, spent, spent))
        return [r.name for r in self._ranges]

    @property
    def events(self):
        """The FunctionEvents of the records (made once, when first asked for)."""
        if self._events is None or len(self._events) != len(self.records):
            self._events = [FunctionEvent(i, *self._decoded(record))
                            for i, record in enumerate(self.records)]
        return self._events

    def _decoded(self, record):
        """The record with its op class in place of its index and, for a backward record,
        its name made from its forward op's (MatMul -> MatMulBackward), as its node is."""
        if len(record) < 7 or record[6] is None:
            return record if record[0] is not None else _backward_named(record)
        record = list(record)
        call = self.calls[record[6]]
        record[6] = (self.ops[call[0]],) + call[1:]
        return record if record[0] is not None else _backward_named(record)


def _backward_named(record):
    record = list(record)
    record[0] = record[8] + "Backward"
    return record


class _Range:
    __slots__ = ("name", "phase", "start_ns", "kernel_start")

    def __init__(self, name, phase, start_ns):
        self.name, self.phase, self.start_ns = name, phase, start_ns


class record_function:
    """A named range in the profile (context manager or decorator), PyTorch's
    ``record_function``: its row's total is the time inside it; its self is zero, as that
    time is in the rows of the kernels and of the framework overhead inside it. Outside a
    profile it does nothing."""

    def __init__(self, name, args=None):
        if not isinstance(name, str) or not name:
            raise TypeError(f"record_function: name must be a non-empty str, got {name!r}")
        self.name = name
        self._region = None

    def __enter__(self):
        self._region = region(self.name, None)
        self._region.__enter__()
        return self

    def __exit__(self, *exc):
        region_, self._region = self._region, None
        if region_ is not None:
            region_.__exit__(*exc)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with record_function(self.name):
                return fn(*args, **kwargs)

        return wrapped


class profile:
    """Profile the ops run inside the block (see the module docstring)."""

    def __init__(self, activities=None, schedule=None, on_trace_ready=None,
                 record_shapes=False, profile_memory=False, with_stack=False,
                 with_flops=True, with_modules=True, experimental_config=None,
                 use_cuda=None, enabled=True):
        _check_activities(activities, use_cuda)
        if schedule is not None and not callable(schedule):
            raise TypeError(f"profile: schedule must be callable (profiler.schedule(...)), "
                            f"got {type(schedule).__name__}")
        if on_trace_ready is not None and not callable(on_trace_ready):
            raise TypeError(f"profile: on_trace_ready must be callable, got "
                            f"{type(on_trace_ready).__name__}")
        self.schedule, self.on_trace_ready = schedule, on_trace_ready
        self.record_shapes, self.profile_memory = record_shapes, profile_memory
        self.with_flops, self.enabled = with_flops, enabled
        self.step_num = 0
        self.partial = None
        self._recorder = None      # recording now
        self._observing = None
        self._finished = []        # events of finished recordings (kept for key_averages)
        self._wall_ns = 0
        self._inside = False       # in the block (between __enter__ and __exit__)
        self._cycle_saved = False  # on_trace_ready saw the last cycle: the next one starts anew
        self._peaks = None

    # ---- the block ----
    def __enter__(self):
        self._apply(self._action())
        self._inside = True
        return self

    def __exit__(self, exc_type, exc, tb):
        self._inside = False
        # a block that ends during warm-up discards the warm-up steps, as step() does
        open_ranges = self._stop(keep=self._action() in _RECORDING)
        if exc_type is not None:
            self.partial = f"{exc_type.__name__}: {exc}"
            return False
        if open_ranges:
            raise RuntimeError(f"profile: record_function {open_ranges} entered but never "
                               f"exited inside the profiled block")
        return False

    def start(self):
        return self.__enter__()

    def stop(self):
        return self.__exit__(None, None, None)

    def step(self):
        """Mark the end of a training step: moves the schedule on. As PyTorch's, each
        ``on_trace_ready`` call sees the events of the cycle that just ended (the next cycle
        starts anew; after the block, ``key_averages`` shows the last cycle)."""
        before = self._action()
        self.step_num += 1
        after = self._action()
        if not self._inside:
            return                   # outside the block: nothing records
        if before == ProfilerAction.RECORD_AND_SAVE:
            self._stop(keep=True)
            self._cycle_saved = True
            if self.on_trace_ready is not None:
                self.on_trace_ready(self)
        elif before == ProfilerAction.RECORD and after not in _RECORDING:
            self._stop(keep=True)    # a schedule that ends a recording without saving it
        elif before == ProfilerAction.WARMUP and after != ProfilerAction.WARMUP:
            self._stop(keep=False)   # warm-up events are discarded
        self._apply(after)

    def _action(self):
        if not self.enabled:
            return ProfilerAction.NONE
        if self.schedule is None:
            return ProfilerAction.RECORD
        return self.schedule(self.step_num)

    def _apply(self, action):
        if action != ProfilerAction.NONE and self._recorder is None:
            self._start()

    def _start(self):
        global _ACTIVE
        if _ACTIVE is not None:
            raise RuntimeError("profile: another profiler is already running (profilers do "
                               "not nest)")
        if self._cycle_saved:        # as PyTorch: each cycle's handler sees that cycle only
            self._finished, self._wall_ns, self._cycle_saved = [], 0, False
        self._recorder = _Recorder(self.profile_memory)
        self._observing = observe(self._recorder)
        self._observing.__enter__()
        _ACTIVE = self._recorder

    def _stop(self, keep):
        global _ACTIVE
        recorder = self._recorder
        if recorder is None:
            return []
        open_ranges = recorder.finish()
        self._observing.__exit__(None, None, None)
        _ACTIVE = self._recorder = self._observing = None
        if keep:
            self._finished.append(recorder)
            self._wall_ns += recorder.wall_ns
        return open_ranges

    # ---- results ----
    def events(self):
        """Every recorded event, in order."""
        return [e for recorder in self._finished for e in recorder.events]

    def key_averages(self, group_by_input_shape=False, group_by_stack_n=0,
                     group_by_module=False):
        """Rows grouped by name and phase (and module path, input shapes when asked)."""
        if group_by_input_shape and not self.record_shapes:
            raise ValueError("profile.key_averages: group_by_input_shape needs "
                             "profile(record_shapes=True)")
        rows = average(self.events(), group_by_input_shape, group_by_module)
        peaks = self.peaks() if self.with_flops else None
        return EventList(rows, peaks, self._wall_ns / 1e3, self.partial, self.with_flops)

    def peaks(self):
        """The machine's roofline peaks (measured once, cached: roofline.py)."""
        if self._peaks is None:
            from retrograd.inspect.roofline import machine_peaks
            self._peaks = machine_peaks()
        return self._peaks

    def table(self, sort_by=None, row_limit=100, group_by_module=False, **kwargs):
        return self.key_averages(group_by_module=group_by_module).table(
            sort_by=sort_by, row_limit=row_limit, **kwargs)

    def export_chrome_trace(self, path):
        """Write the Chrome/Perfetto trace (trace-event JSON) to ``path``."""
        from retrograd.inspect.trace import write_chrome_trace
        write_chrome_trace(path, self._finished)

    @property
    def wall_us(self):
        """The wall time of the recorded spans, in microseconds."""
        return self._wall_ns / 1e3


def _check_activities(activities, use_cuda):
    if use_cuda:
        raise ValueError("profile: use_cuda=True, but retrograd runs on the CPU only")
    for activity in activities or ():
        name = getattr(activity, "name", str(activity))
        if name != "CPU":
            raise ValueError(f"profile: activity {name} is not available: retrograd runs on "
                             f"the CPU only (use ProfilerActivity.CPU)")

