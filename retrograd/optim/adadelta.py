"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

import numpy as np

from retrograd.optim.optimizer import Optimizer, check_option, check_torch_flags
from retrograd.tensor import make_tensor

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``.

    For each parameter p with gradient g (lr, rho, lambda = weight_decay; s and u have p's
    shape and dtype, both start at 0):

        g <- -g                                        if maximize
        g <- g + lambda * p                            if lambda != 0 (L2 penalty)
        s <- rho * s + (1 - rho) * g^2                 (running mean of g^2)
        delta <- sqrt(u + eps) / sqrt(s + eps) * g     (the update, in p's units)
        u <- rho * u + (1 - rho) * delta^2             (running mean of delta^2)
        p <- p - lr * delta

    The ratio of the two RMS values gives each coordinate its own step size, with the units
    of p; lr only scales it (1.0 is the method as published).

    Args:
        params: iterable of Tensors or of dicts (parameter groups).
        lr (float): scale of the update. Default: 1.0.
        rho (float): decay rate of the running averages, in [0, 1]. Default: 0.9.
        eps (float): added inside both square roots. Default: 1e-6.
        weight_decay (float): L2 penalty lambda. Default: 0.
        foreach, capturable: PyTorch's implementation switches, accepted and ignored (the
            update is the same).
        maximize (bool): maximize the objective instead of minimizing it. Default: False.
        differentiable: only False is supported.

    State (per parameter): ``step`` (a float32 0-d tensor), ``square_avg`` (s),
    ``acc_delta`` (u).

    Example:
        >>> import retrograd as rg
        >>> w = rg.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = rg.optim.Adadelta([w], rho=0.5, eps=0.01)
        >>> (w * w).sum().backward()
        >>> opt.step()              # delta = sqrt(0.01) / sqrt(0.5 g^2 + 0.01) * g
        >>> w
        tensor([ 0.8589, -1.8587], requires_grad=True)
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_option("Adadelta", "learning rate", options["lr"])
        check_option("Adadelta", "rho value", options["rho"], high=1.0, high_inclusive=True)
        check_option("Adadelta", "epsilon value", options["eps"])
        check_option("Adadelta", "weight_decay value", options["weight_decay"])
        check_torch_flags("Adadelta", options)

    def _update(self, p, grad, group):
        lr, rho, eps = float(group["lr"]), float(group["rho"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        state = self.state[p]
        if not state:
            state["step"] = make_tensor(np.zeros((), dtype=np.float32))
            state["square_avg"] = make_tensor(np.zeros_like(p._data))
            state["acc_delta"] = make_tensor(np.zeros_like(p._data))
        state["step"]._data += 1.0
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p._data
        square_avg, acc_delta = state["square_avg"]._data, state["acc_delta"]._data
        square_avg *= rho
        square_avg += (1.0 - rho) * (grad * grad)
        delta = np.sqrt(acc_delta + eps)
        delta /= np.sqrt(square_avg + eps)
        delta *= grad
        acc_delta *= rho
        acc_delta += (1.0 - rho) * (delta * delta)
        delta *= lr
        p._data -= delta
