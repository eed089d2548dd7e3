"""``retrograd.cuda``: PyTorch's CUDA module, for programs that ask whether CUDA is there.

retrograd computes on the CPU, so ``is_available()`` is False and ``device_count()`` is 0.
Programs call some functions unconditionally (seeding every generator, emptying the cache,
reading memory counters); those work and do nothing, as in a CPU-only PyTorch. The functions
that need a GPU (``synchronize``, ``current_device``, ``get_device_name``, ...) raise a
RuntimeError that names the call and says that retrograd runs on the CPU only.
"""

__all__ = ["is_available", "device_count", "is_initialized", "manual_seed", "manual_seed_all",
           "seed", "seed_all", "empty_cache", "memory_allocated", "max_memory_allocated",
           "memory_reserved", "max_memory_reserved", "reset_peak_memory_stats",
           "is_bf16_supported", "synchronize", "current_device", "set_device",
           "get_device_name", "get_device_capability", "get_device_properties", "mem_get_info",
           "get_rng_state", "set_rng_state", "init", "ipc_collect"]


def is_available():
    """False: retrograd runs on the CPU only."""
    return False


def device_count():
    return 0


def is_initialized():
    return False


def manual_seed(seed):
    """Nothing to seed (no CUDA generator); ``seed`` is checked as PyTorch does (int(seed))."""
    int(seed)


def manual_seed_all(seed):
    int(seed)


def seed():
    """Nothing to seed."""


def seed_all():
    """Nothing to seed."""


def empty_cache():
    """No CUDA cache to empty."""


def memory_allocated(device=None):
    """0: no CUDA memory is ever allocated (as a CPU-only PyTorch)."""
    return 0


def max_memory_allocated(device=None):
    return 0


def memory_reserved(device=None):
    return 0


def max_memory_reserved(device=None):
    return 0


def reset_peak_memory_stats(device=None):
    """No counters to reset."""


def is_bf16_supported(including_emulation=True):
    return False


def _unavailable(name):
    def call(*args, **kwargs):
        raise RuntimeError(f"retrograd.cuda.{name}: CUDA is not available: retrograd runs on "
                           f"the CPU only (retrograd.cuda.is_available() is False)")

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Raises a RuntimeError: ``{name}`` needs a GPU, and retrograd has none."
    return call


synchronize = _unavailable("synchronize")
current_device = _unavailable("current_device")
set_device = _unavailable("set_device")
get_device_name = _unavailable("get_device_name")
get_device_capability = _unavailable("get_device_capability")
get_device_properties = _unavailable("get_device_properties")
mem_get_info = _unavailable("mem_get_info")
get_rng_state = _unavailable("get_rng_state")
set_rng_state = _unavailable("set_rng_state")
init = _unavailable("init")
ipc_collect = _unavailable("ipc_collect")


def __getattr__(name):
    """``retrograd.cuda.amp`` (PyTorch's older autocast and GradScaler spellings) loads on
    first use: the mixed-precision package sits above nn/ and is not start-up work."""
    if name == "amp":
        import importlib

        return importlib.import_module("retrograd.amp.cuda")
    raise AttributeError(f"module 'retrograd.cuda' has no attribute {name!r}")
