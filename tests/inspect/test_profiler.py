"""retrograd.profiler (retrograd/inspect/profiler.py, profile_events.py): what a profile of a
training step holds, checked against numbers computed independently.

- rows carry the phase and the module path, backward rows included (resnet8's
  ``layers.1.0.conv2``), with the optimizer's step and one "[framework overhead]" row per phase;
- self times add up to the profiled wall time (a consistency property of one run, not a speed
  claim); total >= self; a record_function range has its wall time as total and no self time;
- FLOPs equal FlopCounter's for the same computation, per module, op and phase;
- gradients are bit-identical with and without the profiler;
- table(): sort keys, errors, row_limit; bad input gives clear errors and keeps what was
  recorded; schedules act as torch.profiler.schedule; a user's Function without a cost
  profiles with FLOPs "?"; with the profiler off nothing of it is left.
"""

import gc
import re
import time
import warnings

import numpy as np
import pytest

import retrograd as rg
import retrograd.inspect.profiler as profiler_module
import retrograd.inspect.roofline as roofline
from retrograd.autograd.grad_mode import STATE
from retrograd.autograd.observer import set_observers
from retrograd.inspect.flops import FlopCounter
from retrograd.inspect.profile_events import OVERHEAD, SORT_KEYS, sorted_rows
from retrograd.models.resnet import resnet8
from retrograd.ops.linalg import Linear
from retrograd.profiler import (ProfilerAction, ProfilerActivity, profile, record_function,
                                schedule)
from tests.autograd.test_function import Cube   # a user's op that declares no cost

BATCH, SIZE, CLASSES = 2, 16, 10


@pytest.fixture(autouse=True)
def _fixed_peaks(tmp_path, monkeypatch):
    """Tables ask for the machine's roofline peaks: fixed ones, cached in tmp_path (the tests
    neither measure the machine nor touch ~/.cache)."""
    monkeypatch.setenv("RETROGRAD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(roofline, "measure_peaks",
                        lambda: roofline.Peaks(100.0, 10.0, roofline.machine_key()))
    yield
    if STATE.observers or profiler_module._ACTIVE is not None:   # a failed test left it on
        set_observers(())
        profiler_module._ACTIVE = None


def _resnet(seed=0, batch=BATCH, size=SIZE):
    rg.manual_seed(seed)
    model = resnet8(num_classes=CLASSES)
    rng = np.random.default_rng(seed)
    x = rg.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32))
    y = rg.tensor(rng.integers(0, CLASSES, batch))
    return model, x, y


def _train_step(model, optimizer, x, y):
    loss = rg.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    if optimizer is not None:
        optimizer.step()
    return loss


def _mlp():
    return rg.nn.Sequential(rg.nn.Linear(8, 16), rg.nn.ReLU(), rg.nn.Linear(16, 4))


def _table_rows(table):
    """The cells of the table's body rows (between the rule and the totals)."""
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---")) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("Self CPU time total"))
    return [re.split(r"\s{2,}", line.strip()) for line in lines[start:end]]


def _footer(table):
    lines = table.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Self CPU time total"))
    return "\n".join(lines[start:])


# ----------------------------------------------------------------------------- rows and times

def test_rows_carry_phase_and_module_path_forward_backward_and_optimizer():
    model, x, y = _resnet()
    optimizer = rg.optim.SGD(model.parameters(), lr=0.1)
    with profile() as prof:
        _train_step(model, optimizer, x, y)
    rows = prof.key_averages(group_by_module=True)
    keys = {(r.key, r.phase, r.module) for r in rows}
    assert ("Conv2d", "forward", "layers.1.0.conv2") in keys
    assert ("Conv2dBackward", "backward", "layers.1.0.conv2") in keys
    assert ("Conv2dBackward", "backward", "layers.1.0.downsample.0") in keys
    assert ("SGD.step", "optimizer", None) in keys
    overhead = {r.phase for r in rows if r.key == OVERHEAD}
    assert overhead == {"forward", "backward", "optimizer"}
    convs = [r for r in rows if r.key == "Conv2d"]
    assert len(convs) == 9 and all(r.count == 1 for r in convs)   # one row per conv layer


