"""Learning-rate schedules, as ``torch.optim.lr_scheduler``, plus retrograd's ``LinearWarmup``.

A scheduler sets ``group['lr']`` of every parameter group of its optimizer. Call
``scheduler.step()`` once per epoch (or per iteration), after ``optimizer.step()``.
``last_epoch`` counts the calls; building the scheduler is step 0 and sets the first lr.

PyTorch's schedulers are *chainable*: most compute the new lr from the current
``group['lr']`` (e.g. StepLR multiplies it by gamma at each multiple of step_size), so two
schedulers on one optimizer compose, and an lr changed by hand carries forward. They are
written the same way here, with the same floating-point recurrences, so that the learning
rates equal PyTorch's to the last bit; each also has the closed form (``_get_closed_form_lr``,
used by SequentialLR when it hands over to a scheduler at a milestone).
"""

import math
import numbers
import types
import warnings
from bisect import bisect_right
from collections import Counter

from retrograd import _checks
from retrograd.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR",
           "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR", "SequentialLR",
           "ChainedScheduler", "ReduceLROnPlateau", "CyclicLR", "CosineAnnealingWarmRestarts",
           "OneCycleLR", "LinearWarmup"]

_EPOCH_DEPRECATION = (
    "The epoch parameter in `scheduler.step()` is deprecated, as in PyTorch: call "
    "`scheduler.step()` once per epoch. With an epoch given, the schedule's closed form is "
    "used where it has one, instead of the chainable form.")


