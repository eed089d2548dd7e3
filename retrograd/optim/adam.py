"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

import numpy as np

from retrograd.optim.optimizer import (Optimizer, check_option, check_torch_flags,
                                       compiled_update)
from retrograd.tensor import make_tensor

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``.

    For each parameter p with gradient g, at step t = 1, 2, ... (lr, beta1, beta2 = betas,
    lambda = weight_decay; m, v, v_max have p's shape and dtype):

        g <- -g                               if maximize
        p <- p * (1 - lr * lambda)            if decoupled_weight_decay (AdamW)
        g <- g + lambda * p                   otherwise, if lambda != 0 (L2 penalty)
        m <- beta1 * m + (1 - beta1) * g      (first moment)
        v <- beta2 * v + (1 - beta2) * g^2    (second moment)
        v_max <- max(v_max, v)                if amsgrad, and v_max is used instead of v
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    The bias corrections 1 - beta^t undo the pull of the zero-initialized moments toward 0
    in the first steps.

    Args:
        params: iterable of Tensors or of dicts (parameter groups).
        lr (float): learning rate. Default: 1e-3.
        betas (tuple of 2 floats): decay rates of the moments. Default: (0.9, 0.999).
        eps (float): added to the denominator for numerical stability. Default: 1e-8.
        weight_decay (float): weight decay lambda. Default: 0.
        amsgrad (bool): use the running maximum of v (AMSGrad). Default: False.
        maximize (bool): maximize the objective instead of minimizing it. Default: False.
        decoupled_weight_decay (bool): decay the weights directly (AdamW) instead of adding
            an L2 term to the gradient. Default: False.
        foreach, capturable, fused: PyTorch's implementation switches, accepted and ignored
            (the update is the same). differentiable: only False is supported.

    State (per parameter): ``step`` (a float32 0-d tensor), ``exp_avg`` (m), ``exp_avg_sq``
    (v), and ``max_exp_avg_sq`` (v_max) with amsgrad.

    Example:
        >>> import retrograd as rg
        >>> w = rg.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = rg.optim.Adam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()                  # the first step moves each weight by about lr
        >>> w
        tensor([ 0.9, -1.9], requires_grad=True)
        >>> sorted(opt.state[w])
        ['exp_avg', 'exp_avg_sq', 'step']
    """

    _name = "Adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        defaults = {"lr": lr, "betas": _pair(betas, self._name), "eps": eps,
                    "weight_decay": weight_decay, "amsgrad": amsgrad, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _check_options(self, options):
        name = self._name
        check_option(name, "learning rate", options["lr"])
        check_option(name, "epsilon value", options["eps"])
        betas = _pair(options["betas"], name)
        check_option(name, "beta parameter at index 0", betas[0], high=1.0)
        check_option(name, "beta parameter at index 1", betas[1], high=1.0)
        check_option(name, "weight_decay value", options["weight_decay"])
        check_torch_flags(name, options)

    def _update(self, p, grad, group):
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        state = self.state[p]
        if not state:
            _init_state(state, p, group["amsgrad"])
        state["step"]._data += 1.0
        step = float(state["step"]._data)
        if self._compiled_step(p, grad, group, step):
            return
        if group["maximize"]:
            grad = -grad
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p._data *= 1.0 - lr * weight_decay
            else:
                grad = grad + weight_decay * p._data
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        m += (1.0 - beta1) * (grad - m)
        v *= beta2
        v += (1.0 - beta2) * (grad * grad)
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"]._data, v, out=state["max_exp_avg_sq"]._data)
        step_size = lr / (1.0 - beta1 ** step)
        denom = np.sqrt(v)
        denom /= (1.0 - beta2 ** step) ** 0.5
        denom += eps
        np.divide(m, denom, out=denom)
        denom *= step_size
        p._data -= denom


    def _compiled_step(self, p, grad, group, step):
        """The update of _update in one compiled pass; False when the kernels do not apply."""
        state = self.state[p]
        m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
        v_max = state["max_exp_avg_sq"]._data if group["amsgrad"] else None
        kernels = compiled_update(p, grad, m, v, *([] if v_max is None else [v_max]))
        if kernels is None:
            return False
        f = p._data.dtype.type
        lr, weight_decay = float(group["lr"]), float(group["weight_decay"])
        decoupled = bool(group["decoupled_weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        kernels.adam(p._data.reshape(-1), grad.reshape(-1), m.reshape(-1), v.reshape(-1),
                     None if v_max is None else v_max.reshape(-1),
                     f(lr / (1.0 - beta1 ** step)), f((1.0 - beta2 ** step) ** 0.5),
                     f(group["eps"]), f(1.0 - beta1), f(beta2), f(1.0 - beta2),
                     f(0.0 if decoupled else weight_decay),
                     f(1.0 - lr * weight_decay if decoupled and weight_decay != 0 else 1.0),
                     bool(group["maximize"]))
        return True


class AdamW(Adam):
    """AdamW, as ``torch.optim.AdamW``: Adam with decoupled weight decay (Loshchilov and
    Hutter), ``p <- p * (1 - lr * weight_decay)`` before the Adam step, so the decay does not
    pass through the moments. The same as ``Adam(..., decoupled_weight_decay=True)``.

    Args:
        params, lr, betas, eps, amsgrad, maximize, foreach, capturable, differentiable,
            fused: as in :class:`Adam`.
        weight_decay (float): decoupled weight decay. Default: 1e-2.

    Example:
        >>> import retrograd as rg
        >>> w = rg.tensor([1.0, -2.0], requires_grad=True)
        >>> opt = rg.optim.AdamW([w], lr=0.1, weight_decay=0.5)
        >>> w.grad = rg.zeros(2)        # no gradient signal: only the decay acts
        >>> opt.step()
        >>> w
        tensor([ 0.95, -1.9 ], requires_grad=True)
    """

    _name = "AdamW"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         foreach=foreach, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # AdamW always decouples, whatever was saved
            group["decoupled_weight_decay"] = True


def _pair(betas, name):
    try:
        b1, b2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"{name}: betas must be a pair of floats, got {betas!r}") from None
    return (b1, b2)


def _init_state(state, p, amsgrad):
    state["step"] = make_tensor(np.zeros((), dtype=np.float32))
    state["exp_avg"] = make_tensor(np.zeros_like(p._data))
    state["exp_avg_sq"] = make_tensor(np.zeros_like(p._data))
    if amsgrad:
        state["max_exp_avg_sq"] = make_tensor(np.zeros_like(p._data))
