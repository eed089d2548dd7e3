"""Anomaly mode: every node remembers where it was created, and backward stops at the
first op whose gradient holds NaN or Inf, naming the op and that line."""

from retrograd.autograd.grad_mode import STATE

__all__ = ["detect_anomaly", "set_detect_anomaly"]


class detect_anomaly:
    """Context manager (and decorator) that turns anomaly mode on."""

    def __init__(self, check_nan=True):
        self.check_nan = check_nan

    def __enter__(self):
        self._previous = (STATE.anomaly_enabled, STATE.anomaly_check_nan)
        STATE.anomaly_enabled, STATE.anomaly_check_nan = True, self.check_nan
        return self

    def __exit__(self, *exc):
        STATE.anomaly_enabled, STATE.anomaly_check_nan = self._previous
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly(detect_anomaly):
    """Set anomaly mode on or off; as a context manager, restores the previous mode."""

    def __init__(self, mode, check_nan=True):
        super().__init__(check_nan)
        self._previous = (STATE.anomaly_enabled, STATE.anomaly_check_nan)
        STATE.anomaly_enabled, STATE.anomaly_check_nan = bool(mode), check_nan

    def __enter__(self):
        return self
