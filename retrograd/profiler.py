"""PyTorch's ``torch.profiler`` names for retrograd's profiler (retrograd/inspect/profiler.py):
``profile``, ``record_function``, ``schedule``, ``ProfilerAction``, ``ProfilerActivity``."""

from retrograd.inspect.profiler import (ProfilerAction, ProfilerActivity, profile,
                                        record_function, schedule)

__all__ = ["profile", "record_function", "schedule", "ProfilerAction", "ProfilerActivity"]
