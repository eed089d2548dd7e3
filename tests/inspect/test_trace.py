"""retrograd/inspect/trace.py: the profiler's Chrome/Perfetto trace, validated against the
Trace Event Format (the JSON object form: {"traceEvents": [...]}).

- every event has a name, a phase ("ph") and a pid; slices ("X"), flows ("s"/"f") and counters
  ("C") have a timestamp in microseconds; slices have dur >= 0 and nest properly on a thread;
  metadata ("M") names the process and the thread;
- each backward slice is linked by a flow pair (same id and cat; the "f" binds to its
  enclosing slice, bp "e") to the forward slice of the op that made its node: the "s" lies in
  the forward slice, the "f" in the backward one, on the same thread;
- the memory counter is the bytes kept for backward: the sum of the graph's saved_nbytes after
  the forward (a closed form for a tiny model), back to zero after the backward.
"""

import json

import numpy as np

import retrograd as rg
from retrograd.inspect._calls import saved_nbytes
from retrograd.profiler import profile, record_function
from tests.autograd.test_function import Cube   # a user's op that declares no cost


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _export(prof, tmp_path):
    path = tmp_path / "trace.json"
    prof.export_chrome_trace(path)
    return json.loads(path.read_text())


def _mlp_trace(tmp_path):
    model = rg.nn.Sequential(rg.nn.Linear(6, 8), rg.nn.Tanh(), rg.nn.Linear(8, 3))
    optimizer = rg.optim.SGD(model.parameters(), lr=0.1)
    x = rg.randn(5, 6)
    with profile(profile_memory=True, record_shapes=True) as prof:
        with record_function("train_step"):
            (model(x) * model(x)).sum().backward()
            optimizer.step()
    return _export(prof, tmp_path)


def _innermost(slices, ts):
    """The innermost X slice that encloses ``ts`` (the one a flow binds to)."""
    around = [s for s in slices if s["ts"] <= ts <= s["ts"] + s["dur"]]
    return max(around, key=lambda s: (s["ts"], -s["dur"])) if around else None


def test_the_trace_follows_the_trace_event_format(tmp_path):
    doc = _mlp_trace(tmp_path)
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    assert doc.get("displayTimeUnit", "ms") in ("ms", "ns")
    events = doc["traceEvents"]
    assert {e["ph"] for e in events} == {"M", "X", "s", "f", "C"}
    for e in events:
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["pid"], int)
        if e["ph"] != "C":   # counters belong to the process
            assert isinstance(e["tid"], int)
        if e["ph"] != "M":   # metadata has no time
            assert _number(e["ts"]) and e["ts"] >= 0
        if e["ph"] == "X":
            assert _number(e["dur"]) and e["dur"] >= 0
        if e["ph"] == "C":
            assert e["args"] and all(_number(v) for v in e["args"].values())
    slices = [e for e in events if e["ph"] == "X"]
    metadata = {e["name"]: e for e in events if e["ph"] == "M"}
    assert isinstance(metadata["process_name"]["args"]["name"], str)
    assert isinstance(metadata["thread_name"]["args"]["name"], str)
    assert {(s["pid"], s["tid"]) for s in slices} == {(metadata["thread_name"]["pid"],
                                                      metadata["thread_name"]["tid"])}
    names = {s["name"] for s in slices}
    assert {"Linear", "Tanh", "LinearBackward", "TanhBackward", "SGD.step",
            "train_step"} <= names
    assert "[framework overhead]" not in names   # a sum over gaps, not a span


def test_slices_nest_properly_on_their_thread(tmp_path):
    slices = [e for e in _mlp_trace(tmp_path)["traceEvents"] if e["ph"] == "X"]
    slices.sort(key=lambda s: (s["ts"], -s["dur"]))
    open_ends = []
    for s in slices:
        while open_ends and open_ends[-1] <= s["ts"]:
            open_ends.pop()
        end = s["ts"] + s["dur"]
        assert not open_ends or end <= open_ends[-1], f"{s['name']} overlaps its parent"
        open_ends.append(end)
    (step,) = [s for s in slices if s["name"] == "train_step"]
    assert all(step["ts"] <= s["ts"] and s["ts"] + s["dur"] <= step["ts"] + step["dur"]
               for s in slices)


