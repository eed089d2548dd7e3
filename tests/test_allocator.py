"""retrograd keeps freed memory for reuse (glibc only), unless told not to."""

import sys

import pytest

from retrograd._allocator import keep_freed_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_applies_on_linux():
    assert keep_freed_memory() is True


def test_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("RETROGRAD_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
