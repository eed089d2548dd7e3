"""The profile as a Chrome/Perfetto trace (the trace-event JSON format): one complete event
("X") per kernel, optimizer step and record_function range, a flow ("s" -> "f") from each
forward slice to the backward slice of the node it made, and a counter track ("C") of the
bytes kept for backward when the profile recorded memory. Open it in ui.perfetto.dev or
chrome://tracing. Times are in microseconds from the first recording's start."""

import json
import os

from retrograd.inspect.profile_events import OVERHEAD
from retrograd.utils.serialization import atomic_write

__all__ = ["chrome_trace", "write_chrome_trace"]

_PID, _TID = 1, 1


def chrome_trace(recordings):
    """The trace-event document (a dict) of the profiler's recordings."""
    events = [{"ph": "M", "name": "process_name", "pid": _PID, "tid": _TID,
               "args": {"name": "retrograd"}},
              {"ph": "M", "name": "thread_name", "pid": _PID, "tid": _TID,
               "args": {"name": "ops (forward, backward, optimizer)"}}]
    first = recordings[0].origin if recordings else 0
    flow_ids = 0   # event ids restart at 0 in each recording: flow ids must not
    for recording in recordings:
        shift = recording.origin - first
        events += _slices_and_flows(recording.events, shift, flow_ids)
        flow_ids += len(recording.events)
        events += [{"ph": "C", "name": "memory", "pid": _PID, "ts": (t + shift) / 1e3,
                    "args": {"saved for backward (bytes)": live}}
                   for t, live in recording.memory_samples]
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"producer": "retrograd.profiler"}}


def _slices_and_flows(events, shift, flow_ids):
    out = []
    for event in events:
        if event.name == OVERHEAD:
            continue   # a sum over many gaps, not one span of time
        ts = (event.start_ns + shift) / 1e3
        args = {"phase": event.phase, "module": event.module, "self_us": event.self_ns / 1e3}
        if event.call is not None:
            flops, nbytes = event.cost()
            args.update(flops=None if event.uncosted else flops, bytes=nbytes,
                        input_shapes=event.input_shapes())   # None: the op declares no cost
        out.append({"ph": "X", "name": event.name, "cat": event.phase, "pid": _PID,
                    "tid": _TID, "ts": ts, "dur": event.total_ns / 1e3, "args": args})
        if event.forward_id is not None:
            forward = events[event.forward_id]
            flow = {"name": "forward -> backward", "cat": "autograd", "id": flow_ids + event.id,
                    "pid": _PID, "tid": _TID}
            out.append(dict(flow, ph="s", ts=(forward.start_ns + shift) / 1e3))
            out.append(dict(flow, ph="f", bp="e", ts=ts))
    return out


def write_chrome_trace(path, recordings):
    """Write the trace to ``path`` atomically, with an error naming the path."""
    path = os.fspath(path)
    document = json.dumps(chrome_trace(recordings)).encode("utf-8")
    try:
        atomic_write(path, lambda f: f.write(document), owner="export_chrome_trace")
    except OSError as e:
        detail = e.strerror or str(e)   # atomic_write's own messages name the path already
        if repr(path) not in detail:
            detail = f"export_chrome_trace: cannot write {path!r}: {detail}"
        raise type(e)(detail) from None