def test_self_times_add_up_to_the_wall_time_and_a_range_has_no_self_time():
    model, x, y = _resnet(batch=4, size=32)   # kernels long beside the profiler's own time
    optimizer = rg.optim.SGD(model.parameters(), lr=0.1)
    _train_step(model, optimizer, x, y)   # unprofiled: the profiled step runs warm
    gc.collect()
    with profile() as prof:
        begun = time.perf_counter_ns()
        with record_function("train_step"):
            _train_step(model, optimizer, x, y)
        ended = time.perf_counter_ns()
    rows = prof.key_averages()
    assert rows.wall_us == prof.wall_us > 0
    # the profiler's own time (its callbacks: a few %) is excluded from every row: the sum
    # is a little short of the wall time, never over it
    assert 0.9 * prof.wall_us <= rows.self_cpu_time_total <= prof.wall_us
    assert all(r.cpu_time_total >= r.self_cpu_time_total >= 0 for r in rows)
    (step,) = [r for r in rows if r.key == "train_step"]
    assert step.phase == "user" and step.count == 1
    assert step.self_cpu_time_total == 0
    measured_us = (ended - begun) / 1e3
    assert 0.9 * measured_us <= step.cpu_time_total <= measured_us
    assert step.cpu_time_total >= sum(r.self_cpu_time_total for r in rows
                                      if r.key not in ("train_step", OVERHEAD))


def test_flops_equal_the_flop_counter_per_module_op_and_phase():
    model, x, y = _resnet()
    with profile() as prof:
        _train_step(model, None, x, y)
    model, x, y = _resnet()
    with FlopCounter() as counter:
        _train_step(model, None, x, y)
    rows = prof.key_averages(group_by_module=True)
    profiled = {}
    for r in rows:
        if r.flops and not r.uncosted:
            op = r.key[:-len("Backward")] if r.phase == "backward" else r.key
            profiled[(r.module, op, r.phase)] = r.flops
    counted = {key: row[1] for key, row in counter.counts.items() if row[1]}
    assert profiled == counted
    for phase in ("forward", "backward"):
        assert sum(r.flops for r in rows if r.phase == phase) == counter.total_flops(phase) > 0
    assert ("layers.1.0.conv2", "Conv2d", "backward") in profiled
    uncosted = {r.key for r in rows if r.uncosted and r.phase == "forward"}
    assert uncosted == set(counter.uncounted)


def test_gradients_are_identical_with_and_without_the_profiler():
    results = []
    for profiled in (False, True):
        model, x, y = _resnet(seed=3)
        optimizer = rg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        if profiled:
            with profile(profile_memory=True, record_shapes=True):
                loss = _train_step(model, None, x, y)
        else:
            loss = _train_step(model, None, x, y)
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        optimizer.step()
        params = [p.detach().numpy().copy() for p in model.parameters()]
        results.append((loss.item(), grads, params))
    (loss0, grads0, params0), (loss1, grads1, params1) = results
    assert loss0 == loss1
    assert len(grads0) == len(grads1) > 0
    assert all(np.array_equal(a, b) for a, b in zip(grads0, grads1))
    assert all(np.array_equal(a, b) for a, b in zip(params0, params1))


# ----------------------------------------------------------------------------- the table

def _small_profile():
    model, x = _mlp(), rg.randn(4, 8)
    with profile(profile_memory=True) as prof:
        for _ in range(2):
            model(x).sum().backward()
    return prof


@pytest.mark.parametrize("key", sorted(SORT_KEYS))
def test_each_sort_key_sorts_the_table_descending(key):
    rows = _small_profile().key_averages()
    ordered = sorted_rows(rows, key)
    values = [getattr(r, SORT_KEYS[key]) for r in ordered]
    assert len(set(values)) > 1   # the order is not a tie
    assert values == sorted(values, reverse=True)
    shown = _table_rows(rows.table(sort_by=key, row_limit=-1))
    assert [(cells[0], cells[1]) for cells in shown] == [(r.key, r.phase) for r in ordered]


def test_unknown_sort_keys_are_errors_that_list_the_valid_ones():
    rows = _small_profile().key_averages()
    with pytest.raises(ValueError, match="unknown sort_by key 'speed'") as info:
        rows.table(sort_by="speed")
    assert all(key in str(info.value) for key in SORT_KEYS)
    with pytest.raises(ValueError, match="CPU"):
        rows.table(sort_by="cuda_time_total")


def test_row_limit_hides_rows_and_the_footer_counts_them():
    rows = _small_profile().key_averages()
    assert len(rows) > 3
    table = rows.table(sort_by="self_cpu_time_total", row_limit=3)
    assert len(_table_rows(table)) == 3
    assert f"({len(rows) - 3} more rows: raise row_limit to see them)" in _footer(table)
    everything = rows.table(row_limit=-1)
    assert len(_table_rows(everything)) == len(rows) and "more rows" not in everything


# ----------------------------------------------------------------------------- bad input

def test_a_block_that_raises_reraises_and_keeps_the_partial_profile():
    model, x = _mlp(), rg.randn(4, 8)
    error = KeyError("boom")
    with pytest.raises(KeyError) as info:
        with profile() as prof:
            model(x).sum().backward()
            model(x)
            raise error
    assert info.value is error
    rows = prof.key_averages(group_by_module=True)
    linear = sorted((r.key, r.module, r.count) for r in rows if r.key.startswith("Linear"))
    assert linear == [("Linear", "0", 2), ("Linear", "2", 2),
                      ("LinearBackward", "0", 1), ("LinearBackward", "2", 1)]
    assert "Partial profile: the profiled block raised KeyError: 'boom'" in _footer(rows.table())
    assert STATE.observers == () and profiler_module._ACTIVE is None


