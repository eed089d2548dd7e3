"""einsum, as torch.einsum: the equation form ``einsum("ij,jk->ik", a, b)``, the list form
``einsum("ij,jk", [a, b])`` and the sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.

The equation is parsed and checked by ``ops.einsum.parse_equation`` (errors start with
"einsum():", as PyTorch's); operands whose size-1 dims broadcast are reshaped (a recorded,
differentiable reshape) to the canonical form, and one Einsum op computes the result.
"""

import functools
import string

from retrograd import _checks
from retrograd import dtypes as _dt
from retrograd.ops.einsum import Einsum, parse_equation
from retrograd.tensor import Tensor

__all__ = ["einsum"]


def einsum(*args):
    """Sums of products of the operands' entries, named by letters: each operand's term
    names its dims, the output keeps the letters after '->' and sums over the others.

    Without '->' the output holds the letters that appear once, in alphabetical order. '...'
    stands for the dims not named (they broadcast, as do size-1 dims). The gradient of each
    operand is an einsum of the output's gradient with the other operands (ops/einsum.py).
    Mixed dtypes are promoted (PyTorch refuses them).

    Example:
        >>> import retrograd as rg
        >>> a, b = rg.ones(2, 3), rg.ones(3, 4)
        >>> rg.einsum("ij,jk->ik", a, b).shape
        (2, 4)
        >>> rg.einsum("ii", rg.eye(3))
        tensor(3.)
    """
    if not args:
        raise TypeError("einsum(): expected an equation and operands, got nothing")
    equation, operands = _equation_and_operands(args)
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    for k, op in enumerate(operands):
        _checks.instance_of("einsum", f"operand {k}", op, Tensor)
    target = functools.reduce(_dt.result_type, (op._data.dtype for op in operands))
    operands = [op.to(target) for op in operands]
    canonical, shapes = parse_equation(equation, [tuple(op.shape) for op in operands])
    operands = [op.reshape(shape) for op, shape in zip(operands, shapes)]
    return Einsum.apply(*operands, equation=canonical)


def _equation_and_operands(args):
    first = args[0]
    if isinstance(first, str):
        rest = args[1:]
        if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
            return first, list(rest[0])
        return first, list(rest)
    if isinstance(first, Tensor):
        return _from_sublists(args)
    raise TypeError(f"einsum(): the first argument must be an equation (str) or a Tensor "
                    f"(sublist form), got {type(first).__name__}")


def _from_sublists(args):
    """einsum(a, [0, 1], b, [1, 2], [0, 2]) as ("ab,bc->ac", [a, b]); Ellipsis is '...'."""
    pairs, output = args, None
    if len(args) % 2 == 1:
        pairs, output = args[:-1], args[-1]
    operands = list(pairs[0::2])
    terms = [_sublist_term(s) for s in pairs[1::2]]
    equation = ",".join(terms)
    if output is not None:
        equation += "->" + _sublist_term(output)
    return equation, operands


def _sublist_term(sublist):
    letters = string.ascii_letters
    term = []
    for s in sublist:
        if s is Ellipsis:
            term.append("...")
        elif _checks.is_int(s) and 0 <= s < len(letters):
            term.append(letters[s])
        else:
            raise ValueError(f"einsum(): a sublist holds ints in [0, {len(letters)}) or "
                             f"Ellipsis, got {s!r}")
    return "".join(term)
