"""Saving and loading: state dicts and training checkpoints in the safetensors format.

The file layout (the safetensors format, https://github.com/huggingface/safetensors)::

    [8 bytes: N, little-endian uint64] [N bytes: JSON header] [data section: raw bytes]

The header maps every tensor's name to ``{"dtype": "F32", "shape": [2, 3], "data_offsets":
[begin, end]}``, offsets counted from the start of the data section, and may hold
``"__metadata__"``, a map from strings to strings. Tensors are stored C-contiguous and
little-endian. Any safetensors reader (``safetensors.torch.load_file``, the Rust crate, ...)
reads a retrograd state dict; ``load`` reads their files.

We write and parse the format here (it is a few dozen lines) instead of calling the safetensors
package: its NumPy API has no bfloat16, writing through it atomically needs a second in-memory
copy of the whole file, its parse errors name neither the file nor the tensor, and retrograd's
core depends on NumPy only. The package stays the interoperability oracle of the tests.

Nested checkpoints. ``save`` also takes dicts, lists and tuples nested to any depth, with str or
int dict keys, and leaves that are Tensors, NumPy arrays and scalars, ints, floats, bools, None
and strings. Every Tensor or array becomes one safetensors entry named by its path of keys
joined with "/" (``optimizer/state/0/exp_avg``; a flat state dict keeps its own names). The
rest of the structure goes, as JSON, into ``__metadata__["retrograd"]``; there each container
and each leaf JSON cannot hold exactly is a one-key object:

    {"dict": {...}}            a dict whose keys are all strings (order kept)
    {"items": [[k, v], ...]}   a dict with int keys (or int and str keys mixed)
    {"tuple": [...]}           a tuple (a JSON list is a list)
    {"tensor": "entry"}        a Tensor, plus "requires_grad": true when it required grad
    {"array": "entry"}         a NumPy array; {"scalar": "entry"} a NumPy scalar
    {"int": "-0x1f..."}        an int beyond 2**53 (other JSON readers round those to doubles)
    {"float": "0x7ff8..."}     a nan or inf, as the hex of its 64 bits (a payload survives)

Finite floats are written with ``repr``, which Python reads back to the same bits. Mappings come
back as dicts, namedtuples as tuples, Parameters as Tensors. Loading parses JSON and copies raw
bytes: it never executes code (no pickle).

Atomic writes. ``save`` writes a temporary file ``.<name>.<8 hex digits>.tmp`` in the target's
directory, flushes and fsyncs it, renames it onto the target with ``os.replace`` and fsyncs the
directory. On an error the temporary is removed and the previous file is untouched; a process
killed mid-write (kill -9, power loss) leaves the old complete file at the path and a stray
temporary beside it, which the next save of the same path removes (see ``atomic_write``).

NOTE: assumes a little-endian host, like the safetensors readers themselves. Big-endian arrays
(such as ones read from IDX files) are byte-swapped on save.
"""

import errno
import json
import math
import os
import re
import secrets
import struct

import numpy as np

from retrograd import dtypes as _dt
from retrograd.tensor import Tensor, make_tensor

__all__ = ["save", "load", "save_checkpoint", "load_checkpoint", "atomic_write"]

_MAX_HEADER = 100_000_000  # the reference reader refuses larger headers
_STRUCTURE_KEY = "retrograd"
_STRUCTURE_VERSION = 1
_SAFE_INT = 2 ** 53  # beyond this, JSON readers other than Python's lose precision

_DTYPES = {  # safetensors dtype code -> NumPy dtype
    code: np.dtype(np_type) for code, np_type in [
        ("BOOL", np.bool_), ("U8", np.uint8), ("I8", np.int8), ("I16", np.int16),
        ("U16", np.uint16), ("F16", np.float16), ("BF16", _dt.bfloat16.np), ("I32", np.int32),
        ("U32", np.uint32), ("F32", np.float32), ("F64", np.float64), ("I64", np.int64),
        ("U64", np.uint64),
    ] if np_type is not None  # BF16 needs ml_dtypes
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}
_TAGS = ("dict", "items", "tuple", "tensor", "array", "scalar", "int", "float")


