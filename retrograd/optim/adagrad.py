"""Adagrad: per-coordinate step sizes shrinking with the sum of past squared gradients."""

import numpy as np

from retrograd.optim.optimizer import Optimizer, check_option, check_torch_flags
from retrograd.tensor import make_tensor

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan and Singer, 2011), as ``torch.optim.Adagrad``.

    For each parameter p with gradient g, at step t = 1, 2, ... (lr, lambda = weight_decay;
    the sum s has p's shape and dtype and starts at ``initial_accumulator_value``):

        g <- -g                               if maximize
        g <- g + lambda * p                   if lambda != 0 (L2 penalty)
        lr_t = lr / (1 + (t - 1) * lr_decay)
        s <- s + g^2
        p <- p - lr_t * g / (sqrt(s) + eps)

    Coordinates with large past gradients take small steps, rarely-updated ones large steps.

    Args:
        params: iterable of Tensors or of dicts (parameter groups).
        lr (float): learning rate. Default: 1e-2.
        lr_decay (float): learning-rate decay. Default: 0.
        weight_decay (float): L2 penalty lambda. Default: 0.
        initial_accumulator_value (float): the starting value of s. Default: 0.
        eps (float): added to the denominator for numerical stability. Default: 1e-10.
        foreach, fused: PyTorch's implementation switches, accepted and ignored (the update
            is the same).
        maximize (bool): maximize the objective instead of minimizing it. Default: False.
        differentiable: only False is supported.

    State (per parameter, created for every parameter when the optimizer is built, as in
    PyTorch): ``step`` (a float32 0-d tensor) and ``sum`` (s).

    Example:
        >>> import retrograd as rg
        >>> w = rg.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = rg.optim.Adagrad([w], lr=0.5)
        >>> (w * w).sum().backward()
        >>> opt.step()                  # first step: g / sqrt(g^2) = sign(g)
        >>> w
        tensor([ 0.5, -1.5], requires_grad=True)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self._init_state(p, group)

    def _init_state(self, p, group):
        state = self.state[p]
        state["step"] = make_tensor(np.zeros((), dtype=np.float32))
        state["sum"] = make_tensor(np.full_like(p._data, group["initial_accumulator_value"]))

    def _check_options(self, options):
        check_option("Adagrad", "learning rate", options["lr"])
        check_option("Adagrad", "lr_decay value", options["lr_decay"])
        check_option("Adagrad", "weight_decay value", options["weight_decay"])
        check_option("Adagrad", "initial_accumulator_value value",
                     options["initial_accumulator_value"])
        check_option("Adagrad", "epsilon value", options["eps"])
        check_torch_flags("Adagrad", options)

    def _update(self, p, grad, group):
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay, lr_decay = float(group["weight_decay"]), float(group["lr_decay"])
        state = self.state[p]
        state["step"]._data += 1.0
        step = float(state["step"]._data)
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p._data
        clr = lr / (1.0 + (step - 1.0) * lr_decay)
        state_sum = state["sum"]._data
        state_sum += grad * grad
        std = np.sqrt(state_sum)
        std += eps
        np.divide(grad, std, out=std)
        std *= clr
        p._data -= std
