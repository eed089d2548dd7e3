"""save/load: safetensors state dicts, nested checkpoints, atomic writes, damaged files.

Interoperability is checked against the safetensors package (its torch and NumPy readers and
writers); atomicity by killing a writer process with SIGKILL at random moments.
"""

import io
import json
import math
import os
import pickle
import random
import re
import signal
import struct
import subprocess
import sys
import zipfile
from collections import Counter, OrderedDict

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
import safetensors.torch
import torch
from safetensors import safe_open

import retrograd as rg
from retrograd.tensor import Tensor, make_tensor
from retrograd.utils import serialization
from retrograd.utils.serialization import load, load_checkpoint, save, save_checkpoint
from tests.utils import _kill_writer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEMPORARY = re.compile(r"\.ckpt\.safetensors\.[0-9a-f]{8}\.tmp")

DTYPES = [  # (NumPy dtype, torch dtype)
    (np.dtype(np.float16), torch.float16), (np.dtype(ml_dtypes.bfloat16), torch.bfloat16),
    (np.dtype(np.float32), torch.float32), (np.dtype(np.float64), torch.float64),
    (np.dtype(np.int8), torch.int8), (np.dtype(np.int16), torch.int16),
    (np.dtype(np.int32), torch.int32), (np.dtype(np.int64), torch.int64),
    (np.dtype(np.uint8), torch.uint8), (np.dtype(np.bool_), torch.bool),
]
DTYPE_IDS = [str(d) for d, _ in DTYPES]
SHAPES = [(2, 3), (), (0,), (3, 0, 2), (1, 1, 4)]


def sample(dtype, shape, seed=0):
    """Random values of any dtype (not all equal, so that a mix-up shows)."""
    values = np.asarray(np.random.default_rng(seed).standard_normal(shape) * 50)
    if dtype == np.bool_:
        return np.asarray(values > 0)
    return values.astype(dtype)


def bits(array):
    """The raw bytes of an array in C order, for bit-exact comparison (nan == nan)."""
    array = np.asarray(array)
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).tobytes()


def torch_to_numpy(t):
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def assert_same(got, expected, where="root"):
    """Strict structural equality: same types (tuple vs list, int vs float, Tensor vs array,
    int vs str keys, key order), bit-identical floats and array contents."""
    assert type(got) is type(expected), f"{where}: {type(got)} != {type(expected)}"
    if isinstance(expected, dict):
        assert [(type(k), k) for k in got] == [(type(k), k) for k in expected], where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_same(g, e, f"{where}/{i}")
    elif isinstance(expected, float):
        assert struct.pack("<d", got) == struct.pack("<d", expected), where
    elif isinstance(expected, Tensor):
        assert got.requires_grad == expected.requires_grad, where
        assert_same(got._data, expected._data, where)
    elif isinstance(expected, (np.ndarray, np.generic)):
        assert got.dtype == expected.dtype and got.shape == expected.shape, where
        assert bits(got) == bits(expected), where
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"


def roundtrip(obj, tmp_path, name="ckpt.safetensors"):
    path = tmp_path / name
    save(obj, path)
    return load(path)


def float_from_bits(value):
    return struct.unpack("<d", struct.pack("<Q", value))[0]


# ---------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [d for d, _ in DTYPES], ids=DTYPE_IDS)
def test_every_dtype_and_shape_round_trips(tmp_path, dtype, shape):
    state = {"x": make_tensor(sample(dtype, shape)), "y": make_tensor(sample(dtype, shape, 1))}
    loaded = roundtrip(state, tmp_path)
    assert_same(loaded, state)
    assert loaded["x"].dtype == dtype and loaded["x"]._data.flags.writeable


NON_CONTIGUOUS = {
    "transposed": lambda a: a.T,
    "strided": lambda a: a[:, ::2],
    "reversed": lambda a: a[::-1],
    "broadcast (stride 0)": lambda a: np.broadcast_to(a[:1], (5, 6)),
}


@pytest.mark.parametrize("make_view", NON_CONTIGUOUS.values(), ids=NON_CONTIGUOUS.keys())
@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16, np.int64], ids=str)
def test_non_contiguous_tensors_are_saved_by_value(tmp_path, make_view, dtype):
    view = make_view(sample(np.dtype(dtype), (5, 6)))
    assert not view.flags.c_contiguous
    save({"v": make_tensor(view)}, tmp_path / "v.safetensors")
    assert bits(load(tmp_path / "v.safetensors")["v"]._data) == bits(view)
    theirs = safetensors.torch.load_file(str(tmp_path / "v.safetensors"))["v"]
    assert bits(torch_to_numpy(theirs)) == bits(view)


def test_big_endian_arrays_are_stored_little_endian(tmp_path):
    big = np.arange(6, dtype=">i4").reshape(2, 3)
    loaded = roundtrip({"a": big}, tmp_path)["a"]
    np.testing.assert_array_equal(loaded, big)
    assert loaded.dtype == np.int32
    np.testing.assert_array_equal(
        safetensors.numpy.load_file(str(tmp_path / "ckpt.safetensors"))["a"], big)


# ---------------------------------------------------------------------------------- interop
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype, torch_dtype", DTYPES, ids=DTYPE_IDS)
def test_torch_safetensors_reads_our_file(tmp_path, dtype, torch_dtype, shape):
    arrays = {"layer.weight": sample(dtype, shape), "layer.bias": sample(dtype, shape, 1)}
    save({k: make_tensor(v) for k, v in arrays.items()}, tmp_path / "w.safetensors")
    theirs = safetensors.torch.load_file(str(tmp_path / "w.safetensors"))
    assert sorted(theirs) == sorted(arrays)
    for name, array in arrays.items():
        assert theirs[name].dtype == torch_dtype and tuple(theirs[name].shape) == shape
        assert bits(torch_to_numpy(theirs[name])) == bits(array)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype, torch_dtype", DTYPES, ids=DTYPE_IDS)
def test_we_read_a_torch_safetensors_file(tmp_path, dtype, torch_dtype, shape):
    arrays = {"b": sample(dtype, shape), "a": sample(dtype, shape, 1)}
    path = str(tmp_path / "t.safetensors")
    tensors = {k: torch.from_numpy(v.view(np.int16)).view(torch.bfloat16) if
               dtype == ml_dtypes.bfloat16 else torch.from_numpy(v) for k, v in arrays.items()}
    safetensors.torch.save_file(tensors, path, metadata={"format": "pt"})
    loaded = load(path)
    assert sorted(loaded) == ["a", "b"]
    for name, array in arrays.items():
        assert isinstance(loaded[name], Tensor)
        assert_same(loaded[name]._data, array)


