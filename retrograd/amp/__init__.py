"""Mixed precision: autocast (float16, bfloat16) with a printable policy, the dtype trace
(``explain``), and a GradScaler whose steps say what they did."""

from retrograd.amp.autocast import (DtypeTrace, autocast, explain, get_autocast_dtype,
                                    is_autocast_enabled)
from retrograd.amp.grad_scaler import GradScaler, StepRecord
from retrograd.amp.policy import AutocastPolicy, default_policy

__all__ = ["autocast", "explain", "DtypeTrace", "is_autocast_enabled", "get_autocast_dtype",
           "AutocastPolicy", "default_policy", "GradScaler", "StepRecord"]
