"""``retrograd.backends.cuda``: CUDA kernel switches, with PyTorch's defaults. retrograd has
no CUDA: the flags are stored and change nothing. ``matmul`` accepts only PyTorch's flag names,
so a misspelled flag is an AttributeError, as in PyTorch."""

import contextlib

__all__ = ["matmul", "is_built", "enable_flash_sdp", "enable_mem_efficient_sdp",
           "enable_math_sdp", "enable_cudnn_sdp", "flash_sdp_enabled",
           "mem_efficient_sdp_enabled", "math_sdp_enabled", "cudnn_sdp_enabled", "sdp_kernel"]


class _MatmulFlags:
    """``torch.backends.cuda.matmul``: TF32 and reduced-precision reduction switches."""

    __slots__ = ("allow_tf32", "allow_fp16_reduced_precision_reduction",
                 "allow_bf16_reduced_precision_reduction")

    def __init__(self):
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    def __setattr__(self, name, value):
        if name not in _MatmulFlags.__slots__:
            raise AttributeError(f"retrograd.backends.cuda.matmul: unknown attribute {name!r}")
        object.__setattr__(self, name, value)


matmul = _MatmulFlags()
_SDP = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def is_built():
    """False: retrograd is not built with CUDA."""
    return False


def enable_flash_sdp(enabled):
    _SDP["flash"] = bool(enabled)


def enable_mem_efficient_sdp(enabled):
    _SDP["mem_efficient"] = bool(enabled)


def enable_math_sdp(enabled):
    _SDP["math"] = bool(enabled)


def enable_cudnn_sdp(enabled):
    _SDP["cudnn"] = bool(enabled)


def flash_sdp_enabled():
    return _SDP["flash"]


def mem_efficient_sdp_enabled():
    return _SDP["mem_efficient"]


def math_sdp_enabled():
    return _SDP["math"]


def cudnn_sdp_enabled():
    return _SDP["cudnn"]


@contextlib.contextmanager
def sdp_kernel(enable_flash=True, enable_math=True, enable_mem_efficient=True,
               enable_cudnn=True):
    """The attention-kernel switches inside a block (restored after). retrograd's attention
    picks its kernel itself; the flags only record the request."""
    saved = dict(_SDP)
    _SDP.update(flash=bool(enable_flash), math=bool(enable_math),
                mem_efficient=bool(enable_mem_efficient), cudnn=bool(enable_cudnn))
    try:
        yield
    finally:
        _SDP.update(saved)
