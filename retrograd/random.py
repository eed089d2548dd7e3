"""retrograd's random number generators: ``Generator`` objects, and the default one that
``manual_seed`` seeds.

Every random op (randn, dropout masks, init, DataLoader shuffling) draws from
``default_generator`` unless it is given a ``generator=``, so one seed makes a whole run
reproducible, and ``get_rng_state``/``set_rng_state`` let a checkpoint resume the exact stream.

A ``Generator`` is PyTorch's ``torch.Generator`` on NumPy: ``Generator().manual_seed(0)``
returns the generator, ``initial_seed()``, ``seed()``, ``get_state()``/``set_state()`` (a
uint8 tensor) and ``clone_state()`` behave as in PyTorch. Underneath is one NumPy
``np.random.Generator`` on a PCG64 bit generator, which ``numpy_generator()`` hands out for
code that needs a draw retrograd has no function for (``numpy_generator(generator)`` below
resolves ``generator=None`` to the default one). The same seed gives the same stream in
retrograd, but not the stream PyTorch gives: its CPU generator is a Mersenne Twister.

Example:
    >>> import retrograd as rg
    >>> g = rg.Generator().manual_seed(42)
    >>> a = rg.randn(3, generator=g)
    >>> g.manual_seed(42) is g
    True
    >>> bool((rg.randn(3, generator=g) == a).all())
    True
    >>> state = g.get_state()
    >>> state.dtype, g.initial_seed()
    (retrograd.uint8, 42)
"""

import contextlib

import numpy as np

__all__ = ["Generator", "default_generator", "manual_seed", "seed", "initial_seed",
           "get_rng_state", "set_rng_state", "fork_rng", "generator", "numpy_generator",
           "normal", "uniform", "integers", "permutation"]

DEFAULT_SEED = 0
_SEED_LOW, _SEED_HIGH = -(1 << 63), 1 << 64   # torch accepts a long long or an unsigned one
_MAGIC = b"RGPCG64\x01"                        # the state tensor's first bytes: kind, version
_STATE_BYTES = len(_MAGIC) + 16 + 16 + 1 + 4 + 8


class Generator:
    """A random number generator, as ``torch.Generator``: pass it as ``generator=`` to
    ``randn``, ``rand``, ``randint``, ``randperm``, ``Tensor.normal_``, samplers,
    ``random_split`` and ``DataLoader`` to draw from a stream of its own.

    Args:
        device: where the generator lives; only the CPU (``"cpu"`` or
            ``retrograd.device("cpu")``).

    A new generator starts from seed 0 (``initial_seed()`` is 0), so it is reproducible
    until it is reseeded, as a new ``torch.Generator`` is.

    Example:
        >>> import retrograd as rg
        >>> g = rg.Generator().manual_seed(7)
        >>> rg.randperm(5, generator=g).tolist() == \\
        ...     rg.randperm(5, generator=rg.Generator().manual_seed(7)).tolist()
        True
    """

    def __init__(self, device="cpu"):
        self._device = _cpu_device(device)
        self._numpy = np.random.Generator(np.random.PCG64(DEFAULT_SEED))
        self._initial_seed = DEFAULT_SEED

    @property
    def device(self):
        return self._device

    def manual_seed(self, seed):
        """Reseed with ``seed`` (an int in [-2**63, 2**64); negative ones wrap to unsigned, as
        in PyTorch); returns the generator."""
        seed = _check_seed(seed)
        # Reseed in place: the NumPy Generator object stays the same, so code holding it
        # (numpy_generator()) sees the new stream.
        self._numpy.bit_generator.state = np.random.PCG64(seed).state
        self._initial_seed = seed
        return self

    def seed(self):
        """Reseed from the operating system's entropy; returns the seed used."""
        value = int(np.random.SeedSequence().entropy % (1 << 63))
        self.manual_seed(value)
        return value

    def initial_seed(self):
        """The seed of the last ``manual_seed``/``seed`` (0 for a new generator)."""
        return self._initial_seed

    def get_state(self):
        """The generator's state as a uint8 tensor (PCG64's state, increment and buffered
        word, and the initial seed); ``set_state`` restores it."""
        from retrograd.tensor import make_tensor  # here: tensor.py imports this module

        return make_tensor(np.frombuffer(self._state_bytes(), dtype=np.uint8).copy())

    def set_state(self, new_state):
        """Restore a state from ``get_state()`` (or the NumPy state dict that
        ``retrograd.get_rng_state()`` returns); returns the generator."""
        if isinstance(new_state, dict):
            self._set_numpy_state(new_state)
            return self
        self._load_state_bytes(_state_bytes_of(new_state))
        return self

    def clone_state(self):
        """A new generator in the same state (and with the same initial seed)."""
        twin = Generator(self._device)
        twin._load_state_bytes(self._state_bytes())
        return twin

    def numpy_generator(self):
        """The ``np.random.Generator`` this generator draws from (shared, not a copy: every
        draw from it advances this generator). For draws retrograd has no function for::

            idx = g.numpy_generator().choice(n, size=k, p=probs)
        """
        return self._numpy

    def __reduce__(self):
        return (_rebuild_generator, (str(self._device), self._state_bytes()))

    def __repr__(self):
        return f"<retrograd.Generator device='{self._device}' initial_seed={self._initial_seed}>"

    # ------------------------------------------------------------------ state layout
    def _state_bytes(self):
        state = self._numpy.bit_generator.state
        return b"".join([
            _MAGIC,
            state["state"]["state"].to_bytes(16, "little"),
            state["state"]["inc"].to_bytes(16, "little"),
            int(state["has_uint32"]).to_bytes(1, "little"),
            int(state["uinteger"]).to_bytes(4, "little"),
            self._initial_seed.to_bytes(8, "little"),
        ])

    def _load_state_bytes(self, data):
        if len(data) != _STATE_BYTES or not data.startswith(_MAGIC):
            raise RuntimeError(f"Generator.set_state: expected a state of {_STATE_BYTES} bytes "
                               f"from Generator.get_state(), got {len(data)} bytes that are "
                               f"not one (a PyTorch generator's state cannot be loaded)")
        fields, start = [], len(_MAGIC)
        for size in (16, 16, 1, 4, 8):
            fields.append(int.from_bytes(data[start:start + size], "little"))
            start += size
        state, inc, has_uint32, uinteger, initial = fields
        self._set_numpy_state({"bit_generator": "PCG64", "state": {"state": state, "inc": inc},
                               "has_uint32": has_uint32, "uinteger": uinteger})
        self._initial_seed = initial

    def _set_numpy_state(self, state):
        if state.get("bit_generator") != "PCG64":
            raise RuntimeError(f"Generator.set_state: expected a PCG64 state, got one of "
                               f"{state.get('bit_generator')!r}")
        self._numpy.bit_generator.state = state


