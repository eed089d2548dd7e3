"""Utilities: data loading and saving."""

from retrograd.utils import data, serialization  # noqa: F401
