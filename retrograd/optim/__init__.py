"""retrograd.optim: optimizers (SGD, Adam, AdamW, RMSprop, Adadelta, Adagrad, LBFGS) and
learning-rate schedules.

Same names, defaults, update formulas and state-dict layout as ``torch.optim``; an optimizer
changes its parameters in place, under no_grad.

Example:
    >>> import retrograd as rg
    >>> w = rg.tensor([3.0], requires_grad=True)
    >>> opt = rg.optim.SGD([w], lr=0.25)
    >>> sched = rg.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    >>> for _ in range(3):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()
    ...     opt.step()
    ...     sched.step()
    >>> round(w.item(), 4), sched.get_last_lr()
    (0.9844, [0.03125])
"""

from retrograd.optim import lr_scheduler
from retrograd.optim.adadelta import Adadelta
from retrograd.optim.adagrad import Adagrad
from retrograd.optim.lbfgs import LBFGS
from retrograd.optim.adam import Adam, AdamW
from retrograd.optim.optimizer import Optimizer
from retrograd.optim.rmsprop import RMSprop
from retrograd.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adadelta", "Adagrad", "LBFGS",
           "lr_scheduler"]