class LRScheduler:
    """Base class of learning-rate schedulers: subclasses implement ``get_lr()``, the new lr
    of every group at ``self.last_epoch``.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are set.
        last_epoch (int): index of the last epoch; -1 (the default) starts a new schedule
            from the groups' current lrs (stored as ``group['initial_lr']``). Another value
            resumes one, and needs ``initial_lr`` in every group.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        >>> lrs = []
        >>> for epoch in range(5):
        ...     lrs.append(sched.get_last_lr()[0])
        ...     opt.step()
        ...     sched.step()
        >>> lrs
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer, last_epoch=-1):
        _check_optimizer(self, optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param 'initial_lr' is not "
                                   f"specified in param_groups[{i}] when resuming a scheduler "
                                   f"with last_epoch={last_epoch}; load the optimizer's state "
                                   f"first, or start with last_epoch=-1")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """Set the lr of step 0 (the chainable rules leave the current lr as it is)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr()")

    def get_last_lr(self):
        """The learning rates (one per group) set by the last ``step()``."""
        return self._last_lr

    def step(self, epoch=None):
        """Advance the schedule by one epoch and set the new learning rates.

        ``epoch`` (deprecated in PyTorch, accepted for its programs) jumps to that epoch
        instead, with the closed form of the schedule where it has one."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        """Step to ``last_epoch + 1`` with get_lr(), or jump to ``epoch`` with the closed form
        (what SequentialLR does when it hands over to the next scheduler)."""
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _current_lrs(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """Every attribute except the optimizer (save it separately)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Restore the attributes saved by ``state_dict()``."""
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    """lr = initial_lr * lr_lambda(epoch), with one function for all groups or one per group.

    Only callable objects' attributes go into ``state_dict()``; plain functions and lambdas
    are not saved (rebuild the scheduler with them before loading).

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=0.5)
        >>> sched = rg.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 1.0 / (epoch + 1))
        >>> opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.25]
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self.optimizer = _check_optimizer(self, optimizer)
        self.lr_lambdas = _per_group(lr_lambda, optimizer, "LambdaLR", "lr_lambda")
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"LambdaLR: lr_lambda should be a function, got "
                                f"{type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base_lr * fn(self.last_epoch)
                for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                               for fn in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        lr_lambdas = state_dict.pop("lr_lambdas")
        self.__dict__.update(state_dict)
        for fn, saved in zip(self.lr_lambdas, lr_lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class StepLR(LRScheduler):
    """Multiply the lr by gamma every ``step_size`` epochs:
    lr = initial_lr * gamma ** (epoch // step_size).

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        >>> opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.5]
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _checks.positive_int("StepLR", "step_size", step_size)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the lr by gamma at each milestone epoch (a milestone listed n times multiplies
    by gamma ** n): lr = initial_lr * gamma ** (number of milestones <= epoch).

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
        >>> lrs = []
        >>> for epoch in range(4):
        ...     opt.step(); sched.step(); lrs.append(sched.get_last_lr()[0])
        >>> lrs
        [0.5, 0.5, 0.25, 0.25]
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [lr * factor for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        milestones = sorted(Counter(self.milestones).elements())  # a dict, once loaded
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the lr by gamma every epoch: lr = initial_lr * gamma ** epoch.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
        >>> opt.step(); sched.step(); opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.25]
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:  # resuming: do not apply one more factor
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale the lr by a factor going linearly from ``start_factor`` (epoch 0) to
    ``end_factor`` (epoch ``total_iters`` and after):
    lr = initial_lr * (start + (end - start) * min(epoch, total_iters) / total_iters).

    Args:
        start_factor (float): in (0, 1]. Default: 1/3.
        end_factor (float): in [0, 1]. Default: 1.0.
        total_iters (int): number of epochs of the linear change. Default: 5.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for epoch in range(3):
        ...     opt.step(); sched.step(); lrs.append(sched.get_last_lr()[0])
        >>> lrs
        [0.5, 0.75, 1.0, 1.0]
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(f"LinearLR: Starting multiplicative factor expected to be greater "
                             f"than 0 and less or equal to 1, got {start_factor}")
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(f"LinearLR: Ending multiplicative factor expected to be between 0 "
                             f"and 1, got {end_factor}")
        _checks.positive_int("LinearLR", "total_iters", total_iters)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.start_factor for lr in self._current_lrs()]
        if self._is_initial or self.last_epoch > self.total_iters:
            return self._current_lrs()
        # the ratio of the factors at epochs t and t-1
        delta = self.end_factor - self.start_factor
        ratio = 1.0 + delta / (self.total_iters * self.start_factor + (self.last_epoch - 1) * delta)
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        delta = self.end_factor - self.start_factor
        progress = min(self.total_iters, self.last_epoch) / self.total_iters
        return [base_lr * (self.start_factor + delta * progress) for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Anneal the lr along half a cosine from initial_lr (epoch 0) to ``eta_min`` (epoch
    ``T_max``):  lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    As in PyTorch, the lr is computed by the recurrence
    lr_t = eta_min + (lr_{t-1} - eta_min) * (1 + cos(pi t / T_max)) / (1 + cos(pi (t-1) / T_max))
    which equals the closed form when nothing else changes the lr, and past T_max the cosine
    goes on (the lr rises again over the next T_max epochs) rather than restarting.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for epoch in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):  # noqa: N803 - torch's name
        _checks.positive_int("CosineAnnealingLR", "T_max", T_max)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and t > 0:  # resumed at epoch t: start from the closed form
            return [eta_min + (base_lr - eta_min) * (1 + math.cos(t * math.pi / t_max)) / 2
                    for base_lr in self.base_lrs]
        if (t - 1 - t_max) % (2 * t_max) == 0:
            # NOTE: at the bottom of the cosine the recurrence would divide by
            # 1 + cos(pi) = 0; PyTorch steps up by the first increment instead.
            return [lr + (base_lr - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base_lr, lr in zip(self.base_lrs, self._current_lrs())]
        ratio = (1 + math.cos(math.pi * t / t_max)) / (1 + math.cos(math.pi * (t - 1) / t_max))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        cos = math.cos(math.pi * self.last_epoch / self.T_max)
        return [self.eta_min + (base_lr - self.eta_min) * (1 + cos) / 2
                for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run schedulers one after another: ``schedulers[i]`` drives epochs from
    ``milestones[i-1]`` to ``milestones[i]``; at a milestone the next scheduler restarts from
    its epoch 0 (its closed form at 0).

    Args:
        optimizer (Optimizer): the optimizer all the schedulers belong to.
        schedulers (list of LRScheduler): built on ``optimizer``, in order.
        milestones (list of int): the epochs where the next scheduler takes over
            (one fewer than the schedulers).

    Example:
        >>> import retrograd as rg
        >>> from retrograd.optim import lr_scheduler
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> warmup = lr_scheduler.LinearLR(opt, start_factor=0.5, total_iters=2)
        >>> decay = lr_scheduler.ExponentialLR(opt, gamma=0.5)
        >>> sched = lr_scheduler.SequentialLR(opt, [warmup, decay], milestones=[2])
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for epoch in range(4):
        ...     opt.step(); sched.step(); lrs.append(sched.get_last_lr()[0])
        >>> lrs
        [0.5, 0.75, 1.0, 0.5, 0.25]
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        _check_optimizer(self, optimizer)
        _check_sequence(optimizer, schedulers, milestones)
        self._schedulers = list(schedulers)
        self._milestones = list(milestones)
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self._undo_initial_steps(self)
        first = self._schedulers[bisect_right(self._milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def _undo_initial_steps(self, scheduler):
        """Building each scheduler stepped it once: take those steps back."""
        if hasattr(scheduler, "_schedulers"):
            for s in scheduler._schedulers:
                self._undo_initial_steps(s)
        else:
            scheduler.last_epoch -= 1

    def step(self):
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        saved = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for scheduler, s in zip(self._schedulers, saved):
            scheduler.load_state_dict(s)


class MultiplicativeLR(LRScheduler):
    """Multiply the lr by ``lr_lambda(epoch)`` at every epoch after the first:
    lr_t = lr_{t-1} * lr_lambda(t), with one function for all groups or one per group.

    As for LambdaLR, only callable objects' attributes go into ``state_dict()``.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.MultiplicativeLR(opt, lambda epoch: 0.5)
        >>> opt.step(); sched.step(); opt.step(); sched.step()
        >>> sched.get_last_lr()
        [0.25]
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self.optimizer = _check_optimizer(self, optimizer)
        self.lr_lambdas = _per_group(lr_lambda, optimizer, "MultiplicativeLR", "lr_lambda")
        for fn in self.lr_lambdas:
            if not callable(fn):
                raise TypeError(f"MultiplicativeLR: lr_lambda should be a function, got "
                                f"{type(fn).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * fn(self.last_epoch) for fn, lr in zip(self.lr_lambdas, self._current_lrs())]

    state_dict = LambdaLR.state_dict
    load_state_dict = LambdaLR.load_state_dict


class ConstantLR(LRScheduler):
    """Multiply the lr by a constant ``factor`` until epoch ``total_iters``, then restore it:
    lr = initial_lr * factor for epoch < total_iters, initial_lr afterwards.

    Args:
        factor (float): in [0, 1]. Default: 1/3.
        total_iters (int): the number of epochs with the reduced lr. Default: 5.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for epoch in range(3):
        ...     opt.step(); sched.step(); lrs.append(sched.get_last_lr()[0])
        >>> lrs
        [0.5, 0.5, 1.0, 1.0]
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        if not isinstance(factor, numbers.Real) or not 0 <= factor <= 1.0:
            raise ValueError(f"ConstantLR: Constant multiplicative factor expected to be "
                             f"between 0 and 1, got {factor!r}")
        _checks.non_negative_int("ConstantLR", "total_iters", total_iters)
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0:
            return [lr * self.factor for lr in self._current_lrs()]
        if self.last_epoch != self.total_iters:
            return self._current_lrs()
        if self.factor == 0:  # NOTE: the chainable rule would divide by 0; restart from base
            return list(self.base_lrs)
        return [lr * (1.0 / self.factor) for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        factor = self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor)
        return [base_lr * factor for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Decay the lr polynomially to 0 over ``total_iters`` epochs:
    lr = initial_lr * (1 - min(epoch, total_iters) / total_iters) ** power.

    Args:
        total_iters (int): the epoch where the lr reaches 0. Default: 5.
        power (float): the power of the polynomial (1.0: linear). Default: 1.0.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.PolynomialLR(opt, total_iters=4, power=2.0)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for epoch in range(5):
        ...     opt.step(); sched.step(); lrs.append(sched.get_last_lr()[0])
        >>> lrs
        [1.0, 0.5625, 0.25, 0.0625, 0.0, 0.0]
    """

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        _checks.positive_int("PolynomialLR", "total_iters", total_iters)
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, total = self.last_epoch, self.total_iters
        if self._is_initial or t > total:
            return self._current_lrs()
        # the ratio of the factors at epochs t and t-1 (chainable, as in PyTorch)
        ratio = ((1.0 - t / total) / (1.0 - (t - 1) / total)) ** self.power
        return [lr * ratio for lr in self._current_lrs()]

    def _get_closed_form_lr(self):
        factor = (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
        return [base_lr * factor for base_lr in self.base_lrs]


class ChainedScheduler(LRScheduler):
    """Step several schedulers of one optimizer together, each ``step()`` calling every one's
    ``step()`` in order, so that their chainable factors multiply.

    Args:
        schedulers (list of LRScheduler): the schedulers (not ReduceLROnPlateau, whose step
            needs a metric).
        optimizer (Optimizer, optional): their optimizer; by default the first one's.

    Example:
        >>> import retrograd as rg
        >>> from retrograd.optim import lr_scheduler
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = lr_scheduler.ChainedScheduler([
        ...     lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2),
        ...     lr_scheduler.ExponentialLR(opt, gamma=0.9)])
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for epoch in range(3):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.5, 0.45, 0.81, 0.729]
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("ChainedScheduler: expects at least one scheduler to be chained, "
                             "but got none")
        if optimizer is None:
            optimizer = getattr(schedulers[0], "optimizer", None)
        _check_optimizer(self, optimizer)
        for i, scheduler in enumerate(schedulers):
            if not isinstance(scheduler, LRScheduler):
                raise TypeError(f"ChainedScheduler: schedulers[{i}] is a "
                                f"{type(scheduler).__name__}, not an LRScheduler")
            if isinstance(scheduler, ReduceLROnPlateau):
                raise ValueError(f"ChainedScheduler: does not support ReduceLROnPlateau (at "
                                 f"index {i}): its step() needs the metric")
            if scheduler.optimizer is not optimizer:
                raise ValueError(f"ChainedScheduler: expects all schedulers to belong to the "
                                 f"same optimizer, but schedulers[{i}] "
                                 f"({type(scheduler).__name__}) belongs to another one")
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = self._current_lrs()

    def step(self):
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = self._current_lrs()

    state_dict = SequentialLR.state_dict
    load_state_dict = SequentialLR.load_state_dict


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing with warm restarts (SGDR, Loshchilov and Hutter): the lr follows half
    a cosine from initial_lr to ``eta_min`` over T_i epochs, then jumps back to initial_lr;
    the first period is T_0 and each next one T_mult times longer:

        lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

    with T_cur the epochs since the last restart. ``step(epoch)`` takes a fractional epoch
    (e.g. ``epoch + i / iters_per_epoch`` once per batch) and sets the lr of that moment.

    Args:
        T_0 (int): the length of the first period, >= 1.
        T_mult (int): the growth factor of the periods, >= 1. Default: 1.
        eta_min (float): the lowest lr. Default: 0.0.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for epoch in range(6):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [1.0, 0.5, 1.0, 0.8536, 0.5, 0.1464, 1.0]
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):  # noqa: N803
        if not _checks.is_int(T_0) or T_0 <= 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: Expected positive integer T_0, but "
                             f"got {T_0!r}")
        if not _checks.is_int(T_mult) or T_mult < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: Expected integer T_mult >= 1, but "
                             f"got {T_mult!r}")
        if not isinstance(eta_min, numbers.Real) or isinstance(eta_min, bool):
            raise ValueError(f"CosineAnnealingWarmRestarts: Expected float or int eta_min, but "
                             f"got {eta_min!r}")
        self.T_0 = T_0  # noqa: N815 - PyTorch's names
        self.T_i = T_0  # noqa: N815
        self.T_mult = T_mult  # noqa: N815
        self.eta_min = eta_min
        self.T_cur = last_epoch  # noqa: N815
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        cos = math.cos(math.pi * self.T_cur / self.T_i)
        return [self.eta_min + (base_lr - self.eta_min) * (1 + cos) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch=None):
        """Advance one epoch, or go to ``epoch`` (an int or a float, >= 0)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:  # a restart
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            self._go_to(epoch)
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = self._current_lrs()

    def _go_to(self, epoch):
        """Set T_i and T_cur at ``epoch``: the periods before it sum to
        T_0 (T_mult^n - 1) / (T_mult - 1) (n * T_0 when T_mult = 1)."""
        if not isinstance(epoch, numbers.Real) or epoch < 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: Expected non-negative epoch, but "
                             f"got {epoch!r}")
        if epoch < self.T_0:
            self.T_i, self.T_cur = self.T_0, epoch
        elif self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        else:
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult ** n


class ReduceLROnPlateau(LRScheduler):
    """Multiply the lr by ``factor`` when a metric has stopped improving for more than
    ``patience`` epochs; call ``step(metric)`` after each validation.

    An epoch improves when the metric beats the best so far by the threshold:
    metric < best * (1 - threshold) ('min', 'rel'), metric < best - threshold ('min', 'abs'),
    metric > best * (1 + threshold) ('max', 'rel'), metric > best + threshold ('max', 'abs').
    After a reduction, ``cooldown`` epochs pass without counting bad epochs. The lr never goes
    below ``min_lr``, and a reduction smaller than ``eps`` is skipped.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are set.
        mode (str): 'min' (a loss) or 'max' (an accuracy). Default: 'min'.
        factor (float): the reduction factor, < 1. Default: 0.1.
        patience (int): bad epochs tolerated before a reduction. Default: 10.
        threshold (float): the least change that counts as an improvement. Default: 1e-4.
        threshold_mode (str): 'rel' or 'abs'. Default: 'rel'.
        cooldown (int): epochs to wait after a reduction. Default: 0.
        min_lr (float or list): a lower bound on the lr (one per group in a list). Default: 0.
        eps (float): the least lr change applied. Default: 1e-8.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)
        >>> for val_loss in [3.0, 2.0, 2.5, 2.4, 2.2, 2.1, 2.05]:
        ...     sched.step(val_loss)
        >>> sched.get_last_lr()
        [0.25]
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        if not isinstance(factor, numbers.Real) or factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: Factor should be < 1.0, got {factor!r}")
        self.factor = factor
        self.optimizer = _check_optimizer(self, optimizer)
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group(list(min_lr), optimizer, "ReduceLROnPlateau", "min_lr")
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = _checks.non_negative_int("ReduceLROnPlateau", "patience", patience)
        self.cooldown = _checks.non_negative_int("ReduceLROnPlateau", "cooldown", cooldown)
        self.eps = eps
        self.last_epoch = 0
        self._last_lr = self._current_lrs()
        self._init_is_better(mode, threshold, threshold_mode)
        self._reset()

    def _init_is_better(self, mode, threshold, threshold_mode):
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode {mode!r} is unknown (use 'min' or 'max')")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold mode {threshold_mode!r} is unknown "
                             f"(use 'rel' or 'abs')")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.mode, self.threshold, self.threshold_mode = mode, threshold, threshold_mode

    def _reset(self):
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self):
        return self.cooldown_counter > 0

    def is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics, epoch=None):
        """Record one epoch's metric (a number or a one-element Tensor) and reduce the lr
        if it has not improved for more than ``patience`` epochs."""
        current = _metric_value(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(_EPOCH_DEPRECATION, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self.is_better(current, self.best):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = self._current_lrs()

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} "
                                   f"parameter groups but {len(self.min_lrs)} min_lrs were "
                                   f"given (a group was added since); set scheduler.min_lrs "
                                   f"to one value per group")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def get_lr(self):
        return self._current_lrs()

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
        self._init_is_better(self.mode, self.threshold, self.threshold_mode)


class CyclicLR(LRScheduler):
    """Cycle the lr between ``base_lr`` and ``max_lr`` (Smith, "Cyclical Learning Rates"),
    one step per batch: up over ``step_size_up`` steps, down over ``step_size_down``; the
    amplitude is scaled per cycle ('triangular': 1, 'triangular2': halved each cycle) or per
    step ('exp_range': gamma ** step), or by ``scale_fn``. With ``cycle_momentum`` the
    momentum (SGD's momentum, Adam's beta1) cycles the opposite way, between
    ``max_momentum`` and ``base_momentum``.

    At step t, with cycle = floor(1 + t / (up + down)) and x = 1 + t / (up + down) - cycle:

        scale = x / r if x <= r else (x - 1) / (r - 1)       r = up / (up + down)
        lr = base_lr + (max_lr - base_lr) * scale * scale_fn(cycle or t)

    Args:
        base_lr, max_lr (float or list): the lr bounds (one per group in a list).
        step_size_up (int): steps of the rising half. Default: 2000.
        step_size_down (int or None): steps of the falling half. Default: step_size_up.
        mode (str): 'triangular', 'triangular2' or 'exp_range'. Default: 'triangular'.
        gamma (float): the base of 'exp_range'. Default: 1.0.
        scale_fn (callable or None): a custom amplitude scale, overriding mode.
        scale_mode (str): 'cycle' or 'iterations', the argument of scale_fn. Default: 'cycle'.
        cycle_momentum (bool): cycle the momentum too. Default: True.
        base_momentum, max_momentum (float or list): its bounds. Default: 0.8, 0.9.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=1.0, momentum=0.9)
        >>> sched = rg.optim.lr_scheduler.CyclicLR(opt, 0.1, 0.5, step_size_up=2)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for step in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs, opt.param_groups[0]["momentum"]
        ([0.1, 0.3, 0.5, 0.3, 0.1], 0.9)
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        _check_optimizer(self, optimizer)
        self.optimizer = optimizer
        base_lrs = _per_group(base_lr, optimizer, "CyclicLR", "base_lr")
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = _per_group(max_lr, optimizer, "CyclicLR", "max_lr")
        for name, size in (("step_size_up", step_size_up), ("step_size_down", step_size_down)):
            if size is not None and (not isinstance(size, numbers.Real) or not size > 0):
                raise ValueError(f"CyclicLR: {name} must be a positive number, got {size!r}")
        step_size_up = float(step_size_up)
        step_size_down = step_size_up if step_size_down is None else float(step_size_down)
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"CyclicLR: mode {mode!r} is invalid and scale_fn is None")
        if scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"CyclicLR: scale_mode must be 'cycle' or 'iterations', got "
                             f"{scale_mode!r}")
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_mode()
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer, "CyclicLR") == "betas"
            self.base_momentums = _per_group(base_momentum, optimizer, "CyclicLR",
                                             "base_momentum")
            self.max_momentums = _per_group(max_momentum, optimizer, "CyclicLR", "max_momentum")
            if last_epoch == -1:
                for group, high, low in zip(optimizer.param_groups, self.max_momentums,
                                            self.base_momentums):
                    _set_momentum(group, high, self.use_beta1)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_mode(self):
        """The built-in modes fix the argument of their scale function."""
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x):
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base_lr + (max_lr - base_lr) * scale_factor * scale
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, low, high in zip(self.optimizer.param_groups, self.base_momentums,
                                        self.max_momentums):
                _set_momentum(group, high - (high - low) * scale_factor * scale, self.use_beta1)
        return lrs

    def state_dict(self):
        state = {k: v for k, v in self.__dict__.items() if k != "optimizer"}
        fn = state.pop("_scale_fn_custom")
        state["_scale_fn_custom"] = (None if fn is None or isinstance(fn, types.FunctionType)
                                     else fn.__dict__.copy())
        return state

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        fn = state_dict.pop("_scale_fn_custom")
        self.__dict__.update(state_dict)
        if fn is not None:
            self._scale_fn_custom.__dict__.update(fn)
        self._init_scale_mode()


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith and Topin, "Super-Convergence"), stepped once per batch: the
    lr rises from max_lr / div_factor to ``max_lr`` over the first ``pct_start`` of the
    ``total_steps``, then anneals to max_lr / (div_factor * final_div_factor); the momentum
    (SGD's momentum, Adam's beta1) moves the opposite way, from ``max_momentum`` to
    ``base_momentum`` and back. ``three_phase`` goes back down to the initial lr
    symmetrically before the final anneal.

    Within a phase going from a to b, at the fraction p of the phase:
    'cos': b + (a - b) * (1 + cos(pi p)) / 2;  'linear': a + (b - a) * p.
    Phase ends (in steps): pct_start * total_steps - 1, then total_steps - 1 (three_phase:
    pct_start * total_steps - 1, 2 * pct_start * total_steps - 2, total_steps - 1).

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are set.
        max_lr (float or list): the peak lr (one per group in a list).
        total_steps (int): the number of steps; or give ``epochs`` and ``steps_per_epoch``.
        epochs, steps_per_epoch (int): total_steps = epochs * steps_per_epoch.
        pct_start (float): the fraction of the steps spent rising. Default: 0.3.
        anneal_strategy (str): 'cos' or 'linear'. Default: 'cos'.
        cycle_momentum (bool): cycle the momentum too. Default: True.
        base_momentum, max_momentum (float or list): its bounds. Default: 0.85, 0.95.
        div_factor (float): initial_lr = max_lr / div_factor. Default: 25.
        final_div_factor (float): min_lr = initial_lr / final_div_factor. Default: 1e4.
        three_phase (bool): the three-phase variant. Default: False.
        last_epoch (int): the last step when resuming. Default: -1.

    Stepping past ``total_steps`` raises a ValueError.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.SGD([rg.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
        >>> sched = rg.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=5,
        ...                                          anneal_strategy="linear", pct_start=0.4)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for step in range(4):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs, round(opt.param_groups[0]["momentum"], 4)
        ([0.04, 1.0, 0.6667, 0.3333, 0.0], 0.95)
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        self.optimizer = _check_optimizer(self, optimizer)
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        self._schedule_phases = _one_cycle_phases(pct_start, self.total_steps, three_phase)
        if not isinstance(pct_start, float) or not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: Expected float between 0 and 1 pct_start, but got "
                             f"{pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be one of 'cos' or 'linear', "
                             f"instead got {anneal_strategy!r}")
        self._anneal_func_type = anneal_strategy
        max_lrs = _per_group(max_lr, optimizer, "OneCycleLR", "max_lr")
        if last_epoch == -1:
            for group, peak in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = peak / div_factor
                group["max_lr"] = peak
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self.use_beta1 = _momentum_key(optimizer, "OneCycleLR") == "betas"
            highs = _per_group(max_momentum, optimizer, "OneCycleLR", "max_momentum")
            lows = _per_group(base_momentum, optimizer, "OneCycleLR", "base_momentum")
            if last_epoch == -1:
                for group, high, low in zip(optimizer.param_groups, highs, lows):
                    _set_momentum(group, high, self.use_beta1)
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: Tried to step {step} times. The specified number of "
                             f"total steps is {self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            phase, pct = self._phase_at(step)
            lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
            if self.cycle_momentum:
                momentum = self._anneal(group[phase["start_momentum"]],
                                        group[phase["end_momentum"]], pct)
                _set_momentum(group, momentum, self.use_beta1)
        return lrs

    def _phase_at(self, step):
        """The phase that ``step`` falls in, and how far into it (0 to 1)."""
        start = 0.0
        for i, phase in enumerate(self._schedule_phases):
            end = phase["end_step"]
            if step <= end or i == len(self._schedule_phases) - 1:
                return phase, (step - start) / (end - start)
            start = end
        raise AssertionError("unreachable: the last phase takes every step")


