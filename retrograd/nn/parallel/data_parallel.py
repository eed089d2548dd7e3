"""``nn.DataParallel``: PyTorch's single-process, multi-GPU wrapper, on the CPU.

PyTorch's DataParallel splits each batch over the visible GPUs; with none visible it calls the
wrapped module directly, and scripts rely on that (``model = nn.DataParallel(model)``, then
``model.module`` in checkpoints and state-dict keys prefixed ``module.``). retrograd has no
GPUs, so DataParallel is that direct call, with the same attribute, keys and arguments; asking
for devices by id is an error that says the CPU is all there is.
"""

from retrograd.nn.module import Module

__all__ = ["DataParallel", "check_wrapped"]


def check_wrapped(wrapper, module, device_ids, output_device):
    """The checks both wrappers (``wrapper`` names the one in errors) make of their
    arguments: a Module to wrap, and no GPU to place it on."""
    if not isinstance(module, Module):
        raise TypeError(f"{wrapper}: module must be a Module, got {type(module).__name__}")
    if device_ids:
        raise RuntimeError(f"{wrapper}: device_ids {list(device_ids)!r} name GPUs, and "
                           f"retrograd runs on the CPU only (retrograd.cuda.is_available() "
                           f"is False); leave device_ids out")
    if output_device not in (None, "cpu", -1):
        raise RuntimeError(f"{wrapper}: output_device {output_device!r} is not available: "
                           f"retrograd runs on the CPU only")


class DataParallel(Module):
    """Runs ``module`` as it is: ``forward(*inputs, **kwargs)`` returns
    ``module(*inputs, **kwargs)``.

    Args:
        module: the Module to wrap (available as ``.module``; its state-dict keys are
            prefixed ``module.``, as in PyTorch).
        device_ids: None or empty (there are no GPUs to split over).
        output_device: None (or the CPU).
        dim: the batch dim PyTorch would scatter along; kept, not used.

    Example:
        >>> import retrograd as rg
        >>> model = rg.nn.DataParallel(rg.nn.Linear(3, 2))
        >>> list(model.state_dict()), model(rg.ones(4, 3)).shape
        (['module.weight', 'module.bias'], (4, 2))
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0):
        super().__init__()
        check_wrapped("DataParallel", module, device_ids, output_device)
        self.module = module
        self.device_ids, self.output_device, self.dim = [], output_device, dim

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
