"""Utilities: data loading and saving, activation checkpointing."""

from retrograd.utils import checkpoint, data, serialization  # noqa: F401