def _rebuild_generator(device, state):
    generator_ = Generator(device)
    generator_._load_state_bytes(state)
    return generator_


def _cpu_device(value):
    from retrograd.device import check_cpu  # here: device.py needs nothing from us

    return check_cpu("Generator", value)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
    seed = int(seed)
    if not _SEED_LOW <= seed < _SEED_HIGH:
        raise ValueError(f"manual_seed: seed {seed} is out of range [-2**63, 2**64)")
    return seed % (1 << 64)


def _state_bytes_of(state):
    from retrograd.tensor import Tensor  # here: tensor.py imports this module

    if isinstance(state, Tensor):
        state = state._data
    if not isinstance(state, np.ndarray) or state.dtype != np.uint8 or state.ndim != 1:
        raise TypeError(f"Generator.set_state: RNG state must be a 1-D uint8 tensor from "
                        f"get_state(), got {_describe(state)}")
    return state.tobytes()


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return type(value).__name__


default_generator = Generator()


def numpy_generator(generator=None):
    """The NumPy Generator behind ``generator`` (a ``retrograd.Generator``), or behind
    ``default_generator`` when it is None: the one place a random op resolves its
    ``generator=`` argument.

    Example:
        >>> g = Generator().manual_seed(3)
        >>> numpy_generator(g) is g.numpy_generator()
        True
    """
    if generator is None:
        return default_generator._numpy
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a retrograd.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator._numpy


def generator():
    """The default generator's NumPy Generator (``numpy_generator(None)``)."""
    return default_generator._numpy


def manual_seed(seed):
    """Reseed the default generator; returns it (as ``torch.manual_seed``). Like PyTorch,
    ``seed`` is passed through ``int()`` first."""
    return default_generator.manual_seed(int(seed))


def seed():
    """Reseed the default generator from the operating system's entropy; returns the seed."""
    return default_generator.seed()


def initial_seed():
    """The seed of the default generator's last ``manual_seed``/``seed``."""
    return default_generator.initial_seed()


def get_rng_state():
    """A picklable snapshot of the default generator's stream (NumPy's PCG64 state dict).

    NOTE: PyTorch returns a uint8 tensor here; retrograd keeps the dict because the
    checkpointing machinery snapshots the stream around every recomputed op. Both this dict
    and ``default_generator.get_state()``'s tensor are accepted by ``set_rng_state``."""
    return default_generator._numpy.bit_generator.state


def set_rng_state(new_state):
    """Restore the default generator from ``get_rng_state()`` or ``Generator.get_state()``."""
    default_generator.set_state(new_state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices",
             device_type="cuda"):
    """As ``torch.random.fork_rng``: the default generator's state is restored when the block
    ends, so draws inside it do not move the stream outside. ``devices``/``device_type``
    name accelerators, which retrograd does not have; they are accepted and ignored."""
    if not enabled:
        yield
        return
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


# ---------------------------------------------------------------------- draws for the ops
def _draw_dtype(dtype):
    return np.float64 if dtype == np.float64 else np.float32


def normal(mean, std, shape, dtype=np.float32, generator=None):
    draw = numpy_generator(generator).standard_normal(shape, dtype=_draw_dtype(dtype))
    return draw.astype(dtype, copy=False) * std + mean


def uniform(low, high, shape, dtype=np.float32, generator=None):
    draw = numpy_generator(generator).random(shape, dtype=_draw_dtype(dtype))
    return (draw * (high - low) + low).astype(dtype, copy=False)


def integers(low, high, shape, generator=None):
    return numpy_generator(generator).integers(low, high, size=shape, dtype=np.int64)


def permutation(n, generator=None):
    return numpy_generator(generator).permutation(n).astype(np.int64)