def test_numpy_safetensors_reads_and_writes_our_format(tmp_path):
    arrays = {str(d): sample(d, (3, 2)) for d, _ in DTYPES if d != ml_dtypes.bfloat16}
    save({k: make_tensor(v) for k, v in arrays.items()}, tmp_path / "ours.safetensors")
    theirs = safetensors.numpy.load_file(str(tmp_path / "ours.safetensors"))
    for name, array in arrays.items():
        assert_same(theirs[name], array, name)
    safetensors.numpy.save_file(arrays, str(tmp_path / "theirs.safetensors"))
    loaded = load(tmp_path / "theirs.safetensors")
    for name, array in arrays.items():
        assert_same(loaded[name]._data, array, name)


def test_torch_model_loads_our_state_dict(tmp_path):
    model = rg.nn.Linear(4, 3)
    save(model.state_dict(), tmp_path / "linear.safetensors")
    reference = torch.nn.Linear(4, 3)
    reference.load_state_dict(safetensors.torch.load_file(str(tmp_path / "linear.safetensors")))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(model(rg.tensor(x)).detach().numpy(), expected, rtol=1e-6)


def test_file_layout_is_aligned_and_tagged(tmp_path):
    state = {"h": make_tensor(sample(np.dtype(np.float16), (3,))),
             "d": make_tensor(sample(np.dtype(np.float64), (3,))),
             "m": make_tensor(sample(np.dtype(np.bool_), (5,))),
             "f": make_tensor(sample(np.dtype(np.float32), (1,)))}
    path = tmp_path / "aligned.safetensors"
    save(state, path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0 and list(header) == ["__metadata__", "h", "d", "m", "f"]
    for name, entry in header.items():
        if name != "__metadata__":
            assert (8 + n + entry["data_offsets"][0]) % state[name].itemsize == 0, name
    with safe_open(str(path), "np") as f:
        assert f.metadata()["format"] == "pt"


# ---------------------------------------------------------------------------------- structures
SPECIAL_FLOATS = [0.1, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -2.5e-308, math.inf, -math.inf,
                  math.nan, -math.nan, float_from_bits(0x7FF0000000000001),
                  float_from_bits(0xFFF8DEADBEEF0001), 1 / 3]
BIG_INTS = [0, -1, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 2 ** 63, -(2 ** 63) - 1, 2 ** 128 + 7,
            2 ** 20000 + 1, -(3 ** 9000)]


def training_checkpoint():
    model = rg.nn.Linear(3, 2)
    bit_generator = np.random.PCG64(12345)
    bit_generator.advance(10 ** 6)
    return {
        "model": dict(model.state_dict()),
        "optimizer": {
            "state": {0: {"exp_avg": rg.randn(2, 3), "exp_avg_sq": rg.rand(2, 3), "step": 3},
                      1: {"exp_avg": rg.randn(2), "step": 3}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "eps": 1e-8,
                              "weight_decay": 0.0, "amsgrad": False, "params": [0, 1]}],
        },
        "rng": bit_generator.state,
        "epoch": 3,
        "history": {"loss": [2.3, 1.1, float("nan")], "best": None, "note": "résumé ✓ \n\"q\""},
        "data": {"order": np.random.default_rng(0).permutation(10), "seen": np.zeros(0, bool)},
        "shape": (2, (3, []), ()),
        "mixed keys": {1: "one", "1": "string one", -5: [], 2 ** 70: "big key"},
        "floats": SPECIAL_FLOATS,
        "ints": BIG_INTS,
        "scalars": [np.float32(1.5), np.int64(-7), np.bool_(True), np.float64(0.25),
                    np.uint8(200)],
        "empty": [{}, [], (), ""],
    }


def test_nested_checkpoint_round_trips_exactly(tmp_path):
    checkpoint = training_checkpoint()
    assert_same(roundtrip(checkpoint, tmp_path), checkpoint)


def test_assert_same_is_strict():
    """The comparator behind the round-trip tests must tell these apart."""
    pairs = [((1, 2), [1, 2]), ({1: 0}, {"1": 0}), (1, 1.0), (True, 1), (math.nan, -math.nan),
             (0.0, -0.0), (np.zeros(2), rg.zeros(2)), (np.float32(1), np.float64(1)),
             ({"a": 1, "b": 2}, {"b": 2, "a": 1})]
    for got, expected in pairs:
        with pytest.raises(AssertionError):
            assert_same(got, expected)


def test_tensor_entries_are_named_by_key_path(tmp_path):
    save(training_checkpoint(), tmp_path / "ckpt.safetensors")
    with safe_open(str(tmp_path / "ckpt.safetensors"), "np") as f:
        names = set(f.keys())
    assert {"model/weight", "model/bias", "optimizer/state/0/exp_avg",
            "optimizer/state/1/exp_avg", "data/order", "scalars/0"} <= names


@pytest.mark.parametrize("obj", [
    {"a/b": rg.ones(1), "a": {"b": rg.zeros(1)}},
    {"__metadata__": rg.ones(2), "x": {"": rg.zeros(1), "tensor": rg.ones(3)}},
    {"": rg.zeros(1), "tensor": rg.ones(1), "tensor~2": rg.full((1,), 2.0)},
], ids=["path collision", "reserved name", "default name collision"])
def test_colliding_entry_names_stay_distinct(tmp_path, obj):
    assert_same(roundtrip(obj, tmp_path), obj)


@pytest.mark.parametrize("obj", [
    rg.randn(3, 2), np.arange(4), np.float32(2.0), [rg.ones(2), 3], (), {}, "text", None, 7,
    math.nan,
], ids=lambda o: type(o).__name__)
def test_any_supported_value_at_the_top_level(tmp_path, obj):
    assert_same(roundtrip(obj, tmp_path), obj)


def test_requires_grad_round_trips(tmp_path):
    obj = {"w": rg.randn(2, requires_grad=True), "frozen": rg.randn(2),
           "p": rg.nn.Parameter(rg.ones(2))}
    loaded = roundtrip(obj, tmp_path)
    assert loaded["w"].requires_grad and loaded["w"].is_leaf
    assert not loaded["frozen"].requires_grad
    assert type(loaded["p"]) is Tensor and loaded["p"].requires_grad


def test_rng_state_resumes_the_stream(tmp_path):
    rg.manual_seed(7)
    rg.randn(3)
    save({"rng": rg.get_rng_state()}, tmp_path / "rng.safetensors")
    expected = rg.randn(5).numpy().copy()
    rg.manual_seed(99)
    rg.set_rng_state(load(tmp_path / "rng.safetensors")["rng"])
    np.testing.assert_array_equal(rg.randn(5).numpy(), expected)


