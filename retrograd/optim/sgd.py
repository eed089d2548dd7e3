"""SGD: stochastic gradient descent, with optional momentum, Nesterov momentum and L2 decay."""

from retrograd.optim.optimizer import (Optimizer, check_option, check_torch_flags,
                                       compiled_update)
from retrograd.tensor import make_tensor

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    For each parameter p with gradient g, at step t (lr, mu = momentum, tau = dampening,
    lambda = weight_decay; b is the momentum buffer, same shape as p):

        g <- -g                     if maximize
        g <- g + lambda * p         if lambda != 0   (L2 penalty folded into the gradient)
        b <- g                      at the first step (no dampening on it)
        b <- mu * b + (1 - tau) * g afterwards       (only when mu != 0)
        g <- g + mu * b             if nesterov, else g <- b
        p <- p - lr * g

    Args:
        params: iterable of Tensors or of dicts (parameter groups).
        lr (float): learning rate. Default: 1e-3.
        momentum (float): momentum factor mu. Default: 0.
        dampening (float): dampening tau of the momentum. Default: 0.
        weight_decay (float): L2 penalty lambda. Default: 0.
        nesterov (bool): Nesterov momentum (needs momentum > 0 and dampening 0). Default: False.
        maximize (bool): maximize the objective instead of minimizing it. Default: False.
        foreach, fused: PyTorch's implementation switches, accepted and ignored (the update
            is the same). differentiable: only False is supported.

    State (per parameter, only when momentum != 0): ``momentum_buffer``, same shape and dtype
    as the parameter.

    Example:
        >>> import retrograd as rg
        >>> w = rg.tensor([1.0, -1.0], requires_grad=True)
        >>> opt = rg.optim.SGD([w], lr=0.1, momentum=0.9)
        >>> for _ in range(2):
        ...     opt.zero_grad()
        ...     (w * w).sum().backward()   # dL/dw = 2w
        ...     opt.step()
        >>> w
        tensor([ 0.46, -0.46], requires_grad=True)
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)

    def _check_options(self, options):
        check_option("SGD", "learning rate", options["lr"])
        check_option("SGD", "momentum value", options["momentum"])
        check_option("SGD", "dampening value", options["dampening"], low=-float("inf"))
        check_option("SGD", "weight_decay value", options["weight_decay"])
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={options['momentum']}, "
                             f"dampening={options['dampening']})")
        check_torch_flags("SGD", options)

    def _update(self, p, grad, group):
        lr, momentum = float(group["lr"]), float(group["momentum"])
        weight_decay = float(group["weight_decay"])
        if momentum != 0 and self._compiled_momentum_step(p, grad, group):
            return
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            grad = grad + weight_decay * p._data
        if momentum != 0:
            grad = self._momentum(p, grad, momentum, float(group["dampening"]),
                                  group["nesterov"])
        p._data -= lr * grad

    def _compiled_momentum_step(self, p, grad, group):
        """The update above in one compiled pass (once the momentum buffer exists); False
        when the compiled kernels do not apply."""
        buf = self.state[p].get("momentum_buffer")
        kernels = compiled_update(p, grad, buf._data) if buf is not None else None
        if kernels is None:
            return False
        f, dampening = p._data.dtype.type, float(group["dampening"])
        kernels.sgd_momentum(p._data.reshape(-1), grad.reshape(-1), buf._data.reshape(-1),
                             f(group["lr"]), f(group["weight_decay"]), f(group["momentum"]),
                             dampening != 0, f(1.0 - dampening), bool(group["nesterov"]),
                             bool(group["maximize"]))
        return True

    def _momentum(self, p, grad, momentum, dampening, nesterov):
        """Update the momentum buffer in place and return the direction to step along."""
        state = self.state[p]
        buf = state.get("momentum_buffer")
        if buf is None:
            # NOTE: a copy, since grad may be p.grad's own memory
            buf = state["momentum_buffer"] = make_tensor(grad.copy())
        else:
            buf._data *= momentum
            buf._data += grad if dampening == 0 else (1.0 - dampening) * grad
        if nesterov:
            return grad + momentum * buf._data
        return buf._data
