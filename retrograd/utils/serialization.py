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

Nested checkpoints. ``save`` also takes dicts, lists, tuples and sets nested to any depth, and
leaves that are Tensors, NumPy arrays and scalars, ints, floats, complex numbers, bools, None,
strings and bytes. Every Tensor, array or bytes value becomes one safetensors entry named by its
path of keys joined with "/" (``optimizer/state/0/exp_avg``; a flat state dict keeps its own
names). The rest of the structure goes, as JSON, into ``__metadata__["retrograd"]``
(``{"version": 1 or 2, "root": ...}``); there each container and each leaf JSON cannot hold
exactly is a one-key object:

    {"dict": {...}}            a dict whose keys are all strings (order kept)
    {"items": [[k, v], ...]}   a dict with other keys (ints; in version 2 also floats, bools,
                               None, tuples, Tensors...)
    {"tuple": [...]}           a tuple (a JSON list is a list)
    {"tensor": "entry"}        a Tensor, plus "requires_grad": true when it required grad
    {"array": "entry"}         a NumPy array; {"scalar": "entry"} a NumPy scalar
    {"int": "-0x1f..."}        an int beyond 2**53 (other JSON readers round those to doubles)
    {"float": "0x7ff8..."}     a nan or inf, as the hex of its 64 bits (a payload survives)
  version 2 only (a file without them stays version 1, for older readers):
    {"odict": {"dict"...}}     an OrderedDict; {"counter": ...} a Counter; {"set": [...]} a set
    {"complex": [re, im]}      a complex number
    {"bytes": "entry"}         bytes (a uint8 entry); {"bytearray": "entry"} a bytearray
    {"device": "cpu"}          a retrograd.device; {"dtype": "float32"} a retrograd dtype
    {"pickle": "entry", "type": "module.Class"}
                               any other object (a whole Module, an argparse.Namespace, a
                               complex or object array...), pickled into a uint8 entry

Finite floats are written with ``repr``, which Python reads back to the same bits. Other
mappings come back as dicts, namedtuples as tuples, Parameters as Tensors. Loading parses JSON
and copies raw bytes: with ``weights_only=True`` (the default, as in PyTorch) it never executes
code, and a pickled object is refused with an error naming its class; ``weights_only=False``
unpickles it, for files the user trusts. PyTorch's own files (a zip with ``data.pkl``, or the
legacy pickle) are recognized and refused with the way to convert them: safetensors is the
format both frameworks read.

Atomic writes. ``save`` writes a temporary file ``.<name>.<8 hex digits>.tmp`` in the target's
directory, flushes and fsyncs it, renames it onto the target with ``os.replace`` and fsyncs the
directory. On an error the temporary is removed and the previous file is untouched; a process
killed mid-write (kill -9, power loss) leaves the old complete file at the path and a stray
temporary beside it, which the next save of the same path removes (see ``atomic_write``).

