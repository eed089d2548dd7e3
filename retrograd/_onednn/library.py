"""oneDNN's C API through ctypes: the library of the 'fast' extra's ``onednn-cpu-gomp`` wheel
(oneDNN 3.2, built on GNU OpenMP, the runtime of Numba's threads too, so that the
convolutions and the compiled kernels share one pool of threads), one CPU engine and one
in-order stream for the process, memory descriptors and memory objects over NumPy arrays,
reorders between layouts and primitive execution.

oneDNN's handles live in ``Handle`` objects that destroy them when collected. A failing call
raises OneDNNError naming the call and its status (``check``); only the callers decide what is
a fallback (an unimplemented primitive) and what is an error.
"""

import ctypes
import ctypes.util
import importlib.metadata
import os

import numpy as np

__all__ = ["ARG", "OneDNNError", "Handle", "Library", "load", "set_threads", "usable"]

_DISTRIBUTION = "onednn-cpu-gomp"
_SONAME = "libdnnl.so.3"
_MAX_DIMS = 12                  # DNNL_MAX_NDIMS
_F32 = 3                        # dnnl_f32
_FORMAT_ANY = 1                 # dnnl_format_tag_any
_CPU = 1                        # dnnl_cpu
_IN_ORDER = 1                   # dnnl_stream_in_order
_QUERY_IMPL_INFO = 8            # dnnl_query_impl_info_str
_SCRATCHPAD_USER = 1            # dnnl_scratchpad_mode_user
_OPENMP_RUNTIME = 2             # DNNL_RUNTIME_OMP
_STATUS = {1: "out of memory", 2: "invalid arguments", 3: "unimplemented",
           4: "last implementation reached", 5: "runtime error", 6: "not required",
           7: "invalid graph", 8: "invalid graph op", 9: "invalid shape",
           10: "invalid data type"}

# execution argument indexes (DNNL_ARG_*) and memory descriptor queries (dnnl_query_*_md)
ARG = {"src": 1, "dst": 17, "weights": 33, "bias": 41, "diff_src": 129, "diff_dst": 145,
       "diff_weights": 161, "diff_bias": 169, "scratchpad": 80}
QUERY = {"src": 129, "diff_src": 130, "weights": 131, "diff_weights": 132, "dst": 133,
         "diff_dst": 134, "scratchpad": 136}

_Dims = ctypes.c_int64 * _MAX_DIMS
_pointer = ctypes.c_void_p


class OneDNNError(RuntimeError):
    """A oneDNN call that did not return dnnl_success."""


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int),
                ("hash", ctypes.c_char_p), ("cpu_runtime", ctypes.c_uint),
                ("gpu_runtime", ctypes.c_uint)]


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _pointer)]


def dims(values):
    """A dnnl_dims_t holding ``values``."""
    array = _Dims()
    for i, value in enumerate(values):
        array[i] = value
    return array


class Handle:
    """A oneDNN handle destroyed by ``destroy`` (a library function) when collected."""

    __slots__ = ("value", "_destroy")

    def __init__(self, value, destroy):
        self.value, self._destroy = value, destroy

    def __del__(self):
        if self.value:
            self._destroy(self.value)
            self.value = None


def _library_path():
    """Where the wheel put libdnnl.so.3 (its data files go to the environment's lib/), else
    the system's library search (None: not installed)."""
    try:
        files = importlib.metadata.distribution(_DISTRIBUTION).files or ()
    except importlib.metadata.PackageNotFoundError:
        files = ()
    for file in files:
        if file.name == _SONAME:
            path = str(file.locate())
            if os.path.exists(path):
                return path
    found = ctypes.util.find_library("dnnl")
    return found if found is not None and found.endswith(_SONAME) else None


