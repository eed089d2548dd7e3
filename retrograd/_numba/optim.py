"""One pass per parameter tensor for the optimizer updates (SGD with momentum, Adam/AdamW,
RMSprop): the NumPy ``_update`` methods of retrograd/optim/ make one pass over memory per
elementwise operation (Adam: about ten), these read p, g and the state once and write them
once. Each kernel evaluates the NumPy path's formulas in the same order, in the parameter's
dtype, with no contraction into fused multiply-adds, so it gives the same bits.

Scalars (learning rate, betas, ...) arrive already cast to the parameter's dtype by the
caller, as NumPy casts a Python float against a float32 array. Every kernel is compiled
serial and parallel (retrograd/_numba/policy.py picks: large tensors, BLAS threads that do not
spin).
"""

import numba
import numpy as np

from retrograd._numba.policy import twins

__all__ = ["sgd_momentum", "adam", "rmsprop"]


# ------------------------------------------------------------- SGD (retrograd.optim.SGD)
@numba.njit(inline="always")
def _sgd_element(p, g, buf, i, lr, weight_decay, momentum, damped, dampening_rest,
                 nesterov, maximize):
    """SGD._update after the first step: g <- -g (maximize); g <- g + lambda p;
    b <- mu b + (1 - tau) g (just + g when not damped); step along g + mu b (Nesterov) or
    b; p <- p - lr * step."""
    grad = -g[i] if maximize else g[i]
    if weight_decay != 0:
        grad = grad + weight_decay * p[i]
    b = buf[i] * momentum
    b = b + (dampening_rest * grad if damped else grad)
    buf[i] = b
    direction = grad + momentum * b if nesterov else b
    p[i] = p[i] - lr * direction


@twins()
def _sgd(p, g, buf, lr, weight_decay, momentum, damped, dampening_rest, nesterov, maximize):
    for i in numba.prange(p.size):
        _sgd_element(p, g, buf, i, lr, weight_decay, momentum, damped, dampening_rest,
                     nesterov, maximize)


def sgd_momentum(p, g, buf, lr, weight_decay, momentum, damped, dampening_rest, nesterov,
                 maximize):
    """SGD with a momentum buffer (after the first step), in place on the flat arrays p and
    buf (the scalars in p's dtype; dampening_rest = 1 - dampening, used when damped)."""
    _sgd.pick(p.size)(p, g, buf, lr, weight_decay, momentum, damped, dampening_rest, nesterov,
                      maximize)


# ------------------------------------------------------- Adam, AdamW (retrograd.optim.Adam)
# The loop bodies are branch-free (selects only; AMSGrad's store into v_max in a kernel of its
# own), so that LLVM vectorizes them: with the branches the serial loop ran 4x slower.
@numba.njit(inline="always")
def _adam_moments(p, g, m, v, i, beta1_rest, beta2, beta2_rest, l2, decay_factor, maximize):
    """(p after AdamW's decay, m, v) of element i: g <- -g (maximize); p <- p (1 - lr lambda)
    (AdamW: decay_factor, 1 otherwise, which leaves p as it is); g <- g + lambda p (Adam's L2,
    l2 = lambda, 0 for AdamW); m <- m + (1 - beta1)(g - m); v <- beta2 v + (1 - beta2) g^2."""
    grad = -g[i] if maximize else g[i]
    param = p[i] * decay_factor
    grad = grad + l2 * param if l2 != 0 else grad
    mi = m[i] + beta1_rest * (grad - m[i])
    vi = v[i] * beta2
    vi = vi + beta2_rest * (grad * grad)
    m[i] = mi
    v[i] = vi
    return param, mi, vi


@numba.njit(inline="always")
def _adam_step(param, mi, vi, step_size, bias2_root, eps):
    """p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)."""
    denom = np.sqrt(vi) / bias2_root + eps
    return param - mi / denom * step_size