def _total_steps(total_steps, epochs, steps_per_epoch):
    if total_steps is not None:
        if not _checks.is_int(total_steps) or total_steps <= 0:
            raise ValueError(f"OneCycleLR: Expected positive integer total_steps, but got "
                             f"{total_steps!r}")
        return total_steps
    if epochs is None or steps_per_epoch is None:
        raise ValueError("OneCycleLR: You must define either total_steps OR (epochs AND "
                         "steps_per_epoch)")
    for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if not _checks.is_int(value) or value <= 0:
            raise ValueError(f"OneCycleLR: Expected positive integer {name}, but got {value!r}")
    return epochs * steps_per_epoch


def _one_cycle_phases(pct_start, total_steps, three_phase):
    """OneCycleLR's phases: where each ends, and the group keys of its start and end lr and
    momentum."""
    def phase(end_step, lrs, momentums):
        return {"end_step": end_step, "start_lr": lrs[0], "end_lr": lrs[1],
                "start_momentum": momentums[0], "end_momentum": momentums[1]}
    up = ("initial_lr", "max_lr")
    momentum_down = ("max_momentum", "base_momentum")
    if three_phase:
        return [phase(float(pct_start * total_steps) - 1, up, momentum_down),
                phase(float(2 * pct_start * total_steps) - 2, ("max_lr", "initial_lr"),
                      ("base_momentum", "max_momentum")),
                phase(total_steps - 1, ("initial_lr", "min_lr"),
                      ("max_momentum", "max_momentum"))]
    return [phase(float(pct_start * total_steps) - 1, up, momentum_down),
            phase(total_steps - 1, ("max_lr", "min_lr"), ("base_momentum", "max_momentum"))]


