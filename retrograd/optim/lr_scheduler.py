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
import types
from bisect import bisect_right
from collections import Counter

from retrograd import _checks
from retrograd.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR",
           "CosineAnnealingLR", "SequentialLR", "LinearWarmup"]


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

    def step(self):
        """Advance the schedule by one epoch and set the new learning rates."""
        self._step_count += 1
        self._update_lr()

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
        milestones = sorted(self.milestones.elements())
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
