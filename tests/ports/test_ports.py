"""The port suite: PyTorch programs run unchanged but for their imports, and match PyTorch.

Each program in tests/ports/programs/ runs under PyTorch, then under retrograd with only its
import lines rewritten (see _harness.py), from the same initial weights and the same random
numbers. Every result, every parameter and buffer and every parameter gradient after training
must match: float64 to 1e-10 (relative to the value's scale), float32 within rounding.
"""

import re

import numpy as np
import pytest

from tests.ports._harness import PROGRAMS, changed_lines, port_source, run_port

PROGRAM_PATHS = sorted(p for p in PROGRAMS.glob("*.py") if not p.name.startswith("_"))

# program name -> why it cannot pass yet (strict: a program that starts passing must leave
# this table)
EXPECTED_TO_FAIL = {}

TOLERANCES = {"float64": dict(rtol=1e-10, atol=1e-10), "float32": dict(rtol=2e-4, atol=2e-5)}


def _program_params():
    params = []
    for path in PROGRAM_PATHS:
        reason = EXPECTED_TO_FAIL.get(path.stem)
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_the_suite_has_its_programs():
    assert len(PROGRAM_PATHS) >= 8
    assert set(EXPECTED_TO_FAIL) <= {p.stem for p in PROGRAM_PATHS}


@pytest.mark.parametrize("path", PROGRAM_PATHS, ids=[p.stem for p in PROGRAM_PATHS])
def test_only_the_imports_change(path):
    original = path.read_text()
    ported = port_source(original)
    changes = changed_lines(original, ported)
    assert changes, f"{path.name} imports nothing from torch"
    for before, after in changes:
        assert re.match(r"\s*(import|from) torch\b", before), before
        assert re.match(r"\s*(import|from) retrograd\b", after), after
    assert not re.search(r"^\s*(import|from) torch\b", ported, re.MULTILINE)
    assert len(ported.splitlines()) == len(original.splitlines())


def test_port_source_refuses_an_import_it_cannot_rewrite():
    with pytest.raises(ValueError, match="cannot rewrite"):
        port_source("import torch.nn\n")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("path", _program_params())
def test_port_matches_pytorch(path, dtype):
    reference = run_port(path, "torch", dtype)
    ported = run_port(path, "retrograd", dtype, initial_state=reference["initial"])
    tolerance = TOLERANCES[dtype]
    assert_same(reference["results"], ported["results"], "results", tolerance)
    assert_same(reference["final"], ported["final"], "final", tolerance)


def assert_same(expected, actual, where, tolerance):
    """Recursive comparison of results: same structure, equal strings, integers and booleans,
    floating values within ``tolerance`` (the error is judged against the array's own scale,
    max |expected|, so that entries near zero of a large array do not fail on rounding)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        assert sorted(expected) == sorted(actual), f"{where}: keys differ"
        for key in expected:
            assert_same(expected[key], actual[key], f"{where}.{key}", tolerance)
    elif isinstance(expected, list) and not _numeric_list(expected):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (e, a) in enumerate(zip(expected, actual)):
            assert_same(e, a, f"{where}[{index}]", tolerance)
    elif isinstance(expected, (str, bool, type(None))):
        assert expected == actual, f"{where}: {expected!r} != {actual!r}"
    else:
        _assert_close(np.asarray(expected), np.asarray(actual), where, tolerance)


def _numeric_list(values):
    return all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
               for v in values)


def _assert_close(expected, actual, where, tolerance):
    assert expected.shape == actual.shape, f"{where}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind in "biu" or expected.dtype == bool:
        np.testing.assert_array_equal(actual, expected, err_msg=where)
        return
    assert actual.dtype == expected.dtype, f"{where}: dtype {actual.dtype} != {expected.dtype}"
    scale = float(np.max(np.abs(expected), initial=0.0)) if expected.size else 0.0
    atol = tolerance["atol"] + tolerance["rtol"] * scale
    np.testing.assert_allclose(actual, expected, rtol=tolerance["rtol"], atol=atol,
                               err_msg=where)