# ---------------------------------------------------------------------------------- saving
def save(obj, path):
    """Save a state dict or a nested checkpoint to ``path`` in the safetensors format.

    ``obj`` is a Tensor, an array, or dicts/lists/tuples of Tensors, NumPy arrays and scalars,
    ints, floats, bools, None and strings, with str or int dict keys. The file is replaced
    atomically: readers see the old file or the new one, never a partial write.

    Example:
        >>> import os, tempfile
        >>> import retrograd as rg
        >>> from retrograd.utils.serialization import save, load
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "model.safetensors")
        ...     save({"weight": rg.ones(2, 3), "bias": rg.zeros(3)}, path)
        ...     state = load(path)
        >>> state["weight"].shape, state["bias"].dtype
        ((2, 3), retrograd.float32)
    """
    entries = {}
    root = _encode(obj, (), entries, set())
    structure = json.dumps({"version": _STRUCTURE_VERSION, "root": root}, allow_nan=False,
                           separators=(",", ":"))
    metadata = {"format": "pt", _STRUCTURE_KEY: structure}
    order, header = _header_bytes(entries, metadata)
    atomic_write(path, lambda f: _write_payload(f, header, order, entries))


def _encode(value, path, entries, active):
    """The JSON form of ``value``; its Tensors and arrays go into ``entries``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return {"scalar": _add_entry(entries, path, np.asarray(value))}
    if isinstance(value, int):
        return _encode_int(value)
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, Tensor):
        node = {"tensor": _add_entry(entries, path, value._data)}
        if value.requires_grad:
            node["requires_grad"] = True
        return node
    if isinstance(value, np.ndarray):
        return {"array": _add_entry(entries, path, value)}
    if isinstance(value, (dict, list, tuple)):
        return _encode_container(value, path, entries, active)
    hint = "; save its state_dict() instead" if hasattr(value, "state_dict") else ""
    raise TypeError(f"save: cannot save a value of type {type(value).__name__} at "
                    f"{_show(path)}{hint} (supported: Tensor, NumPy array or scalar, int, float, "
                    f"bool, None, str, and dicts, lists and tuples of these)")


def _encode_container(value, path, entries, active):
    if id(value) in active:
        raise ValueError(f"save: the structure contains itself at {_show(path)} (a reference "
                         f"cycle cannot be saved)")
    active.add(id(value))
    if isinstance(value, dict):
        node = _encode_dict(value, path, entries, active)
    else:
        items = [_encode(v, path + (str(i),), entries, active) for i, v in enumerate(value)]
        node = items if isinstance(value, list) else {"tuple": items}
    active.discard(id(value))
    return node


def _encode_dict(value, path, entries, active):
    keys = [_dict_key(key, path) for key in value]
    values = [_encode(v, path + (str(k),), entries, active) for k, v in zip(keys, value.values())]
    if all(isinstance(k, str) for k in keys):
        return {"dict": dict(zip(keys, values))}
    return {"items": [[k if isinstance(k, str) else _encode_int(k), v]
                      for k, v in zip(keys, values)]}


def _dict_key(key, path):
    if isinstance(key, str):
        return key
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        return int(key)
    raise TypeError(f"save: dict keys must be str or int, got the {type(key).__name__} key "
                    f"{key!r} at {_show(path)}")


def _encode_int(value):
    if -_SAFE_INT < value < _SAFE_INT:
        return int(value)
    return {"int": hex(value)}  # hex is exempt from Python's limit on int-to-decimal digits


def _encode_float(value):
    if math.isfinite(value):
        return float(value)
    (bits,) = struct.unpack("<Q", struct.pack("<d", value))
    return {"float": f"{bits:#018x}"}


def _add_entry(entries, path, array):
    """Store a C-contiguous little-endian copy (or view) of ``array``; returns its entry name."""
    name = "/".join(path) or "tensor"
    if name in entries or name == "__metadata__":
        n = 2
        while f"{name}~{n}" in entries:
            n += 1
        name = f"{name}~{n}"
    if array.dtype.byteorder == ">":
        array = array.byteswap().view(array.dtype.newbyteorder("<"))
    if array.dtype not in _CODES:
        raise TypeError(f"save: cannot save an array of dtype {array.dtype} at {_show(path)} "
                        f"(shape {array.shape}); supported dtypes: "
                        f"{', '.join(str(d) for d in _CODES)}")
    entries[name] = array if array.flags.c_contiguous else array.copy(order="C")
    return name


def _show(path):
    return "the top level" if not path else "key path " + "/".join(path)


def _header_bytes(entries, metadata):
    """The layout order of the data and the header, padded with spaces to a multiple of 8.

    Entries are laid out by item size, largest first (stable), so that with the 8-byte-aligned
    data section every tensor starts at a multiple of its item size and a reader can map it
    without copying. The header lists them in the order they were given.
    """
    order = sorted(entries, key=lambda name: -entries[name].dtype.itemsize)
    offsets, offset = {}, 0
    for name in order:
        offsets[name] = [offset, offset + entries[name].nbytes]
        offset += entries[name].nbytes
    header = {"__metadata__": metadata}
    for name, array in entries.items():
        header[name] = {"dtype": _CODES[array.dtype], "shape": list(array.shape),
                        "data_offsets": offsets[name]}
    raw = json.dumps(header, separators=(",", ":")).encode("ascii")
    raw += b" " * (-len(raw) % 8)
    if len(raw) > _MAX_HEADER:
        raise ValueError(f"save: the header would take {len(raw)} bytes, more than the "
                         f"{_MAX_HEADER} safetensors readers accept (too many small leaves?)")
    return order, raw


def _write_payload(f, header, order, entries):
    f.write(struct.pack("<Q", len(header)))
    f.write(header)
    for name in order:
        # a uint8 view: the buffer protocol does not know bfloat16
        f.write(memoryview(entries[name].reshape(-1).view(np.uint8)))


def atomic_write(path, write, owner="save"):
    """Call write(file) on a binary temporary beside ``path``, then rename it onto ``path``:
    a reader sees the old file or the new one, never half of one, and an interrupted write
    leaves no temporary behind. ``owner`` names the caller in errors.

    Stale temporaries. A writer killed mid-write (kill -9, a crash, power loss) cannot remove
    its temporary; the next write of the same ``path`` does, before writing its own, so that
    repeated crashes cannot fill the disk. It removes only this module's temporaries of that
    very path (names ``.<name>.<8 lowercase hex digits>.tmp`` in its directory, regular
    files), and never one that another writer is still writing: every writer holds an
    exclusive advisory lock (``fcntl.flock``) on its temporary from just after creating it
    until it has been renamed onto ``path``, and a temporary is stale exactly when that lock
    can be taken. The kernel drops a lock when its process dies, however it dies, so no PID
    bookkeeping is needed (PIDs are reused, and mean nothing on a shared filesystem read from
    another host). The cleaner unlinks a temporary only while holding its lock, and a writer
    that finds its new temporary unlinked once it holds the lock (a cleaner came between the
    creation and the lock) starts again with a new one. Where locks are unavailable (Windows,
    a filesystem that refuses flock) stale temporaries are left alone, as before.

    Example:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "notes.txt")
        ...     stale = os.path.join(tmp, ".notes.txt.0123abcd.tmp")  # left by a killed writer
        ...     with open(stale, "wb") as f:
        ...         _ = f.write(b"half a fi")
        ...     atomic_write(path, lambda f: f.write(b"saved whole"))
        ...     open(path).read(), os.listdir(tmp)
        ('saved whole', ['notes.txt'])
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise IsADirectoryError(f"{owner}: {path!r} is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{owner}: cannot write {path!r}: directory {directory!r} does "
                                f"not exist")
    try:
        _remove_stale_temporaries(path)
        temporary, fd = _create_temporary(path)
    except OSError as e:
        raise _write_error(e, owner, path) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
            if _flock is not None:
                # renamed while open, so still locked: a cleaner never sees it unlocked
                os.replace(temporary, path)
        if _flock is None:
            os.replace(temporary, path)  # Windows cannot rename an open file
    except BaseException as e:  # KeyboardInterrupt too: never leave a half-written temporary
        _unlink_quietly(temporary)
        if isinstance(e, OSError) and e.errno is not None and e.strerror is not None:
            raise _write_error(e, owner, path) from e
        raise
    _fsync_directory(directory)