def test_unsigned_arrays_round_trip_but_do_not_become_tensors(tmp_path):
    obj = {"u16": np.arange(3, dtype=np.uint16), "u64": np.array([2 ** 64 - 1], np.uint64)}
    assert_same(roundtrip(obj, tmp_path), obj)
    with pytest.raises(TypeError, match="unsupported dtype"):
        rg.tensor(obj["u64"])


def test_module_state_dict_round_trips_into_a_new_model(tmp_path):
    def make_model():
        return rg.nn.Sequential(rg.nn.Linear(4, 8), rg.nn.Linear(8, 2, bias=False))
    model = make_model()
    save(model.state_dict(), tmp_path / "model.safetensors")
    other = make_model()
    assert not np.array_equal(other[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    other.load_state_dict(load(tmp_path / "model.safetensors"))
    assert_same(dict(other.state_dict()), dict(model.state_dict()))


# ---------------------------------------------------------------------------------- checkpoints
class FakeOptimizer:
    """Stands in for an optimizer: a state dict with int keys and tuples."""

    def __init__(self, step=0):
        self.state = {0: {"step": step, "exp_avg": rg.ones(2) * step}}
        self.betas = (0.9, 0.999)

    def state_dict(self):
        return {"state": self.state, "param_groups": [{"betas": self.betas, "params": [0]}]}

    def load_state_dict(self, state_dict):
        self.state = state_dict["state"]
        self.betas = state_dict["param_groups"][0]["betas"]


def test_save_checkpoint_and_load_into_objects(tmp_path):
    model, optimizer = rg.nn.Linear(3, 2), FakeOptimizer(step=5)
    path = tmp_path / "run.safetensors"
    rng_state = rg.get_rng_state()
    save_checkpoint(path, model=model, optimizer=optimizer, epoch=2, rng=rng_state)
    new_model, new_optimizer = rg.nn.Linear(3, 2), FakeOptimizer()
    checkpoint = load_checkpoint(path, model=new_model, optimizer=new_optimizer)
    assert checkpoint["epoch"] == 2 and checkpoint["rng"] == rng_state
    assert_same(dict(new_model.state_dict()), dict(model.state_dict()))
    assert_same(new_optimizer.state_dict(), optimizer.state_dict())


def test_load_checkpoint_errors(tmp_path):
    save_checkpoint(tmp_path / "run.safetensors", epoch=1)
    with pytest.raises(KeyError, match=r"no part \['model'\]; its parts are \['epoch'\]"):
        load_checkpoint(tmp_path / "run.safetensors", model=rg.nn.Linear(1, 1))
    save([1, 2], tmp_path / "list.safetensors")
    with pytest.raises(ValueError, match="list.safetensors' holds a list, not a checkpoint"):
        load_checkpoint(tmp_path / "list.safetensors")


# ---------------------------------------------------------------------------------- save errors
def cyclic():
    d = {"a": [1]}
    d["a"].append(d)
    return d


class Unpicklable:
    def __reduce__(self):
        raise TypeError("this object refuses to be pickled")


class ModelWithLambda(rg.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = rg.nn.Linear(1, 1)
        self.activation = lambda x: x


BAD_OBJECTS = [
    ({"a": [lambda x: x]}, TypeError, "type function at key path a/0: .* pickling it failed"),
    ({"g": (i for i in range(2))}, TypeError, "type generator at key path g"),
    ({"u": Unpicklable()}, TypeError, r"pickling it failed \(TypeError: this object refuses"),
    (ModelWithLambda(), TypeError, r"ModelWithLambda at the top level: .* save its state_dict"),
    ({object(): 0}, TypeError, "dict keys must be .* got the object key"),
    ({"k": {frozenset([1]): 0}}, TypeError, r"got the frozenset key frozenset\(\{1\}\) at "
                                            "key path k"),
    (cyclic(), ValueError, "contains itself at key path a/1"),
]


@pytest.mark.parametrize("obj, error, message", BAD_OBJECTS,
                         ids=[m.split(" at")[0] for _, _, m in BAD_OBJECTS])
def test_unsaveable_values_raise_and_leave_the_old_file(tmp_path, obj, error, message):
    path = tmp_path / "ckpt.safetensors"
    save({"old": rg.ones(2)}, path)
    before = path.read_bytes()
    with pytest.raises(error, match=message):
        save(obj, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_same_object_twice_is_not_a_cycle(tmp_path):
    shared = [1, 2]
    obj = {"a": shared, "b": shared}
    assert_same(roundtrip(obj, tmp_path), {"a": [1, 2], "b": [1, 2]})


def test_save_into_a_missing_directory_or_onto_a_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory .*nowhere.* does not exist"):
        save({}, tmp_path / "nowhere" / "x.safetensors")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        save({}, tmp_path)


# ---------------------------------------------------------------------------------- atomicity
def failing_write(exception):
    def write(f, header, order, entries):
        f.write(b"partial garbage")
        raise exception
    return write


@pytest.mark.parametrize("exception", [OSError(28, "No space left on device"),
                                       KeyboardInterrupt()], ids=["disk full", "interrupt"])
def test_failed_write_leaves_old_file_and_no_temporary(tmp_path, monkeypatch, exception):
    path = tmp_path / "ckpt.safetensors"
    save({"old": rg.ones(2)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(serialization, "_write_payload", failing_write(exception))
    with pytest.raises(type(exception)):
        save({"new": rg.zeros(2)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_failed_rename_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save({"old": rg.ones(2)}, path)
    before = path.read_bytes()

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError):
        save({"new": rg.zeros(2)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


def test_write_goes_through_a_synced_temporary_beside_the_target(tmp_path, monkeypatch):
    calls = []
    real_replace, real_fsync = os.replace, os.fsync

    def replace(src, dst):
        calls.append(("replace", src, dst, os.path.getsize(src)))
        real_replace(src, dst)

    def fsync(fd):
        calls.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}")))
        real_fsync(fd)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "ckpt.safetensors"
    save({"w": rg.ones(1000)}, path)
    (file_sync, rename, dir_sync) = calls
    assert file_sync == ("fsync", False) and dir_sync == ("fsync", True)
    _, src, dst, size = rename
    assert os.path.dirname(src) == str(tmp_path) and dst == str(path)
    assert TEMPORARY.fullmatch(os.path.basename(src))
    assert size == path.stat().st_size > 4000


def test_new_file_permissions_follow_the_umask(tmp_path):
    umask = os.umask(0o022)
    try:
        save({}, tmp_path / "ckpt.safetensors")
    finally:
        os.umask(umask)
    assert (tmp_path / "ckpt.safetensors").stat().st_mode & 0o777 == 0o644


def read_lines(proc, until, between=None):
    """Lines from the writer up to and including the first that starts with ``until``;
    ``between()`` runs after each line."""
    lines = []
    while not lines or not lines[-1].startswith(until):
        line = proc.stdout.readline()
        assert line, f"writer exited early: {lines}"
        lines.append(line.strip())
        if between is not None:
            between()
    return lines


def last_version(lines, word):
    versions = [int(line.split()[1]) for line in lines if line.startswith(word)]
    return versions[-1] if versions else None


def start_writer(path, first_version, saves, pause_at):
    """tests/utils/_kill_writer.py in its own process, pausing mid-write after ``saves``
    complete saves, at ``pause_at`` bytes."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.utils._kill_writer", str(path), str(first_version),
         str(saves), str(pause_at)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True)


def stop(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    proc.stdin.close()
    proc.stdout.close()


def strays(path):
    return sorted(name for name in os.listdir(path.parent) if name != path.name)


def assert_whole(path):
    """The file at path is one complete version; returns it."""
    loaded = load(path)
    assert_same(loaded, _kill_writer.checkpoint(loaded["version"]))
    return loaded["version"]


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_writer_killed_mid_write_leaves_the_old_file_and_the_next_save_its_temporary(tmp_path):
    # The writer says when it is mid-write (from inside its write, at a byte offset drawn here)
    # and waits there: the kill lands mid-write every time, on a loaded machine too.
    path = tmp_path / "ckpt.safetensors"
    save(_kill_writer.checkpoint(-1), path)
    size = path.stat().st_size
    current, rng = -1, random.Random(20240611)
    for round_number in range(4):
        pause_at = rng.choice([0, 8, rng.randrange(9, size), size - 1])
        proc = start_writer(path, 1000 * (round_number + 1), rng.randrange(3), pause_at)
        try:
            # a reader racing the writer sees whole files only
            lines = read_lines(proc, "mid", between=lambda: assert_whole(path))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            stop(proc)
        assert proc.returncode == -signal.SIGKILL
        finished = last_version(lines, "end")
        assert assert_whole(path) == (current if finished is None else finished), lines[-4:]
        current = load(path)["version"]
        # the writer's first save removed the previous round's stray: one left, its own
        (stray,) = strays(path)
        assert TEMPORARY.fullmatch(stray) and (tmp_path / stray).stat().st_size == pause_at
    save(_kill_writer.checkpoint(7), path)
    assert strays(path) == [] and assert_whole(path) == 7


@pytest.mark.skipif(os.name != "posix", reason="advisory locks are POSIX")
def test_a_save_never_removes_the_temporary_of_a_live_writer(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    proc = start_writer(path, 1, 0, 1000)
    try:
        read_lines(proc, "mid 1")
        (temporary,) = strays(path)
        save(_kill_writer.checkpoint(2), path)   # another process saves the same path meanwhile
        assert strays(path) == [temporary] and assert_whole(path) == 2
        proc.stdin.write("go on\n")
        proc.stdin.flush()
        read_lines(proc, "end 1")
        assert proc.wait() == 0
    finally:
        stop(proc)
    assert strays(path) == [] and assert_whole(path) == 1   # the last rename wins, whole


@pytest.mark.skipif(os.name != "posix", reason="advisory locks are POSIX")
def test_the_next_save_removes_only_stale_temporaries_of_the_same_target(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    stale = [".ckpt.safetensors.0badc0de.tmp", ".ckpt.safetensors.12345678.tmp"]
    kept = [".other.safetensors.0badc0de.tmp",       # another target's
            ".ckpt.safetensors.0BADC0DE.tmp",        # not a name this module makes
            ".ckpt.safetensors.0badc0de.tmp.bak", "ckpt.safetensors.0badc0de.tmp",
            ".ckpt.safetensors.0badc0d.tmp", ".ckpt.safetensors.0badc0de.tmp~",
            "x.ckpt.safetensors.0badc0de.tmp"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    (tmp_path / ".ckpt.safetensors.d1d1d1d1.tmp").mkdir()          # not a regular file
    os.symlink(tmp_path / kept[0], tmp_path / ".ckpt.safetensors.5a5a5a5a.tmp")  # nor a link
    live = tmp_path / ".ckpt.safetensors.aaaaaaaa.tmp"   # locked, as a live writer's is
    live.write_bytes(b"being written")
    with open(live, "rb+") as f:
        serialization._flock(f.fileno(), serialization.LOCK_EX)
        save({"w": rg.ones(2)}, path)
        assert live.exists()
    expected = sorted(kept + [path.name, live.name, ".ckpt.safetensors.d1d1d1d1.tmp",
                              ".ckpt.safetensors.5a5a5a5a.tmp"])
    assert sorted(os.listdir(tmp_path)) == expected
    assert (tmp_path / kept[0]).read_bytes() == b"half a checkpoint"
    save({"w": rg.ones(2)}, path)   # once its writer is gone, it is stale too
    assert not live.exists()


@pytest.mark.skipif(os.name != "posix", reason="advisory locks are POSIX")
def test_a_temporary_removed_before_its_writer_locked_it_is_replaced(tmp_path, monkeypatch):
    # the race the lock alone cannot close: a cleaner takes a temporary between its creation
    # and its writer's lock; the writer must notice and write to a new one
    real_flock, removed = serialization._flock, []

    def flock(fd, operation):
        if not removed:
            name = strays(tmp_path / "ckpt.safetensors")[0]
            os.unlink(tmp_path / name)
            removed.append(name)
        real_flock(fd, operation)
    monkeypatch.setattr(serialization, "_flock", flock)
    save({"w": rg.ones(2)}, tmp_path / "ckpt.safetensors")
    assert len(removed) == 1 and os.listdir(tmp_path) == ["ckpt.safetensors"]
    assert_same(load(tmp_path / "ckpt.safetensors"), {"w": rg.ones(2)})


def test_system_errors_while_saving_name_the_file(tmp_path, monkeypatch):
    def full(f, header, order, entries):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(serialization, "_write_payload", full)
    with pytest.raises(OSError, match=r"save: cannot write '.*ckpt.safetensors': No space left "
                                      r"on device") as info:
        save({"w": rg.ones(2)}, tmp_path / "ckpt.safetensors")
    assert info.value.errno == 28 and os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------- load errors
def raw_file(header, data=b"", pad=True):
    """A file from a header (dict, or raw bytes) and a data section."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def valid_file(tmp_path):
    path = tmp_path / "valid.safetensors"
    save({"a": rg.randn(2, 3), "b": rg.arange(4), "n": {"k": (1, 2.5)}}, path)
    return path.read_bytes()


def header_size(raw):
    return struct.unpack("<Q", raw[:8])[0]


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def structure(root):
    return {"__metadata__": {"retrograd": json.dumps({"version": 1, "root": root})}}


F32_2 = entry("F32", [2], 0, 8)
BAD_FILES = {
    "empty file": (lambda v: b"", "0 bytes long, too short for the 8-byte header length"),
    "cut inside length": (lambda v: v[:5], "5 bytes long, too short"),
    "cut inside header": (lambda v: v[:8 + header_size(v) // 2], "only .* bytes follow it"),
    "cut at data start": (lambda v: v[:8 + header_size(v)], "run past the end of the data"),
    "cut inside data": (lambda v: v[:-3], "run past the end of the data section"),
    "length > file": (lambda v: struct.pack("<Q", len(v)) + v[8:], "only .* bytes follow it"),
    "length > limit": (lambda v: struct.pack("<Q", 2 ** 40) + v[8:], "more than the format's"),
    "JSON garbage": (lambda v: raw_file(b"{not json"), "not valid JSON: Expecting"),
    "not an object": (lambda v: raw_file(b"[1, 2]"), "does not start with '{'"),
    "not UTF-8": (lambda v: raw_file(b'{"\xff": 1}'), "not UTF-8 text"),
    "duplicate key": (lambda v: raw_file(b'{"a": {}, "a": {}}'), "'a' appears twice"),
    "NaN in header": (lambda v: raw_file(b'{"a": NaN}'), "NaN is not valid JSON"),
    "deep nesting": (lambda v: raw_file(b'{"a":' + b"[" * 100000), "nested too deeply|not valid"),
    "entry not an object": (lambda v: raw_file({"a": 3}), "tensor 'a': expected an object"),
    "missing field": (lambda v: raw_file({"a": {"dtype": "F32", "shape": []}}),
                      "expected an object with dtype, shape and data_offsets"),
    "negative size": (lambda v: raw_file({"a": entry("F32", [-1], 0, 0)}), "shape must be"),
    "bool size": (lambda v: raw_file({"a": entry("F32", [True], 0, 4)}, bytes(4)), "shape must"),
    "reversed offsets": (lambda v: raw_file({"a": entry("F32", [], 8, 4)}, bytes(8)),
                         "data_offsets must be"),
    "short offsets": (lambda v: raw_file({"a": {**F32_2, "data_offsets": [0]}}, bytes(8)),
                      "data_offsets must be"),
    "size mismatch": (lambda v: raw_file({"a": entry("F32", [3], 0, 8)}, bytes(8)),
                      r"hold 8 bytes, but shape \(3,\) of dtype F32 needs 12"),
    "offsets out of range": (lambda v: raw_file({"a": F32_2, "b": entry("F32", [2], 16, 24)},
                                                bytes(16)), "'b': .* run past the end"),
    "overlap": (lambda v: raw_file({"a": F32_2, "b": entry("F32", [2], 4, 12)}, bytes(12)),
                r"tensors 'a' and 'b' overlap \(bytes \[0, 8\] and \[4, 12\]\)"),
    "gap": (lambda v: raw_file({"a": F32_2, "b": entry("F32", [2], 12, 20)}, bytes(20)),
            "4 bytes before tensor 'b' belong to no tensor"),
    "trailing bytes": (lambda v: raw_file({"a": F32_2}, bytes(11)),
                       "3 bytes after the last tensor"),
    "unknown dtype": (lambda v: raw_file({"a": entry("F7", [], 0, 4)}, bytes(4)),
                      "tensor 'a' has dtype 'F7', which retrograd cannot read"),
    "float8 dtype": (lambda v: raw_file({"a": entry("F8_E4M3", [], 0, 1)}, bytes(1)),
                     "dtype 'F8_E4M3', which retrograd cannot read"),
    "dtype not a string": (lambda v: raw_file({"a": entry(4, [], 0, 4)}, bytes(4)), "dtype 4"),
    "bad bool bytes": (lambda v: raw_file({"m": entry("BOOL", [2], 0, 2)}, b"\x01\x02"),
                       "holds bytes other than 0 and 1"),
    "metadata not strings": (lambda v: raw_file({"__metadata__": {"a": 1}}),
                             "__metadata__ must be an object mapping strings to strings"),
    "uint32 tensor": (lambda v: raw_file({"u": entry("U32", [1], 0, 4)}, bytes(4)),
                      "dtype U32, which a retrograd Tensor cannot hold"),
    "text file": (lambda v: b"hello, this is a text file and not safetensors\n",
                  "not a safetensors file"),
    "structure not JSON": (lambda v: raw_file({"__metadata__": {"retrograd": "{bad"}}),
                           "structure in __metadata__ is damaged: it is not valid JSON"),
    "structure version": (lambda v: raw_file({"__metadata__": {"retrograd": '{"version": 9}'}}),
                          "expected an object with version 1"),
    "unknown tag": (lambda v: raw_file(structure({"frozenset": []})), "unexpected node"),
    "type on a tensor": (lambda v: raw_file(structure({"tensor": "x", "type": "t"})),
                         "unexpected node"),
    "list as a key": (lambda v: raw_file(structure({"items": [[[1], 0]]})), "malformed node"),
    "list in a set": (lambda v: raw_file(structure({"set": [[1]]})), "malformed node"),
    "complex of strings": (lambda v: raw_file(structure({"complex": ["1", "2"]})),
                           "malformed node"),
    "odict of a list": (lambda v: raw_file(structure({"odict": [1]})), "malformed node"),
    "bytes of floats": (lambda v: raw_file({**structure({"bytes": "a"}), "a": F32_2}, bytes(8)),
                        "malformed node"),
    "pickle without type": (lambda v: raw_file({**structure({"pickle": "a"}),
                                                "a": entry("U8", [1], 0, 1)}, b"N"),
                            "malformed node"),
    "bad device": (lambda v: raw_file(structure({"device": 7})), "malformed node"),
    "unknown dtype name": (lambda v: raw_file(structure({"dtype": "float7"})), "malformed node"),
    "dangling tensor": (lambda v: raw_file(structure({"tensor": "x"})), "refers to no tensor"),
    "unused tensor": (lambda v: raw_file({**structure(None), "a": F32_2}, bytes(8)),
                      r"tensors \['a'\] are in the file but not in the structure"),
    "duplicate int key": (lambda v: raw_file(structure({"items": [[1, 0], [1, 2]]})),
                          "malformed node"),
    "bad int": (lambda v: raw_file(structure({"int": "0xzz"})), "bad int"),
    "float too wide": (lambda v: raw_file(structure({"float": hex(2 ** 64)})), "malformed"),
    "scalar not 0-d": (lambda v: raw_file({**structure({"scalar": "a"}), "a": F32_2}, bytes(8)),
                       "malformed node"),
    "requires_grad on a dict": (lambda v: raw_file(structure({"dict": {}, "requires_grad": 1})),
                                "unexpected node"),
}


@pytest.mark.parametrize("make", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_damaged_files_raise_a_clear_value_error(tmp_path, make):
    make_bytes, message = make
    path = tmp_path / "bad.safetensors"
    path.write_bytes(make_bytes(valid_file(tmp_path)))
    with pytest.raises(ValueError, match=message) as info:
        load(path)
    assert type(info.value) is ValueError  # not a JSONDecodeError or other subclass
    assert str(info.value).startswith(f"load: cannot read {str(path)!r}: ")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="load: no such file: .*missing.safetensors"):
        load(tmp_path / "missing.safetensors")


def test_a_directory_or_an_unreadable_file_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(IsADirectoryError, match=r"load: '.*' is a directory, not a file"):
        load(tmp_path)
    save({"w": rg.ones(2)}, tmp_path / "ckpt.safetensors")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ckpt.safetensors"))
    monkeypatch.setattr(serialization, "open", refuse, raising=False)
    with pytest.raises(PermissionError, match=r"load: cannot open '.*ckpt.safetensors': "
                                              r"permission denied") as info:
        load(tmp_path / "ckpt.safetensors")
    assert info.value.errno == 13


def test_an_io_error_while_reading_names_the_file(tmp_path, monkeypatch):
    save({"w": rg.ones(2)}, tmp_path / "ckpt.safetensors")

    def failing_read(f, data_start, name, entry, path):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(serialization, "_read_array", failing_read)
    with pytest.raises(OSError, match=r"load: cannot read '.*ckpt.safetensors': input/output "
                                      r"error"):
        load(tmp_path / "ckpt.safetensors")




class Payload:
    """Unpickling this would create a directory: the proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_loading_never_executes_code(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(ValueError):
        load(path)
    header = b'{"__metadata__": {"retrograd": "' + pickle.dumps(1).hex().encode() + b'"}}'
    path.write_bytes(raw_file(header))
    with pytest.raises(ValueError):
        load(path)
    assert not marker.exists()


def test_every_truncation_is_a_value_error(tmp_path):
    raw = valid_file(tmp_path)
    path = tmp_path / "cut.safetensors"
    for size in range(len(raw)):
        path.write_bytes(raw[:size])
        with pytest.raises(ValueError) as info:
            load(path)
        assert type(info.value) is ValueError and str(path) in str(info.value), size


def test_corrupted_header_bytes_load_or_raise_value_error(tmp_path):
    """Flip bits all over the header: the result is a load or a ValueError, nothing else."""
    raw = valid_file(tmp_path)
    path = tmp_path / "flipped.safetensors"
    outcomes = set()
    for position in range(8 + header_size(raw)):
        for mask in (0x01, 0x20, 0xFF):
            damaged = bytearray(raw)
            damaged[position] ^= mask
            path.write_bytes(bytes(damaged))
            try:
                load(path)
                outcomes.add("loaded")
            except ValueError as e:
                assert type(e) is ValueError and str(path) in str(e), (position, mask, e)
                outcomes.add("error")
    assert outcomes == {"loaded", "error"}


# ------------------------------------------------------------------------------ torch.save's API
def test_signatures_match_torch():
    import inspect
    for mine, theirs in ((rg.save, torch.save), (rg.load, torch.load)):
        mine, theirs = inspect.signature(mine), inspect.signature(theirs)
        assert [(p.name, p.kind) for p in mine.parameters.values()] == \
            [(p.name, p.kind) for p in theirs.parameters.values()]
    assert rg.save is save and rg.load is load


def training_state(seed=0):
    """A model, an Adam optimizer with state and an lr scheduler, after 3 steps."""
    rg.manual_seed(seed)
    model = rg.nn.Sequential(rg.nn.Linear(3, 4), rg.nn.Linear(4, 2))
    optimizer = rg.optim.Adam(model.parameters(), lr=0.05, amsgrad=True)
    scheduler = rg.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4, 4], gamma=0.5)
    x = rg.randn(5, 3)
    for _ in range(3):
        train_step(model, optimizer, x)
        scheduler.step()
    return model, optimizer, scheduler, x


def train_step(model, optimizer, x):
    optimizer.zero_grad()
    (model(x) ** 2).mean().backward()
    optimizer.step()


def checkpoint_of(model, optimizer, scheduler):
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": 3, "loss": 0.25,
            "rng": rg.get_rng_state()}


def file_object_writers(tmp_path):
    def to_bytes_io(obj):
        buffer = io.BytesIO()
        save(obj, buffer)
        buffer.seek(0)
        return buffer

    def to_open_file(obj):
        with open(tmp_path / "f.pt", "wb") as f:
            save(obj, f)
        return open(tmp_path / "f.pt", "rb")

    def to_path(obj):
        save(obj, str(tmp_path / "p.pt"))
        return str(tmp_path / "p.pt")

    def to_pathlike(obj):
        save(obj, tmp_path / "pl.pt")
        return tmp_path / "pl.pt"
    return {"BytesIO": to_bytes_io, "open file": to_open_file, "str path": to_path,
            "PathLike": to_pathlike}


@pytest.mark.parametrize("where", ["BytesIO", "open file", "str path", "PathLike"])
def test_a_training_checkpoint_resumes_identically(tmp_path, where):
    model, optimizer, scheduler, x = training_state()
    source = file_object_writers(tmp_path)[where](checkpoint_of(model, optimizer, scheduler))
    loaded = load(source)
    if hasattr(source, "close"):
        source.close()
    assert_same(loaded, checkpoint_of(model, optimizer, scheduler))
    assert type(loaded["model"]) is type(model.state_dict())  # an OrderedDict stays one
    new_model, new_optimizer, new_scheduler, _ = training_state(seed=1)
    new_model.load_state_dict(loaded["model"])
    new_optimizer.load_state_dict(loaded["optimizer"])
    new_scheduler.load_state_dict(loaded["scheduler"])
    for _ in range(3):
        for m, o, s in ((model, optimizer, scheduler), (new_model, new_optimizer, new_scheduler)):
            train_step(m, o, x)
            s.step()
    for a, b in zip(model.parameters(), new_model.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert new_scheduler.get_last_lr() == scheduler.get_last_lr() == [0.05 * 0.125]


def test_a_stream_is_read_from_its_position_and_left_after_the_object():
    buffer = io.BytesIO(b"preamble")
    buffer.seek(0, io.SEEK_END)
    save({"w": rg.ones(2)}, buffer)
    buffer.seek(len(b"preamble"))
    assert_same(load(buffer), {"w": rg.ones(2)})
    assert buffer.tell() == len(buffer.getvalue())


class ReadOnlyStream:
    """A non-seekable stream (a pipe, a socket): read() only."""

    def __init__(self, data):
        self.data = data

    def read(self, n=-1):
        out, self.data = (self.data, b"") if n < 0 else (self.data[:n], self.data[n:])
        return out


def test_a_non_seekable_stream_loads():
    buffer = io.BytesIO()
    save({"w": rg.arange(3), "n": [1, 2]}, buffer)
    assert_same(load(ReadOnlyStream(buffer.getvalue())), {"w": rg.arange(3), "n": [1, 2]})


def test_f_of_another_type_is_a_clear_error(tmp_path):
    with pytest.raises(TypeError, match="save: f must be a path .* got int"):
        save({}, 3)
    with pytest.raises(TypeError, match="load: f must be a path .* got list"):
        load([])
    with open(tmp_path / "t.txt", "w") as f, pytest.raises(
            TypeError, match="save: f is a text file; open it in binary mode \\('wb'\\)"):
        save({}, f)
    with open(tmp_path / "t.txt") as f, pytest.raises(
            TypeError, match="load: f is a text file; open it in binary mode \\('rb'\\)"):
        load(f)


# ---------------------------------------------------------------------------------- version 2 data
def data_beyond_json():
    return {
        "set": {1, "a", (2, 3), None},
        "complex": [1 + 2j, complex(math.inf, -0.0), complex(math.nan, 1)],
        "bytes": b"\x00\xffraw",
        "bytearray": bytearray(b"mutable"),
        "odict": OrderedDict([("b", 1), ("a", rg.ones(2))]),
        "counter": Counter({3: 2, 7: 1}),
        "float keys": {0.5: "half", -1.0: "minus one", math.inf: "inf"},
        "tuple keys": {(1, "a"): [1], (): None},
        "bool and None keys": {True: 1, None: 2, 1.5: 3, "s": 4},
        "device": rg.device("cpu"),
        "dtypes": [rg.float32, rg.bfloat16, rg.int64, rg.bool],
    }


def test_sets_complex_bytes_ordered_dicts_and_counters_round_trip(tmp_path):
    obj = data_beyond_json()
    loaded = roundtrip(obj, tmp_path)
    others = ("complex", "device", "dtypes")
    assert_same({k: v for k, v in loaded.items() if k not in others},
                {k: v for k, v in obj.items() if k not in others})
    assert loaded["dtypes"] == obj["dtypes"] and loaded["dtypes"][0] is rg.float32
    assert [struct.pack("<dd", c.real, c.imag) for c in loaded["complex"]] == \
        [struct.pack("<dd", c.real, c.imag) for c in obj["complex"]]
    assert loaded["device"] == rg.device("cpu")
    assert json.loads(safe_open_metadata(tmp_path / "ckpt.safetensors"))["version"] == 2


def test_tensor_keys_come_back_as_tensors(tmp_path):
    """As in an optimizer's ``state``, keyed by the parameters themselves."""
    loaded = roundtrip({"state": {rg.arange(3): "first", rg.ones(2): "second"}}, tmp_path)
    (k1, v1), (k2, v2) = loaded["state"].items()
    assert isinstance(k1, Tensor) and k1.numpy().tolist() == [0, 1, 2] and v1 == "first"
    assert isinstance(k2, Tensor) and k2.numpy().tolist() == [1.0, 1.0] and v2 == "second"


def test_plain_files_stay_version_1(tmp_path):
    """Readers of version 1 still read what has no version-2 forms."""
    save({"w": rg.ones(2), "state": {0: {"step": 3}}, "t": (1, 2)}, tmp_path / "v1.pt")
    assert json.loads(safe_open_metadata(tmp_path / "v1.pt"))["version"] == 1


def safe_open_metadata(path):
    with safe_open(str(path), "np") as f:
        return f.metadata()["retrograd"]


# ---------------------------------------------------------------------------------- weights_only
class Config:
    """A user class of the kind saved beside weights in checkpoints."""

    def __init__(self, depth):
        self.depth = depth

    def __eq__(self, other):
        return type(other) is Config and other.depth == self.depth


def pickled_checkpoint():
    import argparse
    return {"args": argparse.Namespace(lr=0.1, epochs=3), "config": Config(4),
            "complex array": np.arange(3) * (1 + 1j), "objects": np.array([None, 1]),
            "strings": np.array(["a", "bc"]), "frozen": frozenset({1, 2}),
            "weights": {"w": rg.ones(2)}}


def test_other_objects_are_pickled_and_load_with_weights_only_false(tmp_path):
    obj = pickled_checkpoint()
    path = tmp_path / "ckpt.pt"
    save(obj, path)
    loaded = load(path, weights_only=False)
    assert loaded["args"] == obj["args"] and loaded["config"] == Config(4)
    np.testing.assert_array_equal(loaded["complex array"], obj["complex array"])
    assert loaded["objects"].tolist() == [None, 1] and loaded["strings"].tolist() == ["a", "bc"]
    assert loaded["frozen"] == frozenset({1, 2})
    assert_same(loaded["weights"], obj["weights"])


@pytest.mark.parametrize("weights_only", [None, True])
def test_weights_only_refuses_other_objects_and_names_them(tmp_path, weights_only):
    path = tmp_path / "ckpt.pt"
    save({"weights": {"w": rg.ones(2)}, "args": pickled_checkpoint()["args"]}, path)
    with pytest.raises(pickle.UnpicklingError) as info:
        load(path, weights_only=weights_only)
    message = str(info.value)
    assert "refused an object of type argparse.Namespace in" in message
    assert "ckpt.pt' (at key path args)" in message and "weights_only=False" in message


def test_a_whole_module_saves_and_loads_with_weights_only_false(tmp_path):
    model = rg.nn.Sequential(rg.nn.Linear(3, 2), rg.nn.ReLU())
    save(model, tmp_path / "model.pt")
    with pytest.raises(pickle.UnpicklingError, match="type retrograd.nn.*Sequential"):
        load(tmp_path / "model.pt")
    loaded = load(tmp_path / "model.pt", weights_only=False)
    x = rg.randn(4, 3)
    np.testing.assert_array_equal(loaded(x).detach().numpy(), model(x).detach().numpy())


def test_weights_only_never_runs_code_from_the_file(tmp_path):
    marker = tmp_path / "code-ran"
    save({"payload": Payload(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match="type tests.utils.test_serialization.Payload"):
        load(tmp_path / "evil.pt")
    assert not marker.exists()
    load(tmp_path / "evil.pt", weights_only=False)  # trusting the file runs its code
    assert marker.exists()


def test_pickle_module_and_load_args(tmp_path):
    calls = []

    class Recorder:
        @staticmethod
        def dumps(obj, protocol):
            calls.append(("dumps", protocol))
            return pickle.dumps(obj, protocol=protocol)

        @staticmethod
        def loads(data, **kwargs):
            calls.append(("loads", kwargs))
            return pickle.loads(data, **kwargs)
    save({"c": Config(1)}, tmp_path / "c.pt", pickle_module=Recorder, pickle_protocol=4)
    loaded = load(tmp_path / "c.pt", pickle_module=Recorder, weights_only=False,
                  encoding="latin1")
    assert loaded == {"c": Config(1)}
    assert calls == [("dumps", 4), ("loads", {"encoding": "latin1"})]
    with pytest.raises(RuntimeError, match="Can not safely load weights when explicit "
                                           "pickle_module is specified"):
        load(tmp_path / "c.pt", pickle_module=Recorder)


def test_a_class_gone_since_the_save_is_a_clear_error(tmp_path):
    path = tmp_path / "gone.pt"
    save({"c": Config(1)}, path)
    raw = path.read_bytes().replace(b"Config", b"Cxnfig")
    path.write_bytes(raw)
    with pytest.raises(ValueError, match="unpickling the object of type .*Cxnfig at key path c "
                                         "failed: AttributeError"):
        load(path, weights_only=False)


# ---------------------------------------------------------------------------------- map_location
class DeviceLike:
    """What torch.device('cpu') or another library's device looks like: its str is 'cpu'."""

    def __str__(self):
        return "cpu"


@pytest.mark.parametrize("map_location", [
    None, "cpu", "cpu:0", rg.device("cpu"), DeviceLike(), torch.device("cpu"),
    {"cuda:0": "cpu"}, {"cpu": "cpu"}, {"cuda:1": "cuda:0"}, {"cpu": rg.device("cpu")},
    lambda storage, location: storage, lambda storage, location: None,
], ids=lambda m: type(m).__name__ if not isinstance(m, str) else m)
def test_map_location_forms_that_keep_tensors_on_the_cpu(tmp_path, map_location):
    obj = {"w": rg.randn(2, 3), "nested": [rg.arange(3)]}
    save(obj, tmp_path / "m.pt")
    assert_same(load(tmp_path / "m.pt", map_location=map_location), obj)


def test_map_location_callable_sees_every_tensor_and_may_replace_it(tmp_path):
    seen = []

    def double(tensor, location):
        seen.append((tuple(tensor.shape), location))
        return tensor * 2
    save({"a": rg.ones(2), "b": [rg.ones(1, 3)]}, tmp_path / "m.pt")
    loaded = load(tmp_path / "m.pt", map_location=double)
    assert seen == [((2,), "cpu"), ((1, 3), "cpu")]
    np.testing.assert_array_equal(loaded["b"][0].numpy(), [[2.0, 2.0, 2.0]])
    safetensors.torch.save_file({"x": torch.ones(2)}, str(tmp_path / "plain.safetensors"))
    assert load(tmp_path / "plain.safetensors", map_location=double)["x"].numpy().tolist() == \
        [2.0, 2.0]
    with pytest.raises(TypeError, match=r"map_location\(tensor of shape \(2,\), 'cpu'\) "
                                        r"returned ndarray"):
        load(tmp_path / "m.pt", map_location=lambda t, loc: t.numpy())


@pytest.mark.parametrize("map_location, device", [
    ("cuda", "cuda"), ("cuda:1", "cuda:1"), ("mps", "mps"), ({"cpu": "cuda:0"}, "cuda:0"),
    (torch.device("cuda", 0), "cuda:0"), ("meta", "meta"),
])
def test_map_location_to_another_device_is_a_clear_error(tmp_path, map_location, device):
    save({"w": rg.ones(2)}, tmp_path / "m.pt")
    with pytest.raises(RuntimeError, match=f"asks for device '{device}', but retrograd computes "
                                           f"on the CPU only; use map_location='cpu'"):
        load(tmp_path / "m.pt", map_location=map_location)


# ---------------------------------------------------------------------------------- mmap
def test_mmap_loads_views_of_the_file_copy_on_write(tmp_path):
    obj = {"w": rg.randn(64, 32), "i": rg.arange(5), "empty": rg.zeros(0), "b": b"xyz"}
    path = tmp_path / "m.pt"
    save(obj, path)
    before = path.read_bytes()
    loaded = load(path, mmap=True)
    assert_same(loaded, obj)
    assert loaded["w"]._data.base is not None and not loaded["w"]._data.flags.owndata
    loaded["w"]._data[...] = 0.0  # writable, but the file does not change
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="mmap=True needs f to be a file path, got a BytesIO"):
        load(io.BytesIO(before), mmap=True)


def test_mmap_reports_damage_like_a_read(tmp_path):
    path = tmp_path / "cut.pt"
    save({"w": rg.ones(8)}, path)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="cut.pt.*run past the end of the data section"):
        load(path, mmap=True)


# ---------------------------------------------------------------------------------- PyTorch files
TORCH_FILES = {
    "zip": (lambda f: torch.save({"w": torch.ones(2)}, f),
            "a PyTorch file \\(torch.save's zip format, whose data.pkl is a pickle\\)"),
    "legacy": (lambda f: torch.save({"w": torch.ones(2)}, f,
                                    _use_new_zipfile_serialization=False),
               "a PyTorch file in torch.save's legacy \\(pre-1.6\\) format, a pickle"),
    "plain pickle": (lambda f: f.write(pickle.dumps({"w": [1.0, 2.0]}, protocol=4)),
                     "a Python pickle"),
    "zip archive": (lambda f: zipfile.ZipFile(f, "w").writestr("notes.txt", "hello"),
                    "a zip archive"),
}


@pytest.mark.parametrize("kind", TORCH_FILES)
@pytest.mark.parametrize("through", ["path", "BytesIO"])
def test_pytorch_files_are_refused_with_the_way_to_convert_them(tmp_path, kind, through):
    write, description = TORCH_FILES[kind]
    path = tmp_path / "model.pt"
    with open(path, "wb") as f:
        write(f)
    source = path if through == "path" else io.BytesIO(path.read_bytes())
    with pytest.raises(ValueError) as info:
        load(source)
    message = str(info.value)
    where = str(path) if through == "path" else "<BytesIO>"
    assert re.search(f"load: cannot read '{re.escape(where)}': it is {description}, not a "
                     f"safetensors file", message), message
    assert "safetensors.torch import save_file" in message
    assert "retrograd.utils.serialization.load" in message


def test_our_file_is_read_by_torch_through_safetensors(tmp_path):
    model = rg.nn.Linear(3, 2)
    save(model.state_dict(), tmp_path / "model.safetensors")
    state = safetensors.torch.load_file(str(tmp_path / "model.safetensors"))
    np.testing.assert_array_equal(state["weight"].numpy(), model.weight.detach().numpy())