NOTE: assumes a little-endian host, like the safetensors readers themselves. Big-endian arrays
(such as ones read from IDX files) are byte-swapped on save.
"""

import errno
import io
import json
import math
import mmap as _mmap
import os
import pickle
import re
import secrets
import struct
import zipfile
from collections import Counter, OrderedDict

import numpy as np

from retrograd import dtypes as _dt
from retrograd.tensor import Tensor, make_tensor

__all__ = ["save", "load", "save_checkpoint", "load_checkpoint", "atomic_write"]

_MAX_HEADER = 100_000_000  # the reference reader refuses larger headers
_STRUCTURE_KEY = "retrograd"
_STRUCTURE_VERSIONS = (1, 2)  # 2 adds sets, complex, bytes, OrderedDict, Counter, pickles
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
_TAGS = {  # the tag of each node of the structure -> the other keys it may have
    "dict": set(), "items": set(), "tuple": set(), "tensor": {"requires_grad"}, "array": set(),
    "scalar": set(), "int": set(), "float": set(),
    # version 2
    "odict": set(), "counter": set(), "set": set(), "complex": set(), "bytes": set(),
    "bytearray": set(), "device": set(), "dtype": set(), "pickle": {"type"},
}


# ---------------------------------------------------------------------------------- saving
def save(obj, f, pickle_module=pickle, pickle_protocol=2, _use_new_zipfile_serialization=True,
         _disable_byteorder_record=False):
    """Save a state dict, a nested checkpoint or any object to ``f`` (``torch.save``'s
    signature), in the safetensors format.

    ``f`` is a path (str or os.PathLike), replaced atomically: readers see the old file or the
    new one, never a partial write, and a crash mid-write leaves the old file whole. Or ``f``
    is a binary file object (``io.BytesIO``, ``open(path, "wb")``), written from its current
    position (atomicity is then the caller's).

    Tensors, NumPy arrays and scalars, ints, floats, complex numbers, bools, None, strings,
    bytes, and dicts (also OrderedDict and Counter), lists, tuples and sets of these are
    stored as data: ``load`` reads them back without running any code. Any other object (a
    whole Module, an argparse.Namespace, ...) is pickled with ``pickle_module`` and
    ``pickle_protocol``, and only ``load(..., weights_only=False)`` reads it back, as in
    PyTorch. The underscored arguments are PyTorch's format switches, accepted and ignored.

    Example:
        >>> import io, os, tempfile
        >>> import retrograd as rg
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "model.pt")
        ...     rg.save({"weight": rg.ones(2, 3), "bias": rg.zeros(3)}, path)
        ...     state = rg.load(path)
        >>> state["weight"].shape, state["bias"].dtype
        ((2, 3), retrograd.float32)
        >>> buffer = io.BytesIO()
        >>> rg.save({"epoch": 3, "lrs": [0.1, 0.01]}, buffer)
        >>> _ = buffer.seek(0)
        >>> rg.load(buffer)
        {'epoch': 3, 'lrs': [0.1, 0.01]}
    """
    encoder = _Encoder(pickle_module, pickle_protocol)
    root = encoder.value(obj, ())
    structure = json.dumps({"version": encoder.version, "root": root}, allow_nan=False,
                           separators=(",", ":"))
    metadata = {"format": "pt", _STRUCTURE_KEY: structure}
    order, header = _header_bytes(encoder.entries, metadata)
    if _is_path(f):
        atomic_write(f, lambda out: _write_payload(out, header, order, encoder.entries))
    elif isinstance(f, io.TextIOBase):
        raise TypeError("save: f is a text file; open it in binary mode ('wb')")
    elif callable(getattr(f, "write", None)):
        _write_payload(f, header, order, encoder.entries)
        flush = getattr(f, "flush", None)
        if callable(flush):
            flush()
    else:
        raise TypeError(f"save: f must be a path (str or os.PathLike) or a binary file object "
                        f"with a write() method, got {type(f).__name__}")


def _is_path(f):
    return isinstance(f, (str, bytes, os.PathLike))


class _Encoder:
    """Turns a value into its JSON form, collecting its Tensors and arrays in ``entries``
    (name -> array) on the way; ``version`` becomes 2 once a form that version 1 readers
    do not know is used."""

    def __init__(self, pickle_module, pickle_protocol):
        self.entries = {}
        self.version = 1
        self.active = set()  # ids of the containers being encoded: a cycle detector
        self.pickle_module = pickle_module
        self.pickle_protocol = pickle_protocol

    def value(self, value, path):
        node = self.native(value, path)
        if node is _NOT_NATIVE:
            node = self.pickled(value, path)
        return node

    def native(self, value, path):
        """The JSON form of a value stored as data, or _NOT_NATIVE."""
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (Tensor, np.ndarray, np.generic)):  # np.float64 is a float too
            return self.array_node(value, path)
        if isinstance(value, int):
            return _encode_int(value)
        if isinstance(value, float):
            return _encode_float(value)
        if isinstance(value, (dict, list, tuple, set)):
            return self.container(value, path)
        return self.newer_leaf(value, path)

    def newer_leaf(self, value, path):
        """complex, bytes, bytearray, a retrograd.device or dtype (forms of version 2), or
        _NOT_NATIVE."""
        if _is_device(value):
            node = {"device": str(value)}
        elif isinstance(value, _dt.dtype):
            node = {"dtype": value.name}
        elif isinstance(value, complex):
            node = {"complex": [_encode_float(value.real), _encode_float(value.imag)]}
        elif isinstance(value, (bytes, bytearray)):
            tag = "bytes" if isinstance(value, bytes) else "bytearray"
            node = {tag: self.add_entry(path, np.frombuffer(bytes(value), dtype=np.uint8))}
        else:
            return _NOT_NATIVE
        self.version = 2
        return node

    def array_node(self, value, path):
        array = value._data if isinstance(value, Tensor) else np.asarray(value)
        if array.dtype.byteorder == ">":
            array = array.byteswap().view(array.dtype.newbyteorder("<"))
        if array.dtype not in _CODES:
            return _NOT_NATIVE  # complex, object, string arrays: pickled
        tag = "tensor" if isinstance(value, Tensor) else (
            "array" if isinstance(value, np.ndarray) else "scalar")
        node = {tag: self.add_entry(path, array)}
        if isinstance(value, Tensor) and value.requires_grad:
            node["requires_grad"] = True
        return node

    def container(self, value, path):
        if id(value) in self.active:
            raise ValueError(f"save: the structure contains itself at {_show(path)} (a "
                             f"reference cycle cannot be saved)")
        self.active.add(id(value))
        try:
            if isinstance(value, dict):
                return self.mapping(value, path)
            if isinstance(value, set):
                return self.set_node(value, path)
            items = [self.value(v, path + (str(i),)) for i, v in enumerate(value)]
            return items if isinstance(value, list) else {"tuple": items}
        finally:
            self.active.discard(id(value))

    def mapping(self, value, path):
        """A dict: {"dict": {...}} when every key is a str, else {"items": [[key, value]]};
        an OrderedDict or a Counter is wrapped as {"odict": ...} or {"counter": ...}."""
        keys = list(value)
        if all(isinstance(k, str) for k in keys):
            body = {"dict": {k: self.value(value[k], path + (k,)) for k in keys}}
        else:
            body = {"items": [[self.key(k, path), self.value(value[k], path + (str(k),))]
                              for k in keys]}
        if isinstance(value, Counter):
            self.version = 2
            return {"counter": body}
        if isinstance(value, OrderedDict):
            self.version = 2
            return {"odict": body}
        return body

    def key(self, key, path):
        """The JSON form of a dict key; keys that are not str or int need version 2."""
        if isinstance(key, (str, np.integer)) or (isinstance(key, int)
                                                  and not isinstance(key, bool)):
            return key if isinstance(key, str) else _encode_int(int(key))
        node = self.native(key, path + (str(key),))
        if node is _NOT_NATIVE:
            raise TypeError(f"save: dict keys must be strings, numbers, bools, None, bytes, "
                            f"Tensors or tuples of these; got the {type(key).__name__} key "
                            f"{key!r} at {_show(path)}")
        self.version = 2
        return node

    def set_node(self, value, path):
        self.version = 2
        return {"set": [self.value(v, path + (str(i),)) for i, v in enumerate(value)]}

    def pickled(self, value, path):
        """Any other object, pickled into a uint8 entry; it loads only with
        weights_only=False. The node names its type, so that a weights-only load can say
        what it refused."""
        type_name = _type_name(value)
        try:
            data = self.pickle_module.dumps(value, protocol=self.pickle_protocol)
        except Exception as e:  # pickling raises many kinds (PicklingError, TypeError, ...)
            hint = ("; to save a model or an optimizer, save its state_dict()"
                    if hasattr(value, "state_dict") else "")
            raise TypeError(f"save: cannot save a value of type {type_name} at {_show(path)}: "
                            f"it is not a Tensor, array, number, string, bytes or container "
                            f"of these, and pickling it failed ({type(e).__name__}: {e}){hint}"
                            ) from e
        self.version = 2
        entry = self.add_entry(path, np.frombuffer(data, dtype=np.uint8))
        return {"pickle": entry, "type": type_name}

    def add_entry(self, path, array):
        """Store a C-contiguous copy (or view) of a little-endian ``array``; returns its
        entry name, the key path joined with '/', made unique with ~2, ~3, ..."""
        name = "/".join(path) or "tensor"
        if name in self.entries or name == "__metadata__":
            n = 2
            while f"{name}~{n}" in self.entries:
                n += 1
            name = f"{name}~{n}"
        self.entries[name] = array if array.flags.c_contiguous else array.copy(order="C")
        return name


_NOT_NATIVE = object()


def _is_device(value):
    cls = type(value)
    return cls.__module__ == "retrograd.device" and cls.__name__ == "device"


def _type_name(value):
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _encode_int(value):
    if -_SAFE_INT < value < _SAFE_INT:
        return int(value)
    return {"int": hex(value)}  # hex is exempt from Python's limit on int-to-decimal digits


def _encode_float(value):
    value = float(value)
    if math.isfinite(value):
        return value
    (bits,) = struct.unpack("<Q", struct.pack("<d", value))
    return {"float": f"{bits:#018x}"}


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
def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """Load what ``save`` wrote, or any safetensors file (``torch.load``'s signature).

    Args:
        f: a path (str or os.PathLike), or a binary file object read from its current
            position (``io.BytesIO``, ``open(path, "rb")``).
        map_location: where tensors go. retrograd computes on the CPU, so this may be None,
            'cpu', a device whose str() is 'cpu', a dict mapping locations (as
            ``{'cuda:0': 'cpu'}``), or a callable ``fn(tensor, 'cpu')`` returning a Tensor
            (or None to keep it). Anything asking for another device is a RuntimeError.
        pickle_module: the module that unpickles pickled objects (weights_only=False only).
        weights_only (bool or None): True (the default, as in PyTorch since 2.6) loads only
            data: Tensors, arrays, numbers, strings, bytes, and dicts, lists, tuples and sets
            of these. A file holding a pickled object of another class then raises
            ``pickle.UnpicklingError`` naming its class; with False it is unpickled, which
            can run code from the file: only for files you trust.
        mmap (bool or None): map the file into memory instead of reading it (copy on write:
            changing a loaded tensor never changes the file). Needs a path.
        **pickle_load_args: passed to ``pickle_module.loads`` (weights_only=False only).

    A safetensors file from elsewhere comes back as a dict of name -> Tensor. A missing file
    raises FileNotFoundError; a damaged or foreign file, including a PyTorch ``.pt`` file
    (a pickle, which retrograd never reads), raises ValueError naming the file.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> import retrograd as rg
        >>> checkpoint = {"epoch": 3, "state": {0: {"step": 10, "buf": np.zeros(2)}},
        ...               "shape": (2, 3), "lr": float("inf")}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = os.path.join(tmp, "checkpoint.pt")
        ...     rg.save(checkpoint, path)
        ...     loaded = rg.load(path, map_location="cpu")
        >>> loaded["state"][0]["step"], loaded["shape"], loaded["lr"]
        (10, (2, 3), inf)
    """
    options = _LoadOptions(map_location, pickle_module, weights_only, pickle_load_args)
    if _is_path(f):
        return _load_path(os.fspath(f), bool(mmap), options)
    if mmap:
        raise ValueError(f"load: mmap=True needs f to be a file path, got a "
                         f"{type(f).__name__}")
    if isinstance(f, io.TextIOBase):
        raise TypeError("load: f is a text file; open it in binary mode ('rb')")
    if not callable(getattr(f, "read", None)):
        raise TypeError(f"load: f must be a path (str or os.PathLike) or a binary file object "
                        f"with a read() method, got {type(f).__name__}")
    return _load_stream(f, options)


class _LoadOptions:
    """load's options, checked before anything is read."""

    def __init__(self, map_location, pickle_module, weights_only, pickle_load_args):
        if weights_only is None:
            weights_only = True
        if weights_only and pickle_module is not None:
            raise RuntimeError("load: Can not safely load weights when explicit pickle_module "
                               "is specified (pass weights_only=False to unpickle with it)")
        self.weights_only = bool(weights_only)
        self.pickle_module = pickle if pickle_module is None else pickle_module
        self.pickle_load_args = pickle_load_args
        self.place = _placement(map_location)


def _placement(map_location):
    """A function placing one loaded Tensor per ``map_location`` (see load)."""
    if map_location is None:
        return lambda tensor: tensor
    if isinstance(map_location, dict):
        targets = {str(k): v for k, v in map_location.items()}
        _check_cpu(targets.get("cpu", "cpu"), f"map_location={map_location!r}")
        return lambda tensor: tensor
    if callable(map_location):
        return lambda tensor: _call_placement(map_location, tensor)
    _check_cpu(map_location, f"map_location={map_location!r}")
    return lambda tensor: tensor


def _check_cpu(device, what):
    name = device if isinstance(device, str) else str(device)
    if name != "cpu" and not re.fullmatch(r"cpu:\d+", name):
        raise RuntimeError(f"load: {what} asks for device {name!r}, but retrograd computes on "
                           f"the CPU only; use map_location='cpu' or leave it None")


def _call_placement(fn, tensor):
    placed = fn(tensor, "cpu")
    if placed is None:
        return tensor
    if not isinstance(placed, Tensor):
        raise TypeError(f"load: map_location({_describe_tensor(tensor)}, 'cpu') returned "
                        f"{type(placed).__name__}; it must return a Tensor, or None to keep the "
                        f"loaded one")
    return placed


def _describe_tensor(tensor):
    return f"tensor of shape {tuple(tensor.shape)}"


def _load_path(path, use_mmap, options):
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
            if use_mmap and size > 0:
                reader = _MappedReader(_mmap.mmap(f.fileno(), 0, access=_mmap.ACCESS_COPY))
            else:
                reader = _Reader(f, 0)
            return _load_from(reader, size, path, options, f)
        except OSError as e:  # an I/O error while reading
            raise _read_error(e, path, "read") from None


def _load_stream(f, options):
    label = _stream_label(f)
    try:
        base = f.tell()
        size = f.seek(0, os.SEEK_END) - base
        f.seek(base)
    except (AttributeError, OSError, ValueError):  # not seekable: read it all
        f = io.BytesIO(f.read())
        base, size = 0, len(f.getbuffer())
    try:
        return _load_from(_Reader(f, base), size, label, options, f)
    finally:
        f.seek(base + size)


def _stream_label(f):
    name = getattr(f, "name", None)
    return name if isinstance(name, str) else f"<{type(f).__name__}>"


class _Reader:
    """The bytes of one saved object in a binary file object, counted from ``base``."""

    def __init__(self, f, base):
        self.f, self.base = f, base

    def bytes_at(self, offset, n):
        self.f.seek(self.base + offset)
        return self.f.read(n)

    def array_at(self, offset, n):
        """A fresh, aligned uint8 array of the n bytes at offset (fewer if the file shrank)."""
        self.f.seek(self.base + offset)
        buffer = np.empty(n, dtype=np.uint8)
        readinto = getattr(self.f, "readinto", None)
        if readinto is not None:
            got = readinto(buffer)
            return buffer if got == n else buffer[:got or 0]
        data = self.f.read(n)
        return np.frombuffer(data, dtype=np.uint8).copy()


class _MappedReader:
    """The bytes of a file mapped copy-on-write: arrays are views of the mapping."""

    def __init__(self, mapped):
        self.mapped = mapped

    def bytes_at(self, offset, n):
        return self.mapped[offset:offset + n]

    def array_at(self, offset, n):
        if n == 0:
            return np.empty(0, dtype=np.uint8)
        return np.frombuffer(self.mapped, dtype=np.uint8, count=n, offset=offset)


def _load_from(reader, size, label, options, raw):
    try:
        header, data_start = _read_header(reader, size, label)
    except ValueError:
        foreign = _foreign_format(reader, size, raw)
        if foreign is not None:
            raise _foreign_error(label, foreign) from None
        raise
    metadata = header.pop("__metadata__", None)
    _check_metadata(metadata, label)
    entries = {name: _check_entry(name, entry, size - data_start, label)
               for name, entry in header.items()}
    _check_layout(entries, size - data_start, label)
    arrays = {name: _read_array(reader, data_start, name, entry, label)
              for name, entry in entries.items()}
    structure = (metadata or {}).get(_STRUCTURE_KEY)
    if structure is None:
        return {name: options.place(make_tensor(_tensor_array(arrays, name, label)))
                for name in arrays}
    return _Decoder(arrays, label, options).run(structure)


# PyTorch's legacy (pre-1.6) files start with a pickled magic number (protocol 2, a long)
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def _foreign_format(reader, size, raw):
    """What a file that is not safetensors is, when it is recognizable, else None."""
    head = bytes(reader.bytes_at(0, min(size, len(_TORCH_LEGACY_MAGIC))))
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(raw)
    if head == _TORCH_LEGACY_MAGIC:
        return "a PyTorch file in torch.save's legacy (pre-1.6) format, a pickle"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle"
    return None


def _zip_kind(raw):
    try:
        raw.seek(0)
        names = zipfile.ZipFile(raw).namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        names = []
    if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return "a PyTorch file (torch.save's zip format, whose data.pkl is a pickle)"
    return "a zip archive"


def _foreign_error(label, kind):
    return ValueError(
        f"load: cannot read {label!r}: it is {kind}, not a safetensors file. retrograd does not "
        f"read PyTorch's pickles (unpickling runs code from the file); the format both read is "
        f"safetensors. In PyTorch: `from safetensors.torch import save_file; "
        f"save_file(model.state_dict(), 'model.safetensors')`; then "
        f"`model.load_state_dict(retrograd.load('model.safetensors'))` "
        f"(retrograd.utils.serialization.load reads any safetensors file, and what "
        f"retrograd.save writes, PyTorch reads with safetensors.torch.load_file)")


def _error(path, what):
    return ValueError(f"load: cannot read {path!r}: {what}")


def _read_error(e, path, verb):
    """A system error on opening or reading ``path`` as the same kind of error, naming it."""
    reason = e.strerror or str(e)
    return OSError(e.errno, f"load: cannot {verb} {path!r}: {reason[:1].lower()}{reason[1:]}")


def _read_header(reader, size, path):
    """The parsed JSON header and where the data section starts."""
    if size < 8:
        raise _error(path, f"the file is {size} bytes long, too short for the 8-byte header "
                           f"length (truncated, or not a safetensors file)")
    (n,) = struct.unpack("<Q", reader.bytes_at(0, 8))
    if n > _MAX_HEADER:
        raise _error(path, f"the header length field says {n} bytes, more than the format's "
                           f"limit of {_MAX_HEADER} (not a safetensors file?)")
    if n > size - 8:
        raise _error(path, f"the header length field says {n} bytes but only {size - 8} bytes "
                           f"follow it (truncated inside the header, or not a safetensors file)")
    raw = bytes(reader.bytes_at(8, n))
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


def _read_array(reader, data_start, name, entry, path):
    dtype, shape, begin, end = entry
    buffer = reader.array_at(data_start + begin, end - begin)
    if buffer.size != end - begin:
        raise _error(path, "the file shrank while it was read")
    if dtype == np.bool_ and np.any(buffer > 1):
        raise _error(path, f"tensor {name!r} of dtype BOOL holds bytes other than 0 and 1")
    return buffer.view(dtype).reshape(shape)


def _hashable(value):
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _tensor_array(arrays, name, path):
    array = arrays[name]
    if array.dtype not in _dt._BY_NUMPY:
        raise _error(path, f"tensor {name!r} has dtype {_CODES[array.dtype]}, which a retrograd "
                           f"Tensor cannot hold (no {array.dtype} dtype)")
    return array


class _Decoder:
    """Rebuilds the saved structure from its JSON form and the file's arrays."""

    def __init__(self, arrays, path, options):
        self.arrays = arrays
        self.path = path
        self.options = options
        self.used = set()

    def run(self, structure):
        try:
            tree = _parse_json(structure)
        except ValueError as e:
            raise self.error(f"it is not valid JSON: {e}") from None
        if not isinstance(tree, dict) or tree.get("version") not in _STRUCTURE_VERSIONS:
            raise self.error(f"expected an object with version 1 or 2 (a file from a newer "
                             f"retrograd?), got {_short(tree)}")
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
        if tag not in _TAGS or not set(node) - {tag} <= _TAGS[tag]:
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
            self.expect(_hashable(key) and key not in out, node)
            out[key] = self.value(item)
        return out

    def tag_odict(self, body, node):
        return OrderedDict(self.mapping(body, node))

    def tag_counter(self, body, node):
        return Counter(self.mapping(body, node))

    def mapping(self, body, node):
        """The dict inside an odict or counter node."""
        self.expect(isinstance(body, dict) and len(body) == 1
                    and next(iter(body)) in ("dict", "items"), node)
        return self.value(body)

    def tag_set(self, body, node):
        self.expect(isinstance(body, list), node)
        items = [self.value(item) for item in body]
        self.expect(all(_hashable(item) for item in items), node)
        return set(items)

    def tag_complex(self, body, node):
        self.expect(isinstance(body, list) and len(body) == 2, node)
        real, imag = (self.value(part) for part in body)
        self.expect(all(isinstance(x, float) for x in (real, imag)), node)
        return complex(real, imag)

    def tag_bytes(self, body, node):
        return self.raw_bytes(body, node)

    def tag_bytearray(self, body, node):
        return bytearray(self.raw_bytes(body, node))

    def raw_bytes(self, name, node):
        array = self.arrays[self.entry(name, node)]
        self.expect(array.dtype == np.uint8 and array.ndim == 1, node)
        return array.tobytes()

    def tag_dtype(self, body, node):
        self.expect(isinstance(body, str) and body in _dt._BY_NAME, node)
        return _dt._BY_NAME[body]

    def tag_device(self, body, node):
        from retrograd.device import device  # lazily: only files that hold a device need it
        self.expect(isinstance(body, str), node)
        try:
            return device(body)
        except (RuntimeError, ValueError, TypeError) as e:
            raise self.error(f"bad device {_short(body)}: {e}") from None

    def tag_pickle(self, body, node):
        type_name = node.get("type")
        self.expect(isinstance(type_name, str), node)
        data = self.raw_bytes(body, node)
        if self.options.weights_only:
            raise pickle.UnpicklingError(
                f"load: weights_only=True (the default) refused an object of type {type_name} "
                f"in {self.path!r} (at key path {body}): weights-only loading reads Tensors, "
                f"arrays, numbers, strings, bytes and containers of these. If you trust the "
                f"source of the file, load it with weights_only=False, which unpickles the "
                f"object (and so can run code from the file)")
        try:
            return self.options.pickle_module.loads(data, **self.options.pickle_load_args)
        except Exception as e:  # unpickling raises anything: ImportError, AttributeError, ...
            raise _error(self.path, f"unpickling the object of type {type_name} at key path "
                                    f"{body} failed: {type(e).__name__}: {e}") from e

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
        tensor = make_tensor(array, requires_grad=requires_grad and _dt.is_floating(array.dtype))
        return self.options.place(tensor)

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
