"""retrograd's random number generator: one NumPy Generator seeded by ``manual_seed``.

Every random op (randn, dropout masks, init, DataLoader shuffling) draws from it, so one seed
makes a whole run reproducible, and ``get_rng_state``/``set_rng_state`` let a checkpoint resume
the exact stream.
"""

import numpy as np

__all__ = ["manual_seed", "seed", "get_rng_state", "set_rng_state", "generator", "normal",
           "uniform", "integers", "permutation"]

_generator = np.random.Generator(np.random.PCG64(0))


def generator():
    """The global NumPy Generator."""
    return _generator


def manual_seed(value):
    """Reseed the global generator; returns it."""
    global _generator
    _generator = np.random.Generator(np.random.PCG64(int(value)))
    return _generator


def seed():
    """Reseed from the operating system's entropy; returns the seed used."""
    value = int(np.random.SeedSequence().entropy % (2 ** 63))
    manual_seed(value)
    return value


def get_rng_state():
    """A picklable snapshot of the generator's state."""
    return _generator.bit_generator.state


def set_rng_state(state):
    _generator.bit_generator.state = state


def normal(mean, std, shape, dtype=np.float32):
    draw_dtype = np.float32 if dtype != np.float64 else np.float64
    return _generator.standard_normal(shape, dtype=draw_dtype) \
        .astype(dtype, copy=False) * std + mean


def uniform(low, high, shape, dtype=np.float32):
    draw = _generator.random(shape, dtype=np.float32 if dtype != np.float64 else np.float64)
    return (draw * (high - low) + low).astype(dtype, copy=False)


def integers(low, high, shape):
    return _generator.integers(low, high, size=shape, dtype=np.int64)


def permutation(n):
    return _generator.permutation(n).astype(np.int64)