def _write_error(e, owner, path):
    """An OSError from the system (no space left, permission denied, ...) as the same kind of
    error, with a message that names the owner and the path."""
    if e.strerror is None:  # one of ours, already worded
        return e
    return OSError(e.errno, f"{owner}: cannot write {path!r}: {e.strerror}", e.filename)


try:
    from fcntl import LOCK_EX, LOCK_NB
    from fcntl import flock as _flock
except ImportError:  # Windows
    _flock = None


def _temporary_prefix(path):
    """(directory, name prefix) of the temporaries of ``path``: they are named
    .<name>.<8 hex digits>.tmp, with the name cut to 200 characters (under the usual 255-byte
    limit)."""
    head, tail = os.path.split(os.path.abspath(path))
    return head, f".{tail[:200]}."


def _create_temporary(path):
    """A new file ``.<name>.<8 hex digits>.tmp`` beside path, opened for writing and locked
    (see atomic_write)."""
    head, prefix = _temporary_prefix(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = os.path.join(head, f"{prefix}{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temporary, flags, 0o666)  # the umask applies, as for open()
        except FileExistsError:
            continue
        try:
            if _lock(fd, blocking=True) and not _same_file(temporary, fd):
                os.close(fd)  # a cleaner removed it between the creation and the lock
                continue
        except BaseException:
            os.close(fd)
            _unlink_quietly(temporary)
            raise
        return temporary, fd


def _unlink_quietly(name):
    try:
        os.unlink(name)
    except OSError:
        pass


def _lock(fd, blocking):
    """Take the exclusive lock on ``fd``: True if taken; False if another process holds it
    (non-blocking), or if locks are unavailable here."""
    if _flock is None:
        return False
    try:
        _flock(fd, LOCK_EX if blocking else LOCK_EX | LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if e.errno in (errno.ENOLCK, errno.EINVAL, errno.EBADF,
                       getattr(errno, "EOPNOTSUPP", errno.EINVAL)):
            return False  # the filesystem refuses locks: nothing to tell stale from live
        raise
    return True


def _same_file(name, fd):
    """True if ``name`` is still a link to the open file ``fd``."""
    try:
        st = os.stat(name, follow_symlinks=False)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (opened.st_dev, opened.st_ino)


def _remove_stale_temporaries(path):
    """Remove the temporaries of ``path`` that no live writer holds (see atomic_write)."""
    if _flock is None:
        return
    head, prefix = _temporary_prefix(path)
    pattern = re.compile(re.escape(prefix) + r"[0-9a-f]{8}\.tmp")
    try:
        entries = [e for e in os.scandir(head) if pattern.fullmatch(e.name)]
    except OSError:
        return
    for entry in entries:
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            fd = os.open(entry.path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue  # gone already, or not ours to open
        try:
            # unlinked only while locked, and only if the name still leads to what is locked
            if _lock(fd, blocking=False) and _same_file(entry.path, fd):
                os.unlink(entry.path)
        except OSError:
            pass
        finally:
            os.close(fd)


def _fsync_directory(directory):
    """Make the rename itself durable. Windows cannot open a directory; some filesystems
    refuse to fsync one, which then is not an error."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EBADF, getattr(errno, "ENOTSUP", errno.EINVAL)):
            raise
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------- loading
def load(path):
    """Load a file written by ``save``, or any safetensors file.

    Returns the saved structure (Tensors where Tensors were saved, arrays where arrays were
    saved); a safetensors file from elsewhere comes back as a dict of name -> Tensor. A
    missing file raises FileNotFoundError; a damaged or foreign file raises ValueError naming
    the file and what is wrong.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> import retrograd as rg
        >>> from retrograd.utils.serialization import save, load
        >>> checkpoint = {"epoch": 3, "state": {0: {"step": 10, "buf": np.zeros(2)}},
        ...               "shape": (2, 3), "lr": float("inf")}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "checkpoint.safetensors")
        ...     save(checkpoint, path)
        ...     loaded = load(path)
        >>> loaded["state"][0]["step"], loaded["shape"], loaded["lr"]
        (10, (2, 3), inf)
    """
    path = os.fspath(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path!r}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"load: {path!r} is a directory, not a file") from None
    except OSError as e:  # permission denied, ...
        raise _read_error(e, path, "open") from None
    with f:
        try:
            size = os.fstat(f.fileno()).st_size
            header, data_start = _read_header(f, size, path)
            metadata = header.pop("__metadata__", None)
            _check_metadata(metadata, path)
            entries = {name: _check_entry(name, entry, size - data_start, path)
                       for name, entry in header.items()}
            _check_layout(entries, size - data_start, path)
            arrays = {name: _read_array(f, data_start, name, entry, path)
                      for name, entry in entries.items()}
        except OSError as e:  # an I/O error while reading
            raise _read_error(e, path, "read") from None
    structure = (metadata or {}).get(_STRUCTURE_KEY)
    if structure is None:
        return {name: make_tensor(_tensor_array(arrays, name, path)) for name in arrays}
    return _Decoder(arrays, path).run(structure)


def _error(path, what):
    return ValueError(f"load: cannot read {path!r}: {what}")


def _read_error(e, path, verb):
    """A system error on opening or reading ``path`` as the same kind of error, naming it."""
    reason = e.strerror or str(e)
    return OSError(e.errno, f"load: cannot {verb} {path!r}: {reason[:1].lower()}{reason[1:]}")


def _read_header(f, size, path):
    """The parsed JSON header and where the data section starts."""
    if size < 8:
        raise _error(path, f"the file is {size} bytes long, too short for the 8-byte header "
                           f"length (truncated, or not a safetensors file)")
    (n,) = struct.unpack("<Q", f.read(8))
    if n > _MAX_HEADER:
        raise _error(path, f"the header length field says {n} bytes, more than the format's "
                           f"limit of {_MAX_HEADER} (not a safetensors file?)")
    if n > size - 8:
        raise _error(path, f"the header length field says {n} bytes but only {size - 8} bytes "
                           f"follow it (truncated inside the header, or not a safetensors file)")
    raw = f.read(n)
    if len(raw) != n:
        raise _error(path, "the file shrank while it was read")
    return _parse_header(raw, path), 8 + n


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(text):
    """json.loads, strict: no duplicate keys, no NaN/Infinity. Raises ValueError with a reason."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ValueError(f"{e.msg} at character {e.pos}") from None
    except _DuplicateKey as e:
        raise ValueError(f"the key {e.args[0]!r} appears twice in one object") from None
    except RecursionError:
        raise ValueError("it is nested too deeply") from None


def _parse_header(raw, path):
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _error(path, f"the header is not UTF-8 text (bad byte at {e.start}; not a "
                           f"safetensors file?)") from None
    if not text.startswith("{"):
        raise _error(path, "the header does not start with '{' (not a safetensors file?)")
    try:
        return _parse_json(text)
    except ValueError as e:
        raise _error(path, f"the header is not valid JSON: {e}") from None


def _check_metadata(metadata, path):
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _error(path, "__metadata__ must be an object mapping strings to strings")


def _check_entry(name, entry, data_size, path):
    """(dtype, shape, begin, end) of one header entry, after checking every field."""
    where = f"tensor {name!r}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise _error(path, f"{where}: expected an object with dtype, shape and data_offsets, "
                           f"got {_short(entry)}")
    code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not _is_sizes(shape):
        raise _error(path, f"{where}: shape must be a list of non-negative ints, got "
                           f"{_short(shape)}")
    if not _is_sizes(offsets) or len(offsets) != 2 or offsets[0] > offsets[1]:
        raise _error(path, f"{where}: data_offsets must be [begin, end] with 0 <= begin <= "
                           f"end, got {_short(offsets)}")
    dtype = _DTYPES.get(code) if isinstance(code, str) else None
    if dtype is None:
        raise _error(path, f"{where} has dtype {_short(code)}, which retrograd cannot read "
                           f"(it reads {', '.join(_DTYPES)})")
    begin, end = offsets
    needed = math.prod(shape) * dtype.itemsize
    if end - begin != needed:
        raise _error(path, f"{where}: data_offsets {offsets} hold {end - begin} bytes, but "
                           f"shape {tuple(shape)} of dtype {code} needs {needed}")
    if end > data_size:
        raise _error(path, f"{where}: data_offsets {offsets} run past the end of the data "
                           f"section ({data_size} bytes): truncated file or damaged header")
    return dtype, tuple(shape), begin, end


def _is_sizes(value):
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_layout(entries, data_size, path):
    """The tensors must tile the data section: no overlap, no gap, nothing after the last."""
    expected, previous = 0, None
    for name in sorted(entries, key=lambda n: entries[n][2:]):
        begin, end = entries[name][2:]
        if begin < expected:
            raise _error(path, f"tensors {previous!r} and {name!r} overlap (bytes "
                               f"{list(entries[previous][2:])} and {[begin, end]})")
        if begin > expected:
            raise _error(path, f"{begin - expected} bytes before tensor {name!r} belong to no "
                               f"tensor")
        expected, previous = end, name
    if expected != data_size:
        raise _error(path, f"{data_size - expected} bytes after the last tensor belong to no "
                           f"tensor")


def _read_array(f, data_start, name, entry, path):
    dtype, shape, begin, end = entry
    buffer = np.empty(end - begin, dtype=np.uint8)  # a fresh, aligned array per tensor
    f.seek(data_start + begin)
    if f.readinto(buffer) != end - begin:
        raise _error(path, "the file shrank while it was read")
    if dtype == np.bool_ and np.any(buffer > 1):
        raise _error(path, f"tensor {name!r} of dtype BOOL holds bytes other than 0 and 1")
    return buffer.view(dtype).reshape(shape)


def _tensor_array(arrays, name, path):
    array = arrays[name]
    if array.dtype not in _dt._BY_NUMPY:
        raise _error(path, f"tensor {name!r} has dtype {_CODES[array.dtype]}, which a retrograd "
                           f"Tensor cannot hold (no {array.dtype} dtype)")
    return array


class _Decoder:
    """Rebuilds the saved structure from its JSON form and the file's arrays."""

    def __init__(self, arrays, path):
        self.arrays = arrays
        self.path = path
        self.used = set()

    def run(self, structure):
        try:
            tree = _parse_json(structure)
        except ValueError as e:
            raise self.error(f"it is not valid JSON: {e}") from None
        if not isinstance(tree, dict) or tree.get("version") != _STRUCTURE_VERSION:
            raise self.error(f"expected an object with version {_STRUCTURE_VERSION} (a file "
                             f"from a newer retrograd?), got {_short(tree)}")
        try:
            root = self.value(tree.get("root"))
        except RecursionError:
            raise self.error("it is nested too deeply") from None
        unused = sorted(set(self.arrays) - self.used)
        if unused:
            raise self.error(f"the tensors {unused} are in the file but not in the structure")
        return root

    def error(self, what):
        return _error(self.path, f"the retrograd structure in __metadata__ is damaged: {what}")

    def value(self, node):
        if node is None or isinstance(node, (bool, str, int, float)):
            return node
        if isinstance(node, list):
            return [self.value(item) for item in node]
        tag = next(iter(node), None) if isinstance(node, dict) else None
        if tag not in _TAGS or len(node) != (2 if tag == "tensor" and "requires_grad" in node
                                             else 1):
            raise self.error(f"unexpected node {_short(node)}")
        return getattr(self, "tag_" + tag)(node[tag], node)

    def tag_dict(self, body, node):
        self.expect(isinstance(body, dict), node)
        return {key: self.value(item) for key, item in body.items()}

    def tag_items(self, body, node):
        self.expect(isinstance(body, list) and all(
            isinstance(pair, list) and len(pair) == 2 for pair in body), node)
        out = {}
        for raw_key, item in body:
            key = self.value(raw_key)
            self.expect(isinstance(key, (str, int)) and not isinstance(key, bool)
                        and key not in out, node)
            out[key] = self.value(item)
        return out

    def tag_tuple(self, body, node):
        self.expect(isinstance(body, list), node)
        return tuple(self.value(item) for item in body)

    def tag_int(self, body, node):
        self.expect(isinstance(body, str), node)
        try:
            return int(body, 16)
        except ValueError:
            raise self.error(f"bad int {_short(body)}") from None

    def tag_float(self, body, node):
        bits = self.tag_int(body, node)
        self.expect(0 <= bits < 2 ** 64, node)
        return struct.unpack("<d", struct.pack("<Q", bits))[0]

    def tag_tensor(self, body, node):
        requires_grad = node.get("requires_grad", False)
        self.expect(requires_grad is True or requires_grad is False, node)
        array = _tensor_array(self.arrays, self.entry(body, node), self.path)
        return make_tensor(array, requires_grad=requires_grad and _dt.is_floating(array.dtype))

    def tag_array(self, body, node):
        return self.arrays[self.entry(body, node)]

    def tag_scalar(self, body, node):
        array = self.arrays[self.entry(body, node)]
        self.expect(array.ndim == 0, node)
        return array[()]

    def entry(self, name, node):
        if not isinstance(name, str) or name not in self.arrays:
            raise self.error(f"{_short(node)} refers to no tensor of the file")
        self.used.add(name)
        return name

    def expect(self, condition, node):
        if not condition:
            raise self.error(f"malformed node {_short(node)}")


# ---------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, **parts):
    """Save a training checkpoint, one keyword per part. A part with a ``state_dict()`` method
    (a Module, an optimizer, a scheduler, a GradScaler) is saved as its state dict; anything
    else (epoch, RNG state, metrics) as it is. Written atomically, like ``save``.

    Example:
        >>> import os, tempfile
        >>> import retrograd as rg
        >>> from retrograd.utils.serialization import save_checkpoint, load_checkpoint
        >>> model = rg.nn.Linear(3, 2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "run.safetensors")
        ...     save_checkpoint(path, model=model, epoch=4, rng=rg.get_rng_state())
        ...     checkpoint = load_checkpoint(path, model=rg.nn.Linear(3, 2))
        >>> checkpoint["epoch"], sorted(checkpoint["model"])
        (4, ['bias', 'weight'])
    """
    save({name: part.state_dict() if hasattr(part, "state_dict") else part
          for name, part in parts.items()}, path)


def load_checkpoint(path, **targets):
    """Load a checkpoint written by ``save_checkpoint`` and return it as a dict of parts.
    Each keyword names a part and an object whose ``load_state_dict`` receives that part,
    e.g. ``load_checkpoint(path, model=model, optimizer=optimizer)``.

    Example:
        >>> import os, tempfile
        >>> import retrograd as rg
        >>> from retrograd.utils.serialization import save_checkpoint, load_checkpoint
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "run.safetensors")
        ...     save_checkpoint(path, step=100)
        ...     load_checkpoint(path)
        {'step': 100}
    """
    checkpoint = load(path)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"load_checkpoint: {os.fspath(path)!r} holds a "
                         f"{type(checkpoint).__name__}, not a checkpoint of named parts")
    missing = [name for name in targets if name not in checkpoint]
    if missing:
        raise KeyError(f"load_checkpoint: {os.fspath(path)!r} has no part {missing}; its parts "
                       f"are {list(checkpoint)}")
    for name, target in targets.items():
        target.load_state_dict(checkpoint[name])
    return checkpoint