class Library:
    """The loaded library with its engine and stream."""

    def __init__(self, path):
        self.cdll = cdll = ctypes.CDLL(path)
        cdll.dnnl_version.restype = ctypes.POINTER(_Version)
        version = cdll.dnnl_version().contents
        if version.major != 3 or version.cpu_runtime != _OPENMP_RUNTIME:
            # this module speaks oneDNN 3's C API, and shares threads through OpenMP only
            raise OneDNNError(f"oneDNN: {path} is version {version.major}.{version.minor} "
                              f"with CPU runtime {version.cpu_runtime}; retrograd uses 3.x "
                              f"on OpenMP ({_OPENMP_RUNTIME})")
        self._declare(cdll)
        engine = _pointer()
        self.check(cdll.dnnl_engine_create(ctypes.byref(engine), _CPU, 0), "dnnl_engine_create")
        self.engine = Handle(engine, cdll.dnnl_engine_destroy)
        stream = _pointer()
        self.check(cdll.dnnl_stream_create(ctypes.byref(stream), engine, _IN_ORDER),
                   "dnnl_stream_create")
        self.stream = Handle(stream, cdll.dnnl_stream_destroy)
        # the primitives' temporary memory (a conv's per-thread partial dL/dW, say) comes from
        # retrograd as NumPy buffers, as PyTorch gives it: counted by tracemalloc and the
        # memory tools like every other array, freed after each call
        attr = _pointer()
        self.check(cdll.dnnl_primitive_attr_create(ctypes.byref(attr)),
                   "dnnl_primitive_attr_create")
        self.user_scratchpad = Handle(attr, cdll.dnnl_primitive_attr_destroy)
        self.check(cdll.dnnl_primitive_attr_set_scratchpad_mode(attr, _SCRATCHPAD_USER),
                   "dnnl_primitive_attr_set_scratchpad_mode")

    @staticmethod
    def _declare(cdll):
        for name in ("dnnl_engine_destroy", "dnnl_stream_destroy", "dnnl_memory_destroy",
                     "dnnl_memory_desc_destroy", "dnnl_primitive_desc_destroy",
                     "dnnl_primitive_destroy", "dnnl_stream_wait",
                     "dnnl_primitive_attr_destroy"):
            getattr(cdll, name).argtypes = [_pointer]
        cdll.dnnl_primitive_desc_query_md.restype = _pointer
        cdll.dnnl_primitive_desc_query_md.argtypes = [_pointer, ctypes.c_int, ctypes.c_int]
        cdll.dnnl_memory_desc_get_size.restype = ctypes.c_size_t
        cdll.dnnl_memory_desc_get_size.argtypes = [_pointer]
        cdll.dnnl_memory_desc_equal.argtypes = [_pointer, _pointer]
        cdll.dnnl_memory_set_data_handle.argtypes = [_pointer, _pointer]
        cdll.dnnl_primitive_execute.argtypes = [_pointer, _pointer, ctypes.c_int,
                                                ctypes.POINTER(_ExecArg)]
        dim = ctypes.c_int64
        cdll.dnnl_sgemm.argtypes = [ctypes.c_char, ctypes.c_char, dim, dim, dim,
                                    ctypes.c_float, _pointer, dim, _pointer, dim,
                                    ctypes.c_float, _pointer, dim]

    @staticmethod
    def check(status, call):
        if status != 0:
            raise OneDNNError(f"oneDNN: {call} returned status {status} "
                              f"({_STATUS.get(status, 'unknown')})")

    def plain_desc(self, shape):
        """The float32 memory descriptor of a C-contiguous array of ``shape``."""
        strides, step = [], 1
        for size in reversed(shape):
            strides.append(step)
            step *= max(size, 1)
        return self._desc("dnnl_memory_desc_create_with_strides", shape, strides[::-1])

    def any_desc(self, shape):
        """A float32 descriptor of ``shape`` whose layout the primitive chooses."""
        return self._desc("dnnl_memory_desc_create_with_tag", shape, _FORMAT_ANY)

    def _desc(self, call, shape, layout):
        desc = _pointer()
        layout = dims(layout) if isinstance(layout, list) else ctypes.c_int(layout)
        self.check(getattr(self.cdll, call)(ctypes.byref(desc), len(shape), dims(shape), _F32,
                                            layout), call)
        return Handle(desc, self.cdll.dnnl_memory_desc_destroy)

    def primitive_desc(self, call, *args):
        """A primitive descriptor from ``call`` (a dnnl_*_primitive_desc_create function)."""
        desc = _pointer()
        self.check(getattr(self.cdll, call)(ctypes.byref(desc), *args), call)
        return Handle(desc, self.cdll.dnnl_primitive_desc_destroy)

    def queried_desc(self, primitive_desc, what):
        """The memory descriptor (owned by the primitive descriptor) of ``what``."""
        return _pointer(self.cdll.dnnl_primitive_desc_query_md(primitive_desc.value,
                                                               QUERY[what], 0))

    def implementation(self, primitive_desc):
        """The implementation oneDNN chose, e.g. 'jit:avx512_core'."""
        name = ctypes.c_char_p()
        self.cdll.dnnl_primitive_desc_query(primitive_desc.value, _QUERY_IMPL_INFO, 0,
                                            ctypes.byref(name))
        return name.value.decode()

    def primitive(self, primitive_desc):
        primitive = _pointer()
        self.check(self.cdll.dnnl_primitive_create(ctypes.byref(primitive),
                                                   primitive_desc.value), "dnnl_primitive_create")
        return Handle(primitive, self.cdll.dnnl_primitive_destroy)

    def same(self, desc_a, desc_b):
        return bool(self.cdll.dnnl_memory_desc_equal(_value(desc_a), _value(desc_b)))

    def size(self, desc):
        """The bytes of memory a descriptor's layout takes."""
        return self.cdll.dnnl_memory_desc_get_size(_value(desc))

    def memory(self, desc):
        """A memory object of ``desc`` with no data yet (``bind`` gives it an array)."""
        memory = _pointer()
        self.check(self.cdll.dnnl_memory_create(ctypes.byref(memory), _value(desc),
                                                self.engine.value, _pointer(0)),
                   "dnnl_memory_create")
        return Handle(memory, self.cdll.dnnl_memory_destroy)

    def bind(self, memory, array):
        self.check(self.cdll.dnnl_memory_set_data_handle(memory.value, array.ctypes.data),
                   "dnnl_memory_set_data_handle")

    def reorder(self, source_desc, target_desc):
        """The reorder primitive from one layout to another."""
        desc = self.primitive_desc("dnnl_reorder_primitive_desc_create", _value(source_desc),
                                   self.engine.value, _value(target_desc), self.engine.value,
                                   None)
        return self.primitive(desc)

    def arguments(self, memories):
        """{argument name: memory object} as dnnl_primitive_execute takes it, made once per
        primitive (the memory objects stay; ``bind`` changes the arrays they see)."""
        return (_ExecArg * len(memories))(*[_ExecArg(ARG[name], memory.value)
                                            for name, memory in memories.items()])

    def execute(self, primitive, arguments):
        """Run ``primitive`` on ``arguments`` (from ``arguments``); ``wait`` for it."""
        self.check(self.cdll.dnnl_primitive_execute(primitive.value, self.stream.value,
                                                    len(arguments), arguments),
                   "dnnl_primitive_execute")

    def wait(self):
        self.check(self.cdll.dnnl_stream_wait(self.stream.value), "dnnl_stream_wait")