def test_each_backward_slice_has_a_flow_from_its_forward_slice(tmp_path):
    events = _mlp_trace(tmp_path)["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    flows = {}
    for e in events:
        if e["ph"] in "sf":
            flows.setdefault(e["id"], {}).setdefault(e["ph"], []).append(e)
    backward = [s for s in slices if s["cat"] == "backward"]
    assert len(backward) == len(flows) == 8   # two calls: 2 x (2 Linear, Tanh); Mul, Sum
    bound = []
    for pair in flows.values():
        (start,), (finish,) = pair["s"], pair["f"]
        assert start["cat"] == finish["cat"] and start["name"] == finish["name"]
        assert finish["bp"] == "e" and "bp" not in start
        assert (start["pid"], start["tid"]) == (finish["pid"], finish["tid"])
        forward, back = _innermost(slices, start["ts"]), _innermost(slices, finish["ts"])
        assert forward["cat"] == "forward" and back["cat"] == "backward"
        assert back["name"] == forward["name"] + "Backward"
        assert forward["args"]["module"] == back["args"]["module"]
        assert start["ts"] < finish["ts"]
        bound.append(id(back))
    assert sorted(bound) == sorted(id(s) for s in backward)   # each backward slice once


def test_flow_ids_are_unique_over_several_recordings(tmp_path):
    layer, x = rg.nn.Linear(4, 3), rg.randn(2, 4)
    prof = profile()
    for _ in range(3):
        with prof:
            layer(x).sum().backward()
    events = _export(prof, tmp_path)["traceEvents"]
    starts = [e["id"] for e in events if e["ph"] == "s"]
    finishes = [e["id"] for e in events if e["ph"] == "f"]
    assert len(starts) == 3 * 2   # LinearBackward and SumBackward of each recording
    assert len(set(starts)) == len(starts) and sorted(starts) == sorted(finishes)


def _graph_saved_nbytes(root):
    seen, stack, total = set(), [root], 0
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        total += saved_nbytes(node)
        stack.extend(child for child, _ in node.next_functions)
    return total


def test_the_memory_counter_is_the_bytes_kept_for_backward(tmp_path):
    batch, n_in, n_out = 5, 4, 3
    layer, x = rg.nn.Linear(n_in, n_out), rg.randn(batch, n_in)
    with profile(profile_memory=True) as prof:
        y = layer(x)
        loss = (y * y).sum()
        kept = _graph_saved_nbytes(loss.grad_fn)
        loss.backward()
    events = _export(prof, tmp_path)["traceEvents"]
    counter = [e for e in events if e["ph"] == "C"]
    backward_start = min(e["ts"] for e in events if e["ph"] == "X" and e["cat"] == "backward")
    after_forward = [e for e in counter if e["ts"] < backward_start][-1]
    (value,) = after_forward["args"].values()
    # Linear keeps x (its weight's gradient needs it; x needs none), Mul keeps y once
    assert value == kept == 4 * (batch * n_in + batch * n_out)
    (last,) = counter[-1]["args"].values()
    assert last == 0   # the backward freed it all
    values = [next(iter(e["args"].values())) for e in counter]
    assert max(values) == value and min(values) >= 0


def test_ops_without_a_cost_have_null_flops_in_the_trace(tmp_path):
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with profile() as prof:
        (Cube.apply(x) * 2.0).sum().backward()
    slices = {(e["name"], e["cat"]): e["args"] for e in _export(prof, tmp_path)["traceEvents"]
              if e["ph"] == "X"}
    assert slices[("Cube", "forward")]["flops"] is None
    assert slices[("CubeBackward", "backward")]["flops"] is None
    assert slices[("Mul", "forward")]["flops"] == 3
    assert np.array_equal(x.grad.numpy(), np.float32([6.0, 24.0, 54.0]))
