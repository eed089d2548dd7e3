"""Reverse-mode automatic differentiation: Function, the engine, grad mode, transforms."""

from retrograd.autograd import functional
from retrograd.autograd.anomaly import AnomalyError, detect_anomaly, nan_guard, set_detect_anomaly
from retrograd.autograd.engine import backward, grad
from retrograd.autograd.function import Function, Node, saved_tensors_hooks
from retrograd.autograd.gradcheck import gradcheck, gradgradcheck
from retrograd.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = [
    "Function", "Node", "backward", "grad", "gradcheck", "gradgradcheck", "functional",
    "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "saved_tensors_hooks",
    "detect_anomaly", "set_detect_anomaly", "nan_guard", "AnomalyError",
]