def _value(desc):
    return desc.value if isinstance(desc, Handle) else desc


def empty(library, desc):
    """A float32 NumPy buffer as large as ``desc``'s layout."""
    return np.empty(library.size(desc) // 4, np.float32)


_LOADED = []
_FORKED = [False]
_THREADS = []


def _forked_child():
    """A child made by fork() leaves oneDNN alone: GNU OpenMP's threads are the parent's,
    and a parallel region started in the child after the parent ran one waits for them
    forever."""
    _FORKED[0] = True


os.register_at_fork(after_in_child=_forked_child)


def load():
    """The Library, or None where the wheel is not installed or cannot be loaded (no GNU
    OpenMP runtime, another CPU architecture) and in a child made by fork()."""
    if _FORKED[0]:
        return None
    if not _LOADED:
        path = _library_path()
        library = None
        if path is not None:
            try:
                library = Library(path)
            except (OSError, OneDNNError, AttributeError):
                library = None
        _LOADED.append(library)
        if library is not None and _THREADS:
            _openmp_threads(_THREADS[-1])
    return _LOADED[0]


def usable():
    """Whether the library loaded and this process is not a child made by fork()."""
    return load() is not None


def set_threads(count):
    """Run oneDNN's primitives on ``count`` threads (retrograd.set_num_threads calls this):
    GNU OpenMP's count for the calling thread, now or when the library loads."""
    _THREADS.append(count)
    if _LOADED and _LOADED[0] is not None:
        _openmp_threads(count)


def openmp():
    """GNU OpenMP, the runtime libdnnl.so.3 is linked with (loaded with it)."""
    return ctypes.CDLL("libgomp.so.1")


def _openmp_threads(count):
    openmp().omp_set_num_threads(ctypes.c_int(count))