def test_a_range_left_open_is_an_error_naming_it():
    x = rg.randn(4, 8)
    dangling = record_function("dangling_range")
    with pytest.raises(RuntimeError, match="dangling_range.*never exited"):
        with profile():
            dangling.__enter__()
            x.exp()
    assert STATE.observers == () and profiler_module._ACTIVE is None
    with profile() as prof:   # a new profile runs as usual
        x.exp()
    assert [r.key for r in prof.key_averages() if r.key != OVERHEAD] == ["Exp"]


def test_nested_profilers_are_an_error_and_the_outer_one_survives():
    x = rg.randn(4, 8)
    with pytest.raises(RuntimeError, match="another profiler is already running"):
        with profile() as outer:
            x.exp()
            with profile():
                pass
    assert STATE.observers == () and profiler_module._ACTIVE is None
    assert [r.key for r in outer.key_averages() if r.key != OVERHEAD] == ["Exp"]
    assert outer.partial.startswith("RuntimeError")


@pytest.mark.parametrize("kwargs", [dict(activities=[ProfilerActivity.CUDA]),
                                    dict(activities=[ProfilerActivity.CPU,
                                                     ProfilerActivity.CUDA]),
                                    dict(use_cuda=True)])
def test_cuda_is_a_clear_error(kwargs):
    with pytest.raises(ValueError, match="CPU only"):
        profile(**kwargs)
    assert STATE.observers == ()


def test_grouping_by_input_shape_needs_record_shapes():
    layer, x = rg.nn.Linear(8, 3), rg.randn(4, 8)
    with profile() as prof:
        layer(x)
    with pytest.raises(ValueError, match="record_shapes=True"):
        prof.key_averages(group_by_input_shape=True)
    with profile(record_shapes=True) as prof:
        layer(x)
        layer(rg.randn(2, 8))
    shapes = [r.input_shapes for r in prof.key_averages(group_by_input_shape=True)
              if r.key == "Linear"]
    assert shapes == [[[4, 8], [3, 8], [3]], [[2, 8], [3, 8], [3]]]


@pytest.mark.parametrize("where", ["under_a_file", "missing_directory"])
def test_a_trace_that_cannot_be_written_is_an_error_naming_the_path(tmp_path, where):
    root = tmp_path / "out"
    root.mkdir()
    (root / "file").write_text("not a directory")
    path = root / ("file" if where == "under_a_file" else "missing") / "trace.json"
    with profile() as prof:
        rg.randn(4, 8).exp()
    with pytest.raises(OSError) as info:
        prof.export_chrome_trace(path)
    assert str(info.value).count(repr(str(path))) == 1   # named once, clearly
    assert [p.name for p in root.iterdir()] == ["file"]   # nothing left behind
    assert (root / "file").read_text() == "not a directory"


def test_a_backward_profiled_apart_from_its_forward():
    layer, x = rg.nn.Linear(8, 3), rg.randn(4, 8)
    with profile():
        y1 = layer(x)
        loss = (y1 * 2.0).sum()
        for _ in range(5):
            layer(x)    # the recording that made the graph holds more events than the next
    with profile() as prof:
        loss.backward()
    rows = [(e.name, e.phase, e.forward_id) for e in prof.events() if e.name != OVERHEAD]
    assert rows == [("SumBackward", "backward", None), ("MulBackward", "backward", None),
                    ("LinearBackward", "backward", None)]
    expected = np.repeat(2.0 * x.numpy().sum(0, keepdims=True), 3, axis=0)
    assert np.allclose(layer.weight.grad.numpy(), expected, rtol=1e-6)


# ----------------------------------------------------------------------------- schedules

@pytest.mark.parametrize("params", [
    dict(wait=1, warmup=1, active=2),
    dict(wait=0, warmup=0, active=1),
    dict(wait=2, warmup=1, active=3, repeat=2, skip_first=1),
    dict(wait=1, warmup=0, active=2, repeat=1, skip_first=3),
    dict(wait=0, warmup=2, active=1, repeat=3),
    dict(wait=3, warmup=2, active=4, repeat=0, skip_first=5),
])
def test_schedule_acts_as_torch_profiler_schedule(params):
    torch_profiler = pytest.importorskip("torch.profiler")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # torch warns when warmup=0
        theirs = torch_profiler.schedule(**params)
    ours = schedule(**params)
    assert [ours(i).name for i in range(20)] == [theirs(i).name for i in range(20)]