def _momentum_key(optimizer, scheduler):
    """'betas' when the optimizer's momentum is Adam's beta1, else 'momentum'."""
    if "betas" in optimizer.defaults:
        return "betas"
    if "momentum" in optimizer.defaults:
        return "momentum"
    raise ValueError(f"{scheduler}: optimizer must support momentum or beta1 with "
                     f"`cycle_momentum` option enabled ({type(optimizer).__name__} has neither; "
                     f"pass cycle_momentum=False)")


def _set_momentum(group, value, use_beta1):
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


def _metric_value(metrics):
    try:
        return float(metrics)
    except (TypeError, ValueError):
        raise TypeError(f"ReduceLROnPlateau.step: the metric must be a number or a "
                        f"one-element Tensor, got {_checks.describe(metrics)}") from None


class LinearWarmup(LRScheduler):
    """Linear warmup, optionally followed by cosine decay: retrograd's own convenience for
    the usual Transformer schedule (PyTorch spells it as a SequentialLR of LinearLR and
    CosineAnnealingLR, and gives the same learning rates up to ``total_steps``).

    With W = warmup_steps, T = total_steps, f = start_factor, at epoch t:

        lr = initial_lr * (f + (1 - f) * t / W)                      for t < W
        lr = initial_lr                                               for t >= W, if T is None
        lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * s / (T - W))) / 2
             with s = min(t, T) - W                                   for t >= W, otherwise

    Unlike PyTorch's cosine, the lr stays at ``eta_min`` after ``total_steps`` instead of
    rising again. It is computed in closed form from ``initial_lr`` (not chainable).

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are set.
        warmup_steps (int): W, the number of warmup epochs (0 for no warmup).
        start_factor (float): f in [0, 1], the lr factor at epoch 0. Default: 1/3 (as
            LinearLR's); 0 starts from a zero lr.
        total_steps (int or None): T > W, where the cosine decay ends; None keeps the lr at
            initial_lr after the warmup. Default: None.
        eta_min (float): the lr at the end of the decay. Default: 0.0.
        last_epoch (int): as in LRScheduler.

    Example:
        >>> import retrograd as rg
        >>> opt = rg.optim.AdamW([rg.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = rg.optim.lr_scheduler.LinearWarmup(opt, warmup_steps=2, start_factor=0.0,
        ...                                            total_steps=4)
        >>> lrs = [sched.get_last_lr()[0]]
        >>> for epoch in range(5):
        ...     opt.step(); sched.step(); lrs.append(round(sched.get_last_lr()[0], 4))
        >>> lrs
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """

    def __init__(self, optimizer, warmup_steps, start_factor=1.0 / 3, total_steps=None,
                 eta_min=0.0, last_epoch=-1):
        _checks.non_negative_int("LinearWarmup", "warmup_steps", warmup_steps)
        _checks.probability("LinearWarmup", "start_factor", start_factor)
        if total_steps is not None:
            _checks.positive_int("LinearWarmup", "total_steps", total_steps)
            if total_steps <= warmup_steps:
                raise ValueError(f"LinearWarmup: total_steps ({total_steps}) must be greater "
                                 f"than warmup_steps ({warmup_steps})")
        self.warmup_steps = warmup_steps
        self.start_factor = start_factor
        self.total_steps = total_steps
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self._get_closed_form_lr()

    def _get_closed_form_lr(self):
        t, warmup = self.last_epoch, self.warmup_steps
        if t < warmup:
            factor = self.start_factor + (1.0 - self.start_factor) * t / warmup
            return [base_lr * factor for base_lr in self.base_lrs]
        if self.total_steps is None:
            return list(self.base_lrs)
        decay_steps = self.total_steps - warmup
        cos = math.cos(math.pi * (min(t, self.total_steps) - warmup) / decay_steps)
        return [self.eta_min + (base_lr - self.eta_min) * (1 + cos) / 2
                for base_lr in self.base_lrs]


