"""How tensors print: ``set_printoptions``, with PyTorch's options and defaults.

``precision`` (digits after the point, 4), ``threshold`` (above this many elements only the
``edgeitems`` first and last of each dim are shown: 1000 and 3), ``linewidth`` (80) and
``sci_mode`` (None: NumPy decides; True: always scientific; False: never). ``profile`` sets
several at once, as in PyTorch: "default", "short" (precision 2, edgeitems 2) or "full"
(every element). The text itself is NumPy's ``array2string`` with those options.
"""

import math
import sys

import numpy as np

__all__ = ["set_printoptions", "get_printoptions", "array_text"]

_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}
_OPTIONS = dict(_PROFILES["default"], sci_mode=None)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """Set how tensors print (``repr``/``print``); arguments left None keep their value
    (``profile`` first resets to a profile). ``sci_mode`` is always set, None meaning
    automatic, as in PyTorch.

    Example:
        >>> import retrograd as rg
        >>> rg.set_printoptions(precision=2)
        >>> rg.tensor([1.23456, 2.5])
        tensor([1.23, 2.5 ])
        >>> rg.set_printoptions(profile="default")
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of "
                             f"{', '.join(map(repr, _PROFILES))}, got {profile!r}")
        _OPTIONS.update(_PROFILES[profile])
    for name, value in (("precision", precision), ("edgeitems", edgeitems),
                        ("linewidth", linewidth)):
        if value is not None:
            _OPTIONS[name] = _count(name, value)
    if threshold is not None:
        _OPTIONS["threshold"] = threshold if threshold == math.inf else _count("threshold",
                                                                                threshold)
    if sci_mode not in (None, True, False):
        raise ValueError(f"set_printoptions: sci_mode must be None, True or False, got "
                         f"{sci_mode!r}")
    _OPTIONS["sci_mode"] = sci_mode


def get_printoptions():
    """The current options, as a dict (precision, threshold, edgeitems, linewidth,
    sci_mode)."""
    return dict(_OPTIONS)


def _count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"set_printoptions: {name} must be a non-negative int, got {value!r}")
    return int(value)


def array_text(array, prefix):
    """``array`` as text under the current options; continuation lines are indented by
    ``prefix``'s length (it is written before the first line)."""
    options = _OPTIONS
    threshold = options["threshold"]
    kwargs = dict(precision=options["precision"], separator=", ", prefix=prefix,
                  threshold=sys.maxsize if threshold == math.inf else threshold,
                  edgeitems=options["edgeitems"], max_line_width=options["linewidth"])
    if options["sci_mode"] is False:
        kwargs["suppress_small"] = True
    elif options["sci_mode"] and array.dtype.kind == "f":
        digits = options["precision"]
        kwargs["formatter"] = {"float_kind": lambda v: f"{v:.{digits}e}"}
    return np.array2string(array, **kwargs)
