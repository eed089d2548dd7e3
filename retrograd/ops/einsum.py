"""Einstein summation: ``einsum("ij,jk->ik", a, b)``.

``parse_equation`` turns a user's equation (implicit or explicit output, ``...``, spaces,
size-1 dims that broadcast) into a canonical one for the op: one letter per axis, an explicit
output, no ellipsis, and every letter of the same size wherever it appears (an operand's
broadcast size-1 axes are squeezed away by the caller: the operand is constant along them,
so they need no letter). ``Einsum`` then computes on that canonical form; a letter may still
repeat inside one operand (a diagonal, ``ii->i``) and may appear in one operand only (it is
summed over).
"""

import math
import string

import numpy as np

from retrograd.autograd.cost import Cost, shape_text
from retrograd.autograd.function import Function
from retrograd.dtypes import LOW_PRECISION
from retrograd.ops.shape import scatter_add_index

__all__ = ["Einsum", "parse_equation"]

_LETTERS = string.ascii_letters


def _error(message):
    return RuntimeError(f"einsum(): {message}")


# ---------------------------------------------------------------------------- parsing
def _tokens(term, offset):
    """The subscripts of one term as a list of letters and '...' (at most one)."""
    tokens, i = [], 0
    while i < len(term):
        if term.startswith("...", i):
            if "..." in tokens:
                raise _error(f"found more than one ellipsis ('...') in the term {term!r}")
            tokens.append("...")
            i += 3
        elif term[i] in _LETTERS:
            tokens.append(term[i])
            i += 1
        else:
            raise _error(f"invalid subscript given at index {offset + i} in the equation "
                         f"string, subscripts must be in [a-zA-Z]")
    return tokens


def _split(equation, count):
    """(input terms as token lists, output tokens or None when implicit)."""
    equation = equation.replace(" ", "")
    if equation.count("->") > 1:
        raise _error(f"the equation {equation!r} has more than one '->'")
    lhs, arrow, rhs = equation.partition("->")
    terms, offset = [], 0
    for term in lhs.split(","):
        terms.append(_tokens(term, offset))
        offset += len(term) + 1
    if len(terms) != count:
        side = "fewer" if count < len(terms) else "more"
        raise _error(f"{side} operands were provided than specified in the equation "
                     f"({count} operands, {len(terms)} terms in {equation!r})")
    return terms, (_tokens(rhs, len(lhs) + 2) if arrow else None)


def _ellipsis_dims(terms, shapes):
    """How many dims each term's '...' covers (0 without one); errors name the operand."""
    dims = []
    for k, (tokens, shape) in enumerate(zip(terms, shapes)):
        letters = len(tokens) - ("..." in tokens)
        if "..." in tokens and letters > len(shape):
            raise _error(f"the number of subscripts in the equation ({letters}) is more than "
                         f"the number of dimensions ({len(shape)}) for operand {k}")
        if "..." not in tokens and letters != len(shape):
            raise _error(f"the number of subscripts in the equation ({letters}) does not match "
                         f"the number of dimensions ({len(shape)}) for operand {k} and no "
                         f"ellipsis was given")
        dims.append(len(shape) - letters)
    return dims


def _expand(tokens, ellipsis, count):
    """Letters of a term with '...' replaced by the last ``count`` ellipsis letters."""
    out = []
    for t in tokens:
        out.extend(ellipsis[len(ellipsis) - count:] if t == "..." else [t])
    return out


def _output(terms, rhs, ellipsis, has_ellipsis):
    """The output letters: explicit ones checked, or the implicit rule (NumPy's and
    PyTorch's): the ellipsis dims, then the letters that appear exactly once, sorted."""
    seen = [letter for term in terms for letter in term]
    if rhs is None:
        once = sorted(c for c in set(seen) if seen.count(c) == 1 and c not in ellipsis)
        return (list(ellipsis) if has_ellipsis else []) + once
    out = _expand(rhs, ellipsis, len(ellipsis))
    for letter in out:
        if out.count(letter) > 1:
            raise _error(f"output subscript {letter} appears more than once in the output")
        if letter not in seen:
            raise _error(f"output subscript {letter} does not appear in the equation for any "
                         f"input operand")
    return out