def _scheduled_steps(prof, steps, layer, x):
    for i in range(steps):
        with record_function(f"step{i}"):
            layer(x).sum().backward()
        prof.step()


def _ranges(prof):
    return sorted(e.name for e in prof.events() if e.phase == "user")


def test_on_trace_ready_runs_once_per_cycle_with_that_cycles_active_steps():
    layer, x = rg.nn.Linear(8, 3), rg.randn(4, 8)
    seen = []

    def handler(prof):
        linear = [r.count for r in prof.key_averages() if r.key == "Linear"]
        seen.append((prof.step_num, _ranges(prof), linear))

    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=2),
                 on_trace_ready=handler) as prof:
        _scheduled_steps(prof, 10, layer, x)
    assert seen == [(4, ["step2", "step3"], [2]), (8, ["step6", "step7"], [2])]
    assert _ranges(prof) == ["step6", "step7"]   # after the block: the last cycle, as torch
    assert STATE.observers == ()


def test_a_block_ending_in_warm_up_keeps_no_warm_up_events():
    layer, x = rg.nn.Linear(8, 3), rg.randn(4, 8)
    with profile(schedule=schedule(wait=0, warmup=2, active=1)) as prof:
        _scheduled_steps(prof, 1, layer, x)
    assert prof.events() == [] and prof.wall_us == 0


def test_a_schedule_that_stops_recording_stops_the_recorder():
    layer, x = rg.nn.Linear(8, 3), rg.randn(4, 8)

    def first_two(step):
        return ProfilerAction.RECORD if step < 2 else ProfilerAction.NONE

    with profile(schedule=first_two) as prof:
        _scheduled_steps(prof, 2, layer, x)
        assert STATE.observers == ()   # inside the block, after the recorded steps
        _scheduled_steps(prof, 2, layer, x)
    assert _ranges(prof) == ["step0", "step1"]


def test_step_after_the_block_does_not_start_recording():
    with profile(schedule=schedule(wait=1, warmup=0, active=1)) as prof:
        pass
    prof.step()
    assert STATE.observers == () and profiler_module._ACTIVE is None


# ----------------------------------------------------------------------------- uncosted ops, off

def test_a_users_function_without_a_cost_profiles_with_unknown_flops():
    x = rg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with profile() as prof:
        (Cube.apply(x) * 2.0).sum().backward()
    assert np.array_equal(x.grad.numpy(), np.float32([6.0, 24.0, 54.0]))
    rows = prof.key_averages()
    table = rows.table(row_limit=-1)
    cube = {cells[0]: cells for cells in _table_rows(table) if cells[0].startswith("Cube")}
    assert set(cube) == {"Cube", "CubeBackward"}
    assert all(cells[7] == "?" for cells in cube.values())   # the FLOPs column
    unknown = next(line for line in _footer(table).splitlines() if "FLOPs unknown" in line)
    assert "Cube," in unknown and "CubeBackward" in unknown
    mul = {r.phase: r.flops for r in rows if r.key.startswith("Mul")}
    assert mul == {"forward": 3, "backward": 3} and not any(r.uncosted for r in rows
                                                             if r.key.startswith("Mul"))
    x.grad = None
    with FlopCounter() as counter:
        (Cube.apply(x) * 2.0).sum().backward()
    assert counter.uncounted["Cube"] == 1 and "Cube" not in counter.by_op()


def test_with_the_profiler_off_ops_run_their_own_class():
    layer, x = rg.nn.Linear(8, 3), rg.randn(4, 8, requires_grad=True)
    with profile():
        assert STATE.observers != ()
        profiled = (layer(x), Cube.apply(x))
    assert [type(t.grad_fn).__name__ for t in profiled] == ["Linear", "Cube"]
    assert type(profiled[0].grad_fn) is not Linear and isinstance(profiled[0].grad_fn, Linear)
    assert type(profiled[1].grad_fn) is not Cube and isinstance(profiled[1].grad_fn, Cube)
    assert STATE.observers == () and STATE.backward_observers == ()
    assert profiler_module._ACTIVE is None
    assert type(layer(x).grad_fn) is Linear and type(Cube.apply(x).grad_fn) is Cube


def test_with_flops_false_leaves_the_flop_columns_out():
    layer = rg.nn.Linear(8, 4)
    x = rg.randn(2, 8, requires_grad=True)
    tables = {}
    for with_flops in (True, False):
        with profile(with_flops=with_flops) as prof:
            layer(x).sum().backward()
        tables[with_flops] = prof.key_averages().table()
    assert "GFLOP/s" in tables[True] and "Roofline %" in tables[True]
    assert "FLOPs" not in tables[False] and "Roofline" not in tables[False]
    assert "LinearBackward" in tables[False]
