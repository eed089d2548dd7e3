"""The compiled kernels of the 'fast' extra give the NumPy path's results bit for bit, and
RETROGRAD_KERNELS=numpy selects the NumPy path."""

import os
import subprocess
import sys

import numpy as np
import pytest

from retrograd import _fast
from retrograd.dtypes import convert

numba = pytest.importorskip("numba", reason="the 'fast' extra (numba) is not installed: "
                                            "pip install -e '.[test,fast]' installs it")
ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)


def _every_kind_of_float32():
    """Specials, NaN payloads, subnormals, and a sweep over the whole bit space."""
    specials = np.array([np.inf, -np.inf, 0.0, -0.0, 3.4e38, -3.4e38, 1e-45, 1e-40,
                         1.1754944e-38, 65504, 2.0 ** -133, 2.0 ** -134], np.float32)
    nans = np.array([0x7F800001, 0x7FFFFFFF, 0xFF800001, 0x7FC00000, 0xFFC00001],
                    np.uint32).view(np.float32)
    sweep = np.arange(0, 2 ** 32, 2 ** 32 // 300_001, dtype=np.uint64).astype(np.uint32)
    ties = (np.arange(1, 5000, dtype=np.uint32) << 16) | 0x8000   # exactly halfway
    rng = np.random.default_rng(0).standard_normal(40_000).astype(np.float32)
    return np.concatenate([specials, nans, sweep.view(np.float32), ties.view(np.float32), rng])


def test_the_compiled_kernels_are_used_and_round_like_ml_dtypes():
    assert _fast.compiled_kernels() is not None
    array = _every_kind_of_float32()
    with np.errstate(invalid="ignore", over="ignore"):
        expected = array.astype(BF16)
    got = convert(array, BF16)
    assert got.dtype == BF16 and np.array_equal(got.view(np.uint16), expected.view(np.uint16))
    back = convert(expected, np.float32)
    assert np.array_equal(back.view(np.uint32), expected.astype(np.float32).view(np.uint32))
    shaped = array[:60_000].reshape(300, 200)
    assert convert(shaped, BF16).shape == (300, 200)
    strided = shaped.T                                   # not contiguous: NumPy's cast
    with np.errstate(invalid="ignore", over="ignore"):
        assert np.array_equal(convert(strided, BF16).view(np.uint16),
                              strided.astype(BF16).view(np.uint16))


def test_retrograd_kernels_numpy_selects_the_numpy_path():
    code = ("from retrograd import _fast; import retrograd.dtypes as d, numpy as np, "
            "ml_dtypes; d.convert(np.ones(1 << 16, np.float32), ml_dtypes.bfloat16); "
            "import sys; print(_fast.compiled_kernels(), 'numba' in sys.modules)")
    env = dict(os.environ, RETROGRAD_KERNELS="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["None", "False"]     # not even imported


def test_importing_retrograd_does_not_import_numba():
    code = "import retrograd, sys; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


def test_float16_kernels_round_like_numpy_subnormals_and_nans_included():
    array = _every_kind_of_float32()
    with np.errstate(invalid="ignore", over="ignore"):
        expected = array.astype(np.float16)
    got = convert(array, np.float16)
    assert got.dtype == np.float16 and np.array_equal(got.view(np.uint16),
                                                      expected.view(np.uint16))
    every_half = np.tile(np.arange(65536, dtype=np.uint16).view(np.float16), 2)
    back = convert(every_half, np.float32)
    assert np.array_equal(back.view(np.uint32), every_half.astype(np.float32).view(np.uint32))


class _NumbaConfig:
    def __init__(self, name="", features=""):
        self.CPU_NAME, self.CPU_FEATURES = name, features


@pytest.mark.parametrize("host, full_width", [("emeraldrapids", True), ("znver4", True),
                                              ("icelake-server", True),
                                              ("skylake-avx512", False),
                                              ("cascadelake", False), ("haswell", False)])
def test_512_bit_vectors_only_on_cpus_that_keep_their_clock(host, full_width, monkeypatch):
    from llvmlite import binding

    monkeypatch.setattr(binding, "get_host_cpu_name", lambda: host)
    fake = type("numba", (), {"config": _NumbaConfig()})
    _fast._full_width_vectors(fake)
    if full_width:
        assert fake.config.CPU_NAME == host
        assert fake.config.CPU_FEATURES.endswith(",-prefer-256-bit")
        assert binding.get_host_cpu_features().flatten() in fake.config.CPU_FEATURES
    else:
        assert fake.config.CPU_NAME == "" and fake.config.CPU_FEATURES == ""


def test_a_cpu_the_user_gave_numba_is_kept(monkeypatch):
    from llvmlite import binding

    monkeypatch.setattr(binding, "get_host_cpu_name", lambda: "emeraldrapids")
    for given in (_NumbaConfig(name="haswell"), _NumbaConfig(features="+avx2")):
        before = (given.CPU_NAME, given.CPU_FEATURES)
        _fast._full_width_vectors(type("numba", (), {"config": given}))
        assert (given.CPU_NAME, given.CPU_FEATURES) == before


def test_numba_compiles_for_the_host_as_retrograd_set_it():
    """In this process: on a full-width CPU the setting is live, else Numba's default."""
    from llvmlite import binding

    assert _fast.compiled_kernels() is not None
    host = binding.get_host_cpu_name()
    if host in _fast._FULL_WIDTH_CPUS and not os.environ.get("NUMBA_CPU_NAME"):
        assert numba.config.CPU_NAME == host
        assert numba.config.CPU_FEATURES.endswith("-prefer-256-bit")
