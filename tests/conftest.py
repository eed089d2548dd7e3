"""Test configuration: the repository root on sys.path (for tests.oracle), a fixed seed."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import retrograd as rg  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    rg.manual_seed(0)
    yield