def _sizes(terms, shapes):
    """{letter: size}, checking repeats inside an operand (equal sizes) and across operands
    (equal, or 1 that broadcasts)."""
    sizes = {}
    for k, (term, shape) in enumerate(zip(terms, shapes)):
        own = {}
        for letter, size in zip(term, shape):
            if letter in own and own[letter] != size:
                raise _error(f"subscript {letter} is repeated for operand {k} but the sizes "
                             f"don't match, {own[letter]} != {size}")
            own[letter] = size
        for letter, size in own.items():
            seen = sizes.get(letter, size)
            if seen != size and 1 not in (seen, size):
                raise _error(f"subscript {letter} has size {size} for operand {k} which does "
                             f"not broadcast with previously seen size {seen}")
            sizes[letter] = size if seen == 1 else seen
    return sizes


def parse_equation(equation, shapes):
    """(canonical equation, the shape each operand takes in it).

    The canonical equation has one letter per axis and an explicit output; '...' becomes
    letters not used elsewhere. An operand's size-1 axis whose letter is larger elsewhere
    (broadcasting) is dropped from its term and from its shape: reshape the operand to the
    returned shape before Einsum.

    Example:
        >>> parse_equation("...ij,...jk", [(5, 1, 2, 3), (4, 3, 2)])
        ('aij,bjk->abik', [(5, 2, 3), (4, 3, 2)])
    """
    if not isinstance(equation, str):
        raise TypeError(f"einsum(): the equation must be a str, got {type(equation).__name__}")
    terms, rhs = _split(equation, len(shapes))
    has_ellipsis = any("..." in t for t in terms)
    dims = _ellipsis_dims(terms, shapes)
    fresh = [c for c in _LETTERS if c not in equation]
    count = max(dims, default=0)
    if count > len(fresh):
        raise _error(f"too many dimensions: '...' covers {count}, only {len(fresh)} letters "
                     f"are left")
    ellipsis = fresh[:count]
    terms = [_expand(t, ellipsis, d) for t, d in zip(terms, dims)]
    out = _output(terms, rhs, ellipsis, has_ellipsis)
    sizes = _sizes(terms, shapes)
    squeezed_terms, squeezed_shapes = [], []
    for term, shape in zip(terms, shapes):
        keep = [a for a, (letter, s) in enumerate(zip(term, shape))
                if not (s == 1 and sizes[letter] != 1)]
        squeezed_terms.append("".join(term[a] for a in keep))
        squeezed_shapes.append(tuple(shape[a] for a in keep))
    return ",".join(squeezed_terms) + "->" + "".join(out), squeezed_shapes


# ---------------------------------------------------------------------------- the op
def _terms(equation):
    lhs, _, out = equation.partition("->")
    return lhs.split(","), out


def contract(equation, operands):
    """np.einsum on a canonical equation (optimize: BLAS for the pairwise contractions);
    float16/bfloat16 compute in float32 and round back. On Tensors (create_graph), the
    recorded op."""
    if not all(isinstance(o, np.ndarray) for o in operands):
        return Einsum.apply(*operands, equation=equation)
    dtype = operands[0].dtype
    wide = [o.astype(np.float32) if o.dtype in LOW_PRECISION else o for o in operands]
    y = np.einsum(equation, *wide, optimize=len(operands) > 1)
    return np.asarray(y).astype(dtype, copy=False)


def gradient_equation(k, terms, out, sizes):
    """(equation, sizes of the letters summed only in operand k) of dL/d(operand k), as an
    einsum of dL/dy with the other operands: every letter of operand k's term that appears in
    the output or another operand comes from them; one that appears nowhere else was summed
    in forward, so dL/dy is constant along it: a ones vector of its size brings it back. A
    letter repeated in the term is produced once (the diagonal; see _onto_diagonal)."""
    unique = "".join(dict.fromkeys(terms[k]))
    elsewhere = set(out).union(*(terms[j] for j in range(len(terms)) if j != k))
    only_here = [c for c in unique if c not in elsewhere]
    inputs = [out] + [t for j, t in enumerate(terms) if j != k] + only_here
    return ",".join(inputs) + "->" + unique, [sizes[c] for c in only_here]


def _onto_diagonal(grad, term, shape):
    """zeros(shape) with grad (one axis per distinct letter of term) written where the
    repeated letters' indices are equal: the adjoint of taking a diagonal."""
    unique = "".join(dict.fromkeys(term))
    if len(unique) == len(term):
        return grad
    sizes = dict(zip(term, shape))
    grid = np.ix_(*(np.arange(sizes[c]) for c in unique))
    index = tuple(grid[unique.index(c)] for c in term)
    return scatter_add_index(grad, shape, index, basic=False)


def _letter_sizes(terms, shapes):
    return {c: s for term, shape in zip(terms, shapes) for c, s in zip(term, shape)}


