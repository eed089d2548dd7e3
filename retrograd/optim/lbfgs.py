"""L-BFGS: a quasi-Newton method that builds its curvature model from the last few steps.

Written from Nocedal and Wright, *Numerical Optimization* (2nd ed.): Algorithm 7.4 (the
two-loop recursion), Algorithms 3.5 and 3.6 (a line search for the strong Wolfe conditions,
bracketing then zooming) with the cubic interpolation of their equation (3.59), plus the
safeguards of Mark Schmidt's minFunc, which ``torch.optim.LBFGS`` follows too; the tests check
the iterates against PyTorch's.
"""

import numpy as np

from retrograd.autograd.grad_mode import enable_grad, no_grad
from retrograd.autograd.observer import region
from retrograd.optim.optimizer import Optimizer, check_option
from retrograd.tensor import Tensor, make_tensor

__all__ = ["LBFGS"]

# the line search's constants (Nocedal and Wright's c1 and c2, and its limits), as in PyTorch,
# which also uses its own tolerance_change here, not the optimizer's
_C1, _C2 = 1e-4, 0.9
_MAX_LS_EVALS = 25
_LS_TOLERANCE_CHANGE = 1e-9
_MIN_CURVATURE = 1e-10  # a pair (s, y) with y.s below this would not keep H positive definite


