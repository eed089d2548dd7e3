"""RMSprop: divide the gradient by a running root mean square of recent gradients."""

import numpy as np

from retrograd.optim.optimizer import (Optimizer, check_option, check_torch_flags,
                                       compiled_update)
from retrograd.tensor import make_tensor

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``.

    For each parameter p with gradient g (lr, alpha, lambda = weight_decay, mu = momentum;
    s, a, b have p's shape and dtype):

        g <- -g                              if maximize
        g <- g + lambda * p                  if lambda != 0 (L2 penalty)
        s <- alpha * s + (1 - alpha) * g^2   (running mean of g^2)
        a <- alpha * a + (1 - alpha) * g     if centered (running mean of g)
        d <- sqrt(s - a^2) + eps             if centered (an estimate of the std of g)
        d <- sqrt(s) + eps                   otherwise
        b <- mu * b + g / d;  p <- p - lr * b    if mu > 0
        p <- p - lr * g / d                      otherwise

    Args:
        params: iterable of Tensors or of dicts (parameter groups).
        lr (float): learning rate. Default: 1e-2.
        alpha (float): smoothing constant. Default: 0.99.
        eps (float): added to the denominator for numerical stability. Default: 1e-8.
        weight_decay (float): L2 penalty lambda. Default: 0.
        momentum (float): momentum factor mu. Default: 0.
        centered (bool): normalize by the estimated variance of the gradient instead of its
            uncentered second moment. Default: False.
        capturable, foreach: PyTorch's implementation switches, accepted and ignored (the
            update is the same).
        maximize (bool): maximize the objective instead of minimizing it. Default: False.
        differentiable: only False is supported.

    State (per parameter): ``step`` (a float32 0-d tensor), ``square_avg`` (s),
    ``momentum_buffer`` (b) when momentum > 0, ``grad_avg`` (a) when centered.

    Example:
        >>> import retrograd as rg
        >>> w = rg.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = rg.optim.RMSprop([w], lr=0.01, alpha=0.75)
        >>> (w * w).sum().backward()
        >>> opt.step()                  # first step: g / sqrt(0.25 g^2) = 2 sign(g)
        >>> w
        tensor([ 0.98, -1.98], requires_grad=True)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_option("RMSprop", "learning rate", options["lr"])
        check_option("RMSprop", "epsilon value", options["eps"])
        check_option("RMSprop", "momentum value", options["momentum"])
        check_option("RMSprop", "weight_decay value", options["weight_decay"])
        check_option("RMSprop", "alpha value", options["alpha"])
        check_torch_flags("RMSprop", options)

    def _update(self, p, grad, group):
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        state = self.state[p]
        if not state:
            _init_state(state, p, momentum, group["centered"])
        state["step"]._data += 1.0
        if self._compiled_step(p, grad, group):
            return
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p._data
        square_avg = state["square_avg"]._data
        square_avg *= alpha
        square_avg += (1.0 - alpha) * (grad * grad)
        if group["centered"]:
            grad_avg = state["grad_avg"]._data
            grad_avg += (1.0 - alpha) * (grad - grad_avg)
            denom = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            denom = np.sqrt(square_avg)
        denom += eps
        if momentum > 0:
            buf = state["momentum_buffer"]._data
            buf *= momentum
            buf += grad / denom
            p._data -= lr * buf
        else:
            p._data -= lr * (grad / denom)

    def _compiled_step(self, p, grad, group):
        """The update of _update in one compiled pass; False when the kernels do not apply."""
        arrays = _compiled_step_arrays(self.state[p], group)
        kernels = compiled_update(p, grad, *arrays)
        if kernels is None:
            return False
        f, alpha = p._data.dtype.type, float(group["alpha"])
        kernels.rmsprop(p._data.reshape(-1), grad.reshape(-1), *(a.reshape(-1) for a in arrays),
                        f(group["lr"]), f(alpha), f(1.0 - alpha), f(group["eps"]),
                        f(group["weight_decay"]), f(group["momentum"]), bool(group["centered"]),
                        bool(group["maximize"]))
        return True


def _compiled_step_arrays(state, group):
    """(square_avg, grad_avg, momentum buffer) of a parameter's state, square_avg standing
    in for the ones it does not have."""
    square_avg = state["square_avg"]._data
    grad_avg = state["grad_avg"]._data if group["centered"] else square_avg
    buf = state["momentum_buffer"]._data if float(group["momentum"]) > 0 else square_avg
    return square_avg, grad_avg, buf


def _init_state(state, p, momentum, centered):
    state["step"] = make_tensor(np.zeros((), dtype=np.float32))
    state["square_avg"] = make_tensor(np.zeros_like(p._data))
    if momentum > 0:
        state["momentum_buffer"] = make_tensor(np.zeros_like(p._data))
    if centered:
        state["grad_avg"] = make_tensor(np.zeros_like(p._data))