@twins()
def _adam(p, g, m, v, step_size, bias2_root, eps, beta1_rest, beta2, beta2_rest, l2,
          decay_factor, maximize):
    for i in numba.prange(p.size):
        param, mi, vi = _adam_moments(p, g, m, v, i, beta1_rest, beta2, beta2_rest, l2,
                                      decay_factor, maximize)
        p[i] = _adam_step(param, mi, vi, step_size, bias2_root, eps)


@twins()
def _adam_amsgrad(p, g, m, v, v_max, step_size, bias2_root, eps, beta1_rest, beta2,
                  beta2_rest, l2, decay_factor, maximize):
    """Adam with v_max <- max(v_max, v), used in v's place (np.maximum: a NaN on either side
    wins)."""
    for i in numba.prange(p.size):
        param, mi, vi = _adam_moments(p, g, m, v, i, beta1_rest, beta2, beta2_rest, l2,
                                      decay_factor, maximize)
        largest = v_max[i] if vi == vi and not v_max[i] <= vi else vi
        v_max[i] = largest
        p[i] = _adam_step(param, mi, largest, step_size, bias2_root, eps)


def adam(p, g, m, v, v_max, step_size, bias2_root, eps, beta1_rest, beta2, beta2_rest, l2,
         decay_factor, maximize):
    """One Adam/AdamW step in place on the flat arrays p, m, v (and v_max for AMSGrad, else
    None); the scalars in p's dtype (l2: Adam's weight decay, else 0; decay_factor: AdamW's
    1 - lr * weight_decay, else 1)."""
    scalars = (step_size, bias2_root, eps, beta1_rest, beta2, beta2_rest, l2, decay_factor,
               maximize)
    if v_max is None:
        _adam.pick(p.size)(p, g, m, v, *scalars)
    else:
        _adam_amsgrad.pick(p.size)(p, g, m, v, v_max, *scalars)


# ------------------------------------------------------------- RMSprop (retrograd.optim)
@numba.njit(inline="always")
def _rmsprop_element(p, g, square_avg, grad_avg, buf, i, lr, alpha, alpha_rest, eps,
                     weight_decay, momentum, centered, maximize):
    """RMSprop._update: g <- -g (maximize); g <- g + lambda p; s <- alpha s + (1 - alpha) g^2;
    centered: a <- a + (1 - alpha)(g - a), denom = sqrt(s - a^2), else sqrt(s); denom + eps;
    with momentum b <- mu b + g / denom, p <- p - lr b; else p <- p - lr g / denom."""
    grad = -g[i] if maximize else g[i]
    if weight_decay != 0:
        grad = grad + weight_decay * p[i]
    s = square_avg[i] * alpha
    s = s + alpha_rest * (grad * grad)
    square_avg[i] = s
    if centered:
        a = grad_avg[i] + alpha_rest * (grad - grad_avg[i])
        grad_avg[i] = a
        denom = np.sqrt(s - a * a)
    else:
        denom = np.sqrt(s)
    denom = denom + eps
    if momentum > 0:
        b = buf[i] * momentum
        b = b + grad / denom
        buf[i] = b
        p[i] = p[i] - lr * b
    else:
        p[i] = p[i] - lr * (grad / denom)


@twins()
def _rmsprop(p, g, square_avg, grad_avg, buf, lr, alpha, alpha_rest, eps, weight_decay,
             momentum, centered, maximize):
    for i in numba.prange(p.size):
        _rmsprop_element(p, g, square_avg, grad_avg, buf, i, lr, alpha, alpha_rest, eps,
                         weight_decay, momentum, centered, maximize)


def rmsprop(p, g, square_avg, grad_avg, buf, lr, alpha, alpha_rest, eps, weight_decay,
            momentum, centered, maximize):
    """One RMSprop step in place on flat arrays (grad_avg and buf: pass square_avg when
    unused); the scalars in p's dtype."""
    _rmsprop.pick(p.size)(p, g, square_avg, grad_avg, buf, lr, alpha, alpha_rest, eps,
                          weight_decay, momentum, centered, maximize)