class LBFGS(Optimizer):
    """Limited-memory BFGS, as ``torch.optim.LBFGS``.

    Each ``step(closure)`` runs up to ``max_iter`` iterations on all parameters seen as one
    flat vector x with gradient g:

        d = -H g          H: the inverse Hessian estimate from the last ``history_size``
                          pairs s = x_{k+1} - x_k, y = g_{k+1} - g_k (the two-loop
                          recursion, starting from H0 = (s.y / y.y) I)
        x <- x + t d      t = lr (the first iteration: lr * min(1, 1 / sum|g|)), or, with
                          line_search_fn="strong_wolfe", a t satisfying the strong Wolfe
                          conditions f(x + t d) <= f(x) + c1 t g.d and
                          |g(x + t d).d| <= c2 |g.d|  (c1 = 1e-4, c2 = 0.9)

    and stops early when max|g| <= tolerance_grad, when a step or the change of the loss is
    below tolerance_change, or after ``max_eval`` evaluations of the closure. A pair with
    s.y <= 1e-10 is skipped (it would make H indefinite).

    Args:
        params: iterable of Tensors (one parameter group only).
        lr (float): step length. Default: 1.
        max_iter (int): iterations per ``step()``. Default: 20.
        max_eval (int or None): closure evaluations per ``step()``. Default: max_iter * 5 // 4.
        tolerance_grad (float): stop when max|g| is at most this. Default: 1e-7.
        tolerance_change (float): stop when a step or a change of the loss is smaller.
            Default: 1e-9.
        history_size (int): number of (s, y) pairs kept. Default: 100.
        line_search_fn (str or None): None (a fixed step lr) or "strong_wolfe".

    ``step(closure)`` needs a closure that clears the gradients, computes the loss, calls
    ``backward()`` and returns the loss; it returns the loss of the first evaluation.
    Parameters without a gradient count as having a zero gradient.

    State (in ``state[first parameter]``, as in PyTorch): ``func_evals``, ``n_iter``, ``d``,
    ``t``, ``old_dirs`` (the y's), ``old_stps`` (the s's), ``ro`` (1 / y.s), ``H_diag``,
    ``prev_flat_grad``, ``prev_loss``, ``al``.

    Example:
        >>> import retrograd as rg
        >>> w = rg.tensor([0.0, 0.0], requires_grad=True)
        >>> target = rg.tensor([1.0, -2.0])
        >>> opt = rg.optim.LBFGS([w], line_search_fn="strong_wolfe")
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = ((w - target) ** 2).sum()
        ...     loss.backward()
        ...     return loss
        >>> opt.step(closure).item()     # the loss before the step
        5.0
        >>> w
        tensor([ 1., -2.], requires_grad=True)
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        if max_eval is None and isinstance(max_iter, int):
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval,
                    "tolerance_grad": tolerance_grad, "tolerance_change": tolerance_change,
                    "history_size": history_size, "line_search_fn": line_search_fn}
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def add_param_group(self, param_group):
        raise ValueError("LBFGS doesn't support per-parameter options (parameter groups): "
                         "give all parameters to the constructor")

    def _check_options(self, options):
        check_option("LBFGS", "learning rate", options["lr"])
        for key in ("max_iter", "max_eval", "history_size"):
            value = options[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"LBFGS: Invalid {key}: {value!r} (expected a positive int)")
        check_option("LBFGS", "tolerance_grad", options["tolerance_grad"])
        check_option("LBFGS", "tolerance_change", options["tolerance_change"])
        if options["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: only 'strong_wolfe' is supported as line_search_fn, got "
                             f"{options['line_search_fn']!r}")

    def _load_param_state(self, p, saved, index):
        # the state holds flat vectors over all parameters, not tensors shaped like p
        return {key: _copy_state(value) for key, value in saved.items()}

    # ------------------------------------------------------------------ step
    def step(self, closure=None):
        """Run up to ``max_iter`` iterations; ``closure`` re-evaluates the model and returns
        the loss (required). Returns the loss of the first evaluation."""
        if closure is None:
            raise TypeError("LBFGS.step() needs a closure that clears the gradients, computes "
                            "the loss, calls backward() and returns the loss; L-BFGS evaluates "
                            "the model several times per step")
        with no_grad(), region("LBFGS.step", "optimizer"):
            return self._run(closure)

    def _run(self, closure):
        group = self.param_groups[0]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        orig_loss = self._evaluate(closure)
        loss, flat_grad = float(orig_loss), self._gather_flat_grad()
        state["func_evals"] += 1
        if np.abs(flat_grad).max() <= group["tolerance_grad"]:
            return orig_loss
        memory = _Memory.from_state(state, group["history_size"])
        evals, n_iter = 1, 0
        while n_iter < group["max_iter"]:
            n_iter += 1
            state["n_iter"] += 1
            memory.update_direction(flat_grad, first=state["n_iter"] == 1)
            memory.prev_flat_grad, memory.prev_loss = flat_grad.copy(), loss
            t = memory.t = self._initial_step_length(group, flat_grad, state["n_iter"])
            gtd = flat_grad.dot(memory.d)
            if gtd > -group["tolerance_change"]:
                break  # d is not a descent direction (or barely)
            loss, flat_grad, t, used = self._move(closure, group, memory.d, t, loss, flat_grad,
                                                  gtd, last=n_iter == group["max_iter"])
            memory.t = t
            evals += used
            state["func_evals"] += used
            if self._converged(group, n_iter, evals, flat_grad, memory, loss, t):
                break
        memory.to_state(state)
        return orig_loss

    def _initial_step_length(self, group, flat_grad, n_iter):
        if n_iter == 1:  # no curvature yet: keep the first step at most lr long in l1 norm
            return min(1.0, 1.0 / np.abs(flat_grad).sum()) * group["lr"]
        return group["lr"]

    def _move(self, closure, group, d, t, loss, flat_grad, gtd, last):
        """Step along d: (loss, flat gradient, step length, closure evaluations) after it."""
        if group["line_search_fn"] == "strong_wolfe":
            x_init = [p._data.copy() for p in self._params]

            def evaluate(step):
                return self._directional_evaluate(closure, x_init, step, d)
            loss, flat_grad, t, used = _strong_wolfe(evaluate, t, d, loss, flat_grad, gtd)
            self._add_step(t, d)
            return loss, flat_grad, t, used
        self._add_step(t, d)
        if last:  # as PyTorch: the last iteration does not re-evaluate
            return loss, flat_grad, t, 0
        loss = float(self._evaluate(closure))
        return loss, self._gather_flat_grad(), t, 1

    def _converged(self, group, n_iter, evals, flat_grad, memory, loss, t):
        if n_iter == group["max_iter"] or evals >= group["max_eval"]:
            return True
        if np.abs(flat_grad).max() <= group["tolerance_grad"]:
            return True
        if np.abs(memory.d * t).max() <= group["tolerance_change"]:
            return True
        return abs(loss - memory.prev_loss) < group["tolerance_change"]

    # ------------------------------------------------------------------ flat views
    def _evaluate(self, closure):
        with enable_grad():
            return closure()

    def _gather_flat_grad(self):
        views = [np.zeros(p._data.size, dtype=p._data.dtype) if p.grad is None
                 else p.grad._data.reshape(-1) for p in self._params]
        return np.concatenate(views)

    def _add_step(self, t, d):
        """x <- x + t d, parameter by parameter, in place."""
        offset = 0
        for p in self._params:
            n = p._data.size
            p._data += (t * d[offset:offset + n]).reshape(p.shape)
            p._version[0] += 1
            offset += n

    def _set_params(self, arrays):
        for p, array in zip(self._params, arrays):
            p._data[...] = array
            p._version[0] += 1

    def _directional_evaluate(self, closure, x, t, d):
        """(loss, flat gradient) at x + t d; the parameters are put back to x after."""
        self._add_step(t, d)
        loss = float(self._evaluate(closure))
        flat_grad = self._gather_flat_grad()
        self._set_params(x)
        return loss, flat_grad


class _Memory:
    """The L-BFGS memory: the (s, y) pairs with rho = 1 / y.s, the scale H_diag of H0, the
    last direction d and step length t, the previous gradient and loss, and ``al`` (the
    alphas of the last two-loop recursion). Arrays here, Tensors in the optimizer's state."""

    def __init__(self, history_size):
        self.history_size = history_size
        self.d = self.t = self.prev_flat_grad = self.prev_loss = None
        self.old_dirs, self.old_stps, self.ro = [], [], []
        self.H_diag = 1  # noqa: N815 - PyTorch's state key
        self.al = [None] * history_size

    @classmethod
    def from_state(cls, state, history_size):
        memory = cls(history_size)
        for key in ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
                    "prev_loss", "al"):
            if key in state:
                setattr(memory, key, _to_arrays(state[key]))
        return memory

    def to_state(self, state):
        for key in ("d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
                    "prev_loss", "al"):
            state[key] = _to_tensors(getattr(self, key))

    def update_direction(self, flat_grad, first):
        """Set d = -H g: on the first iteration d = -g and the memory starts empty;
        afterwards the last step's pair joins the memory (if its curvature is positive)."""
        if first:
            self.d = -flat_grad
            self.old_dirs, self.old_stps, self.ro, self.H_diag = [], [], [], 1
            return
        y = flat_grad - self.prev_flat_grad
        s = self.d * self.t
        ys = y.dot(s)
        if ys > _MIN_CURVATURE:
            if len(self.old_dirs) == self.history_size:
                del self.old_dirs[0], self.old_stps[0], self.ro[0]
            self.old_dirs.append(y)
            self.old_stps.append(s)
            self.ro.append(1.0 / ys)
            self.H_diag = ys / y.dot(y)
        self.d = self._two_loop(flat_grad)

    def _two_loop(self, flat_grad):
        """-H g by Nocedal and Wright's Algorithm 7.4: newest pair to oldest, scale by
        H_diag, then oldest to newest."""
        q = -flat_grad
        for i in reversed(range(len(self.old_dirs))):
            self.al[i] = self.old_stps[i].dot(q) * self.ro[i]
            q = q - self.al[i] * self.old_dirs[i]
        r = q * self.H_diag
        for i in range(len(self.old_dirs)):
            beta = self.old_dirs[i].dot(r) * self.ro[i]
            r = r + (self.al[i] - beta) * self.old_stps[i]
        return r