class Einsum(Function):
    """y = einsum(equation, x_1, ..., x_n) on a canonical equation (see parse_equation): each
    operand's term names its axes, y keeps the output letters and sums over the others.

    y[out] = sum over the letters not in out of prod_j x_j[term_j]. y is linear in each
    operand, so the gradient of operand k is the same kind of sum with operand k's place
    taken by dL/dy:
        dL/dx_k[term_k] = sum over the letters not in term_k of dL/dy[out] * prod_(j != k)
                          x_j[term_j]
    i.e. einsum("out,term_j (j != k)->term_k", dL/dy, x_j ...), with two cases einsum cannot
    write directly: a letter only in term_k was summed in forward, so dL/dx_k is constant
    along it (a ones operand of its size adds that axis back); a letter repeated in term_k
    (x_k's diagonal, as "ii->i") gets dL/dx_k on the diagonal and 0 off it. Examples:
    "ij,jk->ik": dL/dA = einsum("ik,jk->ij", G, B) = G @ B^T; "ii->": dL/dA = G * I.
    The backward is einsums (and a scatter), recorded under create_graph.
    Saves: every operand another operand's gradient needs.
    """

    @staticmethod
    def forward(ctx, *operands, equation):
        needs = ctx.needs_input_grad
        ctx.equation, ctx.shapes = equation, [o.shape for o in operands]
        ctx.save_for_backward(*(o if any(needs[:k] + needs[k + 1:]) else None
                                for k, o in enumerate(operands)))
        return contract(equation, operands)

    @staticmethod
    def backward(ctx, grad_out):
        operands = ctx.saved_tensors
        terms, out = _terms(ctx.equation)
        sizes = _letter_sizes(terms, ctx.shapes)
        dtype = np.asarray(grad_out).dtype   # a Tensor (create_graph) hands out its array
        grads = []
        for k, need in enumerate(ctx.needs_input_grad):
            if not need:
                grads.append(None)
                continue
            equation, ones = gradient_equation(k, terms, out, sizes)
            others = [o for j, o in enumerate(operands) if j != k]
            grad = contract(equation, [grad_out, *others, *(np.ones(n, dtype) for n in ones)])
            grads.append(_onto_diagonal(grad, terms[k], ctx.shapes[k]))
        return tuple(grads)

    @staticmethod
    def cost(call):
        """NumPy's count for the contraction path einsum takes (np.einsum_path, greedy): per
        step, the size of its index space times (number of terms - 1, at least 1), plus one
        when it sums a letter (a multiply-add: 2 FLOPs, as matmul's 2*m*n*k). The steps that
        sum are matrix products (gemm_flops). Backward: the same count for each gradient's
        einsum (dL/dy with the other operands) that is needed."""
        equation = call.attrs["equation"]
        shapes = [i.shape for i in call.arrays()]
        flops, gemm = contraction_flops(equation, shapes)
        terms, out = _terms(equation)
        sizes = _letter_sizes(terms, shapes)
        back, back_gemm = 0, 0
        for k in range(len(shapes)):
            if call.needs(k):
                grad_eq, ones = gradient_equation(k, terms, out, sizes)
                others = [s for j, s in enumerate(shapes) if j != k]
                f, g = contraction_flops(grad_eq, [call.outputs[0].shape, *others,
                                                   *((n,) for n in ones)])
                back, back_gemm = back + f, back_gemm + g
        text = ", ".join(shape_text(i) for i in call.arrays())
        return Cost(flops, back, f"einsum {equation!r} ({text}): per step size * factor",
                    gemm_flops=gemm, backward_gemm_flops=back_gemm)


def contraction_flops(equation, shapes):
    """(FLOPs, the part in steps that sum) of the path np.einsum takes (see Einsum.cost)."""
    terms, out = _terms(equation)
    sizes = _letter_sizes(terms, shapes)
    if len(terms) > 2:
        dummies = [np.broadcast_to(np.zeros((), np.float32), s) for s in shapes]
        path = np.einsum_path(equation, *dummies, optimize="greedy")[0][1:]
    else:
        path = [tuple(range(len(terms)))]
    terms = [set(t) for t in terms]
    flops = gemm = 0
    for step in path:
        picked = [terms[i] for i in step]
        terms = [t for i, t in enumerate(terms) if i not in step]
        involved = set().union(*picked)
        kept = involved & set(out).union(*terms)
        summed = involved != kept
        step_flops = math.prod(sizes[c] for c in involved) * (max(len(picked) - 1, 1) + summed)
        flops += step_flops
        gemm += step_flops if summed else 0
        terms.append(kept)
    return flops, gemm