# ---------------------------------------------------------------------- helpers
def _check_optimizer(scheduler, optimizer):
    """``optimizer`` if it is an Optimizer (not the model or its parameters, which it is
    built on). Every scheduler checks it first, before anything reads its param_groups."""
    return _checks.instance_of(type(scheduler).__name__, "optimizer", optimizer, Optimizer,
                               "; build the optimizer first, e.g. optim.SGD(model.parameters(), "
                               "lr=0.1), and pass it")


def _per_group(value, optimizer, scheduler, name):
    """One value per parameter group: a list/tuple given per group, or one value for all."""
    if not isinstance(value, (list, tuple)):
        return [value] * len(optimizer.param_groups)
    if len(value) != len(optimizer.param_groups):
        raise ValueError(f"{scheduler}: expected {len(optimizer.param_groups)} {name}s (one "
                         f"per parameter group), but got {len(value)}")
    return list(value)


def _check_sequence(optimizer, schedulers, milestones):
    if len(schedulers) < 1:
        raise ValueError("SequentialLR: expects at least one scheduler, but got none")
    for i, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"SequentialLR: schedulers[{i}] is a {type(scheduler).__name__}, "
                            f"not an LRScheduler")
        if scheduler.optimizer is not optimizer:
            raise ValueError(f"SequentialLR: expects all schedulers to belong to the same "
                             f"optimizer, but schedulers[{i}] ({type(scheduler).__name__}) "
                             f"belongs to another one")
    if len(milestones) != len(schedulers) - 1:
        raise ValueError(f"SequentialLR: expects one milestone fewer than schedulers, but got "
                         f"{len(schedulers)} schedulers and {len(milestones)} milestones")
