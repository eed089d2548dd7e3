"""retrograd/inspect/roofline.py: the machine's peaks are measured once and cached in
$RETROGRAD_CACHE_DIR/roofline.json; a refresh or a damaged cache measures again (never a
traceback); and a row's roofline fraction is its GFLOP/s over min(peak GFLOP/s, FLOPs/byte x
peak GB/s).
"""

import json
import math

import pytest

import retrograd.inspect.roofline as roofline
from retrograd.inspect.profile_events import FunctionEventAvg
from retrograd.inspect.roofline import Peaks, machine_key, machine_peaks


@pytest.fixture
def measured(tmp_path, monkeypatch):
    """The cache in tmp_path, and a stand-in for the measurement that counts its calls."""
    monkeypatch.setenv("RETROGRAD_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_measure():
        calls.append(1)
        return Peaks(123.5 + len(calls), 45.25, machine_key())

    monkeypatch.setattr(roofline, "measure_peaks", fake_measure)
    return calls


def _cache(tmp_path):
    return json.loads((tmp_path / "roofline.json").read_text())


def test_peaks_are_measured_once_then_read_from_the_cache(tmp_path, measured):
    first = machine_peaks()
    assert len(measured) == 1 and first == Peaks(124.5, 45.25, machine_key())
    assert _cache(tmp_path) == {machine_key(): {"gflops": 124.5, "gbytes_per_s": 45.25}}
    second = machine_peaks()
    assert len(measured) == 1 and second == first


def test_refresh_measures_again_and_rewrites_the_cache(tmp_path, measured):
    machine_peaks()
    refreshed = machine_peaks(refresh=True)
    assert len(measured) == 2 and refreshed.gflops == 125.5
    assert _cache(tmp_path)[machine_key()]["gflops"] == 125.5
    assert machine_peaks() == refreshed and len(measured) == 2


def test_other_machines_entries_are_kept(tmp_path, measured):
    other = {"gflops": 1.0, "gbytes_per_s": 2.0}
    (tmp_path / "roofline.json").write_text(json.dumps({"another machine": other}))
    machine_peaks()
    assert len(measured) == 1
    assert _cache(tmp_path) == {"another machine": other,
                                machine_key(): {"gflops": 124.5, "gbytes_per_s": 45.25}}


@pytest.mark.parametrize("content", [
    b"{not json",
    b"\xff\xfe not UTF-8",
    b"[1, 2, 3]",
    b"{KEY: [100.0, 10.0]}",
    b'{KEY: {"gflops": 100.0}}',
    b'{KEY: {"gflops": "fast", "gbytes_per_s": 10.0}}',
    b'{KEY: {"gflops": 100.0, "gbytes_per_s": null}}',
    b'{KEY: {"gflops": -100.0, "gbytes_per_s": 10.0}}',
    b'{KEY: {"gflops": 0, "gbytes_per_s": 10.0}}',
    b'{KEY: {"gflops": NaN, "gbytes_per_s": 10.0}}',
    b'{KEY: {"gflops": 100.0, "gbytes_per_s": Infinity}}',
    b'{KEY: {"gflops": true, "gbytes_per_s": 10.0}}',
])
def test_a_damaged_cache_is_measured_again(tmp_path, measured, content):
    content = content.replace(b"KEY", json.dumps(machine_key()).encode())
    (tmp_path / "roofline.json").write_bytes(content)
    assert machine_peaks() == Peaks(124.5, 45.25, machine_key())
    assert len(measured) == 1
    assert _cache(tmp_path)[machine_key()] == {"gflops": 124.5, "gbytes_per_s": 45.25}


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path, monkeypatch, measured):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("RETROGRAD_CACHE_DIR", str(tmp_path / "file" / "cache"))
    assert machine_peaks() == Peaks(124.5, 45.25, machine_key())
    assert machine_peaks().gflops == 125.5 and len(measured) == 2   # nothing was cached
    assert (tmp_path / "file").read_text() == ""


def test_measured_peaks_are_positive_numbers():
    peaks = roofline.measure_peaks()
    assert peaks.machine == machine_key()
    for value in (peaks.gflops, peaks.gbytes_per_s):
        assert isinstance(value, float) and math.isfinite(value) and value > 0


def _row(flops, nbytes, self_us):
    row = FunctionEventAvg("MatMul", "forward", None, None)
    row.count, row.flops, row.bytes, row.self_cpu_time_total = 1, flops, nbytes, self_us
    row.cpu_time_total = self_us
    return row


@pytest.mark.parametrize("flops, nbytes, self_us", [
    (2_000_000, 1_000, 50.0),      # 2000 FLOPs/byte: compute-bound
    (1_000_000, 400_000, 80.0),    # 2.5 FLOPs/byte: memory-bound
    (7, 3, 0.25),
])
def test_roofline_fraction_is_the_achieved_rate_over_the_bound(flops, nbytes, self_us):
    peaks = Peaks(gflops=200.0, gbytes_per_s=20.0, machine="test")
    row = _row(flops, nbytes, self_us)
    achieved = flops / (self_us * 1e-6) / 1e9
    bound = min(200.0, flops / nbytes * 20.0)
    assert row.gflops_per_s == pytest.approx(achieved, rel=1e-12)
    assert row.roofline_fraction(peaks) == pytest.approx(achieved / bound, rel=1e-12)


def test_roofline_fraction_is_none_without_flops_bytes_or_peaks():
    peaks = Peaks(200.0, 20.0, "test")
    assert _row(0, 100, 1.0).roofline_fraction(peaks) is None
    assert _row(100, 0, 1.0).roofline_fraction(peaks) is None
    assert _row(100, 100, 1.0).roofline_fraction(None) is None