def _to_tensors(value):
    if isinstance(value, list):
        return [_to_tensors(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return make_tensor(np.array(value))
    return value


def _to_arrays(value):
    if isinstance(value, list):
        return [_to_arrays(v) for v in value]
    if isinstance(value, Tensor):
        return value._data.copy() if value._data.ndim else value._data[()]
    return value


def _copy_state(value):
    if isinstance(value, list):
        return [_copy_state(v) for v in value]
    if isinstance(value, (Tensor, np.ndarray)):
        return make_tensor(np.array(value._data if isinstance(value, Tensor) else value))
    return value


# ---------------------------------------------------------------------- line search
def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2 (Nocedal
    and Wright, eq. 3.59), clipped to ``bounds`` (default: between x1 and x2); their midpoint
    when the cubic has no minimizer."""
    low, high = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square < 0:
        return (low + high) / 2.0
    d2 = np.sqrt(d2_square)
    if x1 <= x2:
        minimizer = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        minimizer = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(minimizer, low), high)


class _Point:
    """One trial of the line search: step length t, loss f, gradient g and slope g.d."""

    __slots__ = ("t", "f", "g", "gtd")

    def __init__(self, t, f, g, gtd):
        self.t, self.f, self.g, self.gtd = t, f, g, gtd


def _strong_wolfe(evaluate, t, d, f, g, gtd):
    """A step length t along d meeting the strong Wolfe conditions (Nocedal and Wright,
    Algorithm 3.5): grow t until an interval must hold one, then shrink it (_zoom).
    ``evaluate(t)`` returns (loss, flat gradient) at x + t d. Returns (loss, gradient, t,
    evaluations) at the accepted step."""
    start = _Point(0, f, g, gtd)
    d_norm = np.abs(d).max()
    new = _trial(evaluate, t, d)
    evals, prev = 1, start
    bracket, done = None, False
    while evals - 1 < _MAX_LS_EVALS:
        if new.f > f + _C1 * new.t * gtd or (evals > 2 and new.f >= prev.f):
            bracket = [prev, new]
            break
        if abs(new.gtd) <= -_C2 * gtd:
            bracket, done = [new], True
            break
        if new.gtd >= 0:  # the slope turned: a minimizer lies between prev and new
            bracket = [prev, new]
            break
        # extrapolate: a longer step, between 1.01 t - 0.01 t_prev and 10 t
        bounds = (new.t + 0.01 * (new.t - prev.t), new.t * 10)
        t = _cubic_interpolate(prev.t, prev.f, prev.gtd, new.t, new.f, new.gtd, bounds)
        prev, new = new, _trial(evaluate, t, d)
        evals += 1
    if bracket is None:  # out of evaluations: keep the better end of [0, t]
        bracket = [_Point(0, f, g, None), new]
    if not done:
        evals = _zoom(evaluate, bracket, d, d_norm, f, gtd, evals)
    best = _low_end(bracket)
    return best.f, best.g, best.t, evals


def _zoom(evaluate, bracket, d, d_norm, f, gtd, evals):
    """Shrink ``bracket`` (two points, in place) around a strong Wolfe step (Nocedal and
    Wright, Algorithm 3.6) by cubic interpolation, trial points kept at least 10% of the
    interval from its ends once one came too close; returns the evaluation count."""
    insufficient_progress = False
    while evals - 1 < _MAX_LS_EVALS:
        low = 0 if bracket[0].f <= bracket[1].f else 1
        high = 1 - low
        if abs(bracket[1].t - bracket[0].t) * d_norm < _LS_TOLERANCE_CHANGE:
            break
        a, b = bracket
        t = _cubic_interpolate(a.t, a.f, a.gtd, b.t, b.f, b.gtd)
        t, insufficient_progress = _keep_inside(t, a.t, b.t, insufficient_progress)
        new = _trial(evaluate, t, d)
        evals += 1
        if new.f > f + _C1 * t * gtd or new.f >= bracket[low].f:
            bracket[high] = new  # not low enough: the new point bounds the interval
            continue
        if abs(new.gtd) <= -_C2 * gtd:
            bracket[low] = new
            break
        if new.gtd * (bracket[high].t - bracket[low].t) >= 0:
            bracket[high] = bracket[low]  # the slope says the minimizer is on the other side
        bracket[low] = new
    return evals


def _keep_inside(t, a, b, insufficient_progress):
    """(t, insufficient progress flag): a t within 10% of the interval's length of an end
    is moved to that distance when the previous trial was also too close or t is outside;
    otherwise it is accepted once, and the flag set."""
    top, bottom = max(a, b), min(a, b)
    margin = 0.1 * (top - bottom)
    if min(top - t, t - bottom) >= margin:
        return t, False
    if not (insufficient_progress or t >= top or t <= bottom):
        return t, True
    t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
    return t, False


def _low_end(bracket):
    """The end of the bracket with the lower loss (the first one on a tie)."""
    return bracket[0] if bracket[0].f <= bracket[-1].f else bracket[-1]


def _trial(evaluate, t, d):
    f, g = evaluate(t)
    return _Point(t, f, g, g.dot(d))
