"""``retrograd.accelerator``: PyTorch's device-agnostic accelerator queries. retrograd runs on
the CPU, which PyTorch does not count as an accelerator: none is available."""

__all__ = ["is_available", "current_accelerator", "device_count"]


def is_available():
    """False: retrograd has no accelerator."""
    return False


def current_accelerator(check_available=False):
    """None: there is no accelerator (PyTorch returns None on a CPU-only machine)."""
    return None


def device_count():
    return 0
